//! What an entry keeps beyond its header's fields, in a pax extended header (type `x`)
//! before it, as GNU tar writes them with `--posix --xattrs --acls`: the nanoseconds of
//! its mtime (`mtime=1577934245.123456789`), its extended attributes
//! (`SCHILY.xattr.NAME=VALUE`, the value as is, binary too) and its POSIX ACLs in text
//! form (`SCHILY.acl.access`, `SCHILY.acl.default`). The rest of the entry stays in GNU
//! tar's own format, so that readers without pax support still read every header.
//!
//! Reading also takes the SELinux label GNU tar's `--selinux` writes
//! (`RHT.security.selinux`). A pax header larger than [`MAX_META`] is refused by the
//! reader, and the walk never writes one larger than [`BUDGET`].
//!
//! [`MAX_META`]: super::MAX_META

use super::block::Block;
use super::{BLOCK, padding};

/// The most the records of one entry take when written: half of what a reader takes
/// ([`super::MAX_META`]), so that every archive written is read back.
pub const BUDGET: usize = 512 * 1024;

const XATTR: &[u8] = b"SCHILY.xattr.";
const ACL_ACCESS: &[u8] = b"SCHILY.acl.access";
const ACL_DEFAULT: &[u8] = b"SCHILY.acl.default";
const SELINUX: &[u8] = b"RHT.security.selinux";

/// An entry's extended attributes and ACLs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extras {
    /// Extended attributes, name and value, but for the ACLs' own.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// The access ACL, in GNU tar's text form, when it says more than the mode.
    pub acl_access: Option<Vec<u8>>,
    /// A folder's default ACL, in text form.
    pub acl_default: Option<Vec<u8>>,
}

impl Extras {
    /// Whether there is nothing to keep.
    pub fn is_empty(&self) -> bool {
        self.xattrs.is_empty() && self.acl_access.is_none() && self.acl_default.is_none()
    }

    /// The bytes its records take in a pax header.
    pub fn record_bytes(&self) -> usize {
        let xattrs = self
            .xattrs
            .iter()
            .map(|(name, value)| record_len(XATTR.len() + encoded_name(name).len(), value.len()));
        let acls = [
            (ACL_ACCESS, &self.acl_access),
            (ACL_DEFAULT, &self.acl_default),
        ]
        .into_iter()
        .filter_map(|(key, text)| text.as_ref().map(|t| record_len(key.len(), t.len())));
        xattrs.chain(acls).sum()
    }
}

/// The pax records of an entry of mtime `secs` and `nsec`, with `extras`: empty when its
/// header's fields say it all.
pub fn records(secs: i64, nsec: u32, extras: &Extras) -> Vec<u8> {
    let mut out = Vec::new();
    if nsec != 0 {
        record(&mut out, b"mtime", mtime(secs, nsec).as_bytes());
    }
    if let Some(text) = &extras.acl_access {
        record(&mut out, ACL_ACCESS, text);
    }
    if let Some(text) = &extras.acl_default {
        record(&mut out, ACL_DEFAULT, text);
    }
    for (name, value) in &extras.xattrs {
        let mut key = XATTR.to_vec();
        key.extend_from_slice(&encoded_name(name));
        record(&mut out, &key, value);
    }
    out
}

/// Appends the pax header holding `records`, for the entry `name` of mtime `secs`, to
/// `out`: named `DIR/PaxHeaders/NAME` as GNU tar names it (a name that does not fit is
/// cut: readers ignore it).
pub fn encode(name: &[u8], secs: i64, records: &[u8], out: &mut Vec<u8>) {
    let (dir, leaf) = match memchr::memrchr(b'/', name) {
        Some(at) => (&name[..at], &name[at + 1..]),
        None => (&b"."[..], name),
    };
    let mut pax_name = [dir, b"/PaxHeaders/", leaf].concat();
    pax_name.truncate(100);
    let mut block = Block::ustar();
    block.name([&pax_name, b""]);
    block.mode(0o644);
    block.uid(0);
    block.gid(0);
    block.size(records.len() as u64);
    block.mtime(secs.max(0));
    block.type_flag(tar::EntryType::XHeader.as_byte());
    out.extend_from_slice(&block.finish());
    out.extend_from_slice(records);
    out.resize(out.len() + padding(records.len() as u64) as usize, 0);
    debug_assert_eq!(out.len() % BLOCK, 0);
}

/// The records of a pax header, key and value, read by their lengths: a value may hold
/// new lines and any other byte (the `tar` crate's reader splits at new lines, which
/// binary attributes and ACLs hold). The list ends at the first malformed record.
pub fn parse(data: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let mut rest = data;
    std::iter::from_fn(move || {
        let space = memchr::memchr(b' ', rest)?;
        let digits = &rest[..space];
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let len: usize = std::str::from_utf8(digits).ok()?.parse().ok()?;
        if len <= space + 1 || len > rest.len() {
            return None;
        }
        let record = rest[space + 1..len].strip_suffix(b"\n")?;
        let eq = memchr::memchr(b'=', record)?;
        rest = &rest[len..];
        Some((&record[..eq], &record[eq + 1..]))
    })
}

/// Takes the record `key`=`value` into `extras` if it is one of theirs; false if not.
pub fn apply(key: &[u8], value: &[u8], extras: &mut Extras) -> bool {
    if let Some(name) = key.strip_prefix(XATTR) {
        extras.xattrs.push((decoded_name(name), value.to_vec()));
    } else if key == SELINUX {
        let name = b"security.selinux".to_vec();
        extras.xattrs.retain(|(n, _)| *n != name);
        extras.xattrs.push((name, value.to_vec()));
    } else if key == ACL_ACCESS {
        extras.acl_access = Some(value.to_vec());
    } else if key == ACL_DEFAULT {
        extras.acl_default = Some(value.to_vec());
    } else {
        return false;
    }
    true
}

