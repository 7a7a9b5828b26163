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
//!
//! A failure before step 4 undoes steps 2 and 3 (removes the links it made), so a failed
//! backup renames nothing and removes nothing. With `keep=1` and no dated archive of
//! the NAME, none of this happens: the archive is written aside and renamed into place,
//! as always.

use std::cmp::Reverse;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{DateTime, FixedOffset, Local, NaiveDate, NaiveDateTime, TimeZone, Timelike};
use log::{info, warn};
use nix::fcntl::{Flock, FlockArg};
use serde::Serialize;

use crate::archive::{self, Compression, Summary};
use crate::atomic_file::{self, AtomicFile};
use crate::home::BACKUPS_DIR;
use crate::schedule::Schedule;

/// When a generation was made, at minute precision, with a sequence number for a second
/// (third...) one in the same minute: `2026-11-22_0200`, `2026-11-22_0200-2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Stamp {
    /// The local minute (seconds are always 0).
    minute: NaiveDateTime,
    /// 1 for the first in its minute, written without a suffix.
    seq: u32,
}

impl Stamp {
    /// The stamp of an archive made at `time` (local), first in its minute.
    pub fn at(time: NaiveDateTime) -> Self {
        let minute = time
            .with_second(0)
            .and_then(|t| t.with_nanosecond(0))
            .expect("0 is a valid second and nanosecond");
        Self { minute, seq: 1 }
    }

    /// The local minute it names.
    pub fn minute(&self) -> NaiveDateTime {
        self.minute
    }

    /// The stamp as a time with its UTC offset; in the hour that happens twice, the
    /// first, and in a skipped hour, as if no change had happened.
    pub fn to_local(&self) -> DateTime<FixedOffset> {
        let local = Local.from_local_datetime(&self.minute);
        local
            .earliest()
            .unwrap_or_else(|| Local.from_utc_datetime(&self.minute))
            .fixed_offset()
    }

    /// Parses `YYYY-MM-DD_HHMM` or `YYYY-MM-DD_HHMM-K` (K from 2), exactly as written.
    pub fn parse(text: &str) -> Option<Self> {
        let b = text.as_bytes();
        if b.len() < 15 || b[4] != b'-' || b[7] != b'-' || b[10] != b'_' {
            return None;
        }
        let num = |range: std::ops::Range<usize>| -> Option<u32> {
            let part = &text[range];
            part.bytes()
                .all(|c| c.is_ascii_digit())
                .then(|| part.parse().ok())?
        };
        let date = NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?;
        let minute = date.and_hms_opt(num(11..13)?, num(13..15)?, 0)?;
        let seq = match &text[15..] {
            "" => 1,
            rest => {
                let digits = rest.strip_prefix('-')?;
                // Written as we write it: no leading zero, no `-1`.
                if digits.is_empty() || digits.starts_with('0') {
                    return None;
                }
                let seq = num(16..text.len())?;
                if seq < 2 {
                    return None;
                }
                seq
            }
        };
        Some(Self { minute, seq })
    }
}

impl fmt::Display for Stamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.minute.format("%Y-%m-%d_%H%M"))?;
        if self.seq > 1 {
            write!(f, "-{}", self.seq)?;
        }
        Ok(())
    }
}

/// The stamp for an archive made at `made`, given the stamps already taken: its own
/// minute, unless that is not after every one taken (a second backup in the minute, a
/// clock that went back), then the newest taken with the next sequence number. So a
/// new stamp never equals an old one and always sorts last.
pub fn next_stamp(taken: impl IntoIterator<Item = Stamp>, made: NaiveDateTime) -> Stamp {
    let wanted = Stamp::at(made);
    match taken.into_iter().max() {
        Some(newest) if newest >= wanted => Stamp {
            minute: newest.minute,
            seq: newest.seq + 1,
        },
        _ => wanted,
    }
}

/// The dated file name of a generation: `NAME.YYYY-MM-DD_HHMM[-K].tar[.gz|.zst]`.
pub fn dated_file_name(name: &str, stamp: Stamp, compression: Compression) -> String {
    format!("{name}.{stamp}{}", compression.suffix())
}

