//! The backups of a home as the mount shows them: each schedule's kept generations, and
//! each generation's tree from its index (or its archive), resolved through its chain.

use std::cell::RefCell;
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use anyhow::{Result, bail};

use super::{Backups, Entry, Generation, Kind, Snapshot};
use crate::browse::{Item, View};
use crate::generations::{self, Archive, chain};
use crate::home::Home;
use crate::tar;

/// How many files' readers are kept open at where the last read ended, so that a file
/// read in order is decoded once, not once a read.
const READERS_KEPT: usize = 4;

/// The backups of a home, or of some of its schedules.
pub struct HomeBackups {
    home: Home,
    only: Vec<String>,
}

impl HomeBackups {
    /// The generations of the schedules named `only` (all if none) of `home`.
    pub fn new(home: Home, only: Vec<String>) -> Self {
        HomeBackups { home, only }
    }

    /// The archives of `name`, newest first; encrypted ones are not shown (reading them
    /// needs an identity the mount does not take yet).
    fn archives(&self, name: &str) -> Result<Vec<Archive>> {
        Ok(generations::list(&self.home.backups())?
            .into_iter()
            .filter(|a| a.schedule == name && !a.encrypted)
            .collect())
    }
}

/// A generation's folder name: its date as `backups` and `restore --at` show it, with
/// the `-N` of a dated name that has one. `NAME.tar` goes by the dated name it is
/// linked to (its lasting name), found in `dir`; by its time when it has none.
pub fn label(dir: &Path, archive: &Archive) -> String {
    let stamp_of = |file_name: &str| {
        file_name
            .strip_prefix(&format!("{}.", archive.schedule))
            .and_then(|rest| rest.strip_suffix(archive.format().suffix()))
            .map(str::to_owned)
    };
    if !archive.latest {
        if let Some(stamp) = stamp_of(&archive.name) {
            return stamp;
        }
    }
    let twin = fs::metadata(dir.join(&archive.name))
        .ok()
        .and_then(|latest| {
            fs::read_dir(dir).ok()?.flatten().find_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                let meta = entry.metadata().ok()?;
                let same = meta.ino() == latest.ino() && meta.dev() == latest.dev();
                (same && name != archive.name && !name.starts_with('.'))
                    .then(|| stamp_of(&name))
                    .flatten()
            })
        });
    twin.unwrap_or_else(|| archive.made.format("%Y-%m-%d_%H%M").to_string())
}

impl Backups for HomeBackups {
    fn names(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = Vec::new();
        for archive in generations::list(&self.home.backups())? {
            if archive.encrypted {
                continue;
            }
            let wanted = self.only.is_empty() || self.only.contains(&archive.schedule);
            if wanted && !names.contains(&archive.schedule) {
                names.push(archive.schedule);
            }
        }
        Ok(names)
    }

    fn generations(&self, name: &str) -> Result<Vec<Generation>> {
        let mut out: Vec<Generation> = Vec::new();
        for archive in self.archives(name)? {
            let label = label(&self.home.backups(), &archive);
            if !out.iter().any(|g| g.label == label) {
                out.push(Generation {
                    label,
                    made: archive.made.timestamp(),
                });
            }
        }
        Ok(out)
    }

    fn open(&self, name: &str, wanted: &str) -> Result<Rc<dyn Snapshot>> {
        let Some(archive) = self
            .archives(name)?
            .into_iter()
            .find(|a| label(&self.home.backups(), a) == wanted)
        else {
            bail!("{name} has no generation {wanted} any more");
        };
        let chain = chain::chain_to(&self.home.backups(), &archive.name, archive.format())?;
        let view = View::open(&chain, archive.compression)?;
        for warning in view.warnings() {
            log::warn!("Warning: {warning}");
        }
        Ok(Rc::new(HomeSnapshot::new(view)))
    }
}

/// A reader kept where a read ended: its entry, where it is, and the reader.
type Kept = (usize, u64, Box<dyn Read>);

