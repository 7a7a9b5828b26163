//! Where a compressed or encrypted stream goes: the archive file, in batches written
//! past the page cache ([`Direct`]), or an age file's encryption first. The encryption
//! runs on threads of its own ([`piped`]), fed buffers by the writer thread, so that
//! sealing the stream overlaps with compressing it (and with the walk), rather than
//! adding to the writer's time.

mod piped;

use std::fs::File;
use std::io::{self, Write};
use std::thread::Scope;

use super::direct::Direct;
use crate::encryption::{Mark, Recipients, payload};
use piped::Piped;

/// How the archive is sealed, when it is encrypted: to whom, and the chain mark its
/// header carries.
pub type Seal<'a> = Option<(&'a Recipients, Option<Mark>)>;

/// What the writer thread writes a compressed or sealed stream to.
pub(super) enum Out<'scope> {
    /// The archive file itself.
    File(Direct<'scope>),
    /// Encrypted on other threads, then the archive file.
    Sealed(Piped<'scope>),
}

impl<'scope> Out<'scope> {
    /// The archive `file`, sealed when `seal` says to whom (its thread in `scope`).
    pub(super) fn new(
        scope: &'scope Scope<'scope, '_>,
        file: &'scope mut File,
        seal: Seal<'_>,
    ) -> io::Result<Self> {
        let direct = Direct::new(file)?;
        Ok(match seal {
            None => Out::File(direct),
            Some((recipients, mark)) => {
                let (head, payload) = payload::start(recipients, mark)?;
                Out::Sealed(Piped::start(scope, head, payload, direct)?)
            }
        })
    }

    /// Writes what is left (an age file's last chunk) and flushes it all to the file.
    pub(super) fn finish(self) -> io::Result<()> {
        match self {
            Out::File(file) => file.finish(),
            Out::Sealed(piped) => piped.finish(),
        }
    }
}

impl Write for Out<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Out::File(file) => file.write(buf),
            Out::Sealed(piped) => piped.write(buf),
        }
    }

    /// Nothing is written: the file's batch and a sealed stream's buffers go only when full
    /// or at [`Out::finish`]: an age chunk is written whole anyway.
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Out::File(file) => file.flush(),
            Out::Sealed(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encryption::{self, Recipients};
    use std::io::Read;
    use std::path::Path;

    /// Writes `data` through a sealed `Out` to `file`, 100,000 bytes a write, then
    /// finishes it.
    fn seal_into(file: &mut File, recipients: &Recipients, data: &[u8]) -> io::Result<()> {
        std::thread::scope(|scope| {
            let mut out = Out::new(scope, file, Some((recipients, None)))?;
            for piece in data.chunks(100_000) {
                out.write_all(piece)?;
            }
            out.finish()
        })
    }

    #[test]
    fn the_sealed_stream_is_whole_or_its_write_error_is_told() {
        let dir = tempfile::tempdir().unwrap();
        let (recipient, identity) = encryption::tests::key(dir.path());
        let recipients = Recipients::new(&[recipient]).unwrap();
        let path = dir.path().join("a.age");
        // Empty; one chunk; exactly one buffer of the sealing threads; many, and a bit.
        for len in [0, 1, 256 << 10, (3 << 20) + 3] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 % 253) as u8).collect();
            let mut file = File::create(&path).unwrap();
            seal_into(&mut file, &recipients, &data).unwrap();
            let file = File::open(&path).unwrap();
            let mut opened = encryption::open(file, Path::new("a.age"), &identity).unwrap();
            let mut back = Vec::new();
            opened.read_to_end(&mut back).unwrap();
            assert!(back == data, "{len} bytes came back as {}", back.len());
        }
        // Written to a file open for reading only: the writer's own error comes back.
        let mut read_only = File::open(&path).unwrap();
        let err = seal_into(&mut read_only, &recipients, &[7; 4 << 20]).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EBADF), "{err}");
    }
}
