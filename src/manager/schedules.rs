//! `create`, `delete` and `list`: the schedule file, edited under its lock.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use chrono::Local;
use log::{info, warn};

use super::{notify_service, warn_about};
use crate::home::Home;
use crate::schedule::{Options, ParseError, Reason, Schedule, Which};
use crate::schedule_file::{self, Entry};
use crate::state::{self, Record};

/// `create "PATH;HH:MM;NAME"`: validates the schedule and appends it, with the options
/// given as flags added to those of the line (given both ways, they must agree).
///
/// Returns a warning for the user when PATH does not exist yet: that is allowed (it may
/// be mounted later), but more often a typo.
pub fn create(home: &Home, line: &str, flags: Options) -> Result<Option<String>> {
    let mut schedule: Schedule = line.parse().map_err(|err: ParseError| {
        // `create proj;02:00;p` unquoted: the shell ran `create proj` and took the rest
        // for other commands.
        let split = !line.contains(';') && err.reason == Reason::FieldCount(1);
        let hint = if split {
            "; quote it, as the shell splits a command at ';': create \"PATH;HH:MM;NAME\""
        } else {
            ""
        };
        anyhow::anyhow!("{err}{hint}")
    })?;
    schedule
        .options
        .combine(flags)
        .map_err(|why| anyhow::anyhow!("refusing schedule {line}: {why}"))?;
    let exclude_file = exclude_file(home, &mut schedule.options)?;
    let typed = as_typed(home, &schedule.path)?;
    let note = typed.as_ref().map(|path| {
        format!(
            "{} taken as {path} (as the shell would: from the current folder, ~ as your \
             home)",
            schedule.path
        )
    });
    if let Some(path) = typed {
        schedule.path = path;
        // The folder's own name may hold what a line cannot.
        let line = schedule.to_string();
        if line.parse::<Schedule>().ok().as_ref() != Some(&schedule) {
            anyhow::bail!("refusing schedule {line}: its PATH cannot be written on a line");
        }
    }
    // The line and its record are written under the state lock, which the service holds
    // while it reads the schedule file: it sees both or neither, so it can neither prune
    // the new record nor take the state file for lost.
    let state = state::lock(home)?;
    schedule_file::append(home, &schedule)?;
    info!("New schedule added: {schedule}");
    // Seen from now on: created at 16:07:30 for 16:07, it is owed today, even if the
    // service only looks at 16:08; created at 16:10, it waits for tomorrow. A record
    // left by a line removed by hand is replaced: this is a new schedule.
    let record = Record::new(Local::now().fixed_offset());
    let key = schedule.to_string();
    let remembered = state.update(warn_about, |state| {
        state.schedules.insert(key, record);
    });
    if let Err(err) = remembered {
        warn!("{err:#}");
    }
    drop(state);
    notify_service(home);
    let source = home.resolve(Path::new(&schedule.path));
    let missing = fs::symlink_metadata(&source).is_err().then(|| {
        format!(
            "warning: {} does not exist yet; the backup will fail until it does",
            source.display()
        )
    });
    let said: Vec<String> = [note, missing, exclude_file]
        .into_iter()
        .flatten()
        .collect();
    Ok((!said.is_empty()).then(|| said.join("; ")))
}

/// With `exclude-from=FILE`: makes FILE absolute as PATH is (see [`as_typed`]) and reads
/// it, refusing one that cannot be read or holds a bad pattern, as each backup would.
/// A file that does not exist yet is allowed, with the warning returned.
pub(super) fn exclude_file(home: &Home, options: &mut Options) -> Result<Option<String>> {
    let Some(path) = &options.choosing.exclude_from else {
        return Ok(None);
    };
    if let Some(typed) = as_typed(home, path)? {
        options.choosing.exclude_from = Some(typed);
    }
    let path = home.resolve(Path::new(
        options.choosing.exclude_from.as_deref().unwrap_or(""),
    ));
    if fs::symlink_metadata(&path).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) {
        return Ok(Some(format!(
            "warning: exclude file {} does not exist yet; each backup fails until it does",
            path.display()
        )));
    }
    crate::excludes::read_patterns(&path)?;
    Ok(None)
}

