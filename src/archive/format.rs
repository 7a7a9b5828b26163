//! The tar format as GNU tar writes it by default: 512-byte headers, `././@LongLink`
//! entries for names and link targets over 100 bytes, base-256 for numbers too large
//! for their octal field. Reading also accepts ustar prefixes and pax `path`/`linkpath`/
//! `size`/`mtime`/`uid`/`gid`/`uname`/`gname` records, which other tools write.

use std::fmt;

/// Everything in a tar archive comes in blocks of this size.
pub const BLOCK: usize = 512;

/// The longest name a header holds itself; longer ones go in a `././@LongLink` entry.
const NAME_LEN: usize = 100;

/// The kind of an entry, from its type flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file, followed by its data.
    File,
    /// A hard link to an earlier entry, named by the link target.
    HardLink,
    /// A symbolic link.
    Symlink,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A folder.
    Dir,
    /// A named pipe.
    Fifo,
    /// A type flag this tool does not restore (it is kept only to be skipped).
    Other(u8),
}

impl Kind {
    fn flag(self) -> u8 {
        match self {
            Kind::File => b'0',
            Kind::HardLink => b'1',
            Kind::Symlink => b'2',
            Kind::CharDevice => b'3',
            Kind::BlockDevice => b'4',
            Kind::Dir => b'5',
            Kind::Fifo => b'6',
            Kind::Other(flag) => flag,
        }
    }

    fn from_flag(flag: u8) -> Self {
        match flag {
            // '7' is a contiguous file: a regular file for every tar since.
            b'0' | 0 | b'7' => Kind::File,
            b'1' => Kind::HardLink,
            b'2' => Kind::Symlink,
            b'3' => Kind::CharDevice,
            b'4' => Kind::BlockDevice,
            b'5' => Kind::Dir,
            b'6' => Kind::Fifo,
            other => Kind::Other(other),
        }
    }

    /// Whether data blocks follow the header.
    pub fn has_data(self) -> bool {
        matches!(self, Kind::File | Kind::Other(_))
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::File => f.write_str("file"),
            Kind::HardLink => f.write_str("hard link"),
            Kind::Symlink => f.write_str("symbolic link"),
            Kind::CharDevice => f.write_str("character device"),
            Kind::BlockDevice => f.write_str("block device"),
            Kind::Dir => f.write_str("folder"),
            Kind::Fifo => f.write_str("FIFO"),
            Kind::Other(flag) => write!(f, "entry of type {:?}", char::from(*flag)),
        }
    }
}

/// One entry's header, with long names already resolved. Names are raw bytes: file names
/// on Unix need not be UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The entry's name, without the trailing `/` of folders.
    pub name: Vec<u8>,
    /// What the entry is.
    pub kind: Kind,
    /// Permission bits, with setuid, setgid and sticky.
    pub mode: u32,
    /// Owner id.
    pub uid: u64,
    /// Group id.
    pub gid: u64,
    /// Owner name (empty when unknown).
    pub uname: Vec<u8>,
    /// Group name (empty when unknown).
    pub gname: Vec<u8>,
    /// Size of the data that follows (0 for everything but files).
    pub size: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    /// Target of a symbolic or hard link.
    pub link: Vec<u8>,
    /// Device numbers of a device entry.
    pub device: (u32, u32),
}

impl Header {
    /// A header of `kind` named `name`, with everything else zero.
    pub fn new(name: Vec<u8>, kind: Kind) -> Self {
        Header {
            name,
            kind,
            mode: 0,
            uid: 0,
            gid: 0,
            uname: Vec::new(),
            gname: Vec::new(),
            size: 0,
            mtime: 0,
            link: Vec::new(),
            device: (0, 0),
        }
    }

    /// Appends the header's blocks to `out`: a `././@LongLink` entry for each long name
    /// or link, then the header itself.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut name = self.name.clone();
        if self.kind == Kind::Dir {
            name.push(b'/');
        }
        if self.link.len() > NAME_LEN {
            long_link(b'K', &self.link, out);
        }
        if name.len() > NAME_LEN {
            long_link(b'L', &name, out);
        }
        let mut block = [0u8; BLOCK];
        put_bytes(&mut block[0..100], &name);
        put_number(&mut block[100..108], self.mode.into());
        put_number(&mut block[108..116], self.uid as i64);
        put_number(&mut block[116..124], self.gid as i64);
        put_number(&mut block[124..136], self.size as i64);
        put_number(&mut block[136..148], self.mtime);
        block[156] = self.kind.flag();
        put_bytes(&mut block[157..257], &self.link);
        block[257..265].copy_from_slice(b"ustar  \0");
        put_bytes(&mut block[265..297], &self.uname);
        put_bytes(&mut block[297..329], &self.gname);
        if matches!(self.kind, Kind::CharDevice | Kind::BlockDevice) {
            put_number(&mut block[329..337], self.device.0.into());
            put_number(&mut block[337..345], self.device.1.into());
        }
        seal(&mut block);
        out.extend_from_slice(&block);
    }
}

