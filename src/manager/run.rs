//! `run INDEX`: one backup now, in the foreground, as the service would make it.

use anyhow::{Result, bail};
use log::{error, info};
use nix::sys::signal::Signal;

use crate::archive;
use crate::atomic_file;
use crate::generations;
use crate::home::{BACKUPS_DIR, Home};
use crate::interrupt::{self, Watch};
use crate::job;
use crate::schedule::Schedule;
use crate::schedule_file;
use crate::state::Run;

/// `run INDEX`: backs up that schedule now, in the foreground, as the service would, and
/// records the result. The returned run says whether it failed. `progress`, if given, is
/// told how far the backup got as it goes; `say` is told when it waits for another
/// backup of the same NAME (see [`generations::lock`]).
pub fn run_now(
    home: &Home,
    index: usize,
    progress: Option<archive::ProgressFn<'_>>,
    say: &mut dyn FnMut(&str),
) -> Result<(Schedule, Run)> {
    let lines = schedule_file::read_each_line(&home.schedules())?;
    let Some(line) = lines.get(index) else {
        bail!("{}", schedule_file::no_such_index(index, lines.len()));
    };
    let schedule: Schedule = match line {
        Ok(line) => line.parse()?,
        Err(why) => bail!("schedule {index}: {why}"),
    };
    // As the service skips it: run, it would write into the other schedule's archives.
    if let Some(clash) = schedule_file::clash_at(&lines, index, &schedule) {
        bail!("schedule {index} ({schedule}) is skipped: {clash}; `delete {index}` removes it");
    }
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
    Ok((schedule, run))
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
