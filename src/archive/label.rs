//! The label that starts each archive of an incremental chain (a GNU volume header),
//! read without reading the rest of the archive. An encrypted archive says it in clear
//! in its header ([`crate::encryption::Mark`]), so that it is read without the identity.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result};

use super::open::Reading;
use crate::encryption::{self, Mark};
use crate::incremental::{FULL_LABEL, INCREMENTAL_LABEL};
use crate::naming::Format;
use crate::tar::{Kind, Reader, open_archive};

/// Whether the archive at `path` is a full one (starts a chain): true for an archive
/// labelled full and for one with no label (a plain archive holds the whole tree);
/// false for one labelled incremental.
pub fn is_full(path: &Path, format: Format) -> Result<bool> {
    Ok(label(path, format)?.as_deref() != Some(INCREMENTAL_LABEL))
}

/// The chain label at the start of an archive, if it has one.
pub fn label(path: &Path, format: Format) -> Result<Option<Vec<u8>>> {
    let mut file = open_archive(path)?;
    if format.encrypted {
        let sealed = encryption::inspect(&mut file, path)?;
        return Ok(sealed.mark.map(|mark| {
            match mark {
                Mark::Full => FULL_LABEL,
                Mark::Incremental => INCREMENTAL_LABEL,
            }
            .to_vec()
        }));
    }
    let stream: Box<dyn Read> = Reading::new(format, None).stream(file, path)?;
    let mut reader = Reader::new(stream);
    let first = reader
        .next_entry()
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(first.and_then(|h| (h.kind == Kind::VOLUME_LABEL).then_some(h.name)))
}
