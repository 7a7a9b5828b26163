//! `backup_manager status`: whether the service runs, and each schedule's next run and
//! last result.

use std::fmt;
use std::fs;

use anyhow::Result;
use chrono::{DateTime, FixedOffset, Local};
use log::{info, warn};
use serde::Serialize;

use crate::generations::{self, chain};
use crate::home::Home;
use crate::job::format_size;
use crate::process::Service;
use crate::running::{self, Running};
use crate::schedule_file::{self, Entry};
use crate::state::{self, Outcome, Run};
use crate::timing;

/// The format of times shown to people, as in the logs.
const TIME_FORMAT: &str = "%d/%m/%Y %H:%M";

/// What `status` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// The service.
    pub service: ServiceStatus,
    /// Each line of the schedule file.
    pub schedules: Vec<ScheduleStatus>,
}

/// Whether the service runs.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceStatus {
    /// Whether this home's service runs.
    pub running: bool,
    /// Its pid.
    pub pid: Option<i32>,
    /// When it started.
    pub since: Option<DateTime<FixedOffset>>,
}

/// One schedule in `status`.
#[derive(Debug, Clone, Serialize)]
pub struct ScheduleStatus {
    /// The line and its parse.
    #[serde(flatten)]
    pub entry: Entry,
    /// Whether a run is owed now (the service runs it at its next look).
    pub due_now: bool,
    /// The next scheduled run after any owed one.
    pub next_run: Option<DateTime<FixedOffset>>,
    /// Whether no backup succeeded for longer than its period and a grace: the service
    /// stopped, the machine off, or every run failing.
    pub overdue: bool,
    /// When its last successful backup started.
    pub last_success: Option<DateTime<FixedOffset>>,
    /// How the last run went.
    pub last_run: Option<Run>,
    /// For a schedule that keeps several archives (`keep=N`), how many it has and when
    /// the oldest was made.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub generations: Option<Generations>,
    /// For an incremental schedule, its current chain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain: Option<chain::Chain>,
    /// A backup of its NAME running now, with how far it got.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub running: Option<Running>,
}

/// A schedule's archives in `backups/`, for one that keeps several.
#[derive(Debug, Clone, Serialize)]
pub struct Generations {
    /// How many archives it has (the newest and the dated ones).
    pub generations: usize,
    /// When the oldest was made.
    pub oldest: Option<DateTime<FixedOffset>>,
}

impl Status {
    /// Healthy: the service runs and no schedule's last run failed.
    pub fn healthy(&self) -> bool {
        self.service.running && !self.any_failed()
    }

    /// Whether any schedule's last run failed, had a hook fail or skipped, or a schedule is
    /// overdue: what a monitor must hear of.
    pub fn any_failed(&self) -> bool {
        self.schedules.iter().any(|s| {
            s.overdue
                || s.last_run
                    .as_ref()
                    .is_some_and(|run| run.outcome == Outcome::Failed || !run.hooks.is_empty())
        })
    }
}

/// `status`: the service, and each schedule's next run and last result.
pub fn status(home: &Home) -> Result<Status> {
    let now = Local::now();
    let service = service_status(home)?;
    let state = match state::load(home) {
        Ok((state, problem)) => {
            if let Some(problem) = problem {
                warn!("{problem}");
            }
            state
        }
        Err(err) => {
            warn!("{err:#}; showing no last runs");
            state::State::default()
        }
    };
    let running = running::running(home);
    let schedules = schedule_file::entries(home)?
        .into_iter()
        .map(|entry| {
            let mut status = schedule_status(home, entry, &state, &now);
            status.running = status.entry.schedule.as_ref().and_then(|schedule| {
                let of_it = running.iter().find(|r| r.name == schedule.name)?;
                Some(in_this_zone_running(of_it.clone()))
            });
            status
        })
        .collect();
    info!("Show status");
    Ok(Status { service, schedules })
}

/// Whether this home's service runs, and since when.
fn service_status(home: &Home) -> Result<ServiceStatus> {
    Ok(match Service::find(home)? {
        Some(service) => ServiceStatus {
            running: true,
            pid: Some(service.pid().as_raw()),
            since: fs::metadata(home.pid_file())
                .and_then(|m| m.modified())
                .ok()
                .map(|t| DateTime::<Local>::from(t).fixed_offset()),
        },
        None => ServiceStatus {
            running: false,
            pid: None,
            since: None,
        },
    })
}

