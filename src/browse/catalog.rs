//! One archive's entries and the data of each.

use std::fs::File;
use std::io::{self, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use anyhow::{Context, Result, bail};

use crate::archive::{Reading, needs_identity};
use crate::encryption::{self, Identity};
use crate::home::BACKUPS_DIR;
use crate::index::{self, Entries, Entry, Frame, Index, seekable};
use crate::naming::{Compression, Format};
use crate::tar::sparse::Expand;
use crate::tar::{Header, Reader, open_archive};

/// One archive, open for its entries.
pub struct Catalog {
    path: PathBuf,
    compression: Compression,
    /// The identity that opens it and its index, when it is encrypted.
    key: Option<Rc<Identity>>,
    /// Its index, when it has a sound one.
    index: Option<Index>,
    /// Where its frames start, from the index or the archive's own seek table.
    frames: Vec<Frame>,
    /// Why the index was not used, if it was not: said once, as a warning.
    pub warning: Option<String>,
    /// The archive, open since the catalog was: what it reads stays readable after the
    /// archive is pruned (a mount's open file).
    archive: File,
}

impl Catalog {
    /// Opens the archive at `path`, compressed in `compression`, with its index when it
    /// has a sound one; otherwise its entries are read from the archive itself, and the
    /// warning says why.
    pub fn open(path: &Path, compression: Compression) -> Result<Self> {
        let format = Format {
            compression,
            encrypted: false,
        };
        Self::open_as(path, format, None)
    }

    /// As [`Catalog::open`], for an archive of `format`: an encrypted one, and its sealed
    /// index, are read with `key`, without which it is refused.
    pub fn open_as(path: &Path, format: Format, key: Option<Rc<Identity>>) -> Result<Self> {
        let compression = format.compression;
        let key = match (format.encrypted, key) {
            (false, _) => None,
            (true, Some(key)) => Some(key),
            (true, None) => bail!("{}", needs_identity(path)),
        };
        let archive = open_archive(path)?;
        let sidecar = index::sidecar(path);
        // As the user knows it: `backups/NAME.tar`.
        let shown = format!(
            "{BACKUPS_DIR}/{}",
            path.file_name().unwrap_or_default().to_string_lossy()
        );
        let (index, warning) = match Index::open(&sidecar, &archive, key.as_deref()) {
            Ok(index) => (Some(index), None),
            Err(_) if std::fs::symlink_metadata(&sidecar).is_err() => (
                None,
                Some(format!("{shown} has no index; reading the archive instead")),
            ),
            Err(err) => (
                None,
                Some(format!(
                    "the index of {shown} cannot be used: {}; reading the archive instead",
                    err.root_cause()
                )),
            ),
        };
        let frames = match (&index, compression) {
            (Some(index), _) => index.trailer.frames.clone(),
            // Without an index, a zstd archive's own seek table still says where its
            // frames start; a damaged one is only passed over.
            (None, Compression::Zstd) if key.is_none() => seekable::read_zstd_seek_table(&archive)
                .ok()
                .flatten()
                .unwrap_or_default(),
            (None, _) => Vec::new(),
        };
        Ok(Catalog {
            archive,
            path: path.to_owned(),
            compression,
            key,
            index,
            frames,
            warning,
        })
    }

    /// The archive opened again, with an offset of its own (several readers may read it
    /// at once): the same file, even if its name is gone since.
    fn reopen(&self) -> Result<File> {
        let fd = std::os::fd::AsRawFd::as_raw_fd(&self.archive);
        // Our own descriptor's link in /proc, followed to the file it holds open.
        File::open(format!("/proc/self/fd/{fd}"))
            .with_context(|| format!("opening {} again", self.path.display()))
    }

    /// The archive's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many entries its index says it has, if it has a sound one.
    pub fn entry_count(&self) -> Option<u64> {
        self.index.as_ref().map(|index| index.trailer.entries)
    }

    /// Whether its index was used.
    pub fn indexed(&self) -> bool {
        self.index.is_some()
    }

    /// Gives each entry, in the archive's order, to `each`, until it breaks.
    pub fn for_each(&self, each: &mut dyn FnMut(&Entry) -> Result<ControlFlow<()>>) -> Result<()> {
        let shown = || format!("reading the entries of {}", self.path.display());
        if let Some(index) = &self.index {
            return self.each_indexed(index.entries(), each);
        }
        let format = Format {
            compression: self.compression,
            encrypted: self.key.is_some(),
        };
        let stream = Reading::new(format, self.key.as_deref()).open(&self.path)?;
        // Stopped early by `each`: the rest is not read.
        let mut stop = false;
        let built = index::build(stream, &mut |entry| {
            if stop {
                return Ok(());
            }
            if each(&entry)?.is_break() {
                stop = true;
                bail!(Stopped);
            }
            Ok(())
        });
        match built {
            Err(err) if stop && err.is::<Stopped>() => Ok(()),
            other => other.map(|_| ()).with_context(shown),
        }
    }

    /// Gives to `each`, in the archive's order, until it breaks, the first entry and at
    /// least every entry named by one of `names` (others too, for `each` to pass over):
    /// from the index, only its blocks that may hold them; without one, every entry.
    pub fn for_each_among(
        &self,
        names: &[Vec<u8>],
        each: &mut dyn FnMut(&Entry) -> Result<ControlFlow<()>>,
    ) -> Result<()> {
        match &self.index {
            Some(index) => self.each_indexed(index.among(names), each),
            None => self.for_each(each),
        }
    }

    /// Gives the index's `entries` to `each`, until it breaks.
    fn each_indexed(
        &self,
        entries: Result<Entries>,
        each: &mut dyn FnMut(&Entry) -> Result<ControlFlow<()>>,
    ) -> Result<()> {
        let shown = || format!("reading the entries of {}", self.path.display());
        let mut entries = entries.with_context(shown)?;
        while let Some(entry) = entries.next_entry() {
            if each(entry?)?.is_break() {
                break;
            }
        }
        Ok(())
    }

    /// Every entry, in the archive's order.
    pub fn entries(&self) -> Result<Vec<Entry>> {
        let mut all = Vec::new();
        self.for_each(&mut |entry| {
            all.push(entry.clone());
            Ok(ControlFlow::Continue(()))
        })?;
        Ok(all)
    }

    /// The tar stream from `offset` on, decoding only the frames from the one that holds
    /// it (and decrypting only the chunks from there, for an encrypted archive).
    fn stream_at(&self, offset: u64) -> Result<Box<dyn io::Read>> {
        let file = self.reopen()?;
        Ok(match &self.key {
            None => seekable::open_at(file, self.compression, &self.frames, offset)?,
            Some(key) => {
                let opened = encryption::open(file, &self.path, key)?;
                seekable::open_at(opened, self.compression, &self.frames, offset)?
            }
        })
    }

    /// The archive read from where `entry` starts, past its header, once that header was
    /// found to be the entry's; and the header.
    fn at_entry(&self, entry: &Entry) -> Result<(Reader<Box<dyn io::Read>>, Header)> {
        let mut reader = Reader::new(self.stream_at(entry.header)?);
        let header = reader
            .next_entry()?
            .context("no entry where the index says")?;
        if header.name != entry.name {
            bail!(
                "the archive holds {} where the index says {}",
                String::from_utf8_lossy(&header.name),
                String::from_utf8_lossy(&entry.name)
            );
        }
        Ok((reader, header))
    }

    fn reading(&self, entry: &Entry) -> String {
        format!(
            "reading {} from {}",
            String::from_utf8_lossy(&entry.name),
            self.path.display()
        )
    }

    /// Writes the contents of the file `entry` (an entry of this archive) to `out`,
    /// reading the archive from where the entry starts. Returns how many bytes it wrote.
    pub fn copy_data(&self, entry: &Entry, out: &mut dyn Write) -> Result<u64> {
        let (mut reader, header) = self.at_entry(entry).with_context(|| self.reading(entry))?;
        let copied = match &header.sparse {
            Some(sparse) => io::copy(&mut Expand::new(reader.data(), sparse), out),
            None => io::copy(&mut reader.data(), out),
        };
        copied.with_context(|| self.reading(entry))
    }

    /// A reader of the file `entry`'s contents from byte `offset` on, straight from where
    /// they lie in the archive, once its header there was found to be the entry's. A
    /// sparse file's holes read as zeros; its stored data is read from the part that
    /// holds `offset` (or the next one), not expanded from the file's start.
    pub fn data_from(&self, entry: &Entry, offset: u64) -> Result<Box<dyn io::Read>> {
        let (reader, header) = self.at_entry(entry).with_context(|| self.reading(entry))?;
        if let Some(sparse) = header.sparse {
            // Past its header, and past a map stored at the start of its data (pax 1.0).
            let stored_at = entry.header + reader.offset();
            drop(reader);
            let before = sparse.stored_before(offset);
            let stream = self
                .stream_at(stored_at + before)
                .with_context(|| self.reading(entry))?;
            let data = io::Read::take(stream, sparse.stored() - before);
            return Ok(Box::new(Expand::at(data, sparse, offset)));
        }
        if header.size != entry.size {
            bail!(
                "{}: its size in the archive is not the index's",
                self.reading(entry)
            );
        }
        let left = header.size.saturating_sub(offset);
        let stream = self
            .stream_at(entry.data + offset.min(header.size))
            .with_context(|| self.reading(entry))?;
        Ok(Box::new(io::Read::take(stream, left)))
    }

    /// The contents of the file `entry`, read whole (for small files and comparisons).
    pub fn read_data(&self, entry: &Entry) -> Result<Vec<u8>> {
        let mut data = Vec::new();
        self.copy_data(entry, &mut data)?;
        Ok(data)
    }

    /// A reader of the file `entry`'s contents, hashed: for comparing two versions.
    pub fn hash_data(&self, entry: &Entry) -> Result<u64> {
        let mut hash = HashOut(xxhash_rust::xxh3::Xxh3::new());
        self.copy_data(entry, &mut hash)?;
        Ok(hash.0.digest())
    }
}

/// What `for_each` stops an archive's reading with, when its caller is done.
#[derive(Debug)]
struct Stopped;

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stopped")
    }
}

impl std::error::Error for Stopped {}

struct HashOut(xxhash_rust::xxh3::Xxh3);

impl Write for HashOut {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