/// A `././@LongLink` entry: the long name as data, NUL-terminated, as GNU tar writes it.
fn long_link(flag: u8, value: &[u8], out: &mut Vec<u8>) {
    let mut block = [0u8; BLOCK];
    put_bytes(&mut block[0..100], b"././@LongLink");
    put_number(&mut block[100..108], 0o644);
    put_number(&mut block[108..116], 0);
    put_number(&mut block[116..124], 0);
    put_number(&mut block[124..136], value.len() as i64 + 1);
    put_number(&mut block[136..148], 0);
    block[156] = flag;
    block[257..265].copy_from_slice(b"ustar  \0");
    put_bytes(&mut block[265..297], b"root");
    put_bytes(&mut block[297..329], b"root");
    seal(&mut block);
    out.extend_from_slice(&block);
    out.extend_from_slice(value);
    out.resize(out.len() + padding(value.len() as u64 + 1) as usize + 1, 0);
}

/// Zero bytes that follow `size` bytes of data to complete the last block.
pub fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

/// Copies `value` into a field, truncated to it (long values went to a `LongLink`).
fn put_bytes(field: &mut [u8], value: &[u8]) {
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
}

/// Writes a number in octal, NUL-terminated; when it does not fit (files of 8 GiB and
/// more, large ids, times before 1970), in GNU base-256.
fn put_number(field: &mut [u8], value: i64) {
    let digits = field.len() - 1;
    if value >= 0 && (value as u64) < 1u64 << (3 * digits) {
        let text = format!("{value:0digits$o}");
        field[..digits].copy_from_slice(text.as_bytes());
        field[digits] = 0;
    } else {
        let fill = if value < 0 { 0xff } else { 0 };
        field.fill(fill);
        let n = field.len();
        field[n - 8..].copy_from_slice(&value.to_be_bytes());
        field[0] |= 0x80;
    }
}

/// Fills in the checksum: the sum of the header's bytes, the checksum field as spaces.
fn seal(block: &mut [u8; BLOCK]) {
    block[148..156].fill(b' ');
    let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
    let text = format!("{sum:06o}\0 ");
    block[148..156].copy_from_slice(text.as_bytes());
}

/// Why a header block could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// The stored checksum does not match the block.
    Checksum {
        /// The checksum the header claims.
        stored: u64,
        /// The checksum of the block as read.
        computed: u64,
    },
    /// A numeric field holds something that is not a number.
    Number(&'static str),
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::Checksum { stored, computed } => write!(
                f,
                "header checksum mismatch (stored {stored:o}, computed {computed:o})"
            ),
            HeaderError::Number(field) => write!(f, "header field {field} is not a number"),
        }
    }
}

/// A header block as read, before long names and pax records are applied.
#[derive(Debug, Clone)]
pub struct RawHeader {
    /// The decoded header.
    pub header: Header,
    /// The raw type flag, for the meta entries (`L`, `K`, `x`, `g`).
    pub flag: u8,
}

/// Decodes one header block, checking its checksum.
pub fn decode(block: &[u8; BLOCK]) -> Result<RawHeader, HeaderError> {
    let stored = number(&block[148..156], "chksum")? as u64;
    let mut unsigned = 0u64;
    let mut signed = 0i64;
    for (i, &b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    // Some old tars summed signed bytes; both are accepted, as GNU tar does.
    if stored != unsigned && stored as i64 != signed {
        return Err(HeaderError::Checksum {
            stored,
            computed: unsigned,
        });
    }
    let flag = block[156];
    let mut name = field(&block[0..100]).to_vec();
    // POSIX ustar splits long names into a prefix and a name.
    if &block[257..263] == b"ustar\0" && block[345] != 0 {
        let mut full = field(&block[345..500]).to_vec();
        full.push(b'/');
        full.extend_from_slice(&name);
        name = full;
    }
    let kind = Kind::from_flag(flag);
    let mut header = Header::new(name, kind);
    header.mode = number(&block[100..108], "mode")? as u32 & 0o7777;
    header.uid = number(&block[108..116], "uid")? as u64;
    header.gid = number(&block[116..124], "gid")? as u64;
    header.size = number(&block[124..136], "size")? as u64;
    header.mtime = number(&block[136..148], "mtime")?;
    header.link = field(&block[157..257]).to_vec();
    header.uname = field(&block[265..297]).to_vec();
    header.gname = field(&block[297..329]).to_vec();
    if matches!(kind, Kind::CharDevice | Kind::BlockDevice) {
        header.device = (
            number(&block[329..337], "devmajor")? as u32,
            number(&block[337..345], "devminor")? as u32,
        );
    }
    if kind == Kind::Dir {
        trim_slashes(&mut header.name);
    }
    Ok(RawHeader { header, flag })
}

/// Drops the trailing slashes that mark folders.
pub fn trim_slashes(name: &mut Vec<u8>) {
    while name.len() > 1 && name.last() == Some(&b'/') {
        name.pop();
    }
}

/// A text field: up to its first NUL.
fn field(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..end]
}

