//! The index beside an archive (`NAME.tar.idx`): every entry's name, type, mode, owner,
//! size, mtime, link target and where its header and data start in the tar stream, and,
//! for a compressed archive, where each of its independent frames starts, so that one
//! file can be read without reading the archive before it.
//!
//! The format is described in docs/format.md ("The index"). It is written as the archive
//! is, entry by entry, and read the same way, so that neither holds more than one entry
//! in memory; a checksum over the whole file is checked before anything in it is used.

mod build;
mod codec;
mod entry;
pub mod seekable;

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use xxhash_rust::xxh3::Xxh3;

use crate::encryption::{self, Identity as Key};
use crate::naming::Compression;

pub use build::{build, write_all};
use codec::{EntryEncoder, Input, decode_into, read_u64, read_varint, write_varint};
pub use entry::Entry;

/// The first bytes of an index.
const MAGIC: &[u8; 8] = b"BMINDEX\n";
/// The last bytes before its checksum.
const END_MAGIC: &[u8; 8] = b"BMIDXEND";
/// The version of the format written; an index of another version is not read, but for
/// version 1, which has no nanoseconds of mtimes (read as 0).
const VERSION: u32 = 2;
/// The version before, read still.
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

/// Writes an index, entry by entry, then its trailer.
pub struct Writer<W: Write> {
    out: Hashing<W>,
    encoder: EntryEncoder,
    entries: u64,
}

impl<W: Write> Writer<W> {
    /// Starts an index in `out`.
    pub fn new(out: W) -> io::Result<Self> {
        Self::of_version(out, VERSION)
    }

    /// Starts an index of format `version` in `out`: an earlier one's, for the tests that
    /// it is read still.
    fn of_version(out: W, version: u32) -> io::Result<Self> {
        let mut out = Hashing::new(out);
        out.write_all(MAGIC)?;
        out.write_all(&version.to_le_bytes())?;
        Ok(Writer {
            out,
            encoder: EntryEncoder::new(version != VERSION_WITHOUT_NANOS),
            entries: 0,
        })
    }

    /// Adds the next entry of the archive.
    pub fn push(&mut self, entry: &Entry) -> io::Result<()> {
        self.entries += 1;
        self.encoder.encode(entry, &mut self.out)
    }

    /// Ends the index with what it says of the archive (its entry count is the writer's
    /// own); returns the output.
    pub fn finish(mut self, mut trailer: Trailer) -> io::Result<W> {
        trailer.entries = self.entries;
        let start = self.out.len;
        let mut t = Vec::new();
        t.push(match trailer.compression {
            None | Some(Compression::None) => 0,
            Some(Compression::Gzip) => 1,
            Some(Compression::Zstd) => 2,
        });
        for n in [
            trailer.identity.len,
            trailer.identity.head,
            trailer.identity.tail,
        ] {
            t.extend_from_slice(&n.to_le_bytes());
        }
        write_varint(&mut t, trailer.tar_len);
        write_varint(&mut t, trailer.entries);
        write_varint(&mut t, trailer.frames.len() as u64);
        let mut previous = Frame { tar: 0, file: 0 };
        for frame in &trailer.frames {
            write_varint(&mut t, frame.tar - previous.tar);
            write_varint(&mut t, frame.file - previous.file);
            previous = *frame;
        }
        self.out.write_all(&t)?;
        self.out.write_all(&start.to_le_bytes())?;
        self.out.write_all(END_MAGIC)?;
        let sum = self.out.hash.digest();
        self.out.inner.write_all(&sum.to_le_bytes())?;
        Ok(self.out.inner)
    }
}

/// A writer that hashes and counts what goes through.
struct Hashing<W: Write> {
    inner: W,
    hash: Xxh3,
    len: u64,
}

