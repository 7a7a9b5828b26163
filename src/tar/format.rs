//! The tar format as GNU tar writes it by default, through the `tar` crate's
//! [`tar::Header`]: 512-byte headers, `././@LongLink` entries for names and link targets
//! over 100 bytes, base-256 for numbers too large for their octal field, and before them
//! a pax header for what those cannot hold (see [`super::pax`]). Reading also
//! accepts ustar prefixes and pax `path`/`linkpath`/`size`/`mtime`/`uid`/`gid`/`uname`/
//! `gname` records, which other tools write.
//!
//! The crate's `Builder` and `Archive` are not used: the walk streams data itself (so
//! that a file changing while read still gets a header whose size matches its data),
//! and the reader is stricter than `Archive` about the end of the archive.

use std::fmt;

use tar::EntryType;

use super::block::Block;
use super::dumpdir::MAX_LISTING;
use super::numbers;
use super::pax::{self, Extras};
use super::sparse::{PaxSparse, Sparse};
use super::{BLOCK, DUMPDIR, MAX_META, VOLUME_LABEL, padding};

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
    /// A GNU dumpdir: a folder followed by the list of its children.
    pub const DUMPDIR: Kind = Kind::Other(DUMPDIR);
    /// A GNU volume label, which starts each archive of an incremental chain.
    pub const VOLUME_LABEL: Kind = Kind::Other(VOLUME_LABEL);

    fn entry_type(self) -> EntryType {
        match self {
            Kind::File => EntryType::Regular,
            Kind::HardLink => EntryType::Link,
            Kind::Symlink => EntryType::Symlink,
            Kind::CharDevice => EntryType::Char,
            Kind::BlockDevice => EntryType::Block,
            Kind::Dir => EntryType::Directory,
            Kind::Fifo => EntryType::Fifo,
            Kind::Other(flag) => EntryType::new(flag),
        }
    }

    fn of(entry_type: EntryType) -> Self {
        match entry_type {
            // A contiguous file is a regular file for every tar since.
            EntryType::Regular | EntryType::Continuous => Kind::File,
            EntryType::Link => Kind::HardLink,
            EntryType::Symlink => Kind::Symlink,
            EntryType::Char => Kind::CharDevice,
            EntryType::Block => Kind::BlockDevice,
            EntryType::Directory => Kind::Dir,
            EntryType::Fifo => Kind::Fifo,
            other => Kind::Other(other.as_byte()),
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
    /// Modification time, seconds since the epoch (rounded down).
    pub mtime: i64,
    /// The nanoseconds after `mtime` (kept in a pax record when not 0).
    pub mtime_nsec: u32,
    /// Target of a symbolic or hard link.
    pub link: Vec<u8>,
    /// Device numbers of a device entry.
    pub device: (u32, u32),
    /// For a GNU sparse file (read only, never written): where its data goes. `size`
    /// is then the data stored, and the file's size is the map's.
    pub sparse: Option<Sparse>,
    /// Extended attributes and ACLs (kept in pax records, see [`pax`]).
    pub extras: Extras,
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
            mtime_nsec: 0,
            link: Vec::new(),
            device: (0, 0),
            sparse: None,
            extras: Extras::default(),
        }
    }

    /// The size of the file once restored: its data's, or a sparse file's full size.
    pub fn file_size(&self) -> u64 {
        self.sparse.as_ref().map_or(self.size, |s| s.real_size)
    }

    /// Appends the header's blocks to `out`: a pax header when the entry has more to
    /// keep than the header's fields hold (see [`pax`]), a `././@LongLink` entry for
    /// each long name or link, then the header itself.
    ///
    /// Names and link targets are kept as they are, byte for byte, as GNU tar keeps
    /// them: one over 100 bytes goes whole into a long-name entry, and the header keeps
    /// its first 100 bytes, which readers ignore. What a reader reads back is
    /// [`Header::stored`].
    pub fn encode(&self, out: &mut Vec<u8>) {
        // GNU tar names folders, dumpdirs included, with a trailing slash.
        let slash: &[u8] = match self.kind {
            Kind::Dir | Kind::DUMPDIR if self.name.last() != Some(&b'/') => b"/",
            _ => b"",
        };
        let name = [&self.name[..], slash];
        let records = pax::records(self.mtime, self.mtime_nsec, &self.extras);
        if !records.is_empty() {
            pax::encode(&self.name, self.mtime, &records, out);
        }
        let mut block = Block::gnu();
        // Names and links literally: the `tar` crate's `set_path` would tidy them (`a/./b`
        // into `a/b`), and they must come back as they were.
        if self.link.len() > NAME_LEN || self.link.contains(&0) {
            long_link(EntryType::GNULongLink, [&self.link, b""], out);
        }
        block.link(&self.link);
        if self.name.len() + slash.len() > NAME_LEN {
            long_link(EntryType::GNULongName, name, out);
        }
        block.name(name);
        block.mode(self.mode);
        block.uid(self.uid);
        block.gid(self.gid);
        block.size(self.size);
        block.mtime(self.mtime);
        block.type_flag(self.kind.entry_type().as_byte());
        block.owners(kept_owner(&self.uname), kept_owner(&self.gname));
        if matches!(self.kind, Kind::CharDevice | Kind::BlockDevice) {
            block.device(self.device.0, self.device.1);
        }
        out.extend_from_slice(&block.finish());
    }

    /// Why a reader would refuse the entry [`Header::encode`] writes of this header,
    /// followed by `data` bytes of data, if it would: a name or link target whose
    /// long-name entry is over [`MAX_META`], or a dumpdir's listing over
    /// [`MAX_LISTING`]. Such an entry is not written: an archive holding it could not
    /// be restored, nor its index made again.
    pub fn unreadable(&self, data: u64) -> Option<String> {
        let slash = u64::from(matches!(self.kind, Kind::Dir | Kind::DUMPDIR));
        let long = |len: usize, extra: u64| len as u64 + extra + 1 > MAX_META;
        if long(self.name.len(), slash) {
            return Some(format!("a name of {} bytes", self.name.len()));
        }
        if long(self.link.len(), 0) {
            return Some(format!("a link target of {} bytes", self.link.len()));
        }
        if self.kind == Kind::DUMPDIR && data > MAX_LISTING {
            return Some(format!("a folder listing of {data} bytes"));
        }
        None
    }

    /// The header a reader reads back from the blocks [`Header::encode`] writes: this
    /// one, but for what the format does not keep as given. A folder's name loses its
    /// trailing slashes and a dumpdir's gains one, an owner or group name that does not
    /// fit is left out, the mode keeps only its permission bits, and only devices keep
    /// device numbers. An archive's index is made from it as the archive is written,
    /// without reading the blocks again.
    pub fn stored(mut self) -> Header {
        match self.kind {
            Kind::Dir => trim_slashes(&mut self.name),
            Kind::DUMPDIR if self.name.last() != Some(&b'/') => self.name.push(b'/'),
            _ => {}
        }
        for name in [&mut self.uname, &mut self.gname] {
            if !owner_name_fits(name) {
                name.clear();
            }
        }
        self.mode &= 0o7777;
        if !matches!(self.kind, Kind::CharDevice | Kind::BlockDevice) {
            self.device = (0, 0);
        }
        self
    }
}

