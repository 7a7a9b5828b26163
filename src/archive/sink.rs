//! Where the tar stream goes. The walk reads files on the calling thread and fills
//! batches; a writer thread writes them to the archive (compressing them, if asked), so
//! that reading the tree and writing the archive overlap on two cores.
//!
//! Memory stays bounded: a fixed number of batches exists, and they go round between the
//! two threads; when all are waiting to be written, the walk waits for one to come back.
//!
//! The plain archive is written as the batches come, copies big files with
//! `copy_file_range` (the kernel moves the bytes; they never pass through our memory),
//! and has a third thread start the write-back to disk as it goes, so that the final
//! fsync has little left to do and the disk works while we read.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::fd::AsRawFd;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::{Scope, ScopedJoinHandle};

use super::compression::Compression;

/// The size of a batch: what the writer hands to the kernel in one `write`.
const BATCH: usize = 1 << 20;

/// The most [`Stream::room`] gives at once.
pub const ROOM: u64 = BATCH as u64;

/// How many batches exist: one being filled, the others queued or being written.
const BATCHES: usize = 4;

/// Every this many bytes, the file's new data is handed to the disk.
const WRITEBACK_STEP: u64 = 16 << 20;

/// The size of the jobs zstd's workers compress.
const ZSTD_JOB: u32 = 512 << 10;

/// zstd's window, as a power of two: 1 MiB, so that a worker's history stays small.
const ZSTD_WINDOW_LOG: u32 = 20;

/// Ranges waiting for the flusher, at most.
const FLUSHES: usize = 4;

/// The largest single `copy_file_range`: small enough to keep write-back flowing.
const COPY_STEP: u64 = WRITEBACK_STEP;

/// What the walk asks of the writer.
enum Job {
    /// Write the first `.1` bytes of the batch.
    Write(Vec<u8>, usize),
    /// Copy up to `len` bytes of `file`, from its offset, into the stream.
    Copy { file: File, len: u64 },
}

/// What the writer gives back.
enum Done {
    /// A batch written, to be filled again.
    Wrote(Vec<u8>),
    /// A copy's outcome: how many bytes went in, or why it stopped.
    Copied(io::Result<u64>),
}

/// The walk's end of the tar stream.
pub struct Stream {
    /// The batch being filled: always `BATCH` long, `used` of it filled.
    batch: Vec<u8>,
    used: usize,
    /// Batches back from the writer, ready to be filled.
    free: Vec<Vec<u8>>,
    jobs: SyncSender<Job>,
    done: Receiver<Done>,
}

/// Starts the writer thread in `scope`, writing `file` in `compression`. The stream is
/// ended by [`Stream::finish`]; the writer's handle then says whether all went in.
pub fn start<'scope>(
    scope: &'scope Scope<'scope, '_>,
    file: &'scope mut File,
    compression: Compression,
) -> io::Result<(Stream, ScopedJoinHandle<'scope, io::Result<()>>)> {
    let mut sink = match compression {
        Compression::None => {
            // Its own descriptor of the archive: the flusher only asks for write-back.
            let dup = file.try_clone()?;
            let (flusher, ranges) = sync_channel::<(u64, u64)>(FLUSHES);
            scope.spawn(move || {
                for (offset, len) in ranges {
                    write_back(&dup, offset, len);
                }
            });
            Sink::Plain(Plain {
                file,
                written: 0,
                handed_to_disk: 0,
                flusher,
            })
        }
        compressed => Sink::compressed(file, compressed)?,
    };
    // Room for every batch and a copy: the writer never waits to give one back.
    let (jobs, queued) = sync_channel(BATCHES + 1);
    let (gave_back, done) = sync_channel(BATCHES + 1);
    let writer = scope.spawn(move || {
        for job in queued {
            match job {
                Job::Write(batch, used) => {
                    sink.write_all(&batch[..used])?;
                    // The walk may have stopped waiting (it failed); that is its to say.
                    let _ = gave_back.send(Done::Wrote(batch));
                }
                Job::Copy { mut file, len } => {
                    let _ = gave_back.send(Done::Copied(sink.copy_from(&mut file, len)));
                }
            }
        }
        sink.finish()
    });
    let stream = Stream {
        batch: vec![0; BATCH],
        used: 0,
        free: (1..BATCHES).map(|_| vec![0; BATCH]).collect(),
        jobs,
        done,
    };
    Ok((stream, writer))
}

