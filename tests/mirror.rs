//! Off-box copies that restore: the example after-backup hook mirrors `backups/` through a
//! real rclone (a `local` remote), following what is written and what is pruned; a fresh
//! home holding only what the mirror received restores every kept generation, every point
//! of every chain, equal to the tree as it was.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use common::TestHome;
use common::offsite::{manager, tree};

/// The dated name that is the same file as `NAME.tar`: what the last backup wrote.
fn newest(home: &TestHome, name: &str) -> String {
    let ino = fs::metadata(home.archive_path(&format!("{name}.tar")))
        .unwrap()
        .ino();
    fs::read_dir(home.path().join("backups"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .find(|n| {
            n.starts_with(&format!("{name}.2"))
                && fs::metadata(home.archive_path(n)).unwrap().ino() == ino
        })
        .unwrap()
}

/// A fresh home, its backups/ only what the mirror at `remote` holds (`mirrored`),
/// restores each of those generations as the tree was (`states`), and the newest by NAME.
fn assert_a_fresh_home_restores(
    home: &TestHome,
    remote: &Path,
    mirrored: &[String],
    states: &BTreeMap<String, BTreeMap<String, Vec<u8>>>,
) {
    let fresh = TestHome::new();
    fresh.write("backup_schedules.txt", home.schedule_bytes().unwrap());
    for name in mirrored {
        fresh.write(
            &format!("backups/{name}"),
            fs::read(remote.join(name)).unwrap(),
        );
    }
    for name in mirrored.iter().filter(|n| !n.starts_with('.')) {
        let schedule = name.split('.').next().unwrap();
        let at = name
            .strip_prefix(&format!("{schedule}."))
            .and_then(|rest| rest.strip_suffix(".tar"))
            .unwrap();
        let dest = fresh.path().join(format!("restored-{name}"));
        fresh
            .manager(&["restore", schedule, dest.to_str().unwrap(), "--at", at])
            .success();
        common::assert_same_map(&tree(&dest.join("src")), &states[name], name);
    }
    // By NAME, the newest of each.
    let dest = fresh.path().join("newest");
    fresh
        .manager(&["restore", "chain", dest.to_str().unwrap()])
        .success();
    common::assert_same_map(
        &tree(&dest.join("src")),
        &tree(&home.path().join("src")),
        "the newest",
    );
}

#[test]
fn a_home_rebuilt_from_its_rclone_mirror_restores_every_kept_generation() {
    if Command::new("rclone").arg("version").output().is_err() {
        eprintln!("note: rclone is not installed (apt-get install rclone); test skipped");
        return;
    }
    let home = TestHome::trusted();
    let remote = tempfile::tempdir().unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hooks/after-backup");
    home.write("hooks/after-backup", fs::read(example).unwrap());
    for (path, mode) in [("hooks", 0o755), ("hooks/after-backup", 0o755)] {
        fs::set_permissions(home.path().join(path), fs::Permissions::from_mode(mode)).unwrap();
    }
    home.write("src/a", "one");
    home.write("src/sub/b", "two");
    for (flags, line) in [
        ("--incremental --keep 4 --full-every 1", "src;03:00;chain"),
        ("--keep 2", "src;03:00;kept"),
    ] {
        let mut args = vec!["create"];
        args.extend(flags.split(' '));
        args.push(line);
        home.manager(&args).success();
    }
    // Trees as they were at each backup, by the lasting name of each archive.
    let mut states: BTreeMap<String, BTreeMap<String, Vec<u8>>> = BTreeMap::new();
    for step in 0..5 {
        home.write("src/a", format!("one, step {step}"));
        home.write(&format!("src/new{step}"), "new");
        if step == 2 {
            fs::remove_dir_all(home.path().join("src/sub")).unwrap();
        }
        for (index, name) in [(0, "chain"), (1, "kept")] {
            let out = manager(&home, remote.path(), &["run", &index.to_string()]);
            out.success();
            states.insert(newest(&home, name), tree(&home.path().join("src")));
        }
    }
    // The mirror holds exactly the lasting names of what backups/ keeps.
    let kept: Vec<String> = home
        .manager(&["backups"])
        .stdout_lines()
        .iter()
        .map(|l| l.to_string())
        .collect();
    let mut expected: Vec<String> = fs::read_dir(home.path().join("backups"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        // The dated archives, and their (hidden) indexes.
        .filter(|n| (!n.starts_with('.') || n.ends_with(".idx")) && n.contains(".2"))
        .collect();
    expected.sort();
    let mut mirrored: Vec<String> = fs::read_dir(remote.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    mirrored.sort();
    common::assert_same_lines(&mirrored, &expected, "the mirror");
    // The chain's full and four incrementals (keep=4 and the full they need), and two.
    assert_eq!(kept.len(), 5 + 2, "{kept:?}");

    assert_a_fresh_home_restores(&home, remote.path(), &mirrored, &states);

    // forget prunes, and the mirror follows.
    home.write(
        "backup_schedules.txt",
        "src;03:00;chain;keep=4;incremental;full-every=1\nsrc;03:00;kept\n",
    );
    manager(&home, remote.path(), &["forget", "kept"]).success();
    let left: Vec<String> = fs::read_dir(remote.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("kept.") || n.starts_with(".kept."))
        .collect();
    let newest = newest(&home, "kept");
    let mut expected = vec![format!(".{newest}.idx"), newest];
    expected.sort();
    let mut left = left;
    left.sort();
    assert_eq!(left, expected, "the mirror kept what forget pruned");
}
