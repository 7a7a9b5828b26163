//! `backup_manager` as a user meets it: the brief's walkthrough, every error path, and
//! concurrent edits of the schedule file.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{
    TestHome, archive_entries, assert_message, finish, has_message, in_one_minute, mode, run,
    still_in,
};

/// The walkthrough of the spec, step by step, with the current minute.
#[test]
fn the_walkthrough_prints_logs_and_archives_what_the_spec_shows() {
    in_one_minute(Duration::from_secs(15), |now| {
        let home = TestHome::new();
        home.write("test/hello.txt", "hello\n");
        home.write("test/sub/nested.txt", "nested\n");
        home.write("test1/personal.txt", "private\n");
        home.write("test2/report.txt", "report\n");
        let schedules = [
            format!("test;{now};backup_test"),
            format!("test1;{now};personal_data"),
            format!("test2;{now};office_docs"),
        ];
        for schedule in &schedules {
            let out = home.manager(&["create", schedule]);
            out.success();
            assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("", ""));
        }
        let before = home.schedule_bytes();
        let refused = home.manager(&["create", "test;"]);
        assert!(
            refused.failure(1).contains("malformed schedule: test;"),
            "{refused:?}"
        );
        assert_eq!(home.schedule_bytes(), before);

        let list = home.manager(&["list"]);
        list.success();
        assert_eq!(
            list.stdout,
            format!(
                "0: {}\n1: {}\n2: {}\n",
                schedules[0], schedules[1], schedules[2]
            )
        );

        let start = home.manager(&["start"]);
        start.success();
        assert_eq!(start.stdout, "");
        if !still_in(now) {
            // The service looked at the schedules after their minute: not due until
            // tomorrow. Try again with the next minute.
            return None;
        }
        let stop = home.manager(&["stop"]);
        stop.success();
        assert_eq!(stop.stdout, "");
        assert_eq!(home.service_pid(), None);

        let backups = home.manager(&["backups"]);
        backups.success();
        assert_eq!(
            backups.stdout,
            "backup_test.tar\noffice_docs.tar\npersonal_data.tar\n"
        );

        assert_walkthrough_archives(&home);
        assert_walkthrough_logs(&home, &schedules);
        Some(())
    });
}

/// The walkthrough's archives: private, each holding its folder.
fn assert_walkthrough_archives(home: &TestHome) {
    let expected: [(&str, &[(&str, &str)]); 3] = [
        (
            "backup_test.tar",
            &[
                ("test", ""),
                ("test/hello.txt", "hello\n"),
                ("test/sub", ""),
                ("test/sub/nested.txt", "nested\n"),
            ],
        ),
        (
            "personal_data.tar",
            &[("test1", ""), ("test1/personal.txt", "private\n")],
        ),
        (
            "office_docs.tar",
            &[("test2", ""), ("test2/report.txt", "report\n")],
        ),
    ];
    for (archive, members) in expected {
        let path = home.archive_path(archive);
        assert_eq!(mode(&path), 0o600, "{archive} is readable by others");
        let entries = archive_entries(&path);
        let found: Vec<(&str, &str)> = entries
            .iter()
            .map(|(name, e)| {
                (
                    name.trim_end_matches('/'),
                    std::str::from_utf8(&e.contents).unwrap(),
                )
            })
            .collect();
        assert_eq!(found, members, "{archive}");
    }
}

