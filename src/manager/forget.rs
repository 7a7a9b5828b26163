//! `forget NAME [--dry-run]`: applies a schedule's retention policy now, as its next
//! backup would, saying what it keeps and why, and what it removes.

use anyhow::{Result, bail};
use log::info;
use serde::Serialize;

use crate::generations::{self, Decision};
use crate::home::Home;
use crate::hooks;
use crate::retention::Rule;
use crate::schedule::Schedule;
use crate::schedule_file;

/// One generation, as `forget` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Forgotten {
    /// Its file name.
    pub name: String,
    /// Whether it stays.
    pub kept: bool,
    /// The rules of the policy that keep it.
    pub rules: Vec<Rule>,
    /// Whether it stays because a kept incremental of its chain depends on it.
    pub needed: bool,
}

impl std::fmt::Display for Forgotten {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verdict = if self.kept { "keep  " } else { "remove" };
        write!(f, "{verdict}  {}", self.name)?;
        let mut why: Vec<&str> = self.rules.iter().map(|r| r.option()).collect();
        if self.needed {
            why.push("needed by a kept incremental");
        }
        if !why.is_empty() {
            write!(f, "  ({})", why.join(", "))?;
        }
        Ok(())
    }
}

/// What `forget` did (or, with `dry_run`, would do), and a sentence saying so.
#[derive(Debug)]
pub struct Forget {
    /// Each generation, newest first.
    pub generations: Vec<Forgotten>,
    /// For the user: how many were kept and removed, by which policy.
    pub summary: String,
}

/// `forget NAME [--dry-run]`: the generations of schedule NAME that its policy keeps, and
/// why; unless `dry_run`, removes the others now. `say` is told when it waits for a backup
/// of the same NAME.
pub fn forget(home: &Home, name: &str, dry_run: bool, say: &mut dyn FnMut(&str)) -> Result<Forget> {
    let schedules: Vec<Schedule> = schedule_file::read_each_line(&home.schedules())?
        .iter()
        .flatten()
        .filter_map(|line| line.parse().ok())
        .collect();
    let Some(schedule) = schedules.into_iter().find(|s| s.name == name) else {
        bail!(
            "no schedule named {name:?} in {}: its policy says what to keep",
            home.schedules().display()
        );
    };
    let dir = home.backups();
    let _lock = generations::lock(
        &dir,
        &schedule,
        Some(&mut |holder| {
            let by = holder.map_or_else(String::new, |pid| format!(" (pid {pid})"));
            say(&format!("waiting for a backup of {name}{by} to finish"));
        }),
    )?;
    let decisions = generations::forget(&dir, &schedule, dry_run)?;
    let generations: Vec<Forgotten> = decisions.iter().map(shown).collect();
    let removed = generations.iter().filter(|g| !g.kept).count();
    let policy = generations::keeping(&schedule).shown();
    let summary = format!(
        "{name}: {} kept, {removed} {} ({policy})",
        generations.len() - removed,
        if dry_run { "to remove" } else { "removed" }
    );
    if !dry_run {
        info!(
            "Forget {name}: {} kept, {removed} removed ({policy})",
            generations.len() - removed
        );
        drop(_lock);
        // A mirror of backups/ follows: the after-backup hook hears what went.
        let pruned: Vec<String> = generations
            .iter()
            .rev()
            .filter(|g| !g.kept)
            .map(|g| g.name.clone())
            .collect();
        if !pruned.is_empty() {
            hooks::after_prune(home, &schedule, &pruned);
        }
    }
    Ok(Forget {
        generations,
        summary,
    })
}

fn shown(decision: &Decision) -> Forgotten {
    Forgotten {
        name: decision.generation.file_name.clone(),
        kept: decision.kept(),
        rules: decision.rules.clone(),
        needed: decision.needed,
    }
}
