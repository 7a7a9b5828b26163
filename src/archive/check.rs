//! The one check of an archive's entries, made by `restore` before it writes anything and
//! by `verify` as it reads, so that the two can never disagree on what is refused.
//!
//! Each entry is checked against the entries before it, in the archive and in the
//! archives before it in a chain: its name stays inside the destination (no absolute name,
//! no `..`, nothing under a symbolic link or a file stored earlier), a folder is never
//! followed by something else of its name, a hard link points at a file the archive holds
//! (or, for a restore, one already in DEST), no file is larger than [`MAX_FILE_SIZE`], a
//! folder listing names only children, and an extended attribute's name is one a file can
//! have. The check also adds up what a restore needs of
//! the file system at most: the data of the files present at any one time (a sparse file
//! by its data, not its size), and their number.
//!
//! Memory is one small record per name, and time is linear in the archive's size and
//! depth: a name shares its folders with the name before it (see [`Names`]), so only the
//! parts that differ are looked up.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::ffi::OsStr;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::Result;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, SFlag};

use crate::tar::dumpdir::{FOLDER, Listing};
use crate::tar::{Header, Kind, Reader};

/// Files larger than this (16 TiB, the largest ext4 holds) are refused: a sparse entry
/// can declare any size in a few bytes, and a file of petabytes of holes would defeat
/// every program that reads it afterwards.
pub const MAX_FILE_SIZE: u64 = 1 << 44;

/// What a restore needs of the file system, at most, at any time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// Bytes of data, each file's rounded up to the block size, and a block a folder.
    pub bytes: u64,
    /// Entries (inodes).
    pub entries: u64,
}

/// A name a restore must never write: a file of the home, or its `backups/` folder.
#[derive(Debug, Clone)]
pub struct Guarded {
    /// The name, as the archive would name it (relative to DEST, no `.` or `/` at the ends).
    pub name: Vec<u8>,
    /// What it is, for the refusal: "this home's schedule file".
    pub what: String,
    /// Whether a folder entry of this name is fine (the home itself, merged into).
    pub folder_ok: bool,
    /// Whether nothing under it may be written either (`backups/`).
    pub under: bool,
}

/// Checks the entries of one archive, or of a chain's archives in order.
pub struct Checker {
    names: Names,
    /// The block size of the file system restored to, for [`Needs::bytes`].
    block: u64,
    /// DEST, when restoring: a hard link may point at a file already there.
    dest: Option<(OwnedFd, String)>,
    guarded: Vec<Guarded>,
    now: Needs,
    peak: Needs,
}

impl Checker {
    /// A checker for a restore into the folder `dest` (`None` for `verify`, or a DEST
    /// that does not exist yet), whose file system has blocks of `block` bytes, and
    /// which must never write `guarded`.
    pub fn new(dest: Option<(OwnedFd, &Path)>, block: u64, guarded: Vec<Guarded>) -> Self {
        Checker {
            names: Names::new(),
            block: block.max(1),
            dest: dest.map(|(fd, path)| (fd, path.display().to_string())),
            guarded,
            now: Needs::default(),
            peak: Needs::default(),
        }
    }

    /// The most the archives checked so far need at any one time.
    pub fn needs(&self) -> Needs {
        self.peak
    }

    /// Checks the entry `header`, with its folder listing if it is a dumpdir (see
    /// [`listing_of`]); its name made canonical (see [`canonical`]; empty for a volume
    /// label). The error names the entry and says why it is refused.
    pub fn entry(&mut self, header: &Header, listing: Option<&[u8]>) -> Result<Vec<u8>> {
        self.check(header, listing).map_err(|why| {
            anyhow::anyhow!("entry {:?} {why}", String::from_utf8_lossy(&header.name))
        })
    }

