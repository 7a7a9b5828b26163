//! Mounting, staying mounted until told, and unmounting cleanly.

use std::fs::OpenOptions;
use std::io::ErrorKind;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use fuser::MountOption;
use nix::sys::signal::Signal;

use super::Backups;
use super::fs::BackupsFs;
use crate::interrupt::Watch;

/// The file system's type, as `mount` and `/proc/self/mountinfo` show it: `fuse.` this.
pub const FS_NAME: &str = "backup_manager";

/// How long an unmount may wait for the kernel's last requests before the process ends,
/// which ends the connection anyway.
const UNMOUNT_PATIENCE: Duration = Duration::from_secs(3);

/// Whether this machine can mount a FUSE file system for this user; if not, what is
/// missing and how to get it.
pub fn check_fuse() -> Result<()> {
    match OpenOptions::new().read(true).write(true).open("/dev/fuse") {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => bail!(
            "cannot mount: /dev/fuse is missing: load the kernel's FUSE module \
             (modprobe fuse), or in a container start it with --device /dev/fuse"
        ),
        Err(e) => bail!(
            "cannot mount: opening /dev/fuse: {e} (this user needs read and write on it; \
             in a container, --device /dev/fuse --cap-add SYS_ADMIN)"
        ),
    }
    let root = nix::unistd::geteuid().is_root();
    if !root && !on_path("fusermount3") {
        bail!("cannot mount: fusermount3 is not installed: install fuse3 (apt install fuse3)");
    }
    Ok(())
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// Mounts `backups` read-only at `dir` and serves it until SIGINT, SIGTERM or SIGHUP
/// (then unmounts) or an unmount from outside (`fusermount3 -u DIR`). `on_mounted` is
/// called once the mount is there. Returns the signal that ended it, if one did.
pub fn mount(
    dir: &Path,
    backups: Box<dyn Backups>,
    on_mounted: impl FnOnce(),
) -> Result<Option<Signal>> {
    check_fuse()?;
    let meta = std::fs::metadata(dir).with_context(|| format!("mounting at {}", dir.display()))?;
    if !meta.is_dir() {
        bail!("cannot mount at {}: not a folder", dir.display());
    }
    let (sender, signals) = mpsc::channel();
    Watch::start(move |signal| {
        let _ = sender.send(signal);
    })?;
    let options = [
        MountOption::RO,
        MountOption::NoSuid,
        MountOption::NoDev,
        MountOption::DefaultPermissions,
        MountOption::FSName(FS_NAME.to_owned()),
        MountOption::Subtype(FS_NAME.to_owned()),
    ];
    let session = fuser::spawn_mount2(BackupsFs::new(backups), dir, &options)
        .with_context(|| format!("mounting the backups at {}", dir.display()))?;
    log::info!("Mounted the backups at {}", dir.display());
    on_mounted();
    loop {
        match signals.recv_timeout(Duration::from_millis(200)) {
            Ok(signal) => {
                unmount(session);
                log::info!("Unmounted {} on {signal}", dir.display());
                return Ok(Some(signal));
            }
            Err(mpsc::RecvTimeoutError::Timeout) if session.guard.is_finished() => {
                log::info!("Unmounted {} from outside", dir.display());
                return Ok(None);
            }
            Err(_) => {}
        }
    }
}

/// Unmounts and waits a little for the session to end.
fn unmount(session: fuser::BackgroundSession) {
    let waiting = std::thread::spawn(move || session.join());
    let start = Instant::now();
    while !waiting.is_finished() && start.elapsed() < UNMOUNT_PATIENCE {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a file system of ours is mounted at `dir`, from `/proc/self/mountinfo`.
pub fn is_mounted(dir: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let wanted = escape(&dir.to_string_lossy());
    info.lines().any(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        let kind = fields.iter().skip_while(|f| **f != "-").nth(1);
        fields.get(4) == Some(&wanted.as_str()) && kind == Some(&"fuse.backup_manager")
    })
}

/// A path as mountinfo writes it: space, tab, newline and backslash in octal.
fn escape(path: &str) -> String {
    path.chars()
        .map(|c| match c {
            ' ' | '\t' | '\n' | '\\' => format!("\\{:03o}", c as u32),
            c => c.to_string(),
        })
        .collect()
}
