//! One entry of an archive as the index keeps it.

use crate::tar::format::trim_slashes;
use crate::tar::{Header, Kind};

/// One entry of an archive, as the index keeps it.
#[derive(Debug, PartialEq, Eq, Default)]
pub struct Entry {
    /// Its name, as stored (a folder's without its trailing `/`).
    pub name: Vec<u8>,
    /// The type flag (`0` file, `5` folder, `2` symbolic link, `1` hard link, `D` a GNU
    /// dumpdir, `V` a volume label...).
    pub type_flag: u8,
    /// Permission bits.
    pub mode: u32,
    /// Owner and group ids.
    pub uid: u64,
    /// The group id.
    pub gid: u64,
    /// Owner name, as stored.
    pub uname: Vec<u8>,
    /// Group name, as stored.
    pub gname: Vec<u8>,
    /// The file's size once restored (a sparse file's full size).
    pub size: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    /// The nanoseconds of that time (0 in an index of version 1).
    pub mtime_nsec: u32,
    /// A link's target.
    pub link: Vec<u8>,
    /// A device's numbers.
    pub device: (u32, u32),
    /// Where the entry starts in the tar stream: its first block (a long name's, if it
    /// has one).
    pub header: u64,
    /// Where its data starts.
    pub data: u64,
    /// A dumpdir's listing of its children (GNU format), empty for anything else.
    pub listing: Vec<u8>,
}

impl Entry {
    /// The entry of `header`, which starts at `header_at` in the tar stream and whose
    /// data starts at `data_at`; `listing` is a dumpdir's (the data that follows it).
    pub fn of(header: &Header, header_at: u64, data_at: u64, listing: &[u8]) -> Entry {
        let mut entry = Entry::default();
        entry.fill(header, header_at, data_at, listing);
        entry
    }

    /// Makes this entry the one of `header`, as [`Entry::of`] does, in its own buffers:
    /// what a maker of many entries does for each.
    ///
    /// One function for both ways an index is made: from a header as read from an
    /// archive, and from one as written ([`Header::stored`]), so that they agree.
    pub fn fill(&mut self, header: &Header, header_at: u64, data_at: u64, listing: &[u8]) {
        let kind = header.kind;
        self.name.clone_from(&header.name);
        self.listing.clear();
        if kind == Kind::DUMPDIR {
            trim_slashes(&mut self.name);
            self.listing.extend_from_slice(listing);
        }
        self.type_flag = match kind {
            Kind::File => b'0',
            Kind::HardLink => b'1',
            Kind::Symlink => b'2',
            Kind::CharDevice => b'3',
            Kind::BlockDevice => b'4',
            Kind::Dir => b'5',
            Kind::Fifo => b'6',
            Kind::Other(flag) => flag,
        };
        (self.mode, self.uid, self.gid) = (header.mode, header.uid, header.gid);
        self.uname.clone_from(&header.uname);
        self.gname.clone_from(&header.gname);
        self.size = if kind == Kind::File {
            header.file_size()
        } else {
            0
        };
        (self.mtime, self.mtime_nsec) = (header.mtime, header.mtime_nsec);
        self.link.clone_from(&header.link);
        self.device = header.device;
        (self.header, self.data) = (header_at, data_at);
    }
}

impl Clone for Entry {
    fn clone(&self) -> Self {
        let mut copy = Entry::default();
        copy.clone_from(self);
        copy
    }

    /// Copies `source` into this entry's own buffers, allocating only where they are
    /// too small: what a reader of many entries does for each.
    fn clone_from(&mut self, source: &Self) {
        let Entry {
            name,
            type_flag,
            mode,
            uid,
            gid,
            uname,
            gname,
            size,
            mtime,
            mtime_nsec,
            link,
            device,
            header,
            data,
            listing,
        } = source;
        self.name.clone_from(name);
        self.uname.clone_from(uname);
        self.gname.clone_from(gname);
        self.link.clone_from(link);
        self.listing.clone_from(listing);
        (self.type_flag, self.mode, self.uid, self.gid) = (*type_flag, *mode, *uid, *gid);
        (self.size, self.mtime, self.mtime_nsec) = (*size, *mtime, *mtime_nsec);
        self.device = *device;
        (self.header, self.data) = (*header, *data);
    }
}

impl Entry {
    /// What the entry is.
    pub fn kind(&self) -> Kind {
        match self.type_flag {
            b'0' | 0 | b'7' | b'S' => Kind::File,
            b'1' => Kind::HardLink,
            b'2' => Kind::Symlink,
            b'3' => Kind::CharDevice,
            b'4' => Kind::BlockDevice,
            b'5' => Kind::Dir,
            b'6' => Kind::Fifo,
            other => Kind::Other(other),
        }
    }

    /// Whether it is a folder, plain or dumpdir.
    pub fn is_dir(&self) -> bool {
        matches!(self.kind(), Kind::Dir) || self.type_flag == crate::tar::DUMPDIR
    }
}
