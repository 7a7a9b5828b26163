//! Headers written and read back: every kind the walk writes, odd names and numbers,
//! extras, and the limits a reader sets.

use super::*;

fn round_trip(header: &Header) -> Header {
    let mut out = Vec::new();
    header.encode(&mut out);
    assert_eq!(out.len() % BLOCK, 0);
    let last: &[u8; BLOCK] = out[out.len() - BLOCK..].try_into().unwrap();
    decode(last).unwrap().header
}

/// A header of alice's (uid 1000, group users) made in 2023, mode 0644.
fn alices(name: &[u8], kind: Kind) -> Header {
    let mut header = Header::new(name.to_vec(), kind);
    header.mode = 0o644;
    header.uid = 1000;
    header.gid = 100;
    header.uname = b"alice".to_vec();
    header.gname = b"users".to_vec();
    header.mtime = 1_700_000_000;
    header
}

#[test]
fn a_plain_header_round_trips() {
    let mut h = alices(b"dir/file.txt", Kind::File);
    h.mode = 0o4755;
    h.size = 12345;
    assert_eq!(round_trip(&h), h);
}

#[test]
fn big_and_negative_numbers_use_base_256() {
    let mut h = Header::new(b"big".to_vec(), Kind::File);
    h.size = 20 << 30;
    h.mtime = -86400;
    h.uid = 1 << 40;
    assert_eq!(round_trip(&h), h);
    let mut out = Vec::new();
    h.encode(&mut out);
    // GNU base-256, negative: the marker bit and the sign fill the whole field.
    assert_eq!(out[136..140], [0xff; 4]);
}

#[test]
fn link_targets_are_kept_as_written() {
    let mut h = Header::new(b"odd".to_vec(), Kind::Symlink);
    h.link = b"a/./b//c/".to_vec();
    assert_eq!(round_trip(&h), h);
}

#[test]
fn long_names_get_a_longlink_entry() {
    let name = vec![b'n'; 300];
    let mut h = Header::new(name.clone(), Kind::Symlink);
    h.link = vec![b't'; 200];
    let mut out = Vec::new();
    h.encode(&mut out);
    let first: &[u8; BLOCK] = out[..BLOCK].try_into().unwrap();
    let raw = decode(first).unwrap();
    assert_eq!(raw.entry_type, EntryType::GNULongLink);
    // The name GNU tar gives it; a reader does not need it, and decode leaves it.
    assert_eq!(&first[..14], b"././@LongLink\0");
    assert!(raw.header.name.is_empty());
    assert_eq!(raw.header.size, 201);
    assert_eq!(&out[BLOCK..BLOCK + 200], &h.link[..]);
}

/// Headers of every kind the walk writes, with what the format holds in other
/// fields or records: long, odd and non-UTF-8 names, owner names that do not fit,
/// big and negative numbers, nanoseconds, extras.
fn every_kind_of_header() -> Vec<Header> {
    let with = |name: &[u8], kind: Kind, set: &dyn Fn(&mut Header)| {
        let mut header = alices(name, kind);
        set(&mut header);
        header
    };
    vec![
        with(b"top/file", Kind::File, &|h| h.size = 12_345),
        with(b"top/nanos", Kind::File, &|h| h.mtime_nsec = 123_456_789),
        with(b"top/old", Kind::File, &|h| {
            (h.mtime, h.mtime_nsec) = (-86_401, 5)
        }),
        with(b"top/before-1970", Kind::File, &|h| h.mtime = -1),
        with(&[b'n'; 100], Kind::File, &|_| {}),
        with(&[b'n'; 101], Kind::File, &|h| h.size = 1),
        with(&[b'd'; 150], Kind::Dir, &|_| {}),
        with(b"top/./odd//name", Kind::File, &|_| {}),
        with(b"top/\xff\xfe-not-utf8", Kind::File, &|_| {}),
        with(b"top/dir", Kind::Dir, &|h| h.mode = 0o41777),
        with(b"top/dir/", Kind::Dir, &|_| {}),
        with(b"top/dumped", Kind::DUMPDIR, &|h| h.size = 17),
        with(b"top/link", Kind::Symlink, &|h| {
            h.link = b"../a/./b//c/".to_vec()
        }),
        with(b"top/far", Kind::Symlink, &|h| h.link = vec![b't'; 300]),
        with(b"top/hard", Kind::HardLink, &|h| {
            h.link = b"top/file".to_vec()
        }),
        with(b"top/tty", Kind::CharDevice, &|h| h.device = (4, 64)),
        with(b"top/disk", Kind::BlockDevice, &|h| {
            h.device = (259, 1 << 20)
        }),
        with(b"top/fifo", Kind::Fifo, &|h| h.device = (1, 2)),
        with(b"top/big", Kind::File, &|h| {
            (h.size, h.uid) = (20 << 30, 1 << 40)
        }),
        with(b"top/long-owner", Kind::File, &|h| h.uname = vec![b'u'; 33]),
        with(b"top/full-owner", Kind::File, &|h| h.gname = vec![b'g'; 32]),
        with(b"top/odd-owner", Kind::File, &|h| {
            h.uname = b"\xffbad".to_vec()
        }),
        with(b"top/no-owner", Kind::File, &|h| {
            (h.uname, h.gname) = (vec![], vec![])
        }),
        with(b"top/extras", Kind::File, &|h| {
            h.extras.xattrs = vec![(b"user.k=v".to_vec(), b"\0\n bin".to_vec())];
            h.extras.acl_access = Some(b"user::rw-\ngroup::r--\nother::---\n".to_vec());
        }),
        with(
            b"backup_manager full 2026-12-03 07:00",
            Kind::VOLUME_LABEL,
            &|_| {},
        ),
    ]
}

