//! One generation's entries as a tree of folders: what the file system answers `lookup`
//! and `readdir` from.
//!
//! An archive need not hold every folder above its files (GNU tar's `-C / home/me/proj`
//! holds `home/me/proj/...` without `home`), so the folders missing are made up, with the
//! generation's own mode and time. A name stored twice keeps its last entry, as `tar -x`
//! would leave it. A hard link is the node of its target, so that both names share an
//! inode number and a link count.
//!
//! Built on the first look at a generation, from every entry, and so kept light: a name
//! is not copied (each is a part of its entry's path, in the [`Entries`]), and a folder's
//! names are sorted for looking them up only when first looked into.

use std::cell::OnceCell;
use std::collections::HashMap;

use super::{Entries, Kind, Span};
use crate::browse::names::Hashed;

/// No entry: the root, or a folder made up; the end of a chain of names.
const NONE: u32 = u32::MAX;

/// A node: the generation's root (0), a folder made up, or an entry. Small, as there is
/// one for each entry: what only a folder has is in a [`Names`] of its own.
#[derive(Debug)]
pub struct Node {
    entry: u32,
    parent: u32,
    /// How many names it has: more than one for a file with hard links.
    pub links: u32,
    /// Its names, in [`Tree::folders`], once a name was put in it.
    names: u32,
}

/// The names in a folder.
#[derive(Debug, Default)]
struct Names {
    /// As put, in the archive's order; a name put twice is there twice, until
    /// [`Tree::listing`] sorts it out.
    children: Vec<u32>,
    /// Sorted out, when first asked for.
    sorted: OnceCell<Box<Folder>>,
}

/// The names of a folder that has none.
static NO_NAMES: Folder = Folder {
    listed: Vec::new(),
    sorted: Vec::new(),
};

/// A folder's names, once sorted out.
#[derive(Debug)]
struct Folder {
    /// Each name once (at its first place, with the node put last under it), in the
    /// archive's order: the name's number and its node.
    listed: Vec<(u32, u32)>,
    /// Those of `listed`, by name.
    sorted: Vec<u32>,
}

impl Node {
    fn new(entry: Option<usize>, parent: usize) -> Self {
        Node {
            entry: entry.map_or(NONE, |e| e as u32),
            parent: parent as u32,
            links: 1,
            names: NONE,
        }
    }

    /// Its parent's node (the root's own for the root).
    pub fn parent(&self) -> usize {
        self.parent as usize
    }

    /// The entry it shows, `None` for the root and the folders made up.
    pub fn entry(&self) -> Option<usize> {
        (self.entry != NONE).then_some(self.entry as usize)
    }
}

/// A name in a folder.
#[derive(Debug)]
struct Name {
    folder: u32,
    name: Span,
    node: u32,
    /// The next folder's name of the same hash, `NONE` at the end.
    next: u32,
}

/// The tree of one generation.
#[derive(Debug)]
pub struct Tree {
    /// The nodes; 0 is the root.
    pub nodes: Vec<Node>,
    names: Vec<Name>,
    /// The names of each folder that has some.
    folders: Vec<Names>,
    /// The first of the folders' names of each hash of (parent, name), for finding a
    /// folder while building: files are found through their folder's sorted names.
    by_hash: HashMap<u64, u32, Hashed>,
}

impl Tree {
    /// The tree of `entries`, given in the archive's order; `None` past 2^32 nodes.
    pub fn new(entries: &Entries) -> Option<Tree> {
        let mut tree = Tree {
            nodes: Vec::with_capacity(entries.len() + 1),
            names: Vec::with_capacity(entries.len()),
            folders: Vec::new(),
            by_hash: HashMap::default(),
        };
        tree.nodes.push(Node::new(None, 0));
        let mut links = Vec::new();
        // The folder of the entry before, as its path writes it: most entries share it.
        let mut last: Option<(&[u8], usize)> = None;
        for i in 0..entries.len() {
            let path = entries.path(i);
            let Some((from, len)) = last_name(path) else {
                continue;
            };
            let parent = match last {
                Some((folder, node)) if folder == &path[..from] => node,
                _ => {
                    let node = tree.folder(entries, i, from)?;
                    last = Some((&path[..from], node));
                    node
                }
            };
            let name = entries.path_span(i).part(from, len);
            match entries[i].kind {
                Kind::HardLink => links.push((i, parent, name)),
                Kind::Folder => {
                    tree.put_folder(entries, parent, name, Some(i))?;
                }
                _ => tree.put(entries, parent, name, i)?,
            }
        }
        // After every entry, as GNU tar writes a link after its target but a chain may
        // resolve the target from a later archive.
        let mut grown = Vec::new();
        for (i, parent, name) in links {
            match tree.find(entries, entries.link(i)) {
                Some(node) if !tree.is_folder(node, entries) => {
                    tree.nodes[node].links += 1;
                    tree.name(parent, name, node)?;
                    grown.push(parent);
                }
                _ => {}
            }
        }
        // Sorted out before those names were put: sorted again when asked for.
        for folder in grown {
            let names = tree.nodes[folder].names as usize;
            tree.folders[names].sorted.take();
        }
        u32::try_from(tree.nodes.len()).ok()?;
        Some(tree)
    }

