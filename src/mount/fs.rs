//! The kernel's requests, answered from the [`Backups`] and the generations' trees.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::rc::Rc;
use std::time::Duration;

use fuser::{
    FileAttr, FileType, Filesystem, ReplyAttr, ReplyData, ReplyDirectory, ReplyEntry, ReplyOpen,
    Request,
};
use libc::{EIO, ENOENT, ENOTDIR, EROFS};

use super::inodes::{self, Ino, Loaded, Slot, TREES_KEPT};
use super::tree::Tree;
use super::{Backups, Kind, Snapshot};

/// How long the kernel may keep what it was told. Short, as the home lives on.
const TTL: Duration = Duration::from_secs(1);

/// A file open: the snapshot it was opened from, and its entry.
struct Handle {
    snapshot: Rc<dyn Snapshot>,
    entry: usize,
}

/// The file system.
pub struct BackupsFs {
    backups: Box<dyn Backups>,
    /// The schedules seen, by index; never reused.
    names: Vec<String>,
    slots: Vec<Slot>,
    by_label: HashMap<(usize, String), usize>,
    handles: HashMap<u64, Handle>,
    next_handle: u64,
    /// Requests served, for telling the trees used last.
    clock: u64,
}

impl BackupsFs {
    /// A file system of `backups`.
    pub fn new(backups: Box<dyn Backups>) -> Self {
        BackupsFs {
            backups,
            names: Vec::new(),
            slots: Vec::new(),
            by_label: HashMap::new(),
            handles: HashMap::new(),
            next_handle: 1,
            clock: 0,
        }
    }

    fn name_index(&mut self, name: &str) -> usize {
        match self.names.iter().position(|n| n == name) {
            Some(i) => i,
            None => {
                self.names.push(name.to_owned());
                self.names.len() - 1
            }
        }
    }

    fn slot_for(&mut self, name: usize, label: &str, made: i64) -> usize {
        let key = (name, label.to_owned());
        if let Some(&slot) = self.by_label.get(&key) {
            return slot;
        }
        self.slots.push(Slot {
            name,
            label: label.to_owned(),
            made,
            loaded: None,
            used: 0,
        });
        self.by_label.insert(key, self.slots.len() - 1);
        self.slots.len() - 1
    }

    /// The tree of `slot`, built if it is not, dropping the one used longest ago beyond
    /// [`TREES_KEPT`].
    fn loaded(&mut self, slot: usize) -> Result<(Rc<dyn Snapshot>, Rc<Tree>), i32> {
        self.clock += 1;
        let clock = self.clock;
        if let Some(loaded) = &self.slots.get(slot).ok_or(ENOENT)?.loaded {
            let out = (loaded.snapshot.clone(), loaded.tree.clone());
            self.slots[slot].used = clock;
            return Ok(out);
        }
        let s = &self.slots[slot];
        let snapshot = self
            .backups
            .open(&self.names[s.name], &s.label)
            .map_err(|e| {
                log::error!("Error: mount: opening {}: {e:#}", s.label);
                EIO
            })?;
        let tree = Rc::new(Tree::new(snapshot.entries()).ok_or(EIO)?);
        let built = self.slots.iter().filter(|s| s.loaded.is_some()).count();
        if built >= TREES_KEPT {
            if let Some(oldest) = self
                .slots
                .iter_mut()
                .filter(|s| s.loaded.is_some())
                .min_by_key(|s| s.used)
            {
                oldest.loaded = None;
            }
        }
        self.slots[slot].loaded = Some(Loaded {
            snapshot: snapshot.clone(),
            tree: tree.clone(),
        });
        self.slots[slot].used = clock;
        Ok((snapshot, tree))
    }

    fn attr(&mut self, ino: u64) -> Result<FileAttr, i32> {
        match Ino::of(ino).ok_or(ENOENT)? {
            Ino::Root => Ok(inodes::own(ino, FileType::Directory, 0, 4096)),
            Ino::Name(i) => {
                let name = self.names.get(i).ok_or(ENOENT)?.clone();
                let made = self.generations(&name)?.first().map_or(0, |g| g.made);
                Ok(inodes::own(ino, FileType::Directory, made, 4096))
            }
            Ino::Latest(i) => {
                let name = self.names.get(i).ok_or(ENOENT)?.clone();
                let newest = self.generations(&name)?.into_iter().next().ok_or(ENOENT)?;
                let size = newest.label.len() as u64;
                Ok(inodes::own(ino, FileType::Symlink, newest.made, size))
            }
            Ino::Node(slot, node) => {
                let (snapshot, tree) = self.loaded(slot)?;
                if node >= tree.nodes.len() {
                    return Err(ENOENT);
                }
                let made = self.slots[slot].made;
                Ok(inodes::of_node(ino, &tree, node, snapshot.entries(), made))
            }
        }
    }

