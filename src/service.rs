//! The service: a loop that wakes about every 45 seconds and backs up what is owed.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Local};
use log::{error, info, warn};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::generations;
use crate::home::{BACKUPS_DIR, Home};
use crate::job;
use crate::pidfile::{Acquire, PidLock};
use crate::schedule::{Calendar, Schedule};
use crate::schedule_file;
use crate::state::{self, Outcome, Record, State};
use crate::timing;

/// The longest the service sleeps between two looks at the schedule file.
pub const CYCLE: Duration = Duration::from_secs(45);

/// How soon the service looks again when a backup was postponed because another process
/// was writing the same NAME.
const POSTPONED_RETRY: Duration = Duration::from_secs(5);

/// How the service runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Until SIGTERM or SIGINT.
    Forever,
    /// One cycle, then exit: for cron, systemd timers and Kubernetes CronJobs.
    Once,
}

/// Runs the service of `home`.
///
/// `ready`, when given, receives `ready` once the service holds its lock and has looked at
/// the schedules once; `backup_manager start` waits for that word. It is taken then: left
/// in place on an error before, so that the caller can say why there (see
/// [`report_failure`]).
///
/// This takes process-wide resources: the home's pid lock, and the termination signals,
/// which are blocked and read from a signalfd so that none can arrive unseen between a
/// check and a sleep. SIGHUP makes the service look at the schedules at once.
///
/// Returns the worst outcome of the backups run, for [`Mode::Once`] (`None` when none ran,
/// or when it ran until stopped).
pub fn run(home: &Home, mode: Mode, ready: &mut Option<File>) -> Result<Option<Outcome>> {
    // Blocked before the lock is taken: from then on a manager takes us for the service
    // and may send SIGHUP, whose default action would end us.
    let signals = Signals::block()?;
    let _lock = match PidLock::acquire(&home.pid_file())? {
        Acquire::Locked(lock) => lock,
        Acquire::Held(pid) => bail!(
            "backup_service is already running in {} (pid {pid})",
            home.root().display()
        ),
    };
    let pid = std::process::id();
    // Run once a minute from cron, start and stop lines would bury the backups.
    if mode == Mode::Forever {
        info!(
            "backup_service started (pid {pid}, home {})",
            home.root().display()
        );
    }
    job::remove_leftovers(home);

    let mut reported = Vec::new();
    let mut postponed = Vec::new();
    let mut worst: Option<Outcome> = None;
    loop {
        let (due, times) = look(home, &mut reported);
        release_free_memory();
        if let Some(mut pipe) = ready.take() {
            // The manager may have given up waiting; that is no reason to stop.
            let _ = pipe.write_all(b"ready\n");
        }
        // Every backup due now runs, even if a stop was asked meanwhile: the signal stays
        // pending until the sleep below reads it.
        // Only what is still owed can still be postponed.
        postponed.retain(|(name, _)| due.iter().any(|(s, _)| s.name == *name));
        for (schedule, occurrence) in due {
            // Another process writing this NAME postpones it to the next look, not
            // recorded as served, rather than holding up the other schedules.
            let Some(_lock) = lock_or_postpone(home, &schedule, &mut postponed) else {
                continue;
            };
            let outcome = job::run(home, &schedule, Some(occurrence), None).outcome;
            worst = Some(worst.map_or(outcome, |w| w.max(outcome)));
        }
        if mode == Mode::Once {
            return Ok(worst);
        }
        let wake = timing::next_wake(times, &Local::now(), chrono_duration(CYCLE));
        let mut sleep = (wake - Local::now()).to_std().unwrap_or(Duration::ZERO);
        if !postponed.is_empty() {
            // A postponed backup starts soon after the one in its way ends.
            sleep = sleep.min(POSTPONED_RETRY);
        }
        if let Some(signal @ (Signal::SIGTERM | Signal::SIGINT)) = signals.wait(sleep)? {
            info!("backup_service stopped (pid {pid}, {signal})");
            return Ok(None);
        }
    }
}

