//! Opening and listing a folder: its children's names and types, sorted, less what is
//! never archived. Done by the walk, or ahead of it by the helper thread.

use std::ffi::{CStr, CString};
use std::os::fd::BorrowedFd;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
    /// The folder as `fstat` saw it just before it was listed; `None` if it could not,
    /// or if the folder had changed too shortly before to tell a later change by its
    /// times (see [`SETTLED`]).
    pub(super) seen: Option<Seen>,
}

/// How long before its listing a folder must have last changed for the listing to be
/// used ahead. A file system's timestamps move in ticks (of a few milliseconds, or of a
/// second on some), so a folder changed just before it was listed could change again
/// within the same tick, and a later `stat` would find the same times.
const SETTLED: Duration = Duration::from_secs(2);

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
    let stat = fstat(&*dir).ok();
    let dev = stat.map(|stat| stat.st_dev);
    let seen = stat.filter(settled).map(|stat| Seen::of(&stat));
    let mut children = Vec::new();
    let mut error = None;
    for child in dir.iter() {
        match child {
            Ok(child) => {
                let file_name = child.file_name();
                let excluded = dev.is_some_and(|dev| exclude.contains(&(dev, child.ino())));
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

/// Whether the folder with status `stat` last changed at least [`SETTLED`] ago.
fn settled(stat: &FileStat) -> bool {
    let changed = Duration::new(
        u64::try_from(stat.st_ctime).unwrap_or(0),
        u32::try_from(stat.st_ctime_nsec).unwrap_or(0),
    );
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .is_ok_and(|now| now.saturating_sub(changed) >= SETTLED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_changed_just_before_it_is_listed_is_not_seen() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), "f").unwrap();
        let mut opened = open_dir(
            nix::fcntl::AT_FDCWD,
            &CString::new(dir.path().as_os_str().as_encoded_bytes()).unwrap(),
        )
        .unwrap();
        let listed = list(&mut opened, &[]);
        assert_eq!(listed.children, [(c"f".to_owned(), Some(Type::File))]);
        let stat = fstat(&opened).unwrap();
        // Just made: not settled, unless the machine stalled for seconds in between.
        assert_eq!(listed.seen.is_some(), settled(&stat));
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let mut at = stat;
        at.st_ctime = now.as_secs() as i64;
        assert!(!settled(&at));
        at.st_ctime -= 3;
        assert!(settled(&at));
        at.st_ctime += 3600;
        assert!(!settled(&at), "a ctime in the future is not settled");
    }
}
