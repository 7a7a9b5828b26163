//! `run INDEX`: one backup now, in the foreground, as the service would make it.

use anyhow::{Result, bail};
use log::info;

use crate::archive;
use crate::generations;
use crate::home::Home;
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
    info!("Run schedule {index} now: {schedule}");
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
