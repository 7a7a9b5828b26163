//! `backups`, `verify` and `restore`: the archives of `backups/`.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use log::{info, warn};

use crate::archive;
use crate::encryption::{self, Identity};
use crate::generations::{self, Archive, chain};
use crate::home::{BACKUPS_DIR, Home};
use crate::incremental::{FULL_LABEL, INCREMENTAL_LABEL};
use crate::logging::counted;
use crate::naming::{Format, parse_file_name};
use crate::schedule::Schedule;
use crate::schedule_file;

/// `backups`: the finished archives in `backups/`: each NAME's newest (`NAME.tar`) then
/// its older generations, newest first (see [`generations::list`]); without generations,
/// simply sorted by name.
///
/// Hidden files (archives being written, locks) and anything that is not an archive are
/// left out.
pub fn backups(home: &Home) -> Result<Vec<Archive>> {
    let archives = generations::list(&home.backups())?;
    info!("Show backups list");
    Ok(archives)
}

/// What an archive is, as `backups --long` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    /// A whole tree, not part of a chain.
    Plain,
    /// The full backup that starts an incremental chain.
    Full,
    /// An incremental backup of a chain.
    Incremental,
    /// One whose start cannot be read (damaged, or not a tar archive).
    Unreadable,
}

impl ArchiveKind {
    /// The word `backups --long` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            ArchiveKind::Plain => "plain",
            ArchiveKind::Full => "full",
            ArchiveKind::Incremental => "incremental",
            ArchiveKind::Unreadable => "unreadable",
        }
    }
}

/// `backups --long`: each archive with what it is, read from its first entry.
pub fn backups_long(home: &Home) -> Result<Vec<(Archive, ArchiveKind)>> {
    let dir = home.backups();
    let archives = backups(home)?;
    Ok(archives
        .into_iter()
        .map(|a| {
            let kind = match archive::label(&dir.join(&a.name), a.format()) {
                Ok(None) => ArchiveKind::Plain,
                Ok(Some(label)) if label == INCREMENTAL_LABEL => ArchiveKind::Incremental,
                Ok(Some(label)) if label == FULL_LABEL => ArchiveKind::Full,
                Ok(Some(_)) => ArchiveKind::Plain,
                Err(_) => ArchiveKind::Unreadable,
            };
            (a, kind)
        })
        .collect())
}

/// What `verify` found, as a sentence for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// Read end to end and checked.
    Whole(String),
    /// Encrypted and verified without its identity: only what the age format shows
    /// without the key was checked; the sentence says so.
    Outside(String),
}

/// `verify NAME [--source] [--identity FILE]`: reads the archive end to end and checks
/// its structure; with `source`, also compares it with the schedule's live tree, giving
/// each difference to `difference` (to print) and failing if there was any. An encrypted
/// archive is read with `identity`; without one, only its age header and length are
/// checked (and `source` is refused, naming what is needed).
pub fn verify(
    home: &Home,
    name: &str,
    source: bool,
    identity: Option<&Path>,
    difference: &mut dyn FnMut(&str),
) -> Result<Verified> {
    let identity = identity.map(Identity::load).transpose()?;
    let found = find_archive(home, name)?;
    let shown = found.shown();
    if found.format.encrypted && identity.is_none() && !source {
        return verify_outside(home, &found).map(Verified::Outside);
    }
    let reading = archive::Reading::new(found.format, identity.as_ref());
    // Filled in only with `source`; differences only come then.
    let mut root = PathBuf::new();
    let prefix;
    let options;
    let compare = if source {
        let schedule = found.schedule.as_ref().with_context(|| {
            format!(
                "cannot compare {shown} with its source: no schedule in {} writes it",
                home.schedules().display()
            )
        })?;
        root = home.resolve(Path::new(&schedule.path));
        prefix = archive::entry_name(&schedule.path);
        options = crate::job::options_in(home, schedule);
        Some(archive::Source {
            root: &root,
            prefix: &prefix,
            options: &options,
        })
    } else {
        None
    };
    // An incremental archive is only as good as its chain: every archive before it back
    // to the full is read through too (and compared with nothing: they are older).
    let chain = chain::chain_to(&home.backups(), &found.file_name, found.format)
        .with_context(|| format!("verifying {shown}"))?;
    // Checked as restore checks them: the chain's archives in order, by one checker.
    let mut checker = archive::check::Checker::new(None, 4096, Vec::new());
    for older in &chain[..chain.len() - 1] {
        archive::verify(older, reading, None, &mut checker)
            .with_context(|| format!("verifying {}, which {shown} depends on", older.display()))?;
    }
    let report = archive::verify(&found.path, reading, compare, &mut checker)
        .with_context(|| format!("verifying {shown}"))?;
    for line in &report.differences {
        difference(line);
    }
    if !report.differences.is_empty() {
        bail!(
            "{shown} differs from its source {}: {}",
            root.display(),
            counted(report.differences.len() as u64, "difference", "differences")
        );
    }
    if !report.not_restorable.is_empty() {
        bail!(
            "{shown} is readable, but restore would skip {}",
            archive::count_and_names(&report.not_restorable)
        );
    }
    let against = if source { ", same as its source" } else { "" };
    let what = format!(
        "{shown} ({}{against}){}",
        counted(report.entries, "entry", "entries"),
        chain::describe(chain.len())
    );
    info!("Verified {what}");
    Ok(Verified::Whole(format!("verified {what}")))
}

