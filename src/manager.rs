//! The manager's commands. Each returns what to print; errors are printed and logged by
//! the binary, once.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use chrono::Local;
use log::{info, warn};
use nix::sys::signal::Signal;
use serde::Serialize;

use crate::archive::{self, Compression};
use crate::atomic_file;
use crate::generations;
use crate::home::{BACKUPS_DIR, Home};
use crate::hooks;
use crate::incremental;
use crate::process::{self, Service, StartUp};
use crate::schedule::{Options, Schedule};
use crate::schedule_file;
use crate::service;
use crate::state::{self, Record, Run};

/// How long `start` waits for the service to report it is up.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `stop --force` waits for the killed service to be gone.
const KILL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `stop` waits before it says what it is waiting for.
const PATIENCE: Duration = Duration::from_secs(1);

/// `create "PATH;HH:MM;NAME"`: validates the schedule and appends it, with the options
/// given as flags added to those of the line (given both ways, they must agree).
///
/// Returns a warning for the user when PATH does not exist yet: that is allowed (it may
/// be mounted later), but more often a typo.
pub fn create(home: &Home, line: &str, flags: Options) -> Result<Option<String>> {
    let mut schedule: Schedule = line.parse()?;
    schedule
        .options
        .combine(flags)
        .map_err(|why| anyhow::anyhow!("refusing schedule {line}: {why}"))?;
    // The line and its record are written under the state lock, which the service holds
    // while it reads the schedule file: it sees both or neither, so it can neither prune
    // the new record nor take the state file for lost.
    let state = state::lock(home)?;
    schedule_file::append(home, &schedule)?;
    info!("New schedule added: {schedule}");
    // Seen from now on: created at 16:07:30 for 16:07, it is owed today, even if the
    // service only looks at 16:08; created at 16:10, it waits for tomorrow. A record
    // left by a line removed by hand is replaced: this is a new schedule.
    let record = Record::new(Local::now().fixed_offset());
    let key = schedule.to_string();
    let remembered = state.update(warn_about, |state| {
        state.schedules.insert(key, record);
    });
    if let Err(err) = remembered {
        warn!("{err:#}");
    }
    drop(state);
    notify_service(home);
    let source = home.resolve(Path::new(&schedule.path));
    Ok((fs::symlink_metadata(&source).is_err()).then(|| {
        format!(
            "warning: {} does not exist yet; the backup will fail until it does",
            source.display()
        )
    }))
}

/// `delete INDEX`: removes the schedule at INDEX and forgets its state.
pub fn delete(home: &Home, index: usize) -> Result<()> {
    // Under the state lock, like `create`, so that a `create` of the same line in between
    // cannot lose its fresh record to this delete.
    let state = state::lock(home)?;
    let line = schedule_file::delete(home, index)?;
    let shown = line.as_ref().unwrap_or_else(|bytes| bytes);
    info!("Schedule deleted: {shown}");
    if let Some(deleted) = line.ok().and_then(|l| l.parse::<Schedule>().ok()) {
        // A copy of the line written by hand shares the record, and keeps it; so does a
        // file that cannot be read back, as nothing then says the record is unused.
        let copy_left = schedule_file::read_each_line(&home.schedules()).map(|remaining| {
            remaining
                .iter()
                .flatten()
                .any(|l| l.parse::<Schedule>().ok().as_ref() == Some(&deleted))
        });
        if let Ok(false) = copy_left {
            let key = deleted.to_string();
            if let Err(err) = state.update(warn_about, |state| {
                state.schedules.remove(&key);
            }) {
                warn!("{err:#}");
            }
        }
    }
    drop(state);
    notify_service(home);
    Ok(())
}

fn warn_about(problem: &str) {
    warn!("{problem}");
}

/// Tells a running service that the schedules changed, so it looks at them now rather
/// than at its next cycle. Nothing to do when none runs.
fn notify_service(home: &Home) {
    let notified = Service::find(home).and_then(|service| match service {
        Some(service) => service.signal(Signal::SIGHUP),
        None => Ok(()),
    });
    if let Err(err) = notified {
        warn!("telling backup_service about the change: {err:#}");
    }
}

/// One line of the schedule file, as `list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// The line's index, from 0.
    pub index: usize,
    /// The line as written.
    pub line: String,
    /// The schedule, when the line is valid.
    pub schedule: Option<Schedule>,
    /// Why the line is not a valid schedule.
    pub error: Option<String>,
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.index, self.line)
    }
}

