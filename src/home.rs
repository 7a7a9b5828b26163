//! The home: the one directory that holds a deployment's schedules, logs and archives.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::nofollow;
use crate::pidfile;

/// File name of the schedule file inside the home.
pub const SCHEDULES_FILE: &str = "backup_schedules.txt";
/// Log file of `backup_manager`, relative to the home.
pub const MANAGER_LOG: &str = "logs/backup_manager.log";
/// Log file of `backup_service`, relative to the home.
pub const SERVICE_LOG: &str = "logs/backup_service.log";
/// Folder of the archives, relative to the home.
pub const BACKUPS_DIR: &str = "backups";
/// The folder beside `backups/` that keeps the records of encrypted incremental
/// schedules: they name files, so they stay out of what a mirror of `backups/` ships.
pub const RECORDS_DIR: &str = ".records";
/// Environment variable naming the home when `--home` is not given, as restic's
/// `RESTIC_REPOSITORY` names a repository.
pub const HOME_VAR: &str = "BACKUP_HOME";

/// The paths of one home. Two homes share nothing, so every path is derived from the root.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// Opens the home at `dir` (the current directory when `None`).
    ///
    /// The directory must exist: a mistyped `--home` should fail loudly rather than
    /// quietly start a second, empty deployment. The root is made absolute and canonical
    /// so that the service can be recognised by its working directory.
    pub fn open(dir: Option<&Path>) -> Result<Self> {
        let dir = match dir {
            Some(dir) => dir.to_path_buf(),
            None => std::env::current_dir().context("reading the current directory")?,
        };
        let root = fs::canonicalize(&dir)
            .with_context(|| format!("opening home directory {}", dir.display()))?;
        if !root.is_dir() {
            bail!("home {} is not a directory", dir.display());
        }
        Ok(Self { root })
    }

    /// Finds the home a command works on: `flag` (`--home`) if given, else `$BACKUP_HOME`
    /// if set and not empty, else the current directory.
    ///
    /// The current directory is taken only if it is a home ([`Home::is_home`]), unless
    /// `may_start_here` (for `create`, which makes a new home): a command
    /// typed in the wrong folder must say so, not answer for an empty home and leave a
    /// stray `logs/` behind.
    pub fn find(flag: Option<&Path>, may_start_here: bool) -> Result<Self> {
        if let Some(dir) = flag {
            return Self::open(Some(dir));
        }
        if let Some(dir) = std::env::var_os(HOME_VAR).filter(|d| !d.is_empty()) {
            return Self::open(Some(Path::new(&dir)))
                .with_context(|| format!("using the home named by {HOME_VAR}"));
        }
        let home = Self::open(None)?;
        if !may_start_here && !home.is_home() {
            bail!(
                "no home found here: {} holds no {SCHEDULES_FILE} and no {BACKUPS_DIR}/; \
                 name one with --home DIR or {HOME_VAR}=DIR, or make one here with \
                 `backup_manager create`",
                home.root().display()
            );
        }
        Ok(home)
    }

    /// Whether the folder is a home: it holds a schedule file, `backups/` or the state
    /// file, or its service runs (holds the pid lock), even after its schedule file was
    /// removed: `stop` and `status` must still find it.
    pub fn is_home(&self) -> bool {
        let there = |path: PathBuf| fs::symlink_metadata(path).is_ok();
        there(self.schedules())
            || self.backups().is_dir()
            || there(self.state())
            || pidfile::holder(&self.pid_file()).is_ok_and(|holder| holder.is_some())
    }

    /// The home's root directory (absolute, canonical).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `backup_schedules.txt`.
    pub fn schedules(&self) -> PathBuf {
        self.root.join(SCHEDULES_FILE)
    }

    /// The lock file that serialises edits of the schedule file. It is separate from the
    /// schedule file because that file is replaced by rename, and a lock on a replaced
    /// inode protects nothing.
    pub fn schedules_lock(&self) -> PathBuf {
        self.root.join(".backup_schedules.lock")
    }

    /// The service's pid file, locked by the running service for its whole life.
    pub fn pid_file(&self) -> PathBuf {
        self.root.join(".backup_service.pid")
    }

    /// What the service remembers of each schedule (first seen, last run and result).
    pub fn state(&self) -> PathBuf {
        self.root.join(".backup_state.json")
    }

    /// The lock file that serialises edits of the state file.
    pub fn state_lock(&self) -> PathBuf {
        self.root.join(".backup_state.lock")
    }

    /// `logs/backup_manager.log`.
    pub fn manager_log(&self) -> PathBuf {
        self.root.join(MANAGER_LOG)
    }

    /// `logs/backup_service.log`.
    pub fn service_log(&self) -> PathBuf {
        self.root.join(SERVICE_LOG)
    }

    /// `backups/`.
    pub fn backups(&self) -> PathBuf {
        self.root.join(BACKUPS_DIR)
    }

    /// `.records/`, where encrypted schedules keep their incremental records.
    pub fn records(&self) -> PathBuf {
        self.root.join(RECORDS_DIR)
    }

    /// Resolves a schedule's PATH: relative paths are relative to the home.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        self.root.join(path)
    }

    /// Creates `backups/` if it is missing and returns it, after checking it: a real
    /// folder, or a link to a folder that no one but this user and root can change (see
    /// [`nofollow::folder`]).
    pub fn ensure_backups(&self) -> Result<PathBuf> {
        let dir = self.backups();
        nofollow::folder(&dir, true)
            .with_context(|| format!("opening backups folder {}", dir.display()))?;
        Ok(dir)
    }
}

/// A home in a new temporary folder, for unit tests; the folder goes with the guard.
///
/// Made under the build's `target/` rather than in `/tmp`: a folder others may write (as
/// `/tmp`, sticky or not) makes every home under it untrusted, and its hooks refused.
#[cfg(test)]
pub(crate) fn temporary() -> (tempfile::TempDir, Home) {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tmp");
    fs::create_dir_all(&base).expect("creating target/tmp");
    let dir = tempfile::tempdir_in(&base).expect("creating a temporary folder");
    let home = Home::open(Some(dir.path())).expect("opening a temporary home");
    (dir, home)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_home_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = Home::open(Some(&missing)).unwrap_err();
        assert!(format!("{err:#}").contains("nope"), "{err:#}");
    }

    #[test]
    fn relative_schedule_paths_resolve_inside_the_home() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::open(Some(dir.path())).unwrap();
        assert_eq!(home.resolve(Path::new("test")), home.root().join("test"));
        assert_eq!(home.resolve(Path::new("/etc")), PathBuf::from("/etc"));
    }
}
