//! `edit INDEX|NAME`: one schedule line changed in place, under the edit lock, by the
//! rules of `create`.

use anyhow::Result;
use chrono::Local;
use log::{info, warn};

use super::{notify_service, warn_about};
use crate::home::Home;
use crate::schedule::{Schedule, Which};
use crate::schedule_file::{self, Replaced};
use crate::state::{self, Record};

/// Changes the one line `which` means by `change` and returns what it was and is, with a
/// warning for the user (an exclude file that does not exist yet). The new
/// line is refused, with the file untouched, when it is no valid schedule, repeats another
/// line or clashes with one (see [`schedule_file::replace`]).
///
/// Its history (last run, last success) goes with it in the state file; it is seen from
/// now on, as a line just created is, so that a time moved earlier in the day does not
/// make today's run owed at once.
pub fn edit(
    home: &Home,
    which: &Which,
    change: impl FnOnce(&mut Schedule) -> Result<()>,
) -> Result<(Replaced, Option<String>)> {
    let state = state::lock(home)?;
    let mut warning = None;
    let replaced = schedule_file::replace(home, which, |schedule| {
        let file_before = schedule.options.choosing.exclude_from.clone();
        change(schedule)?;
        // A FILE given now is taken as typed; one already on the line stays as written.
        if schedule.options.choosing.exclude_from != file_before {
            warning = super::schedules::exclude_file(home, &mut schedule.options)?;
        }
        Ok(())
    })?;
    let Replaced { before, after, .. } = &replaced;
    if before == after {
        info!("Schedule {} unchanged: {after}", replaced.index);
        return Ok((replaced, warning));
    }
    info!("Schedule edited: {before} is now {after}");
    if let Some(said) = keys_changed(home, before, after) {
        warning = Some(match warning {
            Some(first) => format!("{first}; {said}"),
            None => said,
        });
    }
    let (old, new) = (before.to_string(), after.to_string());
    // A copy of the old line written by hand keeps the old record.
    let copy_left = schedule_file::read_each_line(&home.schedules()).map(|lines| {
        lines
            .iter()
            .flatten()
            .any(|l| l.parse::<Schedule>().ok().as_ref() == Some(before))
    });
    let moved = state.update(warn_about, |state| {
        let previous = match copy_left {
            Ok(false) => state.schedules.remove(&old),
            _ => state.schedules.get(&old).cloned(),
        };
        let mut record = Record::new(Local::now().fixed_offset());
        if let Some(previous) = previous {
            record.last_served = previous.last_served;
            record.last_run = previous.last_run;
            record.last_success = previous.last_success;
        }
        state.schedules.insert(new, record);
    });
    if let Err(err) = moved {
        warn!("{err:#}");
    }
    drop(state);
    notify_service(home);
    Ok((replaced, warning))
}

/// What follows from the keys of `before` changed into those of `after`, and what the
/// user must hear of it: an incremental chain is sealed to one set of keys, so the next
/// backup starts a new one; and the archives made before encryption was asked for stay
/// in clear under `backups/` (and in any mirror of it), as another series of the NAME.
fn keys_changed(home: &Home, before: &Schedule, after: &Schedule) -> Option<String> {
    if before.options.encrypt == after.options.encrypt {
        return None;
    }
    let mut said = Vec::new();
    if after.options.incremental.is_some() {
        if let Err(err) = crate::generations::chain::forget(&home.backups(), after) {
            said.push(format!(
                "{err:#}: the next backup may extend the chain sealed to the old keys"
            ));
        }
    }
    if !before.options.is_encrypted() {
        match crate::generations::count(&home.backups(), before) {
            Ok((0, _)) => {}
            Ok((n, _)) => said.push(format!(
                "{} of {} made before stay{} unencrypted in {}/ ({}...), and in any copy \
                 of it; remove {} once the encrypted ones are enough",
                crate::logging::counted(n as u64, "archive", "archives"),
                before.name,
                if n == 1 { "s" } else { "" },
                crate::home::BACKUPS_DIR,
                before.archive_file_name(),
                if n == 1 { "it" } else { "them" },
            )),
            Err(err) => said.push(format!("{err:#}")),
        }
    }
    (!said.is_empty()).then(|| said.join("; "))
}
