//! Reading an index: checked whole before anything in it is used, then its entries one
//! at a time, all of them or only the blocks whose filters may hold some names.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use xxhash_rust::xxh3::Xxh3;

use super::codec::{Input, decode_into, read_u64, read_varint};
use super::lookup::{BLOCK, Filter, Probe, filter_len};
use super::{
    END_MAGIC, Entry, FOOT_LEN, Frame, HEAD_LEN, Identity, MAGIC, MAX_INDEX, MAX_SEALED_INDEX,
    MAX_TRAILER, Trailer, VERSION, VERSION_WITHOUT_BLOCKS, VERSION_WITHOUT_NANOS,
};
use crate::encryption::{self, Identity as Key};
use crate::naming::Compression;

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
    /// Where each block of its entries starts (none before version 3, whose entries are
    /// not in blocks).
    blocks: Vec<u64>,
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
        if !(VERSION_WITHOUT_NANOS..=VERSION).contains(&version) {
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
        let mut input = BufReader::new(data.reader(entries_end, trailer_len)?);
        let trailer = read_trailer(&mut input, trailer_len)?;
        let blocks = match version > VERSION_WITHOUT_BLOCKS {
            true => read_blocks(&mut input, trailer.entries, entries_end)?,
            false => Vec::new(),
        };
        drop(input);
        Ok(Index {
            data,
            path: path.to_owned(),
            trailer,
            entries_end,
            version,
            blocks,
        })
    }

    /// The entries, in the archive's order, read one at a time.
    pub fn entries(&self) -> Result<Entries<'_>> {
        self.entries_from(HEAD_LEN, self.entries_end, self.trailer.entries, true)
    }

    /// The `count` entries from `start` on, which the index holds before `end`, read
    /// across blocks when `blocked` (skipping each block's filter and checking that the
    /// next starts where the trailer says).
    fn entries_from(&self, start: u64, end: u64, count: u64, blocked: bool) -> Result<Entries<'_>> {
        let len = end - start;
        Ok(Entries {
            input: Input::new(self.data.reader(start, len)?, len),
            nanos: self.has_nanos(),
            current: Entry::default(),
            read: 0,
            left: count,
            blocks: if blocked { &self.blocks } else { &[] },
            start,
            path: &self.path,
        })
    }

    /// The entries that may be named by one of `names`, in the archive's order, and the
    /// first (which says whether the archive is incremental): only the blocks whose
    /// filters may hold one of the names are read, and what else they hold is given too,
    /// for the caller to pass over. An index without blocks (before version 3) gives
    /// every entry.
    pub fn among(&self, names: &[Vec<u8>]) -> Result<Among<'_>> {
        let probes: Vec<Probe> = names.iter().map(|name| Probe::of(name)).collect();
        let mut parts = Vec::new();
        if self.blocks.is_empty() {
            parts.push((HEAD_LEN, self.entries_end, self.trailer.entries));
        }
        let mut filter = Vec::new();
        for i in 0..self.blocks.len() {
            let (start, entries_end, count) = self.block(i, &mut filter)?;
            if probes.iter().any(|probe| probe.may_be_in(&filter)) {
                parts.push((start, entries_end, count));
            } else if i == 0 {
                parts.push((start, entries_end, 1));
            }
        }
        Ok(Among {
            index: self,
            parts: parts.into_iter(),
            current: None,
        })
    }
}

impl Index {
    /// Where block `i`'s entries start and end, and how many it holds; its filter read
    /// into `filter`.
    fn block(&self, i: usize, filter: &mut Vec<u8>) -> Result<(u64, u64, u64)> {
        let start = self.blocks[i];
        let end = self.blocks.get(i + 1).copied().unwrap_or(self.entries_end);
        let count = (self.trailer.entries - i as u64 * BLOCK).min(BLOCK);
        let entries_end = end
            .checked_sub(filter_len(count))
            .filter(|&at| at >= start)
            .with_context(|| {
                format!(
                    "reading the index {}: its block {i} is too short for its filter",
                    self.path.display()
                )
            })?;
        filter.resize(filter_len(count) as usize, 0);
        self.data.read_exact_at(filter, entries_end)?;
        Ok((start, entries_end, count))
    }