    /// The names in `folder` and their nodes, each once, in the archive's order.
    pub fn listing<'a>(
        &'a self,
        entries: &'a Entries,
        folder: usize,
    ) -> impl Iterator<Item = (&'a [u8], usize)> + 'a {
        let listed = &self.sorted_out(entries, folder).listed;
        listed
            .iter()
            .map(move |&(name, node)| (entries.name(self.names[name as usize].name), node as usize))
    }

    /// The node named `name` inside `folder`.
    pub fn child(&self, entries: &Entries, folder: usize, name: &[u8]) -> Option<usize> {
        let found = self.sorted_out(entries, folder);
        let name_of = |i: u32| entries.name(self.names[found.listed[i as usize].0 as usize].name);
        let at = found
            .sorted
            .binary_search_by(|&i| name_of(i).cmp(name))
            .ok()?;
        Some(found.listed[found.sorted[at] as usize].1 as usize)
    }

    /// The names of `folder`, sorted out the first time they are asked for.
    fn sorted_out(&self, entries: &Entries, folder: usize) -> &Folder {
        let Some(names) = self.folders.get(self.nodes[folder].names as usize) else {
            return &NO_NAMES;
        };
        names.sorted.get_or_init(|| {
            let children = &names.children;
            let name_at = |i: u32| entries.name(self.names[children[i as usize] as usize].name);
            // By name, and for a name put twice in the order it was put.
            let mut order: Vec<u32> = (0..children.len() as u32).collect();
            order.sort_by(|&a, &b| name_at(a).cmp(name_at(b)));
            // Each name's first place, with the node put last under it.
            let mut kept = vec![NONE; children.len()];
            let mut group = 0;
            while group < order.len() {
                let mut end = group + 1;
                while end < order.len() && name_at(order[end]) == name_at(order[group]) {
                    end += 1;
                }
                let last = children[order[end - 1] as usize];
                kept[order[group] as usize] = self.names[last as usize].node;
                group = end;
            }
            let mut place = vec![NONE; children.len()];
            let mut listed = Vec::with_capacity(children.len());
            for (i, &node) in kept.iter().enumerate() {
                if node != NONE {
                    place[i] = listed.len() as u32;
                    listed.push((children[i], node));
                }
            }
            let sorted = order
                .into_iter()
                .map(|i| place[i as usize])
                .filter(|&p| p != NONE)
                .collect();
            Box::new(Folder { listed, sorted })
        })
    }

    /// The node of a path of the archive, `a/b/c`, if it is there.
    pub fn find(&self, entries: &Entries, path: &[u8]) -> Option<usize> {
        components(path).try_fold(0, |node, (_, name)| self.child(entries, node, name))
    }

    /// The folder of the first `len` bytes of the path of entry `i`, made up where
    /// missing.
    fn folder(&mut self, entries: &Entries, i: usize, len: usize) -> Option<usize> {
        let path = &entries.path(i)[..len];
        let span = entries.path_span(i);
        let mut node = 0;
        for (from, name) in components(path) {
            node = self.put_folder(entries, node, span.part(from, name.len()), None)?;
        }
        Some(node)
    }

    /// The folder named `name` in `parent`, in place of what had that name.
    fn folder_of(&self, entries: &Entries, parent: usize, name: &[u8]) -> Option<usize> {
        let mut at = *self.by_hash.get(&hash(parent, name))?;
        while at != NONE {
            let n = &self.names[at as usize];
            if n.folder as usize == parent && entries.name(n.name) == name {
                return Some(n.node as usize);
            }
            at = n.next;
        }
        None
    }

    /// The folder for `entry` (`None` for one made up) as `name` in `parent`: the one of
    /// that name already there, which keeps what it holds (a folder stored twice, as by
    /// a chain's later archive), or a new one.
    fn put_folder(
        &mut self,
        entries: &Entries,
        parent: usize,
        name: Span,
        entry: Option<usize>,
    ) -> Option<usize> {
        if let Some(old) = self.folder_of(entries, parent, entries.name(name)) {
            if let Some(entry) = entry {
                self.nodes[old].entry = u32::try_from(entry).ok()?;
            }
            return Some(old);
        }
        let node = self.nodes.len();
        self.nodes.push(Node::new(entry, parent));
        let number = self.name(parent, name, node)?;
        let first = self
            .by_hash
            .entry(hash(parent, entries.name(name)))
            .or_insert(NONE);
        self.names[number as usize].next = *first;
        *first = number;
        Some(node)
    }

    /// Puts a node for `entry`, not a folder, as `name` in `parent`; over a folder of
    /// that name, it is that folder's entry.
    fn put(&mut self, entries: &Entries, parent: usize, name: Span, entry: usize) -> Option<()> {
        let entry32 = u32::try_from(entry).ok()?;
        if !self.by_hash.is_empty() {
            if let Some(old) = self.folder_of(entries, parent, entries.name(name)) {
                self.nodes[old].entry = entry32;
                return Some(());
            }
        }
        let node = self.nodes.len();
        self.nodes.push(Node::new(Some(entry), parent));
        self.name(parent, name, node).map(|_| ())
    }

    /// Names `node` `name` in `parent`; returns the name's number.
    fn name(&mut self, parent: usize, name: Span, node: usize) -> Option<u32> {
        let number = u32::try_from(self.names.len())
            .ok()
            .filter(|&n| n != NONE)?;
        self.names.push(Name {
            folder: u32::try_from(parent).ok()?,
            name,
            node: u32::try_from(node).ok()?,
            next: NONE,
        });
        if self.nodes[parent].names == NONE {
            self.nodes[parent].names = u32::try_from(self.folders.len()).ok()?;
            self.folders.push(Names::default());
        }
        let names = self.nodes[parent].names as usize;
        self.folders[names].children.push(number);
        Some(number)
    }

    /// How many folders are right inside `node`: a folder's link count is 2 plus those.
    pub fn folders_in(&self, node: usize, entries: &Entries) -> u32 {
        let count = self
            .listing(entries, node)
            .filter(|&(_, child)| self.is_folder(child, entries))
            .count();
        u32::try_from(count).unwrap_or(u32::MAX)
    }

    /// Whether `node` is a folder: the root, one made up, or a folder entry.
    pub fn is_folder(&self, node: usize, entries: &Entries) -> bool {
        match self.nodes[node].entry() {
            None => true,
            Some(i) => entries[i].kind == Kind::Folder,
        }
    }
}

