//! The home's own files and folders, opened without following links.
//!
//! Whoever can write a home can plant a symbolic link where the programs open a file
//! (a lock, the pid file, a log), and a program run as root would then truncate, create
//! or append to the link's target: any file on the machine. So every file of a home is
//! opened with `O_NOFOLLOW`, and checked on the open descriptor (a regular file; one name
//! only, for the files written into), never by its path. `backups/` and `logs/` may be
//! links to another disk, followed only when their target passes [`trust::open`].

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::Path;

use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::fcntl::{OFlag, open, openat};
use nix::sys::stat::{Mode, SFlag, fstat};

use crate::trust;

/// How a file of the home is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// For reading; a missing file is `NotFound`.
    Read,
    /// Created if missing, read-only: a lock file, only ever `flock`ed.
    Lock,
    /// Created if missing, for reading and writing in place (the pid file, a NAME's
    /// lock); refused when the file has another name.
    Write,
    /// Created if missing, for appending (a log); refused when the file has another name.
    Append,
}

impl Access {
    fn flags(self) -> OFlag {
        let base = OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
        base | match self {
            Access::Read => OFlag::O_RDONLY,
            Access::Lock => OFlag::O_RDONLY | OFlag::O_CREAT,
            Access::Write => OFlag::O_RDWR | OFlag::O_CREAT,
            Access::Append => OFlag::O_WRONLY | OFlag::O_APPEND | OFlag::O_CREAT,
        }
    }
}

/// Opens the file at `path` without following a link there, created with permission
/// bits `mode` (before the umask) where `access` creates it, and checks the open file.
pub fn open_file(path: &Path, access: Access, mode: u32) -> io::Result<File> {
    let fd = open(path, access.flags(), Mode::from_bits_truncate(mode)).map_err(refusal)?;
    checked(fd, access)
}

/// Like [`open_file`], for the file `name` in the open folder `dir`.
pub fn open_file_at(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    access: Access,
    mode: u32,
) -> io::Result<File> {
    let fd = openat(dir, name, access.flags(), Mode::from_bits_truncate(mode)).map_err(refusal)?;
    checked(fd, access)
}

/// Reads the whole file at `path` without following a link there; `None` when there is
/// no file.
pub fn read(path: &Path) -> io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let mut file = match open_file(path, Access::Read, 0) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(Some(bytes))
}

/// The error for a link or a special file where a file of the home should be.
fn refusal(errno: Errno) -> io::Error {
    match errno {
        // O_NOFOLLOW met a link as the last component.
        Errno::ELOOP => io::Error::other("it is a symbolic link, which is never followed"),
        // O_NONBLOCK: a FIFO with no reader, which a writer would wait on forever.
        Errno::ENXIO => io::Error::other("it is not a regular file"),
        errno => io::Error::from(errno),
    }
}

/// Checks the open file: a regular file, and for the files written into, one name only
/// (a hard link planted to another file would have that file written).
fn checked(fd: OwnedFd, access: Access) -> io::Result<File> {
    let stat = fstat(&fd).map_err(io::Error::from)?;
    if stat.st_mode & SFlag::S_IFMT.bits() != SFlag::S_IFREG.bits() {
        return Err(io::Error::other("it is not a regular file"));
    }
    if matches!(access, Access::Write | Access::Append) && stat.st_nlink > 1 {
        return Err(io::Error::other(format!(
            "it has {} names (hard links), and is not written through another",
            stat.st_nlink
        )));
    }
    // O_NONBLOCK only kept the open from waiting on a FIFO; a regular file ignores it.
    Ok(File::from(fd))
}

