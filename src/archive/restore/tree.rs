//! The folders a restore reaches, as a tree, and the way down to them.
//!
//! Each folder reached gets a node: whether this restore made it (then everything in it
//! was written by the restore), else the names the restore wrote in it, and the mode it
//! gets at the end. That is what lets a chain's restore remove what an earlier archive
//! wrote and a later one deleted, and nothing that DEST held before: one record a folder,
//! and one name a file only in folders that were there before the restore.
//!
//! The way down is kept open: the folders of the last path, so that the next path, which
//! in an archive shares most of them, opens only what differs. Every folder is opened from
//! its parent with `O_NOFOLLOW`, so no link is ever followed; at most [`MAX_OPEN`] are
//! held open, and one closed to stay within that is opened again when the way goes back
//! up: through the `..` of the open one below it, checked to be the same folder by its
//! device and inode, or else from the nearest open one above it. Time is linear in the
//! archive's size and depth.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::folders::Final;
use super::guard::{Id, id_of};
use crate::tar::Header;

/// Folders held open at most on the way down.
const MAX_OPEN: usize = 64;

/// The node of DEST itself.
pub const ROOT: u32 = 0;

const FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

struct Node {
    name: Box<[u8]>,
    /// Child folders reached, by name.
    children: HashMap<Box<[u8]>, u32>,
    /// Made by this restore: all it holds was written by it.
    ours: bool,
    /// When not ours: the names this restore wrote in it.
    written: HashSet<Box<[u8]>>,
    /// What it gets at the end, when the archives hold it.
    end: Option<Final>,
}

/// What [`Tree::each_deepest_first`] calls for each folder: with the tree at it, its node,
/// whether the restore made it, and what it gets at the end.
pub type Visit<'a> = dyn FnMut(&mut Tree, u32, bool, Option<Final>) -> Result<()> + 'a;

/// Where going down one folder led.
enum Down {
    In,
    Missing,
    NotFolder,
}

struct Level {
    node: u32,
    /// Where its name ends in [`Tree::path`].
    end: usize,
    fd: Option<OwnedFd>,
    id: Id,
    /// Its group when it was opened.
    gid: u32,
    /// Whether it has a default ACL, which a file made in it takes its mode from.
    inherits: bool,
}

/// The folders under DEST that a restore reached.
pub struct Tree {
    nodes: Vec<Node>,
    root: OwnedFd,
    root_id: Id,
    root_gid: u32,
    root_inherits: bool,
    /// The way down to the current folder, from DEST's child.
    levels: Vec<Level>,
    /// The current folder's name under DEST: the levels' names joined by `/`.
    path: Vec<u8>,
    /// No level above this one is open.
    shallowest_open: usize,
}

impl Tree {
    /// The tree of DEST, open as `root`; `ours` when DEST was made by the restore or
    /// held nothing.
    pub fn new(root: OwnedFd, ours: bool) -> Result<Self> {
        let (root_id, root_gid) = stat_of(&root).context("reading the destination")?;
        let root_inherits = has_default_acl(&root);
        Ok(Tree {
            nodes: vec![node(b"", ours)],
            root,
            root_id,
            root_gid,
            root_inherits,
            levels: Vec::new(),
            path: Vec::new(),
            shallowest_open: 0,
        })
    }

    /// The current folder: its node, its descriptor and its identity.
    pub fn here(&mut self) -> Result<(u32, &OwnedFd, Id)> {
        self.reopen()?;
        Ok(match self.levels.last() {
            None => (ROOT, &self.root, self.root_id),
            Some(level) => (level.node, level.fd.as_ref().expect("reopened"), level.id),
        })
    }

    /// The current folder's group, as it was when the restore opened it: what a file
    /// made in it gets, whatever the rule (set-group-id folder or not), when that is the
    /// restore's own group.
    pub fn gid_here(&self) -> u32 {
        self.levels.last().map_or(self.root_gid, |l| l.gid)
    }

