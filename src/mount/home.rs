//! The backups of a home as the mount shows them: each schedule's kept generations, and
//! each generation's tree from its index (or its archive), resolved through its chain.

use std::cell::RefCell;
use std::io::{self, Read};
use std::rc::Rc;

use anyhow::{Result, bail};

use super::{Backups, Entries, Entry, Generation, Kind, Snapshot};
use crate::browse::{Catalog, Item, View};
use crate::encryption::Identity;
use crate::generations::{self, Archive, chain};
use crate::home::Home;
use crate::{index, tar};

/// How many files' readers are kept open at where the last read ended, so that a file
/// read in order is decoded once, not once a read.
const READERS_KEPT: usize = 4;

/// The most entries room is made for before a generation is read: more are read all the
/// same, with the room grown as they come.
const MAX_RESERVED: u64 = 1 << 21;

/// The backups of a home, or of some of its schedules.
pub struct HomeBackups {
    home: Home,
    only: Vec<String>,
    /// What opens encrypted archives; without it, they are not shown.
    key: Option<Rc<Identity>>,
}

impl HomeBackups {
    /// The generations of the schedules named `only` (all if none) of `home`.
    pub fn new(home: Home, only: Vec<String>, key: Option<Rc<Identity>>) -> Self {
        HomeBackups { home, only, key }
    }

    /// Whether `archive` can be read: it is not encrypted, or there is an identity.
    fn readable(&self, archive: &Archive) -> bool {
        !archive.encrypted || self.key.is_some()
    }

    /// The archives of `name` that can be read, newest first.
    fn archives(&self, name: &str) -> Result<Vec<Archive>> {
        Ok(generations::list(&self.home.backups())?
            .into_iter()
            .filter(|a| a.schedule == name && self.readable(a))
            .collect())
    }
}

/// A generation's folder name: its date as `backups` and `restore --at` show it, with
/// the `-N` of a dated name that has one. `NAME.tar` goes by the dated name it is
/// linked to (its lasting name); by its time when it has none.
pub fn label(archive: &Archive) -> String {
    match archive.stamp {
        Some(stamp) => stamp.to_string(),
        None => archive.made.format("%Y-%m-%d_%H%M").to_string(),
    }
}

impl Backups for HomeBackups {
    fn names(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = Vec::new();
        for archive in generations::list(&self.home.backups())? {
            if !self.readable(&archive) {
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
            let label = label(&archive);
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
            .find(|a| label(a) == wanted)
        else {
            bail!("{name} has no generation {wanted} any more");
        };
        let chain = chain::chain_to(&self.home.backups(), &archive.name, archive.format())?;
        let catalogs = View::catalogs(&chain, (archive.format(), self.key.clone()))?;
        for warning in catalogs.iter().filter_map(|c| c.warning.as_deref()) {
            log::warn!("Warning: {warning}");
        }
        Ok(Rc::new(HomeSnapshot::new(catalogs)?))
    }
}

/// A reader kept where a read ended: its entry, where it is, and the reader.
type Kept = (usize, u64, Box<dyn Read>);

/// Where an entry's data lies: which archive of the chain, where its header and its data
/// start in that archive's tar stream.
struct Place {
    archive: usize,
    header: u64,
    data: u64,
}

/// A generation open: its chain's archives, and its entries as the mount takes them.
struct HomeSnapshot {
    catalogs: Vec<Catalog>,
    entries: Entries,
    /// Where each entry's data lies.
    places: Vec<Place>,
    /// Readers left where a read ended: (entry, position, reader).
    readers: RefCell<Vec<Kept>>,
}

impl HomeSnapshot {
    /// The generation of the last of `catalogs`, resolved through them.
    fn new(catalogs: Vec<Catalog>) -> Result<Self> {
        // Made to size at once, not grown, as most of a first look's time is taking
        // memory: for as many entries as the largest index says, within reason.
        let count = catalogs.iter().filter_map(Catalog::entry_count).max();
        let count = count.unwrap_or(0).min(MAX_RESERVED) as usize;
        let mut entries = Entries::with_capacity(count);
        let mut places = Vec::with_capacity(count);
        let mut failed = None;
        View::resolve(&catalogs, &|_| true, &mut |item: &Item| {
            let e = &item.entry;
            if failed.is_some() {
                return;
            }
            if let Err(err) = entries.push(&e.name, &e.link, entry_of(e)) {
                failed = Some(err);
            }
            places.push(Place {
                archive: item.archive,
                header: e.header,
                data: e.data,
            });
        })?;
        if let Some(err) = failed {
            return Err(err);
        }
        Ok(HomeSnapshot {
            catalogs,
            entries,
            places,
            readers: RefCell::new(Vec::new()),
        })
    }

    /// The index entry of file `entry`, as its archive's reader takes it, and that
    /// archive.
    fn indexed(&self, entry: usize) -> io::Result<(&Catalog, index::Entry)> {
        let found = &self.entries[entry];
        if found.kind != Kind::File {
            let name = String::from_utf8_lossy(self.entries.path(entry));
            return Err(io::Error::other(format!("{name} is not a file")));
        }
        let place = &self.places[entry];
        let indexed = index::Entry {
            name: self.entries.path(entry).to_vec(),
            type_flag: b'0',
            size: found.size,
            header: place.header,
            data: place.data,
            ..index::Entry::default()
        };
        Ok((&self.catalogs[place.archive], indexed))
    }
}

fn entry_of(entry: &index::Entry) -> Entry {
    let kind = match entry.kind() {
        _ if entry.is_dir() => Kind::Folder,
        tar::Kind::HardLink => Kind::HardLink,
        tar::Kind::Symlink => Kind::Symlink,
        tar::Kind::CharDevice => Kind::CharDevice(entry.device.0, entry.device.1),
        tar::Kind::BlockDevice => Kind::BlockDevice(entry.device.0, entry.device.1),
        tar::Kind::Fifo => Kind::Fifo,
        _ => Kind::File,
    };
    Entry {
        kind,
        mode: entry.mode,
        uid: u32::try_from(entry.uid).unwrap_or(u32::MAX),
        gid: u32::try_from(entry.gid).unwrap_or(u32::MAX),
        size: entry.size,
        mtime: entry.mtime,
        mtime_nanos: entry.mtime_nsec,
    }
}

impl Snapshot for HomeSnapshot {
    fn entries(&self) -> &Entries {
        &self.entries
    }

    fn read_at(&self, entry: usize, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if offset >= self.entries[entry].size || buf.is_empty() {
            return Ok(0);
        }
        let mut readers = self.readers.borrow_mut();
        let kept = readers
            .iter()
            .position(|(e, at, _)| *e == entry && *at == offset);
        let mut reader = match kept {
            Some(i) => readers.remove(i).2,
            None => {
                let (catalog, indexed) = self.indexed(entry)?;
                catalog
                    .data_from(&indexed, offset)
                    .map_err(|e| io::Error::other(format!("{e:#}")))?
            }
        };
        let n = reader.read(buf)?;
        if readers.len() >= READERS_KEPT {
            readers.remove(0);
        }
        readers.push((entry, offset + n as u64, reader));
        Ok(n)
    }
}
