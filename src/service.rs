//! The service: a loop that wakes about every 45 seconds and backs up what is owed.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Local};
use log::{error, info, warn};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::archive::{self, Summary};
use crate::atomic_file;
use crate::home::{BACKUPS_DIR, Home};
use crate::pidfile::{Acquire, PidLock};
use crate::schedule::Schedule;
use crate::schedule_file;
use crate::timing;

/// The longest the service sleeps between two looks at the schedule file.
pub const CYCLE: Duration = Duration::from_secs(45);

/// Runs the service of `home` until SIGTERM or SIGINT.
///
/// `ready`, when given, receives `ready` once the service holds its lock and has looked at
/// the schedules once; `backup_manager start` waits for that word.
///
/// This takes process-wide resources: the home's pid lock, and the termination signals,
/// which are blocked and read from a signalfd so that none can arrive unseen between a
/// check and a sleep.
pub fn run(home: &Home, ready: Option<File>) -> Result<()> {
    let _lock = match PidLock::acquire(&home.pid_file())? {
        Acquire::Locked(lock) => lock,
        Acquire::Held(pid) => bail!(
            "backup_service is already running in {} (pid {pid})",
            home.root().display()
        ),
    };
    let signals = Signals::block()?;
    let pid = std::process::id();
    info!(
        "backup_service started (pid {pid}, home {})",
        home.root().display()
    );
    remove_leftovers(home);

    let mut service = Service::default();
    let mut ready = ready;
    loop {
        let plan = service.plan(home, Local::now());
        if let Some(mut pipe) = ready.take() {
            // The manager may have given up waiting; that is no reason to stop.
            let _ = pipe.write_all(b"ready\n");
        }
        // Every backup due now runs, even if a stop was asked meanwhile: the signal stays
        // pending until the sleep below reads it.
        for (schedule, occurrence) in plan.due {
            // A failure is logged inside and recorded as served: retrying every cycle
            // would fill the log; the next occurrence tries again.
            let _ = back_up(home, &schedule, &occurrence);
            service.served.insert(schedule, occurrence);
        }
        let sleep = until(service.next_wake(Local::now()));
        if let Some(signal @ (Signal::SIGTERM | Signal::SIGINT)) = signals.wait(sleep)? {
            info!("backup_service stopped (pid {pid}, {signal})");
            return Ok(());
        }
    }
}

/// Backs up one schedule now and logs the outcome, as the service does when it is due.
pub fn back_up(home: &Home, schedule: &Schedule, occurrence: &DateTime<Local>) -> Result<Summary> {
    let file_name = schedule.archive_file_name();
    let shown = format!("{BACKUPS_DIR}/{file_name}");
    let started = Instant::now();
    let late = Local::now() - *occurrence;
    if late > chrono::Duration::seconds(60) {
        info!(
            "Backup of {} due at {} starts {} late",
            schedule.path,
            occurrence.format("%d/%m/%Y %H:%M"),
            describe_delay(late)
        );
    }
    let result = home.ensure_backups().and_then(|backups| {
        archive::create(&archive::Request {
            written: &schedule.path,
            source: &home.resolve(Path::new(&schedule.path)),
            target: &backups.join(&file_name),
            exclude: Some(&backups),
            compression: schedule.compression,
        })
    });
    match &result {
        Ok(summary) => {
            for warning in &summary.warnings {
                warn!("{warning}");
            }
            if summary.more_warnings > 0 {
                warn!(
                    "{} more warnings for {shown} were not logged",
                    summary.more_warnings
                );
            }
            // Like GNU tar's exit status 1: the archive is valid, but not all of the tree
            // went in as it was.
            let outcome = match summary.warnings.len() as u64 + summary.more_warnings {
                0 => String::new(),
                1 => ", done with 1 warning".to_owned(),
                n => format!(", done with {n} warnings"),
            };
            info!(
                "Backup done for {} in {shown} ({} entries, {}, {:.2} s{outcome})",
                schedule.path,
                summary.entries,
                format_size(summary.bytes),
                started.elapsed().as_secs_f64()
            );
        }
        Err(err) => error!("backup of {} into {shown} failed: {err:#}", schedule.path),
    }
    result
}

/// What the service remembers of each schedule between cycles.
#[derive(Debug, Default)]
struct Service {
    first_seen: HashMap<Schedule, DateTime<Local>>,
    served: HashMap<Schedule, DateTime<Local>>,
    /// The problems logged for the current contents of the schedule file, so that one bad
    /// line is reported when it appears, not every 45 seconds.
    reported: Vec<String>,
}

/// The outcome of one look at the schedules.
#[derive(Debug, Default)]
struct Plan {
    due: Vec<(Schedule, DateTime<Local>)>,
}

