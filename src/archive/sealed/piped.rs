//! An age payload sealed on several threads: the writer thread fills buffers of a few
//! chunks each, the sealing threads seal whichever buffer comes next, and one thread
//! writes the sealed buffers to the archive in their order. ChaCha20-Poly1305 is the
//! slowest stage of an encrypted backup of data that does not compress; its chunks are
//! independent, so it scales with the cores.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::{Scope, ScopedJoinHandle};

use super::Direct;
use crate::encryption::payload::{CHUNK, Payload, TAG};

/// The chunks in a buffer handed to a sealing thread.
const CHUNKS: usize = 4;

/// The size of a full buffer.
const PIPE: usize = CHUNKS * CHUNK;

/// The threads that seal.
const SEALERS: usize = 2;

/// How many buffers exist, at most: one being filled, the others queued, being sealed,
/// or waiting for those before them to be written.
const PIPES: usize = 2 * SEALERS + 2;

/// A buffer to seal: the `seq`th of the stream, and whether it ends it.
struct Job {
    seq: u64,
    buf: Vec<u8>,
    last: bool,
}

/// A sealed buffer: its chunks in place, each chunk's tag beside.
struct Sealed {
    job: Job,
    tags: Vec<[u8; TAG]>,
}

/// The writer's end of the sealing threads.
pub(in crate::archive) struct Piped<'scope> {
    /// The buffer being filled; sent when full and more comes, so that the last one,
    /// which only [`Piped::finish`] knows, is never sent early.
    buf: Vec<u8>,
    /// The number of the next buffer sent.
    seq: u64,
    /// How many buffers were made so far.
    made: usize,
    jobs: Option<SyncSender<Job>>,
    free: Receiver<Vec<u8>>,
    sealers: Vec<ScopedJoinHandle<'scope, ()>>,
    writer: Option<ScopedJoinHandle<'scope, io::Result<()>>>,
}

impl<'scope> Piped<'scope> {
    /// Writes `head` (the age header and nonce) to `out`, and starts the threads that
    /// seal the payload with `payload` and write it after.
    pub(super) fn start(
        scope: &'scope Scope<'scope, '_>,
        head: Vec<u8>,
        payload: Payload,
        mut out: Direct<'scope>,
    ) -> io::Result<Self> {
        out.write_all(&head)?;
        let payload = Arc::new(payload);
        let (jobs, queued) = sync_channel::<Job>(PIPES);
        let queued = Arc::new(Mutex::new(queued));
        let (done, sealed) = channel();
        // Room for every buffer: the writer never waits to give one back.
        let (gave_back, free) = sync_channel(PIPES);
        let sealers = (0..SEALERS)
            .map(|_| {
                let (queued, payload, done) = (queued.clone(), payload.clone(), done.clone());
                scope.spawn(move || seal_jobs(&queued, &payload, &done))
            })
            .collect();
        drop(done);
        let writer = scope.spawn(move || write_in_order(&sealed, out, &gave_back));
        Ok(Piped {
            buf: Vec::with_capacity(PIPE),
            seq: 0,
            made: 1,
            jobs: Some(jobs),
            free,
            sealers,
            writer: Some(writer),
        })
    }

    pub(super) fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        // A full buffer goes only when more comes: the last chunk must not be empty.
        if data.is_empty() {
            return Ok(0);
        }
        if self.buf.len() == PIPE {
            let next = self.next_buffer()?;
            let full = std::mem::replace(&mut self.buf, next);
            self.send(full, false)?;
        }
        let n = data.len().min(PIPE - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        Ok(n)
    }

    /// An empty buffer: a new one while fewer than [`PIPES`] exist, else one the writer
    /// gave back.
    fn next_buffer(&mut self) -> io::Result<Vec<u8>> {
        if self.made < PIPES {
            self.made += 1;
            return Ok(Vec::with_capacity(PIPE));
        }
        match self.free.recv() {
            Ok(mut buf) => {
                buf.clear();
                Ok(buf)
            }
            Err(_) => Err(self.stopped()),
        }
    }

