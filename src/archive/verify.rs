//! Checking an archive: its structure end to end, and optionally its entries against the
//! live tree, as `tar --diff` does.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use anyhow::{Context, Result};

use super::check::{Checker, listing_of};
use super::open::Reading;
use crate::excludes::{Excludes, PathCheck};
use crate::schedule::Options;
use crate::tar::sparse::Expand;
use crate::tar::{Extras, Header, Kind, Reader};

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
/// truncated entry, a missing end marker, a corrupt compressed stream) is an error, and
/// so is any entry that `restore` would refuse: `checker` makes the very check restore
/// does (give it the archives of a chain in order). With `source`, each entry is also
/// compared with the live tree and the differences listed; an entry is checked before it
/// is compared, so no name that climbs out of the source is ever opened.
pub fn verify(
    path: &Path,
    reading: Reading<'_>,
    source: Option<Source<'_>>,
    checker: &mut Checker,
) -> Result<Report> {
    let input = reading.open(path)?;
    let mut reader = Reader::new(input);
    let mut report = Report::default();
    let mut compare = source.map(Compare::new).transpose()?;
    while let Some(header) = reader
        .next_entry()
        .with_context(|| format!("reading {}", path.display()))?
    {
        let listing = listing_of(&header, &mut reader)
            .with_context(|| format!("reading {}", path.display()))?;
        checker
            .entry(&header, listing.as_deref())
            .map_err(|e| anyhow::anyhow!("restore would refuse it: {e:#}"))?;
        // An incremental chain's label is no entry of the tree.
        if header.kind == Kind::VOLUME_LABEL {
            continue;
        }
        report.entries += 1;
        let shown = String::from_utf8_lossy(&header.name).into_owned();
        if matches!(header.kind, Kind::Other(_)) && header.kind != Kind::DUMPDIR {
            report.not_restorable.push(shown.clone());
        }
        if let Some(compare) = &mut compare {
            let mut differ = |what: &str| report.differences.push(format!("{shown}: {what}"));
            compare.entry(&header, &mut reader, &mut differ);
        }
    }
    Ok(report)
}

/// Compares entries with the live tree, as `tar --diff` does.
struct Compare<'a> {
    source: Source<'a>,
    /// What the schedule leaves out, by the rules on disk now.
    excluded: Option<PathCheck>,
    /// Buffers for the archived and the live contents.
    a: Vec<u8>,
    b: Vec<u8>,
}

impl<'a> Compare<'a> {
    fn new(source: Source<'a>) -> Result<Self> {
        let excluded = Excludes::new(source.options, source.root)?
            .map(|excludes| PathCheck::new(excludes, source.root));
        Ok(Compare {
            source,
            excluded,
            a: vec![0u8; 1 << 16],
            b: vec![0u8; 1 << 16],
        })
    }

    /// Compares the entry `header`, whose data `reader` is at, telling `differ` each
    /// difference.
    fn entry<R: Read>(
        &mut self,
        header: &Header,
        reader: &mut Reader<R>,
        differ: &mut dyn FnMut(&str),
    ) {
        let Some(rel) = under_source(self.source, &header.name) else {
            return differ("not under the schedule's source");
        };
        if let Some(check) = &mut self.excluded {
            if check.leaves_out(rel, header.kind == Kind::Dir) {
                return;
            }
        }
        let disk = Live::new(self.source.root, rel);
        let meta = match disk.metadata() {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return differ("missing from the source");
            }
            Err(e) => return differ(&format!("cannot read {}: {e}", disk.shown.display())),
        };
        if !self.same_kind(header, &meta, differ) {
            return;
        }
        same_metadata(header, &meta, differ);
        if matches!(header.kind, Kind::File | Kind::Dir | Kind::DUMPDIR) {
            match disk.extras() {
                Ok(live) => {
                    for what in super::extras::differences(&header.extras, &live) {
                        differ(&what);
                    }
                }
                Err(e) => differ(&format!("cannot read its extended attributes: {e}")),
            }
        }
        match header.kind {
            Kind::Symlink if disk.read_link().ok() != Some(header.link.clone()) => {
                differ("symbolic link target differs")
            }
            Kind::File if meta.len() != header.file_size() => differ("size differs"),
            Kind::File => self.same_file(header, &disk, reader, differ),
            _ => {}
        }
    }

    /// Whether the entry on disk is of the archived kind; a hard link is compared here
    /// whole (it must be the same file as its target), so there is nothing more to see.
    fn same_kind(
        &self,
        header: &Header,
        meta: &fs::Metadata,
        differ: &mut dyn FnMut(&str),
    ) -> bool {
        let kind = kind_of(meta);
        let expected = match header.kind {
            Kind::HardLink => Kind::File,
            // A dumpdir is a folder (with the list of its children).
            Kind::DUMPDIR => Kind::Dir,
            kind => kind,
        };
        if kind != Some(expected) && !(header.kind == Kind::HardLink && kind.is_some()) {
            differ("file type differs");
            return false;
        }
        if header.kind == Kind::HardLink {
            let target = under_source(self.source, &header.link)
                .map(|rel| Live::new(self.source.root, rel).metadata());
            match target {
                Some(Ok(target)) if (target.dev(), target.ino()) == (meta.dev(), meta.ino()) => {}
                _ => differ("not linked to the same file as in the archive"),
            }
            return false;
        }
        true
    }

    /// Compares a regular file's contents with its archived data.
    fn same_file<R: Read>(
        &mut self,
        header: &Header,
        disk: &Live,
        reader: &mut Reader<R>,
        differ: &mut dyn FnMut(&str),
    ) {
        let (a, b) = (&mut self.a, &mut self.b);
        let same = disk.open().and_then(|file| match &header.sparse {
            None => same_contents(&mut reader.data(), file, a, b),
            Some(map) => {
                let mut whole = Expand::new(reader.data(), map);
                same_contents(&mut whole, file, a, b)
            }
        });
        match same {
            Ok(true) => {}
            Ok(false) => differ("contents differ"),
            Err(e) => differ(&format!("cannot compare contents: {e}")),
        }
    }
}

