//! One backup as a unit, the same whether the service runs it at its time or `run` does by
//! hand: the hooks around it, the archive written (rotated, chained), the outcome logged
//! and recorded in the state file.

use std::path::Path;
use std::time::Instant;

use chrono::{DateTime, Local};
use log::{error, info, warn};

use crate::archive;
use crate::atomic_file;
use crate::generations::{self, chain};
use crate::home::{BACKUPS_DIR, Home};
use crate::hooks::{self, Written};
use crate::logging::counted;
use crate::metrics;
use crate::running;
use crate::schedule::{Options, Schedule};
use crate::state::{self, Outcome, Record, Run};

/// The exit status of `backup_manager run` and `backup_service --once` when a backup was
/// done with warnings (a file left out or changed while read): the archive is written, so
/// it is not the failure status 1, but not 0 either, as restic's 3 and GNU tar's 1 say.
/// The units of `backup_manager unit` count it as a success (`SuccessExitStatus=3`).
pub const WARNINGS_EXIT: u8 = 3;

/// Backs up `schedule` with its hooks around it and records the result. `occurrence` is
/// the scheduled time it serves, or `None` for a run by hand; `progress`, if given, is told
/// how far it got.
pub fn run(
    home: &Home,
    schedule: &Schedule,
    occurrence: Option<DateTime<Local>>,
    progress: Option<archive::ProgressFn<'_>>,
) -> Run {
    let manual = occurrence.is_none();
    let run = hooks::around(home, schedule, manual, || {
        back_up(home, schedule, occurrence.as_ref(), progress)
    });
    record(home, schedule, occurrence, run.clone());
    metrics::update(home);
    run
}

/// Backs up one schedule now and logs the outcome. `occurrence` is the scheduled time it
/// serves, or `None` for a run by hand; `progress`, if given, is told how far it got.
fn back_up(
    home: &Home,
    schedule: &Schedule,
    occurrence: Option<&DateTime<Local>>,
    progress: Option<archive::ProgressFn<'_>>,
) -> (Run, Option<Written>) {
    let shown = format!("{BACKUPS_DIR}/{}", schedule.archive_file_name());
    let started_at = Local::now();
    if let Some(occurrence) = occurrence {
        let late = started_at - *occurrence;
        if late > chrono::Duration::seconds(60) {
            info!(
                "Backup of {} due at {} starts {} late",
                schedule.path,
                occurrence.format("%d/%m/%Y %H:%M"),
                describe_delay(late)
            );
        }
    }
    // What an interrupted `run` (Ctrl-C) left; writers still alive are kept.
    remove_leftovers(home);
    info!("Backup started for {} into {shown}", schedule.path);
    let started = Instant::now();
    // For `status`, while it runs: removed when it ends, whichever way.
    let writer = running::Writer::start(
        home,
        &schedule.to_string(),
        &schedule.name,
        occurrence.is_none(),
    );
    let writer = std::cell::RefCell::new(writer);
    let tell = |p: archive::Progress| {
        if let Some(writer) = writer.borrow_mut().as_mut() {
            writer.update(p.entries, p.bytes);
        }
        if let Some(progress) = progress {
            progress(p);
        }
    };
    let result = write(home, schedule, started_at, Some(&tell));
    drop(writer);
    let mut run = Run {
        started: started_at.fixed_offset(),
        duration_secs: started.elapsed().as_secs_f64(),
        outcome: Outcome::Failed,
        bytes: 0,
        entries: 0,
        messages: Vec::new(),
        warning_count: 0,
        manual: occurrence.is_none(),
        hooks: Vec::new(),
    };
    match result {
        Ok((summary, written)) => {
            done(schedule, &shown, summary, &mut run);
            (run, Some(written))
        }
        Err(err) => {
            let message = format!("backup of {} into {shown} failed: {err:#}", schedule.path);
            error!("{message}");
            run.messages.push(message);
            (run, None)
        }
    }
}

