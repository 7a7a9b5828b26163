//! Folder modes, owners and times during a restore, set once at the very end.
//!
//! A folder's archived mode may be read-only (`chmod 555`), and writing into a folder
//! changes its mtime: so neither can be set before everything inside it is written. For a
//! chain that means after its last archive, since any incremental may add, remove or
//! replace entries in any folder an earlier archive restored. Until then a folder the
//! restore made stays `rwx` for its owner, and one it finds already in place (from an
//! earlier restore into the same DEST, with `--force`) is made so when the archive names
//! it. GNU tar fails there when run as a user other than root: it sets each folder's mode
//! at the end of each archive, and an incremental then cannot write into a read-only one.
//!
//! What is kept is one record per folder (its path and four numbers), the latest archive's
//! winning, not one per file.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid};

use crate::tar::Header;

/// What a folder gets at the end, from its latest entry in the archives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Final {
    mode: u32,
    mtime: i64,
    uid: u64,
    gid: u64,
}

/// The folders restored so far, by their path's parts, with what each gets at the end.
#[derive(Debug, Default)]
pub struct Folders {
    // Ordered by path: a folder's descendants sort after it, so going backwards sets every
    // folder after all that is inside it, and a read-only or unsearchable one never stops
    // the walk down to another.
    pending: BTreeMap<Vec<Vec<u8>>, Final>,
}

impl Folders {
    /// Records that the folder `parts` is restored from `header`; a later archive's entry
    /// for the same folder replaces an earlier one's.
    pub fn restored(&mut self, parts: &[&[u8]], header: &Header) {
        let owned = parts.iter().map(|p| p.to_vec()).collect();
        let end = Final {
            mode: header.mode,
            mtime: header.mtime,
            uid: header.uid,
            gid: header.gid,
        };
        self.pending.insert(owned, end);
    }

    /// Gives every folder still in place its archived owner (when `as_root`), mode and
    /// mtime, deepest first. One that a later archive removed, or replaced by something
    /// else (a link above all, which is never followed), is skipped.
    pub fn finish(self, root: &OwnedFd, as_root: bool) -> Result<()> {
        for (parts, end) in self.pending.iter().rev() {
            let shown = || String::from_utf8_lossy(&parts.join(&b'/')).into_owned();
            let Some(dir) = reach(root, parts).with_context(|| format!("opening {}", shown()))?
            else {
                continue;
            };
            let set = || -> nix::Result<()> {
                if as_root {
                    nix::unistd::fchown(
                        &dir,
                        Some(Uid::from_raw(end.uid as u32)),
                        Some(Gid::from_raw(end.gid as u32)),
                    )?;
                }
                // After chown, which may clear setgid.
                nix::sys::stat::fchmod(&dir, Mode::from_bits_truncate(end.mode))?;
                nix::sys::stat::futimens(&dir, &TimeSpec::UTIME_OMIT, &TimeSpec::new(end.mtime, 0))
            };
            set().with_context(|| format!("setting the mode and time of {}", shown()))?;
        }
        Ok(())
    }
}

/// Makes the folder `dir`, found already in place, writable and searchable by its owner
/// so that entries can be written and removed in it; its archived mode comes at the end.
/// A folder of another user is left as it is: writing in it then fails and says why.
pub fn make_writable(dir: &OwnedFd) -> Result<()> {
    let st = nix::sys::stat::fstat(dir).context("reading a folder's mode")?;
    let mode = st.st_mode & 0o7777;
    if mode & 0o700 == 0o700 {
        return Ok(());
    }
    match nix::sys::stat::fchmod(dir, Mode::from_bits_truncate(mode | 0o700)) {
        Ok(()) | Err(Errno::EPERM) => Ok(()),
        Err(e) => Err(e).context("making a folder writable"),
    }
}

/// Opens the folder `parts` under `root` one level at a time without following links or
/// creating anything; `None` when it is gone or no longer a folder.
fn reach(root: &OwnedFd, parts: &[Vec<u8>]) -> nix::Result<Option<OwnedFd>> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut dir = root.try_clone().map_err(|_| Errno::EMFILE)?;
    for part in parts {
        dir = match nix::fcntl::openat(&dir, OsStr::from_bytes(part), flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP) => return Ok(None),
            Err(e) => return Err(e),
        };
    }
    Ok(Some(dir))
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};

    use super::*;
    use crate::tar::Kind;

    fn header(mode: u32, mtime: i64) -> Header {
        let mut h = Header::new(Vec::new(), Kind::Dir);
        h.mode = mode;
        h.mtime = mtime;
        h
    }

    fn open(path: &std::path::Path) -> OwnedFd {
        nix::fcntl::open(path, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty()).unwrap()
    }

    fn mode(path: &std::path::Path) -> u32 {
        fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn the_latest_entry_wins_and_folders_are_set_deepest_first() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::create_dir_all(root.join("a/b/c")).unwrap();
        fs::create_dir_all(root.join("a/d")).unwrap();
        let mut folders = Folders::default();
        // Recorded parents first, as archives hold them.
        folders.restored(&[b"a"], &header(0o700, 1));
        folders.restored(&[b"a"], &header(0o555, 1_000_000_000));
        folders.restored(&[b"a", b"b"], &header(0o500, 1_000_000_001));
        folders.restored(&[b"a", b"b", b"c"], &header(0o750, 1_000_000_002));
        folders.restored(&[b"a", b"d"], &header(0o2755, 1_000_000_003));
        folders.finish(&open(root), false).unwrap();
        for (path, want, mtime) in [
            ("a", 0o555, 1_000_000_000),
            ("a/b", 0o500, 1_000_000_001),
            ("a/b/c", 0o750, 1_000_000_002),
            ("a/d", 0o2755, 1_000_000_003),
        ] {
            let path = root.join(path);
            assert_eq!(mode(&path), want, "{}", path.display());
            assert_eq!(fs::metadata(&path).unwrap().mtime(), mtime);
        }
        fs::set_permissions(root.join("a"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(root.join("a/b"), fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn a_folder_gone_or_replaced_by_a_link_is_skipped_and_the_link_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("dest");
        let outside = tmp.path().join("outside");
        fs::create_dir_all(&root).unwrap();
        fs::create_dir(&outside).unwrap();
        fs::set_permissions(&outside, fs::Permissions::from_mode(0o755)).unwrap();
        symlink(&outside, root.join("was_a_folder")).unwrap();
        fs::write(root.join("now_a_file"), "f").unwrap();
        fs::set_permissions(root.join("now_a_file"), fs::Permissions::from_mode(0o644)).unwrap();
        let mut folders = Folders::default();
        folders.restored(&[b"was_a_folder"], &header(0o500, 5));
        folders.restored(&[b"now_a_file"], &header(0o500, 5));
        folders.restored(&[b"removed", b"deep"], &header(0o500, 5));
        folders.finish(&open(&root), false).unwrap();
        assert_eq!(mode(&outside), 0o755);
        assert_ne!(fs::metadata(&outside).unwrap().mtime(), 5);
        assert_eq!(mode(&root.join("now_a_file")), 0o644);
        assert!(!root.join("removed").exists(), "nothing is created");
    }

    #[test]
    fn a_folder_found_read_only_is_made_writable_for_its_owner_only() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ro");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o555)).unwrap();
        make_writable(&open(&dir)).unwrap();
        assert_eq!(mode(&dir), 0o755);
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o050)).unwrap();
        make_writable(&open(&dir)).unwrap();
        assert_eq!(mode(&dir), 0o750);
    }
}
