//! When backups run, seen from outside: owed occurrences and the state file, SIGHUP on
//! edits, restarts, `status`, `run`, the `--json` outputs and `backup_service --once`.
//!
//! Times are computed with the local time zone of the test, which the binaries inherit.

mod common;

use std::fs;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Days, FixedOffset, Local, NaiveDateTime, TimeZone, Timelike};
use common::{
    Output, SERVICE, TestHome, assert_message, count_messages, has_message, in_one_minute,
    is_running, run, still_in, wait_for, wait_within,
};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

/// Margin before the minute turns for the scenarios that need the current minute.
const MARGIN: Duration = Duration::from_secs(20);

/// How soon a schedule created while the service sleeps must run: well before the
/// service's 45-second cycle would have found it without being told.
const PROMPTLY: Duration = Duration::from_secs(20);

/// The format of times in `status` and in the logs.
const SHOWN: &str = "%d/%m/%Y %H:%M";

fn minute_start(t: DateTime<Local>) -> DateTime<Local> {
    t.with_nanosecond(0).unwrap().with_second(0).unwrap()
}

/// The same wall-clock time `days` later (or earlier, when negative).
fn days_later(t: DateTime<Local>, days: i64) -> DateTime<Local> {
    let naive = t.naive_local();
    let moved: NaiveDateTime = if days >= 0 {
        naive + Days::new(days as u64)
    } else {
        naive - Days::new(days.unsigned_abs())
    };
    Local.from_local_datetime(&moved).earliest().unwrap()
}

/// The occurrence of a time of day `ago` before now, as `HH:MM` and as an instant.
fn occurrence_ago(ago: chrono::Duration) -> (String, DateTime<Local>) {
    let occurrence = minute_start(Local::now() - ago);
    (occurrence.format("%H:%M").to_string(), occurrence)
}

