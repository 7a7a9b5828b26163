//! Archives written by other tools, dropped into `backups/`: `restore` and `verify` take
//! them as GNU tar and bsdtar do, sparse files included, and say so when they cannot.
//!
//! tests/fixtures/foreign/ holds one tree archived by GNU tar in each of its formats and
//! by bsdtar (scripts/make-foreign-fixtures.sh makes them); tests/fixtures/tar-rs/ holds
//! the tar crate's own test archives. Each restore is checked against the tree the script
//! wrote, and against bsdtar's extraction of the same archive when bsdtar is installed
//! (Debian: libarchive-tools; `.ci/run` installs it).

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::TestHome;

/// The time the script gives every file: 2024-03-01 12:00:00 UTC.
const MTIME: i64 = 1_709_294_400;

fn fixtures(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(dir);
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tar"))
        .collect();
    found.sort();
    assert!(!found.is_empty());
    found
}

fn bsdtar() -> Option<&'static str> {
    let found = Command::new("bsdtar").arg("--version").output().is_ok();
    if !found {
        eprintln!(
            "note: bsdtar is not installed (apt-get install libarchive-tools); comparison skipped"
        );
    }
    found.then_some("bsdtar")
}

/// Restores `archive` through `backup_manager` in `home`, into a new folder, which it
/// returns with the command's output.
fn restore(home: &TestHome, archive: &Path) -> (PathBuf, common::Output) {
    let name = archive.file_name().unwrap().to_str().unwrap();
    home.write(&format!("backups/{name}"), fs::read(archive).unwrap());
    let dest = home.path().join(format!("restored-{name}"));
    let out = home.manager(&["restore", name, dest.to_str().unwrap()]);
    (dest, out)
}

/// What a tree holds, path by path: kind, mode, mtime, and contents or link target.
fn describe(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut found = BTreeMap::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let what = if meta.is_dir() {
                stack.push(path.clone());
                // A folder the archive does not hold is made at extraction time, by
                // either tool, maybe a second apart.
                let made_now = (now - meta.mtime()).abs() < 600;
                let mtime = if made_now {
                    "extraction time".to_owned()
                } else {
                    meta.mtime().to_string()
                };
                format!("dir {:o} {mtime}", meta.mode() & 0o7777)
            } else if meta.file_type().is_symlink() {
                format!("link -> {}", fs::read_link(&path).unwrap().display())
            } else {
                let data = fs::read(&path).unwrap();
                format!(
                    "file {:o} {} {} bytes, {:?}",
                    meta.mode() & 0o7777,
                    meta.mtime(),
                    data.len(),
                    // Enough to tell contents apart without printing 64 KiB of zeros.
                    data.iter().enumerate().fold(0u64, |h, (i, &b)| h
                        .wrapping_mul(31)
                        .wrapping_add(b as u64 ^ i as u64))
                )
            };
            found.insert(path.strip_prefix(root).unwrap().to_path_buf(), what);
        }
    }
    found
}

fn assert_same_as_bsdtar(archive: &Path, restored: &Path, home: &TestHome) {
    let Some(bsdtar) = bsdtar() else { return };
    let theirs = home.path().join("bsdtar-extraction");
    let _ = fs::remove_dir_all(&theirs);
    fs::create_dir(&theirs).unwrap();
    let status = Command::new(bsdtar)
        .arg("-xpf")
        .arg(archive)
        .current_dir(&theirs)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "bsdtar could not extract {}",
        archive.display()
    );
    common::assert_same_map(
        &describe(restored),
        &describe(&theirs),
        &format!("{} restored unlike bsdtar's extraction", archive.display()),
    );
}

/// The tree of scripts/make-foreign-fixtures.sh, as a restore must give it back.
fn assert_is_the_scripts_tree(root: &Path, archive: &Path) {
    let tree = root.join("tree");
    let shown = archive.display();
    assert_eq!(
        fs::read(tree.join("plain.txt")).unwrap(),
        b"plain file\n",
        "{shown}"
    );
    assert_eq!(
        fs::read(tree.join("dir/sub/nested.txt")).unwrap(),
        b"nested\n",
        "{shown}"
    );
    assert_eq!(fs::read(tree.join("empty")).unwrap(), b"", "{shown}");
    let script = fs::metadata(tree.join("dir/script.sh")).unwrap();
    assert_eq!(script.permissions().mode() & 0o7777, 0o750, "{shown}");
    assert_eq!(script.mtime(), MTIME, "{shown}");
    assert_eq!(
        fs::read_link(tree.join("dir/link")).unwrap(),
        Path::new("../plain.txt"),
        "{shown}"
    );
    let plain = fs::metadata(tree.join("plain.txt")).unwrap();
    let hard = fs::metadata(tree.join("hardlink.txt")).unwrap();
    assert_eq!(plain.ino(), hard.ino(), "{shown}: the hard link is not one");
    let name = archive.file_name().unwrap().to_str().unwrap();
    // ustar and v7 hold neither a 120-byte name nor a sparse file; the script leaves
    // them out there.
    if name.contains("ustar") || name.contains("v7") {
        return;
    }
    let long = format!("dir/{}.txt", "n".repeat(120));
    assert_eq!(
        fs::read(tree.join(long)).unwrap(),
        b"long name\n",
        "{shown}"
    );
    let sparse = fs::read(tree.join("sparse.bin")).unwrap();
    assert_eq!(sparse.len(), 65536, "{shown}");
    let data: Vec<u8> = (0..4096).map(|i| ((i * 7) % 251 + 1) as u8).collect();
    assert_eq!(&sparse[16384..20480], &data[..], "{shown}: sparse data");
    assert!(sparse[..16384].iter().all(|&b| b == 0), "{shown}");
    assert!(sparse[20480..].iter().all(|&b| b == 0), "{shown}");
}

