//! The index written beside an archive, made from the entries as the backup wrote them,
//! is the very index made again from the archive's bytes (`verify --rebuild-index`):
//! for a tree of everything a header holds in other ways (long names and links, names
//! that are not UTF-8, hard links, a FIFO, a device, empty and large files, nanosecond
//! and pre-1970 mtimes, extended attributes), plain, gzip, zstd, and a chain of a full
//! backup and incrementals.

mod common;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use common::TestHome;

/// Runs a command that is expected to work here; false when it is missing or fails
/// (an optional part of the tree, such as a device node outside root).
fn try_run(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|out| out.status.success())
}

fn make_tree(root: &Path) {
    let long_dir = root.join("d".repeat(120));
    fs::create_dir_all(long_dir.join("e".repeat(90))).unwrap();
    fs::write(long_dir.join("f".repeat(150)), "under a long folder\n").unwrap();
    fs::write(root.join("n".repeat(100)), "a name of exactly 100 bytes\n").unwrap();
    fs::write(
        root.join(OsStr::from_bytes(b"caf\xe9-latin1.txt")),
        "not UTF-8\n",
    )
    .unwrap();
    fs::write(root.join("empty"), "").unwrap();
    fs::create_dir(root.join("empty-folder")).unwrap();
    // Larger than a file read whole, and than one whose pages the kernel moves.
    let large: Vec<u8> = (0..5u32 << 20).map(|i| (i % 253) as u8).collect();
    fs::write(root.join("large.bin"), &large).unwrap();
    fs::write(root.join("medium.bin"), &large[..300_000]).unwrap();
    symlink("t".repeat(200), root.join("far-link")).unwrap();
    symlink("../a/./b//c/", root.join("odd-link")).unwrap();
    fs::hard_link(root.join("medium.bin"), root.join("medium-again.bin")).unwrap();
    let path = |name: &str| root.join(name).to_str().unwrap().to_owned();
    assert!(try_run("mkfifo", &[&path("fifo")]), "mkfifo");
    // A device only as root (the tests' usual case); the rest holds without it.
    try_run("mknod", &[&path("null-device"), "c", "1", "3"]);
    let stamp = |when: &str, name: &str| {
        assert!(
            try_run("touch", &["-h", "-d", when, &path(name)]),
            "touch {name}"
        );
    };
    fs::write(root.join("nanos.txt"), "with a fraction\n").unwrap();
    stamp("2020-01-02 03:04:05.123456789", "nanos.txt");
    fs::write(root.join("old.txt"), "from before 1970\n").unwrap();
    stamp("1965-06-07 08:09:10.5", "old.txt");
    // Extended attributes where the file system keeps them.
    try_run(
        "setfattr",
        &["-n", "user.note", "-v", "kept", &path("empty")],
    );
}

/// Checks, for each archive file named, that `verify` finds its index sound and that
/// the index made again from it is, byte for byte, the one written with it.
fn assert_indexes_agree(home: &TestHome, archives: &[String]) {
    for archive in archives {
        let index = home.archive_path(&format!(".{archive}.idx"));
        let written = fs::read(&index).unwrap();
        let out = home.manager(&["verify", archive]);
        out.success();
        assert!(!out.stderr.contains("index"), "{archive}: {}", out.stderr);
        fs::remove_file(&index).unwrap();
        home.manager(&["verify", archive, "--rebuild-index"])
            .success();
        let rebuilt = fs::read(&index).unwrap();
        assert!(
            rebuilt == written,
            "{archive}: the index written with it ({} bytes) is not the one made from it ({} bytes)",
            written.len(),
            rebuilt.len()
        );
    }
}

/// The archive files `backups` lists, newest first.
fn archives(home: &TestHome) -> Vec<String> {
    let out = home.manager(&["backups"]);
    out.success();
    out.stdout_lines().iter().map(|s| s.to_string()).collect()
}

#[test]
fn the_index_written_is_the_one_made_from_plain_gzip_and_zstd_archives() {
    let home = TestHome::new();
    make_tree(&home.path().join("src"));
    home.back_up(&[], "src;03:00;plain");
    home.back_up(&["--compress", "gzip"], "src;03:00;gz");
    home.back_up(&["--compress", "zstd"], "src;03:00;zst");
    let archives = archives(&home);
    assert_eq!(archives.len(), 3, "{archives:?}");
    assert_indexes_agree(&home, &archives);
}

#[test]
fn the_index_written_is_the_one_made_from_each_archive_of_a_chain() {
    let home = TestHome::new();
    let src = home.path().join("src");
    make_tree(&src);
    home.manager(&["create", "--incremental", "src;03:00;chain"])
        .success();
    home.run_ok(0);
    // Changed, added, removed: the incrementals hold dumpdirs that list what is kept.
    fs::write(src.join("nanos.txt"), "changed\n").unwrap();
    fs::create_dir(src.join("new-folder")).unwrap();
    fs::write(src.join("new-folder/new.txt"), "new\n").unwrap();
    home.run_ok(0);
    fs::remove_file(src.join("medium-again.bin")).unwrap();
    fs::remove_dir_all(src.join("d".repeat(120))).unwrap();
    home.run_ok(0);
    let archives = archives(&home);
    assert_eq!(archives.len(), 3, "{archives:?}");
    assert_indexes_agree(&home, &archives);
}
