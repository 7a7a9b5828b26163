//! Restoring an archive into a folder, without ever writing outside it.
//!
//! The archive is read twice. The first pass checks the whole of it: its structure, and
//! that every name stays inside the destination (no absolute name, no `..`, no entry
//! under an earlier symbolic link); its headers are parsed on a thread of their own (see
//! [`parsed`]) and kept for the second pass (see [`kept`]), a plain archive's file data
//! is passed over, and a compressed or encrypted one is decompressed on a thread of its
//! own (see [`ahead`]), in both passes. Only then does the second pass write, and it goes
//! down every path one folder at a time with `O_NOFOLLOW`, so that even a link already in
//! the destination is never written through. Folders get their archived modes and times
//! only at the very end (see [`folders`]), so that a read-only folder restored by one
//! archive of a chain takes the next archive's changes.

use std::fs;
use std::io;
use std::path::Path;

use anyhow::{Context, Result, bail};
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid};

use super::check::{Checker, canonical};
use super::extras::Setter;
use super::open::Reading;
use crate::naming::Compression;
use crate::tar::{Kind, Reader, open_archive};

mod ahead;
mod dest;
mod dumpdir;
mod entry;
mod folders;
mod guard;
mod kept;
mod parsed;
mod tree;

use dest::{Target, prepare};
pub use guard::Protected;
use guard::{Guard, id_of};
use kept::{Entries, Keeper, Source};
use tree::{ROOT, Tree};

/// What a restore did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Restored {
    /// Entries restored.
    pub entries: u64,
    /// Entries that DEST held before the restore and `--delete` removed (a folder and
    /// each entry in it).
    pub removed: u64,
    /// Entries that could not be restored as they were (a device without the right to
    /// create one, an owner that could not be set), one sentence each.
    pub warnings: Vec<String>,
    /// The names of the entries skipped or not created: the restore is not complete.
    pub not_restored: Vec<String>,
}

/// How a restore treats what DEST holds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options<'a> {
    /// DEST may hold files: what stands in an archived entry's way is replaced, and
    /// nothing else is touched.
    pub force: bool,
    /// Also remove, inside the folders the archives hold, what DEST held and they do
    /// not, so that those folders hold exactly what the archives do (implies `force`).
    pub delete: bool,
    /// What is never written or removed, whatever DEST is.
    pub protected: Option<&'a Protected>,
    /// Only these entries and what is under them (names as stored, canonical); every
    /// entry is still checked. The folders above them are made as needed, and not
    /// given their archived modes.
    pub only: Option<&'a [Vec<u8>]>,
}

/// Restores the archive at `path` into `dest`, which must be missing or empty unless
/// `options.force`. Modes, modification times (to the nanosecond), extended attributes
/// and ACLs are restored; owners, and the `security` and `trusted` attributes, only when
/// running as root.
pub fn restore(
    path: &Path,
    reading: Reading<'_>,
    dest: &Path,
    options: Options<'_>,
) -> Result<Restored> {
    restore_chain(&[path], reading, dest, options)
}

/// Restores a chain: a full archive then incrementals, in order, into `dest`, which must
/// be missing or empty unless `options.force`. Every archive is checked before anything
/// is written (see [`crate::archive::check`]), and DEST's file system must have room for
/// what they declare.
///
/// Each folder stored as a dumpdir (see [`crate::tar::dumpdir`]) loses what an earlier
/// archive of this restore wrote in it and its listing does not hold, as with GNU tar's
/// `--listed-incremental`, so that the entries restored are those of the last archive's
/// backup. What DEST held before is left alone, but for what stands in an entry's way,
/// unless `options.delete`.
///
/// A failure while writing still gives every folder restored its mode, and says that
/// DEST is partial.
pub fn restore_chain(
    paths: &[&Path],
    reading: Reading<'_>,
    dest: &Path,
    options: Options<'_>,
) -> Result<Restored> {
    let none = Protected::default();
    let protected = options.protected.unwrap_or(&none);
    let guard = Guard::new(protected);
    // Each opened once: both passes read the same file, even if a new archive is renamed
    // into place meanwhile.
    let mut archives = Vec::with_capacity(paths.len());
    for &path in paths {
        let archive = open_archive(path)?;
        let file = move || {
            archive
                .try_clone()
                .with_context(|| format!("reading {}", path.display()))
        };
        archives.push((path, file));
    }
    let target = Target::of(dest)?;
    if let Some(fd) = &target.fd {
        guard.check_dest(id_of(fd)?, dest)?;
    }
    let names = target
        .canonical
        .as_ref()
        .map_or_else(Vec::new, |dest| protected.names_under(dest));
    let dest_fd = target.fd.as_ref().map(|fd| fd.try_clone()).transpose()?;
    let mut checker = Checker::new(dest_fd.map(|fd| (fd, dest)), target.block, names);
    let kept = check_all(&archives, reading, &mut checker)?;
    target.has_room(checker.needs(), dest)?;
    let ours = prepare(dest, options.force || options.delete)?;
    // DEST itself as the user named it, a link to a folder included.
    let root = nix::fcntl::open(
        dest,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("opening {}", dest.display()))?;
    guard.check_dest(id_of(&root)?, dest)?;
    let as_root = Uid::effective().is_root();
    let mut out = Extract {
        tree: Tree::new(root, ours)?,
        guard,
        as_root,
        extras: Setter::new(as_root),
        kept_extras: 0,
        ids: (Uid::effective(), Gid::effective()),
        umask: entry::umask(),
        buffer: Vec::new(),
        delete: options.delete,
        root_held: false,
        only: options.only.map(<[Vec<u8>]>::to_vec),
        done: Restored::default(),
    };
    let written = write_all(&mut out, &archives, kept, reading, dest);
    let finished = out.finish(written.is_ok());
    out.done.warnings.extend(out.extras.warnings());
    match (written, finished) {
        (Ok(()), Ok(())) => Ok(out.done),
        (Err(e), _) | (Ok(()), Err(e)) => bail!(
            "{e:#}; {} is partial: what was restored so far stays, its folders with their \
             archived modes",
            dest.display()
        ),
    }
}