    /// Whether the current folder has a default ACL: a file made in it then takes its
    /// mode from that ACL and the mode asked for, not from the umask.
    pub fn inherits_here(&self) -> bool {
        self.levels
            .last()
            .map_or(self.root_inherits, |l| l.inherits)
    }

    /// Notes that the current folder's ACLs were just set, so that it may now have a
    /// default one.
    pub fn acls_set_here(&mut self) {
        let (fd, inherits) = match self.levels.last_mut() {
            Some(level) => (level.fd.as_ref(), &mut level.inherits),
            None => (Some(&self.root), &mut self.root_inherits),
        };
        *inherits = fd.is_none_or(has_default_acl);
    }

    /// Goes to the folder `path` (its parts joined by `/`, empty for DEST). With `make`,
    /// missing folders are made (the last one with that mode, those above it `0777` less
    /// the umask, as tar does) and each is noted as written in its parent; without,
    /// `None` when one is missing or no folder. Anything but a folder on the way is
    /// refused when making: it may be a link.
    pub fn open(&mut self, path: &[u8], make: Option<Mode>) -> Result<Option<u32>> {
        // The levels still on the way: those whose name, and a `/` or the end after it,
        // begin `path` too; found by halving, each step one comparison of bytes.
        let here = &self.path;
        let shared = self.levels.partition_point(|l| {
            path.len() >= l.end
                && (path.len() == l.end || path[l.end] == b'/')
                && path[..l.end] == here[..l.end]
        });
        self.up_to(shared);
        let mut start = self.levels.last().map_or(0, |l| l.end + 1);
        while start < path.len() {
            let end = memchr::memchr(b'/', &path[start..]).map_or(path.len(), |p| start + p);
            let mode = match make {
                Some(mode) if end == path.len() => Some(mode),
                Some(_) => Some(Mode::from_bits_truncate(0o777)),
                None => None,
            };
            let shown = || String::from_utf8_lossy(&path[..end]).into_owned();
            match self.down(&path[start..end], mode) {
                Ok(Down::In) => {}
                Ok(Down::Missing) => return Ok(None),
                Ok(Down::NotFolder) if make.is_none() => return Ok(None),
                Ok(Down::NotFolder) => bail!(
                    "refusing to write through {}: it is not a folder (a link?)",
                    shown()
                ),
                Err(e) => return Err(e.context(shown())),
            }
            start = end + 1;
        }
        Ok(Some(self.levels.last().map_or(ROOT, |l| l.node)))
    }

    /// Goes up until `depth` folders are left below DEST. A closed folder just above an
    /// open one is opened again through the open one's `..`, checked to be the very
    /// folder it was, so that climbing a deep tree costs one open a level.
    fn up_to(&mut self, depth: usize) {
        if depth > 0 && depth < self.levels.len() && self.levels[depth - 1].fd.is_none() {
            let above = self.levels[depth].fd.as_ref().and_then(|fd| {
                let up = nix::fcntl::openat(fd, c"..", FLAGS, Mode::empty()).ok()?;
                (id_of(&up).ok()? == self.levels[depth - 1].id).then_some(up)
            });
            if let Some(up) = above {
                self.levels[depth - 1].fd = Some(up);
                self.shallowest_open = depth - 1;
            }
        }
        self.levels.truncate(depth);
        self.path.truncate(self.levels.last().map_or(0, |l| l.end));
        self.shallowest_open = self.shallowest_open.min(depth);
    }

