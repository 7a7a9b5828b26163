//! Walking the source tree into a tar stream, one entry at a time.
//!
//! Memory stays small whatever the tree: one folder's list of names at each level of
//! the current path (in an incremental backup, also of the next two folders to enter at
//! that level, listed ahead), the names of files with several hard links, and the stream's
//! batches. Files are read straight into the batches: a small one whole, after its
//! header; a large one a batch at a time.
//!
//! The tree may change while it is read. Whatever happens, every header's size matches
//! the bytes that follow it: a file that shrinks is padded with zeros, one that grows is
//! cut at the size its header announced, and each such event becomes a warning.

use std::collections::HashMap;
use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use nix::dir::{Dir, Type};
use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat};

use super::sink::{self, ROOM, Stream};
use super::{ListFn, PROGRESS_EVERY, Progress, ProgressFn, Summary};

use crate::excludes::Excludes;
use crate::incremental::{self, Child, Tracker};
use crate::tar::{self, Header, Kind};
pub use choose::Plan;

mod choose;
mod data;
mod dumpdir;
mod header;
mod helper;
mod links;
mod list;

use header::{gone_or_unreadable, kind_of, refuse_unreadable, walk_header};

use dumpdir::{Store, Upcoming};
use helper::{Ahead, Helper};
use list::{Listed, Listing, Seen, list, open_dir};

/// Files up to this size are read whole into the stream in one `read`; larger ones a
/// batch at a time.
const SMALL_FILE: u64 = 256 * 1024;

/// Zeros for padding, made once: a fresh array per file would be zeroed per file.
static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

/// A backup with more warnings than this keeps the first ones and counts the rest, so
/// that a tree of a million unreadable files cannot fill memory or the log.
const MAX_WARNINGS: usize = 100;

/// Writes the tree at `source` into `stream`, entries named under `name`, leaving out
/// what `plan` says. Fails only when the source itself cannot be read or the archive
/// cannot be written; trouble with anything inside the tree is a warning.
pub fn write_tree(
    stream: &mut Stream,
    source: &Path,
    name: &[u8],
    plan: Plan<'_>,
    incremental: Option<&mut Tracker>,
) -> Result<Summary> {
    let mut walk = Walk::new(stream, plan, incremental, name);
    let c_source = CString::new(source.as_os_str().as_bytes())
        .with_context(|| format!("source {} holds a NUL byte", source.display()))?;
    let stat = fstatat(AT_FDCWD, c_source.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
        .with_context(|| format!("reading source {}", source.display()))?;
    if walk.exclude.contains(&(stat.st_dev, stat.st_ino)) {
        anyhow::bail!(
            "source {} is the backups folder or the service's pid file",
            source.display()
        );
    }
    walk.top_dev = stat.st_dev;
    walk.label()?;
    walk.top(source, &c_source, &stat, name)?;
    let end = [0u8; 2 * tar::BLOCK];
    walk.stream
        .write_all(&end)
        .context("writing the end of the archive")?;
    if let Some(tracker) = walk.incremental.as_mut() {
        tracker.hand_over();
    }
    walk.report();
    Ok(walk.summary)
}

struct Walk<'s, 'p, 't> {
    stream: &'s mut Stream,
    /// In an incremental backup: folders become dumpdirs, and only what changed since
    /// the previous backup is stored.
    incremental: Option<&'t mut Tracker>,
    progress: Option<ProgressFn<'p>>,
    /// When progress was last reported.
    last_report: Instant,
    /// File data archived so far.
    bytes: u64,
    header: Vec<u8>,
    /// What never to archive: the backups folder, and the service's pid file, which the
    /// service must never open twice (closing any descriptor of a file drops the
    /// process's POSIX lock on it).
    exclude: Vec<(u64, u64)>,
    /// What the schedule leaves out; `None` costs nothing.
    excludes: Option<Excludes>,
    /// With `one-file-system`: only folders on `top_dev`, the source's device, are
    /// descended into.
    one_file_system: bool,
    top_dev: u64,
    /// With `exclude-larger-than`: regular files larger than this are left out.
    larger_than: Option<u64>,
    /// Told of each entry written (`run --dry-run`).
    listing: Option<ListFn<'p>>,
    /// Where, in an entry's name, its path relative to the source starts.
    rel_from: usize,
    /// First name of each file with several links, so that later ones become links.
    hard_links: HashMap<(u64, u64), Vec<u8>>,
    users: HashMap<u32, Vec<u8>>,
    groups: HashMap<u32, Vec<u8>>,
    summary: Summary,
    /// In an incremental backup: `stat`s folders' children for their dumpdirs, and lists
    /// the next folder ahead, on a second thread as well as this one.
    helper: Helper,
}

