//! `find PATTERN [NAME...]`: a path or a glob across every generation of the given
//! schedules, each version found with its generation, size and mtime, newest first.

use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::rc::Rc;

use anyhow::{Context, Result};
use globset::{GlobBuilder, GlobMatcher};
use serde::Serialize;

use super::listing::FileInfo;
use crate::archive::entry_name;
use crate::browse::{Catalog, Item, Resolver};
use crate::encryption::Identity;
use crate::generations::{self, Archive};
use crate::home::Home;
use crate::schedule::Schedule;
use crate::schedule_file;

/// One version of a file found in a generation.
#[derive(Debug, Clone, Serialize)]
pub struct Version {
    /// The schedule's NAME.
    pub schedule: String,
    /// The generation's archive, as `backups` lists it.
    pub generation: String,
    /// When the generation was made, as `--at` takes it.
    pub made: String,
    /// The entry.
    #[serde(flatten)]
    pub file: FileInfo,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mtime = chrono::DateTime::parse_from_rfc3339(&self.file.mtime)
            .map(|t| {
                t.with_timezone(&chrono::Local)
                    .format("%Y-%m-%d %H:%M")
                    .to_string()
            })
            .unwrap_or_default();
        write!(
            f,
            "{}  {}  {:>10}  {}  {}",
            self.made, self.generation, self.file.size, mtime, self.file.name
        )?;
        if self.file.kind == "dir" {
            f.write_str("/")?;
        }
        Ok(())
    }
}

/// What `find` found, newest generation first, and the warnings to show.
#[derive(Debug, Default)]
pub struct Found {
    /// Each version, newest generation first.
    pub versions: Vec<Version>,
    /// Archives whose index was not used, and why.
    pub warnings: Vec<String>,
}

/// A pattern as the user gave it, matched against an entry's name as stored and its name
/// relative to the schedule's PATH; one without `/` against file names (a `*` never
/// crosses a `/`, so such a pattern can match nothing else).
struct Pattern {
    matcher: GlobMatcher,
    /// The pattern itself when it has no glob syntax: compared as bytes, quickly.
    literal: Option<Vec<u8>>,
    /// Whether the pattern has a `/`.
    anchored: bool,
}

impl Pattern {
    fn new(text: &str) -> Result<Self> {
        let text = text.trim_end_matches('/');
        let glob = GlobBuilder::new(text)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .with_context(|| format!("{text:?} is not a valid pattern"))?;
        let literal = (!text.contains(['*', '?', '[', ']', '{', '}', '\\']))
            .then(|| text.as_bytes().to_vec());
        Ok(Pattern {
            matcher: glob.compile_matcher(),
            literal,
            anchored: text.contains('/'),
        })
    }

    fn is(&self, name: &[u8]) -> bool {
        match &self.literal {
            Some(literal) => name == literal.as_slice(),
            None => self
                .matcher
                .is_match(Path::new(std::ffi::OsStr::from_bytes(name))),
        }
    }

    fn matches(&self, name: &[u8], prefix: &[u8]) -> bool {
        if !self.anchored {
            return self.is(name.rsplit(|&b| b == b'/').next().unwrap_or(name));
        }
        if self.is(name) {
            return true;
        }
        !prefix.is_empty()
            && name
                .strip_prefix(prefix)
                .and_then(|rest| rest.strip_prefix(b"/"))
                .is_some_and(|rest| self.is(rest))
    }
}

/// `find PATTERN [NAME...]`: every version of what PATTERN names in every generation of
/// the NAMEs (of every schedule with archives, when none is given).
pub fn find(
    home: &Home,
    pattern: &str,
    names: &[String],
    identity: Option<&Path>,
) -> Result<Found> {
    let key = identity.map(Identity::load).transpose()?.map(Rc::new);
    let schedules: Vec<Schedule> = schedule_file::read_each_line(&home.schedules())?
        .iter()
        .flatten()
        .filter_map(|line| line.parse().ok())
        .collect();
    let archives = generations::list(&home.backups())?;
    let mut wanted: Vec<String> = names.to_vec();
    if wanted.is_empty() {
        for archive in &archives {
            if !wanted.contains(&archive.schedule) {
                wanted.push(archive.schedule.clone());
            }
        }
    }
    let mut found = Found::default();
    for name in &wanted {
        let schedule = schedules.iter().find(|s| &s.name == name);
        let series: Vec<&Archive> = archives.iter().filter(|a| &a.schedule == name).collect();
        if series.is_empty() && !names.is_empty() {
            anyhow::bail!(
                "no archive named {name} in {}: `backup_manager backups` lists them",
                home.backups().display()
            );
        }
        let pattern = Pattern::new(&relative_pattern(home, schedule, pattern))?;
        let prefix = schedule.map(|s| entry_name(&s.path)).unwrap_or_default();
        let prefix = prefix.as_os_str().as_bytes();
        search(home, (&series, key.as_ref()), &pattern, prefix, &mut found)?;
    }
    // Newest first across schedules; within one, as the series lists them.
    found.versions.sort_by(|a, b| b.made.cmp(&a.made));
    Ok(found)
}

/// An absolute pattern under the schedule's PATH, made relative to it.
fn relative_pattern(home: &Home, schedule: Option<&Schedule>, pattern: &str) -> String {
    let Some(schedule) = schedule else {
        return pattern.to_owned();
    };
    let root = home.resolve(Path::new(&schedule.path));
    match Path::new(pattern).strip_prefix(&root) {
        Ok(rest) if Path::new(pattern).is_absolute() => rest.to_string_lossy().into_owned(),
        _ => pattern.to_owned(),
    }
}

/// Looks for `pattern` in each generation of `series` (newest first, as `backups`
/// lists them), reading each archive once, oldest first, through its chain; encrypted
/// ones with `key`, and without it not at all (a warning says so).
fn search(
    home: &Home,
    (series, key): (&[&Archive], Option<&Rc<Identity>>),
    pattern: &Pattern,
    prefix: &[u8],
    found: &mut Found,
) -> Result<()> {
    let dir = home.backups();
    let mut per_generation: Vec<Vec<Version>> = Vec::new();
    if let Some(sealed) = series
        .iter()
        .find(|a| a.encrypted)
        .filter(|_| key.is_none())
    {
        found.warnings.push(format!(
            "{} and the other encrypted archives of {} were not searched: reading them \
             needs the identity of one of their recipients, given with --identity FILE",
            sealed.name, sealed.schedule
        ));
    }
    for format in crate::naming::Format::ALL {
        if format.encrypted && key.is_none() {
            continue;
        }
        let mut resolver = Resolver::default();
        for (number, archive) in series
            .iter()
            .rev()
            .filter(|a| a.format() == format)
            .enumerate()
        {
            let path = dir.join(&archive.name);
            let catalog = Catalog::open_as(&path, format, key.cloned())?;
            found.warnings.extend(catalog.warning.clone());
            let mut versions = Vec::new();
            let made = archive.made.format("%Y-%m-%d_%H%M").to_string();
            let mut each = |item: &Item| {
                versions.push(Version {
                    schedule: archive.schedule.clone(),
                    generation: archive.name.clone(),
                    made: made.clone(),
                    file: FileInfo::of(&item.entry),
                });
            };
            resolver
                .step(
                    &catalog,
                    number,
                    &|n| pattern.matches(n, prefix),
                    true,
                    &mut each,
                )
                .with_context(|| format!("reading {}", catalog.path().display()))?;
            per_generation.push(versions);
        }
    }
    for versions in per_generation.into_iter().rev() {
        found.versions.extend(versions);
    }
    Ok(())
}
