//! What a schedule leaves out of its archive: `exclude=PATTERN`, `exclude-caches` and
//! `gitignore`.
//!
//! Patterns are `.gitignore` lines, matched by ripgrep's `ignore` crate against paths
//! relative to the schedule's PATH. The walk tells an [`Excludes`] when it enters and
//! leaves a folder, with the folder's descriptor, and asks it about each child before
//! touching the child: so an excluded entry is never opened, read or even `stat`ed (a
//! child of unknown type is `stat`ed to tell a folder from a file).
//!
//! The `.gitignore` rules follow ripgrep's (and fd's) defaults: in each folder,
//! `.ignore` and `.gitignore`, and `.git/info/exclude` at a repository's top; a deeper
//! file wins over a shallower one, a later line over an earlier one (so `!keep.log`
//! takes back `*.log`), `.ignore` over `.gitignore` over `.git/info/exclude`;
//! `.gitignore` and `.git/info/exclude` count only inside a git repository (a `.git` in
//! the folder or above it, PATH's own parents included), and a nested repository does
//! not inherit the rules of the one around it. Unlike ripgrep, the `.git` folder itself
//! and everything in it are always kept: it is the history. No file above PATH is read,
//! and neither is git's global excludes file: what is backed up does not depend on the
//! user's git configuration.

use std::ffi::{CStr, OsStr};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use nix::dir::Type;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, SFlag, fstatat};

use crate::schedule::Options;

mod from_file;

pub use from_file::read_patterns;

/// The file that marks a cache folder, and the first bytes it must hold
/// (<https://bford.info/cachedir/>).
pub const CACHE_TAG: &CStr = c"CACHEDIR.TAG";
const CACHE_SIGNATURE: &[u8; 43] = b"Signature: 8a477f597d28d172789f06886806bc55";

/// Ignore files larger than this are not read (and say so): memory stays small whatever
/// the tree holds.
const MAX_IGNORE_FILE: u64 = 4 << 20;

/// What a schedule leaves out, and where the walk is in the tree.
pub struct Excludes {
    /// The schedule's own patterns, rooted at PATH.
    patterns: Gitignore,
    caches: bool,
    gitignore: bool,
    /// Whether PATH is inside a git repository whose top is above it.
    repo_above: bool,
    /// One per folder entered, the innermost last.
    layers: Vec<Layer>,
}

/// What one folder adds to the rules.
#[derive(Default)]
struct Layer {
    /// Its `.ignore`, `.gitignore` and `.git/info/exclude`, in order of precedence.
    files: [Option<Gitignore>; 3],
    /// It holds a `.git`: the top of a repository.
    has_git: bool,
    /// It is in a git repository (it or a folder above has a `.git`).
    in_repo: bool,
    /// It is a `.git` folder or inside one: no ignore rule applies.
    in_git_dir: bool,
    /// It holds a valid `CACHEDIR.TAG`: only the tag is kept.
    cache: bool,
}

impl Excludes {
    /// The excludes of a schedule whose PATH is `source`, or `None` if it leaves nothing
    /// out (then the walk does no extra work at all). Fails on a pattern that is not
    /// valid, which the schedule's parser already refuses.
    pub fn new(options: &Options, source: &Path) -> anyhow::Result<Option<Self>> {
        if !options.excludes_anything() {
            return Ok(None);
        }
        let mut builder = GitignoreBuilder::new(".");
        // The file's patterns come first: the line's own, later, win over them.
        let from_file = match &options.choosing.exclude_from {
            Some(path) => read_patterns(Path::new(path))?,
            None => Vec::new(),
        };
        for pattern in from_file.iter().chain(&options.exclude) {
            builder
                .add_line(None, pattern)
                .map_err(|e| anyhow::anyhow!("exclude pattern {pattern:?}: {e}"))?;
        }
        let patterns = builder.build()?;
        let repo_above = options.gitignore
            && std::path::absolute(source)
                .ok()
                .and_then(|source| {
                    source
                        .ancestors()
                        .skip(1)
                        .find(|folder| folder.join(".git").symlink_metadata().is_ok())
                        .map(|_| ())
                })
                .is_some();
        Ok(Some(Self {
            patterns,
            caches: options.exclude_caches,
            gitignore: options.gitignore,
            repo_above,
            layers: Vec::new(),
        }))
    }

