//! A fake clock for the binaries: libfaketime, with the time they see set by the test.
//! Each test that needs it skips, saying so, when libfaketime is not installed (Debian:
//! `faketime`); scripts/test.sh installs it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use chrono::{NaiveDateTime, Utc};

use super::{MANAGER, SERVICE, TestHome};

/// Where Debian and Ubuntu put libfaketime.
const LIBFAKETIME: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
];

pub fn libfaketime() -> Option<PathBuf> {
    let found = LIBFAKETIME.iter().map(PathBuf::from).find(|p| p.exists());
    if found.is_none() {
        eprintln!("note: libfaketime is not installed (apt-get install faketime); test skipped");
    }
    found
}

/// A fake clock: the binaries started through it see the time the test sets, in UTC.
pub struct Clock {
    lib: PathBuf,
    file: PathBuf,
}

impl Clock {
    pub fn new(lib: PathBuf, home: &TestHome, at: &str) -> Self {
        let clock = Self {
            lib,
            file: home.path().join("faketime.offset"),
        };
        clock.set(at);
        clock
    }

    /// Sets the fake time to `at` (`YYYY-MM-DD HH:MM:SS`, UTC) from now on; it then runs
    /// on. Given as an offset from the real clock, which every process reads afresh.
    pub fn set(&self, at: &str) {
        let target = NaiveDateTime::parse_from_str(at, "%Y-%m-%d %H:%M:%S")
            .unwrap()
            .and_utc();
        let offset = (target - Utc::now()).num_seconds();
        fs::write(&self.file, format!("{offset:+}s\n")).unwrap();
    }

    pub fn command(&self, program: &str, home: &Path) -> Command {
        let mut command = Command::new(program);
        command
            .arg("--home")
            .arg(home)
            .current_dir(home)
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
    pub fn manager(&self, home: &TestHome, args: &[&str]) -> (Option<i32>, String) {
        let out = self
            .command(MANAGER, home.path())
            .args(args)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8(out.stdout).unwrap())
    }

    /// Runs one look of the service (`--once`) at the fake time. It may exit 1 (a backup
    /// it ran failed) or 3 (one had warnings), never otherwise.
    pub fn service_once(&self, home: &TestHome) {
        let status = self
            .command(SERVICE, home.path())
            .arg("--once")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(matches!(status.code(), Some(0 | 1 | 3)), "{status}");
    }

    pub fn spawn_service(&self, home: &TestHome) -> Child {
        self.command(SERVICE, home.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }
}
