//! Applying a dumpdir on extraction, as GNU tar does with `--listed-incremental`: what a
//! folder holds and its dumpdir does not list is removed (deleted or renamed since), and
//! so is what is listed as the other kind (a folder where a file is listed, or the
//! reverse), so that the entries that follow can take its place.

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

use crate::tar::dumpdir::{self, FOLDER};

/// Removes from the folder `dir` what its dumpdir `data` does not list as it is.
/// Returns how many entries were removed. Never follows a link: what is removed is a
/// child of `dir`, and folders are removed by descending into them with `O_NOFOLLOW`.
pub fn purge(dir: &OwnedFd, data: &[u8]) -> Result<u64> {
    let listed = dumpdir::parse(data);
    let mut removed = 0;
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
        if name != b"." && name != b".." {
            names.push((name.to_vec(), child.file_type()));
        }
    }
    for (name, file_type) in names {
        let leaf = OsStr::from_bytes(&name);
        let is_dir = match file_type {
            Some(t) => t == Type::Directory,
            None => nix::sys::stat::fstatat(dir, leaf, AtFlags::AT_SYMLINK_NOFOLLOW)
                .is_ok_and(|st| st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFDIR.bits()),
        };
        let keep = match listed.binary_search_by(|(_, n)| (*n).cmp(name.as_slice())) {
            Ok(i) => (listed[i].0 == FOLDER) == is_dir,
            Err(_) => false,
        };
        if !keep {
            remove_any(dir, leaf, is_dir).with_context(|| {
                format!(
                    "removing {}, which the archive's folder listing does not hold",
                    Path::new(leaf).display()
                )
            })?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Removes a file, or a folder and all it holds.
fn remove_any(parent: &OwnedFd, leaf: &OsStr, is_dir: bool) -> Result<()> {
    if !is_dir {
        return match nix::unistd::unlinkat(parent, leaf, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(e.into()),
        };
    }
    let fd = nix::fcntl::openat(
        parent,
        leaf,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // A read-only folder's entries cannot be removed until it is writable.
    let _ = nix::sys::stat::fchmod(&fd, Mode::from_bits_truncate(0o700));
    purge(&fd, &[0])?;
    drop(fd);
    match nix::unistd::unlinkat(parent, leaf, UnlinkatFlags::RemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purge_removes_what_is_not_listed_or_listed_as_the_other_kind() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("kept"), "k").unwrap();
        std::fs::write(root.join("gone"), "g").unwrap();
        std::fs::create_dir_all(root.join("old/deep")).unwrap();
        std::fs::write(root.join("old/deep/f"), "f").unwrap();
        std::fs::create_dir(root.join("now_a_file")).unwrap();
        std::fs::write(root.join("now_a_dir"), "d").unwrap();
        std::os::unix::fs::symlink("kept", root.join("link")).unwrap();
        let fd =
            nix::fcntl::open(root, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty()).unwrap();
        let removed = purge(&fd, b"Nkept\0Ynow_a_file\0Dnow_a_dir\0Ylink\0\0").unwrap();
        assert_eq!(removed, 4);
        let mut left: Vec<_> = std::fs::read_dir(root)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["kept", "link"]);
    }
}
