//! A clock that was wrong, then corrected, and a clock stepped back while the service
//! waits: the real binaries under libfaketime, with the time they see set by the test.
//!
//! Each test skips, saying so, when libfaketime is not installed (Debian: `faketime`);
//! `.ci/run` installs it so that they run in CI.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use chrono::{NaiveDateTime, Utc};
use common::{MANAGER, SERVICE, TestHome, count_messages, has_message, wait_for};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Where Debian and Ubuntu put libfaketime.
const LIBFAKETIME: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
];

fn libfaketime() -> Option<PathBuf> {
    let found = LIBFAKETIME.iter().map(PathBuf::from).find(|p| p.exists());
    if found.is_none() {
        eprintln!("note: libfaketime is not installed (apt-get install faketime); test skipped");
    }
    found
}

/// A fake clock: the binaries started through it see the time the test sets, in UTC.
struct Clock {
    lib: PathBuf,
    file: PathBuf,
}

impl Clock {
    fn new(lib: PathBuf, home: &TestHome, at: &str) -> Self {
        let clock = Self {
            lib,
            file: home.path().join("faketime.offset"),
        };
        clock.set(at);
        clock
    }

    /// Sets the fake time to `at` (`YYYY-MM-DD HH:MM:SS`, UTC) from now on; it then runs
    /// on. Given as an offset from the real clock, which every process reads afresh.
    fn set(&self, at: &str) {
        let target = NaiveDateTime::parse_from_str(at, "%Y-%m-%d %H:%M:%S")
            .unwrap()
            .and_utc();
        let offset = (target - Utc::now()).num_seconds();
        fs::write(&self.file, format!("{offset:+}s\n")).unwrap();
    }

    fn command(&self, program: &str, home: &Path) -> Command {
        let mut command = Command::new(program);
        command
            .arg("--home")
            .arg(home)
            .env("LD_PRELOAD", &self.lib)
            .env("FAKETIME_TIMESTAMP_FILE", &self.file)
            .env("FAKETIME_NO_CACHE", "1")
            // Sleeps and deadlines stay real; only the wall clock is wrong.
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
            // Else file times (the archives', the logs') would be faked too.
            .env("NO_FAKE_STAT", "1")
            .env("TZ", "UTC")
            .stdin(Stdio::null());
        command
    }

