//! Building an index from a tar stream: as an archive is written (from the very bytes
//! that go into it), or again from an archive whose index is missing or damaged.

use std::io::{Read, Write};

use anyhow::{Context, Result};

use super::{Entry, Writer};
use crate::tar::format::trim_slashes;
use crate::tar::{DUMPDIR, Header, Kind, Reader, Skip};

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
        let mut indexed = entry_of(&header, reader.entry_start(), reader.offset());
        if indexed.type_flag == DUMPDIR {
            indexed.listing = reader.listing()?;
            trim_slashes(&mut indexed.name);
        }
        entry(indexed)?;
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

/// The index entry of `header`, which starts at `header_at` and whose data starts at
/// `data_at`.
fn entry_of(header: &Header, header_at: u64, data_at: u64) -> Entry {
    let type_flag = match header.kind {
        Kind::File => b'0',
        Kind::HardLink => b'1',
        Kind::Symlink => b'2',
        Kind::CharDevice => b'3',
        Kind::BlockDevice => b'4',
        Kind::Dir => b'5',
        Kind::Fifo => b'6',
        Kind::Other(flag) => flag,
    };
    Entry {
        name: header.name.clone(),
        type_flag,
        mode: header.mode,
        uid: header.uid,
        gid: header.gid,
        uname: header.uname.clone(),
        gname: header.gname.clone(),
        size: if header.kind == Kind::File {
            header.file_size()
        } else {
            0
        },
        mtime: header.mtime,
        mtime_nsec: header.mtime_nsec,
        link: header.link.clone(),
        device: header.device,
        header: header_at,
        data: data_at,
        listing: Vec::new(),
    }
}
