use super::lookup::BLOCK;
use super::*;
use std::path::Path;

fn entry(name: &str, header: u64) -> Entry {
    Entry {
        name: name.as_bytes().to_vec(),
        type_flag: b'0',
        mode: 0o644,
        uid: 1000,
        gid: 1000,
        uname: b"me".to_vec(),
        gname: b"us".to_vec(),
        size: 1234,
        mtime: 1_700_000_000 + header as i64,
        mtime_nsec: (header as u32).wrapping_mul(7919) % 1_000_000_000,
        header,
        data: header + 512,
        ..Entry::default()
    }
}

fn written(entries: &[Entry], trailer: Trailer) -> Vec<u8> {
    let mut writer = Writer::new(Vec::new()).unwrap();
    for e in entries {
        writer.push(e).unwrap();
    }
    writer.finish(trailer).unwrap()
}

#[test]
fn entries_and_trailer_come_back_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let archive_path = dir.path().join("a.tar");
    std::fs::write(&archive_path, vec![7u8; 100_000]).unwrap();
    let archive = File::open(&archive_path).unwrap();
    let mut entries = vec![
        entry("src", 0),
        entry("src/a.rs", 1024),
        entry("src/b.rs", 4096),
    ];
    entries[0].type_flag = b'D';
    entries[0].listing = b"Ya.rs\0Yb.rs\0\0".to_vec();
    entries[2].link = b"src/a.rs".to_vec();
    entries[2].uname = b"other".to_vec();
    entries[2].mtime = 5;
    let trailer = Trailer {
        identity: Identity::of(&archive).unwrap(),
        compression: Some(Compression::Zstd),
        tar_len: 10240,
        frames: vec![
            Frame { tar: 0, file: 0 },
            Frame {
                tar: 4 << 20,
                file: 999,
            },
        ],
        entries: 0,
    };
    let bytes = written(&entries, trailer.clone());
    let path = dir.path().join("a.tar.idx");
    std::fs::write(&path, &bytes).unwrap();
    let index = Index::open(&path, &archive, None).unwrap();
    assert_eq!(index.trailer.frames, trailer.frames);
    assert_eq!(index.trailer.entries, 3);
    let read: Vec<Entry> = index.entries().unwrap().map(Result::unwrap).collect();
    assert_eq!(read, entries);
}

#[test]
fn an_index_of_version_1_is_read_with_whole_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let archive_path = dir.path().join("a.tar");
    std::fs::write(&archive_path, b"archive").unwrap();
    let archive = File::open(&archive_path).unwrap();
    let trailer = Trailer {
        identity: Identity::of(&archive).unwrap(),
        ..Trailer::default()
    };
    let entries = [entry("a", 0), entry("b", 1024)];
    assert_ne!(entries[1].mtime_nsec, 0);
    let mut writer = Writer::of_version(Vec::new(), 1).unwrap();
    for e in &entries {
        writer.push(e).unwrap();
    }
    let path = dir.path().join("a.tar.idx");
    std::fs::write(&path, writer.finish(trailer).unwrap()).unwrap();
    let index = Index::open(&path, &archive, None).unwrap();
    assert!(!index.has_nanos());
    let read: Vec<Entry> = index.entries().unwrap().map(Result::unwrap).collect();
    let whole: Vec<Entry> = entries
        .iter()
        .map(|e| Entry {
            mtime_nsec: 0,
            ..e.clone()
        })
        .collect();
    assert_eq!(read, whole);
}

#[test]
fn a_damaged_or_foreign_index_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let archive_path = dir.path().join("a.tar");
    std::fs::write(&archive_path, b"archive").unwrap();
    let archive = File::open(&archive_path).unwrap();
    let trailer = Trailer {
        identity: Identity::of(&archive).unwrap(),
        ..Trailer::default()
    };
    let bytes = written(&[entry("a", 0)], trailer);
    let path = dir.path().join("a.tar.idx");
    for at in [0, 9, 20, bytes.len() - 30, bytes.len() - 1] {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x40;
        std::fs::write(&path, &damaged).unwrap();
        assert!(
            Index::open(&path, &archive, None).is_err(),
            "damage at {at} passed"
        );
    }
    std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
    assert!(Index::open(&path, &archive, None).is_err());
    std::fs::write(&path, &bytes).unwrap();
    assert!(Index::open(&path, &archive, None).is_ok());
    std::fs::write(&archive_path, b"another").unwrap();
    let other = File::open(&archive_path).unwrap();
    let err = Index::open(&path, &other, None).err().unwrap();
    assert!(format!("{err:#}").contains("another one"), "{err:#}");
}

/// `count` entries, with owners and modes that change now and then, as a real tree's do.
fn many(count: u64) -> Vec<Entry> {
    (0..count)
        .map(|i| {
            let mut e = entry(&format!("d{:03}/f{:04}", i / 300, i), i * 1024);
            if i % 7 == 0 {
                e.mode = 0o600;
                e.uname = b"root".to_vec();
            }
            e
        })
        .collect()
}

