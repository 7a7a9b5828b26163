use super::*;

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
        mtime_nsec: (header as u32 * 7919) % 1_000_000_000,
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