    fn generations(&self, name: &str) -> Result<Vec<super::Generation>, i32> {
        self.backups.generations(name).map_err(|e| {
            log::error!("Error: mount: listing the generations of {name}: {e:#}");
            EIO
        })
    }

    fn lookup_ino(&mut self, parent: u64, name: &OsStr) -> Result<u64, i32> {
        let text = name.to_str();
        match Ino::of(parent).ok_or(ENOENT)? {
            Ino::Root => {
                let text = text.ok_or(ENOENT)?;
                let names = self.backups.names().map_err(|_| EIO)?;
                if !names.iter().any(|n| n == text) {
                    return Err(ENOENT);
                }
                Ok(Ino::Name(self.name_index(text)).number())
            }
            Ino::Name(i) => {
                let text = text.ok_or(ENOENT)?;
                if text == "latest" {
                    return Ok(Ino::Latest(i).number());
                }
                let schedule = self.names.get(i).ok_or(ENOENT)?.clone();
                let generation = self
                    .generations(&schedule)?
                    .into_iter()
                    .find(|g| g.label == text)
                    .ok_or(ENOENT)?;
                Ok(Ino::Node(self.slot_for(i, text, generation.made), 0).number())
            }
            Ino::Latest(_) => Err(ENOTDIR),
            Ino::Node(slot, node) => {
                let (snapshot, tree) = self.loaded(slot)?;
                if node >= tree.nodes.len() {
                    return Err(ENOENT);
                }
                let child = tree.child(snapshot.entries(), node, name.as_bytes());
                Ok(Ino::Node(slot, child.ok_or(ENOENT)?).number())
            }
        }
    }

    /// The names in folder `ino`, from `offset` on, with their numbers and kinds.
    fn list(&mut self, ino: u64, offset: usize) -> Result<Vec<(u64, FileType, Vec<u8>)>, i32> {
        let mut out = vec![
            (ino, FileType::Directory, b".".to_vec()),
            (ino, FileType::Directory, b"..".to_vec()),
        ];
        match Ino::of(ino).ok_or(ENOENT)? {
            Ino::Root => {
                for name in self.backups.names().map_err(|_| EIO)? {
                    let number = Ino::Name(self.name_index(&name)).number();
                    out.push((number, FileType::Directory, name.into_bytes()));
                }
            }
            Ino::Name(i) => {
                let schedule = self.names.get(i).ok_or(ENOENT)?.clone();
                let generations = self.generations(&schedule)?;
                if !generations.is_empty() {
                    out.push((
                        Ino::Latest(i).number(),
                        FileType::Symlink,
                        b"latest".to_vec(),
                    ));
                }
                for g in generations {
                    let number = Ino::Node(self.slot_for(i, &g.label, g.made), 0).number();
                    out.push((number, FileType::Directory, g.label.into_bytes()));
                }
            }
            Ino::Latest(_) => return Err(ENOTDIR),
            Ino::Node(slot, node) => {
                let (snapshot, tree) = self.loaded(slot)?;
                let folder = tree.nodes.get(node).ok_or(ENOENT)?;
                if !tree.is_folder(node, snapshot.entries()) {
                    return Err(ENOTDIR);
                }
                let parent = Ino::Node(slot, folder.parent()).number();
                out[1].0 = if node == 0 { ino } else { parent };
                let entries = snapshot.entries();
                let listing = tree.listing(entries, node);
                for (name, child) in listing.skip(offset.saturating_sub(2)) {
                    let attr = inodes::of_node(0, &tree, child, entries, 0);
                    let number = Ino::Node(slot, child).number();
                    out.push((number, attr.kind, name.to_vec()));
                }
                return Ok(out.into_iter().skip(offset.min(2)).collect());
            }
        }
        Ok(out.into_iter().skip(offset).collect())
    }

