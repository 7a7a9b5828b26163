//! The archives of one NAME and format in `backups/`, as found on disk.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{Context, Result};
use chrono::{DateTime, Local};

use super::list;
use crate::naming::{Format, Stamp, parse_file_name};

/// A file's identity, to tell two names of one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    pub(super) fn of(meta: &fs::Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// The archives of one NAME and format.
#[derive(Debug, Default)]
pub(super) struct Series {
    /// `NAME.tar`, with its mtime.
    pub(super) latest: Option<(FileId, DateTime<Local>)>,
    /// Dated names, `NAME.YYYY-MM-DD_HHMM.tar`, each the lasting name of a generation.
    pub(super) dated: Vec<(Stamp, FileId)>,
    /// Hidden dated names, `.NAME.YYYY-MM-DD_HHMM.tar`, which an earlier version of this
    /// program gave the newest generation instead of a visible one.
    pub(super) hidden: Vec<(Stamp, FileId)>,
}

impl Series {
    /// Reads the series of `name` in `format` from the folder `dir`.
    pub(super) fn scan(dir: &Path, name: &str, format: Format) -> Result<Self> {
        let mut series = Series::default();
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(series),
            Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
        };
        for entry in entries {
            let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
            let Ok(file_name) = entry.file_name().into_string() else {
                continue;
            };
            let (visible, bare) = match file_name.strip_prefix('.') {
                Some(rest) => (false, rest),
                None => (true, file_name.as_str()),
            };
            let Some((series_name, stamp, found)) = parse_file_name(bare) else {
                continue;
            };
            if series_name != name || found != format {
                continue;
            }
            let Some(meta) = list::file_metadata(&entry)? else {
                continue;
            };
            let id = FileId::of(&meta);
            match (visible, stamp) {
                (true, None) => {
                    let mtime =
                        meta.modified()
                            .map(DateTime::<Local>::from)
                            .with_context(|| {
                                format!("reading the time of {}", entry.path().display())
                            })?;
                    series.latest = Some((id, mtime));
                }
                (true, Some(stamp)) => series.dated.push((stamp, id)),
                (false, Some(stamp)) => series.hidden.push((stamp, id)),
                (false, None) => {}
            }
        }
        Ok(series)
    }

    /// Every stamp taken, visible or hidden.
    pub(super) fn stamps(&self) -> impl Iterator<Item = Stamp> + '_ {
        self.dated.iter().chain(&self.hidden).map(|(s, _)| *s)
    }

    /// The stamp of `NAME.tar`'s own dated name, visible or hidden, if it has one.
    pub(super) fn latest_stamp(&self) -> Option<(Stamp, bool)> {
        let (id, _) = self.latest?;
        let visible = self.dated.iter().find(|(_, d)| *d == id);
        let hidden = self.hidden.iter().find(|(_, h)| *h == id);
        visible
            .map(|(s, _)| (*s, true))
            .or_else(|| hidden.map(|(s, _)| (*s, false)))
    }
}
