//! A read-only FUSE file system of the backups: `DIR/NAME/GENERATION/...` for every kept
//! generation of each schedule, and `DIR/NAME/latest`, a link to the newest.
//!
//! What a generation holds comes from a [`Backups`]: this module knows folders, inodes and
//! the kernel's requests, not archives. Each listing of `DIR/NAME` asks it again, so that a
//! generation written or pruned while mounted comes or goes; a file already open keeps
//! the [`Snapshot`] it was opened from, and reads on from it.

mod fs;
mod home;
mod inodes;
mod session;
mod tree;

use std::io;
use std::rc::Rc;

use anyhow::Result;

pub use home::{HomeBackups, label};
pub use session::{FS_NAME, check_fuse, is_mounted, mount};

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A folder.
    Folder,
    /// A symbolic link to its entry's link target.
    Symlink,
    /// A hard link to the entry of the path its link target names, of the same generation.
    HardLink,
    /// A named pipe.
    Fifo,
    /// A character device: major, minor.
    CharDevice(u32, u32),
    /// A block device: major, minor.
    BlockDevice(u32, u32),
}

/// One entry of a generation, as archived; its path and link target are kept in its
/// [`Entries`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// What it is.
    pub kind: Kind,
    /// Its permission bits, set-id and sticky bits included.
    pub mode: u32,
    /// Its owner.
    pub uid: u32,
    /// Its group.
    pub gid: u32,
    /// A file's size, as restored (holes included).
    pub size: u64,
    /// Its modification time, in seconds since 1970.
    pub mtime: i64,
    /// The nanoseconds of that time.
    pub mtime_nanos: u32,
}

/// Where a name lies in the bytes of an [`Entries`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    start: u32,
    len: u32,
}

/// A generation's entries, with their paths and link targets in one buffer: no
/// allocation of its own for each, as a generation may hold millions.
#[derive(Debug, Default)]
pub struct Entries {
    names: Vec<u8>,
    list: Vec<(Entry, Span, Span)>,
}

impl Entries {
    /// No entries yet, with room for `count`.
    pub fn with_capacity(count: usize) -> Self {
        Entries {
            // Paths are some tens of bytes: room for as many, not touched until used.
            names: Vec::with_capacity(count.saturating_mul(64)),
            list: Vec::with_capacity(count),
        }
    }

    /// Adds `entry`, of path `path` (relative, as in the archive: `src/main.rs`) and link
    /// target `link` (empty for none). Fails past 4 GiB of names.
    pub fn push(&mut self, path: &[u8], link: &[u8], entry: Entry) -> Result<()> {
        let path = self.keep(path)?;
        let link = self.keep(link)?;
        self.list.push((entry, path, link));
        Ok(())
    }

    fn keep(&mut self, name: &[u8]) -> Result<Span> {
        let start = u32::try_from(self.names.len());
        let end = u32::try_from(self.names.len() + name.len());
        let (Ok(start), Ok(_)) = (start, end) else {
            anyhow::bail!("more than 4 GiB of names in one generation");
        };
        self.names.extend_from_slice(name);
        Ok(Span {
            start,
            len: name.len() as u32,
        })
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The path of entry `i`.
    pub fn path(&self, i: usize) -> &[u8] {
        self.name(self.list[i].1)
    }

    /// Where the path of entry `i` lies.
    pub fn path_span(&self, i: usize) -> Span {
        self.list[i].1
    }

    /// The link target of entry `i`, empty for none.
    pub fn link(&self, i: usize) -> &[u8] {
        self.name(self.list[i].2)
    }

    /// The bytes at `span`.
    pub fn name(&self, span: Span) -> &[u8] {
        &self.names[span.start as usize..(span.start + span.len) as usize]
    }
}

impl Span {
    /// The part of it from byte `from`, `len` bytes long (within it).
    pub fn part(self, from: usize, len: usize) -> Span {
        debug_assert!(from + len <= self.len as usize);
        Span {
            start: self.start + from as u32,
            len: len as u32,
        }
    }
}

impl std::ops::Index<usize> for Entries {
    type Output = Entry;

    fn index(&self, i: usize) -> &Entry {
        &self.list[i].0
    }
}

/// One generation's tree, with a way to read its files' contents.
pub trait Snapshot {
    /// Its entries, in the archive's order (for a chain, as of the generation).
    fn entries(&self) -> &Entries;

    /// Reads into `buf` from `offset` of the file of `entries()[entry]`; 0 at its end.
    /// Holes of a sparse file read as zeros.
    fn read_at(&self, entry: usize, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
}

/// A generation as `DIR/NAME` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    /// Its folder's name, as `restore --at` takes it.
    pub label: String,
    /// When it was made, in seconds since 1970.
    pub made: i64,
}

/// The backups of a home, as the mount sees them.
pub trait Backups {
    /// The schedules' names.
    fn names(&self) -> Result<Vec<String>>;

    /// The kept generations of `name`, newest first.
    fn generations(&self, name: &str) -> Result<Vec<Generation>>;

    /// The tree of one generation.
    fn open(&self, name: &str, label: &str) -> Result<Rc<dyn Snapshot>>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;
    use std::sync::{Arc, Mutex};