    fn link_target(&mut self, ino: u64) -> Result<Vec<u8>, i32> {
        match Ino::of(ino).ok_or(ENOENT)? {
            Ino::Latest(i) => {
                let name = self.names.get(i).ok_or(ENOENT)?.clone();
                let newest = self.generations(&name)?.into_iter().next().ok_or(ENOENT)?;
                Ok(newest.label.into_bytes())
            }
            Ino::Node(slot, node) => {
                let (snapshot, tree) = self.loaded(slot)?;
                let entry = tree.nodes.get(node).and_then(|n| n.entry()).ok_or(EIO)?;
                match snapshot.entries()[entry].kind {
                    Kind::Symlink => Ok(snapshot.entries().link(entry).to_vec()),
                    _ => Err(libc::EINVAL),
                }
            }
            _ => Err(libc::EINVAL),
        }
    }

    fn open_file(&mut self, ino: u64, flags: i32) -> Result<u64, i32> {
        if flags & libc::O_ACCMODE != libc::O_RDONLY || flags & libc::O_TRUNC != 0 {
            return Err(EROFS);
        }
        let Some(Ino::Node(slot, node)) = Ino::of(ino) else {
            return Err(libc::EISDIR);
        };
        let (snapshot, tree) = self.loaded(slot)?;
        let entry = tree
            .nodes
            .get(node)
            .and_then(|n| n.entry())
            .ok_or(libc::EISDIR)?;
        if !matches!(snapshot.entries()[entry].kind, Kind::File | Kind::HardLink) {
            return Err(libc::EISDIR);
        }
        let handle = self.next_handle;
        self.next_handle += 1;
        self.handles.insert(handle, Handle { snapshot, entry });
        Ok(handle)
    }

    fn read_file(&self, handle: u64, offset: i64, size: u32) -> Result<Vec<u8>, i32> {
        let handle = self.handles.get(&handle).ok_or(libc::EBADF)?;
        let mut offset = u64::try_from(offset).map_err(|_| libc::EINVAL)?;
        let mut buf = vec![0u8; size as usize];
        let mut filled = 0;
        while filled < buf.len() {
            let n = handle
                .snapshot
                .read_at(handle.entry, offset, &mut buf[filled..])
                .map_err(|e| {
                    log::error!("Error: mount: reading: {e:#}");
                    EIO
                })?;
            if n == 0 {
                break;
            }
            filled += n;
            offset += n as u64;
        }
        buf.truncate(filled);
        Ok(buf)
    }
}

impl Filesystem for BackupsFs {
    fn lookup(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEntry) {
        match self.lookup_ino(parent, name).and_then(|ino| self.attr(ino)) {
            Ok(attr) => reply.entry(&TTL, &attr, 0),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&mut self, _req: &Request<'_>, ino: u64, _fh: Option<u64>, reply: ReplyAttr) {
        match self.attr(ino) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&mut self, _req: &Request<'_>, ino: u64, reply: ReplyData) {
        match self.link_target(ino) {
            Ok(target) => reply.data(&target),
            Err(e) => reply.error(e),
        }
    }

    fn open(&mut self, _req: &Request<'_>, ino: u64, flags: i32, reply: ReplyOpen) {
        match self.open_file(ino, flags) {
            Ok(handle) => reply.opened(handle, 0),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &mut self,
        _req: &Request<'_>,
        _ino: u64,
        fh: u64,
        offset: i64,
        size: u32,
        _flags: i32,
        _lock: Option<u64>,
        reply: ReplyData,
    ) {
        match self.read_file(fh, offset, size) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(e),
        }
    }

    fn release(
        &mut self,
        _req: &Request<'_>,
        _ino: u64,
        fh: u64,
        _flags: i32,
        _lock: Option<u64>,
        _flush: bool,
        reply: fuser::ReplyEmpty,
    ) {
        self.handles.remove(&fh);
        reply.ok();
    }

    fn readdir(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        mut reply: ReplyDirectory,
    ) {
        let offset = usize::try_from(offset).unwrap_or(0);
        match self.list(ino, offset) {
            Ok(names) => {
                for (i, (number, kind, name)) in names.into_iter().enumerate() {
                    let next = (offset + i + 1) as i64;
                    if reply.add(number, next, kind, OsStr::from_bytes(&name)) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(e),
        }
    }
}
