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

/// The children a dumpdir lists, each with its flag, sorted by name. Flags GNU tar uses
/// for renames (`R`, `T`, `X`) are never written here and are skipped.
pub fn parse(data: &[u8]) -> Vec<(u8, &[u8])> {
    let mut listed: Vec<(u8, &[u8])> = data
        .split(|&b| b == 0)
        .take_while(|entry| !entry.is_empty())
        .filter_map(|entry| {
            let (&flag, name) = entry.split_first()?;
            matches!(flag, STORED | NOT_STORED | FOLDER).then_some((flag, name))
        })
        .collect();
    listed.sort_unstable_by(|a, b| a.1.cmp(b.1));
    listed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dumpdir_lists_flags_and_names_up_to_the_empty_one() {
        let data = b"Yb\0Da\0Nc\0\0Yignored\0";
        assert_eq!(
            parse(data),
            vec![(b'D', &b"a"[..]), (b'Y', &b"b"[..]), (b'N', &b"c"[..])]
        );
        assert!(parse(b"\0").is_empty());
    }

    #[test]
    fn encoding_then_parsing_gives_the_children_back_sorted() {
        let data = encode([(STORED, &b"b"[..]), (FOLDER, b"a"), (NOT_STORED, b"c")]);
        assert_eq!(data, b"Yb\0Da\0Nc\0\0");
        assert_eq!(
            parse(&data),
            [(FOLDER, &b"a"[..]), (STORED, b"b"), (NOT_STORED, b"c")]
        );
    }
}
