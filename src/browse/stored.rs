//! What a chain's archives stored, kept for the incrementals after them: every entry's
//! numbers in one table and its names in one buffer, so that keeping a full archive of
//! hundreds of thousands of entries allocates nothing for each (and frees nothing for
//! each when done).

use std::collections::HashMap;

use super::names::{Hashed, hash};
use crate::index::Entry;

/// No entry: the end of a chain of entries of the same hash.
const NONE: u32 = u32::MAX;

/// Where bytes lie in [`Stored::bytes`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Span {
    start: usize,
    len: usize,
}

/// One entry kept: its numbers, and its names as spans.
#[derive(Debug, Clone, Copy)]
struct Kept {
    type_flag: u8,
    mode: u32,
    uid: u64,
    gid: u64,
    size: u64,
    mtime: i64,
    mtime_nsec: u32,
    device: (u32, u32),
    header: u64,
    data: u64,
    archive: usize,
    name: Span,
    uname: Span,
    gname: Span,
    link: Span,
    /// The next entry of the same hash.
    next: u32,
}

/// The latest version of each name a chain stored so far.
#[derive(Debug, Default)]
pub struct Stored {
    bytes: Vec<u8>,
    kept: Vec<Kept>,
    /// The first entry of each hash of a name.
    by_hash: HashMap<u64, u32, Hashed>,
}

impl Stored {
    /// Forgets every entry: a new chain starts.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.kept.clear();
        self.by_hash.clear();
    }

    /// Makes room for `count` entries more.
    pub fn reserve(&mut self, count: usize) {
        self.kept.reserve(count);
        self.by_hash.reserve(count);
    }

    /// The number of the entry named `name`, if kept.
    fn find(&self, name: &[u8]) -> Option<usize> {
        let mut at = *self.by_hash.get(&hash(name, 0))?;
        while at != NONE {
            let kept = &self.kept[at as usize];
            if self.at(kept.name) == name {
                return Some(at as usize);
            }
            at = kept.next;
        }
        None
    }

    fn at(&self, span: Span) -> &[u8] {
        &self.bytes[span.start..span.start + span.len]
    }

    /// Keeps `bytes`, or the owner or group name of the entry before when the same.
    fn keep(&mut self, bytes: &[u8], same_as: Option<Span>) -> Span {
        if let Some(span) = same_as.filter(|&s| self.at(s) == bytes) {
            return span;
        }
        let span = Span {
            start: self.bytes.len(),
            len: bytes.len(),
        };
        self.bytes.extend_from_slice(bytes);
        span
    }

    /// Keeps `entry`, of archive `archive` of the chain, over what had its name: it is
    /// found first, as the newest of its hash. What it hides stays kept until the chain
    /// ends (no more than the chain's archives hold).
    pub fn insert(&mut self, entry: &Entry, archive: usize) -> Option<()> {
        let last = self.kept.last().copied();
        let kept = Kept {
            type_flag: entry.type_flag,
            mode: entry.mode,
            uid: entry.uid,
            gid: entry.gid,
            size: entry.size,
            mtime: entry.mtime,
            mtime_nsec: entry.mtime_nsec,
            device: entry.device,
            header: entry.header,
            data: entry.data,
            archive,
            name: self.keep(&entry.name, None),
            uname: self.keep(&entry.uname, last.map(|k| k.uname)),
            gname: self.keep(&entry.gname, last.map(|k| k.gname)),
            link: self.keep(&entry.link, None),
            next: NONE,
        };
        let number = u32::try_from(self.kept.len()).ok().filter(|&n| n != NONE)?;
        let first = self.by_hash.entry(hash(&entry.name, 0)).or_insert(NONE);
        self.kept.push(Kept {
            next: *first,
            ..kept
        });
        *first = number;
        Some(())
    }

    /// Puts the entry named `name` into `e` (reusing its buffers), and returns the
    /// number of the archive of the chain that holds it; `None` if none is kept.
    pub fn get_into(&self, name: &[u8], e: &mut Entry) -> Option<usize> {
        let kept = self.kept[self.find(name)?];
        for (to, span) in [
            (&mut e.name, kept.name),
            (&mut e.uname, kept.uname),
            (&mut e.gname, kept.gname),
            (&mut e.link, kept.link),
        ] {
            to.clear();
            to.extend_from_slice(self.at(span));
        }
        e.listing.clear();
        (e.type_flag, e.mode, e.uid, e.gid) = (kept.type_flag, kept.mode, kept.uid, kept.gid);
        (e.size, e.mtime, e.mtime_nsec) = (kept.size, kept.mtime, kept.mtime_nsec);
        (e.device, e.header, e.data) = (kept.device, kept.header, kept.data);
        Some(kept.archive)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, uname: &str, size: u64) -> Entry {
        Entry {
            name: name.as_bytes().to_vec(),
            type_flag: b'0',
            uname: uname.as_bytes().to_vec(),
            gname: b"staff".to_vec(),
            size,
            mtime_nsec: 5,
            ..Entry::default()
        }
    }

    #[test]
    fn a_name_stored_again_replaces_the_one_before() {
        let mut stored = Stored::default();
        let mut found = Entry::default();
        stored.insert(&entry("a", "me", 1), 0).unwrap();
        stored.insert(&entry("b", "me", 2), 0).unwrap();
        stored.insert(&entry("a", "you", 3), 1).unwrap();
        assert_eq!(stored.get_into(b"a", &mut found), Some(1));
        assert_eq!(found, entry("a", "you", 3));
        assert_eq!(stored.get_into(b"b", &mut found), Some(0));
        assert_eq!(found, entry("b", "me", 2));
        assert_eq!(stored.get_into(b"c", &mut found), None);
        stored.clear();
        assert_eq!(stored.get_into(b"a", &mut found), None);
    }
}
