//! Opening an archive's tar stream whatever its format: decrypted with the identity
//! given when it is encrypted, then decompressed.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use anyhow::{Result, bail};

use crate::encryption::{self, Identity};
use crate::naming::Format;

/// How to read archives: the format, and the identity that opens encrypted ones (if the
/// user gave one).
#[derive(Debug, Clone, Copy, Default)]
pub struct Reading<'a> {
    /// How the archive is written.
    pub format: Format,
    /// The identity for an encrypted archive.
    pub identity: Option<&'a Identity>,
}

impl<'a> Reading<'a> {
    /// Reading archives of `format`, with `identity` if one was given.
    pub fn new(format: Format, identity: Option<&'a Identity>) -> Self {
        Reading { format, identity }
    }

    /// The tar stream of the archive open as `file` (at `path`), from its start. An
    /// encrypted archive without an identity is an error naming what is needed.
    pub fn stream(&self, file: File, path: &Path) -> Result<Box<dyn Read + Send>> {
        if !self.format.encrypted {
            return self.format.compression.read(file, path);
        }
        let Some(identity) = self.identity else {
            bail!("{}", needs_identity(path));
        };
        let opened = encryption::open(file, path, identity)?;
        self.format
            .compression
            .decode(BufReader::with_capacity(1 << 16, opened), path)
    }

    /// Opens the archive at `path` (without following a link) for its tar stream.
    pub fn open(&self, path: &Path) -> Result<Box<dyn Read + Send>> {
        self.stream(crate::tar::open_archive(path)?, path)
    }
}

/// What to say when an encrypted archive is to be read without an identity.
pub fn needs_identity(path: &Path) -> String {
    format!(
        "{} is encrypted: reading it needs the identity of one of its recipients, given \
         with --identity FILE (an age identity file or an SSH private key)",
        path.display()
    )
}
