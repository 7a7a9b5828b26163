//! Where an archive's index goes: its file, through a buffer, sealed to the archive's
//! recipients when the archive is encrypted, so that its names are no more in clear
//! than the archive's.

use std::fs::File;
use std::io::{self, BufWriter, Write};

use crate::encryption::{self, Recipients, Sealer};

/// The index file being written.
pub(super) enum IndexOut<'a> {
    /// In clear, beside a plain archive.
    Plain(BufWriter<&'a mut File>),
    /// Sealed, beside an encrypted one.
    Sealed(Sealer<BufWriter<&'a mut File>>),
}

impl<'a> IndexOut<'a> {
    /// The index `file`, sealed to `recipients` if there are any.
    pub(super) fn new(file: &'a mut File, recipients: Option<&Recipients>) -> io::Result<Self> {
        let buffered = BufWriter::with_capacity(1 << 16, file);
        Ok(match recipients {
            None => IndexOut::Plain(buffered),
            // No chain mark: the index is read only with the archive's identity.
            Some(recipients) => IndexOut::Sealed(encryption::seal(recipients, None, buffered)?),
        })
    }

    /// Writes what is left (a sealed file's last chunk) to the file.
    pub(super) fn finish(self) -> io::Result<()> {
        match self {
            IndexOut::Plain(mut out) => out.flush(),
            IndexOut::Sealed(sealer) => sealer.finish()?.flush(),
        }
    }
}

impl Write for IndexOut<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            IndexOut::Plain(out) => out.write(buf),
            IndexOut::Sealed(out) => out.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            IndexOut::Plain(out) => out.flush(),
            IndexOut::Sealed(out) => out.flush(),
        }
    }
}
