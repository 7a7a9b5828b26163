//! The record of a backup: for every folder of the tree, in the order the walk meets
//! them, the list of its children with what tells a change (kind, device, inode, size,
//! mtime and ctime to the nanosecond).
//!
//! The file is a stream of blocks, one per folder, so that a backup reads the previous
//! record and writes the new one a folder at a time: memory holds the blocks of the
//! folders on the current path, never the whole record. It ends with a checksum of
//! everything before it; a record that does not check is not used (see [`check`]).
//!
//! Layout (integers little-endian): the magic line, the chain's start (`i64`, Unix
//! seconds), the source as written (`u32` length, bytes); then per folder `b'F'`, its
//! entry name (`u32` length, bytes), its child count (`u32`), and per child its name
//! (`u32` length, bytes), kind (`u8`), dev, ino, size (`u64`), mtime and ctime (`i64`
//! seconds, `u32` nanoseconds); then `b'E'` and the FNV-1a hash of all bytes before it.

use std::cmp::Ordering;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};

const MAGIC: &[u8] = b"backup incremental record 1\n";

/// What the record keeps of one child of a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Child {
    /// The child's file name.
    pub name: Vec<u8>,
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
}

/// FNV-1a, 64 bits: enough to tell a torn or damaged file, which is all it is for.
#[derive(Clone, Copy)]
struct Hash(u64);

impl Hash {
    fn new() -> Self {
        Hash(0xcbf2_9ce4_8422_2325)
    }
    fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
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
}

impl<W: Write> Writer<W> {
    /// Starts a record with its head.
    pub fn new(out: W, head: &Head) -> io::Result<Self> {
        let mut writer = Writer {
            out: BufWriter::with_capacity(256 * 1024, out),
            hash: Hash::new(),
        };
        writer.put(MAGIC)?;
        writer.put(&head.chain_start.to_le_bytes())?;
        writer.bytes(&head.source)?;
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
    pub fn folder<'c>(
        &mut self,
        name: &[u8],
        children: impl ExactSizeIterator<Item = &'c Child>,
    ) -> io::Result<()> {
        self.put(b"F")?;
        self.bytes(name)?;
        self.put(&(children.len() as u32).to_le_bytes())?;
        for child in children {
            self.bytes(&child.name)?;
            self.put(&[child.kind])?;
            self.put(&child.dev.to_le_bytes())?;
            self.put(&child.ino.to_le_bytes())?;
            self.put(&child.size.to_le_bytes())?;
            self.put(&child.mtime.0.to_le_bytes())?;
            self.put(&child.mtime.1.to_le_bytes())?;
            self.put(&child.ctime.0.to_le_bytes())?;
            self.put(&child.ctime.1.to_le_bytes())?;
        }
        Ok(())
    }