/// The first pass over every archive of the chain, in order; the headers of each, if
/// they could be kept.
fn check_all(
    archives: &[(&Path, impl Fn() -> Result<fs::File>)],
    reading: Reading<'_>,
    checker: &mut Checker,
) -> Result<Vec<Option<Entries>>> {
    let mut keeper = Keeper::new();
    let mut kept = Vec::with_capacity(archives.len());
    for (path, file) in archives {
        keeper.start();
        // A plain archive's file data is passed over, not read: the check needs only
        // its headers (and folder listings), and the file holds exactly the bytes the
        // write pass reads. Anything else is read whole, decrypting and decompressing
        // (which is what catches a tampered encrypted archive).
        if plain(reading) {
            let reader =
                Reader::seeking(file()?).with_context(|| format!("reading {}", path.display()))?;
            check(reader, path, checker, &mut keeper)?;
        } else {
            check(ahead(reading, file()?, path)?, path, checker, &mut keeper)?;
        }
        kept.push(keeper.finish());
    }
    Ok(kept)
}

/// The second pass over every archive of the chain, in order, with the headers the
/// first pass kept of each.
fn write_all(
    out: &mut Extract,
    archives: &[(&Path, impl Fn() -> Result<fs::File>)],
    kept: Vec<Option<Entries>>,
    reading: Reading<'_>,
    dest: &Path,
) -> Result<()> {
    for ((path, file), kept) in archives.iter().zip(kept) {
        let entries = Source::of(kept);
        if plain(reading) {
            let reader =
                Reader::seeking(file()?).with_context(|| format!("reading {}", path.display()))?;
            out.archive(path, reader, entries, dest)?;
        } else {
            out.archive(path, ahead(reading, file()?, path)?, entries, dest)?;
        }
    }
    Ok(())
}

/// Whether archives read so are plain tar files, neither compressed nor encrypted.
fn plain(reading: Reading<'_>) -> bool {
    !reading.format.encrypted && reading.format.compression == Compression::None
}

/// The tar stream of a compressed or encrypted archive, decompressed (and decrypted) on
/// a thread of its own, ahead of what reads it.
fn ahead(reading: Reading<'_>, file: fs::File, path: &Path) -> Result<Reader<ahead::Ahead>> {
    let stream = reading.stream(file, path)?;
    let ahead = ahead::Ahead::new(stream).with_context(|| format!("reading {}", path.display()))?;
    Ok(Reader::with_shortcuts(
        ahead,
        ahead::Ahead::pass,
        ahead::Ahead::send,
    ))
}

/// The first pass over one archive: the whole of it is sound and every entry passes the
/// check, or nothing is written.
fn check<R: io::Read + Send>(
    reader: Reader<R>,
    path: &Path,
    checker: &mut Checker,
    keeper: &mut Keeper,
) -> Result<()> {
    parsed::each_entry(reader, path, |entry| {
        let name = checker
            .entry(&entry.header, entry.listing.as_deref())
            .map_err(|e| {
                anyhow::anyhow!(
                    "refusing to restore {}: {e:#}; nothing was written",
                    path.display()
                )
            })?;
        keeper.keep(entry.header, entry.place, name);
        Ok(())
    })
}

