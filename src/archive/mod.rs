//! Tar archives: writing one schedule's archive (aside, then renamed into place),
//! checking one, and restoring one.
//!
//! The archives are what GNU tar writes by default (its `gnu` format), with pax records
//! for extended attributes, ACLs and mtimes' nanoseconds as `tar --posix --xattrs --acls`
//! writes them, optionally compressed with gzip or zstd; GNU tar and bsdtar read them
//! back, and so do [`verify`] and [`restore`].

pub mod check;
mod direct;
mod extras;
mod framed;
mod index_out;
mod label;
mod open;
mod reindex;
mod restore;
mod sealed;
mod sink;
mod verify;
mod walk;

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result};

use crate::atomic_file::AtomicFile;
use crate::encryption::{Mark, Recipients};
use crate::excludes::Excludes;
use crate::incremental::FULL_LABEL;
use crate::incremental::Tracker;
use crate::index;
use crate::naming::{Compression, Format};
use crate::schedule::Options;

pub use label::{is_full, label};
pub use open::{Reading, needs_identity};
pub use reindex::{IndexProblem, check_index, check_index_as, rebuild_index};
pub use restore::{Options as RestoreOptions, Protected, Restored, restore, restore_chain};
pub use verify::{Report, Source, verify};

/// Archives are private to their owner, whatever the umask says.
const ARCHIVE_MODE: u32 = 0o600;

/// What a finished archive holds, and what went wrong on the way.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Entries written (files, folders, links...).
    pub entries: u64,
    /// Size of the archive file in bytes (compressed, if it is).
    pub bytes: u64,
    /// Things left out or stored incompletely, each a sentence naming the path: files
    /// that vanished, could not be read or changed size while read, sockets. A backup
    /// with warnings is "done with warnings": the archive is valid and holds the rest.
    pub warnings: Vec<String>,
    /// Warnings beyond those kept in `warnings`, only counted.
    pub more_warnings: u64,
}

impl Summary {
    /// Whether every entry went in whole, with no warning.
    pub fn is_clean(&self) -> bool {
        self.warnings.is_empty() && self.more_warnings == 0
    }
}

/// How far a backup has got, for showing progress.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Entries written so far.
    pub entries: u64,
    /// Bytes of file data archived so far (before compression).
    pub bytes: u64,
}

/// Called with the progress of a backup, from the thread that called [`create`], at
/// most about every [`PROGRESS_EVERY`], and once at the end.
pub type ProgressFn<'a> = &'a dyn Fn(Progress);

/// Called with each entry a walk writes: its name (a folder's ending in `/`) and the
/// size of its data.
pub type ListFn<'a> = &'a dyn Fn(&[u8], u64);

/// How often, at most, a backup reports its progress.
pub const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// A request to archive `source` into `target`.
#[derive(Clone)]
pub struct Request<'a> {
    /// The source as the schedule wrote it; entries are named after it.
    pub written: &'a str,
    /// Where the source is on disk (the written path resolved against the home).
    pub source: &'a Path,
    /// The archive's final path.
    pub target: &'a Path,
    /// What never to archive, wherever it is met in the tree: the backups folder, so that
    /// a backup of `.` does not contain its own archive or the ones before it, and the
    /// service's pid file, whose POSIX lock the service would drop by opening and closing
    /// it.
    pub exclude: &'a [&'a Path],
    /// What the schedule leaves out (`exclude=`, `exclude-caches`, `gitignore`); the
    /// rest of its options are not looked at here.
    pub options: &'a Options,
    /// How the archive is compressed, and whether it is encrypted (to the recipients of
    /// `options`).
    pub format: Format,
    /// Where to report progress, if anywhere.
    pub progress: Option<ProgressFn<'a>>,
    /// For an incremental backup: the tracker that decides what changed and writes the
    /// new record; folders then become GNU dumpdir entries.
    pub incremental: Option<&'a std::cell::RefCell<Tracker>>,
}