/// One line of the schedule file with its next run and last result, as of `now`.
fn schedule_status(
    home: &Home,
    entry: Entry,
    state: &state::State,
    now: &DateTime<Local>,
) -> ScheduleStatus {
    let record = entry
        .schedule
        .as_ref()
        .and_then(|s| state.schedules.get(&s.to_string()));
    // A clashing line is skipped by the service: nothing is owed or due.
    let runs = entry.schedule.as_ref().filter(|_| entry.error.is_none());
    // A state written before the last success was kept: the last run tells.
    let last_success = record.and_then(|record| {
        record.last_success.or_else(|| {
            let run = record.last_run.as_ref()?;
            (run.outcome != Outcome::Failed).then_some(run.started)
        })
    });
    let overdue = match (runs, record) {
        (Some(schedule), Some(record)) => {
            let success = last_success;
            timing::overdue(
                schedule.calendar(),
                &record.first_seen.with_timezone(&Local),
                success.map(|t| t.with_timezone(&Local)).as_ref(),
                now,
            )
        }
        _ => false,
    };
    let (due_now, next_run) = match runs {
        Some(schedule) => {
            let first_seen = record.map_or(*now, |r| r.first_seen.with_timezone(&Local));
            let served = record.and_then(|r| r.last_served.map(|t| t.with_timezone(&Local)));
            // As the service sees them: times a wrong clock wrote are taken as now.
            let remembered = timing::clamp_future(first_seen, served, now);
            let owed = timing::owed(
                schedule.calendar(),
                &remembered.first_seen,
                remembered.last_served.as_ref(),
                now,
            );
            // A run served ahead of a clock stepped back is not run again.
            let base = (remembered.last_served.as_ref())
                .filter(|served| *served > now)
                .unwrap_or(now);
            let next = timing::next_occurrence(schedule.calendar(), base);
            (owed.is_some(), Some(next.fixed_offset()))
        }
        None => (false, None),
    };
    // Shown only where asked for: a plain schedule's status is as it was.
    let generations = entry
        .schedule
        .as_ref()
        .filter(|s| generations::keeps_several(s))
        .and_then(|s| generations::count(&home.backups(), s).ok())
        .map(|(generations, oldest)| Generations {
            generations,
            oldest,
        });
    let chain = entry
        .schedule
        .as_ref()
        .and_then(|s| chain::current(&home.backups(), s).ok().flatten());
    ScheduleStatus {
        generations,
        chain,
        running: None,
        last_run: record.and_then(|r| r.last_run.clone()).map(in_this_zone),
        entry,
        due_now,
        next_run,
        overdue,
        last_success,
    }
}

/// A running backup with its start shown in the current zone.
fn in_this_zone_running(mut running: Running) -> Running {
    running.started = running.started.with_timezone(&Local).fixed_offset();
    running
}

/// `run` with its start shown in the current zone: the state keeps the offset of the day
/// it ran, and a zone changed since (or a DST change) must not show another wall time for
/// the same instant than `next run` beside it.
fn in_this_zone(mut run: Run) -> Run {
    run.started = run.started.with_timezone(&Local).fixed_offset();
    run
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.service.pid, &self.service.since) {
            (Some(pid), Some(since)) => writeln!(
                f,
                "backup_service: running (pid {pid}, since {})",
                since.format(TIME_FORMAT)
            )?,
            (Some(pid), None) => writeln!(f, "backup_service: running (pid {pid})")?,
            _ => writeln!(f, "backup_service: not running")?,
        }
        for s in &self.schedules {
            writeln!(f, "{}", s.entry)?;
            if let Some(error) = &s.entry.error {
                // A valid line that clashes with an earlier one, or a malformed one.
                let what = if s.entry.schedule.is_some() {
                    "clashes:  "
                } else {
                    "malformed:"
                };
                writeln!(f, "   {what} {error}; the service skips it")?;
                continue;
            }
            if let Some(running) = &s.running {
                write_running(f, running)?;
            }
            if s.due_now {
                writeln!(f, "   next run:  due now")?;
            } else if let Some(next) = &s.next_run {
                writeln!(f, "   next run:  {}", next.format(TIME_FORMAT))?;
            }
            write_last_run(f, s.last_run.as_ref())?;
            if s.overdue {
                match &s.last_success {
                    Some(ok) => writeln!(
                        f,
                        "   overdue:   no successful backup since {}",
                        ok.with_timezone(&Local).format(TIME_FORMAT)
                    )?,
                    None => writeln!(f, "   overdue:   no successful backup yet")?,
                }
            }
            if let Some(chain) = &s.chain {
                writeln!(
                    f,
                    "   chain:     full made {}, {} incremental{} since; next full from {}",
                    chain.full_made.format(TIME_FORMAT),
                    chain.incrementals,
                    if chain.incrementals == 1 { "" } else { "s" },
                    chain.next_full.format("%d/%m/%Y")
                )?;
            }
            if let Some(g) = &s.generations {
                write!(f, "   archives:  {}", g.generations)?;
                if let Some(oldest) = &g.oldest {
                    write!(f, ", oldest made {}", oldest.format(TIME_FORMAT))?;
                }
                writeln!(f)?;
            }
        }
        Ok(())
    }
}

/// The `running:` line of a backup running now.
fn write_running(f: &mut fmt::Formatter<'_>, running: &Running) -> fmt::Result {
    writeln!(
        f,
        "   running:   since {}, {}, {} so far (pid {}{})",
        running.started.format(TIME_FORMAT),
        crate::logging::counted(running.entries, "entry", "entries"),
        format_size(running.bytes),
        running.pid,
        if running.manual { ", by hand" } else { "" }
    )
}

/// The `last run:` line, with the run's messages below it.
fn write_last_run(f: &mut fmt::Formatter<'_>, run: Option<&Run>) -> fmt::Result {
    let Some(run) = run else {
        return writeln!(f, "   last run:  never");
    };
    write!(
        f,
        "   last run:  {}, {}",
        run.started.format(TIME_FORMAT),
        run.outcome.as_str()
    )?;
    if run.outcome != Outcome::Failed {
        write!(f, ", {}", format_size(run.bytes))?;
    }
    write!(f, ", {:.2} s", run.duration_secs)?;
    if run.manual {
        write!(f, " (by hand)")?;
    }
    writeln!(f)?;
    for message in run.messages.iter().chain(&run.hooks) {
        writeln!(f, "              {message}")?;
    }
    Ok(())
}