    /// Enters the folder `dir`, at `rel` from PATH (empty for PATH itself), shown to the
    /// user as `disk`; `listed` tells whether a name is in the folder, so that no file
    /// the listing lacks is looked for. Reads the folder's tag and ignore files, if they
    /// matter; returns warnings about those that could not be read. Every `enter` needs
    /// its [`Excludes::leave`].
    pub fn enter(
        &mut self,
        dir: BorrowedFd<'_>,
        rel: &[u8],
        disk: &Path,
        listed: &dyn Fn(&CStr) -> bool,
    ) -> Vec<String> {
        let mut warnings = Vec::new();
        let parent = self.layers.last();
        let mut layer = Layer {
            in_repo: parent.map_or(self.repo_above, |p| p.in_repo),
            in_git_dir: parent.is_some_and(|p| p.in_git_dir) || base_name(rel) == b".git",
            ..Layer::default()
        };
        if self.caches && listed(CACHE_TAG) && is_cache_tag(dir) {
            layer.cache = true;
        } else if self.gitignore && !layer.in_git_dir {
            let root = if rel.is_empty() {
                Path::new(".")
            } else {
                Path::new(OsStr::from_bytes(rel))
            };
            layer.has_git =
                listed(c".git") && fstatat(dir, c".git", AtFlags::AT_SYMLINK_NOFOLLOW).is_ok();
            layer.in_repo |= layer.has_git;
            let mut load = |file: io::Result<Option<Vec<u8>>>, shown: &str| match file {
                Ok(None) => None,
                Ok(Some(text)) => parse(root, &text, &disk.join(shown), &mut warnings),
                Err(e) => {
                    warnings.push(format!(
                        "{}: cannot read it ({e}); its rules are not applied",
                        disk.join(shown).display()
                    ));
                    None
                }
            };
            if listed(c".ignore") {
                layer.files[0] = load(read_small(dir, c".ignore"), ".ignore");
            }
            if layer.in_repo && listed(c".gitignore") {
                layer.files[1] = load(read_small(dir, c".gitignore"), ".gitignore");
            }
            if layer.has_git {
                layer.files[2] = load(read_git_exclude(dir), ".git/info/exclude");
            }
        }
        self.layers.push(layer);
        warnings
    }

    /// Leaves the folder last entered.
    pub fn leave(&mut self) {
        self.layers.pop();
    }

    /// Whether the entry at `rel` from PATH, in the folder last entered, is left out.
    pub fn leaves_out(&self, rel: &[u8], is_dir: bool) -> bool {
        let name = base_name(rel);
        let layer = self.layers.last();
        if layer.is_some_and(|l| l.cache) {
            return name != CACHE_TAG.to_bytes();
        }
        let path = Path::new(OsStr::from_bytes(rel));
        match self.patterns.matched(path, is_dir) {
            Match::Ignore(_) => return true,
            Match::Whitelist(_) => return false,
            Match::None => {}
        }
        if !self.gitignore || name == b".git" || layer.is_none_or(|l| l.in_git_dir) {
            return false;
        }
        for (kind, git) in [(0, false), (1, true), (2, true)] {
            for layer in self.layers.iter().rev() {
                if let Some(rules) = &layer.files[kind] {
                    match rules.matched(path, is_dir) {
                        Match::Ignore(_) => return true,
                        Match::Whitelist(_) => return false,
                        Match::None => {}
                    }
                }
                // A nested repository's rules stop at its top.
                if git && layer.has_git {
                    break;
                }
            }
        }
        false
    }

    /// Enters the folder `dir` at `rel`, then removes from `children` (its listing,
    /// sorted by name) every child left out. `child` gives a child's name and its type as
    /// listed; a child whose type the listing does not give is `stat`ed. Returns warnings.
    pub fn filter<T>(
        &mut self,
        dir: BorrowedFd<'_>,
        rel: &[u8],
        disk: &Path,
        children: &mut Vec<T>,
        child: impl Fn(&T) -> (&CStr, Option<Type>),
    ) -> Vec<String> {
        let listed = |name: &CStr| children.binary_search_by(|c| child(c).0.cmp(name)).is_ok();
        let warnings = self.enter(dir, rel, disk, &listed);
        let mut path = rel.to_vec();
        if !path.is_empty() {
            path.push(b'/');
        }
        let dir_len = path.len();
        children.retain(|c| {
            let (name, file_type) = child(c);
            path.truncate(dir_len);
            path.extend_from_slice(name.to_bytes());
            let is_dir = match file_type {
                Some(file_type) => file_type == Type::Directory,
                None => fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
                    .is_ok_and(|stat| stat.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFDIR.bits()),
            };
            !self.leaves_out(&path, is_dir)
        });
        warnings
    }
}

