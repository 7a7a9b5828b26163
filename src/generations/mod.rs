//! Generations: keeping the last N archives of a schedule (`keep=N`).
//!
//! The newest archive is always `backups/NAME.tar` (or `.tar.gz`, `.tar.zst`), so that
//! everything that reads that file keeps working; each older one is kept under a dated
//! name, `backups/NAME.YYYY-MM-DD_HHMM.tar`, the local time its backup started. A second
//! one in the same minute takes a suffix (`NAME.YYYY-MM-DD_HHMM-2.tar`), and names only
//! ever grow: when the clock went back (the autumn DST change, a corrected clock), a new
//! archive takes the newest name with the next suffix rather than sort before it. The
//! order of the names is the order of the generations.
//!
//! # Where the time of `NAME.tar` is kept
//!
//! The newest archive also has a hidden hard link, `.NAME.YYYY-MM-DD_HHMM.tar`: its dated
//! name, decided when it was made, kept where `backups` does not list it. When a newer
//! archive comes, that hidden name becomes the visible one. So the time a generation was
//! made is always in a name, never only in an mtime that a `touch` or a copy changes.
//! A `NAME.tar` without one (written with `keep=1`, before `keep` was raised) is given a
//! dated name from its mtime, the best there is, when it is first rotated.
//!
//! # The order of a rotation, and why a crash at any point is safe
//!
//! Under the NAME's lock ([`lock`]):
//!
//! 0. Repair what a crash left: a hidden dated name that is not `NAME.tar` (a crash after
//!    step 2) is a whole, fsynced archive: it is given its visible name (or dropped, when
//!    the visible name is already the same file: a crash after step 4).
//! 1. The new archive is written aside (`.NAME.tar.PID.partial`) and fsynced.
//!    A crash: the temporary file is removed at the next start; nothing else changed.
//! 2. It is hard-linked to its hidden dated name; the folder is fsynced.
//!    A crash: the old `NAME.tar` is still the newest; step 0 later shows the new one.
//! 3. The current `NAME.tar` is hard-linked to its visible dated name (a link, not a
//!    rename: `NAME.tar` stays in place); the folder is fsynced.
//!    A crash: one file under two visible names; `backups` lists a dated name that is
//!    the same file as `NAME.tar` only once, as `NAME.tar`.
//! 4. The new archive is renamed over `NAME.tar` (atomic), the folder fsynced.
//! 5. The previous archive's hidden name is removed, then the oldest generations beyond
//!    N ([`to_remove`]), and the folder is fsynced.
//!    A crash: more than N generations remain until the next rotation prunes them.
//!    A failure here is logged as a warning, not a failed backup: the new archive is in
//!    place, and the next rotation finishes the tidying.
//!
//! A failure before step 4 undoes steps 2 and 3 (removes the links it made), so a failed
//! backup renames nothing and removes nothing. With `keep=1` and no dated archive of
//! the NAME, none of this happens: the archive is written aside and renamed into place,
//! as always, and no lock is taken. With `keep=1` and dated archives left from a larger
//! `keep`, one rotation removes them all and the new archive's hidden name, so the next
//! backup is a plain one again.
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

use std::cmp::Reverse;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{DateTime, Local};
use log::{info, warn};

use crate::archive::{self, Summary};
use crate::atomic_file::{self, AtomicFile};
use crate::home::BACKUPS_DIR;
use crate::naming::{
    Compression, Stamp, dated_file_name, hidden_file_name, next_stamp, parse_file_name,
};
use crate::pause;
use crate::schedule::Schedule;

pub use list::{Archive, count, list};
pub use lock::{Locked, NameLock, lock, lock_path};
pub use prune::{Generation, to_remove, to_remove_chains};

/// A file's identity, to tell two names of one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    pub(super) fn of(meta: &fs::Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// The archives of one NAME and compression in `backups/`, as found on disk.
#[derive(Debug, Default)]
struct Series {
    /// `NAME.tar`, with its mtime.
    latest: Option<(FileId, DateTime<Local>)>,
    /// Visible dated names.
    dated: Vec<(Stamp, FileId)>,
    /// Hidden dated names.
    hidden: Vec<(Stamp, FileId)>,
}