    /// Runs `backup_manager ARGS` at the fake time; returns its exit code and stdout.
    fn manager(&self, home: &TestHome, args: &[&str]) -> (Option<i32>, String) {
        let out = self
            .command(MANAGER, home.path())
            .args(args)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8(out.stdout).unwrap())
    }

    /// Runs one look of the service (`--once`) at the fake time.
    fn service_once(&self, home: &TestHome) {
        let status = self
            .command(SERVICE, home.path())
            .arg("--once")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn spawn_service(&self, home: &TestHome) -> Child {
        self.command(SERVICE, home.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }
}

fn write_state(home: &TestHome, records: &[(&str, &str, Option<&str>)]) {
    let schedules: serde_json::Map<String, serde_json::Value> = records
        .iter()
        .map(|(line, seen, served)| {
            let mut record = serde_json::json!({ "first_seen": seen });
            if let Some(served) = served {
                record["last_served"] = serde_json::json!(served);
            }
            (line.to_string(), record)
        })
        .collect();
    home.write(
        ".backup_state.json",
        serde_json::to_vec(&serde_json::json!({ "schedules": schedules })).unwrap(),
    );
}

const FUTURE: &str = "remembered times lie in the future";

/// How many log lines warn about times in the future.
fn future_warnings(log: &[String]) -> usize {
    log.iter().filter(|m| m.contains(FUTURE)).count()
}

#[test]
fn times_remembered_from_a_clock_years_ahead_are_taken_as_now() {
    let Some(lib) = libfaketime() else { return };
    let home = TestHome::new();
    home.write("src/a.txt", "a");
    home.write("backup_schedules.txt", "src;16:07;src\n");
    // Written in 2031 by a box whose RTC battery died, before NTP set the clock right.
    write_state(
        &home,
        &[(
            "src;16:07;src",
            "2031-05-01T09:00:00+00:00",
            Some("2031-05-01T16:07:00+00:00"),
        )],
    );
    let clock = Clock::new(lib, &home, "2026-06-01 16:05:00");

    // status tells the truth before the service has looked: today's 16:07.
    let (_, status) = clock.manager(&home, &["status"]);
    assert!(status.contains("next run:  01/06/2026 16:07"), "{status}");

    clock.service_once(&home);
    clock.service_once(&home);
    let log = home.service_log();
    assert_eq!(future_warnings(&log), 1, "{log:#?}");
    assert!(!has_message(&log, "Backup done"), "{log:#?}");

    // At 16:07 it runs, once.
    clock.set("2026-06-01 16:07:05");
    clock.service_once(&home);
    clock.set("2026-06-01 16:08:00");
    clock.service_once(&home);
    let log = home.service_log();
    assert_eq!(
        count_messages(&log, "Backup done for src in backups/src.tar"),
        1,
        "{log:#?}"
    );
    assert_eq!(future_warnings(&log), 1, "{log:#?}");
    assert!(home.archive_path("src.tar").exists());
    let (_, status) = clock.manager(&home, &["status"]);
    assert!(status.contains("next run:  02/06/2026 16:07"), "{status}");
}

#[test]
fn a_clock_stepped_back_an_hour_while_waiting_neither_repeats_nor_skips_a_run() {
    let Some(lib) = libfaketime() else { return };
    let home = TestHome::new();
    for name in ["a", "b", "c", "d"] {
        home.write(&format!("{name}/f.txt"), name);
    }
    home.write("backup_schedules.txt", "a;15:30;a\nb;16:07;b\nc;16:30;c\n");
    // a ran at 15:30 today; b and c ran yesterday.
    write_state(
        &home,
        &[
            (
                "a;15:30;a",
                "2026-05-01T09:00:00+00:00",
                Some("2026-06-01T15:30:00+00:00"),
            ),
            (
                "b;16:07;b",
                "2026-05-01T09:00:00+00:00",
                Some("2026-05-31T16:07:00+00:00"),
            ),
            (
                "c;16:30;c",
                "2026-05-01T09:00:00+00:00",
                Some("2026-05-31T16:30:00+00:00"),
            ),
        ],
    );
    let clock = Clock::new(lib, &home, "2026-06-01 16:06:57");
    let mut service = clock.spawn_service(&home);
    let pid = Pid::from_raw(service.id() as i32);
    let done = |name: &str| {
        count_messages(
            &home.service_log(),
            &format!("Backup done for {name} in backups/{name}.tar"),
        )
    };
    wait_for("b's backup at 16:07", || done("b") == 1);

    // An hour back, while the service waits; a new schedule proves it looked since.
    clock.set("2026-06-01 15:07:57");
    let (code, _) = clock.manager(&home, &["create", "d;15:08;d"]);
    assert_eq!(code, Some(0));
    wait_for("d's backup at 15:08", || done("d") == 1);

    // Then the hour passes again (skipped ahead here, and the service woken): c is owed
    // once, and neither a nor b again.
    clock.set("2026-06-01 16:30:05");
    kill(pid, Signal::SIGHUP).unwrap();
    wait_for("c's backup at 16:30", || done("c") == 1);
    kill(pid, Signal::SIGTERM).unwrap();
    assert!(service.wait().unwrap().success());
    let log = home.service_log();
    assert_eq!(
        (done("a"), done("b"), done("c"), done("d")),
        (0, 1, 1, 1),
        "{log:#?}"
    );
    assert_eq!(future_warnings(&log), 0, "{log:#?}");
}
