//! The label that starts each archive of an incremental chain (a GNU volume header),
//! read without reading the rest of the archive.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result};

use crate::incremental::INCREMENTAL_LABEL;
use crate::naming::Compression;
use crate::tar::{Kind, Reader, open_archive};

/// Whether the archive at `path` is a full one (starts a chain): true for an archive
/// labelled full and for one with no label (a plain archive holds the whole tree);
/// false for one labelled incremental.
pub fn is_full(path: &Path, compression: Compression) -> Result<bool> {
    Ok(label(path, compression)?.as_deref() != Some(INCREMENTAL_LABEL))
}

/// The chain label at the start of an archive, if it has one.
pub fn label(path: &Path, compression: Compression) -> Result<Option<Vec<u8>>> {
    let file = open_archive(path)?;
    let stream: Box<dyn Read> = compression.read(file, path)?;
    let mut reader = Reader::new(stream);
    let first = reader
        .next_entry()
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(first.and_then(|h| (h.kind == Kind::VOLUME_LABEL).then_some(h.name)))
}
