//! The record of a backup: for every folder of the tree, in the order the walk meets
//! them, the list of its children with what tells a change (kind, device, inode, size,
//! mtime and ctime to the nanosecond).
//!
//! The file is a stream of blocks, one per folder, so that a backup reads the previous
//! record and writes the new one a folder at a time: memory holds one folder's block,
//! never the whole record. It ends with a checksum of everything before it; a record
//! that does not check is not used (see [`check`]).
//!
//! Layout (integers little-endian): the magic line, the chain's start (`i64`, Unix
//! seconds), the source as written (`u32` length, bytes), the keys the chain is sealed
//! to (`u32` length, bytes: one a line, sorted; none for a chain in clear); then per
//! folder `b'F'`, its
//! entry name (`u32` length, bytes), its child count (`u32`), the length of its
//! children's block (`u32`), and the block: per child its name (`u32` length, bytes),
//! kind (`u8`), dev, ino, size (`u64`), mtime and ctime (`i64` seconds, `u32`
//! nanoseconds); then per file to try again `b'R'`, its folder's entry name and its own
//! name (each `u32` length, bytes); then `b'E'` and the [checksum](Hash) of all bytes
//! before it. A folder's block is read and checked in one piece, and its children are
//! read in place.
//!
//! A file to try again is one the backup listed but could not store whole (it could not
//! be read, or changed while it was): its status is recorded like the others', yet the
//! next backup must store it even if that status has not moved.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::nofollow::{self, Access};

const MAGIC: &[u8] = b"backup incremental record 3\n";

/// The magic line of the layout before, which did not keep the keys: read, and taken
/// for a chain in clear.
const MAGIC_2: &[u8] = b"backup incremental record 2\n";

/// The magic line of the first layout, whose folders had no block length: such a record
/// is told apart from a damaged one, and replaced by the next full backup.
const MAGIC_1: &[u8] = b"backup incremental record 1\n";

/// At most this many files to try again are kept in a record: a damaged count cannot
/// ask for more, and a backup that could not read more keeps the previous record.
pub const MAX_RETRIES: usize = 10_000;

/// Files to try again, as (folder entry name, file name).
pub type Retries = BTreeSet<(Vec<u8>, Vec<u8>)>;

/// A child's bytes in a block, besides its name.
const CHILD_FIXED: usize = 4 + 1 + 8 + 8 + 8 + 12 + 12;

/// What the record keeps of one child of a folder; the name is borrowed from the walk's
/// listing or from the record's block, so that no child costs an allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Child<'n> {
    /// The child's file name.
    pub name: &'n [u8],
    /// File type bits (`st_mode & S_IFMT`) >> 12.
    pub kind: u8,
    /// Device.
    pub dev: u64,
    /// Inode.
    pub ino: u64,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, seconds and nanoseconds.
    pub mtime: (i64, u32),
    /// Status change time, seconds and nanoseconds: moves with chmod, chown, a `touch -d`
    /// and every write, whatever the mtime is set back to.
    pub ctime: (i64, u32),
}

/// The head of a record: what chain it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// When the chain's full backup started (Unix seconds).
    pub chain_start: i64,
    /// The source as the schedule wrote it: another source starts another chain.
    pub source: Vec<u8>,
    /// The public keys the chain's archives are sealed to, one a line, sorted; empty
    /// for a chain in clear: other keys start another chain. `None` in a record of the
    /// layout before, which did not keep them.
    pub keys: Option<Vec<u8>>,
}

/// The record's checksum: FNV-1a's step over 64-bit words rather than bytes, each
/// followed by folding the high half of the state into the low half (a multiply only
/// carries changes upwards, so without it damage to the top bits of two words could
/// cancel out); the last partial word padded and followed by the count of bytes. Each
/// step is a bijection of the state, so any one damaged word changes the sum; it is
/// enough to tell a torn or damaged file, which is all it is for, at a word per multiply.
#[derive(Clone, Copy)]
struct Hash {
    state: u64,
    /// Bytes of the word being gathered, and how many.
    tail: [u8; 8],
    tail_len: usize,
    len: u64,
}