/// The hidden name of the newest generation's dated link: `.` and its dated name.
fn hidden_file_name(name: &str, stamp: Stamp, compression: Compression) -> String {
    format!(".{}", dated_file_name(name, stamp, compression))
}

/// What an archive's file name says: its schedule's NAME, its stamp when it is a dated
/// (older) generation, and its compression. `None` for what is not an archive name.
///
/// A NAME that itself ends in `.YYYY-MM-DD_HHMM` cannot be told from a dated generation
/// of a shorter NAME; such names are read as dated.
pub fn parse_file_name(file_name: &str) -> Option<(&str, Option<Stamp>, Compression)> {
    let compression = Compression::of_file_name(file_name)?;
    let base = &file_name[..file_name.len() - compression.suffix().len()];
    if let Some((name, stamp)) = base.rsplit_once('.') {
        if !name.is_empty() {
            if let Some(stamp) = Stamp::parse(stamp) {
                return Some((name, Some(stamp), compression));
            }
        }
    }
    Some((base, None, compression))
}

/// One generation in a list, newest first; the newest is `NAME.tar`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    /// Its file name in `backups/`.
    pub file_name: String,
    /// When it was made: the stamp of its dated name (for `NAME.tar`, of its hidden one),
    /// `None` for a `NAME.tar` that has none (made with `keep=1`).
    pub stamp: Option<Stamp>,
}

/// Which generations to remove so that `keep` remain, given them newest first: those
/// beyond the first `keep`. The newest is never removed (`keep` is at least 1).
///
/// This is the one place that decides what is pruned; a kind of archive that depends on
/// an older one (an incremental chain on its full backup) extends it here.
pub fn to_remove(newest_first: &[Generation], keep: u16) -> Vec<Generation> {
    let keep = usize::from(keep.max(1));
    newest_first.iter().skip(keep).cloned().collect()
}

/// A file's identity, to tell two names of one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    fn of(meta: &fs::Metadata) -> Self {
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
            let meta = match entry.metadata() {
                Ok(meta) if meta.is_file() => meta,
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(e).with_context(|| format!("reading {}", entry.path().display()));
                }
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
    if schedule.options.keep > 1 {
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
) -> Result<()> {
    repair(dir, name, compression)?;
    let series = Series::scan(dir, name, compression)?;
    out.sync()?;
    pause_at("written");
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
    pause_at("linked");

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
    pause_at("kept");

    out.commit()?;
    // The new archive is in place: nothing made so far is to be undone, and what is left
    // to do is tidying, which the next rotation finishes if this one cannot: a failure
    // now is a warning, not a failed backup.
    undo.0.clear();
    pause_at("renamed");
    let previous_hidden = previous.and_then(|(_, hidden, _)| hidden);
    if let Err(err) = tidy(dir, name, compression, previous_hidden, stamp, keep) {
        warn!("{err:#}");
    }
    Ok(())
}

