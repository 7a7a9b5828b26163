//! The data of a GNU dumpdir entry: one child of the folder a name, each after a flag
//! (`Y` stored in this archive, `N` not stored, `D` a folder), NUL-terminated, and an
//! empty name at the end (GNU tar manual, "Dumpdir").

/// The flag of a child folder.
pub const FOLDER: u8 = b'D';
/// The flag of a child stored in this archive.
pub const STORED: u8 = b'Y';
/// The flag of a child not stored, because it did not change since the previous backup.
pub const NOT_STORED: u8 = b'N';

/// A dumpdir's data for `children`, each a flag and a name, then the empty name.
pub fn encode<'n>(children: impl IntoIterator<Item = (u8, &'n [u8])>) -> Vec<u8> {
    let mut data = Vec::new();
    for (flag, name) in children {
        data.push(flag);
        data.extend_from_slice(name);
        data.push(0);
    }
    data.push(0);
    data
}

/// Listings larger than this are refused, as the reader refuses long names past its cap:
/// one folder of a million files of 30-byte names fits, and a hostile archive cannot make
/// a restore hold more than this (and its index) for one folder.
pub const MAX_LISTING: u64 = 32 << 20;

/// The children a dumpdir lists, looked up by name: an index into the data (four bytes
/// a child), not a copy of it. Flags GNU tar uses for renames (`R`, `T`, `X`) are never
/// written here and are skipped.
#[derive(Debug)]
pub struct Listing<'a> {
    data: &'a [u8],
    /// Where each child's flag is in `data`, sorted by the child's name.
    index: Vec<u32>,
}

impl<'a> Listing<'a> {
    /// The listing in `data`, up to its empty name. `data` must be at most
    /// [`MAX_LISTING`] bytes long (the reader refuses longer ones).
    pub fn new(data: &'a [u8]) -> Self {
        let mut index = Vec::new();
        let mut at = 0;
        for entry in data.split(|&b| b == 0) {
            if entry.is_empty() {
                break;
            }
            if matches!(entry[0], STORED | NOT_STORED | FOLDER) {
                index.push(at as u32);
            }
            at += entry.len() + 1;
        }
        let mut listing = Listing { data, index };
        let data = listing.data;
        listing
            .index
            .sort_unstable_by(|&a, &b| name_at(data, a).cmp(name_at(data, b)));
        listing
    }

    /// The flag of the child `name`, if it is listed.
    pub fn flag(&self, name: &[u8]) -> Option<u8> {
        let i = self
            .index
            .binary_search_by(|&at| name_at(self.data, at).cmp(name))
            .ok()?;
        Some(self.data[self.index[i] as usize])
    }

    /// The children, each with its flag, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (u8, &'a [u8])> + '_ {
        let data = self.data;
        self.index
            .iter()
            .map(move |&at| (data[at as usize], name_at(data, at)))
    }

    /// A child's name that is not one name of one folder (empty, `.`, `..`, or with a
    /// `/`), if the listing has one.
    pub fn bad_name(&self) -> Option<&'a [u8]> {
        self.iter()
            .map(|(_, name)| name)
            .find(|name| is_bad_name(name))
    }
}

/// Whether a child's name is not one name of one folder: empty, `.`, `..`, or with a `/`.
pub fn is_bad_name(name: &[u8]) -> bool {
    name.is_empty() || name == b"." || name == b".." || name.contains(&b'/')
}

/// The name whose flag is at `at` in `data`.
fn name_at(data: &[u8], at: u32) -> &[u8] {
    let rest = &data[at as usize + 1..];
    let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    &rest[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dumpdir_lists_flags_and_names_up_to_the_empty_one() {
        let data = b"Yb\0Da\0Nc\0\0Yignored\0";
        let listing = Listing::new(data);
        assert_eq!(
            listing.iter().collect::<Vec<_>>(),
            vec![(b'D', &b"a"[..]), (b'Y', &b"b"[..]), (b'N', &b"c"[..])]
        );
        assert_eq!(listing.flag(b"b"), Some(b'Y'));
        assert_eq!(listing.flag(b"ignored"), None);
        assert_eq!(listing.bad_name(), None);
        assert!(Listing::new(b"\0").iter().next().is_none());
        assert_eq!(Listing::new(b"Ya/b\0\0").bad_name(), Some(&b"a/b"[..]));
        assert_eq!(Listing::new(b"Da\0N..\0\0").bad_name(), Some(&b".."[..]));
    }

    #[test]
    fn encoding_then_parsing_gives_the_children_back_sorted() {
        let data = encode([(STORED, &b"b"[..]), (FOLDER, b"a"), (NOT_STORED, b"c")]);
        assert_eq!(data, b"Yb\0Da\0Nc\0\0");
        assert_eq!(
            Listing::new(&data).iter().collect::<Vec<_>>(),
            [(FOLDER, &b"a"[..]), (STORED, b"b"), (NOT_STORED, b"c")]
        );
    }
}