/// Compares mode, owner and (but for folders) mtime: to the nanosecond when the archive
/// keeps a fraction, else to the second (an archive of GNU tar's default format, or one
/// made by an earlier version of this program, keeps none).
fn same_metadata(header: &Header, meta: &fs::Metadata, differ: &mut dyn FnMut(&str)) {
    let mode = super::extras::restored_mode(header);
    if meta.mode() & 0o7777 != mode && header.kind != Kind::Symlink {
        differ("mode differs");
    }
    if (u64::from(meta.uid()), u64::from(meta.gid())) != (header.uid, header.gid) {
        differ("owner differs");
    }
    let is_dir = matches!(header.kind, Kind::Dir | Kind::DUMPDIR);
    let nsec_differs = header.mtime_nsec != 0 && meta.mtime_nsec() != i64::from(header.mtime_nsec);
    if (meta.mtime() != header.mtime || nsec_differs) && !is_dir {
        differ("modification time differs");
    }
}

/// An entry's name relative to the source, or `None` if it is not under the source's.
/// The name has passed the check, so it has no `..`.
fn under_source<'n>(source: Source<'_>, name: &'n [u8]) -> Option<&'n Path> {
    Path::new(OsStr::from_bytes(name))
        .strip_prefix(source.prefix)
        .ok()
}

/// An entry in the live tree, reached from the source's root one folder at a time
/// without following a link, so that nothing outside the source is ever opened: a link
/// in the live tree where the archive holds a folder makes what is under it missing.
struct Live {
    /// The folder holding it, if every folder on the way is one.
    parent: io::Result<OwnedFd>,
    leaf: OsString,
    /// Where it is, for messages.
    shown: PathBuf,
}

impl Live {
    fn new(root: &Path, rel: &Path) -> Self {
        let shown = if rel.as_os_str().is_empty() {
            root.to_path_buf()
        } else {
            root.join(rel)
        };
        let parts: Vec<&OsStr> = rel.iter().collect();
        let (leaf, parent) = match parts.split_last() {
            // The source itself, as the schedule names it.
            None => (
                root.file_name().unwrap_or(OsStr::new(".")).to_owned(),
                open_dir(root.parent().unwrap_or(Path::new("/")), &[]),
            ),
            Some((leaf, parents)) => ((*leaf).to_owned(), open_dir(root, parents)),
        };
        Live {
            parent,
            leaf,
            shown,
        }
    }

    fn parent(&self) -> io::Result<&OwnedFd> {
        self.parent
            .as_ref()
            .map_err(|e| io::Error::new(e.kind(), e.to_string()))
    }

    /// Its own metadata (a link's, not its target's).
    fn metadata(&self) -> io::Result<fs::Metadata> {
        let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = nix::fcntl::openat(self.parent()?, self.leaf.as_os_str(), flags, Mode::empty())?;
        File::from(fd).metadata()
    }

    fn read_link(&self) -> io::Result<Vec<u8>> {
        let target = nix::fcntl::readlinkat(self.parent()?, self.leaf.as_os_str())?;
        Ok(target.as_bytes().to_vec())
    }

    /// Its extended attributes and ACLs, read through a descriptor (not a link's).
    fn extras(&self) -> io::Result<Extras> {
        let flags = OFlag::O_RDONLY
            | OFlag::O_NOFOLLOW
            | OFlag::O_NONBLOCK
            | OFlag::O_NOCTTY
            | OFlag::O_CLOEXEC;
        let fd = nix::fcntl::openat(self.parent()?, self.leaf.as_os_str(), flags, Mode::empty())?;
        Ok(super::extras::read(fd.as_fd()).0)
    }

    /// Opened to read, unless it is a link.
    fn open(&self) -> io::Result<File> {
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = nix::fcntl::openat(self.parent()?, self.leaf.as_os_str(), flags, Mode::empty())?;
        Ok(File::from(fd))
    }
}

/// The folder `parts` under `root`, each part opened without following a link; a part
/// that is missing or no folder reads as missing.
fn open_dir(root: &Path, parts: &[&OsStr]) -> io::Result<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let mut dir = nix::fcntl::open(root, flags, Mode::empty())?;
    for part in parts {
        dir = match nix::fcntl::openat(&dir, *part, flags | OFlag::O_NOFOLLOW, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ELOOP | Errno::ENOTDIR) => return Err(io::ErrorKind::NotFound.into()),
            Err(e) => return Err(e.into()),
        };
    }
    Ok(dir)
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
