//! How an index entry is written: each field against the entry before it (a name as the
//! bytes it shares with the previous one and the rest, owners and modes only when they
//! change, times and offsets as differences), numbers as LEB128 varints. Every length
//! read is bounded by what the index has left and by the most a tar archive holds.

use std::io::{self, Read, Write};

use anyhow::{Result, bail};

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

fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

fn unzigzag(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

/// A reader that knows how many bytes its input has left, to bound lengths by it.
pub(super) struct Counted<'a, R: Read> {
    pub(super) inner: &'a mut R,
    pub(super) left: u64,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

impl<R: Read> Counted<'_, R> {
    /// Reads a length-prefixed byte string of at most `max` bytes.
    fn bytes(&mut self, max: u64, what: &str) -> Result<Vec<u8>> {
        let len = read_varint(self)?;
        self.exactly(len, max, what)
    }

    fn exactly(&mut self, len: u64, max: u64, what: &str) -> Result<Vec<u8>> {
        if len > max || len > self.left {
            bail!("{what} of {len} bytes, more than the index or an archive holds");
        }
        let mut data = vec![0; len as usize];
        self.read_exact(&mut data)?;
        Ok(data)
    }
}

/// Writes entries, each against the one before.
#[derive(Default)]
pub(super) struct EntryEncoder {
    previous: Entry,
    buf: Vec<u8>,
}

impl EntryEncoder {
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

/// Reads entries, each against the one before.
#[derive(Default)]
pub(super) struct EntryDecoder {
    previous: Entry,
}

impl EntryDecoder {
    /// Reads the next entry.
    pub(super) fn decode<R: Read>(&mut self, input: &mut Counted<'_, R>) -> Result<Entry> {
        let prev = &self.previous;
        let mut byte = [0u8; 2];
        input.read_exact(&mut byte)?;
        let [flags, type_flag] = byte;
        let shared = read_varint(input)?;
        if shared > prev.name.len() as u64 {
            bail!("a name sharing more than the previous name holds");
        }
        let rest = input.bytes(MAX_NAME, "a name")?;
        let mut name = prev.name[..shared as usize].to_vec();
        name.extend_from_slice(&rest);
        let mut entry = Entry {
            name,
            type_flag,
            ..Entry::default()
        };
        entry.mode = if flags & SAME_MODE != 0 {
            prev.mode
        } else {
            u32::try_from(read_varint(input)?).unwrap_or(u32::MAX)
        };
        entry.uid = same_or(flags & SAME_UID != 0, prev.uid, input)?;
        entry.gid = same_or(flags & SAME_GID != 0, prev.gid, input)?;
        entry.uname = if flags & SAME_UNAME != 0 {
            prev.uname.clone()
        } else {
            input.bytes(MAX_NAME, "an owner name")?
        };
        entry.gname = if flags & SAME_GNAME != 0 {
            prev.gname.clone()
        } else {
            input.bytes(MAX_NAME, "a group name")?
        };
        entry.size = read_varint(input)?;
        entry.mtime = prev.mtime.wrapping_add(unzigzag(read_varint(input)?));
        entry.header = prev.header.wrapping_add(read_varint(input)?);
        entry.data = entry.header.wrapping_add(read_varint(input)?);
        if flags & HAS_LINK != 0 {
            entry.link = input.bytes(MAX_NAME, "a link target")?;
        }
        if flags & HAS_LISTING != 0 {
            entry.listing = input.bytes(MAX_LISTING, "a folder listing")?;
        }
        if flags & HAS_DEVICE != 0 {
            let major = read_varint(input)?;
            let minor = read_varint(input)?;
            entry.device = (
                u32::try_from(major).unwrap_or(u32::MAX),
                u32::try_from(minor).unwrap_or(u32::MAX),
            );
        }
        self.previous.clone_from(&entry);
        self.previous.listing = Vec::new();
        Ok(entry)
    }
}

fn same_or(same: bool, previous: u64, input: &mut impl Read) -> io::Result<u64> {
    if same {
        Ok(previous)
    } else {
        read_varint(input)
    }
}
