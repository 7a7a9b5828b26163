//! One generation's entries as a tree of folders, each name looked up in a map: what the
//! file system answers `lookup` and `readdir` from.
//!
//! An archive need not hold every folder above its files (GNU tar's `-C / home/me/proj`
//! holds `home/me/proj/...` without `home`), so the folders missing are made up, with the
//! generation's own mode and time. A name stored twice keeps its last entry, as `tar -x`
//! would leave it. A hard link is the node of its target, so that both names share an
//! inode number and a link count.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use super::{Entry, Kind};

/// A node: the generation's root (0), a folder made up, or an entry.
#[derive(Debug)]
pub struct Node {
    /// The entry it shows, `None` for the root and the folders made up.
    pub entry: Option<usize>,
    /// Its parent's node (the root's own for the root).
    pub parent: usize,
    /// Its names inside it, in the archive's order, for a folder.
    pub children: Vec<(OsString, usize)>,
    /// Those names, for `lookup`.
    index: HashMap<OsString, usize>,
    /// How many names it has: more than one for a file with hard links.
    pub links: u32,
}

impl Node {
    fn new(entry: Option<usize>, parent: usize) -> Self {
        Node {
            entry,
            parent,
            children: Vec::new(),
            index: HashMap::new(),
            links: 1,
        }
    }

    /// The node named `name` inside this one.
    pub fn child(&self, name: &OsStr) -> Option<usize> {
        self.index.get(name).copied()
    }
}

/// The tree of one generation.
#[derive(Debug)]
pub struct Tree {
    /// The nodes; 0 is the root.
    pub nodes: Vec<Node>,
}

impl Tree {
    /// The tree of `entries`, given in the archive's order.
    pub fn new(entries: &[Entry]) -> Tree {
        let mut tree = Tree {
            nodes: vec![Node::new(None, 0)],
        };
        let mut links = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            let Some((parent, name)) = tree.parent_of(&entry.path) else {
                continue;
            };
            if let Kind::HardLink(_) = entry.kind {
                links.push((i, parent, name));
                continue;
            }
            tree.put(parent, name, Some(i));
        }
        // After every entry, as GNU tar writes a link after its target but a chain may
        // resolve the target from a later archive.
        for (i, parent, name) in links {
            let Kind::HardLink(target) = &entries[i].kind else {
                continue;
            };
            match tree.find(target.as_os_str().as_bytes()) {
                Some(node) if tree.nodes[node].children.is_empty() && node != 0 => {
                    tree.nodes[node].links += 1;
                    tree.link(parent, name, node);
                }
                _ => {}
            }
        }
        tree
    }

    /// The node of a path of the archive, `a/b/c`, if it is there.
    pub fn find(&self, path: &[u8]) -> Option<usize> {
        components(path).try_fold(0, |node, name| {
            self.nodes[node].child(OsStr::from_bytes(name))
        })
    }

    /// The folder that holds `path`, made up where missing, and its last name; `None` for
    /// a path of no name (`.`, `/`).
    fn parent_of(&mut self, path: &std::path::Path) -> Option<(usize, OsString)> {
        let names: Vec<&[u8]> = components(path.as_os_str().as_bytes()).collect();
        let (last, folders) = names.split_last()?;
        let mut node = 0;
        for name in folders {
            let name = OsStr::from_bytes(name);
            node = match self.nodes[node].child(name) {
                Some(child) => child,
                None => self.put(node, name.to_owned(), None),
            };
        }
        Some((node, OsStr::from_bytes(last).to_owned()))
    }

    /// Puts a node for `entry` as `name` in `parent`, in place of one of that name.
    fn put(&mut self, parent: usize, name: OsString, entry: Option<usize>) -> usize {
        if let Some(old) = self.nodes[parent].child(&name) {
            // A folder stored twice (a chain's later archive) keeps what it holds.
            if entry.is_some() {
                self.nodes[old].entry = entry;
            }
            return old;
        }
        let node = self.nodes.len();
        self.nodes.push(Node::new(entry, parent));
        self.link(parent, name, node);
        node
    }

    fn link(&mut self, parent: usize, name: OsString, node: usize) {
        let folder = &mut self.nodes[parent];
        if let Some(old) = folder.index.insert(name.clone(), node) {
            if let Some(slot) = folder.children.iter_mut().find(|(_, n)| *n == old) {
                slot.1 = node;
            }
            return;
        }
        folder.children.push((name, node));
    }

    /// How many folders are right inside `node`: a folder's link count is 2 plus those.
    pub fn folders_in(&self, node: usize, entries: &[Entry]) -> u32 {
        let count = self.nodes[node]
            .children
            .iter()
            .filter(|(_, child)| self.is_folder(*child, entries))
            .count();
        u32::try_from(count).unwrap_or(u32::MAX)
    }

    /// Whether `node` is a folder: the root, one made up, or a folder entry.
    pub fn is_folder(&self, node: usize, entries: &[Entry]) -> bool {
        match self.nodes[node].entry {
            None => true,
            Some(i) => matches!(entries[i].kind, Kind::Folder),
        }
    }
}

/// The names of an archive path, without `.`, empty names and a leading `/`. `..` never
/// reaches here: the archive check refuses it, and it is dropped all the same.
fn components(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    path.split(|&b| b == b'/')
        .filter(|name| !name.is_empty() && *name != b"." && *name != b"..")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn entry(path: &str, kind: Kind) -> Entry {
        Entry {
            path: PathBuf::from(path),
            kind,
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: 0,
            mtime: 0,
            mtime_nanos: 0,
        }
    }

    #[test]
    fn folders_missing_are_made_up_and_links_share_their_target() {
        let entries = [
            entry("home/me/proj/", Kind::Folder),
            entry("home/me/proj/a", Kind::File),
            entry(
                "./home/me/proj/b",
                Kind::HardLink(PathBuf::from("home/me/proj/a")),
            ),
            entry("home/me/proj/a", Kind::File),
        ];
        let tree = Tree::new(&entries);
        let a = tree.find(b"home/me/proj/a").unwrap();
        assert_eq!(tree.find(b"home/me/proj/b"), Some(a));
        assert_eq!(tree.nodes[a].links, 2);
        assert_eq!(
            tree.nodes[a].entry,
            Some(3),
            "the last of a name stored twice"
        );
        let proj = tree.find(b"home/me/proj").unwrap();
        assert_eq!(tree.nodes[proj].entry, Some(0));
        assert_eq!(tree.nodes[proj].children.len(), 2);
        assert_eq!(tree.nodes[tree.find(b"home").unwrap()].entry, None);
        assert_eq!(tree.find(b"home/me/nope"), None);
        assert_eq!(tree.folders_in(0, &entries), 1);
    }
}
