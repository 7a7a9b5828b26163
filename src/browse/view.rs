//! A generation's tree: the entries of one archive, or, for an incremental one, the tree
//! as of that backup resolved through its chain. Each folder's dumpdir (GNU format) says
//! which names it held; a file's contents come from whichever archive of the chain last
//! stored it.

use std::io::Write;
use std::path::PathBuf;
use std::rc::Rc;

use anyhow::{Context, Result, bail};

use super::Catalog;
use super::stored::Stored;
use crate::encryption::Identity;
use crate::index::Entry;
use crate::naming::{Compression, Format};
use crate::tar::dumpdir::{Listing, NOT_STORED, is_bad_name};
use crate::tar::{DUMPDIR, Kind, VOLUME_LABEL};

/// An entry of a generation's tree, and the archive of its chain that holds it.
#[derive(Debug, Clone)]
pub struct Item {
    /// The entry (a dumpdir shown as the folder it is).
    pub entry: Entry,
    /// Which archive of the chain holds it, from 0, the full one.
    pub archive: usize,
}

/// A generation's tree.
pub struct View {
    /// The archives of its chain, the full one first, the generation itself last.
    pub catalogs: Vec<Catalog>,
    /// Its entries: folders before what they hold.
    pub items: Vec<Item>,
}

impl View {
    /// The tree as of the last archive of `chain` (a full archive and the incrementals
    /// after it, in order, as [`crate::generations::chain::chain_to`] gives them).
    pub fn open(chain: &[PathBuf], compression: Compression) -> Result<Self> {
        Self::open_only(chain, compression, &|_| true)
    }

    /// As [`View::open`], with only the entries `wanted` takes: the rest are not kept,
    /// so that looking for a few names in a large tree holds only those.
    pub fn open_only(
        chain: &[PathBuf],
        compression: Compression,
        wanted: &dyn Fn(&[u8]) -> bool,
    ) -> Result<Self> {
        let format = Format {
            compression,
            encrypted: false,
        };
        Self::open_as(chain, (format, None), wanted)
    }

    /// As [`View::open_only`], for archives of `format`, read with `key` when they are
    /// encrypted.
    pub fn open_as(
        chain: &[PathBuf],
        (format, key): (Format, Option<Rc<Identity>>),
        wanted: &dyn Fn(&[u8]) -> bool,
    ) -> Result<Self> {
        let catalogs = Self::catalogs(chain, (format, key))?;
        let mut items = Vec::new();
        Self::resolve(&catalogs, wanted, &mut |item| items.push(item.clone()))?;
        Ok(View { catalogs, items })
    }

    /// As [`View::open_as`], with only the entries named by one of `names` (as stored):
    /// read from the blocks of each index that may hold them (or their folders, whose
    /// listings say what an incremental archive holds), not from every entry.
    pub fn open_named(
        chain: &[PathBuf],
        (format, key): (Format, Option<Rc<Identity>>),
        names: &[Vec<u8>],
    ) -> Result<Self> {
        let catalogs = Self::catalogs(chain, (format, key))?;
        let mut among = names.to_vec();
        for name in names {
            let folder = name.iter().rposition(|&b| b == b'/').unwrap_or(0);
            among.push(name[..folder].to_vec());
        }
        let selection = Selection {
            wanted: &|n| names.iter().any(|name| name == n),
            among: Some(&among),
        };
        let mut items = Vec::new();
        Self::resolve_selected(&catalogs, selection, &mut |item| items.push(item.clone()))?;
        Ok(View { catalogs, items })
    }

    /// The archives of `chain`, of `format`, open (with `key` when they are encrypted).
    pub fn catalogs(
        chain: &[PathBuf],
        (format, key): (Format, Option<Rc<Identity>>),
    ) -> Result<Vec<Catalog>> {
        let catalogs = chain
            .iter()
            .map(|path| Catalog::open_as(path, format, key.clone()))
            .collect::<Result<Vec<_>>>()?;
        if catalogs.is_empty() {
            bail!("no archive to read");
        }
        Ok(catalogs)
    }