/// The owner or group name `name` as a header keeps it: whole, or not at all.
fn kept_owner(name: &[u8]) -> &[u8] {
    if owner_name_fits(name) { name } else { &[] }
}

/// The longest owner or group name a header holds.
const OWNER_LEN: usize = 32;

/// Whether a header keeps the owner or group name `name`. One that is not UTF-8 or is
/// over 32 bytes is left out rather than cut, as a cut name could be someone else's;
/// extraction then goes by the numeric id.
fn owner_name_fits(name: &[u8]) -> bool {
    name.len() <= OWNER_LEN && !name.contains(&0) && std::str::from_utf8(name).is_ok()
}

/// A `././@LongLink` entry: the long name (`value`, in two parts) as data,
/// NUL-terminated, as GNU tar writes it.
fn long_link(entry_type: EntryType, value: [&[u8]; 2], out: &mut Vec<u8>) {
    let len = value[0].len() + value[1].len();
    let mut block = Block::gnu();
    block.name([b"././@LongLink", b""]);
    block.mode(0o644);
    block.uid(0);
    block.gid(0);
    block.size(len as u64 + 1);
    block.type_flag(entry_type.as_byte());
    block.owners(b"root", b"root");
    out.extend_from_slice(&block.finish());
    out.extend_from_slice(value[0]);
    out.extend_from_slice(value[1]);
    out.resize(out.len() + padding(len as u64 + 1) as usize + 1, 0);
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
    /// A field does not hold what it should (a number that is not one...).
    Field(String),
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::Checksum { stored, computed } => write!(
                f,
                "header checksum mismatch (stored {stored:o}, computed {computed:o})"
            ),
            HeaderError::Field(why) => write!(f, "bad header: {why}"),
        }
    }
}

/// A header block as read, before long names and pax records are applied.
#[derive(Debug, Clone)]
pub struct RawHeader {
    /// The decoded header.
    pub header: Header,
    /// The raw type, for the meta entries (long names, pax records).
    pub entry_type: EntryType,
}