/// Writes `error: ERROR` on the ready pipe of a service that failed before it was ready,
/// for `backup_manager start` to show: its stderr goes nowhere, and its log may be what
/// failed.
pub fn report_failure(ready: &mut Option<File>, err: &anyhow::Error) {
    if let Some(mut pipe) = ready.take() {
        // One write: the manager reads what one write says.
        let line = format!("error: {}\n", crate::logging::one_line(&format!("{err:#}")));
        let _ = pipe.write_all(line.as_bytes());
    }
}

/// What is owed, with the time of each schedule for planning the next wake.
type Owed = (Vec<(Schedule, DateTime<Local>)>, Vec<Calendar>);

/// One look at the schedules: brings the state up to date with the file (new schedules
/// are seen now, removed ones forgotten) and returns what is owed, with every schedule's
/// time for planning the next wake.
///
/// The schedule file is read while the state lock is held, so a `create` that writes both
/// files cannot have its fresh record pruned by a look that read the file before it.
fn look(home: &Home, reported: &mut Vec<String>) -> Owed {
    let now = Local::now();
    let looked = state::update(
        home,
        |problem| error!("{problem}"),
        |state| match read_schedules(home) {
            Ok((schedules, problems)) => (owed(home, state, &schedules, &now), problems),
            // What cannot be read says nothing about which schedules are gone: keep every
            // record, run nothing, and look again next cycle.
            Err(problem) => ((Vec::new(), Vec::new()), vec![problem]),
        },
    );
    match looked {
        Ok((owed, problems)) => {
            if problems != *reported {
                for problem in &problems {
                    error!("{problem}");
                }
                *reported = problems;
            }
            owed
        }
        Err(err) => {
            // Without the state nothing can be decided safely; the next cycle tries again.
            error!("{err:#}");
            (Vec::new(), Vec::new())
        }
    }
}

/// Brings `state` up to date with `schedules` at `now` and returns what is owed.
fn owed(home: &Home, state: &mut State, schedules: &[Schedule], now: &DateTime<Local>) -> Owed {
    // Checked under the state lock, which every writer of the file holds.
    let missing = !home.state().exists();
    // A set, not a scan per record: a scan grows with the square of the schedules.
    let keys: std::collections::HashSet<String> =
        schedules.iter().map(Schedule::to_string).collect();
    state.schedules.retain(|key, _| keys.contains(key));
    drop(keys);
    let mut due: Vec<(Schedule, DateTime<Local>)> = Vec::new();
    let mut fresh = 0;
    for schedule in schedules {
        let record = state
            .schedules
            .entry(schedule.to_string())
            .or_insert_with(|| {
                fresh += 1;
                Record::new(now.fixed_offset())
            });
        // A line written twice by hand is one schedule, run once.
        if let Some(occurrence) = owed_by(schedule, record, now) {
            if !due.iter().any(|(s, _)| s == schedule) {
                due.push((schedule.clone(), occurrence));
            }
        }
    }
    // A home without schedules has no state file yet; one with schedules lost it.
    if missing && fresh > 0 {
        warn!(
            "state file {} is missing; starting afresh: {fresh} schedule(s) count as first \
             seen now",
            home.state().display()
        );
    }
    let times = schedules.iter().map(Schedule::calendar).collect();
    (due, times)
}

/// The occurrence `schedule` is owed at `now`, by its `record`; remembered times that lie
/// in the future (a clock that was wrong) are taken as now, in the record too.
fn owed_by(
    schedule: &Schedule,
    record: &mut Record,
    now: &DateTime<Local>,
) -> Option<DateTime<Local>> {
    let remembered = timing::clamp_future(
        record.first_seen.with_timezone(&Local),
        record.last_served.map(|t| t.with_timezone(&Local)),
        now,
    );
    if remembered.clamped {
        // Saved clamped, so this is said once per schedule, not once a look.
        warn!(
            "schedule {schedule}: remembered times lie in the future (first seen {}, last \
             served {}); the clock was wrong, taking them as now",
            record.first_seen.format("%d/%m/%Y %H:%M"),
            record.last_served.map_or("never".to_owned(), |t| t
                .format("%d/%m/%Y %H:%M")
                .to_string())
        );
        record.first_seen = remembered.first_seen.fixed_offset();
        record.last_served = remembered.last_served.as_ref().map(DateTime::fixed_offset);
    }
    let (first_seen, served) = (remembered.first_seen, remembered.last_served);
    timing::owed(schedule.calendar(), &first_seen, served.as_ref(), now)
}