    fn check(&mut self, header: &Header, listing: Option<&[u8]>) -> Result<Vec<u8>, String> {
        if header.kind == Kind::VOLUME_LABEL {
            return Ok(Vec::new());
        }
        let name = canonical(&header.name)?;
        super::extras::check(header)?;
        if header.kind == Kind::File && header.file_size() > MAX_FILE_SIZE {
            return Err(format!(
                "is a file of {} bytes, over the {MAX_FILE_SIZE} a restore writes",
                header.file_size()
            ));
        }
        debug_assert_eq!(
            header.kind == Kind::DUMPDIR,
            listing.is_some(),
            "see listing_of"
        );
        let listing = listing.map(Listing::new);
        if let Some(bad) = listing.as_ref().and_then(Listing::bad_name) {
            return Err(format!(
                "has a folder listing naming {:?}, which is not a name in a folder",
                String::from_utf8_lossy(bad)
            ));
        }
        if name.is_empty() {
            // DEST itself, as `./`: only its listing matters.
            if let Some(listing) = &listing {
                self.names.prune(ROOT, listing, &mut self.now);
            }
            return Ok(name);
        }
        let child = match header.kind {
            Kind::Dir | Kind::DUMPDIR => Child::Folder(0),
            Kind::Symlink => Child::Link,
            Kind::HardLink => {
                self.hard_link(&header.link)?;
                Child::File(0)
            }
            Kind::File => Child::File(self.data_bytes(header)),
            Kind::Fifo | Kind::CharDevice | Kind::BlockDevice => Child::File(0),
            // Skipped by restore, which says so.
            Kind::Other(_) => return Ok(name),
        };
        self.guard(&name, child.is_folder())?;
        let parent = self.names.parents(&name, self.block, &mut self.now)?;
        let leaf = name
            .rsplit(|&b| b == b'/')
            .next()
            .expect("split is never empty");
        let folder = self
            .names
            .put(parent, leaf, child, self.block, &mut self.now)?;
        if let (Some(listing), Some(folder)) = (&listing, folder) {
            self.names.prune(folder, listing, &mut self.now);
        }
        self.peak.bytes = self.peak.bytes.max(self.now.bytes);
        self.peak.entries = self.peak.entries.max(self.now.entries);
        Ok(name)
    }

    /// The bytes a file takes: its data (a sparse file's parts), in whole blocks.
    fn data_bytes(&self, header: &Header) -> u64 {
        let data = match &header.sparse {
            Some(map) => map.parts.iter().map(|&(_, len)| len).sum(),
            None => header.size,
        };
        data.div_ceil(self.block).saturating_mul(self.block)
    }

    /// Refuses a name that would write over or into a guarded one.
    fn guard(&self, name: &[u8], is_folder: bool) -> Result<(), String> {
        for g in &self.guarded {
            if name == g.name.as_slice() && !(g.folder_ok && is_folder) {
                return Err(format!("would write over {}", g.what));
            }
            let under = name.len() > g.name.len()
                && name.starts_with(&g.name)
                && name[g.name.len()] == b'/';
            if g.under && under {
                return Err(format!("would write into {}", g.what));
            }
        }
        Ok(())
    }

    /// A hard link's target must be a file stored earlier, or one already in DEST.
    fn hard_link(&self, link: &[u8]) -> Result<(), String> {
        let target = canonical(link).map_err(|why| format!("is a hard link whose target {why}"))?;
        if target.is_empty() {
            return Err("is a hard link to the destination itself".to_owned());
        }
        match self.names.find(&target) {
            Found::File => return Ok(()),
            Found::Folder => return Err("is a hard link to a folder".to_owned()),
            Found::UnderLink => {
                return Err("is a hard link to a name under a symbolic link".to_owned());
            }
            Found::Nothing => {}
        }
        let shown = String::from_utf8_lossy(&target);
        match &self.dest {
            Some((fd, _)) if in_dest(fd, &target) => Ok(()),
            Some((_, dest)) => Err(format!(
                "is a hard link to {shown:?}, which neither the archive nor {dest} holds"
            )),
            None => Err(format!(
                "is a hard link to {shown:?}, which the archive does not hold"
            )),
        }
    }
}

/// The folder listing of `header` if it is a dumpdir, read from its data, which
/// `reader` is at: what [`Checker::entry`] checks with it.
pub fn listing_of<R: Read>(header: &Header, reader: &mut Reader<R>) -> Result<Option<Vec<u8>>> {
    (header.kind == Kind::DUMPDIR)
        .then(|| reader.listing())
        .transpose()
}