/// A generation open: its view and its entries as the mount takes them.
struct HomeSnapshot {
    view: View,
    entries: Vec<Entry>,
    /// Readers left where a read ended: (entry, position, reader).
    readers: RefCell<Vec<Kept>>,
}

impl HomeSnapshot {
    fn new(view: View) -> Self {
        let entries = view
            .items
            .iter()
            .map(|item| entry_of(&item.entry))
            .collect();
        HomeSnapshot {
            view,
            entries,
            readers: RefCell::new(Vec::new()),
        }
    }
}

fn entry_of(entry: &crate::index::Entry) -> Entry {
    let link = || PathBuf::from(std::ffi::OsStr::from_bytes(&entry.link));
    let kind = match entry.kind() {
        _ if entry.is_dir() => Kind::Folder,
        tar::Kind::HardLink => Kind::HardLink(link()),
        tar::Kind::Symlink => Kind::Symlink(link()),
        tar::Kind::CharDevice => Kind::CharDevice(entry.device.0, entry.device.1),
        tar::Kind::BlockDevice => Kind::BlockDevice(entry.device.0, entry.device.1),
        tar::Kind::Fifo => Kind::Fifo,
        _ => Kind::File,
    };
    Entry {
        path: PathBuf::from(std::ffi::OsStr::from_bytes(&entry.name)),
        kind,
        mode: entry.mode,
        uid: u32::try_from(entry.uid).unwrap_or(u32::MAX),
        gid: u32::try_from(entry.gid).unwrap_or(u32::MAX),
        size: entry.size,
        mtime: entry.mtime,
        mtime_nanos: 0,
    }
}

impl Snapshot for HomeSnapshot {
    fn entries(&self) -> &[Entry] {
        &self.entries
    }

    fn read_at(&self, entry: usize, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let item = &self.view.items[entry];
        if offset >= item.entry.size || buf.is_empty() {
            return Ok(0);
        }
        let mut readers = self.readers.borrow_mut();
        let kept = readers
            .iter()
            .position(|(e, at, _)| *e == entry && *at == offset);
        let mut reader = match kept {
            Some(i) => readers.remove(i).2,
            None => match self.open_at(item, offset).map_err(io::Error::other)? {
                Some(reader) => reader,
                None => return self.read_sparse(item, offset, buf),
            },
        };
        let n = reader.read(buf)?;
        if readers.len() >= READERS_KEPT {
            readers.remove(0);
        }
        readers.push((entry, offset + n as u64, reader));
        Ok(n)
    }
}

impl HomeSnapshot {
    /// A reader of the data of `item` (a hard link's target's) from `offset` on; `None`
    /// for a sparse file.
    fn open_at(&self, item: &Item, offset: u64) -> Result<Option<Box<dyn Read>>> {
        let data = self.view.data_of(item)?;
        self.view.catalog_of(data).data_from(&data.entry, offset)
    }

    /// Reads a sparse file's bytes from `offset`: expanded from its start, as its holes
    /// lie between its pieces of data.
    fn read_sparse(&self, item: &Item, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let mut window = Window {
            skip: offset,
            buf,
            filled: 0,
        };
        let copied = self
            .view
            .copy_data(item, &mut window)
            .map_err(|e| format!("{e:#}"));
        match copied {
            Ok(_) => Ok(window.filled),
            Err(_) if window.filled == window.buf.len() => Ok(window.filled),
            Err(e) => Err(io::Error::other(e)),
        }
    }
}

/// Takes the bytes of a stream from `skip` on until `buf` is full, then refuses more,
/// which stops the copy.
struct Window<'a> {
    skip: u64,
    buf: &'a mut [u8],
    filled: usize,
}

impl io::Write for Window<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let skipped = (self.skip.min(data.len() as u64)) as usize;
        self.skip -= skipped as u64;
        let rest = &data[skipped..];
        let n = rest.len().min(self.buf.len() - self.filled);
        self.buf[self.filled..self.filled + n].copy_from_slice(&rest[..n]);
        self.filled += n;
        if self.filled == self.buf.len() && n < rest.len() {
            return Err(io::Error::other("enough"));
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
