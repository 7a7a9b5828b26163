//! How an index entry is written: each field against the entry before it (a name as the
//! bytes it shares with the previous one and the rest, owners and modes only when they
//! change, times and offsets as differences), numbers as LEB128 varints. Every length
//! read is bounded by what the index has left and by the most a tar archive holds.

use std::io::{self, Read, Write};

use anyhow::{Context, Result, bail};

use super::Entry;
use crate::tar::dumpdir::MAX_LISTING;

/// The longest name or link target read: the most a long-name entry may hold.
const MAX_NAME: u64 = 1 << 20;

const SAME_UNAME: u8 = 1;
const SAME_GNAME: u8 = 1 << 1;
const SAME_UID: u8 = 1 << 2;
const SAME_GID: u8 = 1 << 3;
const SAME_MODE: u8 = 1 << 4;
const HAS_LINK: u8 = 1 << 5;
const HAS_LISTING: u8 = 1 << 6;
const HAS_DEVICE: u8 = 1 << 7;

/// Appends `n` as a LEB128 varint.
pub(super) fn write_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Reads a LEB128 varint of at most ten bytes.
pub(super) fn read_varint(input: &mut impl Read) -> io::Result<u64> {
    let mut n = 0u64;
    for shift in (0..70).step_by(7) {
        let mut byte = [0u8; 1];
        input.read_exact(&mut byte)?;
        let part = u64::from(byte[0] & 0x7f);
        if shift == 63 && part > 1 {
            break;
        }
        n |= part << shift;
        if byte[0] & 0x80 == 0 {
            return Ok(n);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "a number of more than 64 bits",
    ))
}

/// Reads a little-endian u64.
pub(super) fn read_u64(input: &mut impl Read) -> io::Result<u64> {
    let mut bytes = [0u8; 8];
    input.read_exact(&mut bytes)?;
    Ok(u64::from_le_bytes(bytes))
}

/// The 7-bit groups of a varint of at most eight bytes, given as a little-endian word
/// (its high bits, past its last byte, zero), packed into its number.
fn pack_groups(word: u64) -> u64 {
    let x = word & 0x7f7f_7f7f_7f7f_7f7f;
    let x = ((x & 0x7f00_7f00_7f00_7f00) >> 1) | (x & 0x007f_007f_007f_007f);
    let x = ((x & 0x3fff_0000_3fff_0000) >> 2) | (x & 0x0000_3fff_0000_3fff);
    ((x & 0x0fff_ffff_0000_0000) >> 4) | (x & 0x0000_0000_0fff_ffff)
}

fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