fn parse_time(value: &Value) -> DateTime<FixedOffset> {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a time: {value}"));
    DateTime::parse_from_rfc3339(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

/// `status --json`: its exit code and what it printed.
fn status_json(home: &TestHome) -> (Option<i32>, Value) {
    let out = home.manager(&["status", "--json"]);
    assert_eq!(out.stderr, "", "{out:#?}");
    (out.code(), json_of(&out))
}

fn json_of(out: &Output) -> Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:#?}"))
}

/// The lines `status` prints for schedule `line`: its own and the indented ones below.
fn status_block(text: &str, line: &str) -> Vec<String> {
    let mut lines = text.lines().skip_while(|l| !l.ends_with(line));
    let Some(first) = lines.next() else {
        panic!("no schedule {line} in status:\n{text}");
    };
    std::iter::once(first)
        .chain(lines.take_while(|l| l.starts_with(' ')))
        .map(str::to_owned)
        .collect()
}

fn done_line(path: &str, file: &str) -> String {
    format!("Backup done for {path} in backups/{file}")
}

fn hang_up(pid: i32) {
    kill(Pid::from_raw(pid), Signal::SIGHUP).unwrap();
}

/// Makes the running service look at the schedules again, without changing what they
/// owe, and waits until it has: a malformed line added by hand changes nothing owed, and
/// the service logs it when it reads the file.
fn force_a_look(home: &TestHome, pid: i32, tag: &str) {
    let path = home.path().join("backup_schedules.txt");
    let mut text = fs::read_to_string(&path).unwrap();
    let junk = format!("not a schedule {tag}");
    text.push_str(&junk);
    text.push('\n');
    let index = text.lines().count() - 1;
    fs::write(&path, text).unwrap();
    hang_up(pid);
    let expected = format!("Error: schedule {index} skipped: malformed schedule: {junk}");
    wait_for("the service to read the file again", || {
        has_message(&home.service_log(), &expected)
    });
}

/// Writes the state file by hand.
fn write_state(home: &TestHome, state: &Value) {
    home.write(
        ".backup_state.json",
        serde_json::to_string_pretty(state).unwrap(),
    );
}

fn read_state(home: &TestHome) -> Value {
    let text = fs::read_to_string(home.path().join(".backup_state.json")).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// A schedule created for the current minute while the service sleeps runs at once, and
/// exactly once: not again at the next look in the minute, nor after a restart in it.
/// Deleted and created again, it is a new schedule, owed again.
#[test]
fn a_schedule_for_this_minute_runs_at_once_and_only_once() {
    in_one_minute(MARGIN, |now| {
        let home = TestHome::new();
        home.write("src/a.txt", "a\n");
        let schedule = format!("src;{now};s");
        let done = done_line("src", "s.tar");
        let count = || count_messages(&home.service_log(), &done);

        // Just started, the service sleeps for a whole cycle unless told.
        let pid = home.start();
        home.manager(&["create", &schedule]).success();
        if !still_in(now) {
            return None;
        }
        wait_within(PROMPTLY, "the backup of a schedule just created", || {
            count() == 1
        });
        assert_eq!(
            common::archive_entries(&home.archive_path("s.tar"))["src/a.txt"].contents,
            b"a\n"
        );

        force_a_look(&home, pid, "1");
        // Anything that look found due is finished before the service stops.
        home.stop();
        if !still_in(now) {
            return None;
        }
        assert_eq!(
            count(),
            1,
            "run again in its minute: {:#?}",
            home.service_log()
        );

        // A restart within the minute.
        home.start();
        home.stop();
        if !still_in(now) {
            return None;
        }
        assert_eq!(
            count(),
            1,
            "run again after a restart: {:#?}",
            home.service_log()
        );

        // Deleted and created again while the service is stopped: owed at its start.
        home.manager(&["delete", "0"]).success();
        home.manager(&["create", &schedule]).success();
        if !still_in(now) {
            return None;
        }
        home.start();
        home.stop();
        assert_eq!(count(), 2, "{:#?}", home.service_log());

        // And while it runs: owed at once.
        home.start();
        let last = home.manager(&["list"]).stdout_lines().len() - 1;
        home.manager(&["delete", &last.to_string()]).success();
        home.manager(&["create", &schedule]).success();
        if !still_in(now) {
            return None;
        }
        wait_within(PROMPTLY, "the backup of the schedule created again", || {
            count() == 3
        });
        home.stop();
        assert_eq!(count(), 3, "{:#?}", home.service_log());
        Some(())
    });
}

/// Created for a time already past today, a schedule waits for its next occurrence
/// (tomorrow, or later today just after midnight): not run at start.
#[test]
fn a_schedule_created_after_its_time_waits_for_the_next_day() {
    let home = TestHome::new();
    home.write("src/a.txt", "a\n");
    let (hh_mm, occurrence) = occurrence_ago(chrono::Duration::minutes(1));
    let line = format!("src;{hh_mm};s");
    // The record an identical line left when it was removed by hand: the new schedule
    // must not inherit its "first seen ten days ago".
    write_state(
        &home,
        &json!({ "schedules": {
            line.clone(): { "first_seen": days_later(occurrence, -10).to_rfc3339() },
        }}),
    );
    home.manager(&["create", &line]).success();
    let next = days_later(occurrence, 1);

    let pid = home.start();
    let out = home.manager(&["status"]);
    assert_eq!(out.code(), Some(0), "{out:#?}");
    assert_eq!(
        status_block(&out.stdout, &line),
        [
            format!("0: {line}"),
            format!("   next run:  {}", next.format(SHOWN)),
            "   last run:  never".to_owned(),
        ]
    );
    let (code, status) = status_json(&home);
    assert_eq!(code, Some(0));
    let schedule = &status["schedules"][0];
    assert_eq!(schedule["line"], line.as_str());
    assert_eq!(parse_time(&schedule["next_run"]), next);
    assert_eq!(schedule["due_now"], false);
    assert_eq!(schedule["last_run"], Value::Null);

    // Whatever the first look found due would be finished before the service stops.
    home.stop();
    assert!(!is_running(pid));
    let log = home.service_log();
    assert!(!has_message(&log, &done_line("src", "s.tar")), "{log:#?}");
    assert!(!home.archive_path("s.tar").exists());
    assert_eq!(home.manager(&["backups"]).stdout, "");
}

/// A known schedule whose time passed while the service was stopped runs once at the
/// next start, and the log says how late; days missed in a row also run once.
#[test]
fn a_run_missed_while_stopped_runs_once_at_start_and_says_how_late() {
    let home = TestHome::new();
    home.write("src/a.txt", "a\n");
    home.write("old/b.txt", "b\n");
    let (hh_mm, occurrence) = occurrence_ago(chrono::Duration::hours(3));
    let yesterday = format!("src;{hh_mm};s");
    let days_ago = format!("old;{hh_mm};o");
    home.manager(&["create", &yesterday]).success();
    home.manager(&["create", &days_ago]).success();
    let first_seen = days_later(occurrence, -10);
    let served = |days: i64| days_later(occurrence, -days).to_rfc3339();
    write_state(
        &home,
        &json!({ "schedules": {
            yesterday.clone(): { "first_seen": first_seen.to_rfc3339(), "last_served": served(1) },
            days_ago.clone(): { "first_seen": first_seen.to_rfc3339(), "last_served": served(4) },
        }}),
    );
    let (_, before) = status_json(&home);
    for i in 0..2 {
        assert_eq!(before["schedules"][i]["due_now"], true, "{before:#}");
    }

    home.start();
    let done = [done_line("src", "s.tar"), done_line("old", "o.tar")];
    wait_for("the missed backups", || {
        let log = home.service_log();
        done.iter().all(|d| has_message(&log, d))
    });
    home.stop();
    let log = home.service_log();
    for d in &done {
        assert_eq!(count_messages(&log, d), 1, "{log:#?}");
    }
    // Started in the minute it was computed, or the next.
    let due = occurrence.format(SHOWN);
    for path in ["src", "old"] {
        let late =
            |minutes: u32| format!("Backup of {path} due at {due} starts 3 h {minutes} min late");
        assert!(
            has_message(&log, &late(0)) || has_message(&log, &late(1)),
            "no line saying how late {path} is: {log:#?}"
        );
    }

    // The occurrence is served: the next is tomorrow's, and the run counted.
    let (_, after) = status_json(&home);
    for i in 0..2 {
        let schedule = &after["schedules"][i];
        assert_eq!(schedule["due_now"], false, "{after:#}");
        assert_eq!(parse_time(&schedule["next_run"]), days_later(occurrence, 1));
        assert_eq!(schedule["last_run"]["outcome"], "ok");
        assert_eq!(schedule["last_run"]["manual"], false);
    }
    let state = read_state(&home);
    assert_eq!(
        parse_time(&state["schedules"][&yesterday]["last_served"]),
        occurrence
    );
}

/// `status` in text and JSON, and its exit code for a monitor: 3 while the service does
/// not run, 1 while a last run failed, 0 when all is well.
/// What `status` prints of the three schedules of the test below: their next run and
/// last run, as the JSON said.
fn assert_status_text(
    text: &str,
    lines: &[String],
    ok: &Value,
    failed: &Value,
    next: DateTime<Local>,
    size: u64,
) {
    // The text says the same.
    let started = |run: &Value| parse_time(&run["started"]).format(SHOWN).to_string();
    let block = status_block(text, &lines[0]);
    assert_eq!(block[1], format!("   next run:  {}", next.format(SHOWN)));
    let prefix = format!(
        "   last run:  {}, ok, {}, ",
        started(ok),
        backup::job::format_size(size)
    );
    assert!(
        block[2].starts_with(&prefix) && block[2].ends_with(" s (by hand)"),
        "{block:#?}"
    );
    let block = status_block(text, &lines[1]);
    let prefix = format!("   last run:  {}, failed, ", started(failed));
    assert!(block[2].starts_with(&prefix), "{block:#?}");
    assert!(block[3].contains("missing"), "{block:#?}");
    assert_eq!(status_block(text, &lines[2])[2], "   last run:  never");
}

#[test]
fn status_shows_the_service_and_each_schedule_and_exits_as_a_monitor_expects() {
    let home = TestHome::new();
    home.write("src/a.txt", "a\n");
    let (hh_mm, occurrence) = occurrence_ago(chrono::Duration::minutes(1));
    let next = days_later(occurrence, 1);
    let lines = [
        format!("src;{hh_mm};s"),
        format!("missing;{hh_mm};gone"),
        format!("src;{hh_mm};never"),
    ];
    for line in &lines {
        home.manager(&["create", line]).success();
    }
    home.manager(&["run", "0"]).success();
    assert_eq!(home.manager(&["run", "1"]).code(), Some(1));

    let out = home.manager(&["status"]);
    assert_eq!(out.code(), Some(3), "{out:#?}");
    assert_eq!(out.stdout_lines()[0], "backup_service: not running");
    let (code, status) = status_json(&home);
    assert_eq!(code, Some(3));
    assert_eq!(status["service"]["running"], false);
    assert_eq!(status["service"]["pid"], Value::Null);

    let pid = home.start();
    let out = home.manager(&["status"]);
    assert_eq!(out.code(), Some(1), "a last run failed: {out:#?}");
    let head = out.stdout_lines()[0];
    let since = head
        .strip_prefix(&format!("backup_service: running (pid {pid}, since "))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{head:?}"));
    NaiveDateTime::parse_from_str(since, SHOWN).unwrap();

    let (code, status) = status_json(&home);
    assert_eq!(code, Some(1));
    assert_eq!(status["service"]["running"], true);
    assert_eq!(status["service"]["pid"], pid);
    let schedules = status["schedules"].as_array().unwrap();
    assert_eq!(schedules.len(), 3);
    for (schedule, line) in schedules.iter().zip(&lines) {
        assert_eq!(schedule["line"], line.as_str());
        assert_eq!(parse_time(&schedule["next_run"]), next);
    }
    let ok = &schedules[0]["last_run"];
    assert_eq!(ok["outcome"], "ok");
    let size = fs::metadata(home.archive_path("s.tar")).unwrap().len();
    assert_eq!(ok["bytes"], size);
    let failed = &schedules[1]["last_run"];
    assert_eq!(failed["outcome"], "failed");
    assert!(
        failed["messages"][0]
            .as_str()
            .is_some_and(|m| m.contains("missing")),
        "{failed:#}"
    );
    assert_eq!(schedules[2]["last_run"], Value::Null);

    assert_status_text(&out.stdout, &lines, ok, failed, next, size);

    // Fixed, and run again: all is well.
    home.write("missing/now.txt", "here\n");
    home.manager(&["run", "1"]).success();
    let out = home.manager(&["status"]);
    assert_eq!(out.code(), Some(0), "{out:#?}");
    assert!(
        status_block(&out.stdout, &lines[1])[2].contains(", ok, "),
        "{out:#?}"
    );
    assert_eq!(status_json(&home).0, Some(0));

    home.stop();
    assert_eq!(home.manager(&["status"]).code(), Some(3));
    // The service ran nothing: every time was past when the schedules were created.
    assert!(
        !home.service_log().iter().any(|m| m.starts_with("Backup")),
        "{:#?}",
        home.service_log()
    );
}

/// A status that cannot be told exits 4, not 1: a monitor must not read it as a failed
/// backup.
#[test]
fn status_that_cannot_be_read_exits_4() {
    let home = TestHome::new();
    fs::create_dir(home.path().join("backup_schedules.txt")).unwrap();
    for args in [&["status"][..], &["status", "--json"]] {
        let out = home.manager(args);
        let err = out.failure(4);
        assert!(err.contains("backup_schedules.txt"), "{err}");
    }
}

/// `run INDEX` backs up now, logs as the service does, and is recorded as a run by hand:
/// the scheduled run still happens.
#[test]
fn run_backs_up_now_by_hand_without_counting_as_the_scheduled_run() {
    in_one_minute(MARGIN, |now| {
        let home = TestHome::new();
        home.write("src/a.txt", "by hand\n");
        let line = format!("src;{now};s");
        home.manager(&["create", &line]).success();
        if !still_in(now) {
            return None;
        }

        let out = home.manager(&["run", "0"]);
        out.success();
        assert_eq!(out.stdout, "");
        assert!(
            out.stderr
                .starts_with("backup_manager: backed up src into backups/s.tar"),
            "{out:#?}"
        );
        assert_eq!(
            common::archive_entries(&home.archive_path("s.tar"))["src/a.txt"].contents,
            b"by hand\n"
        );
        let log = home.manager_log();
        assert_message(&log, &format!("Run schedule 0 now: {line}"));
        assert_message(&log, &done_line("src", "s.tar"));
        assert_eq!(home.service_log(), Vec::<String>::new());

        let status = home.manager(&["status"]).stdout;
        let block = status_block(&status, &line);
        assert_eq!(block[1], "   next run:  due now", "{block:#?}");
        assert!(block[2].ends_with(" (by hand)"), "{block:#?}");
        let (_, json) = status_json(&home);
        assert_eq!(json["schedules"][0]["last_run"]["manual"], true);
        assert_eq!(json["schedules"][0]["due_now"], true);

        // The service still owes the scheduled run, and makes it.
        home.write("src/a.txt", "scheduled\n");
        home.start();
        home.stop();
        assert_eq!(
            count_messages(&home.service_log(), &done_line("src", "s.tar")),
            1,
            "{:#?}",
            home.service_log()
        );
        assert_eq!(
            common::archive_entries(&home.archive_path("s.tar"))["src/a.txt"].contents,
            b"scheduled\n"
        );
        let block = status_block(&home.manager(&["status"]).stdout, &line);
        assert!(!block[2].contains("by hand"), "{block:#?}");
        assert!(!block[1].contains("due now"), "{block:#?}");
        Some(())
    });
}

/// A failed `run` exits 1 with the reason on stderr and in the log; a `run` of an index
/// that does not exist changes nothing.
#[test]
fn run_reports_a_failure_and_refuses_a_missing_index() {
    let home = TestHome::new();
    home.write("src/a.txt", "a\n");
    home.manager(&["create", "src;01:00;s"]).success();
    home.manager(&["create", "missing;01:00;gone"]).success();
    home.manager(&["run", "0"]).success();

    let out = home.manager(&["run", "1"]);
    let err = out.failure(1).to_owned();
    let reason = err
        .strip_prefix("backup_manager: ")
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        reason.contains("missing") && reason.contains("gone.tar"),
        "{err}"
    );
    assert_message(&home.manager_log(), &format!("Error: {reason}"));
    assert!(!home.archive_path("gone.tar").exists());
    assert_eq!(home.manager(&["backups"]).stdout, "s.tar\n");

    let files = |home: &TestHome| {
        [
            "backup_schedules.txt",
            ".backup_state.json",
            "backups/s.tar",
        ]
        .map(|f| fs::read(home.path().join(f)).unwrap())
    };
    let before = files(&home);
    let log_before = home.manager_log();
    let out = home.manager(&["run", "9"]);
    let err = out.failure(1).to_owned();
    assert!(err.contains("index 9"), "{err}");
    assert!(files(&home) == before, "run 9 changed a file");
    let log = home.manager_log();
    assert_eq!(
        log[log_before.len()..],
        [format!(
            "Error: {}",
            err.strip_prefix("backup_manager: ").unwrap()
        )]
    );
    assert_eq!(home.manager(&["backups"]).stdout, "s.tar\n");
}

/// `list --json` shows every line, valid or not; `backups --json` every finished archive
/// with its size and time, and never a temporary file.
#[test]
fn list_and_backups_in_json() {
    let home = TestHome::new();
    home.write("src/a.txt", "a\n");
    home.write("docs/b.txt", "b\n");
    home.manager(&["create", "src;01:00;s"]).success();
    home.manager(&["create", "--compress", "gzip", "docs;13:30;d"])
        .success();
    let mut text = String::from_utf8(home.schedule_bytes().unwrap()).unwrap();
    text.push_str("not a schedule\n");
    home.write("backup_schedules.txt", &text);

    // The bad line is listed, and makes `list` exit 1.
    let out = home.manager(&["list", "--json"]);
    assert_eq!(out.code(), Some(1), "{out:#?}");
    let list = json_of(&out);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 3);
    let lines: Vec<&str> = text.lines().collect();
    for (i, entry) in list.iter().enumerate() {
        assert_eq!(entry["index"], i);
        assert_eq!(entry["line"], lines[i]);
    }
    assert_eq!(
        list[0]["schedule"],
        json!({
            "path": "src", "time": "01:00", "name": "s", "compression": "none", "keep": 1,
            "exclude_caches": false, "gitignore": false
        })
    );
    assert_eq!(list[1]["schedule"]["compression"], "gzip");
    assert_eq!(list[0]["error"], Value::Null);
    assert_eq!(list[2]["schedule"], Value::Null);
    assert!(list[2]["error"].is_string(), "{:#}", list[2]);

    home.manager(&["run", "0"]).success();
    home.manager(&["run", "1"]).success();
    home.write("backups/.s.tar.12345.partial", "half an archive");
    home.write("backups/.hidden.tar", "a hidden file");
    home.write("backups/notes.txt", "not an archive");

    let backups = json_of(home.manager(&["backups", "--json"]).success());
    let backups = backups.as_array().unwrap();
    let names: Vec<&str> = backups
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["d.tar.gz", "s.tar"]);
    for backup in backups {
        let meta = fs::metadata(home.archive_path(backup["name"].as_str().unwrap())).unwrap();
        assert_eq!(backup["bytes"], meta.len());
        let modified: SystemTime = parse_time(&backup["modified"]).into();
        assert_eq!(modified, meta.modified().unwrap(), "{backup:#}");
    }
    assert_eq!(home.manager(&["backups"]).stdout, "d.tar.gz\ns.tar\n");
}

