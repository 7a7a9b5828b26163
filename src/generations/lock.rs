//! The lock of one NAME, so that two backups of it never interleave their rotations.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::fcntl::{Flock, FlockArg};

use super::rotates;
use crate::nofollow::{self, Access};
use crate::schedule::Schedule;

/// The lock of one NAME, held while its archive is written and rotated: an exclusive
/// `flock` on `backups/.NAME.lock` (hidden, never listed), released when dropped or by
/// the kernel when the process dies. The file holds the holder's pid, for messages.
#[derive(Debug)]
pub struct NameLock {
    _lock: Flock<File>,
}

/// What [`lock`] got.
#[derive(Debug)]
pub enum Locked {
    /// The backup does not rotate generations: no lock is needed.
    NotNeeded,
    /// The lock, held until dropped.
    Held(NameLock),
    /// Another process holds it (its pid, when it wrote one); only without waiting.
    Busy(Option<u32>),
}

/// The lock file of NAME in `dir`.
pub fn lock_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{name}.lock"))
}

/// Takes the lock of `schedule`'s NAME in `dir` when its backup rotates generations.
///
/// With `waiting`, a held lock is waited for, and `waiting` is told first, with the
/// holder's pid (`run` says so on stderr). Without it, a held lock returns
/// [`Locked::Busy`]: the service does not wait, so that one long backup by hand cannot
/// hold up its other schedules; it runs the postponed one at its next look.
pub fn lock(
    dir: &Path,
    schedule: &Schedule,
    waiting: Option<&mut dyn FnMut(Option<u32>)>,
) -> Result<Locked> {
    if !rotates(dir, schedule)? {
        return Ok(Locked::NotNeeded);
    }
    // Opened once, then the lock file in it: neither is reached through a planted link.
    let folder = nofollow::folder(dir, true)?.expect("created when missing");
    let path = lock_path(dir, &schedule.name);
    let name = path.file_name().expect("a lock file has a name");
    let file = nofollow::open_file_at(folder.as_fd(), name, Access::Write, 0o600)
        .with_context(|| format!("opening lock file {}", path.display()))?;
    let file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => lock,
        Err((file, nix::errno::Errno::EWOULDBLOCK)) => {
            let holder = read_pid(&file);
            let Some(waiting) = waiting else {
                return Ok(Locked::Busy(holder));
            };
            waiting(holder);
            Flock::lock(file, FlockArg::LockExclusive)
                .map_err(|(_, errno)| errno)
                .with_context(|| format!("locking {}", path.display()))?
        }
        Err((_, errno)) => {
            return Err(errno).with_context(|| format!("locking {}", path.display()));
        }
    };
    // For people and messages only; the lock is what counts.
    let mut file = file;
    let _ = file
        .set_len(0)
        .and_then(|()| file.write_all(format!("{}\n", std::process::id()).as_bytes()));
    Ok(Locked::Held(NameLock { _lock: file }))
}

fn read_pid(mut file: &File) -> Option<u32> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}