/// A copy that failed on the archive's side: the archive is lost, not just one file.
#[derive(Debug)]
pub struct ArchiveWriteFailed(pub io::Error);

impl std::fmt::Display for ArchiveWriteFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "writing to the archive: {}", self.0)
    }
}

impl std::error::Error for ArchiveWriteFailed {}

/// Whether a failed copy failed on the archive's side.
pub fn is_write_failure(e: &io::Error) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.is::<ArchiveWriteFailed>())
}

/// Copies up to `len` bytes of `src` into an encoder. Unlike `io::copy`, every byte read
/// is written before the next read, and a write error is marked as such, so that after
/// an error the source's offset still tells how much went in.
fn copy_into(src: &mut File, len: u64, dst: &mut impl Write) -> io::Result<u64> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut done = 0u64;
    while done < len {
        let want = buf.len().min((len - done) as usize);
        let n = match src.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        dst.write_all(&buf[..n])
            .map_err(|e| io::Error::other(ArchiveWriteFailed(e)))?;
        done += n as u64;
    }
    Ok(done)
}

/// The writer stopped (a write failed); its own error says why.
fn writer_stopped() -> io::Error {
    io::Error::other("the archive writer stopped")
}

impl Stream {
    /// Hands the filled part of the batch to the writer and takes a free one.
    fn send(&mut self) -> io::Result<()> {
        if self.used == 0 {
            return Ok(());
        }
        let next = match self.free.pop() {
            Some(batch) => batch,
            // Only batches come back here: a copy's outcome is waited for where the
            // copy is asked.
            None => match self.done.recv().map_err(|_| writer_stopped())? {
                Done::Wrote(batch) => batch,
                Done::Copied(_) => unreachable!("a copy's outcome is taken by copy_from"),
            },
        };
        let full = std::mem::replace(&mut self.batch, next);
        self.jobs
            .send(Job::Write(full, self.used))
            .map_err(|_| writer_stopped())?;
        self.used = 0;
        Ok(())
    }

    /// `len` bytes of room at the end of the stream, in one piece, to be filled and then
    /// kept with [`Stream::advance`]. `len` is at most a batch.
    pub fn room(&mut self, len: usize) -> io::Result<&mut [u8]> {
        assert!(
            len <= BATCH,
            "room for {len} bytes asked, a batch is {BATCH}"
        );
        if BATCH - self.used < len {
            self.send()?;
        }
        Ok(&mut self.batch[self.used..self.used + len])
    }

    /// Keeps the first `len` bytes of the room last asked for.
    pub fn advance(&mut self, len: usize) {
        self.used += len;
    }

    /// Copies up to `len` bytes of `src` (from its current offset) into the stream;
    /// returns how many were copied, fewer if `src` ended first. On an error, `src`'s
    /// offset says how far the copy got.
    pub fn copy_from(&mut self, src: &File, len: u64) -> io::Result<u64> {
        self.send()?;
        // A second descriptor of the same open file: it shares the offset.
        let file = src.try_clone()?;
        self.jobs
            .send(Job::Copy { file, len })
            .map_err(|_| writer_stopped())?;
        loop {
            match self.done.recv().map_err(|_| writer_stopped())? {
                Done::Wrote(batch) => self.free.push(batch),
                Done::Copied(result) => return result,
            }
        }
    }

    /// Ends the stream: what is left goes to the writer, which then finishes the archive
    /// (the compressed trailer) and stops. Its handle says whether all of it went in.
    pub fn finish(mut self) -> io::Result<()> {
        self.send()
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.used == BATCH {
            self.send()?;
        }
        let n = buf.len().min(BATCH - self.used);
        self.batch[self.used..self.used + n].copy_from_slice(&buf[..n]);
        self.used += n;
        Ok(n)
    }