impl Service {
    fn plan(&mut self, home: &Home, now: DateTime<Local>) -> Plan {
        let (schedules, problems) = read_schedules(home);
        if problems != self.reported {
            for problem in &problems {
                error!("{problem}");
            }
            self.reported = problems;
        }
        // Forget schedules that were removed, so that one created again counts as new.
        self.first_seen.retain(|s, _| schedules.contains(s));
        self.served.retain(|s, _| schedules.contains(s));
        let mut due = Vec::new();
        for schedule in schedules {
            let first_seen = *self.first_seen.entry(schedule.clone()).or_insert(now);
            let served = self.served.get(&schedule);
            if let Some(occurrence) = timing::owed(schedule.time, &first_seen, served, &now) {
                if !due.iter().any(|(s, _)| *s == schedule) {
                    due.push((schedule, occurrence));
                }
            }
        }
        Plan { due }
    }

    /// The next instant to look at the schedules: a cycle from now, or the next due
    /// minute if that comes first.
    fn next_wake(&self, now: DateTime<Local>) -> DateTime<Local> {
        let cycle = now + chrono::Duration::from_std(CYCLE).expect("45 s fits");
        self.first_seen
            .keys()
            .map(|s| timing::next_occurrence(s.time, &now))
            .fold(cycle, DateTime::min)
    }
}

/// Reads and parses the schedule file. Problems are returned as messages, never raised:
/// nothing in the file can stop the service.
fn read_schedules(home: &Home) -> (Vec<Schedule>, Vec<String>) {
    let lines = match schedule_file::read_lines(&home.schedules()) {
        Ok(lines) => lines,
        Err(err) => return (Vec::new(), vec![format!("{err:#}")]),
    };
    let mut schedules = Vec::new();
    let mut problems = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        match line.parse::<Schedule>() {
            Ok(schedule) => schedules.push(schedule),
            Err(err) => problems.push(format!("schedule {index} skipped: {err}")),
        }
    }
    (schedules, problems)
}

fn remove_leftovers(home: &Home) {
    match atomic_file::remove_leftovers(&home.backups()) {
        Ok(removed) => {
            for path in removed {
                info!("Removed {}, left by an interrupted backup", path.display());
            }
        }
        Err(err) => error!("cleaning up interrupted backups: {err:#}"),
    }
}

fn until(when: DateTime<Local>) -> Duration {
    (when - Local::now()).to_std().unwrap_or(Duration::ZERO)
}

/// The termination and reload signals, blocked and read through a signalfd.
struct Signals {
    fd: SignalFd,
}

impl Signals {
    fn block() -> Result<Self> {
        let mut set = SigSet::empty();
        set.add(Signal::SIGTERM);
        set.add(Signal::SIGINT);
        set.add(Signal::SIGHUP);
        set.thread_block()
            .context("blocking SIGTERM, SIGINT and SIGHUP")?;
        let fd =
            SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC).context("creating a signalfd")?;
        Ok(Self { fd })
    }

    /// Sleeps up to `timeout`; returns the signal that ended the sleep, if one did.
    fn wait(&self, timeout: Duration) -> Result<Option<Signal>> {
        let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
        // Round up: waking a millisecond early would find the due minute not yet begun.
        let ms = timeout.as_millis().saturating_add(1).min(i32::MAX as u128) as i32;
        let ms = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, ms) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => return Ok(None),
            Ok(_) => {}
            Err(e) => return Err(e).context("waiting for signals"),
        }
        let info = self.fd.read_signal().context("reading a signal")?;
        Ok(info.and_then(|info| Signal::try_from(info.ssi_signo as i32).ok()))
    }
}

/// Formats a byte count for a log line: `812 B`, `10.0 KiB`, `3.2 GiB`.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn describe_delay(delay: chrono::Duration) -> String {
    let minutes = delay.num_minutes();
    match minutes {
        0..=119 => format!("{minutes} min"),
        120..=2879 => format!("{} h {} min", minutes / 60, minutes % 60),
        _ => format!("{} days", minutes / 1440),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_ls_h() {
        assert_eq!(format_size(0), "0 B");
        assert_eq!(format_size(1023), "1023 B");
        assert_eq!(format_size(10240), "10.0 KiB");
        assert_eq!(format_size(5 * 1024 * 1024 + 512 * 1024), "5.5 MiB");
    }

    #[test]
    fn delays_read_naturally() {
        assert_eq!(describe_delay(chrono::Duration::minutes(3)), "3 min");
        assert_eq!(describe_delay(chrono::Duration::minutes(185)), "3 h 5 min");
        assert_eq!(describe_delay(chrono::Duration::days(4)), "4 days");
    }
}
