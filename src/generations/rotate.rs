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
use super::{Decision, Generation, decide};
use crate::archive;
use crate::atomic_file;
use crate::home::BACKUPS_DIR;
use crate::index;
use crate::naming::{Format, Stamp, dated_file_name, hidden_file_name, next_stamp};
use crate::pause;
use crate::retention::Policy;

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    /// The new generation's lasting file name, `NAME.YYYY-MM-DD_HHMM.tar`.
    pub lasting: String,
    /// The file names it removed, oldest first.
    pub pruned: Vec<String>,
}

/// How the series is kept: its retention policy, and whether it forms chains.
#[derive(Debug, Clone, Copy)]
pub struct Keeping {
    /// The retention policy.
    pub policy: Policy,
    /// Whether the generations form incremental chains.
    pub chained: bool,
}

impl Keeping {
    /// The policy as the log says it: `keep=3`, `keep=1, keep-daily=7`.
    pub fn shown(&self) -> String {
        let mut shown = format!("keep={}", self.policy.last);
        for (rule, n) in self.policy.periods.counts() {
            if n > 0 {
                shown.push_str(&format!(", {}={n}", rule.option()));
            }
        }
        if let Some(within) = self.policy.periods.within {
            shown.push_str(&format!(", keep-within={within}"));
        }
        shown
    }

    /// Whether the series is back to one plain archive: keep=1 and nothing else.
    fn is_plain(&self) -> bool {
        self.policy.last <= 1 && !self.policy.periods.any() && !self.chained
    }
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
    format: Format,
    mut out: archive::Aside,
    made: DateTime<Local>,
    keeping: Keeping,
) -> Result<Rotated> {
    repair(dir, name, format)?;
    let series = Series::scan(dir, name, format)?;
    super::list::mark_started(out.archive.file(), &made);
    out.sync()?;
    pause::at("written");
    let latest_path = dir.join(format!("{name}{}", format.suffix()));
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
    let lasting = dated_file_name(name, stamp, format);
    let lasting_path = dir.join(&lasting);
    fs::hard_link(out.archive.temp_path(), &lasting_path)
        .with_context(|| format!("linking the new archive as {}", lasting_path.display()))?;
    undo.0.push(lasting_path.clone());
    if let Some(index_out) = &out.index {
        let lasting_index = index::sidecar(&lasting_path);
        fs::hard_link(index_out.temp_path(), &lasting_index)
            .with_context(|| format!("linking the new index as {}", lasting_index.display()))?;
        undo.0.push(lasting_index);
    }
    atomic_file::sync_dir(dir)?;
    pause::at("linked");

    if let Some(stamp) = previous {
        let kept = dir.join(dated_file_name(name, stamp, format));
        fs::hard_link(&latest_path, &kept).with_context(|| {
            format!(
                "keeping the previous {} as {}",
                latest_path.display(),
                kept.display()
            )
        })?;
        undo.0.push(kept.clone());
        keep_index(&latest_path, &kept, &mut undo)?;
        atomic_file::sync_dir(dir)?;
    }
    pause::at("kept");

    out.commit()?;
    // The new archive is in place: nothing made so far is to be undone, and what is left
    // to do is tidying, which the next rotation finishes if this one cannot: a failure
    // now is a warning, not a failed backup.
    undo.0.clear();
    pause::at("renamed");
    let pruned = tidy(dir, name, format, stamp, keeping).unwrap_or_else(|err| {
        warn!("{err:#}");
        Vec::new()
    });
    Ok(Rotated { lasting, pruned })
}

/// The last step of a rotation: removes hidden dated names an earlier version left, and
/// the generations the policy does not keep. `stamp` is the new archive's. Returns what
/// it removed.
fn tidy(
    dir: &Path,
    name: &str,
    format: Format,
    stamp: Stamp,
    keeping: Keeping,
) -> Result<Vec<String>> {
    let series = Series::scan(dir, name, format)?;
    for (hidden, _) in &series.hidden {
        remove(&dir.join(hidden_file_name(name, *hidden, format)))?;
    }
    let generations = newest_first(name, format, &series, Some(stamp));
    let pruned = prune(
        dir,
        &decide_for(dir, format, &generations, keeping),
        keeping,
    )?;
    if keeping.is_plain() {
        // Back to one plain archive (keep was lowered to 1): no dated name is left, and
        // the next backup is a plain one again.
        remove(&dir.join(dated_file_name(name, stamp, format)))?;
    }
    remove_orphan_indexes(dir, name, format)?;
    atomic_file::sync_dir(dir)?;
    Ok(pruned)
}

/// Removes the indexes of NAME whose archive is gone (removed by hand, or by a rotation
/// that stopped between the two).
pub(super) fn remove_orphan_indexes(dir: &Path, name: &str, format: Format) -> Result<()> {
    let entries = fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        let Ok(file_name) = entry.file_name().into_string() else {
            continue;
        };
        let Some(archive) = index::archive_of(&file_name) else {
            continue;
        };
        let ours = crate::naming::parse_file_name(archive)
            .is_some_and(|(n, _, f)| n == name && f == format);
        if ours && fs::symlink_metadata(dir.join(archive)).is_err() {
            remove_one(&entry.path())?;
        }
    }
    Ok(())
}

