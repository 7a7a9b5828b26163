//! What may be trusted, like sshd's StrictModes: a file or folder that no one but this user
//! and root can change, reached through folders no one else can change either.
//!
//! [`open`] walks a path from `/` one component at a time, each opened relative to the
//! folder before it and without following links, so that what it checks is what it
//! returns: a rename or a link planted while it walks makes it fail, never return
//! something else. Links met on the way are read and followed by hand, and the folder
//! that holds each of them is checked like any other.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};
use nix::fcntl::{OFlag, openat, readlinkat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat};

/// How many links a walk follows before it gives up, as the kernel's own limit.
const MAX_LINKS: usize = 40;

/// Refuses what another user could have changed: owned by someone other than this user
/// or root, or writable by group or others (a sticky bit, as on `/tmp`, does not help:
/// others may still add and rename their own files there).
pub fn check(path: &Path, stat: &FileStat) -> Result<()> {
    let me = nix::unistd::geteuid().as_raw();
    if stat.st_uid != me && stat.st_uid != 0 {
        bail!(
            "{} is owned by uid {}, not by this user or root",
            path.display(),
            stat.st_uid
        );
    }
    if stat.st_mode & 0o022 != 0 {
        bail!(
            "{} is writable by group or others (mode {:o})",
            path.display(),
            stat.st_mode & 0o7777
        );
    }
    Ok(())
}

/// What [`open`] is asked to reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// A regular file, opened for reading.
    File,
    /// A folder, opened for use as the base of `openat` calls.
    Folder,
}

/// What [`open`] reached: the open file or folder, where it really is, and its status
/// (read from the open descriptor).
#[derive(Debug)]
pub struct Opened {
    /// The open file (read-only, close-on-exec) or folder.
    pub fd: OwnedFd,
    /// Its real path, links resolved.
    pub path: PathBuf,
    /// Its status, from the open descriptor.
    pub stat: FileStat,
}

/// Opens the absolute `path`, checking with [`check`] every folder from `/` down to the
/// one that holds what it names (and every folder that holds a link on the way), and,
/// for [`Want::Folder`], the folder itself. A file is checked only for being a regular
/// file: its owner and mode are the caller's to judge, on [`Opened::stat`].
pub fn open(path: &Path, want: Want) -> Result<Opened> {
    if !path.is_absolute() {
        bail!("{} is not an absolute path", path.display());
    }
    let root =
        open_at(None, OsStr::new("/"), OFlag::O_PATH | OFlag::O_DIRECTORY).context("opening /")?;
    let stat = fstat(&root).context("reading /")?;
    check(Path::new("/"), &stat)?;
    let mut walk = Walk {
        folders: vec![(root, PathBuf::from("/"))],
        todo: components(path),
        links: 0,
    };
    walk.run(path, want)
}

/// A walk in progress: the folders opened so far (the last is the current one), and the
/// components still to go, next first.
struct Walk {
    folders: Vec<(OwnedFd, PathBuf)>,
    todo: Vec<OsString>,
    links: usize,
}

impl Walk {
    fn run(&mut self, asked: &Path, want: Want) -> Result<Opened> {
        while let Some(name) = self.todo.pop() {
            if name == ".." {
                // Back to the folder the walk came from (already checked), never above /.
                if self.folders.len() > 1 {
                    self.folders.pop();
                }
                continue;
            }
            let (dir, dir_path) = self.folders.last().expect("/ is never popped");
            let here = dir_path.join(&name);
            let fd = open_at(Some(dir), &name, OFlag::O_PATH | OFlag::O_NOFOLLOW)
                .with_context(|| format!("opening {}", here.display()))?;
            let stat = fstat(&fd).with_context(|| format!("reading {}", here.display()))?;
            let kind = SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits());
            let last = self.todo.is_empty();
            if kind == SFlag::S_IFLNK {
                self.follow(&fd, &here)?;
            } else if kind == SFlag::S_IFDIR {
                check(&here, &stat)?;
                if last && want == Want::Folder {
                    let fd = open_at(Some(&fd), OsStr::new("."), OFlag::O_DIRECTORY)
                        .with_context(|| format!("opening {}", here.display()))?;
                    return Ok(Opened {
                        fd,
                        path: here,
                        stat,
                    });
                }
                self.folders.push((fd, here));
            } else if last && want == Want::File && kind == SFlag::S_IFREG {
                return reopen(dir, &name, &here, &stat);
            } else if last {
                bail!("{} is not a {}", here.display(), describe(want));
            } else {
                bail!("{} is not a folder", here.display());
            }
        }
        bail!("{} is not a {}", asked.display(), describe(want))
    }

    /// Puts the target of the link `fd` (at `here`) in front of what is left to walk.
    fn follow(&mut self, fd: &OwnedFd, here: &Path) -> Result<()> {
        self.links += 1;
        if self.links > MAX_LINKS {
            bail!("{}: too many levels of symbolic links", here.display());
        }
        let target = readlinkat(fd, "").with_context(|| format!("reading {}", here.display()))?;
        let target = PathBuf::from(target);
        if target.is_absolute() {
            self.folders.truncate(1);
        }
        self.todo.extend(components(&target));
        Ok(())
    }
}