impl Hash {
    const PRIME: u64 = 0x0100_0000_01b3;

    fn new() -> Self {
        Hash {
            state: 0xcbf2_9ce4_8422_2325,
            tail: [0; 8],
            tail_len: 0,
            len: 0,
        }
    }

    fn word(&mut self, word: u64) {
        self.state = (self.state ^ word).wrapping_mul(Self::PRIME);
        self.state ^= self.state >> 32;
    }

    fn update(&mut self, mut bytes: &[u8]) {
        self.len += bytes.len() as u64;
        if self.tail_len > 0 {
            let take = bytes.len().min(8 - self.tail_len);
            self.tail[self.tail_len..self.tail_len + take].copy_from_slice(&bytes[..take]);
            self.tail_len += take;
            bytes = &bytes[take..];
            if self.tail_len < 8 {
                return;
            }
            self.word(u64::from_le_bytes(self.tail));
            self.tail_len = 0;
        }
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            self.word(u64::from_le_bytes(word.try_into().expect("8 bytes")));
        }
        let rest = words.remainder();
        self.tail[..rest.len()].copy_from_slice(rest);
        self.tail_len = rest.len();
    }

    fn sum(mut self) -> u64 {
        self.tail[self.tail_len..].fill(0);
        let last = u64::from_le_bytes(self.tail);
        self.word(last);
        self.word(self.len);
        self.state
    }
}

/// Orders entry names as the walk meets them: component by component, so that `a/b`
/// comes before `a-c` (a folder's contents follow it at once).
pub fn walk_order(a: &[u8], b: &[u8]) -> Ordering {
    a.split(|&c| c == b'/').cmp(b.split(|&c| c == b'/'))
}

/// Writes a record, a folder at a time, into any writer.
pub struct Writer<W: Write> {
    out: BufWriter<W>,
    hash: Hash,
    /// The block being encoded, kept for the next folder's.
    block: Vec<u8>,
}

impl<W: Write> Writer<W> {
    /// Starts a record with its head.
    pub fn new(out: W, head: &Head) -> io::Result<Self> {
        let mut writer = Writer {
            out: BufWriter::with_capacity(256 * 1024, out),
            hash: Hash::new(),
            block: Vec::new(),
        };
        writer.put(MAGIC)?;
        writer.put(&head.chain_start.to_le_bytes())?;
        writer.bytes(&head.source)?;
        writer.bytes(head.keys.as_deref().unwrap_or_default())?;
        Ok(writer)
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.hash.update(bytes);
        self.out.write_all(bytes)
    }

    fn bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.put(&(bytes.len() as u32).to_le_bytes())?;
        self.put(bytes)
    }

    /// Adds one folder (its entry name) and its children, sorted by name.
    pub fn folder(&mut self, name: &[u8], children: &[Child<'_>]) -> io::Result<()> {
        let mut block = std::mem::take(&mut self.block);
        block.clear();
        for child in children {
            block.extend_from_slice(&(child.name.len() as u32).to_le_bytes());
            block.extend_from_slice(child.name);
            block.push(child.kind);
            block.extend_from_slice(&child.dev.to_le_bytes());
            block.extend_from_slice(&child.ino.to_le_bytes());
            block.extend_from_slice(&child.size.to_le_bytes());
            block.extend_from_slice(&child.mtime.0.to_le_bytes());
            block.extend_from_slice(&child.mtime.1.to_le_bytes());
            block.extend_from_slice(&child.ctime.0.to_le_bytes());
            block.extend_from_slice(&child.ctime.1.to_le_bytes());
        }
        let len = u32::try_from(block.len()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "a folder with more than 4 GiB of names",
            )
        });
        let written = len.and_then(|len| {
            self.put(b"F")?;
            self.bytes(name)?;
            self.put(&(children.len() as u32).to_le_bytes())?;
            self.put(&len.to_le_bytes())?;
            self.put(&block)
        });
        self.block = block;
        written
    }

    /// Adds a file to try again, the file `child` of the folder `folder`: call after
    /// the last folder.
    pub fn retry(&mut self, folder: &[u8], child: &[u8]) -> io::Result<()> {
        self.put(b"R")?;
        self.bytes(folder)?;
        self.bytes(child)
    }

    /// Writes out what is buffered, and gives the writer, to start its write-back say.
    pub fn flushed(&mut self) -> io::Result<&mut W> {
        self.out.flush()?;
        Ok(self.out.get_mut())
    }

    /// Ends the record with its checksum and hands back the writer, flushed.
    pub fn finish(mut self) -> io::Result<W> {
        self.put(b"E")?;
        let sum = self.hash.sum().to_le_bytes();
        self.out.write_all(&sum)?;
        self.out.into_inner().map_err(|e| e.into_error())
    }
}

