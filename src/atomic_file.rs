//! Files that appear whole or not at all: written aside, fsynced, then renamed into place.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use anyhow::{Context, Result, bail};
use nix::fcntl::{OFlag, openat, renameat};
use nix::sys::stat::Mode;
use nix::unistd::{UnlinkatFlags, unlinkat};

use crate::nofollow;

/// Suffix of the temporary files; with the leading dot, it keeps them out of listings.
const PARTIAL_SUFFIX: &str = ".partial";

/// The temporary files this process has open, so that an interrupted process can remove
/// them before it exits ([`abandon_all`]).
static LIVE: Mutex<Vec<(u64, PathBuf)>> = Mutex::new(Vec::new());
/// Set by [`abandon_all`]: from then on no temporary file is made or renamed into place.
static ABANDONED: AtomicBool = AtomicBool::new(false);
/// The next [`AtomicFile`]'s number in [`LIVE`].
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

fn live() -> std::sync::MutexGuard<'static, Vec<(u64, PathBuf)>> {
    // A panic elsewhere does not make the list wrong.
    LIVE.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A file being written under a hidden temporary name next to its final path.
///
/// [`AtomicFile::commit`] fsyncs it and renames it over the final path, so a reader sees
/// the old contents or the new ones, never a mix. Dropped without a commit (an error, a
/// panic), it removes its temporary file. Only a hard kill can leave one behind;
/// [`remove_leftovers`] clears those.
///
/// The folder is opened once, without following a link planted there (see
/// [`nofollow::folder`]), and the temporary file is made, renamed and removed relative to
/// it: nothing is created through a link, and no swap of the folder redirects the rename.
#[derive(Debug)]
pub struct AtomicFile {
    file: Option<File>,
    folder: OwnedFd,
    temp_name: OsString,
    temp: PathBuf,
    target: PathBuf,
    id: u64,
}

impl AtomicFile {
    /// Creates the temporary file for `target` with permission bits `mode` (before umask).
    ///
    /// The temporary name carries our pid, so two writers of one target never share it,
    /// and a leftover can be traced to the process that left it.
    pub fn create(target: &Path, mode: u32) -> Result<Self> {
        let temp = temp_path(target);
        let temp_name = temp.file_name().expect("a temporary name").to_os_string();
        let dir = parent(target);
        let folder = nofollow::folder(dir, false)
            .with_context(|| format!("creating temporary file {}", temp.display()))?
            .with_context(|| format!("creating temporary file {}: no folder", temp.display()))?;
        let mut live = live();
        if ABANDONED.load(Ordering::SeqCst) {
            bail!("creating temporary file {}: interrupted", temp.display());
        }
        // O_EXCL: never a file that is already there, nor through a link.
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = openat(
            folder.as_fd(),
            temp_name.as_os_str(),
            flags,
            Mode::from_bits_truncate(mode),
        )
        .with_context(|| format!("creating temporary file {}", temp.display()))?;
        let id = NEXT_ID.fetch_add(1, Ordering::SeqCst);
        live.push((id, temp.clone()));
        Ok(Self {
            file: Some(File::from(fd)),
            folder,
            temp_name,
            temp,
            target: target.to_path_buf(),
            id,
        })
    }

    /// The open temporary file.
    pub fn file(&mut self) -> &mut File {
        self.file
            .as_mut()
            .expect("the file is only taken by commit, which consumes self")
    }