/// The PATH as the user typed it, when it needs making absolute: `~` and `~/...` from
/// their home folder, and a relative path from the current folder when that is not the
/// home (where the brief's relative lines stay as they are). `None` when it stays.
pub(super) fn as_typed(home: &Home, path: &str) -> Result<Option<String>> {
    let text = |p: std::path::PathBuf| {
        p.into_os_string()
            .into_string()
            .map_err(|_| anyhow::anyhow!("the path {path} is not valid UTF-8"))
    };
    if path == "~" || path.starts_with("~/") {
        let Some(user_home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) else {
            anyhow::bail!("cannot expand {path}: HOME is not set");
        };
        let rest = path
            .strip_prefix("~")
            .unwrap_or(path)
            .trim_start_matches('/');
        return text(Path::new(&user_home).join(rest)).map(Some);
    }
    if Path::new(path).is_absolute() {
        return Ok(None);
    }
    let here = std::env::current_dir().context("reading the current folder")?;
    if fs::canonicalize(&here).is_ok_and(|here| here == home.root()) {
        return Ok(None);
    }
    text(std::path::absolute(here.join(path))?).map(Some)
}

/// `delete INDEX|NAME`: removes the schedule at INDEX, or every line of NAME, and forgets
/// their state.
pub fn delete(home: &Home, which: &Which) -> Result<()> {
    // Under the state lock, like `create`, so that a `create` of the same line in between
    // cannot lose its fresh record to this delete.
    let state = state::lock(home)?;
    let removed = schedule_file::delete_which(home, which)?;
    // A copy of a line written by hand shares the record, and keeps it; so does a file
    // that cannot be read back, as nothing then says the record is unused.
    let remaining = schedule_file::read_each_line(&home.schedules());
    for line in removed {
        info!("Schedule deleted: {}", line.shown);
        let Some(deleted) = line.text.ok().and_then(|l| l.parse::<Schedule>().ok()) else {
            continue;
        };
        let copy_left = remaining.as_ref().map(|remaining| {
            remaining
                .iter()
                .flatten()
                .any(|l| l.parse::<Schedule>().ok().as_ref() == Some(&deleted))
        });
        if let Ok(false) = copy_left {
            let key = deleted.to_string();
            if let Err(err) = state.update(warn_about, |state| {
                state.schedules.remove(&key);
            }) {
                warn!("{err:#}");
            }
        }
    }
    drop(state);
    notify_service(home);
    Ok(())
}

/// `list`: every line of the schedule file, valid or not, with its index.
pub fn list(home: &Home) -> Result<Vec<Entry>> {
    let entries = schedule_file::entries(home)?;
    info!("Show schedules list");
    Ok(entries)
}

/// The error for a listing that showed bad lines, naming them (the first few, with why),
/// or `None` when every line is a schedule.
pub fn bad_lines(home: &Home, entries: &[Entry]) -> Option<String> {
    const NAMED: usize = 5;
    let bad: Vec<&Entry> = entries.iter().filter(|e| e.error.is_some()).collect();
    let first = bad.first()?;
    let mut message = format!(
        "{} has {} bad line{}: index {} ({})",
        home.schedules().display(),
        bad.len(),
        if bad.len() == 1 { "" } else { "s" },
        first.index,
        first.error.as_deref().unwrap_or_default()
    );
    for entry in bad.iter().skip(1).take(NAMED - 1) {
        message.push_str(&format!(
            ", index {} ({})",
            entry.index,
            entry.error.as_deref().unwrap_or_default()
        ));
    }
    if bad.len() > NAMED {
        message.push_str(&format!(" and {} more", bad.len() - NAMED));
    }
    message.push_str("; the service skips them, `delete INDEX` removes one");
    Some(message)
}
