//! Exclusive locks that serialise read-modify-write edits of the home's files.

use std::fs::{File, OpenOptions};
use std::path::Path;

use anyhow::{Context, Result};
use nix::fcntl::{Flock, FlockArg};

/// Takes the exclusive lock on `path` (created if missing), waiting for other holders.
///
/// The lock lives on a file of its own, never on the file being edited: edits replace
/// that file by rename, and a lock on a replaced inode protects nothing. It is released
/// when the guard is dropped, or by the kernel if the process dies.
pub fn lock(path: &Path) -> Result<Flock<File>> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("opening lock file {}", path.display()))?;
    Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, errno)| errno)
        .with_context(|| format!("locking {}", path.display()))
}