/// Every line of the schedule file, parsed where it can be; a line that is not UTF-8 is
/// shown with those bytes escaped.
pub(crate) fn entries(home: &Home) -> Result<Vec<Entry>> {
    let lines = schedule_file::read_raw_lines(&home.schedules())?;
    Ok(lines
        .into_iter()
        .enumerate()
        .map(|(index, raw)| {
            let (line, parsed) = match schedule_file::text_of(&raw) {
                Ok(text) => {
                    let parsed = text.parse::<Schedule>().map_err(|e| e.reason.to_string());
                    (text, parsed)
                }
                Err(why) => (schedule_file::shown(&raw), Err(why)),
            };
            let (schedule, error) = match parsed {
                Ok(schedule) => (Some(schedule), None),
                Err(err) => (None, Some(err)),
            };
            Entry {
                index,
                line,
                schedule,
                error,
            }
        })
        .collect())
}

/// `list`: every line of the schedule file, valid or not, with its index.
pub fn list(home: &Home) -> Result<Vec<Entry>> {
    let entries = entries(home)?;
    info!("Show schedules list");
    Ok(entries)
}

/// The error for a listing that showed bad lines, naming them (the first few, with why),
/// or `None` when every line is a schedule.
pub fn bad_lines(home: &Home, entries: &[Entry]) -> Option<String> {
    const NAMED: usize = 5;
    let bad: Vec<&Entry> = entries.iter().filter(|e| e.error.is_some()).collect();
    let first = bad.first()?;
    let mut message = format!(
        "{} has {} bad line{}: index {} ({})",
        home.schedules().display(),
        bad.len(),
        if bad.len() == 1 { "" } else { "s" },
        first.index,
        first.error.as_deref().unwrap_or_default()
    );
    for entry in bad.iter().skip(1).take(NAMED - 1) {
        message.push_str(&format!(
            ", index {} ({})",
            entry.index,
            entry.error.as_deref().unwrap_or_default()
        ));
    }
    if bad.len() > NAMED {
        message.push_str(&format!(" and {} more", bad.len() - NAMED));
    }
    message.push_str("; the service skips them, `delete INDEX` removes one");
    Some(message)
}

/// A finished archive in `backups/`, as `backups` lists it.
pub use crate::generations::Archive;

/// `backups`: the finished archives in `backups/`: each NAME's newest (`NAME.tar`) then
/// its older generations, newest first (see [`generations::list`]); without generations,
/// simply sorted by name.
///
/// Hidden files (archives being written, locks) and anything that is not an archive are
/// left out.
pub fn backups(home: &Home) -> Result<Vec<Archive>> {
    let archives = generations::list(&home.backups())?;
    info!("Show backups list");
    Ok(archives)
}

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
    let run = hooks::around(home, &schedule, true, || {
        service::back_up(home, &schedule, None, progress)
    });
    service::record(home, &schedule, None, run.clone());
    Ok((schedule, run))
}

/// `verify NAME [--source]`: reads the archive end to end and checks its structure; with
/// `source`, also compares it with the schedule's live tree, giving each difference to
/// `difference` (to print) and failing if there was any. Returns what was verified, as
/// a sentence for the user.
pub fn verify(
    home: &Home,
    name: &str,
    source: bool,
    difference: &mut dyn FnMut(&str),
) -> Result<String> {
    let found = find_archive(home, name)?;
    let shown = found.shown();
    // Filled in only with `source`; differences only come then.
    let mut root = PathBuf::new();
    let prefix;
    let compare = if source {
        let schedule = found.schedule.as_ref().with_context(|| {
            format!(
                "cannot compare {shown} with its source: no schedule in {} writes it",
                home.schedules().display()
            )
        })?;
        root = home.resolve(Path::new(&schedule.path));
        prefix = archive::entry_name(&schedule.path);
        Some(archive::Source {
            root: &root,
            prefix: &prefix,
            options: &schedule.options,
        })
    } else {
        None
    };
    // An incremental archive is only as good as its chain: every archive before it back
    // to the full is read through too (and compared with nothing: they are older).
    let chain = incremental::chain::chain_to(&home.backups(), &found.file_name, found.compression)
        .with_context(|| format!("verifying {shown}"))?;
    for older in &chain[..chain.len() - 1] {
        archive::verify(older, found.compression, None)
            .with_context(|| format!("verifying {}, which {shown} depends on", older.display()))?;
    }
    let report = archive::verify(&found.path, found.compression, compare)
        .with_context(|| format!("verifying {shown}"))?;
    for line in &report.differences {
        difference(line);
    }
    if !report.differences.is_empty() {
        bail!(
            "{shown} differs from its source {}: {} difference{}",
            root.display(),
            report.differences.len(),
            if report.differences.len() == 1 {
                ""
            } else {
                "s"
            }
        );
    }
    if !report.not_restorable.is_empty() {
        bail!(
            "{shown} is readable, but restore would skip {}",
            archive::count_and_names(&report.not_restorable)
        );
    }
    let against = if source { ", same as its source" } else { "" };
    let what = format!(
        "{shown} ({} entries{against}){}",
        report.entries,
        incremental::chain::describe(chain.len())
    );
    info!("Verified {what}");
    Ok(format!("verified {what}"))
}

