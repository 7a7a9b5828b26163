//! A schedule's chain: whether the next backup is full or incremental, the record kept
//! beside the archives, and which archive starts a chain.
//!
//! # The record and the archive change together
//!
//! The new record is written aside (`.NAME.record.PID.partial`) while the archive is
//! written, and renamed over `backups/.NAME.record` only once the archive is in place.
//! A crash before the archive's rename leaves both as they were (the next run redoes
//! the backup). A crash between the two renames leaves the new archive with the older
//! record: the next incremental then stores what changed since the backup before,
//! a superset of what changed since the last one, which restores the same tree. The
//! opposite order could record a backup that no archive holds, so it is never used.

use std::cell::RefCell;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{DateTime, Local, TimeZone};

use super::list;
use crate::archive::{Summary, is_full};
use crate::atomic_file::AtomicFile;
use crate::home::RECORDS_DIR;
use crate::incremental::Tracker;
use crate::incremental::record::{self, Head};
use crate::naming::{Format, parse_file_name};
use crate::nofollow::{self, Access};
use crate::schedule::{Incremental, Schedule};

/// The record's mode: private, like the archives.
const RECORD_MODE: u32 = 0o600;

/// Where the record of `name`'s chain is kept, beside its archives.
pub fn record_path(backups: &Path, name: &str) -> PathBuf {
    backups.join(format!(".{name}.record"))
}

/// Where the record of `schedule`'s chain is kept: beside its archives, or, for an
/// encrypted schedule, in the home's `.records/` (mode 0700, made if missing): the record
/// names every file of the tree, and nothing under `backups/` may, once the archives are
/// encrypted (a record left there from before is removed). `backups` is the home's
/// backups folder.
pub fn record_path_for(backups: &Path, schedule: &Schedule) -> Result<PathBuf> {
    if !schedule.options.is_encrypted() {
        return Ok(record_path(backups, &schedule.name));
    }
    // A record left in `backups/` from before the schedule was encrypted names files.
    let stale = record_path(backups, &schedule.name);
    fs::remove_file(&stale).or_else(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Ok(()),
        _ => Err(e).with_context(|| format!("removing {}", stale.display())),
    })?;
    let dir = backups.parent().unwrap_or(Path::new(".")).join(RECORDS_DIR);
    match nix::unistd::mkdir(&dir, nix::sys::stat::Mode::from_bits_truncate(0o700)) {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
        Err(e) => return Err(e).with_context(|| format!("creating folder {}", dir.display())),
    }
    nofollow::folder(&dir, false)
        .with_context(|| format!("opening records folder {}", dir.display()))?;
    Ok(dir.join(format!("{}.record", schedule.name)))
}

/// Removes the record of `schedule`'s chain (none is fine), so that its next backup is a
/// full one: after the keys an encrypted schedule is sealed to change, an incremental
/// sealed to the new keys would need, to be restored, a full that only the old ones open.
pub fn forget(backups: &Path, schedule: &Schedule) -> Result<()> {
    let path = record_path_for(backups, schedule)?;
    fs::remove_file(&path).or_else(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Ok(()),
        _ => Err(e).with_context(|| format!("removing {}", path.display())),
    })
}

/// Whether a backup at `now` must be a full one, for a chain whose full backup started
/// at `chain_start`: once that is `full_every_days` calendar days back (local dates, so
/// that a DST change does not move a daily backup across the boundary).
pub fn needs_full<Tz: TimeZone>(
    chain_start: &DateTime<Tz>,
    now: &DateTime<Tz>,
    settings: Incremental,
) -> bool {
    let days = (now.date_naive() - chain_start.date_naive()).num_days();
    days >= i64::from(settings.full_every_days)
}

/// A backup under way in a chain: its tracker, and the new record written aside.
pub struct Step {
    /// The tracker the archive's walk uses.
    pub tracker: RefCell<Tracker>,
    /// Whether this backup is a full one.
    pub full: bool,
    record: AtomicFile,
}

impl std::fmt::Debug for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Step").field("full", &self.full).finish()
    }
}

