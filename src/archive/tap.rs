//! The tar stream as the writer wrote it, read on a thread of its own (to index it) from
//! the very batches that went into the archive (any memory that shows its bytes). The
//! index needs the headers alone, so the files' data is passed over in place, never
//! copied.

use std::io;
use std::sync::mpsc::{Receiver, SyncSender};

use crate::tar::Skip;

/// The tar stream as the writer wrote it, batch after batch; each is given back to the
/// walk once read.
pub(super) struct Tap<Batch> {
    queued: Receiver<(Batch, usize)>,
    back: SyncSender<Batch>,
    /// The batch being read, its length and how much of it was read.
    current: Option<(Batch, usize, usize)>,
}

impl<Batch> Tap<Batch> {
    /// Reads the batches `queued`, giving each `back` once read.
    pub(super) fn new(queued: Receiver<(Batch, usize)>, back: SyncSender<Batch>) -> Self {
        Tap {
            queued,
            back,
            current: None,
        }
    }
}

impl<Batch: AsRef<[u8]>> Tap<Batch> {
    /// The bytes of the current batch not read yet, at most `n` of them, the next batch
    /// taken when this one is done; `None` at the end of the stream.
    fn next_bytes(&mut self, n: usize) -> Option<(&[u8], &mut usize)> {
        loop {
            if let Some((_, len, read)) = &self.current {
                if read < len {
                    break;
                }
                if let Some((batch, _, _)) = self.current.take() {
                    let _ = self.back.send(batch);
                }
            }
            match self.queued.recv() {
                Ok((batch, len)) => self.current = Some((batch, len, 0)),
                // The writer is done: the end of the stream.
                Err(_) => return None,
            }
        }
        let (batch, len, read) = self.current.as_mut()?;
        let end = (*len).min(*read + n);
        let bytes: &[u8] = (*batch).as_ref();
        Some((&bytes[*read..end], read))
    }
}

impl<Batch: AsRef<[u8]>> io::Read for Tap<Batch> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some((bytes, read)) = self.next_bytes(buf.len()) else {
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
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        let Some((bytes, read)) = self.next_bytes(n) else {
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