/// Decodes one header block, checking its checksum.
pub fn decode(block: &[u8; BLOCK]) -> Result<RawHeader, HeaderError> {
    let raw = tar::Header::from_byte_slice(block);
    let field = |e: std::io::Error| HeaderError::Field(e.to_string());
    let stored = numbers::field(block, 148..156, || raw.cksum().map(u64::from)).map_err(field)?;
    let computed = numbers::checksum(block);
    // Some old tars summed signed bytes; GNU tar accepts both, and so do we.
    let sound = |s| s == computed || s == numbers::signed_checksum(block);
    if !i64::try_from(stored).is_ok_and(sound) {
        return Err(HeaderError::Checksum {
            stored,
            computed: computed as u64,
        });
    }
    let entry_type = raw.entry_type();
    let kind = Kind::of(entry_type);
    // An empty size field (a volume label's) is 0, as GNU tar reads it.
    let empty_size = block[124..136].iter().all(|&b| b == 0 || b == b' ');
    let size = if empty_size {
        0
    } else {
        numbers::field(block, 124..136, || raw.entry_size()).map_err(field)?
    };
    if is_meta(entry_type) {
        // Only the size of a long name or of pax records is read: the rest of such a
        // header is never used, and one comes before nearly every entry.
        let mut header = Header::new(Vec::new(), kind);
        header.size = size;
        return Ok(RawHeader { header, entry_type });
    }
    let mut header = Header::new(raw.path_bytes().into_owned(), kind);
    header.size = size;
    // An entry restore skips (a GNU volume label leaves its mode and ids empty) needs
    // only its name and size: it is reported, not refused as corrupt.
    let meta = |n: std::io::Result<u64>| match (n, kind) {
        (Ok(n), _) => Ok(n),
        (Err(_), Kind::Other(_)) => Ok(0),
        (Err(e), _) => Err(field(e)),
    };
    let number =
        |range, slow: &dyn Fn() -> std::io::Result<u64>| meta(numbers::field(block, range, slow));
    header.mode = number(100..108, &|| raw.mode().map(u64::from))? as u32 & 0o7777;
    header.uid = number(108..116, &|| raw.uid())?;
    header.gid = number(116..124, &|| raw.gid())?;
    // Base-256 times before 1970 come back as the two's complement they are.
    header.mtime = number(136..148, &|| raw.mtime())? as i64;
    header.link = raw
        .link_name_bytes()
        .map(|link| link.into_owned())
        .unwrap_or_default();
    header.uname = raw.username_bytes().unwrap_or_default().to_vec();
    header.gname = raw.groupname_bytes().unwrap_or_default().to_vec();
    if matches!(kind, Kind::CharDevice | Kind::BlockDevice) {
        header.device = (
            raw.device_major().map_err(field)?.unwrap_or(0),
            raw.device_minor().map_err(field)?.unwrap_or(0),
        );
    }
    if kind == Kind::Dir {
        trim_slashes(&mut header.name);
    }
    Ok(RawHeader { header, entry_type })
}

/// Whether entries of this type describe the entry after them (a long name or link, pax
/// records) rather than being entries of the archive's own.
pub fn is_meta(entry_type: EntryType) -> bool {
    matches!(
        entry_type,
        EntryType::GNULongName
            | EntryType::GNULongLink
            | EntryType::XHeader
            | EntryType::XGlobalHeader
    )
}

/// Drops the trailing slashes that mark folders.
pub fn trim_slashes(name: &mut Vec<u8>) {
    while name.len() > 1 && name.last() == Some(&b'/') {
        name.pop();
    }
}

/// Applies the records of a pax extended header to the header that follows it. A
/// malformed record ends the list; unknown keys are ignored. GNU sparse records make the
/// entry a sparse file (see [`super::sparse`]); a sparse map that cannot be read is an
/// error, as the file could not be restored right.
pub fn apply_pax(records: &[u8], header: &mut Header) -> anyhow::Result<()> {
    let mut sparse = PaxSparse::default();
    for (key, value) in pax::parse(records) {
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
            b"size" => match int() {
                Some(size) if size < 0 => anyhow::bail!("a pax size of {size} bytes"),
                Some(size) => header.size = size as u64,
                None => {}
            },
            b"uid" => header.uid = int().map_or(header.uid, |v| v as u64),
            b"gid" => header.gid = int().map_or(header.gid, |v| v as u64),
            // With its fraction ("1700000000.25"), as GNU tar's posix format writes it.
            b"mtime" => {
                if let Some((secs, nsec)) = pax::parse_mtime(value) {
                    (header.mtime, header.mtime_nsec) = (secs, nsec);
                }
            }
            key => {
                if !pax::apply(key, value, &mut header.extras) {
                    sparse.record(key, value);
                }
            }
        }
    }
    if let Some(name) = sparse.name.take() {
        header.name = name;
    }
    if let Some(map) = sparse.finish()? {
        header.kind = Kind::File;
        header.sparse = Some(map);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