    /// Whether each block's filter is the one its entries' names make: what `verify`
    /// checks, as a filter that missed a name would hide its file from `cat`.
    pub fn filters_match(&self) -> Result<bool> {
        let mut stored = Vec::new();
        let mut made = Filter::default();
        for i in 0..self.blocks.len() {
            let (start, entries_end, count) = self.block(i, &mut stored)?;
            let mut entries = self.entries_from(start, entries_end, count, false)?;
            while let Some(entry) = entries.next_entry() {
                made.add(&entry?.name);
            }
            if made.take() != stored {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Whether it is of the version written now: one of an earlier version is read
    /// still, but finds a file by reading every entry.
    pub fn is_current(&self) -> bool {
        self.version == VERSION
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

/// Reads the start of each block of an index of `entries` entries, which must lie, in
/// order, between its head and `entries_end`.
fn read_blocks(input: &mut impl Read, entries: u64, entries_end: u64) -> Result<Vec<u64>> {
    let count = entries.div_ceil(BLOCK);
    // Grown as they are read (each takes a byte of the trailer at least): what the
    // count claims is not allocated at once.
    let mut blocks = Vec::with_capacity(count.min(1 << 16) as usize);
    let mut previous = 0u64;
    for _ in 0..count {
        let start = previous
            .checked_add(read_varint(input)?)
            .filter(|&at| at > previous && at < entries_end)
            .context("its block table is out of place")?;
        blocks.push(start);
        previous = start;
    }
    if blocks.first().is_some_and(|&first| first != HEAD_LEN) {
        bail!("its first block does not start after its head");
    }
    Ok(blocks)
}

/// The entries of an [`Index`], one at a time.
pub struct Entries<'a> {
    input: Input<Box<dyn Read + 'a>>,
    /// Whether its entries have the nanoseconds of their mtimes.
    nanos: bool,
    /// The entry last read, which the next is read over.
    current: Entry,
    /// How many were read.
    read: u64,
    left: u64,
    /// Where each block starts, when they are read across blocks.
    blocks: &'a [u64],
    /// Where in the index the input starts.
    start: u64,
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
        let block = self.read % BLOCK == 0 && self.read > 0 && !self.blocks.is_empty();
        self.read += 1;
        let decoded = match block {
            true => self.next_block(),
            false => Ok(()),
        }
        .and_then(|()| decode_into(&mut self.input, &mut self.current, self.nanos));
        match decoded {
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

impl Entries<'_> {
    /// Passes over the filter of the block just read, checks that the next block starts
    /// where the trailer says, and starts it: its first entry is against an empty one.
    fn next_block(&mut self) -> Result<()> {
        self.input.skip(filter_len(BLOCK))?;
        let here = self.start + self.input.consumed();
        let number = (self.read - 1) / BLOCK;
        if self.blocks.get(number as usize) != Some(&here) {
            bail!("its block {number} is not where its trailer says");
        }
        self.current = Entry::default();
        Ok(())
    }
}

impl Iterator for Entries<'_> {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Result<Entry>> {
        self.next_entry().map(|entry| entry.cloned())
    }
}

/// The entries an [`Index::among`] gives: those of the blocks that may hold the names.
pub struct Among<'a> {
    index: &'a Index,
    /// Each block to read: where its entries start and end, and how many to read.
    parts: std::vec::IntoIter<(u64, u64, u64)>,
    current: Option<Entries<'a>>,
}

impl Among<'_> {
    /// The next entry, read over the one before, as [`Entries::next_entry`] gives it.
    pub fn next_entry(&mut self) -> Option<Result<&Entry>> {
        while self
            .current
            .as_ref()
            .is_none_or(|entries| entries.left == 0)
        {
            let (start, end, count) = self.parts.next()?;
            // Within one block: nothing to skip.
            match self.index.entries_from(start, end, count, false) {
                Ok(entries) => self.current = Some(entries),
                Err(err) => return Some(Err(err)),
            }
        }
        self.current.as_mut()?.next_entry()
    }
}