impl std::fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("written", &self.written)
            .field("source", &self.source)
            .field("target", &self.target)
            .field("exclude", &self.exclude)
            .field("options", &self.options)
            .field("format", &self.format)
            .field("progress", &self.progress.is_some())
            .field("incremental", &self.incremental.is_some())
            .finish()
    }
}

/// Writes the archive. On any error the previous archive at `target` is left as it was
/// and no temporary file remains. Trouble with single entries (a file that vanished or
/// changed while read) is not an error: it is in the summary's warnings.
pub fn create(request: &Request<'_>) -> Result<Summary> {
    let (summary, out) = create_aside(request)?;
    out.commit()?;
    Ok(summary)
}

/// Writes the archive as [`create`] does, with no index beside it. What the index costs
/// a backup is the difference, which the benchmark measures; the service never writes an
/// archive without its index.
pub fn create_unindexed(request: &Request<'_>) -> Result<Summary> {
    let excludes = Excludes::new(request.options, request.source)?;
    let target = request.target;
    let mut out = AtomicFile::create(target, ARCHIVE_MODE)?;
    let (mut summary, _, _) = write_into(request, out.file(), (None, excludes), UNINDEXED)
        .with_context(|| format!("writing archive {}", target.display()))?;
    summary.bytes = out
        .file()
        .metadata()
        .with_context(|| format!("reading the size of {}", target.display()))?
        .len();
    out.commit()?;
    Ok(summary)
}

/// A finished archive and its index, under their temporary names.
pub struct Aside {
    /// The archive.
    pub archive: AtomicFile,
    /// Its index, for `ARCHIVE.idx` (sealed to the same recipients when the archive is
    /// encrypted, so that it tells no name in clear).
    pub index: Option<AtomicFile>,
}

impl Aside {
    /// Puts both in place: the archive, then its index (until then, the index there is
    /// the previous archive's, which readers tell from this one's and pass over).
    pub fn commit(self) -> Result<()> {
        self.archive.commit()?;
        self.index.map_or(Ok(()), AtomicFile::commit)
    }

    /// Flushes both to disk, so that links made to them now are to whole files.
    pub fn sync(&mut self) -> Result<()> {
        self.archive.sync()?;
        self.index.as_mut().map_or(Ok(()), AtomicFile::sync)
    }
}

/// Writes the archive and its index under their temporary names and returns them
/// uncommitted, for the caller to put in place ([`Aside::commit`]) or to drop (which
/// removes them).
pub fn create_aside(request: &Request<'_>) -> Result<(Summary, Aside)> {
    // Read first (an exclude file may be missing): an error then says only that.
    let excludes = Excludes::new(request.options, request.source)?;
    let target = request.target;
    let mut out = AtomicFile::create(target, ARCHIVE_MODE)?;
    let index_path = index::sidecar(target);
    let mut index_out = AtomicFile::create(&index_path, ARCHIVE_MODE)?;
    let recipients = sealing(request)?.0;
    let index = index_of_notes(index_out.file(), recipients.as_ref());
    let (mut summary, written, indexed) =
        write_into(request, out.file(), (None, excludes), Some(index))
            .with_context(|| format!("writing archive {}", target.display()))?;
    let writer = indexed
        .expect("an index was asked for")
        .with_context(|| format!("indexing archive {}", target.display()))?;
    finish_index(writer, &out, written, request.format.compression)
        .with_context(|| format!("writing the index {}", index_path.display()))?;
    summary.bytes = out
        .file()
        .metadata()
        .with_context(|| format!("reading the size of {}", target.display()))?
        .len();
    Ok((
        summary,
        Aside {
            archive: out,
            index: Some(index_out),
        },
    ))
}

/// No index, for [`write_into`]: its thread is not started.
const UNINDEXED: Option<fn(sink::Notes)> = None;

/// What writes the index of the entries noted as the archive is written into `file`
/// (sealed to `recipients`, if any): gives back the writer, to finish.
fn index_of_notes<'a>(
    file: &'a mut fs::File,
    recipients: Option<&'a Recipients>,
) -> impl FnOnce(sink::Notes) -> Result<index::Writer<index_out::IndexOut<'a>>> + Send + 'a {
    move |notes| {
        let out = index_out::IndexOut::new(file, recipients)?;
        let mut writer = index::Writer::new(out)?;
        notes.for_each(&mut |entry| writer.push(entry).context("writing the index"))?;
        Ok(writer)
    }
}