    /// The temporary file's path, e.g. to give the finished file a second name (a hard
    /// link) before it is renamed into place.
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }

    /// Flushes the data to disk, so that a link made to it now is to a whole file.
    pub fn sync(&mut self) -> Result<()> {
        let temp = &self.temp;
        self.file
            .as_ref()
            .expect("the file is only taken by commit, which consumes self")
            .sync_all()
            .with_context(|| format!("syncing {}", temp.display()))
    }

    /// Flushes the data to disk, renames the file into place and makes the rename durable.
    pub fn commit(mut self) -> Result<()> {
        let file = self.file.take().expect("commit runs once");
        file.sync_all()
            .with_context(|| format!("syncing {}", self.temp.display()))?;
        drop(file);
        let target_name = self.target.file_name().unwrap_or(OsStr::new(""));
        {
            let mut live = live();
            if ABANDONED.load(Ordering::SeqCst) {
                bail!("renaming {} into place: interrupted", self.temp.display());
            }
            renameat(
                self.folder.as_fd(),
                self.temp_name.as_os_str(),
                self.folder.as_fd(),
                target_name,
            )
            .with_context(|| {
                format!(
                    "renaming {} to {}",
                    self.temp.display(),
                    self.target.display()
                )
            })?;
            live.retain(|(id, _)| *id != self.id);
        }
        // From here on the temporary name is gone: nothing is left for Drop to remove.
        self.temp = PathBuf::new();
        // The new file is in place and whole; a failed directory sync only means the
        // rename might not survive a crash, which is no reason to call the write failed.
        if let Err(err) = nix::unistd::fsync(self.folder.as_fd()) {
            log::warn!(
                "syncing directory {}: {err}",
                parent(&self.target).display()
            );
        }
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.temp.as_os_str().is_empty() {
            // Best effort: the error that brought us here is the one worth reporting.
            let _ = unlinkat(
                self.folder.as_fd(),
                self.temp_name.as_os_str(),
                UnlinkatFlags::NoRemoveDir,
            );
            live().retain(|(id, _)| *id != self.id);
        }
    }
}

/// Removes every temporary file this process has open and makes sure no other is made or
/// renamed into place from now on: for a process about to exit on a signal, whatever
/// its other threads are doing. Returns what it removed.
pub fn abandon_all() -> Vec<PathBuf> {
    let mut live = live();
    ABANDONED.store(true, Ordering::SeqCst);
    let mut removed = Vec::new();
    for (_, path) in live.drain(..) {
        if fs::remove_file(&path).is_ok() {
            removed.push(path);
        }
    }
    removed
}

