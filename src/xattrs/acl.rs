//! POSIX ACLs: the binary form the kernel keeps in `system.posix_acl_access` and
//! `system.posix_acl_default`, and the text form GNU tar stores in its `SCHILY.acl.*`
//! records (`getfacl`'s, one entry a line: `user::rw-`, `user:alice:r--`, `mask::r--`).
//!
//! Named entries are written with the user's or group's name, as GNU tar writes them, or
//! its number when it has none; reading takes a name (looked up on this machine, as
//! `tar -x` does), a number, or star's and bsdtar's form with the number after the
//! permissions (`user:alice:r--:1000`), entries separated by new lines or commas.

use std::fmt;

use nix::unistd::{Gid, Group, Uid, User};

/// The only version of the binary form.
const VERSION: u32 = 2;

/// The owner's entry (`user::`).
const USER_OBJ: u16 = 0x01;
/// A named user's entry.
const USER: u16 = 0x02;
/// The owning group's entry (`group::`).
const GROUP_OBJ: u16 = 0x04;
/// A named group's entry.
const GROUP: u16 = 0x08;
/// The mask: the most a named entry or the group gets.
const MASK: u16 = 0x10;
/// Everyone else's entry (`other::`).
const OTHER: u16 = 0x20;

/// The id of an entry that names no one.
const NO_ID: u32 = u32::MAX;

/// The most entries an ACL may hold here: far more than any file system keeps (ext4
/// takes about 500 in a block), and a bound on what hostile text can make us build.
const MAX_ENTRIES: usize = 8192;

/// One entry of an ACL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    /// Whose entry it is (one of the tags above).
    tag: u16,
    /// The user or group id of a named entry, [`NO_ID`] for the others.
    id: u32,
    /// Read 4, write 2, execute 1.
    perm: u16,
}

/// Why an ACL could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(String);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Invalid {}

fn invalid(why: impl Into<String>) -> Invalid {
    Invalid(why.into())
}

/// The entries of an ACL in the kernel's binary form.
pub fn decode(value: &[u8]) -> Result<Vec<Entry>, Invalid> {
    let (head, body) = value
        .split_at_checked(4)
        .ok_or_else(|| invalid("an ACL shorter than its header"))?;
    let version = u32::from_le_bytes(head.try_into().expect("four bytes"));
    if version != VERSION || body.len() % 8 != 0 {
        return Err(invalid(format!(
            "an ACL of version {version} and {} bytes, not one this program reads",
            value.len()
        )));
    }
    Ok(body
        .chunks_exact(8)
        .map(|e| Entry {
            tag: u16::from_le_bytes([e[0], e[1]]),
            perm: u16::from_le_bytes([e[2], e[3]]),
            id: u32::from_le_bytes([e[4], e[5], e[6], e[7]]),
        })
        .collect())
}

/// The kernel's binary form of `entries`, sorted as it wants them.
pub fn encode(entries: &[Entry]) -> Vec<u8> {
    let mut sorted = entries.to_vec();
    sorted.sort_by_key(|e| (e.tag, e.id));
    let mut out = Vec::with_capacity(4 + 8 * sorted.len());
    out.extend_from_slice(&VERSION.to_le_bytes());
    for e in sorted {
        out.extend_from_slice(&e.tag.to_le_bytes());
        out.extend_from_slice(&e.perm.to_le_bytes());
        out.extend_from_slice(&e.id.to_le_bytes());
    }
    out
}

/// The permission bits (`0o777`) a file with the access ACL `entries` has: the owner's
/// entry, the mask's (or, with no mask, the group's) and everyone else's; `None` for an
/// ACL without them.
pub fn mode_bits(entries: &[Entry]) -> Option<u32> {
    let perm = |tag: u16| {
        entries
            .iter()
            .find(|e| e.tag == tag)
            .map(|e| u32::from(e.perm & 7))
    };
    let group = perm(MASK).or_else(|| perm(GROUP_OBJ))?;
    Some(perm(USER_OBJ)? << 6 | group << 3 | perm(OTHER)?)
}

/// GNU tar's text form of `entries`: one a line, each ending in a new line.
pub fn to_text(entries: &[Entry]) -> Result<String, Invalid> {
    let mut text = String::new();
    for e in entries {
        let (tag, who) = match e.tag {
            USER_OBJ => ("user", String::new()),
            USER => ("user", user_name(e.id)),
            GROUP_OBJ => ("group", String::new()),
            GROUP => ("group", group_name(e.id)),
            MASK => ("mask", String::new()),
            OTHER => ("other", String::new()),
            tag => return Err(invalid(format!("an ACL entry of unknown type {tag:#x}"))),
        };
        let bit = |b: u16, c: char| if e.perm & b != 0 { c } else { '-' };
        text.push_str(&format!(
            "{tag}:{who}:{}{}{}\n",
            bit(4, 'r'),
            bit(2, 'w'),
            bit(1, 'x')
        ));
    }
    Ok(text)
}

/// The entries of an ACL in text form (see the module's documentation).
pub fn from_text(text: &str) -> Result<Vec<Entry>, Invalid> {
    let mut entries = Vec::new();
    for line in text.split(['\n', ',']) {
        // A comment (`#effective:r--`, which getfacl adds) runs to the end of its entry.
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        if entries.len() == MAX_ENTRIES {
            return Err(invalid(format!("an ACL of over {MAX_ENTRIES} entries")));
        }
        entries.push(entry(line)?);
    }
    Ok(entries)
}