/// Prepares the next backup of `schedule`'s chain, started at `now`: an incremental one
/// when the record of the previous backup is whole, is of the same source, the newest
/// archive `latest` is there, and the chain's full is recent enough; a full one
/// otherwise. A record that cannot be used is said in the warning returned, never
/// used.
pub fn start(
    backups: &Path,
    schedule: &Schedule,
    settings: Incremental,
    latest: &Path,
    now: DateTime<Local>,
) -> Result<(Step, Option<String>)> {
    let (path, reader, chain_start, warning) = previous(backups, schedule, settings, latest, now)?;
    let full = reader.is_none();
    let mut record = AtomicFile::create(&path, RECORD_MODE)?;
    let file = record
        .file()
        .try_clone()
        .with_context(|| format!("writing {}", path.display()))?;
    let head = Head {
        chain_start,
        source: schedule.path.as_bytes().to_vec(),
        keys: Some(keys_of(schedule)),
    };
    let tracker = Tracker::new(reader, file, &head)?;
    Ok((
        Step {
            tracker: RefCell::new(tracker),
            full,
            record,
        },
        warning,
    ))
}

/// For `run --dry-run`: the tracker [`start`] would give, deciding what the next backup
/// stores by the same record, but writing its new record to `/dev/null`: nothing is
/// written. Says whether that backup would be a full one.
pub fn dry_start(
    backups: &Path,
    schedule: &Schedule,
    settings: Incremental,
    latest: &Path,
    now: DateTime<Local>,
) -> Result<(RefCell<Tracker>, bool)> {
    let (_, reader, chain_start, _) = previous(backups, schedule, settings, latest, now)?;
    let full = reader.is_none();
    let null = fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .context("opening /dev/null")?;
    let head = Head {
        chain_start,
        source: schedule.path.as_bytes().to_vec(),
        keys: Some(keys_of(schedule)),
    };
    Ok((RefCell::new(Tracker::new(reader, null, &head)?), full))
}

/// What [`previous`] finds: the record's path; its reader and files to try again, if
/// the record can be used; when the chain started; and why the record cannot be used.
type Previous = (
    PathBuf,
    Option<(record::Reader<fs::File>, record::Retries)>,
    i64,
    Option<String>,
);

/// The record a chain's next backup compares with, if it can be used (see [`start`]).
fn previous(
    backups: &Path,
    schedule: &Schedule,
    settings: Incremental,
    latest: &Path,
    now: DateTime<Local>,
) -> Result<Previous> {
    let path = record_path_for(backups, schedule)?;
    let mut warning = None;
    let previous = match record::check(&path) {
        Ok(Some(head)) => Some(head),
        Ok(None) => None,
        Err(err) => {
            warning = Some(format!(
                "the record of the previous backup cannot be used ({err:#}); this backup \
                 is a full one"
            ));
            None
        }
    };
    let usable = previous.filter(|(head, _)| {
        let start = Local.timestamp_opt(head.chain_start, 0).single();
        head.source == schedule.path.as_bytes()
            && same_keys(head, schedule)
            && latest.exists()
            && start.is_some_and(|start| !needs_full(&start, &now, settings))
    });
    // An incremental needs the chain it extends whole: a full removed by hand starts a
    // new chain.
    let usable = match usable {
        Some(previous) => {
            let file_name = schedule.archive_file_name();
            match chain_to(backups, &file_name, schedule.format()) {
                Ok(_) => Some(previous),
                Err(err) => {
                    warning = Some(format!(
                        "the chain cannot be extended ({err:#}); this backup is a full one"
                    ));
                    None
                }
            }
        }
        None => None,
    };
    let (reader, chain_start) = match usable {
        Some((head, retries)) => {
            let file = nofollow::open_file(&path, Access::Read, 0)
                .with_context(|| format!("opening {}", path.display()))?;
            let (reader, _) =
                record::Reader::new(file).with_context(|| format!("reading {}", path.display()))?;
            (Some((reader, retries)), head.chain_start)
        }
        None => (None, now.timestamp()),
    };
    Ok((path, reader, chain_start, warning))
}

