//! Restoring an archive into a folder, without ever writing outside it.
//!
//! The archive is read twice. The first pass checks the whole of it: its structure, and
//! that every name stays inside the destination (no absolute name, no `..`, no entry
//! under an earlier symbolic link). Only then does the second pass write, and it goes
//! down every path one folder at a time with `O_NOFOLLOW`, so that even a link already
//! in the destination is never written through. Folders get their archived modes and
//! times only at the very end (see [`folders`]), so that a read-only folder restored by
//! one archive of a chain takes the next archive's changes.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::unistd::Uid;

use crate::naming::Compression;
use crate::tar::{Header, Kind, Reader, open_archive};

mod dumpdir;
mod entry;
mod folders;

use folders::Folders;

/// What a restore did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Restored {
    /// Entries restored.
    pub entries: u64,
    /// Entries that could not be restored as they were (a device without the right to
    /// create one, an owner that could not be set), one sentence each.
    pub warnings: Vec<String>,
    /// The names of the entries skipped or not created: the restore is not complete.
    pub not_restored: Vec<String>,
}

/// Restores the archive at `path` into `dest`, which must be missing or empty unless
/// `force` (then existing files are replaced). Modes and modification times are
/// restored; owners too when running as root.
pub fn restore(
    path: &Path,
    compression: Compression,
    dest: &Path,
    force: bool,
) -> Result<Restored> {
    restore_chain(&[path], compression, dest, force)
}

/// Restores a chain: a full archive then incrementals, in order, into `dest`, which must
/// be missing or empty unless `force`. Every archive is checked before anything is
/// written. Each folder stored as a dumpdir (see [`crate::tar::dumpdir`]) loses what its
/// listing does not hold, as with GNU tar's `--listed-incremental`, so that the result
/// is the tree as it was at the last archive's backup.
pub fn restore_chain(
    paths: &[&Path],
    compression: Compression,
    dest: &Path,
    force: bool,
) -> Result<Restored> {
    // Each opened once: both passes read the same file, even if a new archive is renamed
    // into place meanwhile.
    let mut archives = Vec::with_capacity(paths.len());
    for &path in paths {
        let archive = open_archive(path)?;
        let reopen = move || {
            archive
                .try_clone()
                .with_context(|| format!("reading {}", path.display()))
                .and_then(|file| compression.read(file, path))
        };
        check(reopen()?, path)?;
        archives.push((path, reopen));
    }
    prepare(dest, force)?;
    let root = nix::fcntl::open(
        dest,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("opening {}", dest.display()))?;
    let mut out = Extract {
        root,
        cached: None,
        folders: Folders::default(),
        as_root: Uid::effective().is_root(),
        done: Restored::default(),
    };
    for (path, reopen) in &archives {
        out.archive(path, reopen()?, dest)?;
    }
    // After the last archive: any of them may write into any folder an earlier one made.
    out.cached = None;
    std::mem::take(&mut out.folders)
        .finish(&out.root, out.as_root)
        .with_context(|| format!("setting folder modes and times in {}", dest.display()))?;
    Ok(out.done)
}

/// The first pass: the whole archive is sound and every name safe, or nothing is written.
fn check(stream: Box<dyn io::Read>, path: &Path) -> Result<()> {
    let mut reader = Reader::new(stream);
    let mut links: HashSet<Vec<u8>> = HashSet::new();
    while let Some(header) = reader
        .next_entry()
        .with_context(|| format!("reading {}", path.display()))?
    {
        let refuse = |why: &str| {
            anyhow::anyhow!(
                "refusing to restore {}: entry {:?} {why}; nothing was written",
                path.display(),
                String::from_utf8_lossy(&header.name)
            )
        };
        let Some(parts) = components(&header.name).map_err(|e| refuse(&e.to_string()))? else {
            continue;
        };
        let through_link =
            |parts: &[&[u8]]| (1..parts.len()).any(|n| links.contains(&parts[..n].join(&b'/')));
        if through_link(&parts) {
            return Err(refuse("lies under a symbolic link stored earlier"));
        }
        if header.kind == Kind::HardLink {
            match components(&header.link) {
                Ok(Some(target)) if !through_link(&target) => {}
                _ => return Err(refuse("is a hard link to a name outside the destination")),
            }
        }
        let joined = parts.join(&b'/');
        if header.kind == Kind::Symlink {
            links.insert(joined);
        } else {
            links.remove(&joined);
        }
    }
    Ok(())
}

