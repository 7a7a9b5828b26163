//! Exclusive locks that serialise read-modify-write edits of the home's files.

use std::fs::File;
use std::path::Path;

use anyhow::{Context, Result};
use nix::fcntl::{Flock, FlockArg};

use crate::nofollow::{self, Access};

/// Takes the exclusive lock on `path` (created if missing), waiting for other holders.
///
/// The lock lives on a file of its own, never on the file being edited: edits replace
/// that file by rename, and a lock on a replaced inode protects nothing. It is released
/// when the guard is dropped, or by the kernel if the process dies.
///
/// A link planted at `path` is never followed, nor its target created: the lock is
/// refused, saying so. The file is opened read-only (a lock needs no more), so even a
/// second name of another file there changes nothing.
pub fn lock(path: &Path) -> Result<Flock<File>> {
    let file = nofollow::open_file(path, Access::Lock, 0o644)
        .with_context(|| format!("opening lock file {}", path.display()))?;
    Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, errno)| errno)
        .with_context(|| format!("locking {}", path.display()))
}