/// Steps 5 of a rotation: removes the previous archive's hidden name and the oldest
/// generations beyond `keep`. `stamp` is the new archive's.
fn tidy(
    dir: &Path,
    name: &str,
    compression: Compression,
    previous_hidden: Option<Stamp>,
    stamp: Stamp,
    keep: u16,
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
    for old in to_remove(&generations, keep) {
        remove(&dir.join(&old.file_name))?;
        info!("Removed {BACKUPS_DIR}/{} (keep={keep})", old.file_name);
        pause_at("pruned");
    }
    if keep == 1 {
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

/// A test-only pause inside a rotation, so that a test can kill the process at a known
/// step: in debug builds, `BACKUP_TEST_PAUSE=STEP:FILE` makes the rotation create FILE
/// when it reaches STEP and wait there until FILE is removed. Release builds have none.
fn pause_at(step: &str) {
    #[cfg(debug_assertions)]
    if let Ok(spec) = std::env::var("BACKUP_TEST_PAUSE") {
        if let Some((at, marker)) = spec.split_once(':') {
            if at == step && fs::write(marker, step).is_ok() {
                while Path::new(marker).exists() {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            }
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = step;
}

/// The lock of one NAME, held while its archive is written and rotated: an exclusive
/// `flock` on `backups/.NAME.lock` (hidden, never listed), released when dropped or by
/// the kernel when the process dies. The file holds the holder's pid, for messages.
#[derive(Debug)]
pub struct NameLock {
    _lock: Flock<File>,
}

/// What [`lock`] got.
#[derive(Debug)]
pub enum Locked {
    /// The backup does not rotate generations: no lock is needed.
    NotNeeded,
    /// The lock, held until dropped.
    Held(NameLock),
    /// Another process holds it (its pid, when it wrote one); only without waiting.
    Busy(Option<u32>),
}

/// The lock file of NAME in `dir`.
pub fn lock_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{name}.lock"))
}

/// Takes the lock of `schedule`'s NAME in `dir` when its backup rotates generations.
///
/// With `waiting`, a held lock is waited for, and `waiting` is told first, with the
/// holder's pid (`run` says so on stderr). Without it, a held lock returns
/// [`Locked::Busy`]: the service does not wait, so that one long backup by hand cannot
/// hold up its other schedules; it runs the postponed one at its next look.
pub fn lock(
    dir: &Path,
    schedule: &Schedule,
    waiting: Option<&mut dyn FnMut(Option<u32>)>,
) -> Result<Locked> {
    if !rotates(dir, schedule)? {
        return Ok(Locked::NotNeeded);
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = lock_path(dir, &schedule.name);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("opening lock file {}", path.display()))?;
    let file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => lock,
        Err((file, nix::errno::Errno::EWOULDBLOCK)) => {
            let holder = read_pid(&file);
            let Some(waiting) = waiting else {
                return Ok(Locked::Busy(holder));
            };
            waiting(holder);
            Flock::lock(file, FlockArg::LockExclusive)
                .map_err(|(_, errno)| errno)
                .with_context(|| format!("locking {}", path.display()))?
        }
        Err((_, errno)) => {
            return Err(errno).with_context(|| format!("locking {}", path.display()));
        }
    };
    // For people and messages only; the lock is what counts.
    let mut file = file;
    let _ = file
        .set_len(0)
        .and_then(|()| file.write_all(format!("{}\n", std::process::id()).as_bytes()));
    Ok(Locked::Held(NameLock { _lock: file }))
}

fn read_pid(mut file: &File) -> Option<u32> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// An archive file in `backups/`, as `backups` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct Archive {
    /// Its file name.
    pub name: String,
    /// The NAME of the schedule that writes it.
    pub schedule: String,
    /// Whether it is its NAME's newest (`NAME.tar`) rather than an older, dated one.
    pub latest: bool,
    /// When it was made: from its dated name; for `NAME.tar`, from its hidden dated
    /// link, or its modification time when it has none.
    pub made: DateTime<FixedOffset>,
    /// Its size in bytes.
    pub bytes: u64,
    /// How it is compressed.
    pub compression: Compression,
    /// When it was last written (its mtime).
    pub modified: DateTime<FixedOffset>,
}

impl fmt::Display for Archive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// Every archive file in `dir`: each NAME's newest (`NAME.tar`) then its older ones,
/// newest first, NAMEs in the order of their archives' file names (so a home without
/// generations lists exactly its files, sorted by name). Hidden files are never listed,
/// and a dated name that is the same file as `NAME.tar` (left by a crash) is not listed
/// twice.
pub fn list(dir: &Path) -> Result<Vec<Archive>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries.collect::<Result<Vec<_>, _>>(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
    .with_context(|| format!("listing {}", dir.display()))?;
    struct Found {
        archive: Archive,
        stamp: Option<Stamp>,
        id: FileId,
    }
    let mut visible = Vec::new();
    let mut hidden = Vec::new();
    for entry in entries {
        let Ok(file_name) = entry.file_name().into_string() else {
            continue;
        };
        let is_hidden = file_name.starts_with('.');
        let Some((name, stamp, compression)) = parse_file_name(&file_name[is_hidden as usize..])
        else {
            continue;
        };
        if is_hidden && stamp.is_none() {
            continue;
        }
        let meta = match entry.metadata() {
            Ok(meta) if meta.is_file() => meta,
            Ok(_) => continue,
            // Replaced or removed while we listed: it is not there any more.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(e).with_context(|| format!("reading {}", entry.path().display()));
            }
        };
        if is_hidden {
            hidden.push((name.to_owned(), compression, stamp, FileId::of(&meta)));
            continue;
        }
        let modified = meta
            .modified()
            .with_context(|| format!("reading the time of {}", entry.path().display()))?;
        let modified = DateTime::<Local>::from(modified).fixed_offset();
        visible.push(Found {
            archive: Archive {
                schedule: name.to_owned(),
                latest: stamp.is_none(),
                made: stamp.map_or(modified, |s| s.to_local()),
                bytes: meta.len(),
                compression,
                modified,
                name: file_name,
            },
            stamp,
            id: FileId::of(&meta),
        });
    }
    let latest: Vec<(String, Compression, FileId)> = visible
        .iter()
        .filter(|f| f.archive.latest)
        .map(|f| (f.archive.schedule.clone(), f.archive.compression, f.id))
        .collect();
    let latest_id = |name: &str, compression: Compression| {
        latest
            .iter()
            .find(|(n, c, _)| n == name && *c == compression)
            .map(|(_, _, id)| *id)
    };
    // A dated name of NAME.tar's own file: the crash window of a rotation.
    visible.retain(|f| {
        f.archive.latest || latest_id(&f.archive.schedule, f.archive.compression) != Some(f.id)
    });
    for found in visible.iter_mut().filter(|f| f.archive.latest) {
        let a = &found.archive;
        let dated = hidden
            .iter()
            .filter(|(n, c, _, id)| *n == a.schedule && *c == a.compression && *id == found.id)
            .filter_map(|(_, _, stamp, _)| *stamp)
            .max();
        if let Some(stamp) = dated {
            found.archive.made = stamp.to_local();
            found.stamp = Some(stamp);
        }
    }
    visible.sort_by(|a, b| {
        let key = |f: &Found| {
            (
                format!("{}{}", f.archive.schedule, f.archive.compression.suffix()),
                !f.archive.latest,
                Reverse(if f.archive.latest { None } else { f.stamp }),
            )
        };
        // Two NAME.tar of one series sort by file name: a plain home's order.
        key(a)
            .cmp(&key(b))
            .then_with(|| a.archive.name.cmp(&b.archive.name))
    });
    Ok(visible.into_iter().map(|f| f.archive).collect())
}

/// What `status` shows of a schedule's generations: how many archives it has, and when
/// the oldest was made.
pub fn count(dir: &Path, schedule: &Schedule) -> Result<(usize, Option<DateTime<FixedOffset>>)> {
    let mine: Vec<Archive> = list(dir)?
        .into_iter()
        .filter(|a| a.schedule == schedule.name && a.compression == schedule.compression())
        .collect();
    let oldest = mine.iter().map(|a| a.made).min();
    Ok((mine.len(), oldest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    fn stamp(text: &str) -> Stamp {
        Stamp::parse(text).unwrap_or_else(|| panic!("{text} is not a stamp"))
    }

    #[test]
    fn stamps_read_back_as_written() {
        for text in ["2026-11-22_0200", "2026-11-22_2359-2", "1999-01-01_0000-17"] {
            assert_eq!(stamp(text).to_string(), text);
        }
        assert_eq!(
            Stamp::at(time("2026-11-22 02:00:59")).to_string(),
            "2026-11-22_0200"
        );
        for bad in [
            "2026-11-22_200",
            "2026-11-22_2400",
            "2026-02-30_0100",
            "2026-11-22_0200-1",
            "2026-11-22_0200-02",
            "2026-11-22_0200-",
            "2026-11-22_0200x",
            "2026-11-22-0200",
            "+026-11-22_0200",
        ] {
            assert_eq!(Stamp::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn stamps_order_by_minute_then_sequence() {
        assert!(stamp("2026-11-22_0200") < stamp("2026-11-22_0200-2"));
        assert!(stamp("2026-11-22_0200-9") < stamp("2026-11-22_0200-10"));
        assert!(stamp("2026-11-22_0200-10") < stamp("2026-11-22_0201"));
        // Across midnight and a year.
        assert!(stamp("2026-12-31_2359-3") < stamp("2027-01-01_0000"));
    }

    #[test]
    fn a_new_stamp_is_its_minute_or_after_every_one_taken() {
        let made = time("2026-11-22 02:00:30");
        assert_eq!(next_stamp([], made), stamp("2026-11-22_0200"));
        assert_eq!(
            next_stamp([stamp("2026-11-21_0200")], made),
            stamp("2026-11-22_0200")
        );
        // A second and a third in the same minute.
        assert_eq!(
            next_stamp([stamp("2026-11-22_0200")], made),
            stamp("2026-11-22_0200-2")
        );
        assert_eq!(
            next_stamp([stamp("2026-11-22_0200"), stamp("2026-11-22_0200-2")], made),
            stamp("2026-11-22_0200-3")
        );
        // The autumn DST change: 01:30 EDT, then 01:10 EST the same night. The later
        // backup must not sort before the earlier one.
        let later = next_stamp([stamp("2026-11-01_0130")], time("2026-11-01 01:10:00"));
        assert_eq!(later, stamp("2026-11-01_0130-2"));
        assert!(later > stamp("2026-11-01_0130"));
        // Across midnight.
        assert_eq!(
            next_stamp([stamp("2026-11-21_2359")], time("2026-11-22 00:00:00")),
            stamp("2026-11-22_0000")
        );
    }

    #[test]
    fn file_names_tell_name_stamp_and_compression() {
        let s = stamp("2026-11-22_0200-2");
        assert_eq!(
            dated_file_name("code", s, Compression::Zstd),
            "code.2026-11-22_0200-2.tar.zst"
        );
        assert_eq!(
            parse_file_name("code.2026-11-22_0200-2.tar.zst"),
            Some(("code", Some(s), Compression::Zstd))
        );
        assert_eq!(
            parse_file_name("code.tar.gz"),
            Some(("code", None, Compression::Gzip))
        );
        // NAMEs with dots, and dots that are not stamps.
        assert_eq!(
            parse_file_name("my.site.2026-11-22_0200.tar"),
            Some(("my.site", Some(stamp("2026-11-22_0200")), Compression::None))
        );
        assert_eq!(
            parse_file_name("my.site.tar"),
            Some(("my.site", None, Compression::None))
        );
        assert_eq!(
            parse_file_name("v1.2.tar"),
            Some(("v1.2", None, Compression::None))
        );
        assert_eq!(parse_file_name("notes.txt"), None);
        assert_eq!(parse_file_name(".tar"), None);
    }

    #[test]
    fn pruning_keeps_the_newest_n() {
        let gens: Vec<Generation> = ["x.tar", "x.c.tar", "x.b.tar", "x.a.tar"]
            .iter()
            .map(|n| Generation {
                file_name: (*n).to_owned(),
                stamp: None,
            })
            .collect();
        let names = |v: Vec<Generation>| v.into_iter().map(|g| g.file_name).collect::<Vec<_>>();
        assert_eq!(names(to_remove(&gens, 2)), ["x.b.tar", "x.a.tar"]);
        assert_eq!(names(to_remove(&gens, 4)), Vec::<String>::new());
        assert_eq!(names(to_remove(&gens, 1000)), Vec::<String>::new());
        assert_eq!(
            names(to_remove(&gens, 1)),
            ["x.c.tar", "x.b.tar", "x.a.tar"]
        );
        // 0 is not a valid keep; the newest stays whatever is asked.
        assert_eq!(names(to_remove(&gens, 0)).len(), 3);
    }
}
