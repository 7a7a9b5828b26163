//! Generations (`keep=N`) as a user meets them: N archives kept, the newest as NAME.tar,
//! each restorable with its own content; a rotation killed at each of its steps; two
//! backups of one NAME at once.
//!
//! The kills use a hook of debug builds: `BACKUP_TEST_PAUSE=STEP:FILE` makes the rotation
//! create FILE at STEP and wait there until FILE is removed, so that the test can
//! `kill -9` it exactly there.

mod common;

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::{ChildGuard, MANAGER, TestHome, run_paused, wait_for};

/// A home with one schedule of `src` (one file, `src/f`) keeping `keep` archives.
fn home_keeping(keep: &str, extra: &[&str]) -> TestHome {
    let home = TestHome::new();
    home.write("src/f", "v0");
    let mut args = vec!["create", "--keep", keep];
    args.extend_from_slice(extra);
    args.push("src;03:00;code");
    home.manager(&args).success();
    home
}

/// Writes `content` into the source, then backs it up by hand.
fn back_up(home: &TestHome, content: &str) {
    home.write("src/f", content);
    home.run_ok(0);
}

/// What `backups` prints.
fn listed(home: &TestHome) -> Vec<String> {
    let out = home.manager(&["backups"]);
    out.success();
    out.stdout_lines().into_iter().map(str::to_owned).collect()
}

/// The content of `src/f` in archive `file_name`, restored as a user would.
fn restored(home: &TestHome, file_name: &str) -> String {
    let dest = tempfile::tempdir().unwrap();
    let dest = dest.path().join("restored");
    let out = home.manager(&["restore", file_name, dest.to_str().unwrap()]);
    out.success();
    home.manager(&["verify", file_name]).success();
    fs::read_to_string(dest.join("src/f")).unwrap()
}

/// Each listed archive's content, in the listed order; no file is listed twice.
fn contents(home: &TestHome) -> Vec<String> {
    let names = listed(home);
    let unique: BTreeSet<&String> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "listed twice: {names:?}");
    names.iter().map(|name| restored(home, name)).collect()
}

/// The visible (not hidden) archives of `backups/`; each has its index beside it, and
/// no index is left without its archive.
fn visible_files(home: &TestHome) -> BTreeSet<String> {
    let all: BTreeSet<String> = backup_files(home);
    let index_of = |name: &str| {
        name.strip_prefix('.')?
            .strip_suffix(".idx")
            .map(str::to_owned)
    };
    for name in &all {
        match index_of(name) {
            Some(archive) => assert!(all.contains(&archive), "{name} is left alone: {all:?}"),
            None if name.starts_with('.') => {}
            None => assert!(all.contains(&format!(".{name}.idx")), "{name} has no index"),
        }
    }
    all.into_iter()
        .filter(|name| !name.starts_with('.'))
        .collect()
}