/// The name's parts, `.` dropped; `None` for the destination itself. Absolute names and
/// `..` are refused.
fn components(name: &[u8]) -> Result<Option<Vec<&[u8]>>> {
    if name.first() == Some(&b'/') {
        bail!("has an absolute name");
    }
    let parts: Vec<&[u8]> = name
        .split(|&b| b == b'/')
        .filter(|p| !p.is_empty() && *p != b".")
        .collect();
    if parts.iter().any(|p| *p == b"..") {
        bail!("has '..' in its name");
    }
    Ok((!parts.is_empty()).then_some(parts))
}

fn prepare(dest: &Path, force: bool) -> Result<()> {
    match fs::read_dir(dest) {
        Ok(mut entries) => {
            if !force && entries.next().is_some() {
                bail!(
                    "{} is not empty: restore into a new or empty folder, or add --force \
                     to replace what is there",
                    dest.display()
                );
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(dest).with_context(|| format!("creating {}", dest.display()))
        }
        Err(e) => Err(e).with_context(|| format!("opening {}", dest.display())),
    }
}

struct Extract {
    root: OwnedFd,
    /// The last parent folder opened, by its parts: entries come folder by folder.
    cached: Option<(Vec<Vec<u8>>, OwnedFd)>,
    /// Folders restored, whose mode and time are set after the last archive: writing in
    /// them would change their time, and a read-only mode would stop us writing in them.
    folders: Folders,
    as_root: bool,
    done: Restored,
}

impl Extract {
    /// Restores one archive of a chain.
    fn archive(&mut self, path: &Path, stream: Box<dyn io::Read>, dest: &Path) -> Result<()> {
        let mut reader = Reader::new(stream);
        while let Some(header) = reader
            .next_entry()
            .with_context(|| format!("reading {}", path.display()))?
        {
            // A chain's label: nothing to restore.
            if header.kind == Kind::VOLUME_LABEL {
                continue;
            }
            let Some(parts) = components(&header.name)? else {
                if header.kind == Kind::DUMPDIR {
                    // The destination itself, as `./`.
                    let data = dumpdir_data(&header, &mut reader)?;
                    dumpdir::purge(&self.root, &data).with_context(|| {
                        format!("removing what {} no longer holds", dest.display())
                    })?;
                }
                continue;
            };
            self.entry(&header, &parts, &mut reader).with_context(|| {
                format!(
                    "restoring {} into {}",
                    String::from_utf8_lossy(&header.name),
                    dest.display()
                )
            })?;
        }
        Ok(())
    }

    /// The folder holding an entry, created if missing, reached without following links.
    fn parent(&mut self, parts: &[&[u8]]) -> Result<&OwnedFd> {
        let hit = matches!(&self.cached, Some((cached, _)) if cached.iter().map(Vec::as_slice).eq(parts.iter().copied()));
        if !hit {
            let fd = walk(&self.root, parts)?;
            self.cached = Some((parts.iter().map(|p| p.to_vec()).collect(), fd));
        }
        Ok(&self.cached.as_ref().expect("just filled").1)
    }
}

/// Opens the folder `parts` under `root` one level at a time, creating missing ones,
/// refusing anything that is not a real folder (a link above all).
fn walk(root: &OwnedFd, parts: &[&[u8]]) -> Result<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut dir = root.try_clone().context("duplicating a descriptor")?;
    for (i, part) in parts.iter().enumerate() {
        let name = OsStr::from_bytes(part);
        let next = match nix::fcntl::openat(&dir, name, flags, Mode::empty()) {
            Err(Errno::ENOENT) => {
                // A folder the archive does not hold gets the mode tar gives it: all
                // but the umask. One it holds gets its own at the end.
                nix::sys::stat::mkdirat(&dir, name, Mode::from_bits_truncate(0o777))?;
                nix::fcntl::openat(&dir, name, flags, Mode::empty())
            }
            other => other,
        };
        dir = match next {
            Ok(fd) => fd,
            Err(Errno::ELOOP | Errno::ENOTDIR) => bail!(
                "refusing to write through {}: it is not a folder (a link?)",
                String::from_utf8_lossy(&parts[..=i].join(&b'/'))
            ),
            Err(e) => return Err(e.into()),
        };
    }
    Ok(dir)
}

/// A dumpdir's listing, read whole: one name per child of one folder.
fn dumpdir_data<R: io::Read>(header: &Header, reader: &mut Reader<R>) -> Result<Vec<u8>> {
    let mut data = Vec::with_capacity(header.size.min(1 << 20) as usize);
    io::Read::read_to_end(&mut reader.data(), &mut data).context("reading a folder listing")?;
    Ok(data)
}