/// Gives the memory freed by a look back to the system before sleeping. A look parses the
/// whole state file, and glibc keeps what was freed in its
/// heap, so an idle service would hold the peak of its last look for good.
fn release_free_memory() {
    // SAFETY: malloc_trim only walks glibc's own free lists; it takes no pointer of ours.
    unsafe {
        nix::libc::malloc_trim(0);
    }
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// Reads and parses the schedule file. Problems are returned as messages, never raised:
/// nothing in the file can stop the service.
fn read_schedules(home: &Home) -> Result<(Vec<Schedule>, Vec<String>), String> {
    let lines = schedule_file::read_each_line(&home.schedules()).map_err(|e| format!("{e:#}"))?;
    let mut schedules = Vec::new();
    let mut problems = Vec::new();
    let mut admitted = schedule_file::Admitted::default();
    for (index, line) in lines.iter().enumerate() {
        match line.as_deref().map(str::parse::<Schedule>) {
            Ok(Ok(schedule)) => {
                let text = line.as_deref().unwrap_or_default();
                match admitted.admit(index, &schedule, text) {
                    Ok(()) => schedules.push(schedule),
                    // Run, it would write into the other schedule's archives.
                    Err(clash) => problems.push(format!(
                        "schedule {index} ({text}) skipped: {clash}; `create` refuses such a line"
                    )),
                }
            }
            Ok(Err(err)) => problems.push(format!("schedule {index} skipped: {err}")),
            Err(why) => problems.push(format!("schedule {index} skipped: {why}")),
        }
    }
    Ok((schedules, problems))
}

/// Takes the lock of `schedule`'s NAME when its backup needs one, without waiting: when
/// another process (a `backup_manager run`) holds it, the backup is postponed to the next
/// look, and said so once per holder. `None` means postponed.
fn lock_or_postpone(
    home: &Home,
    schedule: &Schedule,
    postponed: &mut Vec<(String, Option<u32>)>,
) -> Option<generations::Locked> {
    match generations::lock(&home.backups(), schedule, None) {
        Ok(generations::Locked::Busy(holder)) => {
            let key = (schedule.name.clone(), holder);
            if !postponed.contains(&key) {
                let by = holder.map_or_else(String::new, |pid| format!(" (pid {pid})"));
                info!(
                    "Backup of {} postponed: another process{by} is writing {BACKUPS_DIR}/{}",
                    schedule.path,
                    schedule.archive_file_name()
                );
                postponed.push(key);
            }
            None
        }
        Ok(locked) => {
            postponed.retain(|(name, _)| *name != schedule.name);
            Some(locked)
        }
        // The backup itself will meet and report the same trouble.
        Err(_) => Some(generations::Locked::NotNeeded),
    }
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
        // Non-blocking, so that `wait` can drain every pending signal.
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .context("creating a signalfd")?;
        Ok(Self { fd })
    }

    /// Sleeps up to `timeout`; returns the signal that ended the sleep, if one did. When
    /// several are pending, a stop wins: the kernel hands out the lowest number first, and
    /// a SIGHUP (1) from a `create` must not earn one more cycle to a SIGTERM (15).
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
        let mut woken = None;
        while let Some(info) = self.fd.read_signal().context("reading a signal")? {
            let signal = Signal::try_from(info.ssi_signo as i32).ok();
            if matches!(signal, Some(Signal::SIGTERM | Signal::SIGINT)) {
                return Ok(signal);
            }
            woken = woken.or(signal);
        }
        Ok(woken)
    }
}