/// The keys `schedule` seals its archives to, as a record keeps them: one a line, an
/// SSH key without its comment, sorted and each once; nothing for a schedule in clear.
pub fn keys_of(schedule: &Schedule) -> Vec<u8> {
    let mut keys: Vec<String> = schedule
        .options
        .encrypt
        .iter()
        .map(|key| {
            let fields: Vec<&str> = key.as_str().split_whitespace().collect();
            match key.is_ssh() {
                true => fields[..fields.len().min(2)].join(" "),
                false => fields.join(" "),
            }
        })
        .collect();
    keys.sort();
    keys.dedup();
    keys.iter()
        .flat_map(|k| [k.as_bytes(), b"\n"])
        .flatten()
        .copied()
        .collect()
}

/// Whether the chain of the record `head` was sealed to the keys `schedule` seals to
/// now (or both are in clear). An incremental sealed to other keys than its full would
/// need two identities to restore, and one in clear would follow encrypted ones: the
/// schedule deleted and made again with new keys, or its keys edited by hand, starts a
/// new chain. A record of the layout before, which kept no keys, is of a chain in clear
/// (an encrypted schedule's chain then starts again once).
fn same_keys(head: &Head, schedule: &Schedule) -> bool {
    let (same, why) = match &head.keys {
        Some(keys) => (*keys == keys_of(schedule), "was written for other keys"),
        None => (
            !schedule.options.is_encrypted(),
            "has a record of an earlier version, which kept no keys",
        ),
    };
    if !same {
        log::info!(
            "The chain of {} {why}; its next backup is a full one",
            schedule.name
        );
    }
    same
}

/// For a schedule with `incremental`, [`start`] its next backup; `None` for others.
pub fn start_for(
    backups: &Path,
    schedule: &Schedule,
    latest: &Path,
    now: DateTime<Local>,
) -> Result<Option<(Step, Option<String>)>> {
    schedule
        .options
        .incremental
        .map(|settings| start(backups, schedule, settings, latest, now))
        .transpose()
}

/// Once the archive is in place: puts the record in place, and adds to the summary the
/// warning of an unusable record. A record that cannot be put in place is a warning:
/// the archive is whole, and the next backup, compared with the older record, stores a
/// little more than it needs to.
pub fn finish(step: Option<(Step, Option<String>)>, mut summary: Summary) -> Summary {
    if let Some((step, warning)) = step {
        summary.warnings.extend(warning);
        if let Err(err) = step.commit() {
            summary.warnings.push(format!("{err:#}"));
        }
    }
    summary
}

impl Step {
    /// Puts the new record in place: call once the archive is in place, never before.
    pub fn commit(self) -> Result<()> {
        let Step {
            tracker, record, ..
        } = self;
        drop(tracker.into_inner().finish()?);
        let mut record = record;
        record.sync()?;
        record.commit()
    }
}

/// The archives to restore, in order, to get the tree as it was at the archive
/// `file_name` in `backups`: itself when it is a full one; otherwise the full backup it
/// depends on and every incremental after it, up to it.
pub fn chain_to(backups: &Path, file_name: &str, format: Format) -> Result<Vec<PathBuf>> {
    let target = backups.join(file_name);
    if is_full(&target, format)? {
        return Ok(vec![target]);
    }
    let name = parse_file_name(file_name).map_or(file_name, |(name, _, _)| name);
    // Newest first, as `backups` lists them.
    let series: Vec<String> = list(backups)?
        .into_iter()
        .filter(|a| a.schedule == name && a.format() == format)
        .map(|a| a.name)
        .collect();
    // The newest is listed as NAME.tar; its lasting dated name is the same file.
    let same_file = |n: &String| {
        let id = |p: &Path| fs::symlink_metadata(p).ok().map(|m| (m.dev(), m.ino()));
        id(&backups.join(n)).is_some_and(|found| id(&target) == Some(found))
    };
    let at = series
        .iter()
        .position(|n| n == file_name)
        .or_else(|| series.iter().position(same_file))
        .with_context(|| format!("{file_name} is not among the archives of {name}"))?;
    let mut chain = vec![target];
    for older in &series[at + 1..] {
        let path = backups.join(older);
        let full = is_full(&path, format)?;
        chain.push(path);
        if full {
            chain.reverse();
            return Ok(chain);
        }
    }
    anyhow::bail!(
        "{file_name} is an incremental backup, and the full backup it depends on is no \
         longer in {}",
        backups.display()
    )
}

