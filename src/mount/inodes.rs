//! Inode numbers, and the attributes they stand for.
//!
//! Below 2^32: the mount's own folders: 1 the root, then for each schedule seen a pair,
//! its folder and its `latest` link. From 2^32 up: `(slot + 1) << 32 | node`, the node of
//! the tree of a generation given a slot the first time it was looked up. Slots and names
//! are never reused while mounted, so that a number always means the same file; a slot's
//! tree may be dropped (the oldest used, beyond a few) and is built again from the same
//! entries, to the same numbers.

use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{FileAttr, FileType};

use super::tree::Tree;
use super::{Entries, Kind, Snapshot};

/// How many generations' trees are kept built at a time: what bounds the mount's memory,
/// whatever the number of generations browsed.
pub const TREES_KEPT: usize = 8;

/// What an inode number stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ino {
    /// The mount's root.
    Root,
    /// The folder of the schedule of this index.
    Name(usize),
    /// The `latest` link of the schedule of this index.
    Latest(usize),
    /// A node of the generation of this slot (0: the generation's folder).
    Node(usize, usize),
}

impl Ino {
    /// The inode number of this.
    pub fn number(self) -> u64 {
        match self {
            Ino::Root => fuser::FUSE_ROOT_ID,
            Ino::Name(i) => 2 + 2 * i as u64,
            Ino::Latest(i) => 3 + 2 * i as u64,
            Ino::Node(slot, node) => ((slot as u64 + 1) << 32) | node as u64,
        }
    }

    /// What the number `ino` stands for.
    pub fn of(ino: u64) -> Option<Ino> {
        let high = ino >> 32;
        let low = (ino & 0xffff_ffff) as usize;
        match (high, ino) {
            (_, 0) => None,
            (0, 1) => Some(Ino::Root),
            (0, n) if n % 2 == 0 => Some(Ino::Name((n as usize - 2) / 2)),
            (0, n) => Some(Ino::Latest((n as usize - 3) / 2)),
            (slot, _) => Some(Ino::Node(slot as usize - 1, low)),
        }
    }
}

/// A generation's tree, built.
pub struct Loaded {
    /// Where its files' contents come from.
    pub snapshot: Rc<dyn Snapshot>,
    /// Its folders.
    pub tree: Rc<Tree>,
}

/// A generation given a slot.
pub struct Slot {
    /// Its schedule's index.
    pub name: usize,
    /// Its label.
    pub label: String,
    /// When it was made.
    pub made: i64,
    /// Its tree, while built.
    pub loaded: Option<Loaded>,
    /// When it was last used, in requests served.
    pub used: u64,
}

/// The time of `seconds` and `nanos` since 1970, before it for a negative.
pub fn time(seconds: i64, nanos: u32) -> SystemTime {
    let since = Duration::new(seconds.unsigned_abs(), 0);
    let at = if seconds >= 0 {
        UNIX_EPOCH + since
    } else {
        UNIX_EPOCH - since
    };
    at + Duration::from_nanos(u64::from(nanos.min(999_999_999)))
}

/// The attributes of one of the mount's own folders or links.
pub fn own(ino: u64, kind: FileType, made: i64, size: u64) -> FileAttr {
    let at = time(made, 0);
    FileAttr {
        ino,
        size,
        blocks: 0,
        atime: at,
        mtime: at,
        ctime: at,
        crtime: at,
        kind,
        perm: if kind == FileType::Directory {
            0o555
        } else {
            0o777
        },
        nlink: if kind == FileType::Directory { 2 } else { 1 },
        uid: nix::unistd::getuid().as_raw(),
        gid: nix::unistd::getgid().as_raw(),
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

/// The attributes of `node` of a generation made at `made`.
pub fn of_node(ino: u64, tree: &Tree, node: usize, entries: &Entries, made: i64) -> FileAttr {
    let folders = tree.folders_in(node, entries);
    let Some(i) = tree.nodes[node].entry() else {
        let mut attr = own(ino, FileType::Directory, made, 4096);
        attr.nlink = 2 + folders;
        return attr;
    };
    let entry = &entries[i];
    let (kind, size, rdev) = match entry.kind {
        Kind::File | Kind::HardLink => (FileType::RegularFile, entry.size, 0),
        Kind::Folder => (FileType::Directory, 4096, 0),
        Kind::Symlink => (FileType::Symlink, entries.link(i).len() as u64, 0),
        Kind::Fifo => (FileType::NamedPipe, 0, 0),
        Kind::CharDevice(major, minor) => (FileType::CharDevice, 0, device(major, minor)),
        Kind::BlockDevice(major, minor) => (FileType::BlockDevice, 0, device(major, minor)),
    };
    let at = time(entry.mtime, entry.mtime_nanos);
    FileAttr {
        ino,
        size,
        blocks: size.div_ceil(512),
        atime: at,
        mtime: at,
        ctime: at,
        crtime: at,
        kind,
        perm: (entry.mode & 0o7777) as u16,
        nlink: if kind == FileType::Directory {
            2 + folders
        } else {
            tree.nodes[node].links
        },
        uid: entry.uid,
        gid: entry.gid,
        rdev,
        blksize: 4096,
        flags: 0,
    }
}

fn device(major: u32, minor: u32) -> u32 {
    // The kernel's FUSE attributes carry the old 32-bit encoding.
    u32::try_from(libc::makedev(major, minor)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_say_what_they_stand_for() {
        for ino in [
            Ino::Root,
            Ino::Name(0),
            Ino::Latest(0),
            Ino::Name(7),
            Ino::Latest(7),
            Ino::Node(0, 0),
            Ino::Node(3, 12345),
        ] {
            assert_eq!(Ino::of(ino.number()), Some(ino), "{ino:?}");
        }
        assert_eq!(Ino::of(0), None);
        assert_eq!(
            time(-1, 500),
            UNIX_EPOCH - Duration::from_nanos(999_999_500)
        );
    }
}
