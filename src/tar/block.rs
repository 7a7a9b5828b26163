//! A header block written field by field, byte for byte as the `tar` crate's setters
//! write it, without their detour through formatted strings: a backup writes one to
//! three such blocks an entry, and formatting their numbers was a fifth of the walk's
//! work.

use super::BLOCK;
use super::numbers::{CHECKSUM, checksum};

/// Where each field is in a header block (the old, ustar and GNU layouts share them).
const NAME: std::ops::Range<usize> = 0..100;
const MODE: std::ops::Range<usize> = 100..108;
const UID: std::ops::Range<usize> = 108..116;
const GID: std::ops::Range<usize> = 116..124;
const SIZE: std::ops::Range<usize> = 124..136;
const MTIME: std::ops::Range<usize> = 136..148;
const TYPE_FLAG: usize = 156;
const LINK: std::ops::Range<usize> = 157..257;
const MAGIC: std::ops::Range<usize> = 257..265;
const UNAME: std::ops::Range<usize> = 265..297;
const GNAME: std::ops::Range<usize> = 297..329;
const DEV_MAJOR: std::ops::Range<usize> = 329..337;
const DEV_MINOR: std::ops::Range<usize> = 337..345;

/// A header block being written.
pub(super) struct Block([u8; BLOCK]);

impl Block {
    /// A GNU header (magic `ustar  `), its mtime 0, as `tar::Header::new_gnu` makes it.
    pub(super) fn gnu() -> Self {
        Block::with_magic(b"ustar  \0")
    }

    /// A POSIX ustar header (magic `ustar`, version `00`), as `tar::Header::new_ustar`.
    pub(super) fn ustar() -> Self {
        Block::with_magic(b"ustar\x0000")
    }

    fn with_magic(magic: &[u8; 8]) -> Self {
        let mut block = Block([0; BLOCK]);
        block.0[MAGIC].copy_from_slice(magic);
        block.number(MTIME, 0);
        block
    }

    /// The name field: the first 100 bytes of `name`, as they are, from its two parts
    /// (a folder's name and its slash).
    pub(super) fn name(&mut self, [first, second]: [&[u8]; 2]) {
        let field = &mut self.0[NAME];
        literal(field, first);
        if let Some(rest) = field.get_mut(first.len()..) {
            literal(rest, second);
        }
    }

    /// The link target field: the first 100 bytes of `link`, as they are.
    pub(super) fn link(&mut self, link: &[u8]) {
        literal(&mut self.0[LINK], link);
    }

    /// The owner and group names, each as it is (the caller leaves out one that does
    /// not fit its 32 bytes).
    pub(super) fn owners(&mut self, uname: &[u8], gname: &[u8]) {
        literal(&mut self.0[UNAME], uname);
        literal(&mut self.0[GNAME], gname);
    }

    pub(super) fn mode(&mut self, mode: u32) {
        octal(&mut self.0[MODE], mode.into());
    }

    pub(super) fn uid(&mut self, uid: u64) {
        self.number(UID, uid);
    }

    pub(super) fn gid(&mut self, gid: u64) {
        self.number(GID, gid);
    }

    pub(super) fn size(&mut self, size: u64) {
        self.number(SIZE, size);
    }

    /// The mtime; one before 1970 in GNU base-256, negative: the two's complement,
    /// sign-extended over the whole field, which GNU tar reads back.
    pub(super) fn mtime(&mut self, mtime: i64) {
        self.number(MTIME, mtime as u64);
        if mtime < 0 {
            self.0[MTIME.start..MTIME.end - 8].fill(0xff);
        }
    }

    pub(super) fn type_flag(&mut self, flag: u8) {
        self.0[TYPE_FLAG] = flag;
    }

    /// A device's numbers, in octal (as the crate, keeping the low digits of one too
    /// large for its field).
    pub(super) fn device(&mut self, major: u32, minor: u32) {
        octal(&mut self.0[DEV_MAJOR], major.into());
        octal(&mut self.0[DEV_MINOR], minor.into());
    }

