//! The tar stream as the writer wrote it, read on a thread of its own (to index it) from
//! the very batches that went into the archive (any memory that shows its bytes). The
//! index needs the headers alone, so the files' data is passed over in place, never
//! copied.

use std::io;
use std::sync::mpsc::{Receiver, SyncSender};

use crate::tar::Skip;

/// A piece of the tar stream, as the walk hands it to the writer and the writer to the
/// tap.
pub(super) enum Piece<Batch> {
    /// The first `usize` bytes of a batch.
    Bytes(Batch, usize),
    /// Bytes that went into the archive without a batch (file data the kernel moved):
    /// the tap can only pass over them.
    Passed(u64),
}

/// The tar stream as the writer wrote it, piece after piece; each batch is given back to
/// the walk once read.
pub(super) struct Tap<Batch> {
    queued: Receiver<Piece<Batch>>,
    back: SyncSender<Batch>,
    /// The batch being read, its length and how much of it was read.
    current: Option<(Batch, usize, usize)>,
    /// Bytes of the stream to pass over before the next batch.
    passing: u64,
}

impl<Batch> Tap<Batch> {
    /// Reads the pieces `queued`, giving each batch `back` once read.
    pub(super) fn new(queued: Receiver<Piece<Batch>>, back: SyncSender<Batch>) -> Self {
        Tap {
            queued,
            back,
            current: None,
            passing: 0,
        }
    }
}

impl<Batch: AsRef<[u8]>> Tap<Batch> {
    /// Makes sure there is something to read or pass over: bytes of the current batch,
    /// or bytes to pass; false at the end of the stream. A batch read to its end is
    /// given back before the next piece is waited for, so that a walk waiting for all
    /// its batches gets them.
    fn ready(&mut self) -> bool {
        loop {
            if self.passing > 0 {
                return true;
            }
            if let Some((_, len, read)) = &self.current {
                if read < len {
                    return true;
                }
                if let Some((batch, _, _)) = self.current.take() {
                    let _ = self.back.send(batch);
                }
            }
            match self.queued.recv() {
                Ok(Piece::Bytes(batch, len)) => self.current = Some((batch, len, 0)),
                Ok(Piece::Passed(n)) => self.passing = n,
                // The writer is done: the end of the stream.
                Err(_) => return false,
            }
        }
    }

    /// The bytes of the current batch not read yet, at most `n` of them, and the count
    /// of those read, to move on.
    fn unread(&mut self, n: usize) -> Option<(&[u8], &mut usize)> {
        let (batch, len, read) = self.current.as_mut()?;
        let end = (*len).min(*read + n);
        let bytes: &[u8] = (*batch).as_ref();
        Some((&bytes[*read..end], read))
    }
}

impl<Batch: AsRef<[u8]>> io::Read for Tap<Batch> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.ready() {
            return Ok(0);
        }
        if self.passing > 0 {
            return Err(io::Error::other(
                "the index's reader asked for file data that went into the archive past it",
            ));
        }
        let Some((bytes, read)) = self.unread(buf.len()) else {
            return Ok(0);
        };
        let n = bytes.len();
        buf[..n].copy_from_slice(bytes);
        *read += n;
        Ok(n)
    }
}

impl<Batch: AsRef<[u8]>> Skip for Tap<Batch> {
    fn skip(&mut self, n: u64) -> io::Result<u64> {
        if !self.ready() {
            return Ok(0);
        }
        if self.passing > 0 {
            let passed = n.min(self.passing);
            self.passing -= passed;
            return Ok(passed);
        }
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        let Some((bytes, read)) = self.unread(n) else {
            return Ok(0);
        };
        let n = bytes.len();
        *read += n;
        Ok(n as u64)
    }
}

impl<Batch> Drop for Tap<Batch> {
    fn drop(&mut self) {
        if let Some((batch, _, _)) = self.current.take() {
            let _ = self.back.send(batch);
        }
    }
}
