//! The three archive formats: plain tar, gzip and zstd, told apart by the file name.

use std::fmt;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::str::FromStr;

use anyhow::{Context, Result};

/// How an archive is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// A plain `.tar`.
    #[default]
    None,
    /// `.tar.gz`.
    Gzip,
    /// `.tar.zst`.
    Zstd,
}

impl Compression {
    /// Every format, plain first.
    pub const ALL: [Compression; 3] = [Compression::None, Compression::Gzip, Compression::Zstd];

    /// The archive file name's ending.
    pub fn suffix(self) -> &'static str {
        match self {
            Compression::None => ".tar",
            Compression::Gzip => ".tar.gz",
            Compression::Zstd => ".tar.zst",
        }
    }

    /// The format of an archive file name, from its ending.
    pub fn of_file_name(name: &str) -> Option<Self> {
        // Longest endings first: "x.tar.gz" must not be taken for a plain tar.
        [Compression::Gzip, Compression::Zstd, Compression::None]
            .into_iter()
            .find(|c| name.ends_with(c.suffix()) && name.len() > c.suffix().len())
    }

    /// Opens an archive for reading its uncompressed tar stream.
    pub fn open(self, path: &Path) -> Result<Box<dyn Read>> {
        self.read(open_archive(path)?, path)
    }

    /// Reads the tar stream of an archive already open as `file`, from its start.
    pub fn read(self, mut file: File, path: &Path) -> Result<Box<dyn Read>> {
        file.seek(SeekFrom::Start(0))
            .with_context(|| format!("reading {}", path.display()))?;
        let file = BufReader::with_capacity(1 << 16, file);
        Ok(match self {
            Compression::None => Box::new(file),
            Compression::Gzip => Box::new(flate2::bufread::GzDecoder::new(file)),
            Compression::Zstd => Box::new(
                zstd::stream::read::Decoder::with_buffer(file)
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

impl fmt::Display for Compression {
    /// The name used on the command line and in the schedule file.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        })
    }
}

impl FromStr for Compression {
    type Err = String;

    /// Accepts `gzip` and `zstd`: a plain tar is written with no compression field at
    /// all, so that a schedule has one spelling only.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "gzip" => Ok(Compression::Gzip),
            "zstd" => Ok(Compression::Zstd),
            other => Err(format!("compression {other:?} is not gzip or zstd")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_tell_the_format() {
        assert_eq!(Compression::of_file_name("a.tar"), Some(Compression::None));
        assert_eq!(
            Compression::of_file_name("a.tar.gz"),
            Some(Compression::Gzip)
        );
        assert_eq!(
            Compression::of_file_name("a.tar.zst"),
            Some(Compression::Zstd)
        );
        assert_eq!(Compression::of_file_name("a.zip"), None);
        assert_eq!(Compression::of_file_name(".tar"), None);
    }

    #[test]
    fn only_gzip_and_zstd_are_names() {
        assert_eq!("gzip".parse(), Ok(Compression::Gzip));
        assert_eq!("zstd".parse(), Ok(Compression::Zstd));
        assert!("none".parse::<Compression>().is_err());
        assert!("xz".parse::<Compression>().is_err());
    }
}