impl<'s, 'p, 't> Walk<'s, 'p, 't> {
    fn new(
        stream: &'s mut Stream,
        plan: Plan<'p>,
        incremental: Option<&'t mut Tracker>,
        name: &[u8],
    ) -> Self {
        let Plan {
            exclude,
            excludes,
            one_file_system,
            larger_than,
            progress,
            listing,
        } = plan;
        Walk {
            incremental,
            excludes,
            one_file_system,
            top_dev: 0,
            larger_than,
            listing,
            rel_from: if name.is_empty() { 0 } else { name.len() + 1 },
            progress,
            last_report: Instant::now(),
            bytes: 0,
            stream,
            header: Vec::with_capacity(4 * tar::BLOCK),
            helper: Helper::new(exclude.clone()),
            exclude,
            hard_links: HashMap::new(),
            users: HashMap::new(),
            groups: HashMap::new(),
            summary: Summary::default(),
        }
    }

    /// In an incremental backup, the GNU volume header that starts the archive, which
    /// extraction skips: it says full or incremental.
    fn label(&mut self) -> Result<()> {
        let Some(tracker) = &self.incremental else {
            return Ok(());
        };
        let mut label = Header::new(tracker.label().to_vec(), Kind::VOLUME_LABEL);
        label.mtime = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        self.put(label)
    }

    /// Archives the source itself, `stat` as found, named `name`: a folder and all it
    /// holds, or a single entry.
    fn top(&mut self, source: &Path, c_source: &CStr, stat: &FileStat, name: &[u8]) -> Result<()> {
        if kind_of(stat) != Some(Kind::Dir) {
            return self.entry(AT_FDCWD, c_source, None, source, name, None);
        }
        // The source itself must be listable: an archive of nothing is no backup.
        let dir = open_dir(AT_FDCWD, c_source)
            .with_context(|| format!("opening source folder {}", source.display()))?;
        // An incremental archive lists even the top folder, as `./` when it is `.`, so
        // that what was deleted at the top is deleted on extraction.
        let shown: &[u8] = match (name.is_empty(), self.incremental.is_some()) {
            (false, _) => name,
            (true, true) => b".",
            (true, false) => b"",
        };
        let header = (!shown.is_empty())
            .then(|| walk_header(&mut self.users, &mut self.groups, shown, Kind::Dir, stat));
        self.children(
            dir,
            None,
            &mut source.to_path_buf(),
            &mut name.to_vec(),
            header,
        )
    }
}

/// Why an entry could not be archived: a write error ends the backup, a read error
/// only this entry.
enum Trouble {
    Write(anyhow::Error),
    Read(String),
}

impl From<io::Error> for Trouble {
    fn from(e: io::Error) -> Self {
        Trouble::Write(e.into())
    }
}