/// `restore NAME DEST [--force]`: extracts the archive into DEST, which must be new or
/// empty unless `force`. Returns what was restored, with warnings about entries that could
/// not be restored as they were.
pub fn restore(home: &Home, name: &str, dest: &Path, force: bool) -> Result<Finished> {
    let found = find_archive(home, name)?;
    let shown = found.shown();
    let dest = std::path::absolute(dest)
        .with_context(|| format!("resolving destination {}", dest.display()))?;
    // An incremental archive comes back with the chain it completes.
    let chain = incremental::chain::chain_to(&home.backups(), &found.file_name, found.compression)
        .with_context(|| format!("restoring {shown}"))?;
    let chain: Vec<&Path> = chain.iter().map(PathBuf::as_path).collect();
    let restored = archive::restore_chain(&chain, found.compression, &dest, force)
        .with_context(|| format!("restoring {shown} into {}", dest.display()))?;
    for warning in &restored.warnings {
        warn!("{warning}");
    }
    let what = format!(
        "{shown} into {} ({} entries){}",
        dest.display(),
        restored.entries,
        incremental::chain::describe(chain.len())
    );
    // A partial restore must never look like a complete one.
    let incomplete = (!restored.not_restored.is_empty()).then(|| {
        format!(
            "restored {what}, but {} could not be restored",
            archive::count_and_names(&restored.not_restored)
        )
    });
    // An incomplete one is logged as the error the binary exits with.
    if incomplete.is_none() {
        info!("Restored {what}");
    }
    Ok(Finished {
        message: format!("restored {what}"),
        warnings: restored.warnings,
        incomplete,
    })
}

