//! `mount DIR [NAME...]`: the generations as a read-only file system, in the foreground
//! until Ctrl-C, SIGTERM or `fusermount3 -u DIR`; with `--daemon`, in the background.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use std::rc::Rc;

use crate::encryption::Identity;
use crate::home::Home;
use crate::mount::{self, Backups, HomeBackups};

/// How long `--daemon` waits for the mount to be there.
const DAEMON_TIMEOUT: Duration = Duration::from_secs(20);

/// Where the mount goes: DIR made absolute, refused where it would hide the home (the
/// service would then back up into the mount) or one of its backups.
fn place(home: &Home, dir: &Path) -> Result<PathBuf> {
    let dir = std::path::absolute(dir)
        .with_context(|| format!("resolving the mount point {}", dir.display()))?;
    let real =
        std::fs::canonicalize(&dir).with_context(|| format!("mounting at {}", dir.display()))?;
    let home_root = std::fs::canonicalize(home.root()).unwrap_or_else(|_| home.root().into());
    if home_root.starts_with(&real) || real.starts_with(home_root.join(crate::home::BACKUPS_DIR)) {
        bail!(
            "cannot mount at {}: it would hide this home or its backups; choose a folder \
             outside them",
            dir.display()
        );
    }
    if mount::is_mounted(&real) {
        bail!(
            "{} is already a mount of the backups: `fusermount3 -u {}` unmounts it",
            dir.display(),
            dir.display()
        );
    }
    Ok(real)
}

/// The backups to show: of the schedules `names`, each of which must have an archive.
fn backups(home: &Home, names: Vec<String>, identity: Option<&Path>) -> Result<HomeBackups> {
    let key = identity.map(Identity::load).transpose()?.map(Rc::new);
    let all = HomeBackups::new(home.clone(), Vec::new(), key.clone()).names()?;
    if let Some(missing) = names.iter().find(|n| !all.contains(n)) {
        bail!(
            "no archive of a schedule named {missing:?}; those with archives: {}",
            if all.is_empty() {
                "none".to_owned()
            } else {
                all.join(", ")
            }
        );
    }
    Ok(HomeBackups::new(home.clone(), names, key))
}

/// Mounts in the foreground: returns once unmounted. `on_mounted` is told the mount
/// point once it is there.
pub fn mount_here(
    home: &Home,
    dir: &Path,
    (names, identity): (Vec<String>, Option<&Path>),
    on_mounted: impl FnOnce(&Path),
) -> Result<()> {
    let dir = place(home, dir)?;
    let backups = backups(home, names, identity)?;
    // `mount` checks for FUSE first.
    mount::mount(&dir, Box::new(backups), || on_mounted(&dir))?;
    Ok(())
}

/// Mounts in the background: starts `backup_manager mount` again, in a session of its
/// own, and returns its pid once the mount is there; if it ends first, its error.
pub fn mount_daemon(
    home: &Home,
    dir: &Path,
    (names, identity): (Vec<String>, Option<&Path>),
) -> Result<u32> {
    let dir = place(home, dir)?;
    backups(home, names.clone(), identity)?;
    mount::check_fuse()?;
    let manager = std::env::current_exe().context("finding backup_manager itself")?;
    // Its stderr goes to a file of its own, read should it fail at the start; once it
    // serves, what it says goes to the log.
    let errors_path = home
        .manager_log()
        .with_file_name(format!(".mount-{}.err", std::process::id()));
    let errors = File::create(&errors_path)
        .with_context(|| format!("creating {}", errors_path.display()))?;
    let mut command = Command::new(manager);
    command
        .arg("--home")
        .arg(home.root())
        .arg("mount")
        .arg(&dir)
        .args(&names)
        .args(identity.iter().flat_map(|i| [Path::new("--identity"), i]))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(errors);
    // SAFETY: setsid is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        command.pre_exec(|| nix::unistd::setsid().map(|_| ()).map_err(Into::into));
    }
    let mut child = command
        .spawn()
        .context("starting the mount in the background")?;
    let started = Instant::now();
    let result = loop {
        if mount::is_mounted(&dir) {
            break Ok(child.id());
        }
        if let Some(status) = child.try_wait()? {
            let said = std::fs::read_to_string(&errors_path).unwrap_or_default();
            let said = said
                .lines()
                .last()
                .unwrap_or("")
                .trim_start_matches("backup_manager: ");
            break Err(anyhow::anyhow!(
                "the mount ended at start ({status}): {said}"
            ));
        }
        if started.elapsed() > DAEMON_TIMEOUT {
            let _ = child.kill();
            break Err(anyhow::anyhow!(
                "the mount was not there after {DAEMON_TIMEOUT:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = std::fs::remove_file(&errors_path);
    result
}