/// The files of `backups/`, but indexes.
fn backup_files(home: &TestHome) -> BTreeSet<String> {
    fs::read_dir(home.path().join("backups"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

#[test]
fn n_plus_three_backups_leave_n_archives_each_with_its_own_content() {
    for (keep, compress, suffix) in [("3", None, ".tar"), ("2", Some("zstd"), ".tar.zst")] {
        let extra: Vec<&str> = compress.map_or(vec![], |c| vec!["--compress", c]);
        let home = home_keeping(keep, &extra);
        let n: usize = keep.parse().unwrap();
        for i in 1..=n + 3 {
            back_up(&home, &format!("v{i}"));
        }
        let names = listed(&home);
        assert_eq!(names.len(), n, "{names:?}");
        assert_eq!(names[0], format!("code{suffix}"));
        for dated in &names[1..] {
            // code.YYYY-MM-DD_HHMM[-K].tar
            let stamp = dated
                .strip_prefix("code.")
                .and_then(|rest| rest.strip_suffix(suffix))
                .unwrap_or_else(|| panic!("not a dated name: {dated}"));
            assert!(stamp.len() >= 15 && &stamp[10..11] == "_", "{dated}");
        }
        // Exactly these files, no more: the older ones were removed. Besides them, only
        // the newest's lasting name, the same file as code.tar.
        let mut files = visible_files(&home);
        for name in &names {
            assert!(files.remove(name), "{name} is listed but not there");
        }
        assert_eq!(files.len(), 1, "{files:?}");
        let twin = files.into_iter().next().unwrap();
        assert_eq!(
            fs::metadata(home.archive_path(&twin)).unwrap().ino(),
            fs::metadata(home.archive_path(&names[0])).unwrap().ino(),
            "{twin} is not code{suffix}"
        );
        let expected: Vec<String> = (4..=n + 3).rev().map(|i| format!("v{i}")).collect();
        assert_eq!(contents(&home), expected);

        // The JSON tells which is the latest, what it belongs to, and its compression.
        let out = home.manager(&["backups", "--json"]);
        out.success();
        let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        let items = json.as_array().unwrap();
        assert_eq!(items.len(), n);
        for (i, item) in items.iter().enumerate() {
            assert_eq!(item["name"], names[i].as_str());
            assert_eq!(item["schedule"], "code");
            assert_eq!(item["latest"], i == 0);
            assert_eq!(item["compression"], compress.unwrap_or("none"));
            assert!(item["bytes"].as_u64().unwrap() > 0);
            assert!(item["made"].is_string());
        }
        // Made times never grow down the list.
        let made: Vec<chrono::DateTime<chrono::FixedOffset>> = items
            .iter()
            .map(|i| i["made"].as_str().unwrap().parse().unwrap())
            .collect();
        assert!(made.windows(2).all(|w| w[0] >= w[1]), "{made:?}");

        // `status` counts them.
        let status = home.manager(&["status"]);
        assert!(
            status
                .stdout
                .contains(&format!("   archives:  {n}, oldest made ")),
            "{}",
            status.stdout
        );
        let status = home.manager(&["status", "--json"]);
        let json: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
        assert_eq!(json["schedules"][0]["generations"], n);

        // Removing the schedule removes no archive.
        home.manager(&["delete", "0"]).success();
        assert_eq!(listed(&home), names);
    }
}

#[test]
fn a_plain_schedule_writes_one_archive_and_nothing_else() {
    let home = TestHome::new();
    home.write("src/f", "v0");
    home.manager(&["create", "--keep", "1", "src;03:00;code"])
        .success();
    assert_eq!(
        fs::read_to_string(home.path().join("backup_schedules.txt")).unwrap(),
        "src;03:00;code\n"
    );
    back_up(&home, "v1");
    back_up(&home, "v2");
    let all: Vec<String> = visible_files(&home).into_iter().collect();
    assert_eq!(all, ["code.tar"]);
    assert_eq!(backup_files(&home).len(), 2, "the archive and its index");
    assert_eq!(listed(&home), ["code.tar"]);
    assert_eq!(contents(&home), ["v2"]);
    let status = home.manager(&["status"]);
    assert!(!status.stdout.contains("archives:"), "{}", status.stdout);
    let json = home.manager(&["status", "--json"]).stdout;
    assert!(!json.contains("generations"), "{json}");
}

#[test]
fn a_rotation_killed_at_any_step_leaves_every_finished_generation() {
    // What `backups` shows right after the kill, then after the next backup.
    let steps = [
        ("written", &["v2", "v1"][..], &["v4", "v2"][..]),
        // The new generation is there under its lasting name, among the older ones.
        ("linked", &["v2", "v3", "v1"], &["v4", "v3"]),
        ("kept", &["v2", "v3", "v1"], &["v4", "v3"]),
        ("renamed", &["v3", "v2", "v1"], &["v4", "v3"]),
        ("pruned", &["v3", "v2"], &["v4", "v3"]),
    ];
    for (step, after_kill, after_next) in steps {
        let home = home_keeping("2", &[]);
        back_up(&home, "v1");
        back_up(&home, "v2");
        home.write("src/f", "v3");
        let marker = home.path().join("paused");
        let stderr = File::create(home.path().join("run.err")).unwrap();
        let mut child = run_paused(&home, step, &marker, stderr);
        child.0.kill().unwrap(); // SIGKILL
        child.wait();

        assert_eq!(contents(&home), after_kill, "killed at {step}");
        assert_eq!(listed(&home)[0], "code.tar", "killed at {step}");

        // The next backup repairs what the kill left, and keeps 2.
        back_up(&home, "v4");
        assert_eq!(contents(&home), after_next, "after a kill at {step}");
        // code.tar, its lasting name, and the one older generation.
        assert_eq!(visible_files(&home).len(), 3, "after a kill at {step}");
        assert_eq!(home.partial_files(), Vec::<String>::new());
        // No hidden archive name is left.
        for entry in fs::read_dir(home.path().join("backups")).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            assert!(
                !(name.starts_with('.') && name.ends_with(".tar")),
                "{name} left"
            );
        }
    }
}

#[test]
fn two_runs_of_one_name_take_turns_and_lose_nothing() {
    let home = home_keeping("5", &[]);
    back_up(&home, "v1");
    home.write("src/f", "v2");
    let marker = home.path().join("paused");
    let first_err = home.path().join("first.err");
    let mut first = run_paused(&home, "written", &marker, File::create(&first_err).unwrap());

    // The second starts while the first holds NAME's lock mid-rotation.
    home.write("src/f", "v3");
    let second_err: PathBuf = home.path().join("second.err");
    let second = Command::new(MANAGER)
        .arg("--home")
        .arg(home.path())
        .args(["run", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&second_err).unwrap())
        .spawn()
        .unwrap();
    let mut second = ChildGuard(second);
    let waiting = format!(
        "backup_manager: waiting for another backup of code.tar (pid {}) to finish",
        first.pid()
    );
    wait_for("the second run to say it waits", || {
        fs::read_to_string(&second_err).unwrap().contains(&waiting)
    });
    assert!(second.is_running(), "the second run did not wait");
    // Nothing of the second is in place while the first is paused.
    assert_eq!(contents(&home), ["v1"]);

    fs::remove_file(&marker).unwrap();
    assert!(
        first.wait().success(),
        "{}",
        fs::read_to_string(&first_err).unwrap()
    );
    assert!(
        second.wait().success(),
        "{}",
        fs::read_to_string(&second_err).unwrap()
    );
    assert_eq!(contents(&home), ["v3", "v2", "v1"]);
}

#[test]
fn the_service_postpones_a_backup_of_a_name_being_written_by_hand() {
    common::in_one_minute(std::time::Duration::from_secs(20), |now| {
        let home = TestHome::new();
        home.write("src/f", "v1");
        home.manager(&["create", "--keep", "3", &format!("src;{now};code")])
            .success();
        let marker = home.path().join("paused");
        let err = File::create(home.path().join("run.err")).unwrap();
        let mut by_hand = run_paused(&home, "written", &marker, err);
        home.start();
        if !common::still_in(now) {
            return None;
        }
        let postponed = format!(
            "Backup of src postponed: another process (pid {}) is writing backups/code.tar",
            by_hand.pid()
        );
        wait_for("the service to postpone its backup", || {
            common::has_message(&home.service_log(), &postponed)
        });
        assert!(
            !common::has_message(&home.service_log(), "Backup done for src"),
            "{:#?}",
            home.service_log()
        );
        // The service's backup, once the one by hand is done, sees the new content.
        home.write("src/f", "v2");
        fs::remove_file(&marker).unwrap();
        assert!(by_hand.wait().success());
        wait_for("the postponed backup", || {
            common::has_message(
                &home.service_log(),
                "Backup done for src in backups/code.tar",
            )
        });
        home.stop();
        assert_eq!(common::count_messages(&home.service_log(), &postponed), 1);
        assert_eq!(contents(&home), ["v2", "v1"]);
        Some(())
    });
}

#[test]
fn lowering_keep_to_one_by_hand_leaves_one_plain_archive() {
    let home = home_keeping("3", &[]);
    back_up(&home, "v1");
    back_up(&home, "v2");
    back_up(&home, "v3");
    assert_eq!(listed(&home).len(), 3);
    fs::write(home.path().join("backup_schedules.txt"), "src;03:00;code\n").unwrap();
    back_up(&home, "v4");
    assert_eq!(contents(&home), ["v4"]);
    let all: Vec<String> = visible_files(&home).into_iter().collect();
    assert_eq!(all, ["code.tar"]);
    let mut rest = backup_files(&home);
    rest.remove(".code.lock");
    assert_eq!(rest.len(), 2, "the archive and its index: {rest:?}");
    // From then on, plain backups.
    back_up(&home, "v5");
    assert_eq!(contents(&home), ["v5"]);
}

#[test]
fn a_failed_backup_renames_and_removes_nothing() {
    let home = home_keeping("2", &[]);
    back_up(&home, "v1");
    back_up(&home, "v2");
    let before = listed(&home);
    fs::remove_dir_all(home.path().join("src")).unwrap();
    let out = home.manager(&["run", "0"]);
    assert_eq!(out.code(), Some(1), "{out:#?}");
    assert_eq!(listed(&home), before);
    assert_eq!(contents(&home), ["v2", "v1"]);
    assert_eq!(home.partial_files(), Vec::<String>::new());
}

#[test]
fn raising_keep_keeps_the_plain_archive_as_the_first_older_one() {
    let home = TestHome::new();
    home.write("src/f", "v0");
    home.manager(&["create", "src;03:00;code"]).success();
    back_up(&home, "v1");
    fs::write(
        home.path().join("backup_schedules.txt"),
        "src;03:00;code;keep=2\n",
    )
    .unwrap();
    back_up(&home, "v2");
    assert_eq!(contents(&home), ["v2", "v1"]);
    back_up(&home, "v3");
    assert_eq!(contents(&home), ["v3", "v2"]);
}

/// The dated file that is the same file as `code.tar`: the newest's lasting name.
fn lasting_name_of_newest(home: &TestHome) -> String {
    let newest = fs::metadata(home.archive_path("code.tar")).unwrap().ino();
    let twins: Vec<String> = visible_files(home)
        .into_iter()
        .filter(|name| name != "code.tar")
        .filter(|name| fs::metadata(home.archive_path(name)).unwrap().ino() == newest)
        .collect();
    assert_eq!(twins.len(), 1, "{twins:?}");
    twins.into_iter().next().unwrap()
}

/// A mirror never has to rename: every generation is written under a dated name that it
/// keeps, the same file, until it is pruned; the newest is code.tar as well. The newest is
/// found by that name too, and a home that holds only the dated names restores it.
#[test]
fn every_generation_keeps_the_name_it_was_written_under_until_pruned() {
    let home = home_keeping("3", &[]);
    let mut seen: Vec<(String, u64)> = Vec::new();
    for i in 1..=5 {
        back_up(&home, &format!("v{i}"));
        let lasting = lasting_name_of_newest(&home);
        let ino = fs::metadata(home.archive_path(&lasting)).unwrap().ino();
        assert!(!seen.iter().any(|(n, _)| *n == lasting), "{lasting} reused");
        seen.push((lasting, ino));
        // Each name written so far is the same file still, or gone for good (pruned).
        let kept = seen.len().min(3);
        for (at, (name, ino)) in seen.iter().enumerate() {
            match fs::metadata(home.archive_path(name)) {
                Ok(meta) => {
                    assert!(at >= seen.len() - kept, "{name} is kept beyond keep=3");
                    assert_eq!(meta.ino(), *ino, "{name} changed files");
                }
                Err(_) => assert!(at < seen.len() - kept, "{name} vanished"),
            }
        }
    }
    assert_eq!(contents(&home), ["v5", "v4", "v3"]);
    let newest = &seen[4].0;
    assert_eq!(restored(&home, newest), "v5");

    // A fresh home holding only the lasting names, as a mirror has them.
    let mirror = TestHome::new();
    mirror.write(
        "backup_schedules.txt",
        fs::read(home.path().join("backup_schedules.txt")).unwrap(),
    );
    for (name, _) in &seen[2..] {
        mirror.write(
            &format!("backups/{name}"),
            fs::read(home.archive_path(name)).unwrap(),
        );
    }
    assert_eq!(listed(&mirror).len(), 3);
    assert_eq!(restored(&mirror, "code"), "v5");
}

/// `backups --long` gives each archive's size, date and kind; plain `backups` is as it was.
#[test]
fn backups_long_shows_size_date_and_kind() {
    let home = TestHome::new();
    home.write("src/f", "data");
    home.manager(&["create", "--incremental", "src;03:00;code"])
        .success();
    home.manager(&["create", "--compress", "zstd", "src;03:00;plain"])
        .success();
    home.run_ok(0);
    home.run_ok(0);
    home.run_ok(1);
    let names = listed(&home);
    let out = home.manager(&["backups", "--long"]);
    out.success();
    let lines = out.stdout_lines();
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    let kinds = ["incremental", "full", "plain"];
    for ((line, name), kind) in lines.iter().zip(&names).zip(kinds) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields[0], name.as_str(), "{line}");
        let size = fs::metadata(home.archive_path(name)).unwrap().len();
        assert_eq!(
            format!("{} {}", fields[1], fields[2]),
            backup::job::format_size(size),
            "{line}"
        );
        // DD/MM/YYYY HH:MM, the minute it was made.
        assert_eq!(fields[3].len(), 10, "{line}");
        assert_eq!(fields[4].len(), 5, "{line}");
        assert_eq!(fields[5], kind, "{line}");
    }
    let out = home.manager(&["backups", "--long", "--json"]);
    assert_eq!(out.code(), Some(2));
}
