//! An encrypted schedule mirrored off the box by the example after-backup hook (a real
//! rclone, to a `local` remote): the mirror holds only age files that show no name and
//! no content, never the record; a fresh home holding only the mirror restores every
//! point of the chain with the identity, and none without it; pruning (which keeps whole
//! chains) and the mirror's following of it need no secret.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::offsite::{manager, tree};
use common::{TestHome, names};

const SECRET: &str = "CONTENT-MARKER-51c0ffee";

/// Backs up `home`'s schedule 0 five times, changing the tree before each; the tree as it
/// was at each, by the lasting name the mirror received.
fn five_backups(home: &TestHome, remote: &Path) -> Vec<(String, BTreeMap<String, Vec<u8>>)> {
    let mut states = Vec::new();
    for step in 0..5 {
        home.write("src/secret-name-a.txt", format!("{SECRET} step {step}"));
        home.write(&format!("src/new{step}"), "new");
        if step == 2 {
            fs::remove_dir_all(home.path().join("src/sub")).unwrap();
        }
        let before = names(remote);
        manager(home, remote, &["run", "0"]).success();
        let new: Vec<String> = names(remote)
            .into_iter()
            .filter(|n| !before.contains(n))
            .collect();
        // The archive and its sealed index.
        assert_eq!(new.len(), 2, "the mirror got {new:?}");
        let archive = new.iter().find(|n| !n.starts_with('.')).unwrap().clone();
        assert!(archive.ends_with(".tar.zst.age"), "{new:?}");
        assert!(new.contains(&format!(".{archive}.idx")), "{new:?}");
        states.push((archive, tree(&home.path().join("src"))));
    }
    states
}

#[test]
fn an_encrypted_mirror_restores_on_a_fresh_home_with_the_identity_only() {
    if Command::new("rclone").arg("version").output().is_err() {
        eprintln!("note: rclone is not installed (apt-get install rclone); test skipped");
        return;
    }
    let home = TestHome::trusted();
    let remote = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let (identity, public) = common::age_key(keys.path(), "key.txt");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hooks/after-backup");
    home.write("hooks/after-backup", fs::read(example).unwrap());
    for (path, mode) in [("hooks", 0o755), ("hooks/after-backup", 0o755)] {
        fs::set_permissions(home.path().join(path), fs::Permissions::from_mode(mode)).unwrap();
    }
    home.write("src/sub/b", "two");
    let line = "src;03:00;chain";
    let args = [
        "create",
        "--incremental",
        "--keep",
        "5",
        "--compress",
        "zstd",
    ];
    let mut args = args.to_vec();
    args.extend(["--encrypt", &public, line]);
    home.manager(&args).success();
    let states = five_backups(&home, remote.path());
    // The mirror: age files only (archives and their indexes), none showing a name or
    // content; no record.
    for name in names(remote.path()) {
        let bytes = fs::read(remote.path().join(&name)).unwrap();
        assert!(bytes.starts_with(b"age-encryption.org/v1\n"), "{name}");
        for secret in [SECRET, "secret-name-a", "new0", "sub"] {
            let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
            assert!(!found, "{name} shows {secret:?}");
        }
    }
    // A fresh home of the mirror alone: nothing without the identity, everything with it.
    let fresh = TestHome::new();
    fresh.write("backup_schedules.txt", home.schedule_bytes().unwrap());
    for (name, _) in &states {
        fresh.write(
            &format!("backups/{name}"),
            fs::read(remote.path().join(name)).unwrap(),
        );
    }
    let dest = fresh.path().join("none");
    fresh
        .manager(&["restore", "chain", dest.to_str().unwrap()])
        .failure(1);
    assert!(!dest.exists());
    for (name, state) in &states {
        let dest = fresh.path().join(format!("restored-{name}"));
        let id = identity.to_str().unwrap();
        fresh
            .manager(&["restore", name, dest.to_str().unwrap(), "--identity", id])
            .success();
        common::assert_same_map(&tree(&dest.join("src")), state, name);
    }
    // Pruning without any key keeps whole chains, and the mirror follows it.
    home.write(
        "backup_schedules.txt",
        format!("src;03:00;chain;zstd;keep=2;incremental;encrypt={public}\n"),
    );
    manager(&home, remote.path(), &["forget", "chain"]).success();
    // One chain: the two newest need every archive back to the full, read from the
    // headers alone (taken for fulls, the three older would go).
    let kept = home.manager(&["backups"]).stdout_lines().len();
    assert_eq!(kept, 5, "forget removed part of the chain");
    assert_mirrored(remote.path(), kept);
}

/// The mirror holds `kept` archives, each with its sealed index.
fn assert_mirrored(remote: &Path, kept: usize) {
    let names = names(remote);
    assert_eq!(
        names.len(),
        2 * kept,
        "the mirror follows forget: {names:?}"
    );
    let indexes = names
        .iter()
        .filter(|n| n.ends_with(".tar.zst.age.idx"))
        .count();
    assert_eq!(indexes, kept, "{names:?}");
}