    /// Gives each entry of the tree as of the last of `catalogs` (a chain's archives,
    /// opened by [`View::catalogs`]) that `wanted` takes to `each`, in order, without
    /// keeping them: for a reader that keeps them its own way.
    pub fn resolve(
        catalogs: &[Catalog],
        wanted: &dyn Fn(&[u8]) -> bool,
        each: &mut dyn FnMut(&Item),
    ) -> Result<()> {
        let selection = Selection {
            wanted,
            among: None,
        };
        Self::resolve_selected(catalogs, selection, each)
    }

    /// As [`View::resolve`], with the entries `selection` says.
    fn resolve_selected(
        catalogs: &[Catalog],
        selection: Selection,
        each: &mut dyn FnMut(&Item),
    ) -> Result<()> {
        let last = catalogs.len().saturating_sub(1);
        let mut resolver = Resolver::default();
        for (i, catalog) in catalogs.iter().enumerate() {
            let mut only_last = |item: &Item| {
                if i == last {
                    each(item);
                }
            };
            resolver.step_selected(catalog, i, selection, i < last, &mut only_last)?;
        }
        Ok(())
    }

    /// Why an archive's index was not used, once for each.
    pub fn warnings(&self) -> impl Iterator<Item = &str> {
        self.catalogs.iter().filter_map(|c| c.warning.as_deref())
    }

    /// The entry named `name`, if the tree holds it.
    pub fn find(&self, name: &[u8]) -> Option<&Item> {
        self.items.iter().find(|item| item.entry.name == name)
    }

    /// Writes the contents of the file `item` to `out`; a hard link's are its target's.
    pub fn copy_data(&self, item: &Item, out: &mut dyn Write) -> Result<u64> {
        let item = self.data_of(item)?;
        self.catalogs[item.archive].copy_data(&item.entry, out)
    }

    /// The archive of the chain that holds `item`.
    pub fn catalog_of(&self, item: &Item) -> &Catalog {
        &self.catalogs[item.archive]
    }

    /// A hash of the contents of the file `item`.
    pub fn hash_data(&self, item: &Item) -> Result<u64> {
        let item = self.data_of(item)?;
        self.catalogs[item.archive].hash_data(&item.entry)
    }

    /// The item holding the data of `item`: itself, or a hard link's target (which a
    /// view of only some entries must hold too).
    pub fn data_of<'a>(&'a self, item: &'a Item) -> Result<&'a Item> {
        let item = match item.entry.kind() {
            Kind::HardLink => self.find(&item.entry.link).ok_or_else(|| {
                anyhow::anyhow!(
                    "{} is a hard link to {}, which the archive does not hold",
                    String::from_utf8_lossy(&item.entry.name),
                    String::from_utf8_lossy(&item.entry.link)
                )
            })?,
            _ => item,
        };
        if item.entry.kind() != Kind::File {
            bail!(
                "{} is a {}, not a file",
                String::from_utf8_lossy(&item.entry.name),
                item.entry.kind()
            );
        }
        Ok(item)
    }
}

/// Resolves the generations of a series, oldest first, one archive at a time: what each
/// stored is kept for the incrementals after it, until the next full one.
#[derive(Default)]
pub struct Resolver {
    /// The latest version of each name the chain stored so far.
    stored: Stored,
}

impl Resolver {
    /// Reads `catalog`, archive number `number` of the series (oldest first), and gives
    /// each entry of its generation's tree that `wanted` takes to `each`: folders before
    /// what they hold, a file a chain did not store again from the archive that did. A
    /// full archive (any but one labelled incremental) starts a new chain. What it stored
    /// is kept for the next step only when `remember`.
    pub fn step(
        &mut self,
        catalog: &Catalog,
        number: usize,
        wanted: &dyn Fn(&[u8]) -> bool,
        remember: bool,
        each: &mut dyn FnMut(&Item),
    ) -> Result<()> {
        let selection = Selection {
            wanted,
            among: None,
        };
        self.step_selected(catalog, number, selection, remember, each)
    }

