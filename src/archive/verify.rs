//! Checking an archive: its structure end to end, and optionally its entries against the
//! live tree, as `tar --diff` does.

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::excludes::{Excludes, PathCheck};
use crate::naming::Compression;
use crate::schedule::Options;
use crate::tar::sparse::Expand;
use crate::tar::{Kind, Reader};

/// What a check found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Entries read.
    pub entries: u64,
    /// Differences with the source, one sentence each naming the entry (empty when the
    /// source was not compared, or matched).
    pub differences: Vec<String>,
    /// Entries of a kind `restore` skips (a tape volume label, a multi-volume
    /// continuation...), by name: a restore of this archive would not be complete.
    pub not_restorable: Vec<String>,
}

/// The live tree an archive is compared with: entries named under `prefix` are found
/// under `root`.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// The source on disk.
    pub root: &'a Path,
    /// The entry name of the source itself (the schedule's PATH as tar names it).
    pub prefix: &'a Path,
    /// The schedule's options: what they leave out (by the rules on disk now) is not
    /// compared, as GNU tar's `--diff` skips what its `--exclude` options name.
    pub options: &'a Options,
}

/// Reads the archive at `path` to its end. A broken structure (a bad header checksum, a
/// truncated entry, a missing end marker, a corrupt compressed stream) is an error; with
/// `source`, each entry is also compared with the live tree and the differences listed.
pub fn verify(path: &Path, compression: Compression, source: Option<Source<'_>>) -> Result<Report> {
    let input = compression.open(path)?;
    let mut reader = Reader::new(input);
    let mut report = Report::default();
    let mut a = vec![0u8; 1 << 16];
    let mut b = vec![0u8; 1 << 16];
    let mut excluded = match source {
        Some(source) => Excludes::new(source.options, source.root)?
            .map(|excludes| PathCheck::new(excludes, source.root)),
        None => None,
    };
    loop {
        let header = reader
            .next_entry()
            .with_context(|| format!("reading {}", path.display()))?;
        let Some(header) = header else { break };
        // An incremental chain's label is no entry of the tree.
        if header.kind == Kind::VOLUME_LABEL {
            continue;
        }
        report.entries += 1;
        let shown = String::from_utf8_lossy(&header.name).into_owned();
        if matches!(header.kind, Kind::Other(_)) && header.kind != Kind::DUMPDIR {
            report.not_restorable.push(shown.clone());
        }
        let Some(source) = source else { continue };
        let Some(disk) = on_disk(source, &header.name) else {
            report
                .differences
                .push(format!("{shown}: not under the schedule's source"));
            continue;
        };
        if let Some(check) = &mut excluded {
            let rel = Path::new(std::ffi::OsStr::from_bytes(&header.name))
                .strip_prefix(source.prefix)
                .unwrap_or(Path::new(""));
            if check.leaves_out(rel, header.kind == Kind::Dir) {
                continue;
            }
        }
        let mut differ = |what: &str| report.differences.push(format!("{shown}: {what}"));
        let meta = match fs::symlink_metadata(&disk) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                differ("missing from the source");
                continue;
            }
            Err(e) => {
                differ(&format!("cannot read {}: {e}", disk.display()));
                continue;
            }
        };
        let kind = kind_of(&meta);
        // A dumpdir is a folder (with the list of its children).
        let header_kind = match header.kind {
            Kind::DUMPDIR => Kind::Dir,
            kind => kind,
        };
        let expected = if header.kind == Kind::HardLink {
            Kind::File
        } else {
            header_kind
        };
        if kind != Some(expected) && !(header.kind == Kind::HardLink && kind.is_some()) {
            differ("file type differs");
            continue;
        }
        if header.kind == Kind::HardLink {
            match on_disk(source, &header.link).map(fs::symlink_metadata) {
                Some(Ok(target)) if (target.dev(), target.ino()) == (meta.dev(), meta.ino()) => {}
                _ => differ("not linked to the same file as in the archive"),
            }
            continue;
        }
        if meta.mode() & 0o7777 != header.mode && header.kind != Kind::Symlink {
            differ("mode differs");
        }
        if (u64::from(meta.uid()), u64::from(meta.gid())) != (header.uid, header.gid) {
            differ("owner differs");
        }
        if meta.mtime() != header.mtime && header_kind != Kind::Dir {
            differ("modification time differs");
        }
        match header.kind {
            Kind::Symlink
                if fs::read_link(&disk)
                    .ok()
                    .map(|t| t.as_os_str().as_bytes().to_vec())
                    != Some(header.link.clone()) =>
            {
                differ("symbolic link target differs")
            }
            Kind::File if meta.len() != header.file_size() => differ("size differs"),
            Kind::File => {
                let same = File::open(&disk).and_then(|file| match &header.sparse {
                    None => same_contents(&mut reader.data(), file, &mut a, &mut b),
                    Some(map) => {
                        let mut whole = Expand::new(reader.data(), map);
                        same_contents(&mut whole, file, &mut a, &mut b)
                    }
                });
                match same {
                    Ok(true) => {}
                    Ok(false) => differ("contents differ"),
                    Err(e) => differ(&format!("cannot compare contents: {e}")),
                }
            }
            _ => {}
        }
    }
    Ok(report)
}

/// Where an entry is on disk, or `None` if its name is not under the source's.
fn on_disk(source: Source<'_>, name: &[u8]) -> Option<PathBuf> {
    let name = Path::new(std::ffi::OsStr::from_bytes(name));
    let rest = name.strip_prefix(source.prefix).ok()?;
    Some(if rest.as_os_str().is_empty() {
        source.root.to_path_buf()
    } else {
        source.root.join(rest)
    })
}

fn kind_of(meta: &fs::Metadata) -> Option<Kind> {
    let t = meta.file_type();
    Some(if t.is_file() {
        Kind::File
    } else if t.is_dir() {
        Kind::Dir
    } else if t.is_symlink() {
        Kind::Symlink
    } else if t.is_fifo() {
        Kind::Fifo
    } else if t.is_char_device() {
        Kind::CharDevice
    } else if t.is_block_device() {
        Kind::BlockDevice
    } else {
        return None;
    })
}

/// Compares two streams of equal announced length chunk by chunk. An archive error
/// (truncated data) is raised, not taken for a difference.
fn same_contents(
    archived: &mut impl Read,
    mut live: File,
    a: &mut [u8],
    b: &mut [u8],
) -> io::Result<bool> {
    let mut same = true;
    loop {
        let n = archived.read(a)?;
        if n == 0 {
            // The live file may be longer than its size said a moment ago.
            return Ok(same && live.read(&mut b[..1])? == 0);
        }
        if same {
            match live.read_exact(&mut b[..n]) {
                Ok(()) => same = a[..n] == b[..n],
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => same = false,
                Err(e) => return Err(e),
            }
        }
    }
}