/// The name made of its parts joined by `/`, `.` and empty parts dropped; empty for the
/// destination itself. Absolute names, `..` and NUL bytes are refused.
pub fn canonical(name: &[u8]) -> Result<Vec<u8>, String> {
    if name.first() == Some(&b'/') {
        return Err("has an absolute name".to_owned());
    }
    // Without an early exit, the compiler checks many bytes at a time.
    if name.iter().fold(false, |nul, &b| nul | (b == 0)) {
        return Err("has a NUL byte in its name".to_owned());
    }
    // Most names are canonical already but for a trailing `/`: one scan tells.
    let trimmed = &name[..name.len() - name.iter().rev().take_while(|&&b| b == b'/').count()];
    if !has_odd_part(trimmed) {
        return Ok(trimmed.to_vec());
    }
    let mut out = Vec::with_capacity(name.len());
    for part in name.split(|&b| b == b'/') {
        if part.is_empty() || part == b"." {
            continue;
        }
        if part == b".." {
            return Err("has '..' in its name".to_owned());
        }
        if !out.is_empty() {
            out.push(b'/');
        }
        out.extend_from_slice(part);
    }
    Ok(out)
}

/// Whether `name` has a part that is empty, `.` or `..` (or is empty itself): a plain
/// scan of its bytes, which for names this short costs less than a search's set-up.
fn has_odd_part(name: &[u8]) -> bool {
    let odd = |part: &[u8]| matches!(part, b"" | b"." | b"..");
    let mut start = 0;
    for (at, &b) in name.iter().enumerate() {
        if b == b'/' {
            if odd(&name[start..at]) {
                return true;
            }
            start = at + 1;
        }
    }
    odd(&name[start..])
}

/// How many of the folders in `path` (each with where its name ends in `prev`) are also
/// folders of `name`: those whose name, and the `/` after it, begin `name` too. Found by
/// halving, each step one comparison of bytes.
pub fn shared_folders(path: &[(usize, u32)], prev: &[u8], name: &[u8]) -> usize {
    let same = |&(end, _): &(usize, u32)| name.len() > end && name[..=end] == prev[..=end];
    path.partition_point(same)
}

/// Whether DEST holds a file (anything but a folder) at `name`, reached without
/// following a link.
fn in_dest(dest: &OwnedFd, name: &[u8]) -> bool {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut parts: Vec<&[u8]> = name.split(|&b| b == b'/').collect();
    let leaf = parts.pop().expect("split is never empty");
    let Ok(mut dir) = dest.try_clone() else {
        return false;
    };
    for part in parts {
        match nix::fcntl::openat(&dir, OsStr::from_bytes(part), flags, Mode::empty()) {
            Ok(fd) => dir = fd,
            Err(_) => return false,
        }
    }
    match nix::sys::stat::fstatat(&dir, OsStr::from_bytes(leaf), AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => st.st_mode & SFlag::S_IFMT.bits() != SFlag::S_IFDIR.bits(),
        Err(Errno::ENOENT) | Err(_) => false,
    }
}

/// The folder node of the destination itself.
const ROOT: u32 = 0;

/// What a name is, as the latest entry of that name left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Child {
    /// A folder, stored or only holding stored names: its node.
    Folder(u32),
    /// A symbolic link.
    Link,
    /// Anything else (a file, a hard link, a node), with the bytes it takes.
    File(u64),
}

impl Child {
    fn is_folder(self) -> bool {
        matches!(self, Child::Folder(_))
    }
}

/// What a name leads to, for a hard link.
enum Found {
    File,
    Folder,
    UnderLink,
    Nothing,
}

/// The names seen so far, as a tree: one map of children a folder.
struct Names {
    folders: Vec<HashMap<Box<[u8]>, Child>>,
    /// The previous name, and its folders from the top: where each one's name ends in
    /// it, and its node. The next name usually shares most of them.
    prev: Vec<u8>,
    path: Vec<(usize, u32)>,
}

impl Names {
    fn new() -> Self {
        Names {
            folders: vec![HashMap::new()],
            prev: Vec::new(),
            path: Vec::new(),
        }
    }

    /// The folder node holding `name`, its missing folders made (counted in `now`).
    /// Refused when one of them is a link or a file.
    fn parents(&mut self, name: &[u8], block: u64, now: &mut Needs) -> Result<u32, String> {
        let shared = shared_folders(&self.path, &self.prev, name);
        self.path.truncate(shared);
        let (mut start, mut node) = self.path.last().map_or((0, ROOT), |&(end, n)| (end + 1, n));
        // The parent's name is `name[..parent_end]`.
        let parent_end = memchr::memrchr(b'/', name).unwrap_or(0);
        while start < parent_end {
            let end =
                memchr::memchr(b'/', &name[start..parent_end]).map_or(parent_end, |p| start + p);
            let part = &name[start..end];
            node = match self.folders[node as usize].get(part).copied() {
                Some(Child::Folder(n)) => n,
                Some(Child::Link) => {
                    return Err(format!(
                        "lies under {:?}, a symbolic link stored earlier",
                        String::from_utf8_lossy(&name[..end])
                    ));
                }
                Some(Child::File(_)) => {
                    return Err(format!(
                        "lies under {:?}, which the archive holds as a file",
                        String::from_utf8_lossy(&name[..end])
                    ));
                }
                None => self.new_folder(node, part, block, now),
            };
            self.path.push((end, node));
            start = end + 1;
        }
        self.prev.clear();
        self.prev.extend_from_slice(name);
        Ok(node)
    }

