//! Incremental chains as a user meets them: after each backup of a chain, our own
//! restore and GNU tar's chained extraction (`tar -x --listed-incremental=/dev/null`,
//! the full then each incremental in order) both give back the tree as it was; pruning
//! keeps whole chains; a damaged record makes a full backup; a backup killed midway
//! leaves the chain as it was; a folder made read-only before the full and changed by
//! the incrementals restores, as a user other than root, at every point of the chain.

mod common;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;

use common::{
    ChildGuard, TestHome, UNPRIVILEGED, archive_entries, assert_same_map, unprivileged_prefix,
};

/// What a tree holds, as a restore must give it back: for each path, its kind, mode,
/// mtime (seconds, as tar keeps them), and contents or link target.
type Snapshot = BTreeMap<String, (String, u32, i64, Vec<u8>)>;

fn snapshot(root: &Path) -> Snapshot {
    let mut out = Snapshot::new();
    add(root, root, &mut out);
    out
}

/// Small contents as they are, large ones as their length and a hash, so that a failed
/// comparison stays readable.
fn digest(data: Vec<u8>) -> Vec<u8> {
    if data.len() <= 64 {
        return data;
    }
    let hash = data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{} bytes, hash {hash:x}", data.len()).into_bytes()
}

fn add(root: &Path, path: &Path, out: &mut Snapshot) {
    let meta = fs::symlink_metadata(path).unwrap();
    let rel = path
        .strip_prefix(root)
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let (kind, data) = if meta.is_dir() {
        ("dir", Vec::new())
    } else if meta.file_type().is_symlink() {
        (
            "link",
            fs::read_link(path)
                .unwrap()
                .into_os_string()
                .into_encoded_bytes(),
        )
    } else {
        ("file", digest(fs::read(path).unwrap()))
    };
    let mode = if kind == "link" {
        0
    } else {
        meta.permissions().mode() & 0o7777
    };
    out.insert(rel, (kind.to_owned(), mode, meta.mtime(), data));
    if meta.is_dir() {
        for entry in fs::read_dir(path).unwrap() {
            add(root, &entry.unwrap().path(), out);
        }
    }
}

/// A home whose one schedule backs up `src` incrementally, with `extra` options.
fn incremental_home(extra: &[&str]) -> TestHome {
    let home = TestHome::new();
    let mut args = vec!["create", "--incremental"];
    args.extend_from_slice(extra);
    args.push("src;03:00;code");
    home.manager(&args).success();
    home
}

fn src(home: &TestHome) -> std::path::PathBuf {
    home.path().join("src")
}

/// The archive names `backups` lists, oldest first.
fn chain(home: &TestHome) -> Vec<String> {
    let out = home.manager(&["backups"]);
    out.success();
    let mut names: Vec<String> = out.stdout_lines().into_iter().map(str::to_owned).collect();
    names.reverse();
    names
}

/// The tree our own restore of `name` gives, under its `src`.
fn our_restore(home: &TestHome, name: &[&str]) -> Snapshot {
    let dest = tempfile::tempdir().unwrap();
    let target = dest.path().join("r");
    let mut args = vec!["restore"];
    args.extend_from_slice(name);
    args.insert(2, target.to_str().unwrap());
    home.manager(&args).success();
    snapshot(&target.join("src"))
}