    /// Generations in memory, newest first, each with its files.
    type Shared = Arc<Mutex<Vec<(Generation, Files)>>>;

    struct Fake {
        generations: Shared,
    }

    struct Memory {
        entries: Entries,
        contents: Vec<Vec<u8>>,
    }

    impl Snapshot for Memory {
        fn entries(&self) -> &Entries {
            &self.entries
        }
        fn read_at(&self, entry: usize, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
            let data = &self.contents[entry];
            let start = (offset as usize).min(data.len());
            let n = buf.len().min(data.len() - start);
            buf[..n].copy_from_slice(&data[start..start + n]);
            Ok(n)
        }
    }

    impl Backups for Fake {
        fn names(&self) -> Result<Vec<String>> {
            Ok(vec!["proj".to_owned()])
        }
        fn generations(&self, _name: &str) -> Result<Vec<Generation>> {
            Ok(self
                .generations
                .lock()
                .unwrap()
                .iter()
                .map(|g| g.0.clone())
                .collect())
        }
        fn open(&self, _name: &str, label: &str) -> Result<Rc<dyn Snapshot>> {
            let all = self.generations.lock().unwrap();
            let found = all.iter().find(|g| g.0.label == label).unwrap();
            Ok(Rc::new(memory(&found.1)))
        }
    }

    /// A generation's files: path, kind, link target and contents.
    type Files = Vec<(&'static str, Kind, &'static str, &'static str)>;

    fn memory(files: &Files) -> Memory {
        let mut entries = Entries::default();
        for (path, kind, link, data) in files {
            let entry = Entry {
                kind: *kind,
                mode: if *kind == Kind::Folder { 0o755 } else { 0o640 },
                uid: 1234,
                gid: 5678,
                size: data.len() as u64,
                mtime: 1_700_000_000,
                mtime_nanos: 123_456_789,
            };
            entries
                .push(path.as_bytes(), link.as_bytes(), entry)
                .unwrap();
        }
        let contents = files.iter().map(|f| f.3.as_bytes().to_vec()).collect();
        Memory { entries, contents }
    }

    fn generation(label: &str, made: i64) -> Generation {
        Generation {
            label: label.to_owned(),
            made,
        }
    }

    #[test]
    fn generations_show_as_folders_read_only_and_come_and_go() {
        if check_fuse().is_err() {
            eprintln!("note: no FUSE here; the mount is not tried");
            return;
        }
        let old = vec![
            ("src/", Kind::Folder, "", ""),
            ("src/a.rs", Kind::File, "", "old a"),
            ("src/link", Kind::Symlink, "a.rs", ""),
        ];
        let new = vec![
            ("src/a.rs", Kind::File, "", "new a, longer"),
            ("src/b.rs", Kind::HardLink, "src/a.rs", ""),
        ];
        let generations = Arc::new(Mutex::new(vec![
            (generation("2026-12-02_0200", 1_796_176_800), new),
            (generation("2026-12-01_0200", 1_796_090_400), old),
        ]));
        let dir = tempfile::tempdir().unwrap();
        let fake = Fake {
            generations: generations.clone(),
        };
        let mut session = fuser::Session::new(
            fs::BackupsFs::new(Box::new(fake)),
            dir.path(),
            &[fuser::MountOption::RO],
        )
        .unwrap();
        let mut unmounter = session.unmount_callable();
        let root = dir.path().join("proj");
        let checks = std::thread::spawn(move || {
            let result = std::panic::catch_unwind(|| look(&root, &generations));
            unmounter.unmount().unwrap();
            result
        });
        session.run().unwrap();
        if let Err(panic) = checks.join().unwrap() {
            std::panic::resume_unwind(panic);
        }
    }

    /// What a user sees in the mount of the two generations, at `root`.
    fn look(root: &std::path::Path, generations: &Shared) {
        let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
        assert_eq!(read("2026-12-01_0200/src/a.rs"), "old a");
        assert_eq!(read("latest/src/a.rs"), "new a, longer");
        assert_eq!(read("2026-12-01_0200/src/link"), "old a");
        let a = std::fs::metadata(root.join("2026-12-02_0200/src/a.rs")).unwrap();
        let b = std::fs::metadata(root.join("2026-12-02_0200/src/b.rs")).unwrap();
        assert_eq!((a.ino(), a.nlink(), a.mode() & 0o7777), (b.ino(), 2, 0o640));
        assert_eq!(
            (a.uid(), a.gid(), a.mtime_nsec()),
            (1234, 5678, 123_456_789)
        );
        let write = std::fs::OpenOptions::new()
            .write(true)
            .open(root.join("latest/src/a.rs"));
        assert_eq!(write.unwrap_err().raw_os_error(), Some(libc::EROFS));
        // A file open keeps reading what it opened after its generation is pruned.
        let open = std::fs::File::open(root.join("2026-12-01_0200/src/a.rs")).unwrap();
        generations.lock().unwrap().pop();
        let listed: Vec<_> = std::fs::read_dir(root)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(listed, ["latest", "2026-12-02_0200"]);
        assert_eq!(io::read_to_string(open).unwrap(), "old a");
    }
}
