//! Where a compressed or encrypted stream goes: the archive file, in batches written
//! past the page cache ([`Direct`]), or an age file's encryption first. The encryption
//! runs on a thread of its own, fed buffers by the writer thread, so that sealing the
//! stream overlaps with compressing it (and with the walk), rather than adding to the
//! writer's time.

use std::fs::File;
use std::io::{self, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::{Scope, ScopedJoinHandle};

use super::direct::Direct;
use crate::encryption::{self, Mark, Recipients, Sealer};

/// How the archive is sealed, when it is encrypted: to whom, and the chain mark its
/// header carries.
pub type Seal<'a> = Option<(&'a Recipients, Option<Mark>)>;

/// The size of a buffer handed to the sealing thread.
const PIPE: usize = 256 << 10;

/// How many buffers exist, at most: one being filled, the others queued or being sealed.
const PIPES: usize = 4;

/// What the writer thread writes a compressed or sealed stream to.
pub(super) enum Out<'scope> {
    /// The archive file itself.
    File(Direct<'scope>),
    /// Encrypted on another thread, then the archive file.
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
                let sealer = encryption::seal(recipients, mark, direct)?;
                Out::Sealed(Piped::start(scope, sealer))
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

/// The writer's end of the sealing thread.
pub(super) struct Piped<'scope> {
    /// The buffer being filled.
    buf: Vec<u8>,
    /// How many buffers were made so far.
    made: usize,
    jobs: Option<SyncSender<Vec<u8>>>,
    free: Receiver<Vec<u8>>,
    sealer: Option<ScopedJoinHandle<'scope, io::Result<()>>>,
}

impl<'scope> Piped<'scope> {
    fn start(scope: &'scope Scope<'scope, '_>, mut sealer: Sealer<Direct<'scope>>) -> Self {
        let (jobs, queued) = sync_channel::<Vec<u8>>(PIPES);
        // Room for every buffer: the sealer never waits to give one back.
        let (gave_back, free) = sync_channel(PIPES);
        let handle = scope.spawn(move || {
            for buf in queued {
                sealer.write_all(&buf)?;
                // The writer may have stopped waiting (it failed); that is its to say.
                let _ = gave_back.send(buf);
            }
            sealer.finish()?.finish()
        });
        Piped {
            buf: Vec::with_capacity(PIPE),
            made: 1,
            jobs: Some(jobs),
            free,
            sealer: Some(handle),
        }
    }

    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() == PIPE {
            self.send()?;
        }
        let n = data.len().min(PIPE - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        Ok(n)
    }

    /// Hands the filled buffer to the sealer and takes an empty one.
    fn send(&mut self) -> io::Result<()> {
        let next = if self.made < PIPES {
            self.made += 1;
            Vec::with_capacity(PIPE)
        } else {
            match self.free.recv() {
                Ok(mut buf) => {
                    buf.clear();
                    buf
                }
                Err(_) => return Err(self.stopped()),
            }
        };
        let full = std::mem::replace(&mut self.buf, next);
        let sent = self.jobs.as_ref().map(|jobs| jobs.send(full));
        match sent {
            Some(Ok(())) => Ok(()),
            _ => Err(self.stopped()),
        }
    }

    /// The sealer stopped (a write failed): its own error.
    fn stopped(&mut self) -> io::Error {
        self.jobs = None;
        match self.sealer.take().map(ScopedJoinHandle::join) {
            Some(Ok(Err(e))) => e,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            _ => io::Error::other("the encryption of the archive stopped"),
        }
    }

    /// Sends what is left, and waits for the sealer to write the last chunk.
    fn finish(mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.send()?;
        }
        self.jobs = None;
        match self.sealer.take().map(ScopedJoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => Err(io::Error::other("the encryption of the archive stopped")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encryption::Recipients;

    const KEY: &str = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";

    /// Writes 1 MiB through a sealed `Out` to `file`, then finishes it.
    fn seal_into(file: &mut File) -> io::Result<()> {
        let recipients = Recipients::new(&[KEY.parse().unwrap()]).unwrap();
        std::thread::scope(|scope| {
            let mut out = Out::new(scope, file, Some((&recipients, None)))?;
            for _ in 0..16 {
                out.write_all(&[7u8; 64 << 10])?;
            }
            out.finish()
        })
    }

    #[test]
    fn the_sealed_stream_is_whole_or_its_write_error_is_told() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.age");
        let mut file = File::create(&path).unwrap();
        seal_into(&mut file).unwrap();
        // After the header: a nonce, then sixteen full chunks, each with its tag.
        let len = std::fs::metadata(&path).unwrap().len();
        assert!(len > (1 << 20) + 16 * 16, "{len}");
        // Written to a file open for reading only: the sealer's own error comes back.
        let mut read_only = File::open(&path).unwrap();
        let err = seal_into(&mut read_only).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EBADF), "{err}");
    }
}
