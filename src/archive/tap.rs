//! The tar stream as the writer wrote it, read on a thread of its own (to index it) from
//! the very batches that went into the archive (any memory that shows its bytes).

use std::io;
use std::sync::mpsc::{Receiver, SyncSender};

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

impl<Batch: AsRef<[u8]>> io::Read for Tap<Batch> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some((batch, len, read)) = &mut self.current {
                if *read < *len {
                    let n = buf.len().min(*len - *read);
                    buf[..n].copy_from_slice(&batch.as_ref()[*read..*read + n]);
                    *read += n;
                    return Ok(n);
                }
                if let Some((batch, _, _)) = self.current.take() {
                    let _ = self.back.send(batch);
                }
            }
            match self.queued.recv() {
                Ok((batch, len)) => self.current = Some((batch, len, 0)),
                // The writer is done: the end of the stream.
                Err(_) => return Ok(0),
            }
        }
    }
}

impl<Batch> Drop for Tap<Batch> {
    fn drop(&mut self) {
        if let Some((batch, _, _)) = self.current.take() {
            let _ = self.back.send(batch);
        }
    }
}