    /// Ends the record with its checksum and hands back the writer, flushed.
    pub fn finish(mut self) -> io::Result<W> {
        self.put(b"E")?;
        let sum = self.hash.0.to_le_bytes();
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
}

impl<R: Read> Reader<R> {
    /// Reads the head of a record.
    pub fn new(input: R) -> Result<(Self, Head)> {
        let mut reader = Reader {
            input: BufReader::with_capacity(256 * 1024, input),
            hash: Hash::new(),
            pending: None,
            ended: false,
        };
        let mut magic = vec![0; MAGIC.len()];
        reader.take(&mut magic)?;
        if magic != MAGIC {
            bail!("not a record of this program");
        }
        let chain_start = reader.i64()?;
        let source = reader.bytes()?;
        Ok((
            reader,
            Head {
                chain_start,
                source,
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
    fn i64(&mut self) -> Result<i64> {
        Ok(self.u64()? as i64)
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
        if self.pending.is_none() && !self.ended {
            match self.u8()? {
                b'F' => self.pending = Some(self.bytes()?),
                b'E' => {
                    let expected = self.hash.0;
                    let mut sum = [0; 8];
                    self.input
                        .read_exact(&mut sum)
                        .context("the record ends early")?;
                    if u64::from_le_bytes(sum) != expected {
                        bail!("the record's checksum does not match");
                    }
                    self.ended = true;
                }
                other => bail!("unexpected byte {other:#x}: the record is damaged"),
            }
        }
        Ok(self.pending.as_deref())
    }

    fn children(&mut self) -> Result<Vec<Child>> {
        self.pending = None;
        let count = self.u32()?;
        let mut children = Vec::with_capacity(count.min(4096) as usize);
        for _ in 0..count {
            children.push(Child {
                name: self.bytes()?,
                kind: self.u8()?,
                dev: self.u64()?,
                ino: self.u64()?,
                size: self.u64()?,
                mtime: (self.i64()?, self.u32()?),
                ctime: (self.i64()?, self.u32()?),
            });
        }
        Ok(children)
    }

    /// The children of folder `name` as the record has them, or `None` if the record has
    /// no such folder. Folders must be asked in walk order; those skipped over (gone
    /// since) are read past.
    pub fn folder(&mut self, name: &[u8]) -> Result<Option<Vec<Child>>> {
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

    /// Reads to the end, checking the sum.
    pub fn finish(mut self) -> Result<()> {
        while self.peek()?.is_some() {
            self.children()?;
        }
        Ok(())
    }
}

/// Reads the record at `path` through to its end: its head if it is whole and
/// undamaged, `Ok(None)` if there is none, an error saying why it cannot be used
/// otherwise. Streams: memory does not grow with the record.
pub fn check(path: &Path) -> Result<Option<Head>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    let run = || -> Result<Head> {
        let (reader, head) = Reader::new(file)?;
        reader.finish()?;
        Ok(head)
    };
    run()
        .with_context(|| format!("reading {}", path.display()))
        .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn child(name: &str, ino: u64) -> Child {
        Child {
            name: name.as_bytes().to_vec(),
            kind: 8,
            dev: 1,
            ino,
            size: 3,
            mtime: (10, 5),
            ctime: (11, 999_999_999),
        }
    }

    fn sample() -> Vec<u8> {
        let head = Head {
            chain_start: 1_700_000_000,
            source: b"data".to_vec(),
        };
        let mut w = Writer::new(Vec::new(), &head).unwrap();
        w.folder(b"data", [child("a", 1), child("b", 2)].iter())
            .unwrap();
        w.folder(b"data/a", [child("x", 3)].iter()).unwrap();
        w.folder(b"data/a-c", [].iter()).unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn folders_read_back_in_walk_order_skipping_gone_ones() {
        let bytes = sample();
        let (mut r, head) = Reader::new(&bytes[..]).unwrap();
        assert_eq!(head.chain_start, 1_700_000_000);
        assert_eq!(head.source, b"data");
        // `data/a` is skipped over (gone); `data/new` was never there.
        let top = r.folder(b"data").unwrap().unwrap();
        assert_eq!(top, vec![child("a", 1), child("b", 2)]);
        assert_eq!(r.folder(b"data/0").unwrap(), None);
        assert_eq!(r.folder(b"data/a-c").unwrap(), Some(vec![]));
        assert_eq!(r.folder(b"data/new").unwrap(), None);
        r.finish().unwrap();
    }

    #[test]
    fn walk_order_puts_a_folders_contents_right_after_it() {
        assert_eq!(walk_order(b"a/b", b"a-c"), Ordering::Less);
        assert_eq!(walk_order(b"a", b"a/b"), Ordering::Less);
        assert_eq!(walk_order(b"", b"a"), Ordering::Less);
    }

    #[test]
    fn any_damage_is_caught() {
        let bytes = sample();
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            let read = Reader::new(&bad[..]).and_then(|(r, _)| r.finish());
            assert!(read.is_err(), "a flipped byte {i} went unnoticed");
        }
        for len in 0..bytes.len() {
            let read = Reader::new(&bytes[..len]).and_then(|(r, _)| r.finish());
            assert!(read.is_err(), "a record cut at {len} went unnoticed");
        }
    }
}