/// The walkthrough's log lines, as the spec shows them.
fn assert_walkthrough_logs(home: &TestHome, schedules: &[String]) {
    let manager_log = home.manager_log();
    let expected_manager_log = [
        format!("New schedule added: {}", schedules[0]),
        format!("New schedule added: {}", schedules[1]),
        format!("New schedule added: {}", schedules[2]),
        "Error: malformed schedule: test;".to_owned(),
        "Show schedules list".to_owned(),
        "backup_service started".to_owned(),
        "backup_service stopped".to_owned(),
        "Show backups list".to_owned(),
    ];
    assert_eq!(
        manager_log.len(),
        expected_manager_log.len(),
        "{manager_log:#?}"
    );
    for (line, expected) in manager_log.iter().zip(&expected_manager_log) {
        assert_message(std::slice::from_ref(line), expected);
    }

    let service_log = home.service_log();
    let done: Vec<&String> = service_log
        .iter()
        .filter(|m| m.starts_with("Backup done for "))
        .collect();
    assert_eq!(done.len(), 3, "{service_log:#?}");
    for (line, expected) in done.into_iter().zip([
        "Backup done for test in backups/backup_test.tar",
        "Backup done for test1 in backups/personal_data.tar",
        "Backup done for test2 in backups/office_docs.tar",
    ]) {
        assert_message(std::slice::from_ref(line), expected);
    }
    assert!(
        !service_log.iter().any(|m| m.starts_with("Error")),
        "{service_log:#?}"
    );
    // Each backup's start is logged too, before it is done.
    for (path, archive) in [
        ("test", "backup_test"),
        ("test1", "personal_data"),
        ("test2", "office_docs"),
    ] {
        let started = format!("Backup started for {path} into backups/{archive}.tar");
        let done = format!("Backup done for {path} in backups/{archive}.tar");
        let at = |what: &str| service_log.iter().position(|m| m.starts_with(what));
        assert!(
            at(&started) < at(&done) && at(&started).is_some(),
            "{service_log:#?}"
        );
    }
}

/// A home with two schedules, for the error paths to leave alone.
fn home_with_schedules() -> (TestHome, Vec<u8>) {
    let home = TestHome::new();
    home.manager(&["create", "docs;07:00;docs"]).success();
    home.manager(&["create", "mail;08:30;mail"]).success();
    let bytes = home.schedule_bytes().unwrap();
    assert_eq!(bytes, b"docs;07:00;docs\nmail;08:30;mail\n");
    (home, bytes)
}

/// Asserts that the manager's last log line is the error it printed on stderr.
fn assert_error_logged(home: &TestHome, stderr_line: &str) {
    let message = stderr_line
        .strip_prefix("backup_manager: ")
        .unwrap_or_else(|| panic!("stderr does not say who speaks: {stderr_line:?}"));
    let log = home.manager_log();
    assert_eq!(
        log.last().map(String::as_str),
        Some(format!("Error: {message}").as_str()),
        "{log:#?}"
    );
}

#[test]
fn malformed_schedules_are_refused_logged_and_leave_the_file_alone() {
    let (home, bytes) = home_with_schedules();
    let malformed = [
        // The examples of the spec.
        "test;",
        "a;25:00;x",
        "a;7:5;x",
        "a;07:05;../x",
        "a;07:05;x;y",
        // And more of what the spec forbids.
        "",
        "test",
        ";07:05;x",
        "a;07:05;",
        "a;07:05;.",
        "a;07:05;..",
        "a;07:05;.hidden",
        "a;07:05;sub/name",
        "a;24:00;x",
        "a;12:60;x",
        "a;12-00;x",
        "a;07:05;x\ty",
        "a\nb;07:05;x",
        "a;07:05;x ",
        // The name of a kept generation of `code`.
        "a;07:05;code.2026-11-22_0200",
    ];
    for line in malformed {
        let out = home.manager(&["create", line]);
        let err = out.failure(1);
        // A control character is shown escaped, so that the error stays one line.
        let shown = line.escape_debug().to_string();
        assert!(
            err.contains(&format!("malformed schedule: {line}"))
                || err.contains(&format!("malformed schedule: {shown}")),
            "{line:?}: {err}"
        );
        assert_error_logged(&home, err);
        assert_eq!(
            home.schedule_bytes().unwrap(),
            bytes,
            "{line:?} changed the file"
        );
    }
}

/// What the shell made of an unquoted schedule, and a time not written HH:MM, are answered
/// with what to type instead.
#[test]
fn an_unquoted_schedule_and_a_short_time_get_a_hint() {
    let (home, bytes) = home_with_schedules();
    // `backup_manager create proj;02:00;p` runs `create proj`, then `02:00` and `p`.
    let out = home.manager(&["create", "proj"]);
    let err = out.failure(1);
    assert_eq!(
        err,
        "backup_manager: malformed schedule: proj (expected PATH;HH:MM;NAME[;OPTION]..., \
         found 1 field); quote it, as the shell splits a command at ';': create \
         \"PATH;HH:MM;NAME\""
    );
    assert_error_logged(&home, err);
    let out = home.manager(&["create", "a;7:5;x"]);
    let err = out.failure(1);
    assert!(
        err.ends_with("(time \"7:5\" is not HH:MM; did you mean 07:05?)"),
        "{err}"
    );
    assert_error_logged(&home, err);
    // The walkthrough's malformed line gets no hint.
    let err = home.manager(&["create", "test;"]).failure(1).to_owned();
    assert_eq!(
        err,
        "backup_manager: malformed schedule: test; (expected PATH;HH:MM;NAME[;OPTION]..., \
         found 2 fields)"
    );
    assert_eq!(home.schedule_bytes().unwrap(), bytes);
}

