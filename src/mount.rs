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
use std::path::PathBuf;
use std::rc::Rc;

use anyhow::Result;

pub use home::{HomeBackups, label};
pub use session::{FS_NAME, check_fuse, is_mounted, mount};

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A folder.
    Folder,
    /// A symbolic link to this target.
    Symlink(PathBuf),
    /// A hard link to the entry of this path of the same generation.
    HardLink(PathBuf),
    /// A named pipe.
    Fifo,
    /// A character device: major, minor.
    CharDevice(u32, u32),
    /// A block device: major, minor.
    BlockDevice(u32, u32),
}

/// One entry of a generation, as archived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its path in the archive, relative (`src/main.rs`, `home/me/proj/a`).
    pub path: PathBuf,
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

/// One generation's tree, with a way to read its files' contents.
pub trait Snapshot {
    /// Its entries, in the archive's order (for a chain, as of the generation).
    fn entries(&self) -> &[Entry];

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
    type Shared = Arc<Mutex<Vec<(Generation, Arc<Memory>)>>>;

    struct Fake {
        generations: Shared,
    }

    #[derive(Clone)]
    struct Memory {
        entries: Vec<Entry>,
        contents: Vec<Vec<u8>>,
    }

    impl Snapshot for Memory {
        fn entries(&self) -> &[Entry] {
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
            Ok(Rc::new(Memory::clone(&found.1)))
        }
    }

    fn memory(files: &[(&str, Kind, &str)]) -> Arc<Memory> {
        let entries = files
            .iter()
            .map(|(path, kind, data)| Entry {
                path: PathBuf::from(path),
                kind: kind.clone(),
                mode: if *kind == Kind::Folder { 0o755 } else { 0o640 },
                uid: 1234,
                gid: 5678,
                size: data.len() as u64,
                mtime: 1_700_000_000,
                mtime_nanos: 123_456_789,
            })
            .collect();
        let contents = files.iter().map(|f| f.2.as_bytes().to_vec()).collect();
        Arc::new(Memory { entries, contents })
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
        let old = memory(&[
            ("src/", Kind::Folder, ""),
            ("src/a.rs", Kind::File, "old a"),
            ("src/link", Kind::Symlink(PathBuf::from("a.rs")), ""),
        ]);
        let new = memory(&[
            ("src/a.rs", Kind::File, "new a, longer"),
            ("src/b.rs", Kind::HardLink(PathBuf::from("src/a.rs")), ""),
        ]);
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
