//! Listing the archives of `backups/`, generations in order.

use std::cmp::Reverse;
use std::fmt;
use std::fs;
use std::io;
use std::path::Path;

use anyhow::{Context, Result};
use chrono::{DateTime, FixedOffset, Local};
use serde::Serialize;

use super::FileId;
use crate::naming::{Compression, Format, Stamp, parse_file_name};
use crate::schedule::Schedule;

/// An archive file in `backups/`, as `backups` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct Archive {
    /// Its file name.
    pub name: String,
    /// The NAME of the schedule that writes it.
    pub schedule: String,
    /// Whether it is its NAME's newest (`NAME.tar`) rather than an older, dated one.
    pub latest: bool,
    /// When it was made: from its dated name; for `NAME.tar`, from its own dated name,
    /// or its modification time when it has none.
    pub made: DateTime<FixedOffset>,
    /// Its size in bytes.
    pub bytes: u64,
    /// How it is compressed.
    pub compression: Compression,
    /// Whether it is encrypted (an age file, `.age`).
    pub encrypted: bool,
    /// When it was last written (its mtime).
    pub modified: DateTime<FixedOffset>,
    /// Its dated name's stamp: its own, or for `NAME.tar` that of the dated name it is
    /// linked to, if it is.
    #[serde(skip)]
    pub stamp: Option<Stamp>,
}

impl Archive {
    /// How its file is written: compression and encryption.
    pub fn format(&self) -> Format {
        Format {
            compression: self.compression,
            encrypted: self.encrypted,
        }
    }
}

impl fmt::Display for Archive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// Every archive file in `dir`: each NAME's newest (`NAME.tar`) then its older ones,
/// newest first, NAMEs in the order of their archives' file names (so a home without
/// generations lists exactly its files, sorted by name). Hidden files are never listed,
/// and the newest's dated name, the same file as `NAME.tar`, is not listed twice.
pub fn list(dir: &Path) -> Result<Vec<Archive>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries.collect::<Result<Vec<_>, _>>(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
    .with_context(|| format!("listing {}", dir.display()))?;
    let mut visible = Vec::new();
    let mut hidden = Vec::new();
    for entry in entries {
        let Ok(file_name) = entry.file_name().into_string() else {
            continue;
        };
        let is_hidden = file_name.starts_with('.');
        let Some((name, stamp, format)) = parse_file_name(&file_name[is_hidden as usize..]) else {
            continue;
        };
        if is_hidden && stamp.is_none() {
            continue;
        }
        let Some(meta) = file_metadata(&entry)? else {
            continue;
        };
        if is_hidden {
            hidden.push((name.to_owned(), format, stamp, FileId::of(&meta)));
            continue;
        }
        let modified = meta
            .modified()
            .with_context(|| format!("reading the time of {}", entry.path().display()))?;
        let modified = DateTime::<Local>::from(modified).fixed_offset();
        visible.push(Found {
            archive: Archive {
                schedule: name.to_owned(),
                latest: stamp.is_none(),
                made: stamp.map_or(modified, |s| made(s, &entry.path())),
                bytes: meta.len(),
                compression: format.compression,
                encrypted: format.encrypted,
                modified,
                name: file_name,
                stamp,
            },
            stamp,
            id: FileId::of(&meta),
            path: entry.path(),
        });
    }
    // The newest's own dated name, visible (its lasting name) or hidden (as an earlier
    // version kept it), dates it; a visible one is then listed once, as `NAME.tar`.
    let twins: Vec<Hidden> = visible
        .iter()
        .filter(|f| !f.archive.latest)
        .map(|f| {
            (
                f.archive.schedule.clone(),
                f.archive.format(),
                f.stamp,
                f.id,
            )
        })
        .chain(hidden)
        .collect();
    date_the_newest(&mut visible, &twins);
    drop_twins(&mut visible);
    sort(&mut visible);
    Ok(visible
        .into_iter()
        .map(|f| Archive {
            stamp: f.stamp,
            ..f.archive
        })
        .collect())
}

/// An archive found in the folder, with what tells it apart.
struct Found {
    archive: Archive,
    stamp: Option<Stamp>,
    id: FileId,
    /// Where it is.
    path: std::path::PathBuf,
}

/// A dated name: its NAME, format, stamp and file.
type Hidden = (String, Format, Option<Stamp>, FileId);