    /// Sends what is filled to the writer (it does not wait for it to be written).
    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// The tar stream's destination, on the writer thread.
enum Sink<'a> {
    /// An uncompressed archive.
    Plain(Plain<'a>),
    /// A gzip stream.
    Gzip(flate2::write::GzEncoder<BufWriter<&'a mut File>>),
    /// A zstd stream.
    Zstd(zstd::stream::write::Encoder<'static, BufWriter<&'a mut File>>),
}

impl<'a> Sink<'a> {
    /// A sink writing `file` compressed in `compression` (gzip or zstd).
    fn compressed(file: &'a mut File, compression: Compression) -> io::Result<Self> {
        let buffered = |file| BufWriter::with_capacity(1 << 16, file);
        Ok(match compression {
            Compression::None => unreachable!("a plain archive is not compressed"),
            Compression::Gzip => Sink::Gzip(flate2::write::GzEncoder::new(
                buffered(file),
                flate2::Compression::default(),
            )),
            Compression::Zstd => {
                let mut encoder = zstd::stream::write::Encoder::new(buffered(file), 3)?;
                // Compression runs on worker threads, one per core, fed by the writer.
                let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
                encoder.multithread(workers as u32)?;
                // Fed by its own thread, the encoder keeps several jobs in flight, each
                // holding its input, output and window: with the defaults (8 MiB jobs at
                // level 3) memory went past 100 MiB on incompressible data. 512 KiB jobs
                // and a 1 MiB window keep the whole process near 12 MiB.
                encoder.set_parameter(zstd::zstd_safe::CParameter::JobSize(ZSTD_JOB))?;
                encoder.set_parameter(zstd::zstd_safe::CParameter::WindowLog(ZSTD_WINDOW_LOG))?;
                Sink::Zstd(encoder)
            }
        })
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Sink::Plain(plain) => plain.write_all(buf),
            Sink::Gzip(gz) => gz.write_all(buf),
            Sink::Zstd(zstd) => zstd.write_all(buf),
        }
    }

    fn copy_from(&mut self, src: &mut File, len: u64) -> io::Result<u64> {
        match self {
            Sink::Plain(plain) => plain.copy_from(src, len),
            Sink::Gzip(gz) => copy_into(src, len, gz),
            Sink::Zstd(zstd) => copy_into(src, len, zstd),
        }
    }

    /// Ends the stream (the compressed trailer) and flushes everything to the file.
    fn finish(self) -> io::Result<()> {
        match self {
            Sink::Plain(plain) => plain.file.flush(),
            Sink::Gzip(gz) => gz.finish()?.flush(),
            Sink::Zstd(zstd) => zstd.finish()?.flush(),
        }
    }
}

/// Starts writing `len` bytes of `file` from `offset` back to disk, without waiting.
fn write_back(file: &File, offset: u64, len: u64) {
    // SAFETY: sync_file_range only reads its integer arguments; the descriptor is
    // open for as long as `file` is borrowed.
    unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            offset as libc::off64_t,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}

/// The uncompressed archive file.
struct Plain<'a> {
    file: &'a mut File,
    /// Bytes written to the file so far.
    written: u64,
    /// Bytes already handed to the disk for write-back.
    handed_to_disk: u64,
    /// Where ranges go to be written back, on another thread: starting write-back costs
    /// about a sixth of the time of copying a large file, time the other core can take.
    flusher: SyncSender<(u64, u64)>,
}

impl Plain<'_> {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.file.write_all(buf)?;
        self.written += buf.len() as u64;
        self.write_back();
        Ok(())
    }

    /// Starts writing back what was written since the last call, once there is enough
    /// of it. Only a hint: the fsync at commit is what makes the archive durable.
    fn write_back(&mut self) {
        let pending = self.written - self.handed_to_disk;
        if pending < WRITEBACK_STEP {
            return;
        }
        // A flusher that is behind is not waited for: the range grows until it has room
        // again.
        if self
            .flusher
            .try_send((self.handed_to_disk, pending))
            .is_ok()
        {
            self.handed_to_disk = self.written;
        }
    }

    fn copy_from(&mut self, src: &mut File, len: u64) -> io::Result<u64> {
        let mut copied = 0;
        while copied < len {
            let step = (len - copied).min(COPY_STEP) as usize;
            match nix::fcntl::copy_file_range(&*src, None, &*self.file, None, step) {
                Ok(0) => break,
                Ok(n) => {
                    copied += n as u64;
                    self.written += n as u64;
                    self.write_back();
                }
                // Not supported here (another file system, an old kernel): copy by hand.
                Err(
                    nix::errno::Errno::EXDEV
                    | nix::errno::Errno::EINVAL
                    | nix::errno::Errno::ENOSYS
                    | nix::errno::Errno::EOPNOTSUPP,
                ) => {
                    let n = io::copy(&mut src.take(len - copied), &mut *self.file)?;
                    copied += n;
                    self.written += n;
                    break;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(copied)
    }
}