    /// Goes down into the child `part` of the current folder, made if missing when
    /// `make`.
    fn down(&mut self, part: &[u8], make: Option<Mode>) -> Result<Down> {
        let (parent, dir, _) = self.here()?;
        let name = OsStr::from_bytes(part);
        let mut made = false;
        let fd = match (nix::fcntl::openat(dir, name, FLAGS, Mode::empty()), make) {
            (Ok(fd), _) => fd,
            (Err(Errno::ENOENT), Some(mode)) => {
                match nix::sys::stat::mkdirat(dir, name, mode) {
                    Ok(()) => made = true,
                    Err(Errno::EEXIST) => {}
                    Err(e) => return Err(e).context("making a folder"),
                }
                nix::fcntl::openat(dir, name, FLAGS, Mode::empty()).context("opening a folder")?
            }
            (Err(Errno::ELOOP | Errno::ENOTDIR), _) => return Ok(Down::NotFolder),
            (Err(Errno::ENOENT), None) => return Ok(Down::Missing),
            (Err(e), _) => return Err(e).context("opening a folder"),
        };
        let (id, gid) = stat_of(&fd).context("reading a folder")?;
        let inherits = has_default_acl(&fd);
        let child = self.child(parent, part, made);
        if make.is_some() {
            self.wrote(parent, part);
        }
        if !self.path.is_empty() {
            self.path.push(b'/');
        }
        self.path.extend_from_slice(part);
        self.levels.push(Level {
            node: child,
            fd: Some(fd),
            id,
            gid,
            inherits,
            end: self.path.len(),
        });
        self.close_some();
        Ok(Down::In)
    }

    /// The node of the folder `part` of `parent`, new if `made` (what an older node of
    /// that name knew is of a folder since removed).
    fn child(&mut self, parent: u32, part: &[u8], made: bool) -> u32 {
        let known = self.nodes[parent as usize].children.get(part).copied();
        if let (Some(n), false) = (known, made) {
            return n;
        }
        let ours = made || self.nodes[parent as usize].ours;
        let n = self.nodes.len() as u32;
        self.nodes.push(node(part, ours));
        self.nodes[parent as usize].children.insert(part.into(), n);
        n
    }

    /// Closes the shallowest open folders until at most [`MAX_OPEN`] are open.
    fn close_some(&mut self) {
        let open = self.levels.len() - self.shallowest_open;
        if open > MAX_OPEN {
            let close = open - MAX_OPEN;
            for level in &mut self.levels[self.shallowest_open..self.shallowest_open + close] {
                level.fd = None;
            }
            self.shallowest_open += close;
        }
    }

    /// Opens the current folder again if it was closed, from the nearest open one above.
    fn reopen(&mut self) -> Result<()> {
        let Some(last) = self.levels.len().checked_sub(1) else {
            return Ok(());
        };
        if self.levels[last].fd.is_some() {
            return Ok(());
        }
        // Every level from `shallowest_open` down is open: here, none is.
        let from = last.saturating_sub(MAX_OPEN - 1);
        let mut dir = match from.checked_sub(1) {
            Some(above) if self.levels[above].fd.is_some() => {
                self.levels[above].fd.as_ref().expect("open").try_clone()?
            }
            _ => self.reopen_from_root(from)?,
        };
        for i in from..=last {
            let name = OsStr::from_bytes(&self.nodes[self.levels[i].node as usize].name);
            let fd = nix::fcntl::openat(&dir, name, FLAGS, Mode::empty())
                .context("opening a folder again")?;
            if id_of(&fd)? != self.levels[i].id {
                bail!("a folder was replaced while the restore ran");
            }
            dir = fd.try_clone()?;
            self.levels[i].fd = Some(fd);
        }
        self.shallowest_open = from;
        Ok(())
    }

    /// The folder just above level `from`, opened from DEST down.
    fn reopen_from_root(&self, from: usize) -> Result<OwnedFd> {
        let mut dir = self.root.try_clone()?;
        for level in &self.levels[..from] {
            let name = OsStr::from_bytes(&self.nodes[level.node as usize].name);
            dir = nix::fcntl::openat(&dir, name, FLAGS, Mode::empty())
                .context("opening a folder again")?;
            if id_of(&dir)? != level.id {
                bail!("a folder was replaced while the restore ran");
            }
        }
        Ok(dir)
    }

    /// Notes that the restore wrote `leaf` in the folder `node`.
    pub fn wrote(&mut self, node: u32, leaf: &[u8]) {
        let node = &mut self.nodes[node as usize];
        if !node.ours && !node.written.contains(leaf) {
            node.written.insert(leaf.into());
        }
    }

