//! Opening and listing a folder: its children's names and types, sorted, less what is
//! never archived. Done by the walk, or ahead of it by the helper thread.

use std::ffi::{CStr, CString};
use std::os::fd::BorrowedFd;

use nix::dir::{Dir, Type};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{FileStat, Mode, fstat};

/// A folder's children as listed: name and, when the listing tells it, type.
pub(super) type Listing = Vec<(CString, Option<Type>)>;

/// What listing a folder gave.
pub(super) struct Listed {
    /// The children, sorted by name.
    pub(super) children: Listing,
    /// Why the listing stopped short, if it did; what was listed before is kept.
    pub(super) error: Option<Errno>,
    /// The folder as `fstat` saw it just before it was listed, if it could.
    pub(super) seen: Option<Seen>,
}

/// What tells a folder, and whether its entries changed: a folder listed ahead is used
/// only if the walk, when it gets there, finds the same folder unchanged since.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Seen {
    dev: u64,
    ino: u64,
    /// Modification and status change times, seconds and nanoseconds: an entry made,
    /// removed or renamed in the folder moves both.
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Seen {
    /// What `stat` tells of a folder.
    pub(super) fn of(stat: &FileStat) -> Self {
        Seen {
            dev: stat.st_dev,
            ino: stat.st_ino,
            mtime: (stat.st_mtime, stat.st_mtime_nsec),
            ctime: (stat.st_ctime, stat.st_ctime_nsec),
        }
    }
}

/// Opens the folder `file_name` of `parent` for listing, never through a link.
pub(super) fn open_dir(parent: BorrowedFd<'_>, file_name: &CStr) -> nix::Result<Dir> {
    Dir::openat(
        parent,
        file_name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// Lists `dir`, leaving out `.`, `..` and what `exclude` names (device, inode): the
/// backups folder and the pid file are recognised from the listing, before anything
/// opens them. Sorted, so that one tree always gives the same archive.
pub(super) fn list(dir: &mut Dir, exclude: &[(u64, u64)]) -> Listed {
    let seen = fstat(&*dir).map(|stat| Seen::of(&stat)).ok();
    let mut children = Vec::new();
    let mut error = None;
    for child in dir.iter() {
        match child {
            Ok(child) => {
                let file_name = child.file_name();
                let excluded = seen.is_some_and(|seen| exclude.contains(&(seen.dev, child.ino())));
                if file_name != c"." && file_name != c".." && !excluded {
                    children.push((file_name.to_owned(), child.file_type()));
                }
            }
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    children.sort_unstable_by(|a: &(CString, _), b| a.0.cmp(&b.0));
    Listed {
        children,
        error,
        seen,
    }
}
