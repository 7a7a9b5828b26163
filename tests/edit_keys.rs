//! `edit` with `--encrypt` and `--recipients-file`: the keys given become the line's, the
//! next archive is sealed to them, and a bad key leaves the file untouched.

mod common;

use std::fs;
use std::path::Path;

use common::{TestHome, age_key};

#[test]
fn edit_encrypts_a_schedule_to_the_keys_given_and_refuses_a_bad_one() {
    let home = TestHome::new();
    let keys = tempfile::tempdir().unwrap();
    let (first_id, first) = age_key(keys.path(), "first.txt");
    let (second_id, second) = age_key(keys.path(), "second.txt");
    home.write("src/notes.txt", "hello\n");
    home.manager(&["create", "src;02:00;data"]).success();

    // Given with another flag, the key is not lost on the way.
    let out = home.manager(&["edit", "data", "--keep", "3", "--encrypt", &first]);
    out.success();
    let line = format!("src;02:00;data;keep=3;encrypt={first}");
    assert_eq!(
        home.schedule_bytes().unwrap(),
        format!("{line}\n").as_bytes()
    );

    // The keys given replace the line's: the second key alone reads what comes next.
    let list = keys.path().join("recipients.txt");
    fs::write(&list, format!("# the off-box key\n{second}\n")).unwrap();
    let list_s = list.to_str().unwrap();
    home.manager(&["edit", "0", "--recipients-file", list_s])
        .success();
    let line = format!("src;02:00;data;keep=3;encrypt={second}");
    assert_eq!(
        home.schedule_bytes().unwrap(),
        format!("{line}\n").as_bytes()
    );
    home.manager(&["run", "data"]).success();
    let dest = keys.path().join("out");
    let dest_s = dest.to_str().unwrap();
    let first_s = first_id.to_str().unwrap();
    let refused = home.manager(&["restore", "data.tar.age", dest_s, "--identity", first_s]);
    assert!(
        refused.failure(1).contains("opens none of its recipients"),
        "{refused:?}"
    );
    assert!(!dest.exists());
    let second_s = second_id.to_str().unwrap();
    home.manager(&["restore", "data.tar.age", dest_s, "--identity", second_s])
        .success();
    assert_eq!(fs::read(dest.join("src/notes.txt")).unwrap(), b"hello\n");

    // A bad key: one line, and the file as it was.
    let before = home.schedule_bytes();
    let out = home.manager(&["edit", "0", "--keep", "5", "--encrypt", "age1nope"]);
    let err = out.failure(1);
    assert!(err.contains("is not a public key to encrypt to"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(home.schedule_bytes(), before);
}

#[test]
fn new_keys_on_an_incremental_schedule_start_a_new_chain() {
    let home = TestHome::new();
    let keys = tempfile::tempdir().unwrap();
    let (_, old) = age_key(keys.path(), "old.txt");
    let (new_id, new) = age_key(keys.path(), "new.txt");
    home.write("src/notes.txt", "hello\n");
    let args = ["--incremental", "--keep", "5", "--encrypt", &old];
    let (index, _) = home.back_up(&args, "src;02:00;data");
    home.write("src/more.txt", "more\n");
    home.run_ok(index);
    home.manager(&["edit", "data", "--encrypt", &new]).success();
    assert_new_chain_restored_by(&home, index, &new_id);
}

/// Runs schedule `index` once more, after a change; then asserts that this backup
/// started a new chain after a full and an incremental, and that `identity` alone
/// restores the whole tree from it.
fn assert_new_chain_restored_by(home: &TestHome, index: usize, identity: &Path) {
    home.write("src/last.txt", "last\n");
    home.run_ok(index);
    let long = home.manager(&["backups", "--long"]);
    let kinds: Vec<&str> = long
        .stdout
        .lines()
        .map(|l| l.rsplit(' ').next().unwrap())
        .collect();
    assert_eq!(kinds, ["full", "incremental", "full"], "{long:?}");
    // The new key alone restores the newest backup, whole.
    let keys = tempfile::tempdir().unwrap();
    let dest = keys.path().join("out");
    let out = home.manager(&[
        "restore",
        "data.tar.age",
        dest.to_str().unwrap(),
        "--identity",
        identity.to_str().unwrap(),
    ]);
    out.success();
    for (file, text) in [
        ("notes.txt", "hello\n"),
        ("more.txt", "more\n"),
        ("last.txt", "last\n"),
    ] {
        assert_eq!(
            fs::read_to_string(dest.join("src").join(file)).unwrap(),
            text
        );
    }
}

#[test]
fn new_keys_by_delete_and_create_or_by_hand_start_a_new_chain() {
    for by_hand in [false, true] {
        let home = TestHome::new();
        let keys = tempfile::tempdir().unwrap();
        let (_, old) = age_key(keys.path(), "old.txt");
        let (new_id, new) = age_key(keys.path(), "new.txt");
        home.write("src/notes.txt", "hello\n");
        let args = ["--incremental", "--keep", "5", "--encrypt", &old];
        let (index, _) = home.back_up(&args, "src;02:00;data");
        home.write("src/more.txt", "more\n");
        home.run_ok(index);
        if by_hand {
            let line = String::from_utf8(home.schedule_bytes().unwrap()).unwrap();
            assert!(line.contains(&old), "{line}");
            home.write("backup_schedules.txt", line.replace(&old, &new));
        } else {
            home.manager(&["delete", "data"]).success();
            let args = ["--incremental", "--keep", "5", "--encrypt", &new];
            home.manager(&[&["create"][..], &args, &["src;02:00;data"]].concat())
                .success();
        }
        assert_new_chain_restored_by(&home, index, &new_id);
        let said = "The chain of data was written for other keys; its next backup is a full one";
        common::assert_message(&home.manager_log(), said);
    }
}

#[test]
fn a_recipients_file_that_is_a_fifo_is_refused_at_once_and_nothing_is_written() {
    let home = TestHome::new();
    home.write("src/notes.txt", "hello\n");
    home.manager(&["create", "src;02:00;data"]).success();
    let before = home.schedule_bytes();
    let fifo = home.path().join("keys.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let fifo_s = fifo.to_str().unwrap();
    for args in [
        &["edit", "data", "--recipients-file", fifo_s][..],
        &["create", "src;03:00;other", "--recipients-file", fifo_s],
    ] {
        let mut child = home.spawn_manager(args);
        // A reader waiting on the FIFO would wait for ever, holding the schedule's lock.
        let mut exited = false;
        for _ in 0..250 {
            if child.try_wait().unwrap().is_some() {
                exited = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        if !exited {
            child.kill().unwrap();
        }
        let out = common::finish(child);
        assert!(exited, "{args:?} waited on the FIFO: {out:?}");
        let err = out.failure(1);
        assert!(err.contains("is not a regular file"), "{err}");
        assert_eq!(home.schedule_bytes(), before);
    }
}

#[test]
fn encrypting_a_schedule_says_that_its_earlier_archives_stay_in_clear() {
    let home = TestHome::new();
    let keys = tempfile::tempdir().unwrap();
    let (_, key) = age_key(keys.path(), "key.txt");
    home.write("src/notes.txt", "hello\n");
    let (index, _) = home.back_up(&["--keep", "2"], "src;02:00;data");
    home.run_ok(index);
    let out = home.manager(&["edit", "data", "--encrypt", &key]);
    out.success();
    assert_eq!(
        out.stderr.lines().next().unwrap(),
        "backup_manager: 2 archives of data made before stay unencrypted in backups/ \
         (data.tar...), and in any copy of it; remove them once the encrypted ones are enough",
        "{out:?}"
    );
    // Keys changed again: the earlier archives are encrypted ones, nothing to say.
    let (_, other) = age_key(keys.path(), "other.txt");
    let out = home.manager(&["edit", "data", "--encrypt", &other]);
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
}