#[test]
fn delete_of_a_missing_index_is_refused() {
    let (home, bytes) = home_with_schedules();
    let out = home.manager(&["delete", "2"]);
    let err = out.failure(1);
    assert!(err.contains("no schedule at index 2"), "{err}");
    assert_error_logged(&home, err);
    assert_eq!(home.schedule_bytes().unwrap(), bytes);

    // In a home without a schedule file, nothing is created either.
    let empty = TestHome::new();
    let err = empty.manager(&["delete", "0"]).failure(1).to_owned();
    assert!(err.contains("no schedule at index 0"), "{err}");
    assert_error_logged(&empty, &err);
    assert_eq!(empty.schedule_bytes(), None);
}

#[test]
fn delete_removes_one_line_and_keeps_the_others_byte_for_byte() {
    let home = TestHome::new();
    // Written by hand: a malformed line and trailing blanks, which must survive.
    home.write(
        "backup_schedules.txt",
        "docs;07:00;docs\nhand-written junk  \nmail;08:30;mail\n",
    );
    home.manager(&["delete", "0"]).success();
    assert_eq!(
        home.schedule_bytes().unwrap(),
        b"hand-written junk  \nmail;08:30;mail\n"
    );
    assert_message(&home.manager_log(), "Schedule deleted: docs;07:00;docs");
    let list = home.manager(&["list"]);
    assert_eq!(list.stdout, "0: hand-written junk  \n1: mail;08:30;mail\n");
}

#[test]
fn a_name_already_used_by_another_path_is_refused() {
    let (home, bytes) = home_with_schedules();
    let out = home.manager(&["create", "elsewhere;09:00;docs"]);
    let err = out.failure(1);
    assert!(err.contains("elsewhere;09:00;docs"), "{err}");
    assert!(err.contains("\"docs\""), "{err}");
    assert_error_logged(&home, err);
    assert_eq!(home.schedule_bytes().unwrap(), bytes);
}

#[test]
fn usage_errors_exit_2_and_change_nothing() {
    let (home, bytes) = home_with_schedules();
    let log = home.manager_log();
    // `delete one`, `delete +1` and `run 0x1` name a NAME (tests/by_name.rs).
    for args in [
        &["delete", "-1"][..],
        &["delete", " 1"],
        &["run", "a/b"],
        &["delete"],
        &["create"],
        &["frobnicate"],
        &[],
        &["stop", "--timeout", "soon"],
    ] {
        let out = home.manager(args);
        assert_eq!(out.code(), Some(2), "{args:?}: {out:#?}");
        assert!(!out.stderr.is_empty(), "{args:?}: {out:#?}");
        assert_eq!(out.stdout, "", "{args:?}");
        assert_eq!(home.schedule_bytes().unwrap(), bytes, "{args:?}");
    }
    assert_eq!(home.manager_log(), log);
}

#[test]
fn a_missing_home_is_an_error_and_is_not_created() {
    let parent = TestHome::new();
    let missing = parent.path().join("no-such-home");
    let out = run(
        common::MANAGER,
        &["--home", missing.to_str().unwrap(), "list"],
        None,
    );
    let err = out.failure(1);
    assert!(err.contains("no-such-home"), "{err}");
    assert!(!missing.exists());

    // A file is not a home either.
    parent.write("a-file", "x");
    let file = parent.path().join("a-file");
    let out = run(
        common::MANAGER,
        &["--home", file.to_str().unwrap(), "create", "a;01:00;a"],
        None,
    );
    assert!(out.failure(1).contains("a-file"), "{out:?}");
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
}

