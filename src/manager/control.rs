//! `start` and `stop`: this home's service, found and signalled only once proven its.

use std::time::Duration;

use anyhow::{Result, bail};
use log::info;
use nix::sys::signal::Signal;

use crate::atomic_file;
use crate::home::Home;
use crate::process::{self, Service, StartUp};

/// How long `start` waits for the service to report it is up.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `stop --force` waits for the killed service to be gone.
const KILL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `stop` waits before it says what it is waiting for.
const PATIENCE: Duration = Duration::from_secs(1);

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
        StartUp::Failed(why, _) => {
            if let Some(other) = Service::find(home)? {
                bail!("backup_service is already running (pid {})", other.pid());
            }
            bail!("backup_service (pid {pid}) could not start: {why}")
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
        atomic_file::remove_leftovers(&home.records())?;
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