/// The folder of `target`; an empty parent means "the current directory".
fn parent(target: &Path) -> &Path {
    match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Replaces `target` with `contents` in one step, with exactly the permission bits `mode`
/// (whatever the umask), through an [`AtomicFile`].
pub fn replace(target: &Path, mode: u32, contents: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    let mut out = AtomicFile::create(target, mode)?;
    out.file()
        .set_permissions(fs::Permissions::from_mode(mode))
        .and_then(|()| out.file().write_all(contents))
        .with_context(|| format!("writing a new {}", target.display()))?;
    out.commit()
}

/// Fsyncs a directory, so that a rename or a new entry in it survives a crash.
pub fn sync_dir(dir: &Path) -> Result<()> {
    // An empty parent means "the current directory".
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing directory {}", dir.display()))
}

fn temp_path(target: &Path) -> PathBuf {
    let mut name = OsString::from(".");
    name.push(target.file_name().unwrap_or_default());
    name.push(format!(".{}{PARTIAL_SUFFIX}", std::process::id()));
    target.with_file_name(name)
}

/// Whether a file name is one of our temporary names.
fn is_temporary(file_name: &std::ffi::OsStr) -> bool {
    let name = file_name.as_encoded_bytes();
    name.starts_with(b".") && name.ends_with(PARTIAL_SUFFIX.as_bytes())
}

/// Removes the temporary files that hard-killed writers left in `dir`, skipping those
/// whose writer (named by the pid in the file name) is still alive. Returns what it removed.
pub fn remove_leftovers(dir: &Path) -> Result<Vec<PathBuf>> {
    use std::os::unix::ffi::OsStrExt;
    // Listed and cleaned through one descriptor of the folder, never through a link.
    let Some(folder) = nofollow::folder(dir, false)? else {
        return Ok(Vec::new());
    };
    let listing = folder.try_clone().context("sharing a folder descriptor")?;
    let mut entries =
        nix::dir::Dir::from_fd(listing).with_context(|| format!("listing {}", dir.display()))?;
    let mut names = Vec::new();
    for entry in entries.iter() {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        let name = OsStr::from_bytes(entry.file_name().to_bytes()).to_os_string();
        if is_temporary(&name) && !writer_is_alive(&name) {
            names.push(name);
        }
    }
    let mut removed = Vec::new();
    for name in names {
        let path = dir.join(&name);
        match unlinkat(folder.as_fd(), name.as_os_str(), UnlinkatFlags::NoRemoveDir) {
            Ok(()) => removed.push(path),
            Err(nix::errno::Errno::ENOENT) => {}
            Err(e) => {
                return Err(e).with_context(|| format!("removing leftover {}", path.display()));
            }
        }
    }
    Ok(removed)
}

/// Reads the pid out of `.NAME.PID.partial` and checks whether that process still runs.
fn writer_is_alive(name: &std::ffi::OsStr) -> bool {
    let name = name.to_string_lossy();
    let stem = name.trim_end_matches(PARTIAL_SUFFIX);
    let pid = stem.rsplit('.').next().and_then(|p| p.parse::<u32>().ok());
    match pid {
        // Our own leftovers cannot be in progress: we only look for them before writing.
        Some(pid) if pid == std::process::id() => false,
        Some(pid) => is_running(pid),
        None => false,
    }
}

/// Whether `pid` is a process that can still write. A killed process stays in `/proc` as
/// a zombie until its parent reaps it, which for a detached service is init, and may take
/// a while (or, in some containers, forever): a zombie writes nothing.
fn is_running(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the command name, which is in parentheses and may hold anything.
    let state = stat
        .rfind(')')
        .and_then(|end| stat[end + 1..].split_whitespace().next());
    !matches!(state, Some("Z" | "X"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn commit_replaces_the_target_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("x.tar");
        fs::write(&target, "old").unwrap();
        let mut f = AtomicFile::create(&target, 0o600).unwrap();
        f.file().write_all(b"new").unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "old");
        f.commit().unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "new");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![OsString::from("x.tar")]);
        let mode = fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn dropping_without_commit_keeps_the_old_file_and_removes_the_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("x.tar");
        fs::write(&target, "old").unwrap();
        {
            let mut f = AtomicFile::create(&target, 0o600).unwrap();
            f.file().write_all(b"half").unwrap();
        }
        assert_eq!(fs::read_to_string(&target).unwrap(), "old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn leftovers_of_dead_writers_are_removed_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        // pid_max is at most 2^22, so this writer cannot exist.
        let dead = dir.path().join(".x.tar.99999999.partial");
        // Our own leftovers cannot be in progress: we only clean before writing.
        let ours = dir
            .path()
            .join(format!(".z.tar.{}.partial", std::process::id()));
        // pid 1 always exists: a live writer whose file must stay.
        let live = dir.path().join(".w.tar.1.partial");
        let archive = dir.path().join("x.tar");
        // A writer that was killed but not yet reaped writes no more.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let zombie_pid = child.id();
        while !fs::read_to_string(format!("/proc/{zombie_pid}/stat"))
            .unwrap()
            .contains(") Z ")
        {
            std::thread::yield_now();
        }
        let zombie = dir.path().join(format!(".y.tar.{zombie_pid}.partial"));
        for path in [&dead, &ours, &live, &archive, &zombie] {
            fs::write(path, "").unwrap();
        }
        let mut removed = remove_leftovers(dir.path()).unwrap();
        child.wait().unwrap();
        removed.sort();
        let mut expected = vec![dead, ours, zombie];
        expected.sort();
        assert_eq!(removed, expected);
        assert!(live.exists());
        assert!(archive.exists());
    }
}
