//! What the service remembers of each schedule: when it first saw it, the occurrence it
//! last served, and how the last run went. Kept in `.backup_state.json` in the home.
//!
//! The file is a cache of facts, not a source of truth: when it is missing or unreadable,
//! the service says so and starts afresh, which at worst makes it wait for tomorrow for a
//! schedule whose time today has passed. Every change is a locked read-modify-write with
//! an atomic replace, since the service, `run` and `delete` all update it.

use std::collections::BTreeMap;
use std::fs::File;

use anyhow::{Context, Result};
use chrono::{DateTime, FixedOffset};
use nix::fcntl::Flock;
use serde::{Deserialize, Serialize};

use crate::atomic_file;
use crate::edit_lock;
use crate::home::Home;
use crate::nofollow;

/// The state of every schedule, keyed by the schedule's line.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// One record per schedule line.
    pub schedules: BTreeMap<String, Record>,
}

/// What is known of one schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// When the schedule was first seen (created, or found by the service).
    pub first_seen: DateTime<FixedOffset>,
    /// The occurrence its last scheduled run was for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_served: Option<DateTime<FixedOffset>>,
    /// How its last run went, scheduled or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<Run>,
    /// When its last run that wrote an archive (done, or done with warnings) started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success: Option<DateTime<FixedOffset>>,
}

impl Record {
    /// A record for a schedule first seen at `now`.
    pub fn new(now: DateTime<FixedOffset>) -> Self {
        Self {
            first_seen: now,
            last_served: None,
            last_run: None,
            last_success: None,
        }
    }
}

/// The outcome of one backup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// When it started.
    pub started: DateTime<FixedOffset>,
    /// How long it took, in seconds.
    pub duration_secs: f64,
    /// How it ended.
    pub outcome: Outcome,
    /// Size of the archive written, in bytes (0 when it failed).
    pub bytes: u64,
    /// Entries in the archive.
    pub entries: u64,
    /// The warnings (files skipped or changed while read), or the error, as sentences.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<String>,
    /// How many warnings there were; `messages` keeps only the first ones.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub warning_count: u64,
    /// Whether it was started by hand (`backup_manager run`) rather than by the schedule.
    #[serde(default)]
    pub manual: bool,
    /// The hooks that failed, timed out or were skipped around it, one sentence each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// How a backup ended, from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A complete archive of the source.
    Ok,
    /// An archive was written, but some files could not be read as they were.
    Warnings,
    /// No archive was written; the previous one, if any, is unchanged.
    Failed,
}

impl Outcome {
    /// The word shown by `status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Warnings => "done with warnings",
            Outcome::Failed => "failed",
        }
    }
}

/// Reads the state file. A missing file is an empty state; a corrupt one is an empty state
/// plus the reason, for the caller to log; a file that cannot be read is an error.
pub fn load(home: &Home) -> Result<(State, Option<String>)> {
    let path = home.state();
    // Never through a link planted there: its target's text would show in the error.
    let bytes = match nofollow::read(&path) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Ok((State::default(), None)),
        // A passing error (too many open files, EIO) must not cost the whole history.
        Err(e) => return Err(e).with_context(|| format!("reading state file {}", path.display())),
    };
    Ok(match serde_json::from_slice(&bytes) {
        Ok(state) => (state, None),
        Err(e) => (
            State::default(),
            Some(format!(
                "state file {} is corrupt ({e}); starting afresh",
                path.display()
            )),
        ),
    })
}

/// Applies `change` to the state under the state lock and saves it if it changed.
///
/// `on_problem` hears about a corrupt file that was replaced by a fresh state.
pub fn update<T>(
    home: &Home,
    on_problem: impl FnOnce(&str),
    change: impl FnOnce(&mut State) -> T,
) -> Result<T> {
    lock(home)?.update(on_problem, change)
}

/// Takes the state lock, waiting for other holders, for edits that must happen together
/// with it held (see [`Locked::update`]).
pub fn lock(home: &Home) -> Result<Locked<'_>> {
    Ok(Locked {
        home,
        _lock: edit_lock::lock(&home.state_lock())?,
    })
}

/// The state lock, held until dropped.
#[derive(Debug)]
pub struct Locked<'h> {
    home: &'h Home,
    _lock: Flock<File>,
}

impl Locked<'_> {
    /// Applies `change` to the state and saves it if it changed.
    ///
    /// `on_problem` hears about a corrupt file that was replaced by a fresh state.
    pub fn update<T>(
        &self,
        on_problem: impl FnOnce(&str),
        change: impl FnOnce(&mut State) -> T,
    ) -> Result<T> {
        let (mut state, problem) = load(self.home)?;
        if let Some(problem) = &problem {
            on_problem(problem);
        }
        let before = state.clone();
        let result = change(&mut state);
        if state != before || problem.is_some() {
            save(self.home, &state)?;
        }
        Ok(result)
    }
}

fn save(home: &Home, state: &State) -> Result<()> {
    let mut json = serde_json::to_vec_pretty(state).context("encoding the state")?;
    json.push(b'\n');
    atomic_file::replace(&home.state(), 0o600, &json)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::home::temporary as home;

    fn time(s: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(s).unwrap()
    }

    #[test]
    fn updates_round_trip_through_the_file() {
        let (_dir, home) = home();
        update(
            &home,
            |_| panic!("no problem expected"),
            |state| {
                let mut record = Record::new(time("2026-02-08T16:07:30+01:00"));
                record.last_served = Some(time("2026-02-08T16:07:00+01:00"));
                state
                    .schedules
                    .insert("test;16:07;backup_test".into(), record);
            },
        )
        .unwrap();
        let (state, problem) = load(&home).unwrap();
        assert_eq!(problem, None);
        let record = &state.schedules["test;16:07;backup_test"];
        assert_eq!(record.first_seen, time("2026-02-08T16:07:30+01:00"));
        assert_eq!(record.last_served, Some(time("2026-02-08T16:07:00+01:00")));
    }

    #[test]
    fn a_corrupt_file_is_reported_and_replaced() {
        let (_dir, home) = home();
        std::fs::write(home.state(), "{ not json").unwrap();
        let mut heard = String::new();
        update(&home, |p| heard = p.to_owned(), |_| ()).unwrap();
        assert!(heard.contains("is corrupt"), "{heard}");
        assert!(heard.contains(".backup_state.json"), "{heard}");
        let (state, problem) = load(&home).unwrap();
        assert_eq!((state, problem), (State::default(), None));
    }

    #[test]
    fn an_unchanged_state_is_not_rewritten() {
        let (_dir, home) = home();
        update(&home, |_| (), |_| ()).unwrap();
        assert!(!home.state().exists());
    }
}
