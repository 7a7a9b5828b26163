//! What a restore never writes or removes, whatever DEST is: the files and folders of the
//! home it runs for (its `backups/`, schedule, state, lock and pid files).
//!
//! Two checks, by name and by identity. By name, in the check pass: an entry whose name,
//! under DEST, is one of those paths is refused before anything is written (see
//! [`crate::archive::check::Guarded`]). By identity, in the writing pass: the folders
//! written into are compared, by device and inode, with the home and its `backups/`, so
//! that a DEST reached by another path (a bind mount, a second name) is caught too.

use std::ffi::OsStr;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use crate::archive::check::Guarded;

/// A file's identity: device and inode.
pub type Id = (u64, u64);

/// The identity of the open file `fd`.
pub fn id_of(fd: impl AsFd) -> nix::Result<Id> {
    let st = nix::sys::stat::fstat(fd)?;
    Ok((st.st_dev, st.st_ino))
}

/// What a restore must leave alone: paths, each with what it is for messages.
#[derive(Debug, Clone, Default)]
pub struct Protected {
    /// Folders never written into, replaced or removed (a home's `backups/`).
    pub folders: Vec<(PathBuf, String)>,
    /// Files never written over or removed (a home's schedule, state, lock, pid files).
    pub files: Vec<(PathBuf, String)>,
    /// Folders that may be restored into (a folder entry of their name is fine) but are
    /// never replaced or removed (the home itself).
    pub kept: Vec<(PathBuf, String)>,
}

impl Protected {
    /// The names an archive may not hold when restored into `dest` (canonical), for the
    /// check pass: those of the protected paths that lie under it.
    pub fn names_under(&self, dest: &Path) -> Vec<Guarded> {
        let mut names = Vec::new();
        let mut add = |path: &Path, what: &str, folder_ok: bool, under: bool| {
            let Some(path) = canonical_path(path) else {
                return;
            };
            if let Ok(rel) = path.strip_prefix(dest) {
                if !rel.as_os_str().is_empty() {
                    names.push(Guarded {
                        name: rel.as_os_str().as_bytes().to_vec(),
                        what: what.to_owned(),
                        folder_ok,
                        under,
                    });
                }
            }
        };
        for (path, what) in &self.folders {
            add(path, what, false, true);
        }
        for (path, what) in &self.files {
            add(path, what, false, false);
        }
        for (path, what) in &self.kept {
            add(path, what, true, false);
        }
        names
    }
}

/// `path` with its folder made canonical (the file itself may be missing or a link).
fn canonical_path(path: &Path) -> Option<PathBuf> {
    let parent = std::fs::canonicalize(path.parent()?).ok()?;
    Some(parent.join(path.file_name()?))
}

/// The protected paths by identity, for the writing pass.
#[derive(Debug, Default)]
pub struct Guard {
    /// Folders never written into nor removed.
    into: Vec<(Id, String)>,
    /// Folders never removed.
    kept: Vec<(Id, String)>,
    /// Names in a folder never written nor removed: the folder's identity, the name.
    names: Vec<(Id, Vec<u8>, String)>,
}

impl Guard {
    /// Looks up the identities of what `protected` names, as they are now.
    pub fn new(protected: &Protected) -> Self {
        let mut guard = Guard::default();
        let id = |path: &Path| {
            std::fs::symlink_metadata(path)
                .ok()
                .map(|m| (m.dev(), m.ino()))
        };
        let mut name = |path: &Path, what: &str| {
            if let (Some(parent), Some(leaf)) = (path.parent(), path.file_name()) {
                if let Some(parent) = id(parent) {
                    let leaf = leaf.as_bytes().to_vec();
                    guard.names.push((parent, leaf, what.to_owned()));
                }
            }
        };
        for (path, what) in protected.folders.iter().chain(&protected.files) {
            name(path, what);
        }
        for (path, what) in &protected.folders {
            if let Some(folder) = id(path) {
                guard.into.push((folder, what.clone()));
            }
        }
        for (path, what) in protected.folders.iter().chain(&protected.kept) {
            if let Some(folder) = id(path) {
                guard.kept.push((folder, what.clone()));
            }
        }
        guard
    }

    /// Refuses DEST when it is a protected folder.
    pub fn check_dest(&self, dest: Id, shown: &Path) -> Result<()> {
        if let Some((_, what)) = self
            .into
            .iter()
            .chain(&self.kept)
            .find(|(id, _)| *id == dest)
        {
            bail!("{} is {what}: restore into another folder", shown.display());
        }
        Ok(())
    }

    /// What is protected in writing `leaf` in the folder `dir`, if anything.
    pub fn write(&self, dir: Id, leaf: &[u8]) -> Option<&str> {
        if let Some((_, what)) = self.into.iter().find(|(id, _)| *id == dir) {
            return Some(what);
        }
        self.names
            .iter()
            .find(|(id, name, _)| *id == dir && name.as_slice() == leaf)
            .map(|(_, _, what)| what.as_str())
    }

    /// Refuses writing `leaf` in the folder `dir` when it is protected.
    pub fn check_write(&self, dir: Id, leaf: &OsStr) -> Result<()> {
        if let Some(what) = self.write(dir, leaf.as_bytes()) {
            bail!(
                "refusing to write {}: it would write over or into {what}",
                Path::new(leaf).display()
            );
        }
        Ok(())
    }

    /// Whether the folder `folder` must never be removed.
    pub fn keeps_folder(&self, folder: Id) -> bool {
        self.kept.iter().any(|(id, _)| *id == folder)
    }
}