struct Extract {
    /// The folders reached, with what the restore wrote in them and what each gets at
    /// the end: writing in a folder would change its time, and a read-only mode would
    /// stop us writing in it.
    tree: Tree,
    guard: Guard,
    as_root: bool,
    /// Sets extended attributes and ACLs, and gathers what could not be set.
    extras: Setter,
    /// The bytes of folders' attributes kept for the end.
    kept_extras: usize,
    /// This process's user and group: those of the files it makes.
    ids: (Uid, Gid),
    /// This process's umask, when known.
    umask: Option<u32>,
    /// What files' data is copied through.
    buffer: Vec<u8>,
    delete: bool,
    /// Whether an archive holds DEST itself (as `./`, as `tar -C DIR .` writes): then
    /// `--delete` mirrors DEST too.
    root_held: bool,
    /// Only these entries and what is under them, when set.
    only: Option<Vec<Vec<u8>>>,
    done: Restored,
}

impl Extract {
    /// Restores one archive of a chain, its entries taken from `entries`.
    fn archive<R: io::Read>(
        &mut self,
        path: &Path,
        mut reader: Reader<R>,
        mut entries: Source,
        dest: &Path,
    ) -> Result<()> {
        while let Some((header, name)) = entries
            .next(&mut reader)
            .with_context(|| format!("reading {}", path.display()))?
        {
            // A chain's label: nothing to restore.
            if header.kind == Kind::VOLUME_LABEL {
                continue;
            }
            let shown = || String::from_utf8_lossy(&header.name).into_owned();
            let name = match name {
                Some(name) => name,
                None => canonical(&header.name)
                    .map_err(|why| anyhow::anyhow!("entry {:?} {why}", shown()))?,
            };
            if !self.selects(&name) {
                continue;
            }
            if name.is_empty() {
                self.root_held |= matches!(header.kind, Kind::Dir | Kind::DUMPDIR);
                if header.kind == Kind::DUMPDIR {
                    // The destination itself, as `./`.
                    self.root_listing(&mut reader).with_context(|| {
                        format!("removing what {} no longer holds", dest.display())
                    })?;
                }
                continue;
            }
            self.entry(&header, &name, &mut reader)
                .with_context(|| format!("restoring {} into {}", shown(), dest.display()))?;
        }
        Ok(())
    }

    /// Whether the entry `name` is to be restored.
    fn selects(&self, name: &[u8]) -> bool {
        self.only.as_ref().is_none_or(|only| {
            only.iter().any(|under| {
                under.is_empty()
                    || name == under.as_slice()
                    || (name.len() > under.len()
                        && name.starts_with(under)
                        && name[under.len()] == b'/')
            })
        })
    }

    /// A dumpdir of DEST itself.
    fn root_listing<R: io::Read>(&mut self, reader: &mut Reader<R>) -> Result<()> {
        let data = reader.listing()?;
        let listing = crate::tar::dumpdir::Listing::new(&data);
        self.tree.open(b"", None)?;
        let how = dumpdir::Purge::Unlisted(&listing, self.delete);
        self.done.removed += dumpdir::purge(&mut self.tree, &self.guard, how)?;
        Ok(())
    }

    /// After the last archive (any of them may write into any folder an earlier one
    /// made): with `--delete`, and when all was `written`, removes from the folders the
    /// archives hold what the restore did not write; then gives every folder restored
    /// its mode, owner and time. A folder that fails does not stop the others.
    fn finish(&mut self, written: bool) -> Result<()> {
        let Extract {
            tree,
            guard,
            as_root,
            extras,
            delete,
            root_held,
            done,
            ..
        } = self;
        let delete = *delete && written;
        let mut first_error = None;
        tree.each_deepest_first(&mut |tree, node, ours, end| {
            let held = end.is_some() || (node == ROOT && *root_held);
            let result = (|| {
                if delete && held && !ours {
                    done.removed += dumpdir::purge(tree, guard, dumpdir::Purge::Unwritten)?;
                }
                match end {
                    Some(end) => end
                        .apply(tree.here()?.1, *as_root, extras)
                        .context("setting its mode and time"),
                    None => Ok(()),
                }
            })();
            if let Err(e) = result {
                let shown = String::from_utf8_lossy(&tree.current_name()).into_owned();
                first_error.get_or_insert(e.context(format!("restoring folder {shown}")));
            }
            Ok(())
        })?;
        first_error.map_or(Ok(()), Err)
    }
}
