//! Writing an index: its entries, in blocks each followed by the filter of its names
//! (from version 3), then its trailer, foot and checksum.

use std::io::{self, Write};

use xxhash_rust::xxh3::Xxh3;

use super::codec::{EntryEncoder, write_varint};
use super::lookup::{BLOCK, Filter};
use super::{
    END_MAGIC, Entry, Frame, MAGIC, Trailer, VERSION, VERSION_WITHOUT_BLOCKS, VERSION_WITHOUT_NANOS,
};
use crate::naming::Compression;

/// Writes an index, entry by entry, then its trailer.
pub struct Writer<W: Write> {
    out: Hashing<W>,
    encoder: EntryEncoder,
    entries: u64,
    /// Whether the entries are written in blocks, each with its filter (from version 3).
    blocked: bool,
    /// The filter of the block being written.
    filter: Filter,
    /// Where each block's entries start: a number a block, kept for the trailer.
    blocks: Vec<u64>,
}

impl<W: Write> Writer<W> {
    /// Starts an index in `out`.
    pub fn new(out: W) -> io::Result<Self> {
        Self::of_version(out, VERSION)
    }

    /// Starts an index of format `version` in `out`: an earlier one's, for the tests that
    /// it is read still.
    pub(super) fn of_version(out: W, version: u32) -> io::Result<Self> {
        let mut out = Hashing::new(out);
        out.write_all(MAGIC)?;
        out.write_all(&version.to_le_bytes())?;
        Ok(Writer {
            out,
            encoder: EntryEncoder::new(version != VERSION_WITHOUT_NANOS),
            entries: 0,
            blocked: version > VERSION_WITHOUT_BLOCKS,
            filter: Filter::default(),
            blocks: Vec::new(),
        })
    }

    /// Adds the next entry of the archive.
    pub fn push(&mut self, entry: &Entry) -> io::Result<()> {
        if self.blocked {
            if self.entries % BLOCK == 0 {
                self.end_block()?;
                self.blocks.push(self.out.len);
                // Each block is read on its own: its first entry against an empty one.
                self.encoder.restart();
            }
            self.filter.add(&entry.name);
        }
        self.entries += 1;
        self.encoder.encode(entry, &mut self.out)
    }

    /// Writes the filter of the block just written, if there is one.
    fn end_block(&mut self) -> io::Result<()> {
        if self.filter.len() > 0 {
            self.out.write_all(&self.filter.take())?;
        }
        Ok(())
    }

    /// Ends the index with what it says of the archive (its entry count is the writer's
    /// own); returns the output.
    pub fn finish(mut self, mut trailer: Trailer) -> io::Result<W> {
        self.end_block()?;
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
        if self.blocked {
            // Their number follows from the entries'.
            let mut previous = 0;
            for &block in &self.blocks {
                write_varint(&mut t, block - previous);
                previous = block;
            }
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