fn once(home: &TestHome) -> Output {
    run(
        SERVICE,
        &["--once", "--home", home.path().to_str().unwrap()],
        None,
    )
}

/// `backup_service --once` runs what is owed and exits; the next one in the same minute
/// finds nothing owed.
#[test]
fn once_runs_what_is_owed_and_exits() {
    in_one_minute(MARGIN, |now| {
        let home = TestHome::new();
        home.write("src/a.txt", "a\n");
        home.manager(&["create", &format!("src;{now};s")]).success();
        let done = done_line("src", "s.tar");

        once(&home).success();
        assert_eq!(home.service_pid(), None);
        assert_eq!(count_messages(&home.service_log(), &done), 1);
        assert!(home.archive_path("s.tar").exists());

        once(&home).success();
        if !still_in(now) {
            return None;
        }
        assert_eq!(
            count_messages(&home.service_log(), &done),
            1,
            "{:#?}",
            home.service_log()
        );
        assert_eq!(home.service_processes(), Vec::<i32>::new());
        Some(())
    });
}

/// `--once` while the service runs refuses, and leaves the service alone.
#[test]
fn once_refuses_while_the_service_runs() {
    let home = TestHome::new();
    let pid = home.start();
    let out = once(&home);
    home.assert_second_service_refused(&out, pid);
    home.stop();
}