impl Series {
    fn scan(dir: &Path, name: &str, compression: Compression) -> Result<Self> {
        let mut series = Series::default();
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(series),
            Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
        };
        for entry in entries {
            let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
            let Ok(file_name) = entry.file_name().into_string() else {
                continue;
            };
            let (visible, hidden) = match file_name.strip_prefix('.') {
                Some(rest) => (false, rest),
                None => (true, file_name.as_str()),
            };
            let Some((series_name, stamp, found)) = parse_file_name(hidden) else {
                continue;
            };
            if series_name != name || found != compression {
                continue;
            }
            let Some(meta) = list::file_metadata(&entry)? else {
                continue;
            };
            let id = FileId::of(&meta);
            match (visible, stamp) {
                (true, None) => {
                    let mtime =
                        meta.modified()
                            .map(DateTime::<Local>::from)
                            .with_context(|| {
                                format!("reading the time of {}", entry.path().display())
                            })?;
                    series.latest = Some((id, mtime));
                }
                (true, Some(stamp)) => series.dated.push((stamp, id)),
                (false, Some(stamp)) => series.hidden.push((stamp, id)),
                (false, None) => {}
            }
        }
        Ok(series)
    }

    fn stamps(&self) -> impl Iterator<Item = Stamp> + '_ {
        self.dated.iter().chain(&self.hidden).map(|(s, _)| *s)
    }
}

/// Whether a backup of `schedule` into `dir` rotates generations: it keeps more than
/// one, or dated ones are there (`keep` was lowered to 1, and they are pruned).
pub fn rotates(dir: &Path, schedule: &Schedule) -> Result<bool> {
    // An incremental chain is a series of generations, whatever `keep` says.
    if schedule.options.keep > 1 || schedule.options.incremental.is_some() {
        return Ok(true);
    }
    let series = Series::scan(dir, &schedule.name, schedule.compression())?;
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
) -> Result<Summary> {
    if !rotates(dir, schedule)? {
        return archive::create(request);
    }
    let (summary, out) = archive::create_aside(request)?;
    rotate(
        dir,
        &schedule.name,
        schedule.compression(),
        out,
        made,
        schedule.options.keep,
        schedule.options.incremental.is_some(),
    )
    .with_context(|| format!("putting the new {} in place", request.target.display()))?;
    Ok(summary)
}

/// Removes, on drop, the links made so far, unless the rotation got past its rename.
struct Undo(Vec<PathBuf>);

impl Drop for Undo {
    fn drop(&mut self) {
        for path in &self.0 {
            // Best effort: the error that brought us here is the one worth reporting.
            let _ = fs::remove_file(path);
        }
    }
}

/// Puts the finished archive `out` in place as the newest generation of NAME, keeps the
/// previous one under its dated name, and removes the oldest beyond `keep` (see the
/// module's documentation for the order and why it is safe).
fn rotate(
    dir: &Path,
    name: &str,
    compression: Compression,
    mut out: AtomicFile,
    made: DateTime<Local>,
    keep: u16,
    chained: bool,
) -> Result<()> {
    repair(dir, name, compression)?;
    let series = Series::scan(dir, name, compression)?;
    list::mark_started(out.file(), &made);
    out.sync()?;
    pause::at("written");
    let latest_path = dir.join(format!("{name}{}", compression.suffix()));

    // The previous archive's dated name: its hidden one, or one from its mtime.
    let previous = series.latest.map(|(id, mtime)| {
        let hidden = series
            .hidden
            .iter()
            .find(|(_, h)| *h == id)
            .map(|(s, _)| *s);
        let visible = series.dated.iter().find(|(_, d)| *d == id).map(|(s, _)| *s);
        match (hidden, visible) {
            (_, Some(stamp)) => (stamp, hidden, true),
            (Some(stamp), None) => (stamp, Some(stamp), false),
            (None, None) => (
                next_stamp(series.stamps(), mtime.naive_local()),
                None,
                false,
            ),
        }
    });
    let taken = series.stamps().chain(previous.map(|(s, _, _)| s));
    let stamp = next_stamp(taken, made.naive_local());

    let mut undo = Undo(Vec::new());
    let new_hidden = dir.join(hidden_file_name(name, stamp, compression));
    fs::hard_link(out.temp_path(), &new_hidden)
        .with_context(|| format!("linking the new archive as {}", new_hidden.display()))?;
    undo.0.push(new_hidden);
    atomic_file::sync_dir(dir)?;
    pause::at("linked");

    if let Some((stamp, _, false)) = previous {
        let kept = dir.join(dated_file_name(name, stamp, compression));
        fs::hard_link(&latest_path, &kept).with_context(|| {
            format!(
                "keeping the previous {} as {}",
                latest_path.display(),
                kept.display()
            )
        })?;
        undo.0.push(kept);
        atomic_file::sync_dir(dir)?;
    }
    pause::at("kept");

    out.commit()?;
    // The new archive is in place: nothing made so far is to be undone, and what is left
    // to do is tidying, which the next rotation finishes if this one cannot: a failure
    // now is a warning, not a failed backup.
    undo.0.clear();
    pause::at("renamed");
    let previous_hidden = previous.and_then(|(_, hidden, _)| hidden);
    if let Err(err) = tidy(
        dir,
        name,
        compression,
        previous_hidden,
        stamp,
        keep,
        chained,
    ) {
        warn!("{err:#}");
    }
    Ok(())
}

