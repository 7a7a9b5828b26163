//! An archive's index checked against the archive, and made again from it: for an
//! archive whose index is missing, damaged or stale (`verify --rebuild-index`).

use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::{Context, Result, bail};

use super::index_out::IndexOut;
use super::{ARCHIVE_MODE, Reading};
use crate::atomic_file::AtomicFile;
use crate::encryption::{self, Recipients};
use crate::index::{self, Entry, Frame, Identity, Index, Trailer, seekable};
use crate::naming::Compression;
use crate::tar::open_archive;

/// What is wrong with an archive's index, when something is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexProblem {
    /// It has none (an archive made by an earlier version, or one whose index was lost).
    Missing,
    /// It is sound, but of an earlier version of the format: used still, and rebuilt
    /// only when asked.
    Older,
    /// It cannot be used, or does not describe the archive: why.
    Wrong(String),
}

impl std::fmt::Display for IndexProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IndexProblem::Missing => f.write_str("it has no index"),
            IndexProblem::Older => f.write_str(
                "its index is of an earlier version, which finds a file by reading all of it",
            ),
            IndexProblem::Wrong(why) => f.write_str(why),
        }
    }
}

/// Checks the index of the archive at `path` against the archive: every entry the
/// archive holds, where it starts, its frames, and its filters. `Ok(None)` when they
/// agree; the reason when the index is missing, does not match, or is of an earlier
/// version.
pub fn check_index(path: &Path, compression: Compression) -> Result<Option<IndexProblem>> {
    let format = crate::naming::Format {
        compression,
        encrypted: false,
    };
    check_index_as(path, Reading::new(format, None))
}

/// As [`check_index`], for an archive read as `reading` says: an encrypted one and its
/// sealed index with its identity (its frames are where they start in its plaintext).
pub fn check_index_as(path: &Path, reading: Reading<'_>) -> Result<Option<IndexProblem>> {
    let key = reading.identity.filter(|_| reading.format.encrypted);
    if reading.format.encrypted && key.is_none() {
        bail!("{}", super::needs_identity(path));
    }
    let sidecar = index::sidecar(path);
    if std::fs::symlink_metadata(&sidecar).is_err() {
        return Ok(Some(IndexProblem::Missing));
    }
    let archive = open_archive(path)?;
    let index = match Index::open(&sidecar, &archive, key) {
        Ok(index) => index,
        Err(err) => {
            return Ok(Some(IndexProblem::Wrong(format!(
                "its index cannot be used: {}",
                err.root_cause()
            ))));
        }
    };
    let mut listed = index.entries()?;
    let mut mismatch: Option<String> = None;
    let nanos = index.has_nanos();
    let mut each = |mut entry: Entry| {
        if mismatch.is_some() {
            return Ok(());
        }
        if !nanos {
            // An index of an earlier version keeps whole seconds: not a mismatch.
            entry.mtime_nsec = 0;
        }
        match listed.next().transpose() {
            Ok(Some(indexed)) if indexed == entry => {}
            Err(err) => mismatch = Some(format!("its index cannot be read: {}", err.root_cause())),
            Ok(Some(indexed)) => {
                mismatch = Some(format!(
                    "its index says {} where the archive holds {}",
                    String::from_utf8_lossy(&indexed.name),
                    String::from_utf8_lossy(&entry.name)
                ))
            }
            Ok(None) => {
                mismatch = Some(format!(
                    "its index ends before {}",
                    String::from_utf8_lossy(&entry.name)
                ))
            }
        }
        Ok(())
    };
    let tar_len = rebuild_entries(path, reading, &mut each)?;
    if mismatch.is_none() && listed.next().is_some() {
        mismatch = Some("its index lists more entries than the archive holds".to_owned());
    }
    if mismatch.is_none() && tar_len.0 != index.trailer.tar_len {
        mismatch = Some("its index gives another length of the tar stream".to_owned());
    }
    if mismatch.is_none() && several(tar_len.1) != several(index.trailer.frames.clone()) {
        mismatch = Some("its index gives other frames than the archive has".to_owned());
    }
    if mismatch.is_none() {
        mismatch = match index.filters_match() {
            Ok(true) => None,
            Ok(false) => Some("its filters do not hold the names of its entries".to_owned()),
            Err(err) => Some(format!("its filters cannot be read: {}", err.root_cause())),
        };
    }
    Ok(match mismatch {
        Some(why) => Some(IndexProblem::Wrong(why)),
        None if !index.is_current() => Some(IndexProblem::Older),
        None => None,
    })
}

