//! Opening an index: checked whole, its trailer read, before anything in it is used.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use xxhash_rust::xxh3::Xxh3;

use super::codec::{read_u64, read_varint};
use super::entries::{Part, read_blocks};
use super::{
    END_MAGIC, FOOT_LEN, Frame, HEAD_LEN, Identity, MAGIC, MAX_INDEX, MAX_SEALED_INDEX,
    MAX_TRAILER, Trailer, VERSION, VERSION_WITHOUT_BLOCKS, VERSION_WITHOUT_NANOS,
};
use crate::encryption::{self, Identity as Key};
use crate::naming::Compression;

/// An index, checked whole and open for reading its entries.
pub struct Index {
    pub(super) data: Data,
    pub(super) path: PathBuf,
    /// What its end says.
    pub trailer: Trailer,
    /// The version of its format.
    version: u32,
    /// Its entries' blocks (before version 3, one run of them all).
    pub(super) blocks: Vec<Part>,
}

/// Where an index's bytes are: its file, or, for a sealed one, decrypted in memory.
pub(super) enum Data {
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

    pub(super) fn read_exact_at(&self, buf: &mut [u8], at: u64) -> io::Result<()> {
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
    pub(super) fn reader(&self, at: u64, len: u64) -> io::Result<Box<dyn Read + '_>> {
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

    /// Whether its blocks have filters (from version 3).
    pub(super) fn has_filters(&self) -> bool {
        self.version > VERSION_WITHOUT_BLOCKS
    }

    /// Whether it is of the version written now: one of an earlier version is read
    /// still, but finds a file by reading every entry.
    pub fn is_current(&self) -> bool {
        self.version == VERSION
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
        if !(VERSION_WITHOUT_NANOS..=VERSION).contains(&version) {
            bail!(
                "it is of version {version}; this program reads versions \
                 {VERSION_WITHOUT_NANOS} to {VERSION}"
            );
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
        let mut input = BufReader::new(data.reader(entries_end, trailer_len)?);
        let trailer = read_trailer(&mut input, trailer_len)?;
        let blocks = if version > VERSION_WITHOUT_BLOCKS {
            read_blocks(&mut input, trailer.entries, entries_end)?
        } else {
            vec![Part::whole(HEAD_LEN, entries_end, trailer.entries)]
        };
        drop(input);
        Ok(Index {
            data,
            path: path.to_owned(),
            trailer,
            version,
            blocks,
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
