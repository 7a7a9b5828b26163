//! The tar format, with no knowledge of schedules or the backups folder: headers (as GNU
//! tar writes them by default, with pax records for what they cannot hold), sparse maps, a strict reader, and the codecs that open a
//! compressed archive's tar stream.

mod block;
mod codec;
pub mod dumpdir;
pub mod format;
mod numbers;
pub mod pax;
pub mod reader;
mod seeking;
pub mod sparse;

pub use codec::open_archive;
pub use format::{Header, Kind};
pub use pax::Extras;
pub use reader::{Place, Reader, Skip};
pub use seeking::Seeking;

/// Everything in a tar archive comes in blocks of this size.
pub const BLOCK: usize = 512;

/// Meta entries (long names, pax records) larger than this are refused by the reader: no
/// real name is that long, no file's extended attributes take that much (the walk writes
/// at most [`pax::BUDGET`]), and a hostile archive must not make us allocate at will.
pub const MAX_META: u64 = 1 << 20;

/// Zero bytes that follow `size` bytes of data to complete the last block.
pub fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

/// GNU tar's type flag of a dumpdir (`tar -g`): a folder, followed by the list of its
/// children (see [`dumpdir`]).
pub const DUMPDIR: u8 = b'D';

/// GNU tar's type flag of a volume label (`tar --label`), which extraction skips.
pub const VOLUME_LABEL: u8 = b'V';