/// A corrupt state file is an error in the log, naming the file, and is rebuilt; the
/// service goes on.
#[test]
fn a_corrupt_state_file_is_logged_and_rebuilt() {
    let home = TestHome::new();
    home.write("src/a.txt", "a\n");
    let (hh_mm, _) = occurrence_ago(chrono::Duration::minutes(1));
    let line = format!("src;{hh_mm};s");
    home.manager(&["create", &line]).success();
    let state_file = home.path().join(".backup_state.json");
    let corrupt = |log: &[String]| {
        let named = state_file.display().to_string();
        log.iter()
            .filter(|m| m.starts_with("Error: ") && m.contains(&named) && m.contains("corrupt"))
            .count()
    };
    let assert_rebuilt = |home: &TestHome| {
        let state = read_state(home);
        assert!(state["schedules"][&line].is_object(), "{state:#}");
    };

    // Found at start.
    home.write(".backup_state.json", "{ not json");
    let pid = home.start();
    assert_eq!(corrupt(&home.service_log()), 1, "{:#?}", home.service_log());
    assert_rebuilt(&home);

    // Found while running.
    home.write(".backup_state.json", "{ not json");
    hang_up(pid);
    wait_for("the corrupt state file to be reported", || {
        corrupt(&home.service_log()) == 2
    });
    wait_for("the state file to be rebuilt", || {
        fs::read_to_string(&state_file).is_ok_and(|t| t != "{ not json")
    });
    assert_rebuilt(&home);
    assert!(is_running(pid));
    assert_eq!(home.service_pid(), Some(pid));
    assert_eq!(home.manager(&["status"]).code(), Some(0));
    home.stop();
    // Rebuilt, the state counts the schedule as first seen then, after its time today.
    let log = home.service_log();
    assert!(!has_message(&log, &done_line("src", "s.tar")), "{log:#?}");
}

/// A state file lost while schedules exist is reported and rebuilt; a fresh home, which
/// has none yet, is not reported.
#[test]
fn a_missing_state_file_is_logged_and_rebuilt() {
    let home = TestHome::new();
    let pid = home.start();
    let state_file = home.path().join(".backup_state.json");
    let named = state_file.display().to_string();
    let missing = |home: &TestHome| {
        home.service_log()
            .iter()
            .filter(|m| m.contains(&named) && m.contains("missing"))
            .count()
    };
    assert_eq!(missing(&home), 0, "{:#?}", home.service_log());

    home.write("src/a.txt", "a\n");
    let (hh_mm, _) = occurrence_ago(chrono::Duration::minutes(1));
    let line = format!("src;{hh_mm};s");
    home.manager(&["create", &line]).success();
    fs::remove_file(&state_file).unwrap();
    hang_up(pid);
    wait_for("the missing state file to be reported", || {
        missing(&home) == 1
    });
    wait_for("the state file to be rebuilt", || state_file.exists());
    assert!(read_state(&home)["schedules"][&line].is_object());
    assert_eq!(home.service_pid(), Some(pid));
    home.stop();
    assert_eq!(missing(&home), 1, "{:#?}", home.service_log());
}
