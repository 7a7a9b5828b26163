//! The manager's commands. Each returns what to print; errors are printed and logged by
//! the binary, once.

use std::fs;
use std::io;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use log::info;
use nix::sys::signal::Signal;

use crate::atomic_file;
use crate::home::Home;
use crate::process::{self, Service, StartUp};
use crate::schedule::Schedule;
use crate::schedule_file;

/// How long `start` waits for the service to report it is up.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `stop --force` waits for the killed service to be gone.
const KILL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `stop` waits before it says what it is waiting for.
const PATIENCE: Duration = Duration::from_secs(1);

/// Archive file name endings that `backups` lists.
const ARCHIVE_SUFFIXES: [&str; 1] = [".tar"];

/// `create "PATH;HH:MM;NAME"`: validates the schedule and appends it.
///
/// Returns a warning for the user when PATH does not exist yet: that is allowed (it may
/// be mounted later), but more often a typo.
pub fn create(home: &Home, line: &str) -> Result<Option<String>> {
    let schedule: Schedule = line.parse()?;
    schedule_file::append(home, &schedule)?;
    info!("New schedule added: {schedule}");
    let source = home.resolve(Path::new(&schedule.path));
    Ok((fs::symlink_metadata(&source).is_err()).then(|| {
        format!(
            "warning: {} does not exist yet; the backup will fail until it does",
            source.display()
        )
    }))
}

/// `delete INDEX`: removes the schedule at INDEX.
pub fn delete(home: &Home, index: usize) -> Result<()> {
    let line = schedule_file::delete(home, index)?;
    info!("Schedule deleted: {line}");
    Ok(())
}

/// `list`: every line of the schedule file as `INDEX: LINE`.
pub fn list(home: &Home) -> Result<Vec<String>> {
    let lines = schedule_file::read_lines(&home.schedules())?;
    info!("Show schedules list");
    Ok(lines
        .iter()
        .enumerate()
        .map(|(index, line)| format!("{index}: {line}"))
        .collect())
}

/// `backups`: the finished archives in `backups/`, sorted by name.
///
/// Hidden files (archives being written) and anything that is not an archive are left out.
pub fn backups(home: &Home) -> Result<Vec<String>> {
    let dir = home.backups();
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries.collect::<Result<Vec<_>, _>>(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
    .with_context(|| format!("listing {}", dir.display()))?;
    let mut names: Vec<String> = entries
        .into_iter()
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| !name.starts_with('.') && ARCHIVE_SUFFIXES.iter().any(|s| name.ends_with(s)))
        .collect();
    names.sort();
    info!("Show backups list");
    Ok(names)
}

/// `start`: starts this home's service in the background and waits until it is up.
pub fn start(home: &Home) -> Result<()> {
    if let Some(service) = Service::find(home)? {
        bail!("backup_service is already running (pid {})", service.pid());
    }
    let binary = process::service_binary()?;
    let spawned = process::spawn(&binary, home)?;
    let pid = spawned.pid();
    match spawned.wait_ready(START_TIMEOUT)? {
        StartUp::Ready(pid) => {
            info!("backup_service started (pid {pid})");
            Ok(())
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
            "backup_service (pid {pid}) did not report ready within {} s: see {}",
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