/// The excludes applied to a tree that is not walked but asked about path by path: for
/// `verify --source`, in the archive's order (any order works; the archive's, a folder's
/// entries together, reads each folder's rules once). Folders are opened by path, as
/// `verify` reads the tree.
pub struct PathCheck {
    excludes: Excludes,
    root: PathBuf,
    /// The folders entered, relative to the root (the root is `""`), one per layer of
    /// `excludes`, each with whether it is left out itself or lies in one that is.
    entered: Vec<(Vec<u8>, bool)>,
}

impl PathCheck {
    /// Checks paths under `root` against `excludes`.
    pub fn new(excludes: Excludes, root: &Path) -> Self {
        Self {
            excludes,
            root: root.to_path_buf(),
            entered: Vec::new(),
        }
    }

    /// Whether the entry at `rel` from the root (empty: the root itself) is left out,
    /// with the rules on disk now. Warnings (unreadable ignore files) are not repeated:
    /// the backup gave them.
    pub fn leaves_out(&mut self, rel: &Path, is_dir: bool) -> bool {
        let mut rel = rel.as_os_str().as_bytes();
        while let [rest @ .., b'/'] = rel {
            rel = rest;
        }
        if rel.is_empty() {
            return false;
        }
        // The folders from the root down to the entry's parent.
        let mut folders: Vec<&[u8]> = vec![b""];
        folders.extend(
            rel.iter()
                .enumerate()
                .filter(|&(_, &b)| b == b'/')
                .map(|(i, _)| &rel[..i]),
        );
        let same = self
            .entered
            .iter()
            .zip(&folders)
            .take_while(|((entered, _), folder)| entered.as_slice() == **folder)
            .count();
        while self.entered.len() > same {
            self.entered.pop();
            self.excludes.leave();
        }
        for folder in &folders[same..] {
            let out = self.entered.last().is_some_and(|&(_, out)| out)
                || (!folder.is_empty() && self.excludes.leaves_out(folder, true));
            let disk = self.root.join(OsStr::from_bytes(folder));
            match (!out).then(|| open_folder(&disk).ok()).flatten() {
                Some(fd) => {
                    self.excludes.enter(fd.as_fd(), folder, &disk, &|_| true);
                }
                None => self.excludes.layers.push(Layer::default()),
            }
            self.entered.push((folder.to_vec(), out));
        }
        self.entered.last().is_some_and(|&(_, out)| out) || self.excludes.leaves_out(rel, is_dir)
    }
}