#[test]
fn the_current_directory_is_the_home_without_home() {
    let home = TestHome::new();
    let out = run(
        common::MANAGER,
        &["create", "docs;07:00;docs"],
        Some(home.path()),
    );
    out.success();
    assert_eq!(home.schedule_bytes().unwrap(), b"docs;07:00;docs\n");
    assert_message(&home.manager_log(), "New schedule added: docs;07:00;docs");
}

#[test]
fn stop_while_not_running_and_start_while_running_are_refused() {
    let (home, bytes) = home_with_schedules();
    let err = home.manager(&["stop"]).failure(1).to_owned();
    assert!(err.contains("not running"), "{err}");
    assert_error_logged(&home, &err);
    let err = home.manager(&["stop", "--force"]).failure(1).to_owned();
    assert!(err.contains("not running"), "{err}");

    let pid = home.start();
    let err = home.manager(&["start"]).failure(1).to_owned();
    assert!(err.contains("already running"), "{err}");
    assert!(err.contains(&pid.to_string()), "{err}");
    assert_error_logged(&home, &err);
    assert_eq!(home.service_pid(), Some(pid));
    assert_eq!(home.service_processes(), [pid]);
    assert_eq!(home.schedule_bytes().unwrap(), bytes);
    home.stop();
}

#[test]
fn list_shows_every_line_and_fails_naming_the_bad_ones_which_delete_removes() {
    let home = TestHome::new();
    let bytes = b"docs;07:00;docs\n\xff\xfe;08:00;x\ntest;\nmail;08:30;mail\r\n".to_vec();
    home.write("backup_schedules.txt", &bytes);
    let list = home.manager(&["list"]);
    assert_eq!(list.code(), Some(1), "{list:#?}");
    let err = list.stderr.trim_end().to_owned();
    assert_eq!(
        list.stdout_lines(),
        [
            "0: docs;07:00;docs",
            "1: \\xff\\xfe;08:00;x",
            "2: test;",
            "3: mail;08:30;mail"
        ]
    );
    assert!(
        err.contains("backup_schedules.txt has 2 bad lines"),
        "{err}"
    );
    assert!(
        err.contains("index 1 (the line is not valid UTF-8)"),
        "{err}"
    );
    assert!(err.contains("index 2 ("), "{err}");
    assert_error_logged(&home, &err);
    assert_eq!(home.schedule_bytes().unwrap(), bytes);

    // The tool repairs what it reports: each bad line goes, the others stay byte for byte.
    home.manager(&["delete", "1"]).success();
    assert_message(&home.manager_log(), "Schedule deleted: \\xff\\xfe;08:00;x");
    assert_eq!(
        home.schedule_bytes().unwrap(),
        b"docs;07:00;docs\ntest;\nmail;08:30;mail\r\n"
    );
    home.manager(&["delete", "1"]).success();
    assert_eq!(
        home.schedule_bytes().unwrap(),
        b"docs;07:00;docs\nmail;08:30;mail\r\n"
    );
    home.manager(&["list"]).success();
}

#[test]
fn a_schedule_file_edited_on_windows_reads_as_lf_and_keeps_its_line_ends() {
    let home = TestHome::new();
    home.write(
        "backup_schedules.txt",
        "docs;07:00;docs\r\nmail;08:30;mail\r\nweb;09:00;web\r\n",
    );
    let list = home.manager(&["list"]);
    list.success();
    assert_eq!(
        list.stdout_lines(),
        [
            "0: docs;07:00;docs",
            "1: mail;08:30;mail",
            "2: web;09:00;web"
        ]
    );
    home.manager(&["delete", "1"]).success();
    assert_message(&home.manager_log(), "Schedule deleted: mail;08:30;mail");
    home.manager(&["create", "src;10:00;src"]).success();
    assert_eq!(
        home.schedule_bytes().unwrap(),
        b"docs;07:00;docs\r\nweb;09:00;web\r\nsrc;10:00;src\r\n"
    );
    // The same schedule with either line end is one schedule.
    let err = home
        .manager(&["create", "docs;07:00;docs"])
        .failure(1)
        .to_owned();
    assert!(err.contains("already exists at index 0"), "{err}");
}

