//! The backups running now, for `status`: each backup keeps a small file in the home,
//! `.backup_running.PID.NAME`, with how far it got, replaced about every second and
//! removed when it ends.
//!
//! The file is for display only. Whoever can write the home can write one, so `status`
//! opens it without following a link, reads a bounded amount, and shows it only while
//! the process it names is alive, is a `backup_service` or `backup_manager`, and is the
//! very process that wrote it (its start time, from `/proc`, is in the file: a pid reused
//! since does not match). Anything else is stale and ignored; the next backup of the home
//! removes the stale files whose writer is dead.

use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, Local};
use serde::{Deserialize, Serialize};

use crate::atomic_file;
use crate::home::Home;
use crate::nofollow::{self, Access};

/// The start of each file's name; the writer's pid and the schedule's NAME follow.
const PREFIX: &str = ".backup_running.";

/// How often the file is replaced, at most.
const EVERY: Duration = Duration::from_secs(1);

/// The most of a file read: a few hundred bytes are written.
const MAX_FILE: u64 = 16 << 10;

/// A backup running now, as its file says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Running {
    /// The process writing it.
    pub pid: i32,
    /// That process's start time, in clock ticks since boot (`/proc/PID/stat`).
    #[serde(skip_serializing_if = "is_zero", default)]
    pub process_start: u64,
    /// The schedule's NAME.
    pub name: String,
    /// Its line.
    pub schedule: String,
    /// When the backup started.
    pub started: DateTime<FixedOffset>,
    /// Entries written so far.
    pub entries: u64,
    /// Bytes of file data archived so far.
    pub bytes: u64,
    /// Whether `run` makes it (by hand) rather than the service.
    pub manual: bool,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The file of a backup in progress; removed when dropped.
pub struct Writer {
    path: PathBuf,
    running: Running,
    written: Instant,
}

impl Writer {
    /// Starts the file of a backup of `schedule` (its line) named `name`. A file that
    /// cannot be written only costs `status` its display: `None`, with the reason logged.
    pub fn start(home: &Home, schedule: &str, name: &str, manual: bool) -> Option<Self> {
        remove_stale(home);
        let pid = std::process::id() as i32;
        let mut writer = Writer {
            path: home.root().join(format!("{PREFIX}{pid}.{name}")),
            running: Running {
                pid,
                process_start: process_start(pid).unwrap_or(0),
                name: name.to_owned(),
                schedule: schedule.to_owned(),
                started: Local::now().fixed_offset(),
                entries: 0,
                bytes: 0,
                manual,
            },
            written: Instant::now(),
        };
        writer.write().then_some(writer)
    }

    /// Records how far the backup got; the file is replaced if the last time was long
    /// enough ago.
    pub fn update(&mut self, entries: u64, bytes: u64) {
        self.running.entries = entries;
        self.running.bytes = bytes;
        if self.written.elapsed() >= EVERY {
            self.write();
        }
    }

    fn write(&mut self) -> bool {
        self.written = Instant::now();
        let text = serde_json::to_vec(&self.running).expect("a record serializes");
        match atomic_file::replace(&self.path, 0o600, &text) {
            Ok(()) => true,
            Err(err) => {
                log::warn!("{err:#}; status will not show this backup as running");
                false
            }
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// The backups of this home running now, by the files whose writers are alive and who
/// they say they are; stale and unreadable files are left out.
pub fn running(home: &Home) -> Vec<Running> {
    let mut found: Vec<Running> = files(home)
        .into_iter()
        .filter_map(|(name, pid)| read(home, &name).filter(|r| r.pid == pid))
        .filter(is_live)
        .collect();
    found.sort_by_key(|r| r.started);
    found
}

/// The home's running files: each name, with the pid it names.
fn files(home: &Home) -> Vec<(std::ffi::OsString, i32)> {
    let Ok(entries) = fs::read_dir(home.root()) else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok().map(|e| e.file_name()))
        .filter_map(|name| {
            let rest = name.as_bytes().strip_prefix(PREFIX.as_bytes())?;
            let digits = rest.split(|&b| b == b'.').next()?;
            let pid = std::str::from_utf8(digits).ok()?.parse().ok()?;
            Some((name, pid))
        })
        .collect()
}

/// The record in the file `name` of the home, never through a link, bounded.
fn read(home: &Home, name: &OsStr) -> Option<Running> {
    let file = nofollow::open_file(&home.root().join(name), Access::Read, 0).ok()?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE).read_to_end(&mut bytes).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Whether the process that wrote `running` is still the one running under its pid: a
/// `backup_service` or `backup_manager`, started when the file says.
fn is_live(running: &Running) -> bool {
    let Ok(exe) = fs::read_link(format!("/proc/{}/exe", running.pid)) else {
        return false;
    };
    let ours = exe.file_name().is_some_and(|name| {
        let name = name.as_bytes();
        name.starts_with(b"backup_service") || name.starts_with(b"backup_manager")
    });
    ours && process_start(running.pid) == Some(running.process_start)
}

/// Removes the running files whose writer is gone, and the temporary files of their
/// replacing (`..backup_running.PID.NAME.PID.partial`) that a killed writer left.
fn remove_stale(home: &Home) {
    let alive = |pid: i32| nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
    for (name, pid) in files(home) {
        if !alive(pid) {
            let _ = fs::remove_file(home.root().join(name));
        }
    }
    let Ok(entries) = fs::read_dir(home.root()) else {
        return;
    };
    for name in entries.filter_map(|entry| entry.ok().map(|e| e.file_name())) {
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix('.')) else {
            continue;
        };
        let writer = rest
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.strip_suffix(".partial"))
            .and_then(|rest| rest.rsplit_once('.'))
            .and_then(|(_, pid)| pid.parse::<i32>().ok());
        if writer.is_some_and(|pid| !alive(pid)) {
            let _ = fs::remove_file(home.root().join(&name));
        }
    }
}

/// When the process `pid` started, in clock ticks since boot: the 22nd field of
/// `/proc/PID/stat`, counted after the command name, which may hold spaces.
fn process_start(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::home::temporary as home;

    #[test]
    fn the_file_is_written_updated_and_removed_and_a_forged_one_is_not_believed() {
        let (_dir, home) = home();
        let mut writer = Writer::start(&home, "a;01:00;a", "a", true).unwrap();
        writer.written -= EVERY;
        writer.update(3, 4096);
        let found = files(&home);
        assert_eq!(found.len(), 1);
        let record = read(&home, &found[0].0).unwrap();
        assert_eq!(
            (record.entries, record.bytes, found[0].1),
            (3, 4096, record.pid)
        );
        assert_eq!(Some(record.process_start), process_start(record.pid));
        // Another start time under our pid is another process: not believed; and this
        // test's own binary is neither the service nor the manager.
        let mut forged = record.clone();
        forged.process_start += 1;
        assert!(!is_live(&forged) && !is_live(&record));
        drop(writer);
        assert!(files(&home).is_empty());
        // What a killed writer left goes at the next start; a live writer's stays.
        let dead = 99_999_999;
        let left = home.root().join(format!("{PREFIX}{dead}.a"));
        let half = home
            .root()
            .join(format!(".{PREFIX}{dead}.a.{dead}.partial"));
        let live = home.root().join(format!(".{PREFIX}1.a.1.partial"));
        for path in [&left, &half, &live] {
            fs::write(path, "{}").unwrap();
        }
        drop(Writer::start(&home, "a;01:00;a", "a", true));
        assert!(!left.exists() && !half.exists() && live.exists());
    }
}
