//! Mounting, staying mounted until told, and unmounting cleanly.

use std::fs::OpenOptions;
use std::io::ErrorKind;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use fuser::MountOption;
use nix::sys::signal::Signal;

use super::Backups;
use super::fs::BackupsFs;
use crate::interrupt::Watch;

/// The file system's type, as `mount` and `/proc/self/mountinfo` show it: `fuse.` this.
pub const FS_NAME: &str = "backup_manager";

/// How long a mount detached while in use is served before the process ends, which
/// ends the connection.
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
    if !root && crate::process::on_path("fusermount3").is_none() {
        bail!("cannot mount: fusermount3 is not installed: install fuse3 (apt install fuse3)");
    }
    Ok(())
}

/// Mounts `backups` read-only at `dir` and serves it on this thread until SIGINT, SIGTERM
/// or SIGHUP (then unmounts) or an unmount from outside (`fusermount3 -u DIR`).
/// `on_mounted` is called once the mount is there. Returns the signal that ended it, if
/// one did.
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
    let options = [
        MountOption::RO,
        MountOption::NoSuid,
        MountOption::NoDev,
        MountOption::DefaultPermissions,
        MountOption::FSName(FS_NAME.to_owned()),
        MountOption::Subtype(FS_NAME.to_owned()),
    ];
    let mut session = fuser::Session::new(BackupsFs::new(backups), dir, &options)
        .with_context(|| format!("mounting the backups at {}", dir.display()))?;
    let mut unmounter = session.unmount_callable();
    let caught = Arc::new(Mutex::new(None));
    let (told, mounted) = (caught.clone(), dir.to_owned());
    Watch::start(move |signal| {
        *told.lock().unwrap_or_else(|e| e.into_inner()) = Some(signal);
        let _ = unmounter.unmount();
        // Still there: something in it is in use. Detached, it is gone from DIR now,
        // and the kernel lets those using it finish; the process ends soon after.
        if is_mounted(&mounted) {
            detach(&mounted);
            std::thread::sleep(UNMOUNT_PATIENCE);
            log::info!("Unmounted {} on {signal}, detached", mounted.display());
            std::process::exit(0);
        }
    })?;
    log::info!("Mounted the backups at {}", dir.display());
    on_mounted();
    session
        .run()
        .with_context(|| format!("serving the backups at {}", dir.display()))?;
    let signal = *caught.lock().unwrap_or_else(|e| e.into_inner());
    match signal {
        Some(signal) => log::info!("Unmounted {} on {signal}", dir.display()),
        None => log::info!("Unmounted {} from outside", dir.display()),
    }
    Ok(signal)
}

/// Takes the mount at `dir` away even while it is in use (`umount -l`).
fn detach(dir: &Path) {
    if nix::unistd::geteuid().is_root() {
        let _ = nix::mount::umount2(dir, nix::mount::MntFlags::MNT_DETACH);
    } else {
        let _ = std::process::Command::new("fusermount3")
            .args(["-u", "-z"])
            .arg(dir)
            .status();
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
        let mut after = fields.iter().skip_while(|f| **f != "-").skip(1);
        let (kind, source) = (after.next(), after.next());
        // Mounted by the system call, the type is `fuse` and the source names us; through
        // fusermount3, the type carries our name as its subtype.
        let ours = kind == Some(&"fuse.backup_manager")
            || (kind.is_some_and(|k| k.starts_with("fuse")) && source == Some(&FS_NAME));
        fields.get(4) == Some(&wanted.as_str()) && ours
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
