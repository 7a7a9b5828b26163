//! `diff NAME [GENERATION [GENERATION]]`: what was added, removed and changed between two
//! generations, and what changed (content, size, mode, type, link target...), like
//! `restic diff`.

use std::collections::BTreeMap;
use std::fmt;

use anyhow::{Result, bail};
use serde::Serialize;

use super::browse::Picked;
use crate::browse::{Item, View};
use crate::generations;
use crate::home::Home;
use crate::tar::Kind;

/// One difference.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// `added`, `removed` or `changed`.
    pub change: &'static str,
    /// The entry's name as stored.
    pub name: String,
    /// For a changed entry, what changed: `type`, `content`, `size`, `mode`, `owner`,
    /// `link target`, `mtime`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub what: Vec<&'static str>,
    /// Whether it is a folder.
    #[serde(skip)]
    dir: bool,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = match self.change {
            "added" => "+",
            "removed" => "-",
            _ => "M",
        };
        let slash = if self.dir { "/" } else { "" };
        write!(f, "{sign}    {}{slash}", self.name)?;
        if !self.what.is_empty() {
            write!(f, "  ({})", self.what.join(", "))?;
        }
        Ok(())
    }
}

/// What `diff` found.
#[derive(Debug)]
pub struct Diff {
    /// The differences, by name.
    pub changes: Vec<Change>,
    /// What was compared, as a sentence.
    pub summary: String,
    /// Archives whose index was not used, and why.
    pub warnings: Vec<String>,
}

/// `diff NAME [OLD [NEW]]`: the two generations given; with one, it against the newest;
/// with none, the last two.
pub fn diff(
    home: &Home,
    name: &str,
    (old, new): (Option<&str>, Option<&str>),
    identity: Option<&std::path::Path>,
) -> Result<Diff> {
    let (old, new) = match (old, new) {
        (Some(old), Some(new)) => (
            Picked::new(home, name, Some(old), identity)?,
            Picked::new(home, name, Some(new), identity)?,
        ),
        (Some(old), None) => (
            Picked::new(home, name, Some(old), identity)?,
            Picked::new(home, name, None, identity)?,
        ),
        (None, _) => {
            let newest = Picked::new(home, name, None, identity)?;
            let series: Vec<String> = generations::list(&home.backups())?
                .into_iter()
                .filter(|a| {
                    a.format() == newest.found.format
                        && Some(&a.schedule) == series_name(&newest.found.file_name).as_ref()
                })
                .map(|a| a.name)
                .collect();
            let Some(previous) = series.get(1) else {
                bail!(
                    "{} is the only generation: there is nothing to compare it with",
                    newest.found.shown()
                );
            };
            (Picked::new(home, previous, None, identity)?, newest)
        }
    };
    let (before, after) = (old.view()?, new.view()?);
    let mut warnings: Vec<String> = before.warnings().map(str::to_owned).collect();
    warnings.extend(after.warnings().map(str::to_owned));
    let changes = compare(&before, &after)?;
    let count = |kind: &str| changes.iter().filter(|c| c.change == kind).count();
    let summary = format!(
        "{} to {}: {} added, {} removed, {} changed",
        old.found.shown(),
        new.found.shown(),
        count("added"),
        count("removed"),
        count("changed")
    );
    Ok(Diff {
        changes,
        summary,
        warnings,
    })
}

/// The NAME of an archive's file name.
fn series_name(file_name: &str) -> Option<String> {
    crate::naming::parse_file_name(file_name).map(|(name, _, _)| name.to_owned())
}

/// The differences from `before` to `after`, by name.
fn compare(before: &View, after: &View) -> Result<Vec<Change>> {
    let by_name = |view: &View| -> BTreeMap<Vec<u8>, usize> {
        view.items
            .iter()
            .enumerate()
            .map(|(i, item)| (item.entry.name.clone(), i))
            .collect()
    };
    let (old, new) = (by_name(before), by_name(after));
    let mut changes = Vec::new();
    let change = |change, item: &Item, what| Change {
        change,
        name: String::from_utf8_lossy(&item.entry.name).into_owned(),
        what,
        dir: item.entry.kind() == Kind::Dir,
    };
    let mut names: Vec<&Vec<u8>> = old.keys().chain(new.keys()).collect();
    names.sort();
    names.dedup();
    for name in names {
        match (old.get(name), new.get(name)) {
            (Some(&o), None) => changes.push(change("removed", &before.items[o], Vec::new())),
            (None, Some(&n)) => changes.push(change("added", &after.items[n], Vec::new())),
            (Some(&o), Some(&n)) => {
                let what = changed(before, &before.items[o], after, &after.items[n])?;
                if !what.is_empty() {
                    changes.push(change("changed", &after.items[n], what));
                }
            }
            (None, None) => {}
        }
    }
    Ok(changes)
}

/// What changed from `a` (of `before`) to `b` (of `after`). A file's content is compared,
/// by reading both versions, when its mtime changed or an incremental stored it again;
/// otherwise the same size and mtime are taken for the same content, as rsync takes them.
fn changed(before: &View, a: &Item, after: &View, b: &Item) -> Result<Vec<&'static str>> {
    let (x, y) = (&a.entry, &b.entry);
    if x.kind() != y.kind() {
        return Ok(vec!["type"]);
    }
    let same_entry = before.catalogs[a.archive].path() == after.catalogs[b.archive].path()
        && x.header == y.header;
    let mut what = Vec::new();
    // An incremental stores a file again when anything about it changed, even what an
    // mtime set back hides: such a file is compared too.
    let stored_again = after.catalogs.len() > 1 && b.archive == after.catalogs.len() - 1;
    if x.kind() == Kind::File && !same_entry {
        let content = x.size != y.size
            || ((x.mtime != y.mtime || stored_again)
                && before.hash_data(a)? != after.hash_data(b)?);
        if content {
            what.push("content");
        }
    }
    if x.size != y.size {
        what.push("size");
    }
    if x.mode & 0o7777 != y.mode & 0o7777 {
        what.push("mode");
    }
    if (x.uid, x.gid, &x.uname, &x.gname) != (y.uid, y.gid, &y.uname, &y.gname) {
        what.push("owner");
    }
    if x.link != y.link {
        what.push("link target");
    }
    // A folder's mtime changes with what it holds, which is shown already.
    if x.mtime != y.mtime && x.kind() != Kind::Dir {
        what.push("mtime");
    }
    Ok(what)
}