fn open_folder(path: &Path) -> nix::Result<OwnedFd> {
    nix::fcntl::open(
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

fn base_name(rel: &[u8]) -> &[u8] {
    match rel.iter().rposition(|&b| b == b'/') {
        Some(i) => &rel[i + 1..],
        None => rel,
    }
}

/// Whether `dir` holds a `CACHEDIR.TAG` that starts with the signature. The tag is
/// opened without following a link, as every file of the tree.
fn is_cache_tag(dir: BorrowedFd<'_>) -> bool {
    let Ok(fd) = open_in(dir, CACHE_TAG, OFlag::empty()) else {
        return false;
    };
    let mut head = [0u8; CACHE_SIGNATURE.len()];
    File::from(fd).read_exact(&mut head).is_ok() && head == *CACHE_SIGNATURE
}

fn open_in(dir: BorrowedFd<'_>, name: &CStr, extra: OFlag) -> nix::Result<OwnedFd> {
    // O_NONBLOCK: a FIFO under an ignore file's name does not hang the backup.
    let flags = OFlag::O_RDONLY
        | OFlag::O_NOFOLLOW
        | OFlag::O_CLOEXEC
        | OFlag::O_NOCTTY
        | OFlag::O_NONBLOCK
        | extra;
    nix::fcntl::openat(dir, name, flags, Mode::empty())
}

/// The content of the regular file `name` in `dir`; `None` if there is none (a link or
/// anything but a regular file counts as none).
fn read_small(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<Option<Vec<u8>>> {
    let fd = match open_in(dir, name, OFlag::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT | Errno::ELOOP | Errno::ENOTDIR | Errno::ENXIO) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let file = File::from(fd);
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Ok(None);
    }
    if meta.len() > MAX_IGNORE_FILE {
        return Err(io::Error::other(format!(
            "larger than {} MiB",
            MAX_IGNORE_FILE >> 20
        )));
    }
    let mut text = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_IGNORE_FILE).read_to_end(&mut text)?;
    Ok(Some(text))
}

/// `.git/info/exclude` of the repository whose top is `dir`, without following links.
fn read_git_exclude(dir: BorrowedFd<'_>) -> io::Result<Option<Vec<u8>>> {
    let mut fd = None::<OwnedFd>;
    for folder in [c".git", c"info"] {
        let at = fd.as_ref().map_or(dir, |fd| fd.as_fd());
        match open_in(at, folder, OFlag::O_DIRECTORY) {
            Ok(next) => fd = Some(next),
            Err(Errno::ENOENT | Errno::ELOOP | Errno::ENOTDIR) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
    read_small(fd.expect("opened above").as_fd(), c"exclude")
}

/// The rules of one ignore file, rooted at `root`; lines that are not valid patterns are
/// skipped with a warning each, as ripgrep does.
fn parse(root: &Path, text: &[u8], shown: &Path, warnings: &mut Vec<String>) -> Option<Gitignore> {
    let text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
    let mut builder = GitignoreBuilder::new(root);
    for (number, line) in text.split(|&b| b == b'\n').enumerate() {
        let line = String::from_utf8_lossy(line);
        if let Err(e) = builder.add_line(None, &line) {
            warnings.push(format!(
                "{} line {}: {e}; the line is not applied",
                shown.display(),
                number + 1
            ));
        }
    }
    match builder.build() {
        Ok(rules) if rules.is_empty() => None,
        Ok(rules) => Some(rules),
        Err(e) => {
            warnings.push(format!(
                "{}: {e}; its rules are not applied",
                shown.display()
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(fields: &[&str]) -> Options {
        Options::parse(fields).unwrap()
    }

    /// Paths asked in any order get the answer the walk would give: a path under a left
    /// out folder is left out, and each folder's rules apply below it only.
    #[test]
    fn paths_asked_in_any_order_are_answered_as_the_walk_would() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for folder in [".git", "a/b", "cache/deep", "c"] {
            std::fs::create_dir_all(root.join(folder)).unwrap();
        }
        std::fs::write(root.join(".gitignore"), "*.o\n").unwrap();
        std::fs::write(root.join("a/.gitignore"), "!keep.o\nb/\n").unwrap();
        std::fs::write(root.join("cache/CACHEDIR.TAG"), CACHE_SIGNATURE).unwrap();
        let excludes = Excludes::new(
            &options(&["exclude-caches", "gitignore", "exclude=/c/"]),
            root,
        )
        .unwrap()
        .unwrap();
        let mut check = PathCheck::new(excludes, root);
        for (path, is_dir, out) in [
            ("", true, false),
            ("x.o", false, true),
            ("a/keep.o", false, false),
            ("a/x.o", false, true),
            ("a/b", true, true),
            ("a/b/y", false, true),
            ("cache/CACHEDIR.TAG", false, false),
            ("keep.o", false, true),
            ("cache/deep/z", false, true),
            ("cache/data", false, true),
            ("a/keep.o", false, false),
            ("c/", true, true),
            ("c/d", false, true),
            (".git/x.o", false, false),
            ("y.txt", false, false),
        ] {
            assert_eq!(check.leaves_out(Path::new(path), is_dir), out, "{path}");
        }
    }

    #[test]
    fn nothing_to_leave_out_builds_nothing() {
        assert!(
            Excludes::new(&Options::default(), Path::new("."))
                .unwrap()
                .is_none()
        );
    }
}
