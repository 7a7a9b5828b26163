//! The index beside an archive (`NAME.tar.idx`): every entry's name, type, mode, owner,
//! size, mtime, link target and where its header and data start in the tar stream, and,
//! for a compressed archive, where each of its independent frames starts, so that one
//! file can be read without reading the archive before it.
//!
//! The format is described in docs/format.md ("The index"). It is written as the archive
//! is, entry by entry, in blocks that each end with a filter of their names, and read the
//! same way, so that neither holds more than one entry in memory (and a block's filter,
//! and where each block starts); one name is found by reading only the blocks whose
//! filters may hold it. A checksum over the whole file is checked before anything in it
//! is used.

mod build;
mod codec;
mod entries;
mod entry;
mod lookup;
mod read;
pub mod seekable;
mod write;

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::naming::Compression;

pub use build::{build, write_all};
pub use entries::Entries;
pub use entry::Entry;
pub use read::Index;
pub use write::Writer;

/// The first bytes of an index.
const MAGIC: &[u8; 8] = b"BMINDEX\n";
/// The last bytes before its checksum.
const END_MAGIC: &[u8; 8] = b"BMIDXEND";
/// The version of the format written; an index of an earlier version is read still.
const VERSION: u32 = 3;
/// The last version whose entries are not in blocks with filters of their names: its
/// entries are all read to find one.
const VERSION_WITHOUT_BLOCKS: u32 = 2;
/// The version whose entries have no nanoseconds of their mtimes (read as 0).
const VERSION_WITHOUT_NANOS: u32 = 1;
/// Magic, version.
const HEAD_LEN: u64 = 12;
/// Trailer offset, end magic, checksum.
const FOOT_LEN: u64 = 24;
/// How much of the archive's start and end its identity hashes.
const IDENTITY_SPAN: u64 = 64 << 10;
/// An index larger than this is not read: no archive has that many entries.
const MAX_INDEX: u64 = 1 << 40;
/// A sealed index larger than this is not read: it is decrypted into memory, and no
/// archive has that many entries.
const MAX_SEALED_INDEX: u64 = 1 << 30;
/// A trailer larger than this is not read: it holds one pair of numbers a frame.
const MAX_TRAILER: u64 = 64 << 20;

/// The index file of the archive at `archive`: beside it, hidden, its name with `.idx`
/// added (`.NAME.tar.idx`), so that `ls backups` shows the archives alone, as it always
/// has.
pub fn sidecar(archive: &Path) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(archive.file_name().unwrap_or_default());
    name.push(".idx");
    archive.with_file_name(name)
}

/// Whether `file_name` is an index's name, and of which archive file name.
pub fn archive_of(file_name: &str) -> Option<&str> {
    file_name.strip_prefix('.')?.strip_suffix(".idx")
}

/// A compressed archive's independent frame (zstd) or member (gzip): where it starts in
/// the tar stream and in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// Its first byte's offset in the uncompressed tar stream.
    pub tar: u64,
    /// Its offset in the archive file.
    pub file: u64,
}

/// What tells an archive from another: its length and hashes of its start and end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Identity {
    /// The archive file's length.
    pub len: u64,
    /// xxh3 of its first 64 KiB.
    pub head: u64,
    /// xxh3 of its last 64 KiB.
    pub tail: u64,
}

impl Identity {
    /// The identity of the archive open as `file`.
    pub fn of(file: &File) -> io::Result<Self> {
        let len = file.metadata()?.len();
        let span = |from: u64| -> io::Result<u64> {
            let mut buf = vec![0; (len - from).min(IDENTITY_SPAN) as usize];
            file.read_exact_at(&mut buf, from)?;
            Ok(xxhash_rust::xxh3::xxh3_64(&buf))
        };
        Ok(Identity {
            len,
            head: span(0)?,
            tail: span(len.saturating_sub(IDENTITY_SPAN))?,
        })
    }
}

/// What the end of an index says of its archive.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Trailer {
    /// The archive it describes.
    pub identity: Identity,
    /// How that archive is compressed.
    pub compression: Option<Compression>,
    /// The length of its tar stream.
    pub tar_len: u64,
    /// Its frames, in order (none for a plain archive, or one compressed as a single
    /// frame).
    pub frames: Vec<Frame>,
    /// How many entries the index holds.
    pub entries: u64,
}

#[cfg(test)]
mod tests;