/// A schedule's current chain, as `status` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Chain {
    /// When its full backup was made.
    pub full_made: DateTime<chrono::FixedOffset>,
    /// How many incrementals follow it.
    pub incrementals: usize,
    /// The first day whose backup will be a full one.
    pub next_full: chrono::NaiveDate,
}

/// The current chain of an incremental `schedule`: its newest archive back to the full
/// one. `None` for a schedule that is not incremental or has no archive yet.
pub fn current(backups: &Path, schedule: &Schedule) -> Result<Option<Chain>> {
    let Some(settings) = schedule.options.incremental else {
        return Ok(None);
    };
    let format = schedule.format();
    let series = list(backups)?
        .into_iter()
        .filter(|a| a.schedule == schedule.name && a.format() == format);
    for (incrementals, archive) in series.enumerate() {
        if is_full(&backups.join(&archive.name), format)? {
            let next_full =
                archive.made.date_naive() + chrono::Days::new(u64::from(settings.full_every_days));
            return Ok(Some(Chain {
                full_made: archive.made,
                incrementals,
                next_full,
            }));
        }
    }
    Ok(None)
}

/// How a message about an archive mentions the chain it completes: nothing for a full
/// one, ` with the N archives before it in its chain` for an incremental one.
pub fn describe(chain_len: usize) -> String {
    match chain_len {
        0 | 1 => String::new(),
        2 => " with the full backup it depends on".to_owned(),
        n => format!(
            " with the full backup and {} incremental{} it depends on",
            n - 2,
            if n == 3 { "" } else { "s" }
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use chrono_tz::Europe::Paris;

    const WEEK: Incremental = Incremental { full_every_days: 7 };

    fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<chrono_tz::Tz> {
        Paris
            .from_local_datetime(
                &NaiveDate::from_ymd_opt(y, m, d)
                    .unwrap()
                    .and_hms_opt(h, min, 0)
                    .unwrap(),
            )
            .earliest()
            .unwrap()
    }

    #[test]
    fn a_full_comes_once_the_chain_is_n_calendar_days_old() {
        let start = at(2026, 11, 1, 2, 30);
        assert!(!needs_full(&start, &at(2026, 11, 1, 23, 59), WEEK));
        assert!(!needs_full(&start, &at(2026, 11, 7, 23, 59), WEEK));
        // Across midnight into the seventh day: full, even at an earlier hour.
        assert!(needs_full(&start, &at(2026, 11, 8, 0, 0), WEEK));
        assert!(needs_full(&start, &at(2026, 12, 8, 2, 30), WEEK));
    }

    #[test]
    fn dst_changes_do_not_move_the_day_of_the_full() {
        // Spring forward on 29 March 2026: the week from 02:30 on the 23rd is an hour
        // short, still the same day count.
        let start = at(2026, 3, 23, 3, 0);
        assert!(!needs_full(&start, &at(2026, 3, 29, 23, 0), WEEK));
        assert!(needs_full(&start, &at(2026, 3, 30, 3, 0), WEEK));
        // Fall back on 25 October 2026: an hour longer, not a day more.
        let start = at(2026, 10, 19, 2, 30);
        assert!(!needs_full(&start, &at(2026, 10, 25, 23, 30), WEEK));
        assert!(needs_full(&start, &at(2026, 10, 26, 0, 30), WEEK));
    }

    #[test]
    fn a_daily_chain_restarts_after_one_day() {
        let daily = Incremental { full_every_days: 1 };
        let start = at(2026, 1, 1, 23, 59);
        assert!(!needs_full(&start, &at(2026, 1, 1, 23, 59), daily));
        assert!(needs_full(&start, &at(2026, 1, 2, 0, 0), daily));
    }
}