/// Reads a record a folder at a time, in walk order.
pub struct Reader<R: Read> {
    input: BufReader<R>,
    hash: Hash,
    /// The name of the next folder, read but not yet its children.
    pending: Option<Vec<u8>>,
    ended: bool,
    /// The last folder's block, read whole.
    block: Vec<u8>,
    /// The files to try again, read after the last folder.
    retries: Retries,
}

impl<R: Read> Reader<R> {
    /// Reads the head of a record.
    pub fn new(input: R) -> Result<(Self, Head)> {
        let mut reader = Reader {
            input: BufReader::with_capacity(256 * 1024, input),
            hash: Hash::new(),
            pending: None,
            ended: false,
            block: Vec::new(),
            retries: Retries::new(),
        };
        let mut magic = vec![0; MAGIC.len()];
        reader.take(&mut magic)?;
        if magic == MAGIC_1 {
            bail!("a record of an older version of this program");
        }
        if magic != MAGIC && magic != MAGIC_2 {
            bail!("not a record of this program");
        }
        let chain_start = reader.u64()? as i64;
        let source = reader.bytes()?;
        let keys = if magic == MAGIC {
            Some(reader.bytes()?)
        } else {
            None
        };
        Ok((
            reader,
            Head {
                chain_start,
                source,
                keys,
            },
        ))
    }

    fn take(&mut self, buf: &mut [u8]) -> Result<()> {
        self.input
            .read_exact(buf)
            .context("the record ends early")?;
        self.hash.update(buf);
        Ok(())
    }