/// `verify` of an encrypted archive without its identity: the age header of it and of
/// every archive of its chain parses, and each payload has a length age writes.
fn verify_outside(home: &Home, found: &Found) -> Result<String> {
    let shown = found.shown();
    let chain = chain::chain_to(&home.backups(), &found.file_name, found.format)
        .with_context(|| format!("verifying {shown}"))?;
    let mut recipients = 0;
    for path in &chain {
        let mut file = crate::tar::open_archive(path)?;
        let sealed =
            encryption::inspect(&mut file, path).with_context(|| format!("verifying {shown}"))?;
        recipients = sealed.recipients.len();
    }
    let what = format!(
        "{shown}{}: its age header{} and length{} are sound (encrypted to {recipients} \
         recipient{}), but its contents were not checked: that needs --identity FILE",
        chain::describe(chain.len()),
        if chain.len() > 1 { "s" } else { "" },
        if chain.len() > 1 { "s" } else { "" },
        if recipients == 1 { "" } else { "s" },
    );
    info!("Verified without the identity {what}");
    Ok(format!("checked {what}"))
}

/// `restore NAME DEST [--force] [--delete]`: extracts the archive into DEST, which must
/// be new or empty unless `force` or `delete`; with `delete`, what DEST held inside the
/// folders the archive holds and the archive does not is removed. Returns what was
/// restored, with warnings about entries that could not be restored as they were.
///
/// DEST may not be the home, its `backups/` or a folder in it; and whatever DEST is, the
/// home's `backups/`, schedule, state, lock and pid files are never written or removed.
pub fn restore(
    home: &Home,
    name: &str,
    dest: &Path,
    (force, delete): (bool, bool),
    identity: Option<&Path>,
) -> Result<Finished> {
    restore_only(home, name, dest, (force, delete), identity, None)
}

