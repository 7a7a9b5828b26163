//! Which generations a rotation (or `forget`) removes: those the retention policy keeps
//! not, and for incremental chains whole chains only.

use chrono::{DateTime, FixedOffset};

use crate::naming::Stamp;
use crate::retention::{self, Policy, Rule};

/// One generation in a list, newest first; the newest is `NAME.tar`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    /// Its file name in `backups/`.
    pub file_name: String,
    /// When it was made: the stamp of its dated name (for `NAME.tar`, of its hidden one),
    /// `None` for a `NAME.tar` that has none (made with `keep=1`).
    pub stamp: Option<Stamp>,
}

/// What a policy decides for one generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The generation.
    pub generation: Generation,
    /// The rules of the policy that keep it.
    pub rules: Vec<Rule>,
    /// Whether it is kept because a kept incremental of its chain depends on it.
    pub needed: bool,
}

impl Decision {
    /// Whether it stays.
    pub fn kept(&self) -> bool {
        !self.rules.is_empty() || self.needed
    }
}

/// What `policy` decides for each of the generations, given newest first. The newest is
/// always kept (`keep` is at least 1). With `is_full` (incremental chains), every
/// generation a kept incremental depends on, back to its full backup, is kept too, so
/// whole chains go at a time; with no full under a kept one, everything older stays.
///
/// This is the one place that decides what is pruned.
pub fn decide(
    newest_first: &[Generation],
    policy: &Policy,
    mut is_full: Option<&mut dyn FnMut(&Generation) -> bool>,
) -> Vec<Decision> {
    let policy = Policy {
        last: policy.last.max(1),
        ..*policy
    };
    let epoch = DateTime::<FixedOffset>::default();
    let times: Vec<DateTime<FixedOffset>> = newest_first
        .iter()
        .map(|g| g.stamp.map_or(epoch, |s| s.to_local()))
        .collect();
    let mut needing = false;
    retention::apply(&times, &policy)
        .into_iter()
        .zip(newest_first)
        .map(|(rules, generation)| {
            let mut decision = Decision {
                generation: generation.clone(),
                rules,
                needed: needing,
            };
            if let Some(is_full) = is_full.as_mut() {
                if decision.kept() {
                    needing = !is_full(generation);
                }
                decision.needed &= decision.rules.is_empty();
            }
            decision
        })
        .collect()
}

/// Which generations to remove so that `keep` remain, given them newest first: those
/// beyond the first `keep`. The newest is never removed (`keep` is at least 1).
pub fn to_remove(newest_first: &[Generation], keep: u16) -> Vec<Generation> {
    removed(decide(newest_first, &keep_last(keep), None))
}

/// Like [`to_remove`] for incremental chains: the newest `keep` are kept, and with them
/// every older one back to the full backup (`is_full`) that the oldest kept one depends
/// on; what is older than that full is removed, whole chains at a time.
pub fn to_remove_chains(
    newest_first: &[Generation],
    keep: u16,
    mut is_full: impl FnMut(&Generation) -> bool,
) -> Vec<Generation> {
    removed(decide(newest_first, &keep_last(keep), Some(&mut is_full)))
}

fn keep_last(keep: u16) -> Policy {
    Policy {
        last: keep,
        ..Policy::default()
    }
}

/// The generations not kept.
pub fn removed(decisions: Vec<Decision>) -> Vec<Generation> {
    decisions
        .into_iter()
        .filter(|d| !d.kept())
        .map(|d| d.generation)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn pruning_chains_keeps_the_full_a_kept_incremental_needs() {
        let gens: Vec<Generation> = (0..7)
            .map(|i| Generation {
                file_name: format!("g{i}"),
                stamp: None,
            })
            .collect();
        // Newest first: g0 incr, g1 incr, g2 full, g3 incr, g4 full, g5 incr, g6 full.
        let full = |g: &Generation| ["g2", "g4", "g6"].contains(&g.file_name.as_str());
        let names = |v: Vec<Generation>| v.into_iter().map(|g| g.file_name).collect::<Vec<_>>();
        assert_eq!(
            names(to_remove_chains(&gens, 1, full)),
            ["g3", "g4", "g5", "g6"]
        );
        assert_eq!(
            names(to_remove_chains(&gens, 3, full)),
            ["g3", "g4", "g5", "g6"]
        );
        assert_eq!(names(to_remove_chains(&gens, 4, full)), ["g5", "g6"]);
        assert_eq!(
            names(to_remove_chains(&gens, 6, full)),
            Vec::<String>::new()
        );
        assert_eq!(
            names(to_remove_chains(&gens, 9, full)),
            Vec::<String>::new()
        );
        // No full at all: nothing can go.
        assert!(to_remove_chains(&gens, 1, |_| false).is_empty());
    }
}
