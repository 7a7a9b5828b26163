//! A header's numbers read straight from its block: the checksum summed in one pass, and
//! the common octal fields parsed without the `tar` crate's detour through a string
//! (UTF-8 check, trim, radix parse), which a restore pays for every field of every
//! header, twice. Anything else (a
//! base-256 number, stray bytes) goes to the crate's own reader, so that what is accepted
//! and refused does not change.

use super::BLOCK;

/// Where the checksum field is in a header block.
pub(super) const CHECKSUM: std::ops::Range<usize> = 148..156;

/// The checksum of `block` as tar computes it: the sum of its bytes, the checksum field
/// counted as spaces. Eight bytes at a time, in 16-bit lanes that cannot overflow: a
/// block's 64 words add at most 2 × 64 × 255 to a lane.
pub(super) fn checksum(block: &[u8; BLOCK]) -> i64 {
    const LOW: u64 = 0x00ff_00ff_00ff_00ff;
    let mut lanes = 0u64;
    for word in block.chunks_exact(8) {
        let word = u64::from_le_bytes(word.try_into().expect("eight bytes"));
        lanes += (word & LOW) + ((word >> 8) & LOW);
    }
    let all = (0..4).map(|i| (lanes >> (16 * i)) & 0xffff).sum::<u64>();
    let field: u64 = block[CHECKSUM].iter().map(|&b| u64::from(b)).sum();
    (all - field + 8 * u64::from(b' ')) as i64
}

/// The checksum as some old tars computed it, summing signed bytes.
pub(super) fn signed_checksum(block: &[u8; BLOCK]) -> i64 {
    let all: i32 = block.iter().map(|&b| i32::from(b as i8)).sum();
    let field: i32 = block[CHECKSUM].iter().map(|&b| i32::from(b as i8)).sum();
    i64::from(all - field + 8 * i32::from(b' '))
}

/// The number in the octal field `field` when it is plain ASCII octal: digits, with
/// spaces before or after and NULs after. `None` for anything else (empty, base-256, or
/// other bytes): the caller then reads it as the `tar` crate does.
pub(super) fn plain_octal(field: &[u8]) -> Option<u64> {
    // The crate reads up to the first NUL, then trims spaces on both sides.
    // A field is at most 12 bytes: a plain loop beats memchr's set-up.
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    let text = field[..end].trim_ascii();
    if text.is_empty() || text.len() > 21 {
        return None;
    }
    let mut n = 0u64;
    for &b in text {
        if !(b'0'..=b'7').contains(&b) {
            return None;
        }
        n = (n << 3) | u64::from(b - b'0');
    }
    Some(n)
}

/// The number of the field at `range` of `block`, plain octal read here, anything else
/// by `slow` (the `tar` crate's reader of that field).
pub(super) fn field<E>(
    block: &[u8; BLOCK],
    range: std::ops::Range<usize>,
    slow: impl FnOnce() -> Result<u64, E>,
) -> Result<u64, E> {
    plain_octal(&block[range]).map_or_else(slow, Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_octal_reads_what_the_tar_crate_reads_and_leaves_it_the_rest() {
        for (field, n) in [
            (&b"0000644\0"[..], Some(0o644)),
            (b" 644 \0\0\0", Some(0o644)),
            (b"00000001750\0", Some(0o1750)),
            (b"777777777777", Some(0o777777777777)),
            (b"0000000\0", Some(0)),
        ] {
            assert_eq!(plain_octal(field), n, "{field:?}");
            // The crate reads the same from an 8-byte field.
            if field.len() == 8 {
                let mut header = tar::Header::new_old();
                header.as_old_mut().mode.copy_from_slice(field);
                assert_eq!(header.mode().ok().map(u64::from), n, "{field:?}");
            }
        }
        // Left to the crate: empty, base-256, a digit that is not octal, a NUL inside.
        for field in [
            &b"\0\0\0\0\0\0\0\0"[..],
            b"        ",
            b"\x80\0\0\0\0\0\x01\0",
            b"0000648\0",
        ] {
            assert_eq!(plain_octal(field), None, "{field:?}");
        }
    }

    #[test]
    fn the_checksums_are_those_of_the_tar_crate_and_of_signed_bytes() {
        let mut header = tar::Header::new_gnu();
        header.set_path("a/é/file").unwrap();
        header.set_size(12345);
        header.as_mut_bytes()[300] = 0xff;
        header.set_cksum();
        let block: &[u8; BLOCK] = header.as_bytes();
        let (unsigned, signed) = (checksum(block), signed_checksum(block));
        assert_eq!(unsigned, i64::from(header.cksum().unwrap()));
        let high = block.iter().filter(|&&b| b >= 0x80).count() as i64;
        assert!(high >= 3);
        assert_eq!(signed, unsigned - 256 * high);
    }
}