/// The length of a record of a key and a value of these lengths: `LEN KEY=VALUE\n`,
/// where LEN counts its own digits.
fn record_len(key: usize, value: usize) -> usize {
    let rest = 1 + key + 1 + value + 1;
    let mut len = rest + 1;
    while len.to_string().len() + rest != len {
        len = len.to_string().len() + rest;
    }
    len
}

fn record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let len = record_len(key.len(), value.len());
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// An attribute's name as GNU tar writes it in a key: `%` and `=` as `%25` and `%3D`.
fn encoded_name(name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len());
    for &b in name {
        match b {
            b'%' => out.extend_from_slice(b"%25"),
            b'=' => out.extend_from_slice(b"%3D"),
            b => out.push(b),
        }
    }
    out
}

fn decoded_name(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len());
    let mut i = 0;
    while i < key.len() {
        match &key[i..] {
            [b'%', b'2', b'5', ..] => (out.push(b'%'), i += 3),
            [b'%', b'3', b'D' | b'd', ..] => (out.push(b'='), i += 3),
            [b, ..] => (out.push(*b), i += 1),
            [] => unreachable!("i < len"),
        };
    }
    out
}

/// A time as pax writes it: seconds, and the fraction without trailing zeros; before
/// 1970, `secs` is the second before and the fraction counts up from it (-0.5 is `secs`
/// -1 and `nsec` 500000000), written as GNU tar writes it, `-0.5`.
fn mtime(secs: i64, nsec: u32) -> String {
    if nsec == 0 {
        return secs.to_string();
    }
    let (sign, whole, frac) = if secs < 0 {
        ("-", -(secs + 1), 1_000_000_000 - nsec)
    } else {
        ("", secs, nsec)
    };
    let frac = format!("{frac:09}");
    format!("{sign}{whole}.{}", frac.trim_end_matches('0'))
}

/// Reads a pax time back into whole seconds (rounded down) and nanoseconds. Read byte by
/// byte: a restore reads one for nearly every entry.
pub fn parse_mtime(value: &[u8]) -> Option<(i64, u32)> {
    let (negative, text) = match value {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, value),
    };
    let digit = |b: u8| Some(b.wrapping_sub(b'0')).filter(|d| *d <= 9);
    let (mut whole, mut at) = (0i64, 0);
    while let Some(&b) = text.get(at).filter(|&&b| b != b'.') {
        whole = whole.checked_mul(10)?.checked_add(i64::from(digit(b)?))?;
        at += 1;
    }
    if at == 0 {
        return None;
    }
    // Digits beyond the ninth are below a nanosecond; missing ones are zeros.
    let (mut nsec, mut kept) = (0u32, 0);
    for &b in text.get(at + 1..).unwrap_or_default() {
        let d = digit(b)?;
        if kept < 9 {
            nsec = nsec * 10 + u32::from(d);
            kept += 1;
        }
    }
    nsec *= 10u32.pow(9 - kept);
    Some(match (negative, nsec) {
        (false, _) => (whole, nsec),
        (true, 0) => (-whole, 0),
        (true, _) => (-whole - 1, 1_000_000_000 - nsec),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_as_gnu_tar_writes_them() {
        assert_eq!(mtime(1_577_934_245, 123_456_789), "1577934245.123456789");
        assert_eq!(mtime(1_577_934_245, 500_000_000), "1577934245.5");
        assert_eq!(mtime(-1, 500_000_000), "-0.5");
        assert_eq!(mtime(-2, 0), "-2");
        assert_eq!(mtime(-3, 250_000_000), "-2.75");
        for (secs, nsec) in [(1, 1), (0, 999_999_999), (-1, 1), (-86400, 0), (5, 0)] {
            assert_eq!(
                parse_mtime(mtime(secs, nsec).as_bytes()),
                Some((secs, nsec))
            );
        }
        assert_eq!(parse_mtime(b"12.0000000019"), Some((12, 1)));
        assert_eq!(parse_mtime(b"7."), Some((7, 0)));
        assert_eq!(parse_mtime(b"-7.000000001"), Some((-8, 999_999_999)));
        for bad in [
            "",
            "-",
            "1.2.3",
            "x",
            "1e3",
            ".5",
            "99999999999999999999",
            "1.-5",
        ] {
            assert_eq!(parse_mtime(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn a_malformed_record_ends_the_list() {
        fn all(data: &[u8]) -> Vec<(&[u8], &[u8])> {
            parse(data).collect()
        }
        let two: &[(&[u8], &[u8])] = &[(b"a", b"b\nc=d"), (b"x", b"yyyy")];
        assert_eq!(all(b"11 a=b\nc=d\n9 x=yyyy\n"), two);
        assert_eq!(all(b"9 x=yyyy\n99 a=b\n").len(), 1);
        assert_eq!(all(b"9 x=yyyy\n6 ab\n\n").len(), 1);
        assert_eq!(all(b"-5 a=\n").len(), 0);
        assert_eq!(all(b"2 \n").len(), 0);
        assert_eq!(all(b"").len(), 0);
    }

    #[test]
    fn records_count_their_own_length() {
        for value in [0, 1, 85, 86, 87, 995, 996, 997, 9990] {
            let mut out = Vec::new();
            record(&mut out, b"SCHILY.xattr.user.x", &vec![b'v'; value]);
            let (len, _) = std::str::from_utf8(&out[..6])
                .unwrap()
                .split_once(' ')
                .unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), out.len(), "value of {value}");
        }
    }
}