    /// Whether `leaf` of the folder `node` was written by this restore.
    pub fn is_written(&self, node: u32, leaf: &[u8]) -> bool {
        let node = &self.nodes[node as usize];
        node.ours || node.written.contains(leaf)
    }

    /// Notes that `leaf` of the folder `node` was removed.
    pub fn removed(&mut self, node: u32, leaf: &[u8]) {
        let node = &mut self.nodes[node as usize];
        node.written.remove(leaf);
        node.children.remove(leaf);
    }

    /// Records the folder `node`'s archived mode, owner and time, for the end; a later
    /// archive's entry for the same folder replaces an earlier one's.
    pub fn restored(&mut self, node: u32, header: &Header) {
        self.nodes[node as usize].end = Some(Final::of(header));
    }

    /// Visits the folders reached, deepest first (every folder after all it holds), with
    /// `visit(tree, node, ours, end)` called while the tree is at that folder. A folder
    /// gone or no longer one is skipped, with all it held.
    pub fn each_deepest_first(&mut self, visit: &mut Visit<'_>) -> Result<()> {
        self.up_to(0);
        // Each frame: a folder's child folders, and how many of them are done.
        let mut frames: Vec<(u32, Vec<u32>, usize)> = vec![(ROOT, self.kids(ROOT), 0)];
        while let Some((node, kids, done)) = frames.last_mut() {
            if let Some(&kid) = kids.get(*done) {
                *done += 1;
                let name = self.nodes[kid as usize].name.clone();
                self.reopen()?;
                if matches!(self.down(&name, None)?, Down::In) {
                    frames.push((kid, self.kids(kid), 0));
                }
                continue;
            }
            let node = *node;
            let n = &self.nodes[node as usize];
            let (ours, end) = (n.ours, n.end.clone());
            visit(self, node, ours, end)?;
            frames.pop();
            if !frames.is_empty() {
                self.up_to(self.levels.len() - 1);
            }
        }
        Ok(())
    }

    /// The current folder's name under DEST, for messages.
    pub fn current_name(&self) -> Vec<u8> {
        self.path.clone()
    }

    fn kids(&self, node: u32) -> Vec<u32> {
        self.nodes[node as usize]
            .children
            .values()
            .copied()
            .collect()
    }
}

/// Whether the folder `fd` has a default ACL; true also when that cannot be told, so that
/// what depends on its absence is not done.
fn has_default_acl(fd: impl AsFd) -> bool {
    let name = c"system.posix_acl_default";
    // SAFETY: the name is a NUL-terminated string, and a size of 0 asks only for the
    // value's length, writing nothing through the null pointer.
    let len = unsafe {
        libc::fgetxattr(
            std::os::fd::AsRawFd::as_raw_fd(&fd.as_fd()),
            name.as_ptr(),
            std::ptr::null_mut(),
            0,
        )
    };
    len >= 0 || !matches!(Errno::last(), Errno::ENODATA | Errno::EOPNOTSUPP)
}

/// The identity and group of the open folder `fd`.
fn stat_of(fd: impl AsFd) -> nix::Result<(Id, u32)> {
    let st = nix::sys::stat::fstat(fd)?;
    Ok(((st.st_dev, st.st_ino), st.st_gid))
}

