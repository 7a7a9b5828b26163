//! Browsing an incremental chain (a full backup and three incrementals) at every one of
//! its generations: `files` lists the tree as it was, `cat` prints each file as it was,
//! `restore --path` gives back a folder as it was, `diff` lists exactly the changes made
//! between two backups, and `find` finds every version of a file, a deleted one too.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;

use common::{TestHome, assert_same_map};

/// What a tree holds, by name relative to the home: kind, mode, and contents or link.
type Tree = BTreeMap<String, (String, u32, Vec<u8>)>;

fn tree(root: &Path, base: &Path, out: &mut Tree) {
    for entry in fs::read_dir(root).unwrap() {
        let path = entry.unwrap().path();
        let meta = fs::symlink_metadata(&path).unwrap();
        let name = path
            .strip_prefix(base)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let mode = meta.mode() & 0o7777;
        if meta.is_dir() {
            out.insert(name, ("dir".into(), mode, Vec::new()));
            tree(&path, base, out);
        } else if meta.file_type().is_symlink() {
            let link = fs::read_link(&path).unwrap();
            out.insert(
                name,
                (
                    "symlink".into(),
                    0,
                    link.to_string_lossy().as_bytes().to_vec(),
                ),
            );
        } else {
            out.insert(name, ("file".into(), mode, fs::read(&path).unwrap()));
        }
    }
}

fn snapshot(home: &TestHome, under: &str) -> Tree {
    let mut out = Tree::new();
    let root = home.path().join(under);
    let (kind, mode) = (
        "dir".to_owned(),
        fs::metadata(&root).unwrap().mode() & 0o7777,
    );
    out.insert(under.to_owned(), (kind, mode, Vec::new()));
    tree(&root, home.path(), &mut out);
    out
}

/// The generation's tree as `files --json` and `cat` give it.
fn browsed(home: &TestHome, at: &str) -> Tree {
    let out = home.manager(&["files", "src", "--at", at, "--json"]);
    out.success();
    let listed: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    let mut got = Tree::new();
    for item in listed {
        let name = item["name"].as_str().unwrap().to_owned();
        let kind = item["type"].as_str().unwrap().to_owned();
        let mode = u32::from_str_radix(item["mode"].as_str().unwrap(), 8).unwrap();
        let (mode, data) = match kind.as_str() {
            "file" => (mode, cat(home, at, &name)),
            "symlink" => (0, item["link"].as_str().unwrap().as_bytes().to_vec()),
            _ => (mode, Vec::new()),
        };
        assert!(
            got.insert(name.clone(), (kind, mode, data)).is_none(),
            "{name} twice"
        );
    }
    got
}

fn cat(home: &TestHome, at: &str, name: &str) -> Vec<u8> {
    cat_said(home, at, name).0
}

/// The changes `diff` lists between two generations: sign and name, and what changed.
fn diffed(home: &TestHome, old: &str, new: &str) -> Vec<String> {
    let out = home.manager(&["diff", "src", old, new]);
    out.success();
    out.stdout_lines().iter().map(|l| l.to_string()).collect()
}

fn touch(path: &Path, when: &str) {
    let touched = Command::new("touch").args(["-d", when]).arg(path).status();
    assert!(touched.unwrap().success());
}

/// The generations' `--at` names, oldest first (`backups` lists the newest first, as
/// src.tar).
fn oldest_first(home: &TestHome) -> Vec<String> {
    let mut names: Vec<String> = home
        .manager(&["backups"])
        .stdout_lines()
        .iter()
        .map(|l| l.to_string())
        .collect();
    names.reverse();
    names
}