/// The normal components of `path`, last first; `..` is kept, `.` and `/` dropped.
fn components(path: &Path) -> Vec<OsString> {
    let mut names: Vec<OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect();
    names.reverse();
    names
}

/// Opens the regular file `name` in `dir` for reading and checks that it is the very
/// file `expected` describes (nothing renamed over it since).
fn reopen(dir: &OwnedFd, name: &OsStr, here: &Path, expected: &FileStat) -> Result<Opened> {
    let fd = open_at(
        Some(dir),
        name,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK,
    )
    .with_context(|| format!("opening {}", here.display()))?;
    let stat = fstat(&fd).with_context(|| format!("reading {}", here.display()))?;
    if (stat.st_dev, stat.st_ino) != (expected.st_dev, expected.st_ino) {
        bail!("{} was replaced while it was checked", here.display());
    }
    Ok(Opened {
        fd,
        path: here.to_path_buf(),
        stat,
    })
}

fn describe(want: Want) -> &'static str {
    match want {
        Want::File => "regular file",
        Want::Folder => "folder",
    }
}

/// `openat(dir, name, flags | O_CLOEXEC)`, or relative to the current folder when `dir`
/// is `None` (only for `/`).
fn open_at(dir: Option<&OwnedFd>, name: &OsStr, flags: OFlag) -> nix::Result<OwnedFd> {
    let flags = flags | OFlag::O_CLOEXEC;
    match dir {
        Some(dir) => openat(dir.as_fd(), name, flags, Mode::empty()),
        None => openat(nix::fcntl::AT_FDCWD, name, flags, Mode::empty()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{PermissionsExt, symlink};

    /// A folder under the build's `target/tmp`, whose folders up to / root owns.
    fn folder() -> tempfile::TempDir {
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tmp");
        fs::create_dir_all(&base).unwrap();
        tempfile::tempdir_in(base).unwrap()
    }

    #[test]
    fn every_folder_on_the_way_is_checked_and_links_are_followed_by_hand() {
        let dir = folder();
        let root = fs::canonicalize(dir.path()).unwrap();
        fs::create_dir_all(root.join("good/deep")).unwrap();
        fs::write(root.join("good/deep/hook"), "x").unwrap();
        fs::create_dir(root.join("open")).unwrap();
        fs::set_permissions(root.join("open"), fs::Permissions::from_mode(0o777)).unwrap();
        fs::write(root.join("open/hook"), "x").unwrap();
        let opened = open(&root.join("good/deep/hook"), Want::File).unwrap();
        assert_eq!(opened.path, root.join("good/deep/hook"));
        let err = open(&root.join("open/hook"), Want::File).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{} is writable by group or others (mode 777)",
                root.join("open").display()
            )
        );
        // A relative link climbing with `..`, and an absolute one: both land where they
        // point, the folders on the way checked.
        symlink("../good/deep/hook", root.join("good/up")).unwrap();
        assert_eq!(
            open(&root.join("good/up"), Want::File).unwrap().path,
            root.join("good/deep/hook")
        );
        symlink(root.join("open/hook"), root.join("good/to-open")).unwrap();
        assert!(open(&root.join("good/to-open"), Want::File).is_err());
        // A folder is not a file, nor a file a folder.
        assert!(open(&root.join("good"), Want::File).is_err());
        assert!(open(&root.join("good/deep/hook"), Want::Folder).is_err());
        assert!(open(&root.join("good/deep"), Want::Folder).is_ok());
        // A loop of links ends.
        symlink("loop", root.join("good/loop")).unwrap();
        let err = open(&root.join("good/loop"), Want::File).unwrap_err();
        assert!(err.to_string().contains("too many levels"), "{err}");
    }

    #[test]
    fn a_sticky_folder_others_can_write_is_not_trusted() {
        let err = open(Path::new("/tmp"), Want::Folder).unwrap_err();
        assert!(
            err.to_string()
                .contains("/tmp is writable by group or others"),
            "{err}"
        );
    }
}