/// Writes the archive of `schedule`, started at `started_at`: a new generation, the next
/// link of its chain, or the one plain archive. Says what it wrote, for the hooks.
fn write(
    home: &Home,
    schedule: &Schedule,
    started_at: DateTime<Local>,
    progress: Option<archive::ProgressFn<'_>>,
) -> anyhow::Result<(archive::Summary, Written)> {
    let backups = home.ensure_backups()?;
    let target = backups.join(schedule.archive_file_name());
    let step = chain::start_for(&backups, schedule, &target, started_at)?;
    let request = archive::Request {
        written: &schedule.path,
        source: &home.resolve(Path::new(&schedule.path)),
        target: &target,
        exclude: &[&backups, &home.pid_file(), &home.records()],
        options: &options_in(home, schedule),
        format: schedule.format(),
        progress,
        incremental: step.as_ref().map(|(step, _)| &step.tracker),
    };
    let kind = match &step {
        None => "plain",
        Some((step, _)) if step.full => "full",
        Some(_) => "incremental",
    };
    let created = generations::create(&backups, schedule, &request, started_at)?;
    let written = match created.rotated {
        Some(rotated) => Written {
            archive: rotated.lasting,
            kind,
            pruned: rotated.pruned,
        },
        None => Written {
            archive: schedule.archive_file_name(),
            kind,
            pruned: Vec::new(),
        },
    };
    Ok((chain::finish(step, created.summary), written))
}

/// The schedule's options with its exclude file's path resolved against the home, as
/// PATH is, so that the service and `run` read the same file wherever they started.
pub fn options_in(home: &Home, schedule: &Schedule) -> Options {
    let mut options = schedule.options.clone();
    if let Some(path) = &mut options.choosing.exclude_from {
        *path = home.resolve(Path::new(path)).to_string_lossy().into_owned();
    }
    options
}

/// Logs a finished backup, shown as `shown`, and fills in its `run`.
fn done(schedule: &Schedule, shown: &str, summary: archive::Summary, run: &mut Run) {
    for warning in &summary.warnings {
        warn!("{warning}");
    }
    if summary.more_warnings > 0 {
        warn!(
            "{} for {shown} not logged",
            counted(
                summary.more_warnings,
                "more warning was",
                "more warnings were"
            )
        );
    }
    // Like GNU tar's exit status 1: the archive is valid, but not all of the tree went
    // in as it was.
    let warning_count = summary.warnings.len() as u64 + summary.more_warnings;
    info!(
        "Backup done for {} in {shown} ({}, {}, {:.2} s{})",
        schedule.path,
        counted(summary.entries, "entry", "entries"),
        format_size(summary.bytes),
        run.duration_secs,
        describe_warnings(warning_count),
    );
    run.outcome = if summary.is_clean() {
        Outcome::Ok
    } else {
        Outcome::Warnings
    };
    run.bytes = summary.bytes;
    run.entries = summary.entries;
    run.warning_count = warning_count;
    run.messages = summary.warnings;
}

/// Records a run of `schedule` in the state file, serving the occurrence `served` (none:
/// by hand). A failure to record is logged, not raised: the backup itself is done, and
/// the worst outcome is a repeated run.
pub fn record(home: &Home, schedule: &Schedule, served: Option<DateTime<Local>>, run: Run) {
    let key = schedule.to_string();
    let now = Local::now().fixed_offset();
    let recorded = state::update(home, log_state_problem, |state| {
        let record = state
            .schedules
            .entry(key)
            .or_insert_with(|| Record::new(now));
        if let Some(served) = served {
            record.last_served = Some(served.fixed_offset());
        }
        if run.outcome != Outcome::Failed {
            record.last_success = Some(run.started);
        }
        record.last_run = Some(run);
    });
    if let Err(err) = recorded {
        error!("recording the backup of {}: {err:#}", schedule.path);
    }
}

fn log_state_problem(problem: &str) {
    error!("{problem}");
}

/// Removes what interrupted backups left in `backups/` and `.records/`, saying what it
/// removed; writers still alive are kept.
pub fn remove_leftovers(home: &Home) {
    // Records of encrypted schedules are written aside in `.records/` too.
    for dir in [home.backups(), home.records()] {
        match atomic_file::remove_leftovers(&dir) {
            Ok(removed) => {
                for path in removed {
                    info!("Removed {}, left by an interrupted backup", path.display());
                }
            }
            Err(err) => error!("cleaning up interrupted backups: {err:#}"),
        }
    }
}

/// `, done with N warnings` for a summary in parentheses, or nothing when there were none.
pub fn describe_warnings(count: u64) -> String {
    match count {
        0 => String::new(),
        1 => ", done with 1 warning".to_owned(),
        n => format!(", done with {n} warnings"),
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