/// As [`restore`], of only the entries named `only` (as stored) and what is under them.
pub(super) fn restore_only(
    home: &Home,
    name: &str,
    dest: &Path,
    (force, delete): (bool, bool),
    identity: Option<&Path>,
    only: Option<&[Vec<u8>]>,
) -> Result<Finished> {
    let identity = identity.map(Identity::load).transpose()?;
    let found = find_archive(home, name)?;
    let shown = found.shown();
    if found.format.encrypted && identity.is_none() {
        bail!("{}", archive::needs_identity(Path::new(&shown)));
    }
    let dest = std::path::absolute(dest)
        .with_context(|| format!("resolving destination {}", dest.display()))?;
    refuse_home_dest(home, &dest)?;
    // An incremental archive comes back with the chain it completes.
    let chain = chain::chain_to(&home.backups(), &found.file_name, found.format)
        .with_context(|| format!("restoring {shown}"))?;
    let chain: Vec<&Path> = chain.iter().map(PathBuf::as_path).collect();
    let protected = protected(home);
    let options = archive::RestoreOptions {
        force,
        delete,
        protected: Some(&protected),
        only,
    };
    let reading = archive::Reading::new(found.format, identity.as_ref());
    let restored = archive::restore_chain(&chain, reading, &dest, options)
        .with_context(|| format!("restoring {shown} into {}", dest.display()))?;
    for warning in &restored.warnings {
        warn!("{warning}");
    }
    let removed = match restored.removed {
        0 => String::new(),
        n => format!(", {n} removed"),
    };
    let what = format!(
        "{shown} into {} ({}{removed}){}",
        dest.display(),
        counted(restored.entries, "entry", "entries"),
        chain::describe(chain.len())
    );
    // A partial restore must never look like a complete one.
    let incomplete = (!restored.not_restored.is_empty()).then(|| {
        format!(
            "restored {what}, but {} could not be restored",
            archive::count_and_names(&restored.not_restored)
        )
    });
    // An incomplete one is logged as the error the binary exits with.
    if incomplete.is_none() {
        info!("Restored {what}");
    }
    Ok(Finished {
        message: format!("restored {what}"),
        warnings: restored.warnings,
        incomplete,
    })
}

/// What a restore never writes or removes: the home's own files and folders (its logs
/// too: the manager is writing to one).
fn protected(home: &Home) -> archive::Protected {
    let file = |path: PathBuf, what: &str| (path, format!("this home's {what}"));
    archive::Protected {
        folders: vec![
            file(home.backups(), "backups folder"),
            file(home.root().join("logs"), "logs folder"),
            file(home.records(), "records folder"),
        ],
        files: vec![
            file(home.schedules(), "schedule file"),
            file(home.schedules_lock(), "schedule lock file"),
            file(home.pid_file(), "pid file"),
            file(home.state(), "state file"),
            file(home.state_lock(), "state lock file"),
        ],
        kept: vec![(home.root().to_path_buf(), "this home".to_owned())],
    }
}

/// Refuses a DEST that is the home itself, its `backups/`, or a folder inside that.
fn refuse_home_dest(home: &Home, dest: &Path) -> Result<()> {
    // What exists of DEST made canonical, so that `..` and links are seen through.
    let mut existing = dest;
    let mut rest = PathBuf::new();
    while !existing.exists() {
        let (Some(parent), Some(leaf)) = (existing.parent(), existing.file_name()) else {
            break;
        };
        rest = Path::new(leaf).join(rest);
        existing = parent;
    }
    let real = fs::canonicalize(existing).map_or_else(|_| dest.to_path_buf(), |p| p.join(rest));
    let backups = fs::canonicalize(home.backups()).unwrap_or_else(|_| home.backups());
    let why = if real == home.root() {
        "is this home"
    } else if real.starts_with(&backups) {
        "is inside this home's backups folder"
    } else {
        return Ok(());
    };
    bail!(
        "refusing to restore into {}: it {why}; restore into another folder",
        dest.display()
    )
}