    /// As [`Resolver::step`], with the entries `selection` says.
    fn step_selected(
        &mut self,
        catalog: &Catalog,
        number: usize,
        selection: Selection,
        remember: bool,
        each: &mut dyn FnMut(&Item),
    ) -> Result<()> {
        let wanted = selection.wanted;
        // A few names: their entries are few, not worth growing for the archive's count.
        if remember && selection.among.is_none() {
            // Grown once, not doubling (and moving every entry) as they come.
            let count = catalog.entry_count().unwrap_or(0).min(1 << 20);
            self.stored.reserve(count as usize);
        }
        let mut first = true;
        // Each entry given, made in one item whose buffers are reused.
        let mut item = Item {
            entry: Entry::default(),
            archive: number,
        };
        // Each entry found stored, made in one item.
        let mut found = item.clone();
        // Each child's name, made in one buffer.
        let mut name = Vec::new();
        let mut one = |entry: &Entry| {
            if std::mem::take(&mut first) {
                let incremental = entry.type_flag == VOLUME_LABEL
                    && entry.name == crate::incremental::INCREMENTAL_LABEL;
                if !incremental {
                    self.stored.clear();
                }
            }
            match entry.type_flag {
                VOLUME_LABEL => {}
                DUMPDIR => {
                    if wanted(&entry.name) {
                        item.entry.clone_from(entry);
                        item.entry.type_flag = b'5';
                        item.entry.listing.clear();
                        each(&item);
                    }
                    self.not_stored_again(entry, wanted, (&mut found, &mut name), each);
                }
                _ if wanted(&entry.name) => {
                    item.entry.clone_from(entry);
                    if remember && !item.entry.is_dir() {
                        self.stored.insert(&item.entry, number).with_context(|| {
                            format!(
                                "reading {}: its chain holds more than 2^32 entries",
                                catalog.path().display()
                            )
                        })?;
                    }
                    each(&item);
                }
                _ => {}
            }
            Ok(std::ops::ControlFlow::Continue(()))
        };
        match selection.among {
            Some(names) => catalog.for_each_among(names, &mut one),
            None => catalog.for_each(&mut one),
        }
    }

    /// Gives to `each` every child of the dumpdir `dir` that its archive did not store
    /// again and `wanted` takes, as the chain last stored it; made in `found`, its name
    /// in `name`.
    fn not_stored_again(
        &self,
        dir: &Entry,
        wanted: &dyn Fn(&[u8]) -> bool,
        (found, name): (&mut Item, &mut Vec<u8>),
        each: &mut dyn FnMut(&Item),
    ) {
        for (flag, child) in Listing::new(&dir.listing).iter() {
            // A child named across folders (or not at all) is no child: a lookup by its
            // folder would not find it, and a restore refuses its archive.
            if flag != NOT_STORED || is_bad_name(child) {
                continue;
            }
            name.clear();
            name.extend_from_slice(&dir.name);
            if !name.is_empty() {
                name.push(b'/');
            }
            name.extend_from_slice(child);
            if !wanted(name) {
                continue;
            }
            if let Some(archive) = self.stored.get_into(name, &mut found.entry) {
                found.archive = archive;
                each(found);
            }
        }
    }
}

/// Which entries a step gives: those `wanted` takes, read from the index's blocks that
/// may hold `among` (names that include all `wanted` takes, and their folders) when
/// there are such names, from every entry otherwise.
#[derive(Clone, Copy)]
struct Selection<'a> {
    wanted: &'a dyn Fn(&[u8]) -> bool,
    among: Option<&'a [Vec<u8>]>,
}

/// The name of `child` in the folder named `dir`.
pub fn child_name(dir: &[u8], child: &[u8]) -> Vec<u8> {
    let mut name = dir.to_vec();
    if !name.is_empty() {
        name.push(b'/');
    }
    name.extend_from_slice(child);
    name
}