#[test]
fn list_shows_control_characters_escaped() {
    let home = TestHome::new();
    home.write(
        "backup_schedules.txt",
        "docs;07:00;docs\r\r\nx\u{1b}[2J;07:00;y\nmail;08:00;mail\n",
    );
    let out = home.manager(&["list"]);
    // A stray second "\r" is part of NAME, and PATH holds an escape: both lines are bad.
    assert_eq!(out.code(), Some(1), "{out:#?}");
    assert!(out.stderr.contains("2 bad lines: index 0"), "{out:#?}");
    assert_eq!(
        out.stdout_lines(),
        [
            "0: docs;07:00;docs\\r",
            "1: x\\u{1b}[2J;07:00;y",
            "2: mail;08:00;mail"
        ]
    );
}

/// Twenty managers adding a line each at the same moment: every line lands, whole.
#[test]
fn concurrent_creates_lose_and_garble_nothing() {
    let home = TestHome::new();
    let lines: Vec<String> = (0..20)
        .map(|i| format!("source_{i};{:02}:{:02};archive_{i}", i % 24, i * 3 % 60))
        .collect();
    let children: Vec<_> = lines
        .iter()
        .map(|line| home.spawn_manager(&["create", line]))
        .collect();
    for child in children {
        let out = finish(child);
        // The sources do not exist: a warning, not an error.
        assert_eq!(out.code(), Some(0), "{out:#?}");
    }
    let expected: BTreeSet<&str> = lines.iter().map(String::as_str).collect();

    let text = String::from_utf8(home.schedule_bytes().unwrap()).unwrap();
    assert!(text.ends_with('\n'));
    let written: Vec<&str> = text.lines().collect();
    assert_eq!(written.len(), 20, "{text}");
    assert_eq!(written.iter().copied().collect::<BTreeSet<_>>(), expected);

    let list = home.manager(&["list"]);
    let listed: Vec<&str> = list.stdout_lines();
    for (index, line) in listed.iter().enumerate() {
        assert_eq!(
            line.strip_prefix(&format!("{index}: ")),
            Some(written[index])
        );
    }

    let log = home.manager_log();
    for line in &lines {
        assert!(
            has_message(&log, &format!("New schedule added: {line}")),
            "{line} not logged: {log:#?}"
        );
    }
}

/// Options given as flags land on the schedule's one line, in a fixed order; what the
/// program does not understand, or a pattern the line cannot hold, is refused with the
/// file left as it was.
#[test]
fn create_stores_options_on_the_line_and_refuses_what_it_does_not_understand() {
    let home = TestHome::new();
    home.write("src/a.txt", "a\n");
    home.manager(&[
        "create",
        "--keep",
        "7",
        "--exclude",
        "*.log",
        "--exclude",
        "target/",
        "--exclude-caches",
        "--compress",
        "zstd",
        "src;02:00;code",
    ])
    .success();
    home.manager(&["create", "src;03:00;plain"]).success();
    let list = home.manager(&["list"]);
    list.success();
    assert_eq!(
        list.stdout,
        "0: src;02:00;code;zstd;keep=7;exclude=*.log;exclude=target/;exclude-caches\n\
         1: src;03:00;plain\n"
    );
    let before = home.schedule_bytes();
    for (args, expected) in [
        (
            &["create", "src;04:00;x;kep=3"][..],
            "option \"kep=3\" is not understood",
        ),
        (
            &["create", "src;04:00;x;keep=0"][..],
            "keep=0 is not a number",
        ),
        (
            &["create", "--exclude", "a;b", "src;04:00;x"][..],
            "holds a ';', which separates a schedule's fields",
        ),
        (
            &["create", "--keep", "3", "src;04:00;x;keep=4"][..],
            "--keep contradicts the schedule's own field",
        ),
        (
            &["create", "src;04:00;x;full-every=3"][..],
            "full-every=DAYS needs incremental",
        ),
    ] {
        let out = home.manager(args);
        let stderr = out.failure(1);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert_eq!(home.schedule_bytes(), before, "{args:?}");
    }
    // Usage errors are clap's.
    for args in [
        &["create", "--keep", "1001", "src;04:00;x"][..],
        &["create", "--full-every", "3", "src;04:00;x"][..],
    ] {
        assert_eq!(home.manager(args).code(), Some(2), "{args:?}");
    }
    assert_eq!(home.schedule_bytes(), before);
}
