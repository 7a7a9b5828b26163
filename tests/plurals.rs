//! Counts in what a user reads agree with their noun: `1 entry`, `2 entries`.

mod common;

use common::TestHome;

/// Turns the group's read bit of `one.txt` over: its mode differs, nothing else.
fn flip_group_read(home: &TestHome) {
    use std::os::unix::fs::PermissionsExt;
    let path = home.path().join("one.txt");
    let mut perms = std::fs::metadata(&path).unwrap().permissions();
    perms.set_mode(perms.mode() ^ 0o040);
    std::fs::set_permissions(&path, perms).unwrap();
}

#[test]
fn one_of_anything_is_said_in_the_singular() {
    let home = TestHome::new();
    home.write("one.txt", "1");
    home.manager(&["create", "one.txt;02:00;one"]).success();
    let out = home.manager(&["run", "--dry-run", "one"]);
    assert!(out.stderr.contains("dry run: 1 entry would go"), "{out:#?}");
    let out = home.manager(&["run", "one"]);
    assert!(out.stderr.contains("(1 entry, "), "{out:#?}");
    let out = home.manager(&["verify", "one", "--source"]);
    assert_eq!(
        out.stderr,
        "backup_manager: verified backups/one.tar (1 entry, same as its source)\n"
    );
    let dest = tempfile::tempdir().unwrap();
    let r = dest.path().join("r");
    let out = home.manager(&["restore", "one", r.to_str().unwrap()]);
    assert!(out.stderr.ends_with(" (1 entry)\n"), "{out:#?}");
    // A change of mode alone: one difference.
    flip_group_read(&home);
    let out = home.manager(&["verify", "one", "--source"]);
    assert!(out.stderr.ends_with(": 1 difference\n"), "{out:#?}");
    // And more than one in the plural.
    home.write("two/a", "a");
    home.manager(&["create", "two;02:00;two"]).success();
    let out = home.manager(&["run", "--dry-run", "two"]);
    assert!(
        out.stderr.contains("dry run: 2 entries would go"),
        "{out:#?}"
    );
}
