//! Which generations a rotation removes: the oldest beyond `keep`, and for incremental
//! chains whole chains only.

use crate::naming::Stamp;

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

/// Like [`to_remove`] for incremental chains: the newest `keep` are kept, and with them
/// every older one back to the full backup (`is_full`) that the oldest kept one depends
/// on; what is older than that full is removed, whole chains at a time.
pub fn to_remove_chains(
    newest_first: &[Generation],
    keep: u16,
    mut is_full: impl FnMut(&Generation) -> bool,
) -> Vec<Generation> {
    let keep = usize::from(keep.max(1));
    match (keep - 1..newest_first.len()).find(|&i| is_full(&newest_first[i])) {
        Some(full) => newest_first[full + 1..].to_vec(),
        // No full under them: everything is needed.
        None => Vec::new(),
    }
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
