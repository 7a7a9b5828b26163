//! Schedules found by NAME as well as by INDEX: `run NAME`, `delete NAME` and
//! `edit INDEX|NAME`, through the real binary, with the schedule file checked byte for
//! byte after each refusal.

mod common;

use common::{TestHome, count_messages};

/// A home with one NAME on two lines (two times of day) and another schedule.
fn home_with_two_times() -> (TestHome, Vec<u8>) {
    let home = TestHome::new();
    home.write("data/a", "a");
    home.write("other/b", "b");
    for line in ["data;02:00;proj", "data;14:00;proj", "other;03:00;o"] {
        home.manager(&["create", line]).success();
    }
    let bytes = home.schedule_bytes().unwrap();
    (home, bytes)
}

/// The `last_run` of each schedule, as `status --json` gives it.
fn last_runs(home: &TestHome) -> Vec<Option<serde_json::Value>> {
    let out = home.manager(&["status", "--json"]);
    let status: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    status["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.get("last_run").filter(|r| !r.is_null()).cloned())
        .collect()
}

#[test]
fn run_name_backs_up_once_and_records_the_run_for_each_of_its_lines() {
    let (home, _) = home_with_two_times();
    let out = home.manager(&["run", "proj"]);
    out.success();
    assert!(
        out.stderr
            .contains("backed up data into backups/proj.tar (2 entries"),
        "{out:#?}"
    );
    let log = home.manager_log();
    assert_eq!(
        count_messages(&log, "Backup started for data into backups/proj.tar"),
        1
    );
    let runs = last_runs(&home);
    assert!(runs[0].is_some() && runs[0] == runs[1], "{runs:#?}");
    assert_eq!(runs[2], None, "{runs:#?}");
    // By index, as before: only that line.
    home.manager(&["run", "2"]).success();
    assert!(last_runs(&home)[2].is_some());
}

#[test]
fn delete_name_removes_each_of_its_lines_and_keeps_the_others() {
    let (home, _) = home_with_two_times();
    home.write(
        "backup_schedules.txt",
        "data;02:00;proj\r\nhand junk\r\nother;03:00;o\r\ndata;14:00;proj\r\n",
    );
    home.manager(&["delete", "proj"]).success();
    assert_eq!(
        home.schedule_bytes().unwrap(),
        b"hand junk\r\nother;03:00;o\r\n"
    );
    let log = home.manager_log();
    assert_eq!(count_messages(&log, "Schedule deleted: data;02:00;proj"), 1);
    assert_eq!(count_messages(&log, "Schedule deleted: data;14:00;proj"), 1);
}

#[test]
fn a_name_no_schedule_has_is_refused_and_digits_are_always_an_index() {
    let (home, bytes) = home_with_two_times();
    for args in [&["delete", "one"][..], &["delete", "+1"], &["run", "0x1"]] {
        let err = home.manager(args).failure(1).to_owned();
        assert!(err.contains("no schedule is named"), "{args:?}: {err}");
        assert_eq!(home.schedule_bytes().unwrap(), bytes, "{args:?}");
    }
    // A NAME made of digits is reached by its index only: scripts keep working.
    home.write("n/x", "x");
    home.manager(&["create", "n;05:00;7"]).success();
    let err = home.manager(&["run", "7"]).failure(1).to_owned();
    assert!(err.contains("no schedule at index 7"), "{err}");
    home.manager(&["run", "3"]).success();
    // What is neither an index nor a NAME is a usage error.
    for bad in [" 1", "a/b", ".x"] {
        let out = home.manager(&["delete", bad]);
        assert_eq!(out.code(), Some(2), "{bad:?}: {out:#?}");
    }
}

#[test]
fn edit_changes_one_line_in_place_and_keeps_its_history() {
    let (home, _) = home_with_two_times();
    home.manager(&["run", "o"]).success();
    let before = last_runs(&home)[2].clone();
    let out = home.manager(&[
        "edit",
        "o",
        "--time",
        "04:30",
        "--compress",
        "zstd",
        "--keep",
        "3",
        "--exclude",
        "*.log",
    ]);
    out.success();
    assert_eq!(
        out.stderr,
        "backup_manager: schedule 2 is now other;04:30;o;zstd;keep=3;exclude=*.log\n"
    );
    assert_eq!(
        home.schedule_bytes().unwrap(),
        b"data;02:00;proj\ndata;14:00;proj\nother;04:30;o;zstd;keep=3;exclude=*.log\n"
    );
    assert_eq!(
        last_runs(&home)[2],
        before,
        "the history goes with the line"
    );
    // Options cleared, then set, by index.
    home.manager(&[
        "edit",
        "2",
        "--clear",
        "keep",
        "--clear",
        "exclude",
        "--gitignore",
    ])
    .success();
    assert_eq!(
        home.schedule_bytes().unwrap(),
        b"data;02:00;proj\ndata;14:00;proj\nother;04:30;o;zstd;gitignore\n"
    );
    home.manager(&["edit", "o", "--clear", "compress", "--clear", "gitignore"])
        .success();
    assert!(
        home.schedule_bytes()
            .unwrap()
            .ends_with(b"\nother;04:30;o\n"),
        "a line cleared of every option is a plain line again"
    );
    // Encrypted, then plain again.
    let age = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";
    home.manager(&["edit", "o", "--encrypt", age]).success();
    assert!(
        home.schedule_bytes()
            .unwrap()
            .ends_with(format!("\nother;04:30;o;encrypt={age}\n").as_bytes()),
        "{:?}",
        String::from_utf8(home.schedule_bytes().unwrap())
    );
    home.manager(&["edit", "o", "--clear", "encrypt"]).success();
    assert!(common::has_message(
        &home.manager_log(),
        "Schedule edited: other;04:30;o;zstd;gitignore is now other;04:30;o"
    ));
}

#[test]
fn edit_refuses_what_create_refuses_and_changes_nothing() {
    let (home, bytes) = home_with_two_times();
    let refused = [
        // A NAME on two lines: which one is meant?
        (
            &["edit", "proj", "--time", "03:00"][..],
            "schedule \"proj\" is on 2 lines: index 0 (data;02:00;proj), index 1 \
             (data;14:00;proj); give the INDEX of one",
        ),
        // Other options for one of them would make two archive series of one NAME.
        (
            &["edit", "0", "--compress", "gzip"],
            "already used by schedule 1 (data;14:00;proj) for another PATH or other options",
        ),
        (
            &["edit", "0", "--time", "14:00"],
            "schedule data;14:00;proj already exists at index 1",
        ),
        (
            &["edit", "2", "--exclude", "src/{a"],
            "is not a valid pattern",
        ),
        (&["edit", "2", "--exclude", "a;b"], "holds a ';'"),
        (&["edit", "2"], "nothing to change"),
        (&["edit", "9", "--keep", "2"], "no schedule at index 9"),
        (
            &["edit", "nope", "--keep", "2"],
            "no schedule is named \"nope\"",
        ),
    ];
    for (args, expected) in refused {
        let err = home.manager(args).failure(1).to_owned();
        assert!(err.contains(expected), "{args:?}: {err}");
        assert_eq!(home.schedule_bytes().unwrap(), bytes, "{args:?}");
    }
    for args in [
        &["edit", "2", "--time", "7:5"][..],
        &["edit", "2", "--clear", "colour"],
        &["edit", "2", "--keep", "0"],
    ] {
        let out = home.manager(args);
        assert_eq!(out.code(), Some(2), "{args:?}: {out:#?}");
        assert_eq!(home.schedule_bytes().unwrap(), bytes, "{args:?}");
    }
    let out = home.manager(&["edit", "2", "--time", "7:5"]);
    assert!(out.stderr.contains("did you mean 07:05?"), "{out:#?}");
    // A line that is no schedule can only be deleted.
    home.write("backup_schedules.txt", "junk\n");
    let err = home
        .manager(&["edit", "0", "--keep", "2"])
        .failure(1)
        .to_owned();
    assert!(err.contains("schedule 0 cannot be edited"), "{err}");
    assert_eq!(home.schedule_bytes().unwrap(), b"junk\n");
}

#[test]
fn edit_keeps_a_windows_line_end_and_the_other_lines_byte_for_byte() {
    let home = TestHome::new();
    home.write(
        "backup_schedules.txt",
        b"a;01:00;a\r\n\xffjunk\nb;02:00;b\r\n",
    );
    home.manager(&["edit", "b", "--time", "03:00"]).success();
    assert_eq!(
        home.schedule_bytes().unwrap(),
        b"a;01:00;a\r\n\xffjunk\nb;03:00;b\r\n"
    );
}

#[test]
fn a_name_on_a_bad_line_is_pointed_to_not_said_to_be_missing() {
    let home = TestHome::new();
    home.write("src/a", "a\n");
    home.write(
        "backup_schedules.txt",
        "src;02:00;ok\nsrc;02:00;z;encrypt=age1bad\n",
    );
    let before = home.schedule_bytes();
    for command in ["run", "delete", "edit"] {
        let mut args = vec![command, "z"];
        if command == "edit" {
            args.extend(["--keep", "2"]);
        }
        let out = home.manager(&args);
        assert_eq!(
            out.failure(1),
            "backup_manager: schedule \"z\" is on a bad line, index 1, which the service \
             skips: `list` says why; fix it by hand or `delete 1`",
            "{command}"
        );
        assert_eq!(home.schedule_bytes(), before, "{command}");
    }
    assert!(!home.path().join("backups").exists());
}