impl Walk<'_, '_, '_> {
    /// Reports progress if some is wanted and the last report is old enough. Cheap: a
    /// clock read per entry or per batch read, against the system calls each costs.
    fn tick(&mut self) {
        if self.progress.is_some() && self.last_report.elapsed() >= PROGRESS_EVERY {
            self.report();
        }
    }

    fn report(&mut self) {
        if let Some(progress) = self.progress {
            progress(Progress {
                entries: self.summary.entries,
                bytes: self.bytes,
            });
            self.last_report = Instant::now();
        }
    }

    /// How many warnings so far, kept or only counted.
    fn warnings(&self) -> u64 {
        self.summary.warnings.len() as u64 + self.summary.more_warnings
    }

    fn warn(&mut self, message: String) {
        if self.summary.warnings.len() < MAX_WARNINGS {
            self.summary.warnings.push(message);
        } else {
            self.summary.more_warnings += 1;
        }
    }

    /// Gives `header` the extended attributes and ACLs of the open file `fd`, at `disk`.
    fn extras(&mut self, fd: BorrowedFd<'_>, disk: &Path, header: &mut Header) {
        let (extras, trouble) = super::extras::read(fd);
        header.extras = extras;
        if let Some(trouble) = trouble {
            self.warn(format!("{}: {trouble}", disk.display()));
        }
    }

    /// Writes an entry that has no data (all but files and dumpdirs).
    fn put(&mut self, header: Header) -> Result<()> {
        self.put_with(header, Vec::new())
    }

    /// Writes an entry, and `data` after its header (a dumpdir's listing).
    fn put_with(&mut self, header: Header, data: Vec<u8>) -> Result<()> {
        refuse_unreadable(&header, data.len() as u64)?;
        self.listed(&header);
        self.header.clear();
        header.encode(&mut self.header);
        let at = self.stream.position();
        let wrote = |e| anyhow::Error::from(e).context("writing to the archive");
        self.stream.write_all(&self.header).map_err(wrote)?;
        if !data.is_empty() {
            self.stream.write_all(&data).map_err(wrote)?;
            let pad = tar::padding(data.len() as u64) as usize;
            self.stream.write_all(&ZEROS[..pad]).map_err(wrote)?;
        }
        let data_at = at + self.header.len() as u64;
        self.stream.note(header, at, data_at, &data);
        self.summary.entries += 1;
        self.tick();
        Ok(())
    }

    /// Archives the folder `dir`: its header, if any, then its children, as `listed`
    /// ahead or, if not, as listed now.
    fn children(
        &mut self,
        mut dir: Dir,
        listed: Option<Listed>,
        disk: &mut PathBuf,
        name: &mut Vec<u8>,
        mut header: Option<Header>,
    ) -> Result<()> {
        if let Some(header) = &mut header {
            self.extras(dir.as_fd(), disk, header);
        }
        let Listed {
            mut children,
            error,
            ..
        } = listed.unwrap_or_else(|| list(&mut dir, &self.exclude));
        if let Some(e) = error {
            self.warn(format!(
                "{}: cannot list the folder ({}); some of its contents are left out",
                disk.display(),
                e.desc()
            ));
        }
        self.leave_out_excluded(dir.as_fd(), disk, name, &mut children);
        let stored = match header {
            Some(header) if self.incremental.is_some() => {
                let (kept, stored) = self.dumpdir(&dir, disk, name, header, children)?;
                children = kept;
                stored
            }
            Some(header) => {
                self.put(header)?;
                Vec::new()
            }
            None => Vec::new(),
        };
        let name_len = name.len();
        let mut upcoming = Upcoming::default();
        for (i, (file_name, file_type)) in children.iter().enumerate() {
            let store = stored.get(i).copied();
            if store == Some(Store::No) {
                continue;
            }
            let ahead = if store == Some(Store::Folder) {
                upcoming.enter(i, dir.as_fd(), &children, &stored, &mut self.helper)
            } else {
                None
            };
            let warned = self.warnings();
            disk.push(OsStr::from_bytes(file_name.to_bytes()));
            if !name.is_empty() {
                name.push(b'/');
            }
            name.extend_from_slice(file_name.to_bytes());
            let result = self.entry(dir.as_fd(), file_name, *file_type, disk, name, ahead);
            disk.pop();
            name.truncate(name_len);
            result?;
            // A file listed as stored but not stored whole (unreadable, changed while
            // read) is recorded with its status all the same: the next backup must not
            // take it for unchanged.
            if store == Some(Store::File) && self.warnings() > warned {
                if let Some(tracker) = self.incremental.as_mut() {
                    tracker.unstored(name, file_name.to_bytes());
                }
            }
        }
        if let Some(excludes) = &mut self.excludes {
            excludes.leave();
        }
        self.helper.close(dir);
        Ok(())
    }

    /// Tells the schedule's excludes, if any, that the walk enters the folder `dir`, and
    /// drops from its listing the children they leave out, before any is opened. Every
    /// call is matched by a `leave` at the end of [`Walk::children`].
    fn leave_out_excluded(
        &mut self,
        dir: BorrowedFd<'_>,
        disk: &Path,
        name: &[u8],
        children: &mut Vec<(CString, Option<Type>)>,
    ) {
        let Some(excludes) = &mut self.excludes else {
            return;
        };
        let rel = name.get(self.rel_from..).unwrap_or_default();
        let warnings = excludes.filter(dir, rel, disk, children, |(name, file_type)| {
            (name.as_c_str(), *file_type)
        });
        for warning in warnings {
            self.warn(warning);
        }
    }

    /// Archives one entry of the folder `parent`. The file type from the folder listing
    /// lets regular files go straight to `open`, saving a `stat`. A folder asked to be
    /// listed `ahead` is taken from the helper if it is still the one met here.
    fn entry(
        &mut self,
        parent: BorrowedFd<'_>,
        file_name: &CStr,
        file_type: Option<Type>,
        disk: &Path,
        name: &[u8],
        ahead: Option<Ahead>,
    ) -> Result<()> {
        let mut name = name.to_vec();
        // A size limit needs the size before the file is opened.
        if file_type == Some(Type::File) && self.larger_than.is_none() {
            return self.file(parent, file_name, disk, &name);
        }
        let stat = match fstatat(parent, file_name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            Err(e) => {
                self.warn(gone_or_unreadable(disk, e));
                return Ok(());
            }
        };
        match kind_of(&stat) {
            Some(Kind::File) if self.too_large(&stat) => Ok(()),
            Some(Kind::File) => self.file(parent, file_name, disk, &name),
            Some(Kind::Dir) => self.folder(parent, file_name, disk, &mut name, &stat, ahead),
            Some(kind @ Kind::Symlink) => self.symlink(parent, file_name, disk, &name, kind, &stat),
            Some(kind @ (Kind::Fifo | Kind::CharDevice | Kind::BlockDevice)) => {
                if self.hard_link(&name, &stat)? {
                    return Ok(());
                }
                let mut header = walk_header(&mut self.users, &mut self.groups, &name, kind, &stat);
                if kind != Kind::Fifo {
                    header.device = (
                        nix::sys::stat::major(stat.st_rdev) as u32,
                        nix::sys::stat::minor(stat.st_rdev) as u32,
                    );
                }
                self.put(header)
            }
            _ => {
                let what = if stat.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFSOCK.bits() {
                    "a socket"
                } else {
                    "of an unknown type"
                };
                self.warn(format!(
                    "{}: skipped, {what} cannot be archived",
                    disk.display()
                ));
                Ok(())
            }
        }
    }

    /// Archives the folder `file_name` of `parent`, with `stat`, and all it holds.
    fn folder(
        &mut self,
        parent: BorrowedFd<'_>,
        file_name: &CStr,
        disk: &Path,
        name: &mut Vec<u8>,
        stat: &FileStat,
        ahead: Option<Ahead>,
    ) -> Result<()> {
        #[cfg(debug_assertions)]
        crate::pause::at(&format!("enter-{}", file_name.to_string_lossy()));
        // A mount point lists the inode beneath it: check the folder itself too.
        if self.exclude.contains(&(stat.st_dev, stat.st_ino)) {
            return Ok(());
        }
        let header = walk_header(&mut self.users, &mut self.groups, name, Kind::Dir, stat);
        if self.one_file_system && stat.st_dev != self.top_dev {
            return self.mount_point(parent, file_name, disk, name, header);
        }
        // Listed ahead, maybe long before: used only if it is the same folder, with no
        // entry made, removed or renamed since.
        let listed = ahead
            .and_then(|ahead| self.helper.listed(ahead))
            .filter(|(_, listed)| listed.seen == Some(Seen::of(stat)));
        let (dir, listed) = match listed {
            Some((dir, listed)) => (dir, Some(listed)),
            None => match open_dir(parent, file_name) {
                Ok(dir) => (dir, None),
                Err(Errno::ENOENT) => {
                    self.warn(gone_or_unreadable(disk, Errno::ENOENT));
                    return Ok(());
                }
                Err(e) => {
                    // The folder is stored (it exists, with its mode and owner), empty.
                    self.put(header)?;
                    self.warn(format!(
                        "{}: cannot open the folder ({}); its contents are left out",
                        disk.display(),
                        e.desc()
                    ));
                    return Ok(());
                }
            },
        };
        self.children(dir, listed, &mut disk.to_path_buf(), name, Some(header))
    }
}