impl<W: Write> Hashing<W> {
    fn new(inner: W) -> Self {
        Hashing {
            inner,
            hash: Xxh3::new(),
            len: 0,
        }
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// An index, checked whole and open for reading its entries.
pub struct Index {
    data: Data,
    path: PathBuf,
    /// What its end says.
    pub trailer: Trailer,
    /// Where the entries end (the trailer starts).
    entries_end: u64,
    /// The version of its format.
    version: u32,
}

/// Where an index's bytes are: its file, or, for a sealed one, decrypted in memory.
enum Data {
    File(File),
    Memory(Vec<u8>),
}

impl Data {
    fn len(&self) -> io::Result<u64> {
        match self {
            Data::File(file) => Ok(file.metadata()?.len()),
            Data::Memory(bytes) => Ok(bytes.len() as u64),
        }
    }

    fn read_exact_at(&self, buf: &mut [u8], at: u64) -> io::Result<()> {
        match self {
            Data::File(file) => file.read_exact_at(buf, at),
            Data::Memory(bytes) => {
                let part = usize::try_from(at)
                    .ok()
                    .and_then(|at| bytes.get(at..at.checked_add(buf.len())?))
                    .ok_or(io::ErrorKind::UnexpectedEof)?;
                buf.copy_from_slice(part);
                Ok(())
            }
        }
    }

    /// `len` bytes from `at` on.
    fn reader(&self, at: u64, len: u64) -> io::Result<Box<dyn Read + '_>> {
        match self {
            Data::File(file) => {
                let mut file = file;
                file.seek(SeekFrom::Start(at))?;
                Ok(Box::new(file.take(len)))
            }
            Data::Memory(bytes) => {
                let mut part = bytes.get(at as usize..).unwrap_or_default();
                part = &part[..part.len().min(usize::try_from(len).unwrap_or(usize::MAX))];
                Ok(Box::new(part))
            }
        }
    }
}

impl Index {
    /// Whether its entries have the nanoseconds of their mtimes: not in an index written
    /// by an earlier version, whose are 0.
    pub fn has_nanos(&self) -> bool {
        self.version != VERSION_WITHOUT_NANOS
    }

    /// Opens the index at `path` and checks it: its magic, version and checksum, and that
    /// it describes the archive open as `archive`. Fails, saying why, otherwise. The index
    /// of an encrypted archive is sealed: `key` opens it.
    pub fn open(path: &Path, archive: &File, key: Option<&Key>) -> Result<Self> {
        let file = crate::tar::open_archive(path)?;
        let data = match key {
            None => Ok(Data::File(file)),
            Some(key) => unseal(file, path, key).map(Data::Memory),
        };
        let index = data
            .and_then(|data| Self::check(data, path))
            .with_context(|| format!("reading the index {}", path.display()))?;
        let found = Identity::of(archive)
            .with_context(|| format!("reading the archive {} describes", path.display()))?;
        if found != index.trailer.identity {
            bail!(
                "the index {} does not describe its archive (it was made for another one)",
                path.display()
            );
        }
        Ok(index)
    }

    /// Checks the index in `data`, and reads its trailer.
    fn check(data: Data, path: &Path) -> Result<Self> {
        let len = data.len()?;
        if !(HEAD_LEN + FOOT_LEN..=MAX_INDEX).contains(&len) {
            bail!("it is {len} bytes long, which no index is");
        }
        let mut head = [0u8; HEAD_LEN as usize];
        data.read_exact_at(&mut head, 0)?;
        if &head[..8] != MAGIC {
            bail!("it is not an index (no magic number)");
        }
        let version = u32::from_le_bytes(head[8..12].try_into().expect("4 bytes"));
        if version != VERSION && version != VERSION_WITHOUT_NANOS {
            bail!("it is of version {version}; this program reads version {VERSION}");
        }
        let mut foot = [0u8; FOOT_LEN as usize];
        data.read_exact_at(&mut foot, len - FOOT_LEN)?;
        if &foot[8..16] != END_MAGIC {
            bail!("it was cut short (no end marker)");
        }
        let stored = u64::from_le_bytes(foot[16..24].try_into().expect("8 bytes"));
        let mut hash = Xxh3::new();
        let mut reader = BufReader::with_capacity(1 << 16, data.reader(0, len - 8)?);
        io::copy(&mut reader, &mut HashSink(&mut hash))?;
        drop(reader);
        if hash.digest() != stored {
            bail!("its checksum does not match (it is damaged)");
        }
        let entries_end = u64::from_le_bytes(foot[..8].try_into().expect("8 bytes"));
        let trailer_len = (len - FOOT_LEN)
            .checked_sub(entries_end)
            .filter(|&n| entries_end >= HEAD_LEN && n <= MAX_TRAILER)
            .context("its trailer is out of place")?;
        let trailer = read_trailer(
            &mut BufReader::new(data.reader(entries_end, trailer_len)?),
            trailer_len,
        )?;
        Ok(Index {
            data,
            path: path.to_owned(),
            trailer,
            entries_end,
            version,
        })
    }