/// Drops the dated name of `NAME.tar`'s own file: the newest is listed as `NAME.tar`.
fn drop_twins(visible: &mut Vec<Found>) {
    let latest: Vec<(String, Format, FileId)> = visible
        .iter()
        .filter(|f| f.archive.latest)
        .map(|f| (f.archive.schedule.clone(), f.archive.format(), f.id))
        .collect();
    let latest_id = |name: &str, format: Format| {
        latest
            .iter()
            .find(|(n, c, _)| n == name && *c == format)
            .map(|(_, _, id)| *id)
    };
    visible.retain(|f| {
        f.archive.latest || latest_id(&f.archive.schedule, f.archive.format()) != Some(f.id)
    });
}

/// Gives each `NAME.tar` the time of its own dated name, when it has one.
fn date_the_newest(visible: &mut [Found], hidden: &[Hidden]) {
    for found in visible.iter_mut().filter(|f| f.archive.latest) {
        let a = &found.archive;
        let dated = hidden
            .iter()
            .filter(|(n, c, _, id)| *n == a.schedule && *c == a.format() && *id == found.id)
            .filter_map(|(_, _, stamp, _)| *stamp)
            .max();
        if let Some(stamp) = dated {
            found.archive.made = made(stamp, &found.path);
            found.stamp = Some(stamp);
        }
    }
}

/// Each NAME's newest first, then its older ones, newest first; NAMEs in the order of
/// their archives' names.
fn sort(visible: &mut [Found]) {
    visible.sort_by(|a, b| {
        let key = |f: &Found| {
            (
                format!("{}{}", f.archive.schedule, f.archive.format().suffix()),
                !f.archive.latest,
                Reverse(if f.archive.latest { None } else { f.stamp }),
            )
        };
        // Two NAME.tar of one series sort by file name: a plain home's order.
        key(a)
            .cmp(&key(b))
            .then_with(|| a.archive.name.cmp(&b.archive.name))
    });
}

/// The extended attribute that keeps, on an archive of a series, the instant its backup
/// started (RFC 3339, with the offset of that day): a dated name says only the local
/// time, in a zone that need not be today's.
const STARTED_ATTR: &std::ffi::CStr = c"user.backup_manager.started";

/// Marks the archive being written with the instant its backup started (see
/// [`STARTED_ATTR`]). Where the file system keeps no such attributes, nothing is kept, and
/// the dated name is read in the current zone.
pub(super) fn mark_started(file: &std::fs::File, started: &DateTime<Local>) {
    use std::os::fd::AsRawFd;
    let value = started.fixed_offset().to_rfc3339();
    // SAFETY: fsetxattr reads the NUL-terminated name and `len` bytes of the value, both
    // alive for the call.
    unsafe {
        nix::libc::fsetxattr(
            file.as_raw_fd(),
            STARTED_ATTR.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        );
    }
}

/// The instant the archive at `path` was started, from [`STARTED_ATTR`], if it has one.
fn started(path: &Path) -> Option<DateTime<FixedOffset>> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut value = [0u8; 64];
    // SAFETY: lgetxattr writes at most `value.len()` bytes into `value`, and reads the
    // NUL-terminated path and name; it follows no link.
    let len = unsafe {
        nix::libc::lgetxattr(
            path.as_ptr(),
            STARTED_ATTR.as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    let value = std::str::from_utf8(value.get(..usize::try_from(len).ok()?)?).ok()?;
    DateTime::parse_from_rfc3339(value).ok()
}

/// When an archive stamped `stamp`, at `path`, was made, shown in the current zone: its
/// stamp's minute read in the UTC offset its start kept ([`STARTED_ATTR`]), else in
/// today's zone.
fn made(stamp: Stamp, path: &Path) -> DateTime<FixedOffset> {
    let kept = started(path).and_then(|started| {
        let offset = *started.offset();
        stamp
            .minute()
            .and_local_timezone(offset)
            .single()
            .map(|made| made.with_timezone(&Local).fixed_offset())
    });
    kept.unwrap_or_else(|| stamp.to_local())
}

/// What `status` shows of a schedule's generations: how many archives it has, and when
/// the oldest was made.
pub fn count(dir: &Path, schedule: &Schedule) -> Result<(usize, Option<DateTime<FixedOffset>>)> {
    let mine: Vec<Archive> = list(dir)?
        .into_iter()
        .filter(|a| a.schedule == schedule.name && a.format() == schedule.format())
        .collect();
    let oldest = mine.iter().map(|a| a.made).min();
    Ok((mine.len(), oldest))
}

/// The metadata of a listed entry that is a file (archives are files, not links), or
/// `None` for anything else, or for a file replaced or removed while the folder was
/// listed: it is not there any more.
pub(super) fn file_metadata(entry: &fs::DirEntry) -> Result<Option<fs::Metadata>> {
    match entry.metadata() {
        Ok(meta) if meta.is_file() => Ok(Some(meta)),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", entry.path().display())),
    }
}
