//! GNU sparse files, as `tar -S` writes them: only the parts of a file that hold data are
//! stored, with a map of where each part goes; the rest reads as zeros.
//!
//! Four encodings exist, all read here: the old GNU one (type `S`, the map in the header
//! and in extension blocks after it), and three pax ones: 0.0 (`GNU.sparse.offset` and
//! `GNU.sparse.numbytes` records, in pairs), 0.1 (one `GNU.sparse.map` record) and 1.0
//! (the map in decimal at the start of the entry's data).

use std::borrow::Borrow;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

use anyhow::{Result, bail};

use super::{BLOCK, padding};

/// Maps with more parts than this are refused: a hostile archive must not make us
/// allocate at will. A real file with this many holes is not backed up with `-S`.
const MAX_PARTS: usize = 1 << 20;

/// Where the stored data of a sparse file goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sparse {
    /// The file's size once restored.
    pub real_size: u64,
    /// The parts that hold data, as (offset, length), in order; the data of each follows
    /// the previous one's in the archive.
    pub parts: Vec<(u64, u64)>,
    /// Whether the map is still to be read from the start of the data (pax 1.0).
    pub map_in_data: bool,
}

impl Sparse {
    /// Checks that the parts are in order, inside the file, and add up to `stored` bytes,
    /// the data the archive holds for the entry.
    pub fn check(&self, stored: u64) -> Result<()> {
        let mut end = 0u64;
        let mut total = 0u64;
        for &(offset, len) in &self.parts {
            let Some(part_end) = offset.checked_add(len) else {
                bail!("a sparse map part past the largest size");
            };
            if offset < end || part_end > self.real_size {
                bail!("a sparse map whose parts overlap or lie past the file's size");
            }
            end = part_end;
            total += len;
        }
        if total != stored {
            bail!("a sparse map of {total} bytes for {stored} bytes of data");
        }
        Ok(())
    }
}

/// The pax records of a sparse file, gathered before the entry's header is known.
#[derive(Debug, Clone, Default)]
pub struct PaxSparse {
    /// `GNU.sparse.major`, 1 for the 1.0 format.
    pub major: Option<u64>,
    /// `GNU.sparse.name`: the file's real name (the header holds a made-up one).
    pub name: Option<Vec<u8>>,
    /// `GNU.sparse.size` or `GNU.sparse.realsize`.
    pub real_size: Option<u64>,
    /// Offsets and lengths, in turn, from 0.0 pairs or the 0.1 map.
    pub numbers: Vec<u64>,
    /// A record that could not be read, to refuse the entry rather than guess.
    pub bad: Option<String>,
}

impl PaxSparse {
    /// Takes one pax record, if it is a sparse one; returns whether it was.
    pub fn record(&mut self, key: &[u8], value: &[u8]) -> bool {
        let number = || {
            std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
        };
        let mut keep = |n: Option<u64>, into: &mut Vec<u64>| match n {
            Some(n) if into.len() < 2 * MAX_PARTS => into.push(n),
            _ => {
                self.bad.get_or_insert_with(|| {
                    format!("a bad {} record", String::from_utf8_lossy(key))
                });
            }
        };
        match key {
            b"GNU.sparse.major" => self.major = number(),
            b"GNU.sparse.name" => self.name = Some(value.to_vec()),
            b"GNU.sparse.size" | b"GNU.sparse.realsize" => self.real_size = number(),
            b"GNU.sparse.offset" | b"GNU.sparse.numbytes" => {
                let mut numbers = std::mem::take(&mut self.numbers);
                keep(number(), &mut numbers);
                self.numbers = numbers;
            }
            b"GNU.sparse.map" => {
                let mut numbers = Vec::new();
                if !value.is_empty() {
                    for field in value.split(|&b| b == b',') {
                        let n = std::str::from_utf8(field)
                            .ok()
                            .and_then(|v| v.parse::<u64>().ok());
                        keep(n, &mut numbers);
                    }
                }
                self.numbers = numbers;
            }
            b"GNU.sparse.minor" | b"GNU.sparse.numblocks" => {}
            _ => return false,
        }
        true
    }

    /// The map these records describe, if they describe a sparse file.
    pub fn finish(self) -> Result<Option<Sparse>> {
        if let Some(bad) = self.bad {
            bail!("{bad}");
        }
        let Some(real_size) = self.real_size else {
            return Ok(None);
        };
        let map_in_data = self.major == Some(1);
        if !map_in_data && self.numbers.len() % 2 != 0 {
            bail!("a sparse map with an offset but no length");
        }
        let parts = pairs(&self.numbers);
        Ok(Some(Sparse {
            real_size,
            parts,
            map_in_data,
        }))
    }
}

fn pairs(numbers: &[u64]) -> Vec<(u64, u64)> {
    numbers
        .chunks_exact(2)
        .map(|pair| (pair[0], pair[1]))
        // GNU tar ends a map with an empty part at the end of the file.
        .filter(|&(_, len)| len > 0)
        .collect()
}