    fn send(&mut self, buf: Vec<u8>, last: bool) -> io::Result<()> {
        let job = Job {
            seq: self.seq,
            buf,
            last,
        };
        self.seq += 1;
        match self.jobs.as_ref().map(|jobs| jobs.send(job)) {
            Some(Ok(())) => Ok(()),
            _ => Err(self.stopped()),
        }
    }

    /// The threads stopped early (a write failed): the writer's own error.
    fn stopped(&mut self) -> io::Error {
        match self.join() {
            Err(e) => e,
            Ok(()) => io::Error::other("the encryption of the archive stopped"),
        }
    }

    /// Lets the threads run out, and gives the writer's result; a thread's panic goes on.
    fn join(&mut self) -> io::Result<()> {
        self.jobs = None;
        for sealer in self.sealers.drain(..) {
            if let Err(panic) = sealer.join() {
                std::panic::resume_unwind(panic);
            }
        }
        match self.writer.take().map(ScopedJoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => Err(io::Error::other("the encryption of the archive stopped")),
        }
    }

    /// Sends what is left as the last buffer, and waits for it to be written.
    pub(super) fn finish(mut self) -> io::Result<()> {
        let last = std::mem::take(&mut self.buf);
        self.send(last, true)?;
        self.join()
    }
}

/// A sealing thread: takes the next buffer, seals its chunks, and hands it on, until
/// there are no more or the writer is gone.
fn seal_jobs(queued: &Mutex<Receiver<Job>>, payload: &Payload, done: &Sender<Option<Sealed>>) {
    let _dying = Dying(done);
    loop {
        // The lock is held only while waiting for a job, never while sealing.
        let job = match queued.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        let Ok(mut job) = job else { return };
        let first = job.seq * CHUNKS as u64;
        let mut tags = Vec::with_capacity(CHUNKS);
        if job.buf.is_empty() {
            // Only an empty payload ends in an empty chunk.
            tags.push(payload.seal(first, job.last, &mut []));
        }
        let count = job.buf.len().div_ceil(CHUNK);
        for (i, chunk) in job.buf.chunks_mut(CHUNK).enumerate() {
            let last = job.last && i + 1 == count;
            tags.push(payload.seal(first + i as u64, last, chunk));
        }
        if done.send(Some(Sealed { job, tags })).is_err() {
            return;
        }
    }
}

/// Tells the writing thread, if a sealing thread panics, that the buffer it held will
/// never come: it would otherwise wait for it while the other sealer keeps the channel open.
struct Dying<'a>(&'a Sender<Option<Sealed>>);

impl Drop for Dying<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self.0.send(None);
        }
    }
}

/// The writing thread: writes each sealed buffer, chunk then tag, in the order they were
/// sent, gives the buffer back, and finishes the file after the last.
fn write_in_order(
    sealed: &Receiver<Option<Sealed>>,
    mut out: Direct<'_>,
    gave_back: &SyncSender<Vec<u8>>,
) -> io::Result<()> {
    let mut waiting = BTreeMap::new();
    let mut next = 0;
    let mut ended = false;
    for buffer in sealed {
        let Some(buffer) = buffer else {
            return Err(io::Error::other("a thread sealing the archive failed"));
        };
        waiting.insert(buffer.job.seq, buffer);
        while let Some(Sealed { job, tags }) = waiting.remove(&next) {
            if job.buf.is_empty() {
                out.write_all(&tags[0])?;
            }
            for (chunk, tag) in job.buf.chunks(CHUNK).zip(&tags) {
                out.write_all(chunk)?;
                out.write_all(tag)?;
            }
            ended = job.last;
            next += 1;
            // The writer thread may have stopped waiting (it failed); that is its to say.
            let _ = gave_back.send(job.buf);
        }
    }
    if !ended {
        return Err(io::Error::other(
            "the encryption of the archive stopped before its last chunk",
        ));
    }
    out.finish()
}
