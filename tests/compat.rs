//! Files written by an earlier version of this program, read by this one: the state file,
//! the schedule file, an incremental chain and its record (tests/fixtures/v1, made with
//! the release binaries of that version; the record is read by a unit test of its own),
//! and an archive with an index of version 2 (tests/fixtures/v2, of a tree that was at
//! /tmp/v2/proj).

mod common;

use std::fs;
use std::path::Path;

use common::TestHome;
use serde_json::Value;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v1");

fn fixture(name: &str) -> Vec<u8> {
    fs::read(Path::new(FIXTURES).join(name)).unwrap()
}

/// A home holding the schedules, the state and the chain that the earlier version left.
fn old_home() -> TestHome {
    let home = TestHome::new();
    home.write("backup_schedules.txt", fixture("backup_schedules.txt"));
    home.write(".backup_state.json", fixture("backup_state.json"));
    for archive in ["code.tar", "code.2026-12-01_2025.tar"] {
        home.write(&format!("backups/{archive}"), fixture(archive));
    }
    home
}

#[test]
fn the_state_file_of_the_earlier_version_is_read_as_it_was_written() {
    let home = old_home();
    let out = home.manager(&["status", "--json"]);
    // Not running: exit 3, as `systemctl status` says.
    assert_eq!(out.code(), Some(3), "{}", out.stderr);
    let status: Value = serde_json::from_str(&out.stdout).unwrap();
    let schedules = status["schedules"].as_array().unwrap();
    let lines: Vec<&str> = schedules
        .iter()
        .map(|s| s["line"].as_str().unwrap())
        .collect();
    assert_eq!(
        lines,
        [
            "src;03:00;code;keep=5;incremental",
            "src;04:00;plain;zstd",
            "missing;05:00;gone",
            "src;20:25;now"
        ]
    );
    let run = |i: usize| &schedules[i]["last_run"];
    assert_eq!(run(0)["outcome"], "ok");
    assert_eq!(run(0)["bytes"], 4608);
    assert_eq!(run(0)["manual"], true);
    assert_eq!(run(1)["entries"], 5);
    assert_eq!(run(2)["outcome"], "failed");
    assert!(
        run(2)["messages"][0]
            .as_str()
            .unwrap()
            .starts_with("backup of missing into backups/gone.tar failed: "),
        "{}",
        run(2)
    );
    assert_eq!(run(3)["manual"], false);
    let started = chrono::DateTime::parse_from_rfc3339(run(3)["started"].as_str().unwrap());
    assert_eq!(
        started.unwrap().timestamp_nanos_opt(),
        Some(1_796_156_756_281_594_436)
    );
    // The state file is only read: nothing rewrote it.
    assert_eq!(
        fs::read(home.path().join(".backup_state.json")).unwrap(),
        fixture("backup_state.json")
    );
}

#[test]
fn the_chain_of_the_earlier_version_verifies_and_restores() {
    let home = old_home();
    home.manager(&["verify", "code"]).success();
    let dest = home.path().join("restored");
    home.manager(&["restore", "code", dest.to_str().unwrap()])
        .success();
    assert_eq!(
        fs::read_to_string(dest.join("src/a.txt")).unwrap(),
        "hello\nmore\n"
    );
    assert_eq!(
        fs::read_to_string(dest.join("src/sub/b.txt")).unwrap(),
        "world\n"
    );
    assert_eq!(
        fs::read_link(dest.join("src/link")).unwrap(),
        Path::new("a.txt")
    );
    let older = home.path().join("older");
    home.manager(&[
        "restore",
        "code",
        older.to_str().unwrap(),
        "--at",
        "2026-12-01_2025",
    ])
    .success();
    assert_eq!(
        fs::read_to_string(older.join("src/a.txt")).unwrap(),
        "hello\n"
    );
}

/// A home with the archive and the index of version 2 the earlier version wrote.
fn home_with_index_of_version_2() -> TestHome {
    let home = TestHome::new();
    home.write("backup_schedules.txt", "/tmp/v2/proj;03:00;old\n");
    let fixture = |name: &str| fs::read(Path::new(FIXTURES).join("../v2").join(name)).unwrap();
    home.write("backups/old.tar", fixture("old.tar"));
    home.write("backups/.old.tar.idx", fixture("old.tar.idx"));
    home
}

#[test]
fn an_index_of_version_2_is_used_and_rebuilt_only_when_asked() {
    let home = home_with_index_of_version_2();
    let index = home.path().join("backups/.old.tar.idx");
    let cat = |home: &TestHome| {
        let out = home.manager(&["cat", "old", "tmp/v2/proj/src/m17.rs"]);
        out.success();
        assert_eq!(out.stdout, "line 17\n");
        // Read from its index: no warning that it was not used.
        assert_eq!(out.stderr, "");
    };
    cat(&home);
    let listed = home.manager(&["files", "old"]);
    listed.success();
    assert_eq!(listed.stdout_lines().len(), 24);
    let out = home.manager(&["verify", "old"]);
    out.success();
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(
        said.contains("is of an earlier version") && said.contains("--rebuild-index"),
        "{out:#?}"
    );
    assert_eq!(fs::read(&index).unwrap()[8], 2, "verify alone rewrote it");
    let out = home.manager(&["verify", "old", "--rebuild-index"]);
    out.success();
    assert!(
        format!("{}{}", out.stdout, out.stderr).contains("rebuilt the index"),
        "{out:#?}"
    );
    assert_eq!(fs::read(&index).unwrap()[8], 3);
    cat(&home);
    assert_eq!(home.manager(&["files", "old"]).stdout, listed.stdout);
    let out = home.manager(&["verify", "old"]);
    out.success();
    assert!(!format!("{out:?}").contains("earlier version"), "{out:#?}");
}