fn node(name: &[u8], ours: bool) -> Node {
    Node {
        name: name.into(),
        children: HashMap::new(),
        ours,
        written: HashSet::new(),
        end: None,
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
    use std::path::Path;

    use super::*;
    use crate::tar::Kind;

    fn header(mode: u32, mtime: i64) -> Header {
        let mut h = Header::new(Vec::new(), Kind::Dir);
        h.mode = mode;
        h.mtime = mtime;
        h
    }

    fn tree(path: &Path) -> Tree {
        let root = nix::fcntl::open(path, OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty());
        Tree::new(root.unwrap(), true).unwrap()
    }

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
    }

    /// Gives every folder that has one its final mode, as a restore ends.
    fn finish(tree: &mut Tree) {
        tree.each_deepest_first(&mut |tree, _, _, end| match end {
            Some(end) => Ok(end.apply(tree.here()?.1, false, &mut Default::default())?),
            None => Ok(()),
        })
        .unwrap();
    }

    fn restored(tree: &mut Tree, path: &str, mode: u32, mtime: i64) {
        let node = tree.open(path.as_bytes(), Some(Mode::from_bits_truncate(0o700)));
        tree.restored(node.unwrap().unwrap(), &header(mode, mtime));
    }

    #[test]
    fn the_latest_entry_wins_and_folders_are_set_deepest_first() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let mut t = tree(root);
        restored(&mut t, "a", 0o700, 1);
        restored(&mut t, "a/b/c", 0o750, 1_000_000_002);
        restored(&mut t, "a", 0o555, 1_000_000_000);
        restored(&mut t, "a/b", 0o500, 1_000_000_001);
        restored(&mut t, "a/d", 0o2755, 1_000_000_003);
        finish(&mut t);
        for (path, want, mtime) in [
            ("a", 0o555, 1_000_000_000),
            ("a/b", 0o500, 1_000_000_001),
            ("a/b/c", 0o750, 1_000_000_002),
            ("a/d", 0o2755, 1_000_000_003),
        ] {
            let path = root.join(path);
            assert_eq!(mode(&path), want, "{}", path.display());
            assert_eq!(fs::metadata(&path).unwrap().mtime(), mtime);
        }
        fs::set_permissions(root.join("a"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(root.join("a/b"), fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn a_folder_replaced_by_a_link_is_skipped_and_the_link_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("dest");
        let outside = tmp.path().join("outside");
        fs::create_dir_all(&root).unwrap();
        fs::create_dir(&outside).unwrap();
        fs::set_permissions(&outside, fs::Permissions::from_mode(0o755)).unwrap();
        let mut t = tree(&root);
        restored(&mut t, "was_a_folder", 0o500, 5);
        restored(&mut t, "now_a_file", 0o500, 5);
        t.open(b"", None).unwrap();
        fs::remove_dir(root.join("was_a_folder")).unwrap();
        symlink(&outside, root.join("was_a_folder")).unwrap();
        fs::remove_dir(root.join("now_a_file")).unwrap();
        fs::write(root.join("now_a_file"), "f").unwrap();
        fs::set_permissions(root.join("now_a_file"), fs::Permissions::from_mode(0o644)).unwrap();
        finish(&mut t);
        assert_eq!(mode(&outside), 0o755);
        assert_ne!(fs::metadata(&outside).unwrap().mtime(), 5);
        assert_eq!(mode(&root.join("now_a_file")), 0o644);
        // Making refuses what is not a folder on the way.
        let err = t.open(b"was_a_folder/x", Some(Mode::empty()));
        assert!(format!("{:#}", err.unwrap_err()).contains("refusing to write through"));
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
    }

    #[test]
    fn a_deep_tree_is_walked_with_few_descriptors_open() {
        let tmp = tempfile::tempdir().unwrap();
        let mut t = tree(tmp.path());
        let deep = vec!["d"; 3000].join("/");
        for depth in 1..=3000 {
            restored(&mut t, &deep[..2 * depth - 1], 0o700, depth as i64);
        }
        let open = fs::read_dir("/proc/self/fd").unwrap().count();
        assert!(open < 2 * MAX_OPEN + 20, "{open} descriptors open");
        // Up and down again: the folders closed on the way are opened again.
        t.open(&deep.as_bytes()[..19], None).unwrap().unwrap();
        t.open(deep.as_bytes(), None).unwrap().unwrap();
        finish(&mut t);
        t.open(deep.as_bytes(), None).unwrap().unwrap();
        let st = nix::sys::stat::fstat(t.here().unwrap().1).unwrap();
        assert_eq!(st.st_mtime, 3000);
        assert_eq!(fs::metadata(tmp.path().join("d/d")).unwrap().mtime(), 2);
    }
}