/// Step 5 of a rotation: removes the previous archive's hidden name and the oldest
/// generations beyond `keep`. `stamp` is the new archive's.
fn tidy(
    dir: &Path,
    name: &str,
    compression: Compression,
    previous_hidden: Option<Stamp>,
    stamp: Stamp,
    keep: u16,
    chained: bool,
) -> Result<()> {
    if let Some(hidden) = previous_hidden {
        remove(&dir.join(hidden_file_name(name, hidden, compression)))?;
    }
    let mut generations: Vec<Generation> = Series::scan(dir, name, compression)?
        .dated
        .into_iter()
        .filter(|(s, _)| *s != stamp)
        .map(|(stamp, _)| Generation {
            file_name: dated_file_name(name, stamp, compression),
            stamp: Some(stamp),
        })
        .collect();
    generations.sort_by_key(|g| Reverse(g.stamp));
    generations.insert(
        0,
        Generation {
            file_name: format!("{name}{}", compression.suffix()),
            stamp: Some(stamp),
        },
    );
    let removed = if chained {
        // Whole chains only: an archive that a kept one depends on stays. One that
        // cannot be read counts as a full, so that nothing older is pruned for it.
        to_remove_chains(&generations, keep, |g| {
            archive::is_full(&dir.join(&g.file_name), compression).unwrap_or(true)
        })
    } else {
        to_remove(&generations, keep)
    };
    for old in removed {
        remove(&dir.join(&old.file_name))?;
        info!("Removed {BACKUPS_DIR}/{} (keep={keep})", old.file_name);
        pause::at("pruned");
    }
    if keep == 1 && !chained {
        // Back to one plain archive (keep was lowered to 1): no dated name is left, and
        // the next backup is a plain one again.
        remove(&dir.join(hidden_file_name(name, stamp, compression)))?;
    }
    atomic_file::sync_dir(dir)
}

fn remove(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
    }
}

/// Step 0 of a rotation: a hidden dated name that is not the current `NAME.tar` is a
/// whole archive left by a rotation that a crash stopped. It is shown under its dated
/// name, or dropped when that name is already the same file.
fn repair(dir: &Path, name: &str, compression: Compression) -> Result<()> {
    let series = Series::scan(dir, name, compression)?;
    let latest = series.latest.map(|(id, _)| id);
    let mut changed = false;
    for (stamp, id) in &series.hidden {
        if Some(*id) == latest {
            continue;
        }
        let hidden = dir.join(hidden_file_name(name, *stamp, compression));
        let visible = dir.join(dated_file_name(name, *stamp, compression));
        match series.dated.iter().find(|(s, _)| s == stamp) {
            Some((_, same)) if same == id => remove(&hidden)?,
            Some(_) => {
                warn!(
                    "{} and {} differ; both are left as they are",
                    hidden.display(),
                    visible.display()
                );
                continue;
            }
            None => {
                fs::rename(&hidden, &visible).with_context(|| {
                    format!("renaming {} to {}", hidden.display(), visible.display())
                })?;
                info!(
                    "Kept {BACKUPS_DIR}/{}, made by an interrupted backup",
                    dated_file_name(name, *stamp, compression)
                );
            }
        }
        changed = true;
    }
    if changed {
        atomic_file::sync_dir(dir)?;
    }
    Ok(())
}
