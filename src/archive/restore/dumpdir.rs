//! Removing what a folder holds and its archives do not.
//!
//! A dumpdir's listing, as GNU tar applies it with `--listed-incremental`, says what the
//! folder held at the backup: what is not listed (deleted or renamed since), or listed as
//! the other kind (a folder where a file is listed, or the reverse), goes, so that the
//! entries that follow can take its place and the restored entries are those of the last
//! archive. Only what this restore wrote goes, though: what DEST held before stays, unless
//! `--delete` asks for a mirror. Then what DEST held goes at once only when it stands in
//! the way (listed as the other kind); at the end of the restore, each folder the
//! archives hold that DEST held before loses whatever the restore did not write, so that
//! what a later archive of a chain holds again is not removed and counted on the way.
//!
//! Nothing a [`Guard`] protects is ever removed, and no link is followed: what is removed
//! is a child of the folder, and folders are removed by descending into them with
//! `O_NOFOLLOW`.

use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{Context, Result};
use nix::dir::{Dir, Type};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, SFlag};
use nix::unistd::UnlinkatFlags;

use super::guard::{Guard, id_of};
use super::tree::Tree;
use crate::tar::dumpdir::{FOLDER, Listing};

/// What a purge removes from a folder.
pub enum Purge<'a> {
    /// What the listing does not hold as it is, if this restore wrote it; when the flag
    /// (`--delete`) is set, also what DEST held that is listed as the other kind, in the
    /// way of what comes.
    Unlisted(&'a Listing<'a>, bool),
    /// Whatever this restore did not write (`--delete`, at the end).
    Unwritten,
}

/// Removes from the tree's current folder what `how` says. Returns how many entries
/// that DEST held before the restore were removed (a folder and each entry in it).
pub fn purge(tree: &mut Tree, guard: &Guard, how: Purge<'_>) -> Result<u64> {
    let (node, dir, id) = tree.here()?;
    let dir = dir.try_clone()?;
    let mut removed = 0;
    for (name, is_dir) in children(&dir)? {
        let written = tree.is_written(node, &name);
        let goes = match &how {
            Purge::Unlisted(listing, delete) => match listing.flag(&name) {
                Some(flag) if (flag == FOLDER) == is_dir => false,
                // In the way of what the listing says comes.
                Some(_) => written || *delete,
                // What DEST held waits for the end: a later archive may hold it.
                None => written,
            },
            Purge::Unwritten => !written,
        };
        if !goes || guard.write(id, &name).is_some() {
            continue;
        }
        let leaf = OsStr::from_bytes(&name);
        let count = remove_any(&dir, leaf, is_dir, guard).with_context(|| {
            format!(
                "removing {}, which the archives do not hold",
                Path::new(leaf).display()
            )
        })?;
        if !written {
            removed += count;
        }
        tree.removed(node, &name);
    }
    Ok(removed)
}

/// The children of the folder `dir`, each with whether it is a folder.
fn children(dir: &OwnedFd) -> Result<Vec<(Vec<u8>, bool)>> {
    let mut listing = Dir::openat(
        dir.as_fd(),
        c".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .context("listing a folder")?;
    let mut names = Vec::new();
    for child in listing.iter() {
        let child = child.context("listing a folder")?;
        let name = child.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        let is_dir = match child.file_type() {
            Some(t) => t == Type::Directory,
            None => {
                nix::sys::stat::fstatat(dir, OsStr::from_bytes(name), AtFlags::AT_SYMLINK_NOFOLLOW)
                    .is_ok_and(|st| st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFDIR.bits())
            }
        };
        names.push((name.to_vec(), is_dir));
    }
    Ok(names)
}

/// Removes a file, or a folder and all it holds but what `guard` keeps (a folder holding
/// a kept one stays, with it). Returns how many entries went.
fn remove_any(parent: &OwnedFd, leaf: &OsStr, is_dir: bool, guard: &Guard) -> Result<u64> {
    if !is_dir {
        return match nix::unistd::unlinkat(parent, leaf, UnlinkatFlags::NoRemoveDir) {
            Ok(()) => Ok(1),
            Err(Errno::ENOENT) => Ok(0),
            Err(e) => Err(e.into()),
        };
    }
    let fd = nix::fcntl::openat(
        parent,
        leaf,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let id = id_of(&fd)?;
    if guard.keeps_folder(id) {
        return Ok(0);
    }
    // A read-only folder's entries cannot be removed until it is writable.
    let _ = nix::sys::stat::fchmod(&fd, Mode::from_bits_truncate(0o700));
    let mut removed = 0;
    for (name, is_dir) in children(&fd)? {
        if guard.write(id, &name).is_none() {
            removed += remove_any(&fd, OsStr::from_bytes(&name), is_dir, guard)?;
        }
    }
    drop(fd);
    match nix::unistd::unlinkat(parent, leaf, UnlinkatFlags::RemoveDir) {
        Ok(()) => Ok(removed + 1),
        // Something kept inside.
        Err(Errno::ENOENT | Errno::ENOTEMPTY | Errno::EEXIST) => Ok(removed),
        Err(e) => Err(e.into()),
    }
}
