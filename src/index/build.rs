//! Building an index from a tar stream: again, from an archive whose index is missing,
//! damaged or of an earlier version, or to check one against its archive.

use std::io::{Read, Write};

use anyhow::{Context, Result};

use super::{Entry, Writer};
use crate::tar::{Kind, Reader, Skip};

/// Reads the tar stream `tar` to its end, checking it as restore does, and gives each
/// entry to `entry`. Returns the stream's length.
pub fn build(tar: impl Read, entry: &mut dyn FnMut(Entry) -> Result<()>) -> Result<u64> {
    build_from(Reader::new(tar), entry)
}

/// As [`build`], from a reader already made.
fn build_from<R: Read>(
    mut reader: Reader<R>,
    entry: &mut dyn FnMut(Entry) -> Result<()>,
) -> Result<u64> {
    while let Some(header) = reader.next_entry()? {
        // Where its data starts, before a listing is read from there.
        let (at, data_at) = (reader.entry_start(), reader.offset());
        let listing = if header.kind == Kind::DUMPDIR {
            reader.listing()?
        } else {
            Vec::new()
        };
        entry(Entry::of(&header, at, data_at, &listing))?;
    }
    Ok(reader.offset())
}

/// Builds the index of the tar stream `tar` into `out`, passing over the entries' data
/// without reading it; returns the stream's length.
pub fn write_all<W: Write>(tar: impl Skip, out: &mut Writer<W>) -> Result<u64> {
    build_from(Reader::skipping(tar), &mut |entry| {
        out.push(&entry).context("writing the index")?;
        Ok(())
    })
}