/// The hash of `name` in `folder`.
fn hash(folder: usize, name: &[u8]) -> u64 {
    crate::browse::names::hash(name, folder as u64)
}

/// Where the last name of `path` starts and how long it is; `None` for a path of no name
/// (`.`, `/`).
fn last_name(path: &[u8]) -> Option<(usize, usize)> {
    // Found from the end, as the path before it need not be read: the common case.
    let end = path.iter().rposition(|&b| b != b'/')? + 1;
    let from = memchr::memrchr(b'/', &path[..end]).map_or(0, |i| i + 1);
    if !matches!(&path[from..end], b"." | b"..") {
        return Some((from, end - from));
    }
    components(path)
        .last()
        .map(|(from, name)| (from, name.len()))
}

/// The names of an archive path, each with where it starts, without `.`, empty names and
/// a leading `/`. `..` never reaches here: the archive check refuses it, and it is
/// dropped all the same.
fn components(path: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let mut from = 0;
    path.split(|&b| b == b'/')
        .map(move |name| {
            let at = from;
            from += name.len() + 1;
            (at, name)
        })
        .filter(|(_, name)| !name.is_empty() && *name != b"." && *name != b"..")
}

#[cfg(test)]
mod tests {
    use super::super::Entry;
    use super::*;

    fn entries(list: &[(&str, Kind, &str)]) -> Entries {
        let mut entries = Entries::default();
        for (path, kind, link) in list {
            let entry = Entry {
                kind: *kind,
                mode: 0o644,
                uid: 0,
                gid: 0,
                size: 0,
                mtime: 0,
                mtime_nanos: 0,
            };
            entries
                .push(path.as_bytes(), link.as_bytes(), entry)
                .unwrap();
        }
        entries
    }

    #[test]
    fn folders_missing_are_made_up_and_links_share_their_target() {
        let entries = entries(&[
            ("home/me/proj/", Kind::Folder, ""),
            ("home/me/proj/a", Kind::File, ""),
            ("./home/me/proj/b", Kind::HardLink, "home/me/proj/a"),
            ("home/me/proj/a", Kind::File, ""),
            ("home/me/other/c", Kind::File, ""),
        ]);
        let tree = Tree::new(&entries).unwrap();
        let find = |path: &str| tree.find(&entries, path.as_bytes());
        let a = find("home/me/proj/a").unwrap();
        assert_eq!(find("home/me/proj/b"), Some(a));
        assert_eq!(tree.nodes[a].links, 2);
        assert_eq!(
            tree.nodes[a].entry(),
            Some(3),
            "the last of a name stored twice"
        );
        let proj = find("home/me/proj").unwrap();
        assert_eq!(tree.nodes[proj].entry(), Some(0));
        let names: Vec<_> = tree.listing(&entries, proj).map(|(n, _)| n).collect();
        assert_eq!(names, [b"a", b"b"]);
        assert_eq!(tree.nodes[find("home").unwrap()].entry(), None);
        assert_eq!(find("home/me/nope"), None);
        assert_eq!(
            tree.nodes[find("home/me/other/c").unwrap()].entry(),
            Some(4)
        );
        assert_eq!(tree.folders_in(0, &entries), 1);
        assert_eq!(tree.folders_in(find("home/me").unwrap(), &entries), 2);
    }
}