/// The old GNU header's map: four parts at byte 386, then whether extension blocks
/// follow (byte 482), then the real size (byte 483).
pub fn old_gnu_header(block: &[u8; BLOCK]) -> Result<(Sparse, bool)> {
    let mut parts = Vec::new();
    read_parts(&block[386..482], &mut parts)?;
    let real_size = number(&block[483..495])?;
    Ok((
        Sparse {
            real_size,
            parts,
            map_in_data: false,
        },
        block[482] != 0,
    ))
}

/// An old GNU extension block: 21 more parts, then whether another block follows.
pub fn old_gnu_extension(block: &[u8; BLOCK], sparse: &mut Sparse) -> Result<bool> {
    if sparse.parts.len() > MAX_PARTS {
        bail!("a sparse map of more than {MAX_PARTS} parts");
    }
    read_parts(&block[..504], &mut sparse.parts)?;
    Ok(block[504] != 0)
}

/// Parts of 24 bytes (two 12-byte numbers); an empty offset ends the list.
fn read_parts(fields: &[u8], parts: &mut Vec<(u64, u64)>) -> Result<()> {
    for part in fields.chunks_exact(24) {
        if part[0] == 0 {
            break;
        }
        let (offset, len) = (number(&part[..12])?, number(&part[12..])?);
        if len > 0 {
            parts.push((offset, len));
        }
    }
    Ok(())
}

/// A numeric header field: octal, or GNU base-256 when its first byte has the top bit.
fn number(field: &[u8]) -> Result<u64> {
    if field[0] & 0x80 != 0 {
        let mut n: u64 = 0;
        for (i, &b) in field.iter().enumerate() {
            let b = if i == 0 { b & 0x7f } else { b };
            n = n
                .checked_mul(256)
                .and_then(|n| n.checked_add(u64::from(b)))
                .ok_or_else(|| anyhow::anyhow!("a sparse map number too large"))?;
        }
        return Ok(n);
    }
    let text: Vec<u8> = field
        .iter()
        .copied()
        .take_while(|&b| b != 0)
        .filter(|&b| b != b' ')
        .collect();
    if text.is_empty() {
        return Ok(0);
    }
    std::str::from_utf8(&text)
        .ok()
        .and_then(|t| u64::from_str_radix(t, 8).ok())
        .ok_or_else(|| anyhow::anyhow!("a sparse map number that is not octal"))
}

/// Reads a pax 1.0 map from the start of an entry's data: the count of parts, then an
/// offset and a length for each, all in decimal, one a line, padded to a whole block.
/// Returns the bytes of data it took.
pub fn read_map_1_0(data: &mut impl Read, sparse: &mut Sparse) -> Result<u64> {
    let mut taken = 0u64;
    let mut line = Vec::new();
    let mut next = |taken: &mut u64| -> Result<u64> {
        line.clear();
        loop {
            let mut byte = [0u8];
            if data.read(&mut byte)? == 0 {
                bail!("a sparse map cut short");
            }
            *taken += 1;
            match byte[0] {
                b'\n' => break,
                b @ b'0'..=b'9' if line.len() < 20 => line.push(b),
                _ => bail!("a sparse map that is not decimal numbers"),
            }
        }
        std::str::from_utf8(&line)
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("a sparse map that is not decimal numbers"))
    };
    let count = next(&mut taken)?;
    if count > MAX_PARTS as u64 {
        bail!("a sparse map of {count} parts");
    }
    let mut numbers = Vec::with_capacity(2 * count as usize);
    for _ in 0..2 * count {
        numbers.push(next(&mut taken)?);
    }
    sparse.parts = pairs(&numbers);
    sparse.map_in_data = false;
    let pad = padding(taken);
    io::copy(&mut data.take(pad), &mut io::sink())?;
    Ok(taken + pad)
}

/// Writes a sparse file's data where it belongs in `file`, leaving holes, and gives the
/// file its full size.
pub fn write(sparse: &Sparse, data: &mut impl Read, file: &mut File) -> io::Result<()> {
    for &(offset, len) in &sparse.parts {
        file.seek(SeekFrom::Start(offset))?;
        let copied = io::copy(&mut data.take(len), file)?;
        if copied != len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the archive ends inside a sparse file's data",
            ));
        }
    }
    file.set_len(sparse.real_size)
}

/// The whole content of a sparse file as a reader: the stored data where the map puts
/// it, zeros elsewhere. The map is borrowed (`&Sparse`) or owned.
pub struct Expand<S: Borrow<Sparse>, R: Read> {
    data: R,
    sparse: S,
    /// Where in the file we are.
    pos: u64,
    /// The next part not fully read.
    part: usize,
}

impl<S: Borrow<Sparse>, R: Read> Expand<S, R> {
    /// Expands `data`, the stored parts of `sparse` one after the other.
    pub fn new(data: R, sparse: S) -> Self {
        Self::at(data, sparse, 0)
    }

    /// Expands the file from byte `pos` on, `data` being its stored parts from the byte
    /// that [`Sparse::stored_before`] gives for `pos` on.
    pub fn at(data: R, sparse: S, pos: u64) -> Self {
        let part = sparse
            .borrow()
            .parts
            .partition_point(|&(offset, len)| offset + len <= pos);
        Expand {
            data,
            sparse,
            pos,
            part,
        }
    }
}