/// Reads the archive at `path` as `reading` says (an encrypted one with its identity),
/// giving each entry to `each`; returns the tar stream's length and the frames found.
fn rebuild_entries(
    path: &Path,
    reading: Reading<'_>,
    each: &mut dyn FnMut(Entry) -> Result<()>,
) -> Result<(u64, Vec<Frame>)> {
    let file = open_archive(path)?;
    let compression = reading.format.compression;
    if !reading.format.encrypted {
        return entries_of(file, compression, path, each);
    }
    let Some(identity) = reading.identity else {
        bail!("{}", super::needs_identity(path));
    };
    // The frames of an encrypted archive are where they start in its plaintext.
    let plain = encryption::open(file, path, identity)?;
    entries_of(plain, compression, path, each)
}

/// As [`rebuild_entries`], from the compressed stream `file` (an archive file, or an
/// encrypted one's plaintext).
fn entries_of<R: Read + Seek + Send + 'static>(
    mut file: R,
    compression: Compression,
    path: &Path,
    each: &mut dyn FnMut(Entry) -> Result<()>,
) -> Result<(u64, Vec<Frame>)> {
    let shown = || format!("reading {}", path.display());
    match compression {
        Compression::Gzip => {
            let mut members = seekable::GzMembers::new(file).with_context(shown)?;
            let tar_len = index::build(&mut members, each).with_context(shown)?;
            Ok((tar_len, members.frames().to_vec()))
        }
        Compression::Zstd => {
            let frames = seekable::read_zstd_seek_table_from(&mut file)
                .with_context(|| format!("reading the seek table of {}", path.display()))?
                .unwrap_or_default();
            file.seek(SeekFrom::Start(0)).with_context(shown)?;
            let input = BufReader::with_capacity(1 << 16, file);
            let tar_len =
                index::build(compression.decode(input, path)?, each).with_context(shown)?;
            Ok((tar_len, frames))
        }
        Compression::None => {
            file.seek(SeekFrom::Start(0)).with_context(shown)?;
            let input = BufReader::with_capacity(1 << 16, file);
            let tar_len = index::build(input, each).with_context(shown)?;
            Ok((tar_len, Vec::new()))
        }
    }
}

/// The frames an index keeps: none for an archive of one (read from its start).
fn several(frames: Vec<Frame>) -> Vec<Frame> {
    if frames.len() > 1 { frames } else { Vec::new() }
}

/// Makes the index of the archive at `path` again, from the archive read as `reading`
/// says, sealed to `recipients` when it is encrypted (the schedule's: no secret is
/// needed to seal), and puts it in place (written aside, then renamed: a reader finds
/// the old index or the new one, never half of one). Returns how many entries it holds.
pub fn rebuild_index(
    path: &Path,
    reading: Reading<'_>,
    recipients: Option<&Recipients>,
) -> Result<u64> {
    if reading.format.encrypted != recipients.is_some() {
        bail!(
            "rebuilding the index of {}: an encrypted archive's index is sealed to its \
             recipients, a plain one's is not",
            path.display()
        );
    }
    let sidecar = index::sidecar(path);
    let mut out = AtomicFile::create(&sidecar, ARCHIVE_MODE)?;
    let mut writer = index::Writer::new(IndexOut::new(out.file(), recipients)?)?;
    let mut entries = 0;
    let (tar_len, frames) = rebuild_entries(path, reading, &mut |entry| {
        entries += 1;
        writer.push(&entry).context("writing the index")?;
        Ok(())
    })?;
    if entries == 0 {
        // Refused before anything is put in place: the aside file goes with `out`.
        bail!("{} holds no entry", path.display());
    }
    // A gzip archive of one member, or a zstd one without a seek table: read from its
    // start, as it always was.
    let frames = several(frames);
    let identity = Identity::of(&open_archive(path)?)?;
    let trailer = Trailer {
        identity,
        compression: Some(reading.format.compression),
        tar_len,
        frames,
        entries: 0,
    };
    writer
        .finish(trailer)?
        .finish()
        .with_context(|| format!("writing {}", sidecar.display()))?;
    out.commit()?;
    Ok(entries)
}
