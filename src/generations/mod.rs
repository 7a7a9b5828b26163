//! Generations: keeping the last N archives of a schedule (`keep=N`).
//!
//! Each generation is written under its lasting name, `backups/NAME.YYYY-MM-DD_HHMM.tar`
//! (or `.tar.gz`, `.tar.zst`), the local time its backup started, and keeps that name
//! until it is pruned: a mirror of the folder never has to rename anything. The newest is
//! also `backups/NAME.tar` (a hard link), so that everything that reads that file keeps
//! working; `backups` lists it once, as `NAME.tar`. A second generation in the same minute
//! takes a suffix (`NAME.YYYY-MM-DD_HHMM-2.tar`), and names only ever grow: when the clock
//! went back (the autumn DST change, a corrected clock), a new archive takes the newest
//! name with the next suffix rather than sort before it. The order of the names is the
//! order of the generations.
//!
//! A `NAME.tar` without a dated name (written with `keep=1`, before `keep` was raised) is
//! given one from its mtime, the best there is, when it is first rotated; one with a
//! hidden dated name (`.NAME.YYYY-MM-DD_HHMM.tar`, as an earlier version of this program
//! kept the newest's) is given that name, and the hidden one is removed.
//!
//! # The order of a rotation, and why a crash at any point is safe
//!
//! Under the NAME's lock ([`lock`]):
//!
//! 0. Repair what a crash left: a dated generation newer than `NAME.tar` (a crash after
//!    step 2) is a whole, fsynced archive: it becomes `NAME.tar`, as step 4 would have
//!    made it. A hidden dated name that is not `NAME.tar` gets its visible name.
//! 1. The new archive is written aside (`.NAME.tar.PID.partial`) and fsynced.
//!    A crash: the temporary file is removed at the next start; nothing else changed.
//! 2. It is hard-linked to its lasting dated name; the folder is fsynced.
//!    A crash: the old `NAME.tar` is still `NAME.tar`; `backups` lists the new one among
//!    the older ones until step 0 of the next rotation puts it in place.
//! 3. When the current `NAME.tar` has no dated name yet, it is hard-linked to one; the
//!    folder is fsynced.
//! 4. The new archive is renamed over `NAME.tar` (atomic), the folder fsynced.
//! 5. The oldest generations beyond N ([`to_remove`]) are removed, and the folder is
//!    fsynced. A crash: more than N generations remain until the next rotation prunes
//!    them. A failure here is logged as a warning, not a failed backup: the new archive
//!    is in place, and the next rotation finishes the tidying.
//!
//! A failure before step 4 undoes steps 2 and 3 (removes the links it made), so a failed
//! backup renames nothing and removes nothing. With `keep=1` and no dated archive of
//! the NAME, none of this happens: the archive is written aside and renamed into place,
//! as always, and no lock is taken. With `keep=1` and dated archives left from a larger
//! `keep`, one rotation removes them all and the new archive's own dated name, so the
//! next backup is a plain one again.
//!
//! # Locking
//!
//! A rotating backup holds the NAME's [`lock`] from before its archive is written until
//! the rotation ends. `backup_manager run` waits for it (and says so); the service does
//! not, so that a long backup by hand cannot hold up its other schedules: it postpones
//! that NAME to its next look, still owed, and looks again within a few seconds.

pub mod chain;
mod list;
mod lock;
mod prune;
mod rotate;
mod series;

use std::path::Path;

use anyhow::{Context, Result};
use chrono::{DateTime, Local};

use crate::archive::{self, Summary};
use crate::schedule::Schedule;

pub use list::{Archive, count, list};
pub use lock::{Locked, NameLock, lock, lock_path};
pub use prune::{Decision, Generation, decide, removed, to_remove, to_remove_chains};
pub use rotate::Keeping;
pub use rotate::Rotated;
use rotate::{decide_for, newest_first, prune, rotate};
use series::{FileId, Series};

/// How `schedule`'s generations are kept.
pub fn keeping(schedule: &Schedule) -> Keeping {
    Keeping {
        policy: schedule.options.policy(),
        chained: schedule.options.incremental.is_some(),
    }
}

/// Whether `schedule` keeps several generations: `keep` above 1, a calendar rule, or
/// incremental chains.
pub fn keeps_several(schedule: &Schedule) -> bool {
    let options = &schedule.options;
    options.keep > 1 || options.periods.any() || options.incremental.is_some()
}

/// What `schedule`'s policy keeps of its generations in `dir`, and why, newest first;
/// unless `dry_run`, removes the others now (the caller holds the NAME's [`lock`]).
pub fn forget(dir: &Path, schedule: &Schedule, dry_run: bool) -> Result<Vec<Decision>> {
    let format = schedule.format();
    let series = Series::scan(dir, &schedule.name, format)?;
    let generations = newest_first(&schedule.name, format, &series, None);
    let keeping = keeping(schedule);
    let decisions = decide_for(dir, format, &generations, keeping);
    if !dry_run {
        prune(dir, &decisions, keeping)?;
        rotate::remove_orphan_indexes(dir, &schedule.name, format)?;
        crate::atomic_file::sync_dir(dir)?;
    }
    Ok(decisions)
}

/// Whether a backup of `schedule` into `dir` rotates generations: it keeps more than
/// one, or dated ones are there (`keep` was lowered to 1, and they are pruned).
pub fn rotates(dir: &Path, schedule: &Schedule) -> Result<bool> {
    // An incremental chain is a series of generations, whatever `keep` says.
    if keeps_several(schedule) {
        return Ok(true);
    }
    let series = Series::scan(dir, &schedule.name, schedule.format())?;
    Ok(!series.dated.is_empty() || !series.hidden.is_empty())
}

/// Writes the archive of `request` for `schedule`: as a new generation when it keeps
/// several ([`rotates`]), then `made` (when the backup started) names it; otherwise
/// written aside and renamed into place, exactly as [`archive::create`] does.
///
/// The caller holds the NAME's [`lock`] when the backup rotates.
pub fn create(
    dir: &Path,
    schedule: &Schedule,
    request: &archive::Request<'_>,
    made: DateTime<Local>,
) -> Result<Created> {
    if !rotates(dir, schedule)? {
        return archive::create(request).map(|summary| Created {
            summary,
            rotated: None,
        });
    }
    let (summary, out) = archive::create_aside(request)?;
    let keeping = Keeping {
        policy: schedule.options.policy(),
        chained: schedule.options.incremental.is_some(),
    };
    let rotated = rotate(dir, &schedule.name, schedule.format(), out, made, keeping)
        .with_context(|| format!("putting the new {} in place", request.target.display()))?;
    Ok(Created {
        summary,
        rotated: Some(rotated),
    })
}

/// What [`create`] wrote.
#[derive(Debug, Clone)]
pub struct Created {
    /// What the archive holds.
    pub summary: Summary,
    /// For a backup that rotates generations: its lasting name and what was pruned.
    pub rotated: Option<Rotated>,
}