fn unzigzag(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

/// The entries part of an index, read through a buffer of its own: entries are decoded
/// a byte at a time, which a reader behind a trait would make slow. Knows how many bytes
/// are left, to bound every length by it.
pub(super) struct Input<R: Read> {
    inner: R,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    /// Bytes left, buffered or not.
    pub(super) left: u64,
}

impl<R: Read> Input<R> {
    /// Reads `len` bytes of `inner`.
    pub(super) fn new(inner: R, len: u64) -> Self {
        let mut input = Input {
            inner,
            buf: Vec::new(),
            pos: 0,
            end: 0,
            left: len,
        };
        input.reset_buffer(len);
        input
    }

    /// Grows the buffer, when it is smaller, to `len` or its largest size (a block of an
    /// index is small: no more is zeroed than it reads).
    fn reset_buffer(&mut self, len: u64) {
        let size = len.min(1 << 16) as usize;
        if self.buf.len() < size {
            self.buf.resize(size, 0);
        }
    }

    /// Reads `len` bytes of `inner` from now on, the buffer kept (and grown when it is
    /// smaller than both `len` and its largest size).
    pub(super) fn reset(&mut self, inner: R, len: u64) {
        self.reset_buffer(len);
        (self.inner, self.pos, self.end, self.left) = (inner, 0, 0, len);
    }

    fn refill(&mut self) -> io::Result<()> {
        if self.left == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let want = self
            .buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut self.buf[..want])?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        (self.pos, self.end) = (0, n);
        Ok(())
    }

    fn byte(&mut self) -> io::Result<u8> {
        if self.pos == self.end {
            self.refill()?;
        }
        let b = self.buf[self.pos];
        self.pos += 1;
        self.left -= 1;
        Ok(b)
    }

    #[inline]
    fn varint(&mut self) -> io::Result<u64> {
        // Most are one byte; most others are read from the buffer eight bytes at once,
        // without a branch per byte: where the first byte without its high bit is, then
        // the 7-bit groups packed.
        if let Some(&byte) = self.buf[..self.end].get(self.pos)
            && byte < 0x80
        {
            self.pos += 1;
            self.left -= 1;
            return Ok(u64::from(byte));
        }
        if let Some(bytes) = self.buf[..self.end].get(self.pos..self.pos + 8) {
            let word = u64::from_le_bytes(bytes.try_into().expect("eight bytes"));
            let ends = !word & 0x8080_8080_8080_8080;
            if ends != 0 {
                let len = ends.trailing_zeros() / 8 + 1;
                let used = word & (u64::MAX >> (64 - 8 * len));
                self.pos += len as usize;
                self.left -= u64::from(len);
                return Ok(pack_groups(used));
            }
        }
        self.varint_slowly()
    }

    /// A varint near the buffer's end, or of more than eight bytes: a byte at a time.
    #[cold]
    #[inline(never)]
    fn varint_slowly(&mut self) -> io::Result<u64> {
        let mut n = 0u64;
        for shift in (0..70).step_by(7) {
            let byte = self.byte()?;
            let part = u64::from(byte & 0x7f);
            if shift == 63 && part > 1 {
                break;
            }
            n |= part << shift;
            if byte & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "a number of more than 64 bits",
        ))
    }

    /// Appends `len` bytes to `out`: at most `max`, and no more than the input has left.
    fn append(&mut self, len: u64, max: u64, what: &str, out: &mut Vec<u8>) -> Result<()> {
        if len > max || len > self.left {
            bail!("{what} of {len} bytes, more than the index or an archive holds");
        }
        let mut want = len as usize;
        out.reserve(want);
        while want > 0 {
            if self.pos == self.end {
                self.refill()?;
            }
            let n = want.min(self.end - self.pos);
            out.extend_from_slice(&self.buf[self.pos..self.pos + n]);
            self.pos += n;
            self.left -= n as u64;
            want -= n;
        }
        Ok(())
    }

    /// Reads a length-prefixed byte string of at most `max` bytes into `out`.
    fn string(&mut self, max: u64, what: &str, out: &mut Vec<u8>) -> Result<()> {
        let len = self.varint()?;
        out.clear();
        self.append(len, max, what, out)
    }
}

/// Writes entries, each against the one before.
pub(super) struct EntryEncoder {
    previous: Entry,
    buf: Vec<u8>,
    /// Whether the nanoseconds of mtimes are written (not in version 1).
    nanos: bool,
}

impl EntryEncoder {
    /// An encoder writing the nanoseconds of mtimes when `nanos`.
    pub(super) fn new(nanos: bool) -> Self {
        EntryEncoder {
            previous: Entry::default(),
            buf: Vec::new(),
            nanos,
        }
    }

    /// Starts a block: the next entry is written against an empty one, so that it can
    /// be read without those before it.
    pub(super) fn restart(&mut self) {
        self.previous = Entry::default();
    }

    /// Writes `entry` to `out`.
    pub(super) fn encode(&mut self, entry: &Entry, out: &mut impl Write) -> io::Result<()> {
        let prev = &self.previous;
        let b = &mut self.buf;
        b.clear();
        let mut flags = 0;
        for (same, bit) in [
            (entry.uname == prev.uname, SAME_UNAME),
            (entry.gname == prev.gname, SAME_GNAME),
            (entry.uid == prev.uid, SAME_UID),
            (entry.gid == prev.gid, SAME_GID),
            (entry.mode == prev.mode, SAME_MODE),
            (!entry.link.is_empty(), HAS_LINK),
            (!entry.listing.is_empty(), HAS_LISTING),
            (entry.device != (0, 0), HAS_DEVICE),
        ] {
            if same {
                flags |= bit;
            }
        }
        b.push(flags);
        b.push(entry.type_flag);
        let shared = entry
            .name
            .iter()
            .zip(&prev.name)
            .take_while(|(a, b)| a == b)
            .count();
        write_varint(b, shared as u64);
        write_varint(b, (entry.name.len() - shared) as u64);
        b.extend_from_slice(&entry.name[shared..]);
        if flags & SAME_MODE == 0 {
            write_varint(b, u64::from(entry.mode));
        }
        if flags & SAME_UID == 0 {
            write_varint(b, entry.uid);
        }
        if flags & SAME_GID == 0 {
            write_varint(b, entry.gid);
        }
        for (bit, name) in [(SAME_UNAME, &entry.uname), (SAME_GNAME, &entry.gname)] {
            if flags & bit == 0 {
                write_varint(b, name.len() as u64);
                b.extend_from_slice(name);
            }
        }
        write_varint(b, entry.size);
        write_varint(b, zigzag(entry.mtime.wrapping_sub(prev.mtime)));
        if self.nanos {
            write_varint(b, u64::from(entry.mtime_nsec));
        }
        write_varint(b, entry.header.wrapping_sub(prev.header));
        write_varint(b, entry.data.wrapping_sub(entry.header));
        for (bit, data) in [(HAS_LINK, &entry.link), (HAS_LISTING, &entry.listing)] {
            if flags & bit != 0 {
                write_varint(b, data.len() as u64);
                b.extend_from_slice(data);
            }
        }
        if flags & HAS_DEVICE != 0 {
            write_varint(b, u64::from(entry.device.0));
            write_varint(b, u64::from(entry.device.1));
        }
        out.write_all(b)?;
        self.previous.clone_from(entry);
        // A listing is never needed to encode the next entry: not kept.
        self.previous.listing = Vec::new();
        Ok(())
    }
}

