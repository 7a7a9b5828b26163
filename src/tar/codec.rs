//! Opening an archive's tar stream, decoding gzip or zstd as its [`Compression`] says.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, Result};

use crate::naming::Compression;

impl Compression {
    /// Opens an archive for reading its uncompressed tar stream.
    pub fn open(self, path: &Path) -> Result<Box<dyn Read + Send>> {
        self.read(open_archive(path)?, path)
    }

    /// Reads the tar stream of an archive already open as `file`, from its start.
    pub fn read(self, mut file: File, path: &Path) -> Result<Box<dyn Read + Send>> {
        file.seek(SeekFrom::Start(0))
            .with_context(|| format!("reading {}", path.display()))?;
        self.decode(BufReader::with_capacity(1 << 16, file), path)
    }

    /// The tar stream of the compressed stream `input` (of the archive at `path`): an
    /// archive's file, or what decrypting one gives.
    pub fn decode<R: BufRead + Send + 'static>(
        self,
        input: R,
        path: &Path,
    ) -> Result<Box<dyn Read + Send>> {
        Ok(match self {
            Compression::None => Box::new(input),
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
            Compression::Zstd => Box::new(
                zstd::stream::read::Decoder::with_buffer(input)
                    .with_context(|| format!("starting to decompress {}", path.display()))?,
            ),
        })
    }
}

/// Opens the archive file at `path` for reading. A symbolic link is not followed: an
/// archive is a file of the backups folder, not whatever a link there points at.
pub fn open_archive(path: &Path) -> Result<File> {
    File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))
}
