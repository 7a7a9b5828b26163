//! Incremental backups: chains of a full archive and incrementals in GNU tar's own
//! incremental format, so that `tar -x --listed-incremental=/dev/null` of each archive
//! in order restores the tree as it was at any backup.
//!
//! # The format
//!
//! Every folder is a GNU "dumpdir" entry (type `D`): its data lists each child's name,
//! NUL-terminated, after a flag: `Y` for a file stored in this archive, `N` for one not
//! stored because it did not change since the previous backup, `D` for a folder; an
//! empty name ends the list. Folders are always stored, files only when `Y`. On
//! extraction with `--listed-incremental`, GNU tar removes from each folder what its
//! dumpdir does not list (deleted and renamed-away files), and what is listed with the
//! other kind (a folder become a file, a file become a folder). A renamed file is a new
//! name: listed `Y` and stored. A full backup is the same with every file `Y`.
//!
//! # What changed
//!
//! Decided from our own [record] of the previous backup, never from mtimes
//! alone: a child is unchanged only when its kind, device, inode, size, mtime and ctime
//! (both to the nanosecond) are all as recorded. A `chmod`, a `touch -d` into the past
//! and a file replaced within one second all move the ctime or the inode.

pub mod record;

use std::fs::File;

use anyhow::{Context, Result, bail};
use nix::sys::stat::FileStat;

use crate::tar::dumpdir::{self, FOLDER, NOT_STORED, STORED};
use crate::write_back::Eager;

pub use record::{Child, Head, Retries};

/// The label (a GNU volume header, which extraction skips) that starts each archive of
/// a chain, telling a full backup from an incremental one without reading further.
pub const FULL_LABEL: &[u8] = b"backup_manager full";
/// The label of an incremental archive.
pub const INCREMENTAL_LABEL: &[u8] = b"backup_manager incremental";

impl<'n> Child<'n> {
    /// What the record keeps of a child named `name` with status `stat`.
    pub fn of(name: &'n [u8], stat: &FileStat) -> Self {
        Child {
            name,
            kind: ((stat.st_mode & libc::S_IFMT) >> 12) as u8,
            dev: stat.st_dev,
            ino: stat.st_ino,
            size: stat.st_size as u64,
            mtime: (stat.st_mtime, stat.st_mtime_nsec as u32),
            ctime: (stat.st_ctime, stat.st_ctime_nsec as u32),
        }
    }

    /// Whether this child is a folder.
    pub fn is_dir(&self) -> bool {
        u32::from(self.kind) << 12 == libc::S_IFDIR
    }
}

/// The walk's companion in an incremental backup: compares each folder's children with
/// the previous record and writes the new one.
pub struct Tracker {
    previous: Option<record::Reader<File>>,
    /// The previous backup's files to try again: stored whatever their status.
    retries: Retries,
    /// The new record, handed to the disk as it is written: its fsync comes after the
    /// archive's, and has little left to do then.
    next: record::Writer<Eager>,
    /// This backup's files to try again.
    unstored: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Tracker {
    /// A tracker comparing with `previous` and its files to try again (none: a full
    /// backup) and writing the new record into `next`, whose head is `head`.
    pub fn new(
        previous: Option<(record::Reader<File>, Retries)>,
        next: File,
        head: &Head,
    ) -> Result<Self> {
        let (previous, retries) = match previous {
            Some((reader, retries)) => (Some(reader), retries),
            None => (None, Retries::new()),
        };
        Ok(Tracker {
            previous,
            retries,
            next: record::Writer::new(Eager::new(next), head).context("writing the record")?,
            unstored: Vec::new(),
        })
    }

    /// The file `child` of the folder `folder` was to be stored but could not be whole
    /// (unreadable, or changed while read): the next backup stores it again, even if its
    /// status is as recorded.
    pub fn unstored(&mut self, folder: &[u8], child: &[u8]) {
        self.unstored.push((folder.to_vec(), child.to_vec()));
    }

    /// The label that starts the archive: full when there is no previous record.
    pub fn label(&self) -> &'static [u8] {
        if self.previous.is_none() {
            FULL_LABEL
        } else {
            INCREMENTAL_LABEL
        }
    }

    /// The folder `name` holds `children` (sorted by name): records them, and says for
    /// each whether it is to be stored (new or changed since the previous backup).
    pub fn folder(&mut self, name: &[u8], children: &[Child<'_>]) -> Result<Vec<bool>> {
        self.next
            .folder(name, children)
            .context("writing the record")?;
        let Some(previous) = &mut self.previous else {
            return Ok(vec![true; children.len()]);
        };
        let before = match previous
            .folder(name)
            .context("reading the previous record")?
        {
            Some(folder) => folder.children().context("reading the previous record")?,
            None => return Ok(vec![true; children.len()]),
        };
        // Both lists are sorted by name: one pass over each. (Were the record's not, a
        // child would only be missed, and so stored: never wrongly left out.)
        let mut old = before.iter().peekable();
        // This folder's files to try again, found once: the set is ordered by folder.
        let retry: Vec<&[u8]> = if self.retries.is_empty() {
            Vec::new()
        } else {
            self.retries
                .range((name.to_vec(), Vec::new())..)
                .take_while(|(folder, _)| folder.as_slice() == name)
                .map(|(_, child)| child.as_slice())
                .collect()
        };
        Ok(children
            .iter()
            .map(|child| {
                while old.next_if(|old| old.name < child.name).is_some() {}
                old.next_if(|old| old.name == child.name)
                    .is_none_or(|old| old != child)
                    || retry.contains(&child.name)
            })
            .collect())
    }

    /// Ends the new record; hands back its file, written but not yet synced. With more
    /// files to try again than a record keeps, there is no new record: the next backup
    /// compares with the previous one, and so stores these files and more.
    pub fn finish(mut self) -> Result<File> {
        if self.unstored.len() > record::MAX_RETRIES {
            bail!(
                "{} files could not be stored whole, more than a record keeps ({}); the \
                 next backup compares with the previous record",
                self.unstored.len(),
                record::MAX_RETRIES
            );
        }
        self.unstored.sort_unstable();
        self.unstored.dedup();
        for (folder, child) in &self.unstored {
            self.next
                .retry(folder, child)
                .context("writing the record")?;
        }
        let out = self.next.finish().context("writing the record")?;
        Ok(out.into_inner())
    }

    /// Called once the walk is over: starts the write-back of the record so far, to
    /// be done by the time the archive is synced. A failure here shows again, and is
    /// reported, when the record is finished.
    pub fn hand_over(&mut self) {
        if let Ok(out) = self.next.flushed() {
            out.hand_over();
        }
    }
}

/// A dumpdir's data: each child flagged as a folder, stored or not stored, then an empty
/// name.
pub fn dumpdir(children: &[Child<'_>], stored: &[bool]) -> Vec<u8> {
    dumpdir::encode(children.iter().zip(stored).map(|(child, &stored)| {
        let flag = if child.is_dir() {
            FOLDER
        } else if stored {
            STORED
        } else {
            NOT_STORED
        };
        (flag, child.name)
    }))
}