/// Ends the index of the archive written aside as `out`, with what the writer says of
/// it.
fn finish_index(
    writer: index::Writer<index_out::IndexOut<'_>>,
    out: &AtomicFile,
    written: sink::Written,
    compression: Compression,
) -> Result<()> {
    let tar_len = written.tar_len;
    // Read back through a descriptor of its own: the writer's may bypass the page cache.
    let archive = crate::tar::open_archive(out.temp_path())?;
    let identity = index::Identity::of(&archive)?;
    let trailer = index::Trailer {
        identity,
        compression: Some(compression),
        tar_len,
        frames: written.frames,
        entries: 0,
    };
    writer.finish(trailer)?.finish()?;
    Ok(())
}

/// Walks the tree as [`create`] would, telling `listing` of each entry, and writes
/// nothing: the stream goes to `/dev/null`. The summary's `bytes` is the size of the
/// file data the archive would hold, uncompressed. With an incremental tracker, what it
/// stores is what changed; the tracker's record must go nowhere ([`crate::generations`]
/// gives such a tracker for a dry run).
pub fn dry_run(request: &Request<'_>, listing: ListFn<'_>) -> Result<Summary> {
    let mut null = fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .context("opening /dev/null")?;
    let request = Request {
        format: Format {
            compression: Compression::None,
            encrypted: false,
        },
        ..request.clone()
    };
    let data = std::cell::Cell::new(0);
    let inner = request.progress;
    let count = |progress: Progress| {
        data.set(progress.bytes);
        if let Some(inner) = inner {
            inner(progress);
        }
    };
    let request = Request {
        progress: Some(&count),
        ..request
    };
    let excludes = Excludes::new(request.options, request.source)?;
    let (mut summary, _, _) = write_into(&request, &mut null, (Some(listing), excludes), UNINDEXED)
        .with_context(|| format!("walking {}", request.source.display()))?;
    summary.bytes = data.get();
    Ok(summary)
}

/// Writes the archive `request` asks for into `file`, leaving out what `excludes` say,
/// telling `listing` of each entry and `index`, if given, of each entry written. Returns
/// the walk's summary, what the writer wrote, and what `index` made of the entries.
fn write_into<T: Send>(
    request: &Request<'_>,
    file: &mut fs::File,
    (listing, excludes): (Option<ListFn<'_>>, Option<Excludes>),
    index: Option<impl FnOnce(sink::Notes) -> T + Send>,
) -> Result<(Summary, sink::Written, Option<T>)> {
    let (recipients, mark) = sealing(request)?;
    let seal = recipients.as_ref().map(|r| (r, mark));
    let plan = plan(request, listing, excludes);
    let name = entry_name(request.written);
    std::thread::scope(|scope| {
        let sink::Started {
            mut stream,
            writer,
            index,
        } = sink::start(scope, file, request.format.compression, seal, index)
            .context("starting to write")?;
        let mut tracker = request.incremental.map(|t| t.borrow_mut());
        let walked = walk::write_tree(
            &mut stream,
            request.source,
            name.as_os_str().as_bytes(),
            plan,
            tracker.as_deref_mut(),
        );
        // After a failed walk the stream is dropped: the writer ends, and the archive
        // is discarded.
        let sent = match &walked {
            Ok(_) => stream.finish(),
            Err(_) => {
                drop(stream);
                Ok(0)
            }
        };
        let written = writer
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        let indexed = index.map(|index| {
            index
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        });
        match (walked, sent, written) {
            // The writer's own error says why; the walk's would only say it stopped.
            (_, _, Err(e)) => Err(anyhow::Error::from(e).context("writing to the archive")),
            (Err(e), _, _) => Err(e),
            (Ok(_), Err(e), _) => Err(anyhow::Error::from(e).context("finishing the archive")),
            // The index's offsets are the walk's count: it must be what was written.
            (Ok(_), Ok(put), Ok(written)) if put != written.tar_len => Err(anyhow::anyhow!(
                "the walk put {put} bytes into the tar stream, the writer wrote {}",
                written.tar_len
            )),
            (Ok(summary), Ok(_), Ok(written)) => Ok((summary, written, indexed)),
        }
    })
}

/// The recipients an encrypted archive is sealed to, and the chain mark its header
/// carries in clear (whether it is a full one, for pruning without keys).
fn sealing(request: &Request<'_>) -> Result<(Option<Recipients>, Option<Mark>)> {
    let recipients = request
        .format
        .encrypted
        .then(|| Recipients::new(&request.options.encrypt))
        .transpose()
        .with_context(|| format!("encrypting {}", request.target.display()))?;
    let mark = request.incremental.map(|t| match t.borrow().label() {
        FULL_LABEL => Mark::Full,
        _ => Mark::Incremental,
    });
    Ok((recipients, mark))
}

/// What the walk leaves out, and whom it tells.
fn plan<'p>(
    request: &Request<'p>,
    listing: Option<ListFn<'p>>,
    excludes: Option<Excludes>,
) -> walk::Plan<'p> {
    // Compared by identity, so that any path to them is recognised; what does not exist
    // cannot be met.
    let exclude = request
        .exclude
        .iter()
        .filter_map(|path| fs::metadata(path).ok())
        .map(|m| (m.dev(), m.ino()))
        .collect();
    walk::Plan {
        exclude,
        excludes,
        one_file_system: request.options.choosing.one_file_system,
        larger_than: request
            .options
            .choosing
            .exclude_larger_than
            .map(|size| size.0),
        progress: request.progress,
        listing,
    }
}

