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

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, fcntl};
use nix::libc;
use nix::unistd::Pid;

use crate::nofollow::{self, Access};

/// How many times the lock is tried when it is refused but has no holder.
const LOCK_TRIES: u32 = 3;

/// The lock a running service holds; released when dropped or when the process exits.
#[derive(Debug)]
pub struct PidLock {
    _file: File,
}

/// What happened when the service tried to take the lock.
#[derive(Debug)]
pub enum Acquire {
    /// The lock is ours, and the file holds our pid.
    Locked(PidLock),
    /// Another process holds it.
    Held(Pid),
}

impl PidLock {
    /// Takes the lock without waiting and writes our pid into the file.
    pub fn acquire(path: &Path) -> Result<Acquire> {
        // A link planted in its place must not get its target truncated, nor a second
        // name of another file.
        let mut file = nofollow::open_file(path, Access::Write, 0o644)
            .with_context(|| format!("opening pid file {}", path.display()))?;
        let mut tries = 0;
        loop {
            match fcntl(&file, FcntlArg::F_SETLK(&whole_file(libc::F_WRLCK))) {
                Ok(_) => break,
                Err(Errno::EACCES | Errno::EAGAIN) => {
                    if let Some(pid) = holder(path)? {
                        return Ok(Acquire::Held(pid));
                    }
                    // The holder exited between our two calls, and the lock is free
                    // again; unless something else (a security policy) refuses it.
                    tries += 1;
                    if tries == LOCK_TRIES {
                        bail!(
                            "locking pid file {}: refused, yet no process holds it",
                            path.display()
                        );
                    }
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("locking pid file {}", path.display()));
                }
            }
        }
        file.set_len(0)
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .and_then(|()| file.sync_all())
            .with_context(|| format!("writing pid file {}", path.display()))?;
        Ok(Acquire::Locked(PidLock { _file: file }))
    }
}

/// The pid of the process holding the lock on `path`, or `None` when no process does
/// (no file, or a stale one).
pub fn holder(path: &Path) -> Result<Option<Pid>> {
    let file = match nofollow::open_file(path, Access::Read, 0) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("opening pid file {}", path.display())),
    };
    let mut query = whole_file(libc::F_WRLCK);
    fcntl(&file, FcntlArg::F_GETLK(&mut query))
        .with_context(|| format!("querying the lock on pid file {}", path.display()))?;
    if i32::from(query.l_type) == libc::F_UNLCK {
        return Ok(None);
    }
    // An open file description lock has no owning process: the kernel says -1.
    if query.l_pid <= 0 {
        bail!(
            "pid file {} is locked by a process the kernel does not name (an open file \
             description lock): not touching it",
            path.display()
        );
    }
    Ok(Some(Pid::from_raw(query.l_pid)))
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
