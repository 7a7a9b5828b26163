//! Edits that find their lines by [`Which`]: deleting every line of a NAME, and changing
//! one line in place. Each resolves the lines under the edit lock, so that what it means
//! is what the file holds when it is written.

use anyhow::{Result, anyhow, bail};

use super::{Removed, edit, name_taken, shown, text_of};
use super::{choose, choose_one};
use crate::home::Home;
use crate::schedule::{Schedule, Which};

/// Removes the lines `which` means (an INDEX: that line, valid or not; a NAME: each of its
/// lines) and returns them, in order; every other line is kept byte for byte.
pub fn delete_which(home: &Home, which: &Which) -> Result<Vec<Removed>> {
    edit(home, |lines| {
        let texts: Vec<_> = lines.iter().map(|raw| text_of(raw)).collect();
        let chosen = choose(&texts, which).map_err(|e| anyhow!(e))?;
        let mut removed = Vec::with_capacity(chosen.len());
        for &index in chosen.iter().rev() {
            let raw = lines.remove(index);
            removed.push(Removed {
                text: text_of(&raw),
                shown: shown(&raw),
            });
        }
        removed.reverse();
        Ok(removed)
    })
}

/// A line changed by [`replace`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replaced {
    /// Its index.
    pub index: usize,
    /// The schedule it held.
    pub before: Schedule,
    /// The schedule it holds now.
    pub after: Schedule,
}

/// Changes the one line `which` means, by `change`, in place: the new line must be a
/// schedule the line can hold, and neither repeat nor clash with another line (the rule
/// `create` applies). On any refusal the file is not touched.
pub fn replace(
    home: &Home,
    which: &Which,
    change: impl FnOnce(&mut Schedule) -> Result<()>,
) -> Result<Replaced> {
    edit(home, |lines| {
        let texts: Vec<_> = lines.iter().map(|raw| text_of(raw)).collect();
        let index = choose_one(&texts, which).map_err(|e| anyhow!(e))?;
        let line = texts[index]
            .as_ref()
            .map_err(|why| anyhow!("schedule {index} cannot be edited: {why}"))?;
        let before: Schedule = line.parse().map_err(|err| {
            anyhow!("schedule {index} cannot be edited: {err}; fix it by hand or `delete {index}`")
        })?;
        let mut after = before.clone();
        change(&mut after)?;
        let written = after.to_string();
        // Each value checked as `create` checks its flags, saying why one is refused.
        crate::schedule::Options::default()
            .combine(after.options.clone())
            .map_err(|why| anyhow!("refusing schedule {written}: {why}"))?;
        match written.parse::<Schedule>() {
            Ok(read) if read == after => {}
            Ok(_) => bail!("refusing schedule {written}: the line would not read back as given"),
            Err(err) => bail!("refusing schedule {written}: {}", err.reason),
        }
        for (at, text) in texts.iter().enumerate().filter(|(at, _)| *at != index) {
            let Some(other) = text
                .as_deref()
                .ok()
                .and_then(|t| t.parse::<Schedule>().ok())
            else {
                continue;
            };
            if other == after {
                bail!("schedule {written} already exists at index {at}");
            }
            if after.clashes_with(&other) {
                let text = text.as_deref().unwrap_or_default();
                bail!(
                    "refusing schedule {written}: {}",
                    name_taken(&after.name, at, text)
                );
            }
        }
        let crlf = lines[index].ends_with(b"\r");
        let mut raw = written.into_bytes();
        if crlf {
            raw.push(b'\r');
        }
        lines[index] = raw;
        Ok(Replaced {
            index,
            before,
            after,
        })
    })
}