/// One entry of the text form: `tag:qualifier:perms`, maybe with `:id` after.
fn entry(line: &str) -> Result<Entry, Invalid> {
    let fields: Vec<&str> = line.split(':').map(str::trim).collect();
    let bad = || invalid(format!("an ACL entry {line:?} that is not one"));
    let (tag, who, perms, id) = match fields[..] {
        [tag, who, perms] => (tag, who, perms, None),
        [tag, who, perms, id] => (tag, who, perms, Some(id)),
        _ => return Err(bad()),
    };
    let mut perm = 0;
    for c in perms.chars() {
        perm |= match c {
            'r' => 4,
            'w' => 2,
            'x' => 1,
            '-' => 0,
            _ => return Err(bad()),
        };
    }
    let named = !who.is_empty();
    let tag = match (tag, named) {
        ("user" | "u", false) => USER_OBJ,
        ("user" | "u", true) => USER,
        ("group" | "g", false) => GROUP_OBJ,
        ("group" | "g", true) => GROUP,
        ("mask" | "m", false) => MASK,
        ("other" | "o", false) => OTHER,
        _ => return Err(bad()),
    };
    let id = if named {
        let number = id.and_then(|id| id.parse::<u32>().ok());
        resolve(&unescaped(who), tag == USER)
            .or(number)
            .ok_or_else(|| invalid(format!("an ACL entry for {who:?}, unknown here")))?
    } else {
        NO_ID
    };
    Ok(Entry { tag, id, perm })
}

/// The id of the user (or group) `who`: a name on this machine, or a number.
fn resolve(who: &str, user: bool) -> Option<u32> {
    let by_name = if user {
        User::from_name(who).ok().flatten().map(|u| u.uid.as_raw())
    } else {
        Group::from_name(who).ok().flatten().map(|g| g.gid.as_raw())
    };
    by_name.or_else(|| who.parse().ok().filter(|&id| id != NO_ID))
}

fn user_name(id: u32) -> String {
    let name = User::from_uid(Uid::from_raw(id)).ok().flatten();
    plain(name.map(|u| u.name)).unwrap_or_else(|| id.to_string())
}

fn group_name(id: u32) -> String {
    let name = Group::from_gid(Gid::from_raw(id)).ok().flatten();
    plain(name.map(|g| g.name)).unwrap_or_else(|| id.to_string())
}

/// A name that the text form holds as it is: one with a separator or a space in it would
/// need libacl's escapes (`\040`), so it is written as its number instead.
fn plain(name: Option<String>) -> Option<String> {
    name.filter(|n| {
        !n.is_empty() && !n.contains([':', ',', '#', '\\']) && !n.contains(char::is_whitespace)
    })
}

/// A name as libacl writes it, its special characters as `\ooo`.
fn unescaped(name: &str) -> String {
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push(
                    (u32::from(d[0] - b'0') * 64
                        + u32::from(d[1] - b'0') * 8
                        + u32::from(d[2] - b'0')) as u8,
                );
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `setfacl -m u:nobody:rw f` on a file of mode 644, as the kernel keeps it.
    const BINARY: &[u8] = &[
        2, 0, 0, 0, 1, 0, 6, 0, 255, 255, 255, 255, 2, 0, 6, 0, 254, 255, 0, 0, 4, 0, 4, 0, 255,
        255, 255, 255, 16, 0, 6, 0, 255, 255, 255, 255, 32, 0, 4, 0, 255, 255, 255, 255,
    ];

    #[test]
    fn the_binary_form_becomes_gnu_tars_text_and_back() {
        let entries = decode(BINARY).unwrap();
        let text = to_text(&entries).unwrap();
        let nobody = user_name(65534);
        assert_eq!(
            text,
            format!("user::rw-\nuser:{nobody}:rw-\ngroup::r--\nmask::rw-\nother::r--\n")
        );
        assert_eq!(from_text(&text).unwrap(), entries);
        assert_eq!(encode(&entries), BINARY);
        assert_eq!(mode_bits(&entries), Some(0o664));
        assert_eq!(mode_bits(&entries[..2]), None);
    }

    #[test]
    fn star_and_bsdtar_forms_are_read_too() {
        let text = "user::rw-,user:no-such-user-here:rw-:65534,group::r--,mask::rw-,other::r--";
        assert_eq!(from_text(text).unwrap(), decode(BINARY).unwrap());
        let commented =
            "user::rw-\nuser:65534:rw-\t#effective:rw-\ngroup::r--\nmask::rw-\no::r--\n";
        assert_eq!(encode(&from_text(commented).unwrap()), BINARY);
    }

    #[test]
    fn what_is_not_an_acl_is_refused() {
        assert!(decode(&[2, 0, 0]).is_err());
        assert!(decode(&[3, 0, 0, 0]).is_err());
        assert!(decode(&BINARY[..BINARY.len() - 1]).is_err());
        for text in [
            "user",
            "user::rwz",
            "mask:x:rw-",
            "owner::rw-",
            "user:no-such-user-here:r--",
        ] {
            assert!(from_text(text).is_err(), "{text}");
        }
        assert_eq!(unescaped("a\\040b\\\\x"), "a b\\\\x");
        assert_eq!(plain(Some("a b".to_owned())), None);
        let many = "user::rw-\n".repeat(MAX_ENTRIES + 1);
        assert!(from_text(&many).is_err());
    }
}
