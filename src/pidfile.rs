//! The service's pid file, and the lock on it that is the only proof a service runs.
//!
//! The running service holds a POSIX write lock on `.backup_service.pid` for its whole
//! life. The kernel drops the lock when the process dies, however it dies, so a stale file
//! (after `kill -9` or a reboot) is simply an unlocked one. And the kernel reports which
//! process holds a lock (`F_GETLK`), so the pid comes from the kernel, not from the file's
//! contents, which are only for people.
//!
//! POSIX locks belong to the process and are released when *any* descriptor of the file is
//! closed by it, so the service opens this file exactly once.
//!
//! A pid file removed by hand while the service runs would let a second service lock a new
//! file of the same name. So the service also holds a `flock` on the home folder itself,
//! which a second service cannot take whatever became of the pid file, and whose holder
//! the kernel reports in `/proc/locks`. (A `flock` belongs to the open folder, not to the
//! process: the walk opening the home to back it up leaves it alone.)

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, Flock, FlockArg, fcntl};
use nix::libc;
use nix::unistd::Pid;

/// The lock a running service holds; released when dropped or when the process exits.
#[derive(Debug)]
pub struct PidLock {
    _folder: Option<Flock<File>>,
    _file: File,
}

/// What happened when the service tried to take the lock.
#[derive(Debug)]
pub enum Acquire {
    /// The lock is ours, and the file holds our pid.
    Locked(PidLock),
    /// Another process holds it.
    Held(Pid),
    /// Another process holds the home folder's lock, not the pid file's: a service whose
    /// pid file was removed, most likely. Its pid, when the kernel tells it.
    FolderHeld(Option<Pid>),
}

impl PidLock {
    /// Takes the locks without waiting and writes our pid into the file.
    pub fn acquire(path: &Path) -> Result<Acquire> {
        let folder = path.parent().unwrap_or(Path::new("."));
        let folder = match lock_folder(folder)? {
            Folder::Locked(lock) => Some(lock),
            Folder::Unsupported => None,
            Folder::Held => {
                return Ok(match holder(path)? {
                    Some(pid) => Acquire::Held(pid),
                    None => Acquire::FolderHeld(folder_holder(folder)),
                });
            }
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            // A link planted in its place must not get its target truncated.
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .with_context(|| format!("opening pid file {}", path.display()))?;
        loop {
            match fcntl(&file, FcntlArg::F_SETLK(&whole_file(libc::F_WRLCK))) {
                Ok(_) => break,
                // Asked through this same descriptor: opening another and closing it
                // would drop a lock of ours, were it taken meanwhile.
                Err(Errno::EACCES | Errno::EAGAIN) => match file_holder(&file, path)? {
                    Some(pid) => return Ok(Acquire::Held(pid)),
                    // The holder exited between our two calls: the lock is free again.
                    None => continue,
                },
                Err(e) => {
                    return Err(e).with_context(|| format!("locking pid file {}", path.display()));
                }
            }
        }
        file.set_len(0)
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .and_then(|()| file.sync_all())
            .with_context(|| format!("writing pid file {}", path.display()))?;
        Ok(Acquire::Locked(PidLock {
            _folder: folder,
            _file: file,
        }))
    }
}

/// The outcome of locking the home folder.
enum Folder {
    Locked(Flock<File>),
    /// The file system does not lock folders (NFS emulates `flock` with POSIX locks,
    /// which want a descriptor open for writing): the pid file's lock alone guards.
    Unsupported,
    Held,
}

fn lock_folder(folder: &Path) -> Result<Folder> {
    let dir = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(folder)
        .with_context(|| format!("opening home {}", folder.display()))?;
    match Flock::lock(dir, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(Folder::Locked(lock)),
        Err((_, Errno::EWOULDBLOCK)) => Ok(Folder::Held),
        Err(_) => Ok(Folder::Unsupported),
    }
}

/// The pid of the process holding the lock on `path`, or `None` when no process does
/// (no file, or a stale one).
pub fn holder(path: &Path) -> Result<Option<Pid>> {
    match File::open(path) {
        Ok(file) => file_holder(&file, path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("opening pid file {}", path.display())),
    }
}

/// The pid of the process holding the POSIX lock on the open pid file `file`.
fn file_holder(file: &File, path: &Path) -> Result<Option<Pid>> {
    let mut query = whole_file(libc::F_WRLCK);
    fcntl(file, FcntlArg::F_GETLK(&mut query))
        .with_context(|| format!("querying the lock on pid file {}", path.display()))?;
    Ok((i32::from(query.l_type) != libc::F_UNLCK).then(|| Pid::from_raw(query.l_pid)))
}

/// The pid of the process holding a `flock` on `folder`, from `/proc/locks`; `None` when
/// none does, or when that cannot be read. Anyone who can read a folder can `flock` it
/// (a write lock on the pid file needs write access to it), so only a holder running as
/// the folder's owner counts.
pub fn folder_holder(folder: &Path) -> Option<Pid> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(folder).ok()?;
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    let dev = meta.dev();
    let key = format!(
        "{:02x}:{:02x}:{}",
        nix::sys::stat::major(dev),
        nix::sys::stat::minor(dev),
        meta.ino()
    );
    let pid = locks.lines().find_map(|line| holder_in(line, &key))?;
    let owner = std::fs::metadata(format!("/proc/{pid}")).ok()?.uid();
    (owner == meta.uid()).then_some(pid)
}

/// The pid in one line of `/proc/locks` (`1: FLOCK  ADVISORY  WRITE 4242 fd:01:1234 0
/// EOF`) when it is a granted `flock` on the file `key` (`MAJOR:MINOR:INODE`). Waiting
/// requests, marked `->`, hold nothing.
fn holder_in(line: &str, key: &str) -> Option<Pid> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    match fields[..] {
        [_, "FLOCK", _, _, pid, file, ..] if file == key => pid.parse().ok().map(Pid::from_raw),
        _ => None,
    }
}

fn whole_file(kind: libc::c_int) -> libc::flock {
    // SAFETY: `flock` is a plain C struct of integers, for which all zeroes is valid.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = kind as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock.l_start = 0;
    lock.l_len = 0; // to the end of the file, however long it grows
    lock
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_granted_flock_on_the_file_gives_its_holder() {
        let key = "fe:00:10051661";
        let line = |text: &str| holder_in(text, key).map(Pid::as_raw);
        assert_eq!(
            line("2: FLOCK  ADVISORY  WRITE 3478 fe:00:10051661 0 EOF"),
            Some(3478)
        );
        // Another file, a POSIX lock, a waiting request: none of them.
        assert_eq!(
            line("2: FLOCK  ADVISORY  WRITE 3478 fe:00:10051662 0 EOF"),
            None
        );
        assert_eq!(
            line("3: POSIX  ADVISORY  WRITE 3478 fe:00:10051661 0 EOF"),
            None
        );
        assert_eq!(
            line("2: -> FLOCK  ADVISORY  WRITE 99 fe:00:10051661 0 EOF"),
            None
        );
        assert_eq!(line(""), None);
    }
}