    /// The entries, in the archive's order, read one at a time.
    pub fn entries(&self) -> Result<Entries<'_>> {
        let len = self.entries_end - HEAD_LEN;
        Ok(Entries {
            input: Input::new(self.data.reader(HEAD_LEN, len)?, len),
            nanos: self.version != VERSION_WITHOUT_NANOS,
            current: Entry::default(),
            left: self.trailer.entries,
            path: &self.path,
        })
    }
}

/// The plaintext of the sealed index open as `file`: refused, before anything is
/// allocated, when its header says it is larger than any index.
fn unseal(mut file: File, path: &Path, key: &Key) -> Result<Vec<u8>> {
    let header = encryption::inspect(&mut file, path)?;
    if header.plaintext_bytes > MAX_SEALED_INDEX {
        bail!(
            "it is {} bytes long once decrypted, more than any index",
            header.plaintext_bytes
        );
    }
    let mut opened = encryption::open(file, path, key)?;
    // Grown as it is read: what the header claims is not allocated at once.
    let mut plain = Vec::new();
    (&mut opened)
        .take(MAX_SEALED_INDEX + 1)
        .read_to_end(&mut plain)
        .context("decrypting it")?;
    Ok(plain)
}

/// Feeds what is written to a hash.
struct HashSink<'a>(&'a mut Xxh3);

impl Write for HashSink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Reads a trailer of `len` bytes.
fn read_trailer(input: &mut impl Read, len: u64) -> Result<Trailer> {
    let mut kind = [0u8; 1];
    input.read_exact(&mut kind)?;
    let compression = match kind[0] {
        0 => Compression::None,
        1 => Compression::Gzip,
        2 => Compression::Zstd,
        other => bail!("its trailer names an unknown compression ({other})"),
    };
    let identity = Identity {
        len: read_u64(input)?,
        head: read_u64(input)?,
        tail: read_u64(input)?,
    };
    let tar_len = read_varint(input)?;
    let entries = read_varint(input)?;
    let count = read_varint(input)?;
    // Each frame takes at least two bytes of the trailer.
    if count > len / 2 {
        bail!("its trailer claims {count} frames, more than it can hold");
    }
    // Grown as they are read: what the count claims is not allocated at once.
    let mut frames = Vec::with_capacity(count.min(1 << 16) as usize);
    let mut previous = Frame { tar: 0, file: 0 };
    for _ in 0..count {
        let tar = previous.tar.checked_add(read_varint(input)?);
        let file = previous.file.checked_add(read_varint(input)?);
        let (Some(tar), Some(file)) = (tar, file) else {
            bail!("its frame table overflows");
        };
        previous = Frame { tar, file };
        frames.push(previous);
    }
    Ok(Trailer {
        identity,
        compression: Some(compression),
        tar_len,
        frames,
        entries,
    })
}

/// The entries of an [`Index`], one at a time.
pub struct Entries<'a> {
    input: Input<Box<dyn Read + 'a>>,
    /// Whether its entries have the nanoseconds of their mtimes.
    nanos: bool,
    /// The entry last read, which the next is read over.
    current: Entry,
    left: u64,
    path: &'a Path,
}

impl Entries<'_> {
    /// The next entry, read over the one before (no copy is made): for reading many
    /// quickly.
    pub fn next_entry(&mut self) -> Option<Result<&Entry>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        match decode_into(&mut self.input, &mut self.current, self.nanos) {
            Ok(()) => Some(Ok(&self.current)),
            Err(err) => {
                self.left = 0;
                Some(Err(err.context(format!(
                    "reading an entry of the index {}",
                    self.path.display()
                ))))
            }
        }
    }
}

impl Iterator for Entries<'_> {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Result<Entry>> {
        self.next_entry().map(|entry| entry.cloned())
    }
}

#[cfg(test)]
mod tests;