/// The index of `entries` written at `dir`, opened, of `version`.
fn open_written(dir: &Path, entries: &[Entry], version: u32) -> Index {
    let archive_path = dir.join("a.tar");
    std::fs::write(&archive_path, b"archive").unwrap();
    let archive = File::open(&archive_path).unwrap();
    let trailer = Trailer {
        identity: Identity::of(&archive).unwrap(),
        ..Trailer::default()
    };
    let mut writer = Writer::of_version(Vec::new(), version).unwrap();
    for e in entries {
        writer.push(e).unwrap();
    }
    let path = dir.join("a.tar.idx");
    std::fs::write(&path, writer.finish(trailer).unwrap()).unwrap();
    Index::open(&path, &archive, None).unwrap()
}

/// The names `among` gives for `names`, and whether it gave every entry named.
fn names_among(index: &Index, names: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut among = index.among(names).unwrap();
    let mut given = Vec::new();
    while let Some(entry) = among.next_entry() {
        given.push(entry.unwrap().clone());
    }
    given.into_iter().map(|e| e.name).collect()
}

#[test]
fn entries_in_blocks_read_back_whole_and_a_name_is_found_in_its_block_alone() {
    let dir = tempfile::tempdir().unwrap();
    for count in [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 5] {
        let entries = many(count);
        let index = open_written(dir.path(), &entries, VERSION);
        let read: Vec<Entry> = index.entries().unwrap().map(Result::unwrap).collect();
        assert_eq!(read, entries, "{count} entries");
        for at in [0, count / 2, count.saturating_sub(1)] {
            let Some(wanted) = entries.get(at as usize) else {
                continue;
            };
            let given = names_among(&index, std::slice::from_ref(&wanted.name));
            assert!(given.contains(&wanted.name), "entry {at} of {count} missed");
            assert_eq!(given[0], entries[0].name, "the first entry comes first");
            // Its own block and the first entry, and another block only by chance.
            assert!(given.len() as u64 <= 2 * BLOCK + 1, "{} given", given.len());
            let mut whole = given.clone();
            whole.sort();
            whole.dedup();
            assert_eq!(whole.len(), given.len(), "each entry given once");
        }
        let none = names_among(&index, &[b"no such name".to_vec()]);
        assert!(
            none.len() <= BLOCK as usize + 1,
            "{} given for none",
            none.len()
        );
    }
}

#[test]
fn an_index_of_version_2_gives_every_entry_to_a_lookup() {
    let dir = tempfile::tempdir().unwrap();
    let entries = many(BLOCK + 10);
    let index = open_written(dir.path(), &entries, VERSION_WITHOUT_BLOCKS);
    let read: Vec<Entry> = index.entries().unwrap().map(Result::unwrap).collect();
    assert_eq!(read, entries);
    let given = names_among(&index, &[entries[5].name.clone()]);
    assert_eq!(given.len(), entries.len());
}

#[test]
fn a_block_table_out_of_place_is_refused_even_with_a_sound_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let entries = many(2 * BLOCK + 3);
    let index = open_written(dir.path(), &entries, VERSION);
    drop(index);
    let path = dir.path().join("a.tar.idx");
    let archive = File::open(dir.path().join("a.tar")).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let len = bytes.len();
    let trailer_start = u64::from_le_bytes(bytes[len - 24..len - 16].try_into().unwrap());
    // The trailer ends with the blocks' starts: the last varint's first byte follows the
    // one before it, the last byte under 0x80.
    let last = len - 25;
    let mut first = last;
    while bytes[first - 1] >= 0x80 {
        first -= 1;
    }
    // A start far past the entries, and one no later than the block before.
    for (at, byte, what) in [
        (last, 0x7f, "past the entries"),
        (first, 0, "not after the one before"),
    ] {
        let mut damaged = bytes.clone();
        damaged[at] = byte;
        let sum = xxhash_rust::xxh3::xxh3_64(&damaged[..len - 8]);
        damaged[len - 8..].copy_from_slice(&sum.to_le_bytes());
        std::fs::write(&path, &damaged).unwrap();
        let err = Index::open(&path, &archive, None).err();
        assert!(err.is_some(), "a block start {what} passed");
        assert!(format!("{:#}", err.unwrap()).contains("block table"));
    }
    assert!(first > trailer_start as usize);
}

#[test]
fn a_block_whose_entries_run_into_its_filter_is_an_error_to_read_and_to_verify() {
    let dir = tempfile::tempdir().unwrap();
    let entries = many(5);
    drop(open_written(dir.path(), &entries, VERSION));
    let path = dir.path().join("a.tar.idx");
    let archive = File::open(dir.path().join("a.tar")).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let len = bytes.len();
    let trailer_start = u64::from_le_bytes(bytes[len - 24..len - 16].try_into().unwrap());
    // One byte of the filter taken out, the trailer moved back by one and summed again:
    // the block now seems to end a byte before its entries do.
    let mut damaged = bytes[..trailer_start as usize - 1].to_vec();
    damaged.extend_from_slice(&bytes[trailer_start as usize..len - 24]);
    damaged.extend_from_slice(&(trailer_start - 1).to_le_bytes());
    damaged.extend_from_slice(&bytes[len - 16..len - 8]);
    let sum = xxhash_rust::xxh3::xxh3_64(&damaged);
    damaged.extend_from_slice(&sum.to_le_bytes());
    std::fs::write(&path, &damaged).unwrap();
    let index = Index::open(&path, &archive, None).unwrap();
    let read: anyhow::Result<Vec<Entry>> = index.entries().unwrap().collect();
    assert!(read.is_err(), "its entries read as if sound");
    assert!(index.filters_match().is_err() || !index.filters_match().unwrap());
}