/// Opens the home's folder at `path` (`backups/`, `logs/`), creating it when missing
/// and `create` is set; `None` when it is missing and not created.
///
/// A real folder is opened without following anything. A symbolic link (a folder on
/// another disk) is followed only to a folder that [`trust::open`] accepts: owned by this
/// user or root and writable by no one else, and so is every folder above it; otherwise
/// the error says which folder failed and why.
pub fn folder(path: &Path, create: bool) -> Result<Option<OwnedFd>> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    for _ in 0..3 {
        match open(path, flags, Mode::empty()) {
            Ok(fd) => return Ok(Some(fd)),
            Err(Errno::ENOENT) if !create => return Ok(None),
            Err(Errno::ENOENT) => match nix::unistd::mkdir(path, Mode::from_bits_truncate(0o777)) {
                Ok(()) | Err(Errno::EEXIST) => continue,
                Err(e) => {
                    return Err(e).with_context(|| format!("creating folder {}", path.display()));
                }
            },
            Err(Errno::ELOOP | Errno::ENOTDIR) => return linked(path).map(Some),
            Err(e) => return Err(e).with_context(|| format!("opening folder {}", path.display())),
        }
    }
    bail!("{} keeps changing while it is opened", path.display())
}

/// Follows the link at `path` to a trusted folder, or says why not.
fn linked(path: &Path) -> Result<OwnedFd> {
    let meta = fs::symlink_metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if !meta.file_type().is_symlink() {
        bail!("{} is not a folder", path.display());
    }
    let target = fs::canonicalize(path)
        .with_context(|| format!("{} is a symbolic link that leads nowhere", path.display()))?;
    let opened = trust::open(&target, trust::Want::Folder).with_context(|| {
        format!(
            "{} is a symbolic link to {}, followed only to a folder that no one but this \
             user and root can change",
            path.display(),
            target.display()
        )
    })?;
    Ok(opened.fd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    #[test]
    fn links_fifos_and_second_names_are_refused_and_their_targets_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        let link = dir.path().join("link");
        symlink(&target, &link).unwrap();
        for access in [Access::Read, Access::Lock, Access::Write, Access::Append] {
            let err = open_file(&link, access, 0o600).unwrap_err();
            assert!(
                err.to_string().contains("symbolic link"),
                "{access:?}: {err}"
            );
            assert!(!target.exists(), "{access:?} created the link's target");
        }
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600)).unwrap();
        for access in [Access::Read, Access::Lock, Access::Write, Access::Append] {
            let err = open_file(&fifo, access, 0o600).unwrap_err();
            assert_eq!(err.to_string(), "it is not a regular file", "{access:?}");
        }
        fs::write(&target, "x").unwrap();
        fs::hard_link(&target, dir.path().join("second")).unwrap();
        let second = dir.path().join("second");
        assert!(open_file(&second, Access::Write, 0o600).is_err());
        assert!(open_file(&second, Access::Append, 0o600).is_err());
        assert!(open_file(&second, Access::Lock, 0o600).is_ok());
        assert_eq!(fs::read_to_string(&target).unwrap(), "x");
        assert_eq!(read(&dir.path().join("none")).unwrap(), None);
    }

    #[test]
    fn a_folder_link_is_followed_only_to_a_trusted_folder() {
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tmp");
        fs::create_dir_all(&base).unwrap();
        let dir = tempfile::tempdir_in(base).unwrap();
        let good = dir.path().join("good");
        let open = dir.path().join("open");
        fs::create_dir(&good).unwrap();
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
        symlink(&good, dir.path().join("to-good")).unwrap();
        symlink(&open, dir.path().join("to-open")).unwrap();
        assert!(
            folder(&dir.path().join("to-good"), false)
                .unwrap()
                .is_some()
        );
        let err = folder(&dir.path().join("to-open"), true).unwrap_err();
        assert!(format!("{err:#}").ends_with("(mode 777)"), "{err:#}");
        assert!(
            folder(&dir.path().join("missing"), false)
                .unwrap()
                .is_none()
        );
        assert!(folder(&dir.path().join("made"), true).unwrap().is_some());
        assert!(dir.path().join("made").is_dir());
    }
}