/// `restore NAME DEST --at GENERATION`: the file name of NAME's archive made at
/// GENERATION, given as `backups` shows its date (`YYYY-MM-DD_HHMM`, with its `-N` if it
/// has one) or as its file name.
pub fn generation(home: &Home, name: &str, at: &str) -> Result<String> {
    let archives: Vec<generations::Archive> = generations::list(&home.backups())?
        .into_iter()
        .filter(|a| a.schedule == name)
        .collect();
    // A dated name first: the newest archive's date, taken from its time, may be the
    // same minute as an older one's.
    let by_name = |a: &&generations::Archive| {
        a.name == at || a.name == format!("{name}.{at}{}", a.format().suffix())
    };
    let by_time =
        |a: &&generations::Archive| a.latest && a.made.format("%Y-%m-%d_%H%M").to_string() == at;
    // The newest's own lasting name, which `backups` lists as `NAME.tar`.
    let lasting = || {
        archives.iter().filter(|a| a.latest).find_map(|a| {
            let dated = format!("{name}.{at}{}", a.format().suffix());
            let meta = fs::symlink_metadata(home.backups().join(&dated)).ok()?;
            meta.is_file().then_some(dated)
        })
    };
    if let Some(archive) = archives.iter().find(by_name) {
        return Ok(archive.name.clone());
    }
    if let Some(dated) = lasting() {
        return Ok(dated);
    }
    match archives.iter().find(by_time) {
        Some(archive) => Ok(archive.name.clone()),
        None => bail!(
            "{name} has no generation {at:?}; it has: {}",
            if archives.is_empty() {
                "none".to_owned()
            } else {
                archives
                    .iter()
                    .map(|a| a.made.format("%Y-%m-%d_%H%M").to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ),
    }
}

/// What a command did, as one sentence for its user, and the warnings on the way.
#[derive(Debug)]
pub struct Finished {
    /// What was done, e.g. `restored backups/src.tar into /tmp/r (12 entries)`.
    pub message: String,
    /// Entries that could not be handled as they were, each a sentence.
    pub warnings: Vec<String>,
    /// Set when the command did not do all of its work (entries not restored): the
    /// error to exit with, after the warnings.
    pub incomplete: Option<String>,
}

/// An archive found for a NAME given on the command line.
pub(super) struct Found {
    pub(super) path: PathBuf,
    pub(super) file_name: String,
    pub(super) format: Format,
    /// The schedule that writes it, if one does.
    pub(super) schedule: Option<Schedule>,
}

impl Found {
    pub(super) fn shown(&self) -> String {
        format!("{BACKUPS_DIR}/{}", self.file_name)
    }
}

/// Finds the archive for `name`: a schedule's NAME (its archive, whatever its
/// compression), or a file name as `backups` lists it.
pub(super) fn find_archive(home: &Home, name: &str) -> Result<Found> {
    let schedules: Vec<Schedule> = schedule_file::read_each_line(&home.schedules())?
        .iter()
        .flatten()
        .filter_map(|line| line.parse().ok())
        .collect();
    let dir = home.backups();
    // As `backups` lists them: files, not links.
    let exists = |file_name: &str| {
        fs::symlink_metadata(dir.join(file_name)).is_ok_and(|meta| meta.is_file())
    };
    let found = |file_name: String, format: Format, base: &str| {
        let schedule = schedules
            .iter()
            .find(|s| s.name == base && s.format() == format)
            .cloned();
        Found {
            path: dir.join(&file_name),
            file_name,
            format,
            schedule,
        }
    };
    if name.contains('/') || name.starts_with('.') || name.is_empty() {
        bail!("{name:?} is not an archive name (as `backups` lists them) or a schedule's NAME");
    }
    if let Some(format) = Format::of_file_name(name) {
        if exists(name) {
            // An older generation's schedule is its NAME's.
            let base = parse_file_name(name).map_or(name, |(base, _, _)| base);
            return Ok(found(name.to_owned(), format, base));
        }
    }
    // The archive the schedule writes now comes first: an older one of another
    // compression may still lie there.
    if let Some(schedule) = schedules.iter().find(|s| s.name == name) {
        let file_name = schedule.archive_file_name();
        if exists(&file_name) {
            return Ok(found(file_name, schedule.format(), name));
        }
    }
    let present: Vec<Format> = Format::ALL
        .into_iter()
        .filter(|c| exists(&format!("{name}{}", c.suffix())))
        .collect();
    match present[..] {
        [format] => Ok(found(format!("{name}{}", format.suffix()), format, name)),
        // Only dated generations (a home rebuilt from a mirror of their lasting names):
        // the newest stands for the NAME.
        [] => match generations::list(&dir)?
            .into_iter()
            .find(|a| a.schedule == name)
        {
            Some(newest) => Ok(found(newest.name.clone(), newest.format(), name)),
            None => bail!(
                "no archive named {name} in {}: `backup_manager backups` lists them",
                dir.display()
            ),
        },
        _ => bail!(
            "several archives are named {name} ({}): give the file name",
            present
                .iter()
                .map(|c| format!("{name}{}", c.suffix()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