fn number(bytes: &[u8], name: &'static str) -> Result<i64, HeaderError> {
    if bytes[0] & 0x80 != 0 {
        // GNU base-256: big-endian two's complement, the marker bit aside.
        let negative = bytes[0] & 0x40 != 0;
        let mut value: i64 = if negative { -1 } else { 0 };
        for (i, &b) in bytes.iter().enumerate() {
            let b = if i == 0 {
                b & 0x7f | if negative { 0x80 } else { 0 }
            } else {
                b
            };
            value = (value << 8) | i64::from(b);
        }
        return Ok(value);
    }
    let text = field(bytes);
    let text = std::str::from_utf8(text)
        .map_err(|_| HeaderError::Number(name))?
        .trim_matches(|c| c == ' ' || c == '\0');
    if text.is_empty() {
        return Ok(0);
    }
    i64::from_str_radix(text, 8).map_err(|_| HeaderError::Number(name))
}

/// Applies the records of a pax extended header to the header that follows it.
pub fn apply_pax(records: &[u8], header: &mut Header) {
    let mut rest = records;
    while let Some(space) = rest.iter().position(|&b| b == b' ') {
        let Some(len) = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|n| n.parse::<usize>().ok())
        else {
            return;
        };
        if len <= space + 1 || len > rest.len() {
            return;
        }
        let record = &rest[space + 1..len - 1];
        rest = &rest[len..];
        let Some(eq) = record.iter().position(|&b| b == b'=') else {
            continue;
        };
        let (key, value) = (&record[..eq], &record[eq + 1..]);
        let int = || {
            std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.split('.').next())
                .and_then(|v| v.parse::<i64>().ok())
        };
        match key {
            b"path" => header.name = value.to_vec(),
            b"linkpath" => header.link = value.to_vec(),
            b"uname" => header.uname = value.to_vec(),
            b"gname" => header.gname = value.to_vec(),
            b"size" => header.size = int().map_or(header.size, |v| v as u64),
            b"mtime" => header.mtime = int().unwrap_or(header.mtime),
            b"uid" => header.uid = int().map_or(header.uid, |v| v as u64),
            b"gid" => header.gid = int().map_or(header.gid, |v| v as u64),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(header: &Header) -> Header {
        let mut out = Vec::new();
        header.encode(&mut out);
        assert_eq!(out.len() % BLOCK, 0);
        let last: &[u8; BLOCK] = out[out.len() - BLOCK..].try_into().unwrap();
        decode(last).unwrap().header
    }

    #[test]
    fn a_plain_header_round_trips() {
        let mut h = Header::new(b"dir/file.txt".to_vec(), Kind::File);
        h.mode = 0o4755;
        h.uid = 1000;
        h.gid = 100;
        h.uname = b"alice".to_vec();
        h.gname = b"users".to_vec();
        h.size = 12345;
        h.mtime = 1_700_000_000;
        assert_eq!(round_trip(&h), h);
    }

    #[test]
    fn big_and_negative_numbers_use_base_256() {
        let mut h = Header::new(b"big".to_vec(), Kind::File);
        h.size = 20 << 30;
        h.mtime = -86400;
        h.uid = 1 << 40;
        assert_eq!(round_trip(&h), h);
    }

    #[test]
    fn long_names_get_a_longlink_entry() {
        let name = vec![b'n'; 300];
        let mut h = Header::new(name.clone(), Kind::Symlink);
        h.link = vec![b't'; 200];
        let mut out = Vec::new();
        h.encode(&mut out);
        let first: &[u8; BLOCK] = out[..BLOCK].try_into().unwrap();
        let raw = decode(first).unwrap();
        assert_eq!(raw.flag, b'K');
        assert_eq!(raw.header.size, 201);
    }

    #[test]
    fn a_flipped_byte_breaks_the_checksum() {
        let mut out = Vec::new();
        Header::new(b"x".to_vec(), Kind::File).encode(&mut out);
        out[3] ^= 1;
        let block: &[u8; BLOCK] = out[..BLOCK].try_into().unwrap();
        assert!(matches!(decode(block), Err(HeaderError::Checksum { .. })));
    }

    #[test]
    fn pax_records_override_the_header() {
        let mut h = Header::new(b"short".to_vec(), Kind::File);
        apply_pax(b"15 path=a/long\n11 size=42\n", &mut h);
        assert_eq!(h.name, b"a/long");
        assert_eq!(h.size, 42);
    }
}