#[test]
fn archives_by_gnu_tar_and_bsdtar_restore_and_verify_like_bsdtar_extracts_them() {
    let home = TestHome::new();
    let mut seen = 0;
    for archive in fixtures("foreign") {
        let name = archive.file_name().unwrap().to_str().unwrap().to_owned();
        if name == "gnu-label.tar" {
            continue;
        }
        let (dest, out) = restore(&home, &archive);
        out.success();
        assert!(out.stderr.contains("restored backups/"), "{name}: {out:#?}");
        assert_is_the_scripts_tree(&dest, &archive);
        assert_same_as_bsdtar(&archive, &dest, &home);
        home.manager(&["verify", &name]).success();
        seen += 1;
    }
    // gnu, oldgnu, posix (and its three sparse versions), ustar, v7, two by bsdtar.
    assert_eq!(seen, 10);
}

#[test]
fn the_tar_crates_test_archives_restore_like_bsdtar_extracts_them() {
    let home = TestHome::new();
    for archive in fixtures("tar-rs") {
        let name = archive.file_name().unwrap().to_str().unwrap().to_owned();
        let (dest, out) = restore(&home, &archive);
        out.success();
        assert_same_as_bsdtar(&archive, &dest, &home);
        home.manager(&["verify", &name]).success();
    }
}

#[test]
fn sparse_files_keep_their_holes() {
    let home = TestHome::new();
    for name in ["gnu.tar", "posix-sparse-0.0.tar", "posix-sparse-1.0.tar"] {
        let archive = fixtures("foreign")
            .into_iter()
            .find(|p| p.ends_with(name))
            .unwrap();
        let (dest, out) = restore(&home, &archive);
        out.success();
        let meta = fs::metadata(dest.join("tree/sparse.bin")).unwrap();
        // 64 KiB long, but only its 4 KiB of data (and what the file system rounds
        // up to) on disk.
        assert_eq!(meta.len(), 65536);
        assert!(
            meta.blocks() * 512 < 65536,
            "{name}: {} blocks",
            meta.blocks()
        );
    }
}

/// A volume label names the archive, not a file: restore and verify pass over it, as GNU
/// tar and bsdtar do (incremental chains carry one).
#[test]
fn a_volume_label_is_passed_over() {
    let home = TestHome::new();
    let archive = fixtures("foreign")
        .into_iter()
        .find(|p| p.ends_with("gnu-label.tar"))
        .unwrap();
    let (dest, out) = restore(&home, &archive);
    out.success();
    assert_eq!(
        fs::read(dest.join("tree/plain.txt")).unwrap(),
        b"plain file\n"
    );
    home.manager(&["verify", "gnu-label.tar"]).success();
}

#[test]
fn an_entry_restore_cannot_restore_makes_restore_and_verify_fail_naming_it() {
    let home = TestHome::new();
    // A plain file, then an entry of a type no tool here knows ('Z').
    let mut builder = tar::Builder::new(Vec::new());
    let header = |size: u64| {
        let mut header = tar::Header::new_gnu();
        header.set_size(size);
        header.set_mode(0o644);
        header.set_mtime(1_600_000_000);
        header.set_uid(0);
        header.set_gid(0);
        header
    };
    let mut plain = header(11);
    builder
        .append_data(&mut plain, "tree/plain.txt", &b"plain file\n"[..])
        .unwrap();
    let mut odd = header(0);
    odd.set_entry_type(tar::EntryType::new(b'Z'));
    builder
        .append_data(&mut odd, "tree/strange", &b""[..])
        .unwrap();
    let bytes = builder.into_inner().unwrap();
    let archive = home.path().join("odd.tar");
    fs::write(&archive, bytes).unwrap();
    let (dest, out) = restore(&home, &archive);
    assert_eq!(out.code(), Some(1), "{out:#?}");
    assert!(
        out.stderr
            .contains("but 1 entry (tree/strange) could not be restored"),
        "{out:#?}"
    );
    // The rest is restored.
    assert_eq!(
        fs::read(dest.join("tree/plain.txt")).unwrap(),
        b"plain file\n"
    );
    let verify = home.manager(&["verify", "odd.tar"]);
    let err = verify.failure(1);
    assert!(
        err.contains("restore would skip 1 entry (tree/strange)"),
        "{err}"
    );
}