/// The generations of `series`, newest first: `NAME.tar` (made at `newest`, or at its
/// own dated name's stamp), then the other dated ones.
pub(super) fn newest_first(
    name: &str,
    format: Format,
    series: &Series,
    newest: Option<Stamp>,
) -> Vec<Generation> {
    let newest = newest.or_else(|| series.latest_stamp().map(|(s, _)| s));
    let mut generations: Vec<Generation> = series
        .dated
        .iter()
        .filter(|(s, _)| Some(*s) != newest)
        .map(|(stamp, _)| Generation {
            file_name: dated_file_name(name, *stamp, format),
            stamp: Some(*stamp),
        })
        .collect();
    generations.sort_by_key(|g| Reverse(g.stamp));
    if series.latest.is_some() {
        generations.insert(
            0,
            Generation {
                file_name: format!("{name}{}", format.suffix()),
                stamp: newest,
            },
        );
    }
    generations
}

/// Removes the generations `decisions` does not keep, oldest first; returns their names.
pub(super) fn prune(dir: &Path, decisions: &[Decision], keeping: Keeping) -> Result<Vec<String>> {
    let mut pruned = Vec::new();
    for old in decisions.iter().rev().filter(|d| !d.kept()) {
        let file_name = &old.generation.file_name;
        remove(&dir.join(file_name))?;
        info!("Removed {BACKUPS_DIR}/{file_name} ({})", keeping.shown());
        pruned.push(file_name.clone());
        pause::at("pruned");
    }
    Ok(pruned)
}

/// What the policy of `keeping` decides for the generations of a series, newest first.
/// In a chain, an archive that a kept one depends on stays; one that cannot be read counts
/// as a full, so that nothing older is pruned for it.
pub(super) fn decide_for(
    dir: &Path,
    format: Format,
    newest_first: &[Generation],
    keeping: Keeping,
) -> Vec<Decision> {
    let mut is_full =
        |g: &Generation| archive::is_full(&dir.join(&g.file_name), format).unwrap_or(true);
    let chain: Option<&mut dyn FnMut(&Generation) -> bool> = if keeping.chained {
        Some(&mut is_full)
    } else {
        None
    };
    decide(newest_first, &keeping.policy, chain)
}

/// Links the index of the archive at `from`, if it has one, as that of `to`.
fn keep_index(from: &Path, to: &Path, undo: &mut Undo) -> Result<()> {
    let kept_index = index::sidecar(to);
    match fs::hard_link(index::sidecar(from), &kept_index) {
        Ok(()) => {
            undo.0.push(kept_index);
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e)
            .with_context(|| format!("keeping the previous index as {}", kept_index.display())),
    }
}

/// Removes the archive at `path` and its index; one already gone is no error.
pub(super) fn remove(path: &Path) -> Result<()> {
    remove_one(path)?;
    remove_one(&index::sidecar(path))
}

/// Removes the file at `path`; one already gone is no error.
fn remove_one(path: &Path) -> Result<()> {
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
fn repair(dir: &Path, name: &str, format: Format) -> Result<()> {
    let series = Series::scan(dir, name, format)?;
    let latest = series.latest.map(|(id, _)| id);
    let mut changed = false;
    for (stamp, id) in &series.hidden {
        if Some(*id) == latest {
            continue;
        }
        let hidden = dir.join(hidden_file_name(name, *stamp, format));
        let visible = dir.join(dated_file_name(name, *stamp, format));
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
                    dated_file_name(name, *stamp, format)
                );
            }
        }
        changed = true;
    }
    changed |= promote(dir, name, format, &series)?;
    if changed {
        atomic_file::sync_dir(dir)?;
    }
    Ok(())
}

/// Makes the newest dated generation `NAME.tar` when a rotation stopped between linking
/// it and renaming it into place. Only when `NAME.tar` itself keeps a dated name that
/// sorts before it, so that no generation is lost or reordered. Returns whether it did.
fn promote(dir: &Path, name: &str, format: Format, series: &Series) -> Result<bool> {
    let Some((newest, id)) = series.dated.iter().max_by_key(|(s, _)| *s) else {
        return Ok(false);
    };
    let latest = series.latest.map(|(id, _)| id);
    let own = series.latest_stamp().filter(|(_, visible)| *visible);
    let older = matches!(own, Some((stamp, _)) if stamp < *newest);
    if Some(*id) == latest || (latest.is_some() && !older) {
        return Ok(false);
    }
    let newest_path = dir.join(dated_file_name(name, *newest, format));
    let latest_path = dir.join(format!("{name}{}", format.suffix()));
    // Linked aside under a temporary name (not the new archive's own), then renamed over
    // `NAME.tar`: atomic.
    let temp = dir.join(format!(
        ".{name}{}.promoted.{}.partial",
        format.suffix(),
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
    // Its index goes with it, if it has one; without, readers fall back to the archive.
    let _ = fs::remove_file(index::sidecar(&temp));
    if fs::hard_link(index::sidecar(&newest_path), index::sidecar(&temp)).is_ok()
        && fs::rename(index::sidecar(&temp), index::sidecar(&latest_path)).is_err()
    {
        let _ = fs::remove_file(index::sidecar(&temp));
    }
    info!(
        "Kept {BACKUPS_DIR}/{} as {BACKUPS_DIR}/{name}{}, made by an interrupted backup",
        dated_file_name(name, *newest, format),
        format.suffix()
    );
    Ok(true)
}
