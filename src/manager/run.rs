//! `run INDEX|NAME`: one backup now, in the foreground, as the service would make it.

use anyhow::{Result, bail};
use log::{error, info};
use nix::sys::signal::Signal;

use crate::archive;
use crate::atomic_file;
use crate::generations;
use crate::home::{BACKUPS_DIR, Home};
use crate::interrupt::{self, Watch};
use crate::job;
use crate::schedule::{Schedule, Which};
use crate::schedule_file;
use crate::state::Run;

/// `run INDEX|NAME`: backs up that schedule now, in the foreground, as the service would,
/// and records the result. The returned run says whether it failed. `progress`, if given,
/// is told how far the backup got as it goes; `say` is told when it waits for another
/// backup of the same NAME (see [`generations::lock`]).
///
/// The lines of one NAME are one source into one archive series (they may differ only
/// in their time of day, or they clash): a NAME on several lines is backed up once, and
/// the run recorded for each of its lines.
pub fn run_now(
    home: &Home,
    which: &Which,
    progress: Option<archive::ProgressFn<'_>>,
    say: &mut dyn FnMut(&str),
) -> Result<(Schedule, Run)> {
    let schedules = chosen(home, which)?;
    let (index, schedule) = schedules[0].clone();
    info!("Run schedule {index} now: {schedule}");
    let shown = format!("{BACKUPS_DIR}/{}", schedule.archive_file_name());
    let path = schedule.path.clone();
    Watch::start(move |signal| interrupted(&path, &shown, signal))?;
    let _lock = generations::lock(
        &home.backups(),
        &schedule,
        Some(&mut |holder| {
            let by = holder.map_or_else(String::new, |pid| format!(" (pid {pid})"));
            say(&format!(
                "waiting for another backup of {}{by} to finish",
                schedule.archive_file_name()
            ));
        }),
    )?;
    let run = job::run(home, &schedule, None, progress);
    for (_, other) in schedules.iter().skip(1).filter(|(_, s)| *s != schedule) {
        job::record(home, other, None, run.clone());
    }
    Ok((schedule, run))
}

/// The schedules `which` means, each with its index, refusing a line that is not a
/// schedule or that the service skips. Never empty.
fn chosen(home: &Home, which: &Which) -> Result<Vec<(usize, Schedule)>> {
    let lines = schedule_file::read_each_line(&home.schedules())?;
    let chosen = schedule_file::choose(&lines, which).map_err(|e| anyhow::anyhow!(e))?;
    let mut schedules = Vec::with_capacity(chosen.len());
    for &index in &chosen {
        let schedule: Schedule = match &lines[index] {
            Ok(line) => line.parse()?,
            Err(why) => bail!("schedule {index}: {why}"),
        };
        // As the service skips it: run, it would write into the other schedule's archives.
        if let Some(clash) = schedule_file::clash_at(&lines, index, &schedule) {
            bail!("schedule {index} ({schedule}) is skipped: {clash}; `delete {index}` removes it");
        }
        schedules.push((index, schedule));
    }
    Ok(schedules)
}

/// What `run --dry-run` found.
#[derive(Debug, Clone)]
pub struct DryRun {
    /// What would be archived, for the user: the count, the size, where.
    pub summary: String,
    /// Entries that would be left out or stored incompletely, as in a backup.
    pub warnings: Vec<String>,
}

/// `run --dry-run INDEX|NAME`: walks the schedule's tree as its backup would, with its
/// excludes, telling `list` of each entry it would archive; writes nothing, runs no hook,
/// records nothing.
pub fn dry_run(home: &Home, which: &Which, list: &mut dyn FnMut(&str)) -> Result<DryRun> {
    let (index, schedule) = chosen(home, which)?.swap_remove(0);
    info!("Dry run of schedule {index}: {schedule}");
    let backups = home.backups();
    let target = backups.join(schedule.archive_file_name());
    let options = job::options_in(home, &schedule);
    let tracker = match schedule.options.incremental {
        Some(settings) => Some(generations::chain::dry_start(
            &backups,
            &schedule,
            settings,
            &target,
            chrono::Local::now(),
        )?),
        None => None,
    };
    let list = std::cell::RefCell::new(list);
    let tell = |name: &[u8], _size: u64| (list.borrow_mut())(&String::from_utf8_lossy(name));
    let request = archive::Request {
        written: &schedule.path,
        source: &home.resolve(std::path::Path::new(&schedule.path)),
        target: &target,
        exclude: &[&backups, &home.pid_file(), &home.records()],
        options: &options,
        format: schedule.format(),
        progress: None,
        incremental: tracker.as_ref().map(|(tracker, _)| tracker),
    };
    let summary = archive::dry_run(&request, &tell)
        .map_err(|err| anyhow::anyhow!("dry run of {}: {err:#}", schedule.path))?;
    let mut warnings = summary.warnings;
    if summary.more_warnings > 0 {
        let more = summary.more_warnings;
        warnings.push(crate::logging::counted(
            more,
            "more warning",
            "more warnings",
        ));
    }
    let chain = match tracker {
        Some((_, true)) => " (the full backup of a chain)",
        Some((_, false)) => " (an incremental backup: what changed since the last one)",
        None => "",
    };
    Ok(DryRun {
        summary: format!(
            "dry run: {} would go into {BACKUPS_DIR}/{}{chain}, {} of file data; nothing was \
             written",
            crate::logging::counted(summary.entries, "entry", "entries"),
            schedule.archive_file_name(),
            job::format_size(summary.bytes)
        ),
        warnings,
    })
}

/// Ctrl-C, SIGTERM or SIGHUP during `run`: removes what the backup had half written, says
/// so in the log and on stderr, and ends the process as the signal would have. The
/// previous archive, if any, is untouched: it is only ever replaced by a rename.
fn interrupted(path: &str, shown: &str, signal: Signal) -> ! {
    let removed = atomic_file::abandon_all();
    for file in &removed {
        info!("Removed {}, left by the interrupted backup", file.display());
    }
    let message = format!(
        "backup of {path} into {shown} interrupted by {signal}; {} unfinished file{} \
         removed, the previous archive is as it was",
        removed.len(),
        if removed.len() == 1 { "" } else { "s" }
    );
    error!("{message}");
    // A spinner may be on the terminal's last line.
    let fresh_line = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        "\n"
    } else {
        ""
    };
    eprintln!("{fresh_line}backup_manager: {message}");
    interrupt::die_of(signal)
}