/// `restore NAME DEST --at GENERATION`: the file name of NAME's archive made at
/// GENERATION, given as `backups` shows its date (`YYYY-MM-DD_HHMM`, with its `-N` if it
/// has one) or as its file name.
pub fn generation(home: &Home, name: &str, at: &str) -> Result<String> {
    let archives: Vec<generations::Archive> = generations::list(&home.backups())?
        .into_iter()
        .filter(|a| a.schedule == name)
        .collect();
    // A dated name first: the newest archive's date, taken from its time, may be the
    // same minute as an older one's.
    let by_name = |a: &&generations::Archive| {
        a.name == at || a.name == format!("{name}.{at}{}", a.compression.suffix())
    };
    let by_time =
        |a: &&generations::Archive| a.latest && a.made.format("%Y-%m-%d_%H%M").to_string() == at;
    match archives
        .iter()
        .find(by_name)
        .or_else(|| archives.iter().find(by_time))
    {
        Some(archive) => Ok(archive.name.clone()),
        None => bail!(
            "{name} has no generation {at:?}; it has: {}",
            if archives.is_empty() {
                "none".to_owned()
            } else {
                archives
                    .iter()
                    .map(|a| a.made.format("%Y-%m-%d_%H%M").to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ),
    }
}

/// What a command did, as one sentence for its user, and the warnings on the way.
#[derive(Debug)]
pub struct Finished {
    /// What was done, e.g. `restored backups/src.tar into /tmp/r (12 entries)`.
    pub message: String,
    /// Entries that could not be handled as they were, each a sentence.
    pub warnings: Vec<String>,
    /// Set when the command did not do all of its work (entries not restored): the
    /// error to exit with, after the warnings.
    pub incomplete: Option<String>,
}

/// An archive found for a NAME given on the command line.
struct Found {
    path: PathBuf,
    file_name: String,
    compression: Compression,
    /// The schedule that writes it, if one does.
    schedule: Option<Schedule>,
}

impl Found {
    fn shown(&self) -> String {
        format!("{BACKUPS_DIR}/{}", self.file_name)
    }
}

/// Finds the archive for `name`: a schedule's NAME (its archive, whatever its
/// compression), or a file name as `backups` lists it.
fn find_archive(home: &Home, name: &str) -> Result<Found> {
    let schedules: Vec<Schedule> = schedule_file::read_each_line(&home.schedules())?
        .iter()
        .flatten()
        .filter_map(|line| line.parse().ok())
        .collect();
    let dir = home.backups();
    // As `backups` lists them: files, not links.
    let exists = |file_name: &str| {
        fs::symlink_metadata(dir.join(file_name)).is_ok_and(|meta| meta.is_file())
    };
    let found = |file_name: String, compression: Compression, base: &str| {
        let schedule = schedules
            .iter()
            .find(|s| s.name == base && s.compression() == compression)
            .cloned();
        Found {
            path: dir.join(&file_name),
            file_name,
            compression,
            schedule,
        }
    };
    if name.contains('/') || name.starts_with('.') || name.is_empty() {
        bail!("{name:?} is not an archive name (as `backups` lists them) or a schedule's NAME");
    }
    if let Some(compression) = Compression::of_file_name(name) {
        if exists(name) {
            // An older generation's schedule is its NAME's.
            let base = generations::parse_file_name(name).map_or(name, |(base, _, _)| base);
            return Ok(found(name.to_owned(), compression, base));
        }
    }
    // The archive the schedule writes now comes first: an older one of another
    // compression may still lie there.
    if let Some(schedule) = schedules.iter().find(|s| s.name == name) {
        let file_name = schedule.archive_file_name();
        if exists(&file_name) {
            return Ok(found(file_name, schedule.compression(), name));
        }
    }
    let present: Vec<Compression> = Compression::ALL
        .into_iter()
        .filter(|c| exists(&format!("{name}{}", c.suffix())))
        .collect();
    match present[..] {
        [compression] => Ok(found(
            format!("{name}{}", compression.suffix()),
            compression,
            name,
        )),
        [] => bail!(
            "no archive named {name} in {}: `backup_manager backups` lists them",
            dir.display()
        ),
        _ => bail!(
            "several archives are named {name} ({}): give the file name",
            present
                .iter()
                .map(|c| format!("{name}{}", c.suffix()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `start`: starts this home's service in the background and waits until it is up.
pub fn start(home: &Home) -> Result<i32> {
    if let Some(service) = Service::find(home)? {
        bail!("backup_service is already running (pid {})", service.pid());
    }
    let binary = process::service_binary()?;
    let spawned = process::spawn(&binary, home)?;
    let pid = spawned.pid();
    match spawned.wait_ready(START_TIMEOUT)? {
        StartUp::Ready(pid) => {
            info!("backup_service started (pid {pid})");
            Ok(pid.as_raw())
        }
        StartUp::Exited(status) => {
            // Another `start` may have won the race for the lock: then one service runs,
            // which is what was asked, but not ours.
            if let Some(other) = Service::find(home)? {
                bail!("backup_service is already running (pid {})", other.pid());
            }
            bail!(
                "backup_service (pid {pid}) exited at start with {}: see {}",
                process::describe_exit(status),
                home.service_log().display()
            )
        }
        StartUp::TimedOut(pid) => bail!(
            "backup_service (pid {pid}) did not report ready within {} s; it may still come \
             up (backup_manager status tells): see {}",
            START_TIMEOUT.as_secs(),
            home.service_log().display()
        ),
    }
}

/// `stop`: asks the service to finish the backups in progress and exit, waiting up to
/// `timeout`; with `force`, kills it at once.
///
/// `progress` receives what the wait is for, when it takes a while.
pub fn stop(
    home: &Home,
    force: bool,
    timeout: Duration,
    progress: &mut dyn FnMut(&str),
) -> Result<()> {
    let Some(service) = Service::find(home)? else {
        bail!("backup_service is not running");
    };
    let pid = service.pid();
    if force {
        service.signal(Signal::SIGKILL)?;
        if !service.wait_exit(KILL_TIMEOUT)? {
            bail!(
                "backup_service (pid {pid}) is still there {} s after SIGKILL",
                KILL_TIMEOUT.as_secs()
            );
        }
        // A killed backup leaves its hidden temporary file; it was never under a final
        // name, and here it goes.
        atomic_file::remove_leftovers(&home.backups())?;
        info!("backup_service stopped (pid {pid}, killed)");
        return Ok(());
    }
    service.signal(Signal::SIGTERM)?;
    if !service.wait_exit(PATIENCE.min(timeout))? {
        progress(&format!(
            "Waiting up to {} s for backup_service (pid {pid}) to finish the backups in \
             progress (stop --force ends it now)...",
            timeout.as_secs()
        ));
        if !service.wait_exit(timeout.saturating_sub(PATIENCE))? {
            bail!(
                "backup_service (pid {pid}) is still finishing its backups after {} s; it \
                 will exit when they are done (stop --force ends it now)",
                timeout.as_secs()
            );
        }
    }
    info!("backup_service stopped (pid {pid})");
    Ok(())
}
