//! One rotation: a new generation put in place under its lasting name and as `NAME.tar`,
//! the oldest beyond `keep` pruned, and what a crash left repaired first (see the
//! module's documentation for the order and why a crash at any step is safe).

use std::cmp::Reverse;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{DateTime, Local};
use log::{info, warn};

use super::series::Series;
use super::{Generation, to_remove, to_remove_chains};
use crate::archive;
use crate::atomic_file::{self, AtomicFile};
use crate::home::BACKUPS_DIR;
use crate::naming::{Compression, Stamp, dated_file_name, hidden_file_name, next_stamp};
use crate::pause;

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    /// The new generation's lasting file name, `NAME.YYYY-MM-DD_HHMM.tar`.
    pub lasting: String,
    /// The file names it removed, oldest first.
    pub pruned: Vec<String>,
}

/// How the series is kept: how many generations, and whether they form chains.
#[derive(Debug, Clone, Copy)]
pub(super) struct Keeping {
    pub(super) keep: u16,
    pub(super) chained: bool,
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

/// Puts the finished archive `out` in place as the newest generation of NAME, made at
/// `made`: under its lasting dated name, and as `NAME.tar`. The previous `NAME.tar`
/// keeps its own dated name, and the oldest generations beyond `keep` are removed.
pub(super) fn rotate(
    dir: &Path,
    name: &str,
    compression: Compression,
    mut out: AtomicFile,
    made: DateTime<Local>,
    keeping: Keeping,
) -> Result<Rotated> {
    repair(dir, name, compression)?;
    let series = Series::scan(dir, name, compression)?;
    out.sync()?;
    pause::at("written");
    let latest_path = dir.join(format!("{name}{}", compression.suffix()));
    // The previous archive's dated name, when it has no visible one yet (it was written
    // as a plain archive, or by an earlier version that kept it hidden).
    let previous = match (series.latest, series.latest_stamp()) {
        (Some(_), Some((_, true))) | (None, _) => None,
        (Some(_), Some((stamp, false))) => Some(stamp),
        (Some((_, mtime)), None) => Some(next_stamp(series.stamps(), mtime.naive_local())),
    };
    let taken = series.stamps().chain(previous);
    let stamp = next_stamp(taken, made.naive_local());

    let mut undo = Undo(Vec::new());
    let lasting = dated_file_name(name, stamp, compression);
    let lasting_path = dir.join(&lasting);
    fs::hard_link(out.temp_path(), &lasting_path)
        .with_context(|| format!("linking the new archive as {}", lasting_path.display()))?;
    undo.0.push(lasting_path);
    atomic_file::sync_dir(dir)?;
    pause::at("linked");

    if let Some(stamp) = previous {
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
    let pruned = tidy(dir, name, compression, stamp, keeping).unwrap_or_else(|err| {
        warn!("{err:#}");
        Vec::new()
    });
    Ok(Rotated { lasting, pruned })
}

/// The last step of a rotation: removes hidden dated names an earlier version left, and
/// the oldest generations beyond `keep`. `stamp` is the new archive's. Returns what it
/// removed.
fn tidy(
    dir: &Path,
    name: &str,
    compression: Compression,
    stamp: Stamp,
    keeping: Keeping,
) -> Result<Vec<String>> {
    let series = Series::scan(dir, name, compression)?;
    for (hidden, _) in &series.hidden {
        remove(&dir.join(hidden_file_name(name, *hidden, compression)))?;
    }
    let mut generations: Vec<Generation> = series
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
    let Keeping { keep, chained } = keeping;
    let removed = if chained {
        // Whole chains only: an archive that a kept one depends on stays. One that
        // cannot be read counts as a full, so that nothing older is pruned for it.
        to_remove_chains(&generations, keep, |g| {
            archive::is_full(&dir.join(&g.file_name), compression).unwrap_or(true)
        })
    } else {
        to_remove(&generations, keep)
    };
    let mut pruned = Vec::new();
    for old in removed.into_iter().rev() {
        remove(&dir.join(&old.file_name))?;
        info!("Removed {BACKUPS_DIR}/{} (keep={keep})", old.file_name);
        pruned.push(old.file_name);
        pause::at("pruned");
    }
    if keep == 1 && !chained {
        // Back to one plain archive (keep was lowered to 1): no dated name is left, and
        // the next backup is a plain one again.
        remove(&dir.join(dated_file_name(name, stamp, compression)))?;
    }
    atomic_file::sync_dir(dir)?;
    Ok(pruned)
}

/// Removes the file at `path`; one already gone is no error.
pub(super) fn remove(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
    }
}

/// The first step of a rotation: finishes what a crash left. A hidden dated name that is
/// not `NAME.tar` (left by an earlier version) is shown under its dated name; a dated
/// generation newer than `NAME.tar` (a rotation stopped before its rename) becomes
/// `NAME.tar`.
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
    changed |= promote(dir, name, compression, &series)?;
    if changed {
        atomic_file::sync_dir(dir)?;
    }
    Ok(())
}

/// Makes the newest dated generation `NAME.tar` when a rotation stopped between linking
/// it and renaming it into place. Only when `NAME.tar` itself keeps a dated name that
/// sorts before it, so that no generation is lost or reordered. Returns whether it did.
fn promote(dir: &Path, name: &str, compression: Compression, series: &Series) -> Result<bool> {
    let Some((newest, id)) = series.dated.iter().max_by_key(|(s, _)| *s) else {
        return Ok(false);
    };
    let latest = series.latest.map(|(id, _)| id);
    let own = series.latest_stamp().filter(|(_, visible)| *visible);
    let older = matches!(own, Some((stamp, _)) if stamp < *newest);
    if Some(*id) == latest || (latest.is_some() && !older) {
        return Ok(false);
    }
    let newest_path = dir.join(dated_file_name(name, *newest, compression));
    let latest_path = dir.join(format!("{name}{}", compression.suffix()));
    // Linked aside under a temporary name (not the new archive's own), then renamed over
    // `NAME.tar`: atomic.
    let temp = dir.join(format!(
        ".{name}{}.promoted.{}.partial",
        compression.suffix(),
        std::process::id()
    ));
    remove(&temp)?;
    fs::hard_link(&newest_path, &temp)
        .with_context(|| format!("linking {} as {}", newest_path.display(), temp.display()))?;
    if let Err(e) = fs::rename(&temp, &latest_path) {
        let _ = fs::remove_file(&temp);
        return Err(e).with_context(|| {
            format!("renaming {} over {}", temp.display(), latest_path.display())
        });
    }
    info!(
        "Kept {BACKUPS_DIR}/{} as {BACKUPS_DIR}/{name}{}, made by an interrupted backup",
        dated_file_name(name, *newest, compression),
        compression.suffix()
    );
    Ok(true)
}