    /// The block, its checksum set.
    pub(super) fn finish(mut self) -> [u8; BLOCK] {
        let sum = checksum(&self.0) as u64;
        octal(&mut self.0[CHECKSUM], sum);
        self.0
    }

    /// A number field: octal while it fits, else GNU base-256 (as `tar`'s
    /// `num_field_wrapper_into`: 7 octal digits in an 8-byte field, 11 in a 12-byte one).
    fn number(&mut self, field: std::ops::Range<usize>, value: u64) {
        let field = &mut self.0[field];
        let octal_digits = 3 * (field.len() as u32 - 1);
        if value >> octal_digits == 0 {
            octal(field, value);
        } else {
            let len = field.len();
            field.fill(0);
            field[len - 8..].copy_from_slice(&value.to_be_bytes());
            field[0] |= 0x80;
        }
    }
}

/// `value`'s octal digits, zero-padded, then a NUL, as the crate's `octal_into` writes
/// them: its low digits when it has more than the field holds.
fn octal(field: &mut [u8], mut value: u64) {
    let (last, digits) = field.split_last_mut().expect("a field of some bytes");
    *last = 0;
    for digit in digits.iter_mut().rev() {
        *digit = b'0' + (value & 7) as u8;
        value >>= 3;
    }
}

/// The first bytes of `value` that fit in `field`, the rest of it zeros.
fn literal(field: &mut [u8], value: &[u8]) {
    let kept = value.len().min(field.len());
    field[..kept].copy_from_slice(&value[..kept]);
    field[kept..].fill(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Numbers at and around every boundary between octal and base-256.
    fn numbers() -> Vec<u64> {
        let mut all = vec![0, 1, 7, 8, 0o644, 0o7777, 1000, 65_534, 1_700_000_000];
        for bits in [21, 24, 32, 33, 40, 56, 63] {
            all.extend([(1 << bits) - 1, 1 << bits, (1 << bits) + 1]);
        }
        all.push(u64::MAX);
        all
    }

    #[test]
    fn blocks_are_the_tar_crates_byte_for_byte() {
        for (i, value) in numbers().into_iter().enumerate() {
            let mode = (value & 0o7777) as u32;
            let device = (value as u32, (value >> 7) as u32);
            let mut theirs = tar::Header::new_gnu();
            theirs.set_mode(mode);
            theirs.set_uid(value);
            theirs.set_gid(value / 3);
            theirs.set_size(value);
            theirs.set_mtime(value);
            theirs.set_entry_type(tar::EntryType::new(b'0' + (i % 8) as u8));
            theirs.set_device_major(device.0).unwrap();
            theirs.set_device_minor(device.1).unwrap();
            theirs.set_username("alice").unwrap();
            theirs.set_groupname("staff").unwrap();
            theirs.as_old_mut().name[..5].copy_from_slice(b"a/b.c");
            theirs.set_link_name_literal("../t").unwrap();
            theirs.set_cksum();
            let mut ours = Block::gnu();
            ours.mode(mode);
            ours.uid(value);
            ours.gid(value / 3);
            ours.size(value);
            ours.number(MTIME, value);
            ours.type_flag(b'0' + (i % 8) as u8);
            ours.device(device.0, device.1);
            ours.owners(b"alice", b"staff");
            ours.name([b"a/b", b".c"]);
            ours.link(b"../t");
            assert_eq!(ours.finish()[..], theirs.as_bytes()[..], "{value}");
        }
    }

    #[test]
    fn a_fresh_ustar_block_is_the_crates() {
        let mut theirs = tar::Header::new_ustar();
        theirs.set_cksum();
        assert_eq!(Block::ustar().finish()[..], theirs.as_bytes()[..]);
        let mut theirs = tar::Header::new_gnu();
        theirs.set_cksum();
        assert_eq!(Block::gnu().finish()[..], theirs.as_bytes()[..]);
    }
}
