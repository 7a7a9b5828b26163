//! The manager's commands, one concern a file. Each returns what to print; errors are
//! printed and logged by the binary, once.

mod archives;
mod browse;
mod control;
mod diff;
mod edit;
mod find;
mod forget;
mod listing;
mod mount;
mod reindex;
mod run;
mod schedules;

use log::warn;
use nix::sys::signal::Signal;

use crate::home::Home;
use crate::process::Service;

pub use crate::generations::Archive;
pub use crate::schedule_file::{Entry, Replaced};
pub use archives::{
    ArchiveKind, Finished, Verified, backups, backups_long, generation, restore, verify,
};
pub use browse::{cat, files, restore_paths};
pub use control::{start, stop};
pub use diff::{Change, Diff, diff};
pub use edit::edit;
pub use find::{Found as FoundVersions, Version, find};
pub use forget::{Forget, Forgotten, forget};
pub use listing::{FileInfo, TarLines};
pub use mount::{mount_daemon, mount_here};
pub use reindex::{rebuild_needs_identity, verify_indexes};
pub use run::{DryRun, dry_run, run_now};
pub use schedules::{bad_lines, create, delete, list};

pub(crate) fn warn_about(problem: &str) {
    warn!("{problem}");
}

/// Tells a running service that the schedules changed, so it looks at them now rather
/// than at its next cycle. Nothing to do when none runs.
pub(crate) fn notify_service(home: &Home) {
    let notified = Service::find(home).and_then(|service| match service {
        Some(service) => service.signal(Signal::SIGHUP),
        None => Ok(()),
    });
    if let Err(err) = notified {
        warn!("telling backup_service about the change: {err:#}");
    }
}