/// Four backups of a changing tree; returns each generation's `--at` name and the tree
/// as it was, oldest first.
fn make_chain(home: &TestHome, compress: &[&str]) -> Vec<(String, Tree)> {
    home.write("src/a.txt", "alpha");
    home.write("src/sub/b.txt", "bravo");
    home.write("src/sub/deeper/c.txt", "charlie");
    home.write("src/old/gone.txt", "deleted two generations ago");
    home.write(
        "src/big.bin",
        (0..3_000_000u32)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<_>>(),
    );
    home.write("src/same.txt", "12345");
    let s = home.path().join("src");
    let mut create = vec!["create", "--incremental", "--keep", "10"];
    create.extend_from_slice(compress);
    create.push("src;03:00;src");
    home.manager(&create).success();
    let mut trees = Vec::new();
    let mut step = |home: &TestHome| {
        home.run_ok(0);
        trees.push(snapshot(home, "src"));
    };
    step(home);
    home.write("src/a.txt", "alpha, edited");
    touch(&s.join("a.txt"), "2030-01-02 03:04:05");
    home.write("src/sub/new.txt", "new");
    fs::remove_dir_all(s.join("old")).unwrap();
    step(home);
    fs::set_permissions(s.join("sub/b.txt"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::remove_file(s.join("a.txt")).unwrap();
    symlink("sub/b.txt", s.join("a.txt")).unwrap();
    step(home);
    let before = fs::metadata(s.join("same.txt")).unwrap();
    fs::write(s.join("same.txt"), "54321").unwrap();
    let back = format!("@{}", before.mtime());
    assert!(
        Command::new("touch")
            .args(["-d", &back])
            .arg(s.join("same.txt"))
            .status()
            .unwrap()
            .success()
    );
    fs::rename(s.join("sub/deeper"), s.join("moved")).unwrap();
    step(home);
    let names = oldest_first(home);
    assert_eq!(names.len(), 4, "{names:?}");
    names.into_iter().zip(trees).collect()
}

#[test]
fn every_generation_of_a_chain_lists_prints_restores_and_diffs_as_it_was() {
    for compress in [&[][..], &["--compress", "gzip"], &["--compress", "zstd"]] {
        a_chain_browses_as_it_was(compress);
    }
}

fn a_chain_browses_as_it_was(compress: &[&str]) {
    let home = TestHome::new();
    let generations = make_chain(&home, compress);
    for (at, was) in &generations {
        assert_same_map(&browsed(&home, at), was, &format!("files and cat at {at}"));
        let dest = home.path().join(format!("restored-{at}"));
        home.manager(&[
            "restore",
            "src",
            dest.to_str().unwrap(),
            "--at",
            at,
            "--path",
            "sub",
        ])
        .success();
        let mut got = Tree::new();
        tree(&dest, &dest, &mut got);
        let expected: Tree = was
            .iter()
            .filter(|(name, _)| name.starts_with("src/sub"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        // The folders above the path are made, not restored: only what is under it counts.
        got.remove("src");
        assert_same_map(&got, &expected, &format!("restore --path sub at {at}"));
    }
    let at = |i: usize| generations[i].0.as_str();
    assert_eq!(
        diffed(&home, at(0), at(1)),
        [
            "M    src/a.txt  (content, size, mtime)",
            "-    src/old/",
            "-    src/old/gone.txt",
            "+    src/sub/new.txt",
        ]
    );
    assert_eq!(
        diffed(&home, at(1), at(2)),
        ["M    src/a.txt  (type)", "M    src/sub/b.txt  (mode)"]
    );
    assert_eq!(
        diffed(&home, at(2), at(3)),
        [
            "+    src/moved/",
            "+    src/moved/c.txt",
            "M    src/same.txt  (content)",
            "-    src/sub/deeper/",
            "-    src/sub/deeper/c.txt",
        ]
    );
    without_indexes_the_answers_are_the_same(&home, &generations);
    // By default, the last two.
    assert_eq!(
        home.manager(&["diff", "src"]).stdout,
        home.manager(&["diff", "src", at(2), at(3)]).stdout
    );
}

/// With every index removed, or one damaged, the chain is read from its archives: the
/// same trees and the same differences, with a warning for each archive.
fn without_indexes_the_answers_are_the_same(home: &TestHome, generations: &[(String, Tree)]) {
    let (first, last) = (&generations[0].0, &generations[3].0);
    let diff = home.manager(&["diff", "src", first, last]).stdout;
    let mut indexes: Vec<_> = fs::read_dir(home.path().join("backups"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "idx"))
        .collect();
    indexes.sort();
    let mut damaged = fs::read(&indexes[0]).unwrap();
    damaged[20] ^= 1;
    fs::write(&indexes[0], damaged).unwrap();
    for index in &indexes[1..] {
        fs::remove_file(index).unwrap();
    }
    for (at, was) in generations {
        assert_same_map(
            &browsed(home, at),
            was,
            &format!("without indexes, at {at}"),
        );
    }
    let out = home.manager(&["diff", "src", first, last]);
    assert_eq!(out.stdout, diff);
    assert!(
        out.stderr.contains("reading the archive instead"),
        "{}",
        out.stderr
    );
    home.manager(&["verify", "src", "--rebuild-index"])
        .success();
    let out = home.manager(&["files", "src"]);
    assert_eq!(out.stderr, "", "the indexes were rebuilt");
}

#[test]
fn find_finds_every_version_newest_first_and_a_deleted_file_prints() {
    let home = TestHome::new();
    let generations = make_chain(&home, &[]);
    let out = home.manager(&["find", "gone.txt"]);
    out.success();
    let lines = out.stdout_lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains(&generations[0].0) && lines[0].ends_with("src/old/gone.txt"),
        "{lines:?}"
    );
    assert_eq!(
        cat(&home, &generations[0].0, "old/gone.txt"),
        b"deleted two generations ago"
    );
    // A glob across the generations: a.txt is a file in three, a link in the last.
    let out = home.manager(&["find", "src/*.txt", "src", "--json"]);
    out.success();
    let found: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    let a: Vec<(&str, &str)> = found
        .iter()
        .filter(|v| v["name"] == "src/a.txt")
        .map(|v| {
            (
                v["generation"].as_str().unwrap(),
                v["type"].as_str().unwrap(),
            )
        })
        .collect();
    let names: Vec<&str> = generations.iter().rev().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        a,
        [
            (names[0], "symlink"),
            (names[1], "symlink"),
            (names[2], "file"),
            (names[3], "file")
        ]
    );
    let out = home.manager(&["find", "src/{a"]);
    assert!(
        out.failure(1).contains("is not a valid pattern"),
        "{}",
        out.stderr
    );
}

/// The file `name` of generation `at` as `cat` prints it, and what it says on stderr.
fn cat_said(home: &TestHome, at: &str, name: &str) -> (Vec<u8>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_backup_manager"))
        .arg("--home")
        .arg(home.path())
        .args(["cat", "src", name, "--at", at])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "cat {name} at {at}: {err}");
    (out.stdout, err)
}

#[test]
fn a_file_in_any_block_of_a_large_chains_index_prints_as_it_was() {
    // Enough entries for several of the index's blocks, which `cat` reads alone: a file
    // near the start, in the middle and at the end, one the incremental did not store
    // again (its folder's listing in one block, its data in the full archive's), one it
    // changed, one deleted, and a hard link to a file blocks away.
    let home = TestHome::new();
    for d in 0..30 {
        for f in 0..100 {
            home.write(
                &format!("src/d{d:02}/f{f:03}.txt"),
                format!("{d} {f} first"),
            );
        }
    }
    let s = home.path().join("src");
    fs::hard_link(s.join("d00/f000.txt"), s.join("d29/zlink.txt")).unwrap();
    home.manager(&["create", "--incremental", "src;03:00;src"])
        .success();
    home.run_ok(0);
    fs::write(s.join("d29/f099.txt"), "29 99 second").unwrap();
    fs::remove_file(s.join("d15/f050.txt")).unwrap();
    home.run_ok(0);
    let at = oldest_first(&home);
    let (full, incremental) = (&at[0], &at[1]);
    let expect = [
        (full, "d00/f000.txt", Some("0 0 first")),
        (full, "d15/f050.txt", Some("15 50 first")),
        (full, "d29/f099.txt", Some("29 99 first")),
        (full, "d29/zlink.txt", Some("0 0 first")),
        (incremental, "d00/f001.txt", Some("0 1 first")),
        (incremental, "d15/f051.txt", Some("15 51 first")),
        (incremental, "d29/f099.txt", Some("29 99 second")),
        (incremental, "d29/zlink.txt", Some("0 0 first")),
        (incremental, "d15/f050.txt", None),
    ];
    let check = |warned: bool| {
        for (at, name, was) in expect {
            let name = format!("src/{name}");
            match was {
                Some(was) => {
                    let (printed, err) = cat_said(&home, at, &name);
                    assert_eq!(String::from_utf8_lossy(&printed), was, "{name} at {at}");
                    assert_eq!(err.contains("reading the archive instead"), warned, "{err}");
                }
                None => {
                    let out = home.manager(&["cat", "src", &name, "--at", at]);
                    assert!(out.failure(1).contains("holds no"), "{out:#?}");
                }
            }
        }
    };
    check(false);
    for entry in fs::read_dir(home.path().join("backups")).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().ends_with(".idx") {
            fs::remove_file(path).unwrap();
        }
    }
    check(true);
}