/// The name entries take: the path as written, without a leading `/` or `./`, with `..`
/// folded, as GNU tar names members. `.` names nothing: its children go at the top.
pub fn entry_name(written: &str) -> PathBuf {
    let mut name = PathBuf::new();
    for component in Path::new(written).components() {
        match component {
            Component::Normal(part) => name.push(part),
            Component::ParentDir => {
                name.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    name
}

/// A count of entries and the first few of their names, for a message: `2 entries (a, b)`
/// or `7 entries (a, b, c and 4 more)`.
pub fn count_and_names(names: &[String]) -> String {
    const SHOWN: usize = 3;
    let mut text = crate::logging::counted(names.len() as u64, "entry", "entries");
    text.push_str(" (");
    text.push_str(
        &names
            .iter()
            .take(SHOWN)
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
    );
    if names.len() > SHOWN {
        text.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    text.push(')');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_named_as_tar_names_members() {
        assert_eq!(entry_name("test"), PathBuf::from("test"));
        assert_eq!(entry_name("/etc/hosts"), PathBuf::from("etc/hosts"));
        assert_eq!(entry_name("./a/b/"), PathBuf::from("a/b"));
        assert_eq!(entry_name("../sibling"), PathBuf::from("sibling"));
        assert_eq!(entry_name("a/../b"), PathBuf::from("b"));
        assert_eq!(entry_name("."), PathBuf::new());
        assert_eq!(entry_name("/"), PathBuf::new());
    }

    #[test]
    fn progress_ends_with_every_entry_and_byte() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("src");
        fs::create_dir_all(source.join("sub")).unwrap();
        fs::write(source.join("a"), vec![1u8; 1000]).unwrap();
        fs::write(source.join("sub/b"), vec![2u8; 700 * 1024]).unwrap();
        let seen = std::cell::RefCell::new(Vec::new());
        let record = |p: Progress| seen.borrow_mut().push(p);
        let summary = create(&Request {
            written: "src",
            source: &source,
            target: &dir.path().join("src.tar"),
            exclude: &[],
            options: &Options::default(),
            format: Format::default(),
            progress: Some(&record),
            incremental: None,
        })
        .unwrap();
        let seen = seen.into_inner();
        assert_eq!(
            seen.last(),
            Some(&Progress {
                entries: summary.entries,
                bytes: 1000 + 700 * 1024
            })
        );
        assert_eq!(summary.entries, 4);
    }
}