/// The tree GNU tar gives from `archives`, extracted in order with
/// `--listed-incremental=/dev/null`.
fn gnu_restore(home: &TestHome, archives: &[String]) -> Snapshot {
    let dest = tempfile::tempdir().unwrap();
    for archive in archives {
        let out = Command::new("tar")
            .arg("-C")
            .arg(dest.path())
            .args(["-x", "--listed-incremental=/dev/null", "-f"])
            .arg(home.archive_path(archive))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tar -x {archive}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    snapshot(&dest.path().join("src"))
}

/// Backs up now; then both restores of the newest archive must equal the source.
fn back_up_and_compare(home: &TestHome, step: &str) -> Snapshot {
    let expected = snapshot(&src(home));
    home.run_ok(0);
    home.manager(&["verify", "code"]).success();
    let ours = our_restore(home, &["code"]);
    assert_same_map(&ours, &expected, &format!("our restore after {step}"));
    let gnu = gnu_restore(home, &chain(home));
    assert_same_map(&gnu, &expected, &format!("GNU tar after {step}"));
    expected
}

fn set_mtime(path: &Path, when: &str) {
    let ok = Command::new("touch")
        .args(["-h", "-d", when])
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

/// The first changes of the chain below: a new file, an edit, a deletion, and a file
/// replaced within the same second by one of the same size and mtime.
fn change_step_one(home: &TestHome) {
    let s = src(home);
    home.write("src/new", "november");
    home.write("src/a", "alpha, edited");
    fs::remove_file(s.join("sub/b")).unwrap();
    let before = fs::metadata(s.join("same_second")).unwrap();
    fs::write(s.join("same_second.tmp"), "54321").unwrap();
    fs::rename(s.join("same_second.tmp"), s.join("same_second")).unwrap();
    assert_eq!(
        fs::metadata(s.join("same_second")).unwrap().len(),
        before.len()
    );
    set_mtime(
        &s.join("same_second"),
        &format!("@{}.{:09}", before.mtime(), before.mtime_nsec()),
    );
    let after = fs::metadata(s.join("same_second")).unwrap();
    assert_eq!(
        (after.mtime(), after.mtime_nsec()),
        (before.mtime(), before.mtime_nsec())
    );
}

/// Every restore point of the chain, by our restore --at and by GNU tar, equals the tree
/// as it was then.
fn assert_every_restore_point(home: &TestHome, states: &[Snapshot]) {
    let archives = chain(home);
    assert_eq!(archives.len(), 5, "{archives:?}");
    for (i, state) in states.iter().enumerate() {
        assert_eq!(&gnu_restore(home, &archives[..=i]), state, "GNU tar at {i}");
        assert_eq!(
            &our_restore(home, &["code", "--at", &archives[i]]),
            state,
            "our restore --at {}",
            archives[i]
        );
    }
}

#[test]
fn a_chain_of_a_full_and_four_incrementals_restores_every_step() {
    let home = incremental_home(&[]);
    let s = src(&home);
    home.write("src/a", "alpha");
    home.write("src/big", vec![7u8; 300_000]);
    home.write("src/sub/b", "bravo");
    home.write("src/sub/deeper/c", "charlie");
    home.write("src/dir_to_file/x", "x");
    home.write("src/file_to_link", "will be a link");
    home.write("src/chmod_me", "mode");
    home.write("src/old_time", "time");
    home.write("src/rename_me", "moving");
    home.write("src/same_second", "12345");
    symlink("a", s.join("link_to_a")).unwrap();
    let mut states = vec![back_up_and_compare(&home, "the full backup")];
    assert_eq!(chain(&home), ["code.tar"]);

    // 1: a new file, an edit, a deletion, and a file replaced within the same second
    // by one of the same size and mtime (only the inode and ctime tell).
    change_step_one(&home);
    states.push(back_up_and_compare(&home, "adds, an edit, a deletion"));
    // What did not change is not stored again.
    let entries = archive_entries(&home.archive_path("code.tar"));
    assert!(!entries.contains_key("src/big"), "{:?}", entries.keys());
    assert!(entries.contains_key("src/same_second"));
    assert!(entries.contains_key("src/a"));
    assert!(fs::metadata(home.archive_path("code.tar")).unwrap().len() < 100_000);

    // 2: a rename, a folder replaced by a file, a file replaced by a link.
    fs::rename(s.join("rename_me"), s.join("renamed")).unwrap();
    fs::remove_dir_all(s.join("dir_to_file")).unwrap();
    home.write("src/dir_to_file", "now a file");
    fs::remove_file(s.join("file_to_link")).unwrap();
    symlink("new", s.join("file_to_link")).unwrap();
    states.push(back_up_and_compare(&home, "a rename and kinds replaced"));

    // 3: chmod only, and an edit of the same size hidden by `touch -d` into the past.
    fs::set_permissions(s.join("chmod_me"), fs::Permissions::from_mode(0o600)).unwrap();
    let old = fs::metadata(s.join("old_time")).unwrap().mtime();
    fs::write(s.join("old_time"), "TIME").unwrap();
    set_mtime(&s.join("old_time"), &format!("@{old}"));
    set_mtime(&s.join("sub"), "2001-02-03 04:05:06");
    states.push(back_up_and_compare(&home, "chmod and touch -d"));
    let entries = archive_entries(&home.archive_path("code.tar"));
    assert!(entries.contains_key("src/chmod_me"));
    assert!(entries.contains_key("src/old_time"));

    // 4: a folder renamed, a folder deleted, an empty folder and a file into it.
    fs::rename(s.join("sub"), s.join("sub_renamed")).unwrap();
    fs::create_dir(s.join("empty")).unwrap();
    fs::remove_dir_all(s.join("sub_renamed/deeper")).unwrap();
    home.write("src/fresh/file", "fresh");
    states.push(back_up_and_compare(&home, "folders renamed and deleted"));

    // `status` shows the chain.
    let status = home.manager(&["status"]).stdout;
    assert!(
        status.contains("4 incrementals since; next full from"),
        "{status}"
    );
    assert!(status.contains("archives:  5"), "{status}");

    assert_every_restore_point(&home, &states);
}

#[test]
fn nothing_changed_stores_only_the_folder_listings() {
    let home = incremental_home(&[]);
    for i in 0..50 {
        home.write(&format!("src/d{}/f{i}", i % 5), vec![b'x'; 10_000]);
    }
    back_up_and_compare(&home, "the full");
    let full = fs::metadata(home.archive_path("code.tar")).unwrap().len();
    back_up_and_compare(&home, "nothing changed");
    let entries = archive_entries(&home.archive_path("code.tar"));
    assert!(
        entries.keys().all(|k| !k.contains("/f")),
        "{:?}",
        entries.keys()
    );
    let incremental = fs::metadata(home.archive_path("code.tar")).unwrap().len();
    assert!(incremental * 20 < full, "{incremental} vs {full}");
}

#[test]
fn in_large_folders_exactly_the_changed_files_are_stored() {
    // Folders of 300 children are `stat`ed on two threads, a few names at a time by
    // each: changes at both ends and in the middle must all be seen, and nothing else
    // stored.
    let home = incremental_home(&[]);
    for d in 0..2 {
        for i in 0..300 {
            home.write(&format!("src/d{d}/f{i:03}"), format!("{d} {i}"));
        }
    }
    back_up_and_compare(&home, "the full");
    let s = src(&home);
    let changed = ["d0/f000", "d0/f149", "d0/f150", "d0/f299", "d1/f200"];
    for name in changed {
        fs::write(s.join(name), "changed").unwrap();
    }
    fs::remove_file(s.join("d1/f100")).unwrap();
    fs::write(s.join("d1/new"), "new").unwrap();
    back_up_and_compare(&home, "changes in large folders");
    let entries = archive_entries(&home.archive_path("code.tar"));
    let mut files: Vec<&str> = entries
        .keys()
        .map(String::as_str)
        .filter(|k| k.contains("/f") || k.ends_with("/new"))
        .collect();
    files.sort_unstable();
    let mut expected: Vec<String> = changed.iter().map(|n| format!("src/{n}")).collect();
    expected.push("src/d1/new".into());
    expected.sort_unstable();
    assert_eq!(files, expected);
}

#[test]
fn a_damaged_or_lost_record_makes_a_full_backup_with_a_warning() {
    let home = incremental_home(&[]);
    home.write("src/f", "one");
    home.write("src/g", "unchanged");
    back_up_and_compare(&home, "the full");
    home.write("src/f", "two");
    back_up_and_compare(&home, "an incremental");
    let record = home.path().join("backups/.code.record");
    let mut bytes = fs::read(&record).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    fs::write(&record, bytes).unwrap();

    home.write("src/f", "three");
    let expected = snapshot(&src(&home));
    let out = home.manager(&["run", "0"]);
    assert!(
        out.stdout.contains("cannot be used") || out.stderr.contains("cannot be used"),
        "{} {}",
        out.stdout,
        out.stderr
    );
    // A full archive: the unchanged file is in it, and it restores alone.
    let entries = archive_entries(&home.archive_path("code.tar"));
    assert!(entries.contains_key("src/g"));
    assert_same_map(
        &gnu_restore(&home, &["code.tar".to_owned()]),
        &expected,
        "GNU tar",
    );
    assert_same_map(&our_restore(&home, &["code"]), &expected, "our restore");

    // A lost record: the same.
    fs::remove_file(&record).unwrap();
    home.write("src/f", "four");
    home.manager(&["run", "0"]).success();
    assert!(archive_entries(&home.archive_path("code.tar")).contains_key("src/g"));
    // And the chain goes on from the new full.
    home.write("src/f", "five");
    back_up_and_compare(&home, "an incremental after the new full");
    assert!(!archive_entries(&home.archive_path("code.tar")).contains_key("src/g"));
}

#[test]
fn a_chain_whose_full_was_removed_by_hand_starts_again_with_a_full() {
    let home = incremental_home(&[]);
    home.write("src/f", "one");
    home.write("src/g", "same");
    back_up_and_compare(&home, "the full");
    home.write("src/f", "two");
    back_up_and_compare(&home, "an incremental");
    let full = chain(&home)[0].clone();
    fs::remove_file(home.archive_path(&full)).unwrap();
    // The incremental alone cannot be restored, and says why.
    let dest = tempfile::tempdir().unwrap();
    let err = home
        .manager(&["restore", "code", dest.path().join("r").to_str().unwrap()])
        .failure(1)
        .to_owned();
    assert!(err.contains("no longer in"), "{err}");

    home.write("src/f", "three");
    let out = home.manager(&["run", "0"]);
    assert!(
        out.stderr.contains("this backup is a full one"),
        "{}",
        out.stderr
    );
    assert!(archive_entries(&home.archive_path("code.tar")).contains_key("src/g"));
    assert_eq!(
        gnu_restore(&home, &["code.tar".to_owned()]),
        snapshot(&src(&home))
    );
}

#[test]
fn pruning_removes_whole_chains_only() {
    let home = incremental_home(&["--keep", "3"]);
    let record = home.path().join("backups/.code.record");
    let run = |content: &str| {
        home.write("src/f", content);
        home.manager(&["run", "0"]).success();
    };
    run("full 1");
    run("incremental 1");
    fs::remove_file(&record).unwrap();
    run("full 2");
    run("incremental 2");
    // Three restore points kept; the oldest of them needs the first full.
    let archives = chain(&home);
    assert_eq!(archives.len(), 4, "{archives:?}");
    for (i, expected) in ["full 1", "incremental 1", "full 2", "incremental 2"]
        .iter()
        .enumerate()
    {
        let tree = our_restore(&home, &["code", "--at", &archives[i]]);
        assert_eq!(tree["f"].3, expected.as_bytes());
        let gnu = gnu_restore(&home, &archives[..=i]);
        assert_eq!(gnu["f"].3, expected.as_bytes());
    }
    // One more: the first chain as a whole is no longer needed.
    run("incremental 3");
    let archives = chain(&home);
    assert_eq!(archives.len(), 3, "{archives:?}");
    for (i, expected) in ["full 2", "incremental 2", "incremental 3"]
        .iter()
        .enumerate()
    {
        let tree = our_restore(&home, &["code", "--at", &archives[i]]);
        assert_eq!(tree["f"].3, expected.as_bytes());
    }
}

/// `backup_manager run 0` in `home`, paused at `step` so that the test can kill it there.
fn run_paused(home: &TestHome, step: &str) -> ChildGuard {
    common::run_paused(
        home,
        step,
        &home.path().join("paused"),
        File::create(home.path().join("run.err")).unwrap(),
    )
}

#[test]
fn an_incremental_killed_midway_leaves_the_chain_and_the_next_run_redoes_it() {
    // Killed with the archive written aside; then with the archive in place but the
    // record not yet.
    for step in ["written", "renamed"] {
        let home = incremental_home(&[]);
        home.write("src/f", "one");
        home.write("src/g", "same");
        back_up_and_compare(&home, "the full");
        let record = home.path().join("backups/.code.record");
        let record_before = fs::read(&record).unwrap();
        let archives_before = chain(&home);

        home.write("src/f", "two");
        home.write("src/h", "new");
        let mut child = run_paused(&home, step);
        child.0.kill().unwrap(); // SIGKILL
        child.wait();
        // The record is the one of the last finished backup either way.
        assert_eq!(
            fs::read(&record).unwrap(),
            record_before,
            "killed at {step}"
        );
        if step == "written" {
            assert_eq!(chain(&home), archives_before, "killed at {step}");
        }
        // Whatever is there restores as a chain, with GNU tar too.
        let archives = chain(&home);
        assert_same_map(
            &our_restore(&home, &["code"]),
            &gnu_restore(&home, &archives),
            &format!("our restore against GNU tar, killed at {step}"),
        );

        home.write("src/f", "three");
        back_up_and_compare(&home, &format!("the run after a kill at {step}"));
        assert_eq!(home.partial_files(), Vec::<String>::new());
    }
}

/// A home whose `src` holds folders s1, s2 and s3 of 70 files each, and a `run 0` of it
/// paused as it enters s1, once s2 and s3 have been listed ahead on the walk's second
/// thread.
fn paused_after_listing_ahead() -> (TestHome, ChildGuard) {
    let home = incremental_home(&[]);
    for folder in ["s1", "s2", "s3"] {
        for i in 0..70 {
            home.write(&format!("src/{folder}/f{i:02}"), format!("{folder} {i}"));
        }
    }
    // A folder changed less than 2 s before it is listed is never used ahead.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let child = run_paused(&home, "enter-s1");
    // s2 and s3 are asked for ahead as the walk enters s1: time to list them.
    std::thread::sleep(std::time::Duration::from_millis(300));
    (home, child)
}

/// Lets the paused run go on; then the archive must hold `in_s3` in `s3`, and both
/// restores must give back `expected`.
fn resume_and_check(home: &TestHome, mut child: ChildGuard, expected: &Snapshot, in_s3: &[&str]) {
    fs::remove_file(home.path().join("paused")).unwrap();
    assert!(child.wait().success(), "the paused run failed");
    let entries = archive_entries(&home.archive_path("code.tar"));
    let found: Vec<&str> = entries
        .keys()
        .filter_map(|name| name.strip_prefix("src/s3/"))
        .collect();
    assert_eq!(found, in_s3);
    assert_same_map(&our_restore(home, &["code"]), expected, "our restore");
    assert_same_map(&gnu_restore(home, &chain(home)), expected, "GNU tar");
}

#[test]
fn a_folder_swapped_after_it_was_listed_ahead_is_archived_as_found() {
    // The walk has the next folders listed ahead on a second thread. One swapped for
    // another folder in the meantime is archived as the walk finds it when it gets
    // there, not as it was listed.
    let (home, child) = paused_after_listing_ahead();
    let s = src(&home);
    // The walk has read src's own status already: it keeps the mtime it had then.
    let listed_at = fs::metadata(&s).unwrap().mtime();
    fs::rename(s.join("s3"), home.path().join("s3-before")).unwrap();
    home.write("src/s3/new", "new");
    set_mtime(&s, &format!("@{listed_at}"));
    let expected = snapshot(&s);
    resume_and_check(&home, child, &expected, &["new"]);
}

#[test]
fn entries_made_or_renamed_after_a_folder_was_listed_ahead_are_archived() {
    // The same folder, changed in place: a listing made ahead must not be used.
    let (home, child) = paused_after_listing_ahead();
    let s = src(&home);
    fs::rename(s.join("s3/f00"), s.join("s3/renamed")).unwrap();
    home.write("src/s3/made", "made");
    let expected = snapshot(&s);
    let mut in_s3: Vec<String> = (1..70).map(|i| format!("f{i:02}")).collect();
    in_s3.extend(["made".to_owned(), "renamed".to_owned()]);
    in_s3.sort();
    let in_s3: Vec<&str> = in_s3.iter().map(String::as_str).collect();
    resume_and_check(&home, child, &expected, &in_s3);
}

#[test]
fn a_deep_tree_is_backed_up_within_a_small_descriptor_limit() {
    // The walk holds a descriptor for each level it is in; folders listed ahead take
    // more, and must not run a deep tree out of them. 120 levels, each with three
    // folders, the walk going down the first: under a limit of 200 descriptors.
    let home = incremental_home(&[]);
    let mut level = src(&home);
    for depth in 0..120 {
        for folder in ["a", "b", "c"] {
            fs::create_dir_all(level.join(folder)).unwrap();
        }
        fs::write(level.join("b/f"), depth.to_string()).unwrap();
        level = level.join("a");
    }
    let expected = snapshot(&src(&home));
    for run in ["the full", "an incremental"] {
        let out = Command::new("sh")
            .args(["-c", "ulimit -n 200 && exec \"$0\" --home \"$1\" run 0"])
            .arg(common::MANAGER)
            .arg(home.path())
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{run}: {said}");
        assert!(!said.contains("cannot"), "{run}: {said}");
        assert_same_map(
            &our_restore(&home, &["code"]),
            &expected,
            &format!("our restore, {run}"),
        );
    }
    assert_same_map(&gnu_restore(&home, &chain(&home)), &expected, "GNU tar");
}

/// `backup_manager --home HOME ARGS`, run through `prefix` (as the other user).
fn manager_as(prefix: &[String], home: &TestHome, args: &[&str]) -> std::process::Output {
    let mut command: Vec<&str> = prefix.iter().map(String::as_str).collect();
    command.extend([common::MANAGER, "--home", home.path().to_str().unwrap()]);
    command.extend(args);
    Command::new(command[0])
        .args(&command[1..])
        .output()
        .unwrap()
}

/// Gives `path` and all it holds to the unprivileged user, when the tests run as root.
fn give_away(path: &Path) {
    if nix::unistd::Uid::effective().is_root() {
        let owner = format!("{UNPRIVILEGED}:{UNPRIVILEGED}");
        let ok = Command::new("chown")
            .args(["-R", &owner])
            .arg(path)
            .status()
            .unwrap()
            .success();
        assert!(ok, "chown -R {owner} {}", path.display());
    }
}

/// Every restore point of the chain, restored by the user `prefix` runs as (not root)
/// into a folder of theirs, equals the tree as it was then; so does `restore --force` of
/// the newest over the first.
fn assert_every_point_restored_as(prefix: &[String], home: &TestHome, states: &[Snapshot]) {
    let archives = chain(home);
    assert_eq!(archives.len(), 3, "{archives:?}");
    give_away(home.path());
    let restore = |target: &Path, args: &[&str]| {
        let mut command = vec!["restore", "code", target.to_str().unwrap()];
        command.extend(args);
        let out = manager_as(prefix, home, &command);
        assert!(
            out.status.success(),
            "restore {args:?} as uid {UNPRIVILEGED}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        snapshot(&target.join("src"))
    };
    for (i, state) in states.iter().enumerate() {
        let dest = tempfile::tempdir().unwrap();
        give_away(dest.path());
        let target = dest.path().join("r");
        let restored = restore(&target, &["--at", &archives[i]]);
        assert_same_map(&restored, state, &format!("restore --at {}", archives[i]));
        if i == 0 {
            // Again with --force over that first one, its ro/ still mode 555.
            let newest = restore(&target, &["--force"]);
            assert_eq!(
                Some(&newest),
                states.last(),
                "restore --force over --at {}",
                archives[0]
            );
        }
        writable(&target);
    }
}

#[test]
fn a_chain_restores_as_a_user_into_folders_an_earlier_archive_made_read_only() {
    let Some(prefix) = unprivileged_prefix() else {
        eprintln!(
            "note: skipped, running as root and neither setpriv nor runuser can run a \
             program as uid {UNPRIVILEGED} here"
        );
        return;
    };
    let home = incremental_home(&[]);
    let s = src(&home);
    let read_only = |path: &Path, mode: u32| {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    };
    home.write("src/ro/kept", "kept");
    home.write("src/ro/gone", "gone");
    home.write("src/ro/edited", "before");
    home.write("src/ro/sub/inner", "inner");
    home.write("src/ro/replaced_by_folder", "a file");
    read_only(&s.join("ro/edited"), 0o444);
    read_only(&s.join("ro/sub"), 0o555);
    read_only(&s.join("ro"), 0o555);
    let mut states = vec![back_up(&home)];

    // As a user would: chmod u+w, change what ro/ holds, chmod 555 again.
    read_only(&s.join("ro"), 0o755);
    read_only(&s.join("ro/sub"), 0o755);
    home.write("src/ro/added", "added");
    fs::remove_file(s.join("ro/gone")).unwrap();
    read_only(&s.join("ro/edited"), 0o644);
    home.write("src/ro/edited", "after, longer");
    read_only(&s.join("ro/edited"), 0o444);
    fs::remove_dir_all(s.join("ro/sub")).unwrap();
    fs::remove_file(s.join("ro/replaced_by_folder")).unwrap();
    home.write("src/ro/replaced_by_folder/new", "new");
    read_only(&s.join("ro/replaced_by_folder"), 0o500);
    read_only(&s.join("ro"), 0o555);
    states.push(back_up(&home));

    // 2: ro/ and a folder made in the last step both change again.
    read_only(&s.join("ro"), 0o755);
    read_only(&s.join("ro/replaced_by_folder"), 0o700);
    home.write("src/ro/replaced_by_folder/newer", "newer");
    fs::remove_file(s.join("ro/kept")).unwrap();
    read_only(&s.join("ro/replaced_by_folder"), 0o500);
    read_only(&s.join("ro"), 0o511);
    states.push(back_up(&home));

    assert_every_point_restored_as(&prefix, &home, &states);
    writable(&s);
}

/// Backs up now, checks the archive and that GNU tar's chained extraction gives the
/// source back, and returns what the source held.
fn back_up(home: &TestHome) -> Snapshot {
    let expected = snapshot(&src(home));
    home.run_ok(0);
    home.manager(&["verify", "code"]).success();
    // Only as root: as another user, GNU tar cannot write into a folder that an earlier
    // archive of the chain made read-only.
    if nix::unistd::Uid::effective().is_root() {
        assert_same_map(&gnu_restore(home, &chain(home)), &expected, "GNU tar");
    }
    expected
}

/// Makes every folder under `root` writable again, so that a temporary folder can be
/// removed by a user other than root.
fn writable(root: &Path) {
    let ok = Command::new("chmod")
        .args(["-R", "u+rwx"])
        .arg(root)
        .status()
        .unwrap()
        .success();
    assert!(ok, "chmod -R u+rwx {}", root.display());
}

#[test]
fn a_file_that_could_not_be_read_is_stored_by_the_next_backup() {
    // Needs two users: one that cannot read the file, then one that can, while nothing
    // the record keeps of the file (inode, size, times) moves.
    let prefix = match unprivileged_prefix() {
        Some(prefix) if nix::unistd::Uid::effective().is_root() => prefix,
        _ => {
            eprintln!(
                "note: skipped, it needs root and a way to run a program as uid {UNPRIVILEGED}"
            );
            return;
        }
    };
    let home = incremental_home(&[]);
    let s = src(&home);
    home.write("src/open", "readable");
    home.write("src/secret", "root only");
    give_away(home.path());
    nix::unistd::chown(&s.join("secret"), Some(0.into()), Some(0.into())).unwrap();
    fs::set_permissions(s.join("secret"), fs::Permissions::from_mode(0o600)).unwrap();

    let out = manager_as(&prefix, &home, &["run", "0"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Done, with a warning.
    assert_eq!(out.status.code(), Some(common::WARNINGS_EXIT), "{stderr}");
    assert!(stderr.contains("secret: cannot read it"), "{stderr}");

    // Now run by root, which can read it: the file is stored although unchanged.
    home.manager(&["run", "0"]).success();
    let entries = archive_entries(&home.archive_path("code.tar"));
    assert!(entries.contains_key("src/secret"), "{:?}", entries.keys());
    assert!(!entries.contains_key("src/open"), "{:?}", entries.keys());
    let restored = our_restore(&home, &["code"]);
    assert_eq!(restored["secret"].3, b"root only");

    // Stored once: the backup after does not store it again.
    home.manager(&["run", "0"]).success();
    let entries = archive_entries(&home.archive_path("code.tar"));
    assert!(!entries.contains_key("src/secret"), "{:?}", entries.keys());
}