    fn u8(&mut self) -> Result<u8> {
        let mut b = [0; 1];
        self.take(&mut b)?;
        Ok(b[0])
    }
    fn u32(&mut self) -> Result<u32> {
        let mut b = [0; 4];
        self.take(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn u64(&mut self) -> Result<u64> {
        let mut b = [0; 8];
        self.take(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn bytes(&mut self) -> Result<Vec<u8>> {
        let len = self.u32()? as usize;
        if len > 1 << 20 {
            bail!("a name of {len} bytes: the record is damaged");
        }
        let mut buf = vec![0; len];
        self.take(&mut buf)?;
        Ok(buf)
    }

    /// The next folder's name, if any is left; checks the sum at the end.
    fn peek(&mut self) -> Result<Option<&[u8]>> {
        while self.pending.is_none() && !self.ended {
            match self.u8()? {
                b'F' if self.retries.is_empty() => self.pending = Some(self.bytes()?),
                b'R' => {
                    let entry = (self.bytes()?, self.bytes()?);
                    if self.retries.len() >= MAX_RETRIES || !self.retries.insert(entry) {
                        bail!(
                            "its files to try again are repeated or too many: the record is damaged"
                        );
                    }
                }
                b'E' => {
                    let expected = self.hash.sum();
                    let mut sum = [0; 8];
                    self.input
                        .read_exact(&mut sum)
                        .context("the record ends early")?;
                    if u64::from_le_bytes(sum) != expected {
                        bail!("the record's checksum does not match");
                    }
                    if self.input.read(&mut [0])? != 0 {
                        bail!("bytes follow the record's checksum: the record is damaged");
                    }
                    self.ended = true;
                }
                other => bail!("unexpected byte {other:#x}: the record is damaged"),
            }
        }
        Ok(self.pending.as_deref())
    }

    /// Reads the pending folder's block; its children.
    fn children(&mut self) -> Result<Folder<'_>> {
        self.pending = None;
        let count = self.u32()?;
        let len = u64::from(self.u32()?);
        self.block.clear();
        // Grown as the bytes come, not from the length: a damaged length cannot ask for
        // more memory than the file holds.
        let read = (&mut self.input)
            .take(len)
            .read_to_end(&mut self.block)
            .context("reading the record")?;
        if read as u64 != len {
            bail!("the record ends early");
        }
        self.hash.update(&self.block);
        Ok(Folder {
            count,
            block: &self.block,
        })
    }

    /// The children of folder `name` as the record has them, or `None` if the record has
    /// no such folder. Folders must be asked in walk order; those skipped over (gone
    /// since) are read past.
    pub fn folder(&mut self, name: &[u8]) -> Result<Option<Folder<'_>>> {
        while let Some(next) = self.peek()? {
            match walk_order(next, name) {
                Ordering::Less => {
                    self.children()?;
                }
                Ordering::Equal => return self.children().map(Some),
                Ordering::Greater => return Ok(None),
            }
        }
        Ok(None)
    }

    /// Reads to the end, checking the sum; the files to try again.
    pub fn finish(mut self) -> Result<Retries> {
        while self.peek()?.is_some() {
            self.children()?;
        }
        Ok(self.retries)
    }
}

/// One folder's children as a record holds them, read in place.
pub struct Folder<'b> {
    count: u32,
    block: &'b [u8],
}

impl<'b> Folder<'b> {
    /// The children, in the record's order; an error if the block does not parse.
    pub fn children(&self) -> Result<Vec<Child<'b>>> {
        let mut rest = self.block;
        let mut children = Vec::with_capacity((self.count as usize).min(rest.len() / CHILD_FIXED));
        for _ in 0..self.count {
            let damaged =
                || anyhow::anyhow!("a folder's block does not parse: the record is damaged");
            let (len, after) = rest.split_first_chunk::<4>().ok_or_else(damaged)?;
            let len = u32::from_le_bytes(*len) as usize;
            if after
                .len()
                .checked_sub(CHILD_FIXED - 4)
                .is_none_or(|n| n < len)
            {
                return Err(damaged());
            }
            let (name, fields) = after.split_at(len);
            let u64_at =
                |at: usize| u64::from_le_bytes(fields[at..at + 8].try_into().expect("8 bytes"));
            let u32_at =
                |at: usize| u32::from_le_bytes(fields[at..at + 4].try_into().expect("4 bytes"));
            children.push(Child {
                name,
                kind: fields[0],
                dev: u64_at(1),
                ino: u64_at(9),
                size: u64_at(17),
                mtime: (u64_at(25) as i64, u32_at(33)),
                ctime: (u64_at(37) as i64, u32_at(45)),
            });
            rest = &fields[CHILD_FIXED - 4..];
        }
        if !rest.is_empty() {
            bail!("a folder's block is longer than its children: the record is damaged");
        }
        Ok(children)
    }
}

/// Reads the record at `path` through to its end: its head and files to try again if it
/// is whole and undamaged, `Ok(None)` if there is none, an error saying why it cannot be
/// used otherwise. Streams: memory does not grow with the record.
pub fn check(path: &Path) -> Result<Option<(Head, Retries)>> {
    let file = match nofollow::open_file(path, Access::Read, 0) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    let run = || -> Result<(Head, Retries)> {
        let (reader, head) = Reader::new(file)?;
        let retries = reader.finish()?;
        Ok((head, retries))
    };
    run()
        .with_context(|| format!("reading {}", path.display()))
        .map(Some)
}

#[cfg(test)]
mod tests;