#[test]
fn what_is_read_back_is_the_header_as_stored() {
    for header in every_kind_of_header() {
        let mut blocks = Vec::new();
        header.encode(&mut blocks);
        // The entry is read up to its data, which is not needed.
        let mut reader = super::super::Reader::new(&blocks[..]);
        let read = reader.next_entry().unwrap().unwrap();
        let shown = String::from_utf8_lossy(&header.name).into_owned();
        assert_eq!(read, header.stored(), "{shown}");
    }
}

#[test]
fn a_flipped_byte_breaks_the_checksum() {
    let mut out = Vec::new();
    Header::new(b"x".to_vec(), Kind::File).encode(&mut out);
    out[3] ^= 1;
    let block: &[u8; BLOCK] = out[..BLOCK].try_into().unwrap();
    assert!(matches!(decode(block), Err(HeaderError::Checksum { .. })));
}

#[test]
fn pax_records_override_the_header() {
    let mut h = Header::new(b"short".to_vec(), Kind::File);
    apply_pax(b"15 path=a/long\n11 size=42\n", &mut h).unwrap();
    assert_eq!(h.name, b"a/long");
    assert_eq!(h.size, 42);
}

#[test]
fn extras_go_through_a_pax_header_and_back() {
    let mut header = Header::new(b"d/f".to_vec(), Kind::File);
    header.mtime = 1_577_934_245;
    header.mtime_nsec = 123_456_789;
    header.extras.xattrs = vec![
        (b"user.a=b%c".to_vec(), b"\0\n bin=ary".to_vec()),
        (b"user.empty".to_vec(), Vec::new()),
    ];
    header.extras.acl_access = Some(b"user::rw-\ngroup::r--\nmask::r--\nother::---\n".to_vec());
    let records = pax::records(header.mtime, header.mtime_nsec, &header.extras);
    assert_eq!(records.len(), header.extras.record_bytes() + 30);
    let mut out = Vec::new();
    pax::encode(&header.name, header.mtime, &records, &mut out);
    assert_eq!(&out[..15], b"d/PaxHeaders/f\0");
    let mut back = Header::new(b"d/f".to_vec(), Kind::File);
    apply_pax(&records, &mut back).unwrap();
    assert_eq!(back, header);
}

#[test]
fn what_a_reader_refuses_is_told_before_it_is_written() {
    let mut header = Header::new(vec![b'n'; MAX_META as usize - 1], Kind::File);
    assert_eq!(header.unreadable(0), None);
    header.kind = Kind::Dir;
    let why = header
        .unreadable(0)
        .expect("a folder's name with its slash is too long");
    assert!(why.contains("a name of"), "{why}");
    let mut link = Header::new(b"l".to_vec(), Kind::Symlink);
    link.link = vec![b't'; MAX_META as usize];
    assert!(link.unreadable(0).unwrap().contains("link target"));
    let dumpdir = Header::new(b"d".to_vec(), Kind::DUMPDIR);
    assert_eq!(dumpdir.unreadable(MAX_LISTING), None);
    assert!(
        dumpdir
            .unreadable(MAX_LISTING + 1)
            .unwrap()
            .contains("folder listing")
    );
    // Only a dumpdir's data is a listing.
    assert_eq!(
        Header::new(b"f".to_vec(), Kind::File).unreadable(u64::MAX >> 2),
        None
    );
}