impl Sparse {
    /// How many bytes of the stored data come before byte `pos` of the file: where to
    /// start reading them to expand the file from `pos`.
    pub fn stored_before(&self, pos: u64) -> u64 {
        let mut before = 0;
        for &(offset, len) in &self.parts {
            if offset + len <= pos {
                before += len;
            } else {
                before += pos.saturating_sub(offset);
                break;
            }
        }
        before
    }

    /// How many bytes of data are stored.
    pub fn stored(&self) -> u64 {
        self.parts.iter().map(|&(_, len)| len).sum()
    }
}

impl<S: Borrow<Sparse>, R: Read> Read for Expand<S, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let sparse = self.sparse.borrow();
        while let Some(&(offset, len)) = sparse.parts.get(self.part) {
            if self.pos >= offset + len {
                self.part += 1;
                continue;
            }
            if self.pos < offset {
                // A hole before this part.
                let n = buf
                    .len()
                    .min(usize::try_from(offset - self.pos).unwrap_or(usize::MAX));
                buf[..n].fill(0);
                self.pos += n as u64;
                return Ok(n);
            }
            let left = offset + len - self.pos;
            let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = self.data.read(&mut buf[..want])?;
            if n == 0 && want > 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the archive ends inside a sparse file's data",
                ));
            }
            self.pos += n as u64;
            return Ok(n);
        }
        // The hole at the end.
        let n = buf
            .len()
            .min(usize::try_from(sparse.real_size.saturating_sub(self.pos)).unwrap_or(usize::MAX));
        buf[..n].fill(0);
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sparse(real_size: u64, parts: &[(u64, u64)]) -> Sparse {
        Sparse {
            real_size,
            parts: parts.to_vec(),
            map_in_data: false,
        }
    }

    #[test]
    fn expand_puts_the_parts_in_place_and_zeros_around() {
        let map = sparse(10, &[(2, 3), (7, 1)]);
        let mut out = Vec::new();
        Expand::new(&b"abcd"[..], &map)
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"\0\0abc\0\0d\0\0");
        // From any byte on, reading the stored data from where it lies for that byte.
        assert_eq!(map.stored(), 4);
        for pos in 0..=10 {
            let stored = &b"abcd"[map.stored_before(pos) as usize..];
            let mut from = Vec::new();
            Expand::at(stored, map.clone(), pos)
                .read_to_end(&mut from)
                .unwrap();
            assert_eq!(from, &out[pos as usize..], "from {pos}");
        }
        let empty = sparse(4, &[]);
        let mut out = Vec::new();
        Expand::new(&b""[..], &empty).read_to_end(&mut out).unwrap();
        assert_eq!(out, b"\0\0\0\0");
    }

    #[test]
    fn maps_are_checked_against_the_data() {
        assert!(sparse(10, &[(2, 3), (7, 1)]).check(4).is_ok());
        assert!(sparse(10, &[(2, 3), (7, 1)]).check(5).is_err());
        assert!(sparse(10, &[(2, 3), (4, 1)]).check(4).is_err());
        assert!(sparse(10, &[(8, 3)]).check(3).is_err());
        assert!(sparse(10, &[(u64::MAX, 3)]).check(3).is_err());
    }

    #[test]
    fn pax_records_of_each_version_read_the_same_map() {
        let mut v00 = PaxSparse::default();
        for (k, v) in [
            ("GNU.sparse.size", "200"),
            ("GNU.sparse.numblocks", "2"),
            ("GNU.sparse.offset", "10"),
            ("GNU.sparse.numbytes", "5"),
            ("GNU.sparse.offset", "200"),
            ("GNU.sparse.numbytes", "0"),
        ] {
            assert!(v00.record(k.as_bytes(), v.as_bytes()));
        }
        let mut v01 = PaxSparse::default();
        v01.record(b"GNU.sparse.size", b"200");
        v01.record(b"GNU.sparse.map", b"10,5,200,0");
        let expected = Some(sparse(200, &[(10, 5)]));
        assert_eq!(v00.finish().unwrap(), expected);
        assert_eq!(v01.finish().unwrap(), expected);
        let mut bad = PaxSparse::default();
        bad.record(b"GNU.sparse.size", b"200");
        bad.record(b"GNU.sparse.map", b"10,x");
        assert!(bad.finish().is_err());
        assert!(!PaxSparse::default().record(b"path", b"x"));
    }

    #[test]
    fn a_1_0_map_is_read_from_the_data_with_its_padding() {
        let mut data = b"2\n10\n5\n200\n0\n".to_vec();
        data.resize(BLOCK, 0);
        data.extend_from_slice(b"hello");
        let mut map = sparse(200, &[]);
        map.map_in_data = true;
        let mut input = &data[..];
        assert_eq!(read_map_1_0(&mut input, &mut map).unwrap(), BLOCK as u64);
        assert_eq!(map, sparse(200, &[(10, 5)]));
        assert_eq!(input, b"hello");
    }
}
