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
//! What is kept is one record per folder (a few numbers, in its node of the [`Tree`], and
//! the extended attributes and ACLs of the few folders that have them), the latest
//! archive's winning, not one per file. A default ACL too is set only at the end, so that
//! what the restore makes in the folder does not inherit it: what it holds comes with
//! its own ACLs from the archive.
//!
//! [`Tree`]: super::tree::Tree

use std::os::fd::{AsFd, OwnedFd};

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::sys::stat::Mode;
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid};

use crate::archive::extras::Setter;
use crate::tar::{Extras, Header};

/// What a folder gets at the end, from its latest entry in the archives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Final {
    mode: u32,
    mtime: TimeSpec,
    uid: u64,
    gid: u64,
    name: Box<[u8]>,
    extras: Option<Box<Extras>>,
}

impl Final {
    /// What the folder entry `header` gives its folder.
    pub fn of(header: &Header) -> Self {
        let extras = !header.extras.is_empty();
        Final {
            mode: header.mode,
            mtime: super::entry::mtime(header),
            uid: header.uid,
            gid: header.gid,
            name: if extras {
                header.name.as_slice().into()
            } else {
                Box::default()
            },
            extras: extras.then(|| Box::new(header.extras.clone())),
        }
    }

    /// Gives the folder `dir` its archived owner (when `as_root`), extended attributes
    /// and ACLs (through `extras`), mode and mtime.
    pub fn apply(&self, dir: &OwnedFd, as_root: bool, extras: &mut Setter) -> nix::Result<()> {
        if as_root {
            nix::unistd::fchown(
                dir,
                Some(Uid::from_raw(self.uid as u32)),
                Some(Gid::from_raw(self.gid as u32)),
            )?;
        }
        if let Some(attrs) = &self.extras {
            extras.attributes(dir.as_fd(), attrs, &self.name);
        }
        // After chown, which may clear setgid.
        nix::sys::stat::fchmod(dir, Mode::from_bits_truncate(self.mode))?;
        if let Some(attrs) = &self.extras {
            extras.acls(dir.as_fd(), attrs, &self.name);
        }
        nix::sys::stat::futimens(dir, &TimeSpec::UTIME_OMIT, &self.mtime)
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

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    use nix::fcntl::OFlag;

    use super::*;

    fn open(path: &std::path::Path) -> OwnedFd {
        nix::fcntl::open(path, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty()).unwrap()
    }

    fn mode(path: &std::path::Path) -> u32 {
        fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
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