    /// Records `leaf` of the folder `parent` as `child`; returns its node if it is a
    /// folder. Anything but a folder in place of a folder is refused.
    fn put(
        &mut self,
        parent: u32,
        leaf: &[u8],
        child: Child,
        block: u64,
        now: &mut Needs,
    ) -> Result<Option<u32>, String> {
        // One lookup: the key is made either way, as nearly every name is new.
        let stored = match child {
            Child::Folder(_) => Child::Folder(self.folders.len() as u32),
            other => other,
        };
        match self.folders[parent as usize].entry(leaf.into()) {
            Entry::Vacant(slot) => {
                slot.insert(stored);
            }
            Entry::Occupied(mut seen) => {
                match (*seen.get(), child) {
                    (Child::Folder(n), Child::Folder(_)) => return Ok(Some(n)),
                    (Child::Folder(_), _) => {
                        return Err("comes after a folder of the same name".to_owned());
                    }
                    (Child::File(bytes), _) => {
                        now.bytes = now.bytes.saturating_sub(bytes);
                        now.entries = now.entries.saturating_sub(1);
                    }
                    (Child::Link, _) => now.entries = now.entries.saturating_sub(1),
                }
                // What comes later replaces it, as the restore replaces it.
                seen.insert(stored);
            }
        }
        now.entries += 1;
        match stored {
            Child::Folder(n) => {
                self.folders.push(HashMap::new());
                now.bytes = now.bytes.saturating_add(block);
                Ok(Some(n))
            }
            Child::File(bytes) => {
                now.bytes = now.bytes.saturating_add(bytes);
                Ok(None)
            }
            Child::Link => Ok(None),
        }
    }

    fn new_folder(&mut self, parent: u32, leaf: &[u8], block: u64, now: &mut Needs) -> u32 {
        let n = self.folders.len() as u32;
        self.folders.push(HashMap::new());
        self.folders[parent as usize].insert(leaf.into(), Child::Folder(n));
        now.bytes = now.bytes.saturating_add(block);
        now.entries += 1;
        n
    }

    /// Forgets what the folder `node` holds and its listing does not (or lists as the
    /// other kind), as the restore removes it.
    fn prune(&mut self, node: u32, listing: &Listing<'_>, now: &mut Needs) {
        let mut gone = Vec::new();
        self.folders[node as usize].retain(|name, child| {
            let keep = listing
                .flag(name)
                .is_some_and(|flag| (flag == FOLDER) == child.is_folder());
            if !keep {
                gone.push(*child);
            }
            keep
        });
        while let Some(child) = gone.pop() {
            now.entries = now.entries.saturating_sub(1);
            match child {
                Child::File(bytes) => now.bytes = now.bytes.saturating_sub(bytes),
                Child::Link => {}
                Child::Folder(n) => {
                    gone.extend(std::mem::take(&mut self.folders[n as usize]).into_values());
                }
            }
        }
        // The remembered folders may be gone.
        self.prev.clear();
        self.path.clear();
    }

    /// What `name` is, looked up without making anything.
    fn find(&self, name: &[u8]) -> Found {
        let mut node = ROOT;
        let mut parts = name.split(|&b| b == b'/').peekable();
        while let Some(part) = parts.next() {
            let last = parts.peek().is_none();
            match (self.folders[node as usize].get(part).copied(), last) {
                (Some(Child::Folder(_)), true) => return Found::Folder,
                (Some(Child::Folder(n)), false) => node = n,
                (Some(Child::Link | Child::File(_)), true) => return Found::File,
                (Some(Child::Link), false) => return Found::UnderLink,
                (Some(Child::File(_)), false) | (None, _) => return Found::Nothing,
            }
        }
        Found::Nothing
    }
}

#[cfg(test)]
mod tests;