/// Reads an entry over the one before it, in place: what did not change is kept, and
/// the buffers are reused. An entry of an index without `nanos` (version 1) has none.
pub(super) fn decode_into<R: Read>(
    input: &mut Input<R>,
    entry: &mut Entry,
    nanos: bool,
) -> Result<()> {
    let flags = input.byte()?;
    entry.type_flag = input.byte()?;
    let shared = input.varint()?;
    if shared > entry.name.len() as u64 {
        bail!("a name sharing more than the previous name holds");
    }
    entry.name.truncate(shared as usize);
    let rest = input.varint()?;
    input.append(rest, MAX_NAME, "a name", &mut entry.name)?;
    if flags & SAME_MODE == 0 {
        entry.mode = u32::try_from(input.varint()?).unwrap_or(u32::MAX);
    }
    if flags & SAME_UID == 0 {
        entry.uid = input.varint()?;
    }
    if flags & SAME_GID == 0 {
        entry.gid = input.varint()?;
    }
    if flags & SAME_UNAME == 0 {
        input.string(MAX_NAME, "an owner name", &mut entry.uname)?;
    }
    if flags & SAME_GNAME == 0 {
        input.string(MAX_NAME, "a group name", &mut entry.gname)?;
    }
    entry.size = input.varint()?;
    entry.mtime = entry.mtime.wrapping_add(unzigzag(input.varint()?));
    entry.mtime_nsec = 0;
    if nanos {
        entry.mtime_nsec = u32::try_from(input.varint()?)
            .ok()
            .filter(|&n| n < 1_000_000_000)
            .context("the nanoseconds of an mtime out of range")?;
    }
    entry.header = entry.header.wrapping_add(input.varint()?);
    entry.data = entry.header.wrapping_add(input.varint()?);
    entry.link.clear();
    if flags & HAS_LINK != 0 {
        input.string(MAX_NAME, "a link target", &mut entry.link)?;
    }
    entry.listing.clear();
    if flags & HAS_LISTING != 0 {
        input.string(MAX_LISTING, "a folder listing", &mut entry.listing)?;
    }
    entry.device = (0, 0);
    if flags & HAS_DEVICE != 0 {
        let major = input.varint()?;
        let minor = input.varint()?;
        entry.device = (
            u32::try_from(major).unwrap_or(u32::MAX),
            u32::try_from(minor).unwrap_or(u32::MAX),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_length_of_varint_reads_back_from_the_buffer_and_across_its_end() {
        let mut values = vec![0, 1, 127, 128, 300, 16_383, 16_384, u64::MAX, u64::MAX - 1];
        values.extend((0..64).map(|bit| 1u64 << bit));
        values.extend((1..64).map(|bit| (1u64 << bit) - 1));
        let mut bytes = Vec::new();
        for &n in &values {
            write_varint(&mut bytes, n);
        }
        // Read through buffers of every small size, so that each number is read both
        // whole from the buffer and split across a refill.
        for cut in 1..12 {
            let mut input = Input::new(&bytes[..], bytes.len() as u64);
            input.buf = vec![0; cut];
            for &n in &values {
                assert_eq!(input.varint().unwrap(), n, "buffer of {cut}");
            }
            assert_eq!(input.left, 0);
        }
        // Eleven bytes that all say "more" are no number.
        let long = [0xffu8; 11];
        let mut input = Input::new(&long[..], long.len() as u64);
        assert!(input.varint().is_err());
    }
}
