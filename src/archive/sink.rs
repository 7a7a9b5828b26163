//! Where the tar stream goes: straight into the archive file, or through an encoder.
//!
//! The plain sink batches small writes into large ones, copies big files with
//! `copy_file_range` (the kernel moves the bytes; they never pass through our memory),
//! and starts writing back to disk as it goes, so that the final fsync has little left
//! to do and the disk works while we read.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::fd::AsRawFd;

use super::compression::Compression;

/// Batches of this size go to the kernel in one `write`.
const WRITE_BATCH: usize = 1 << 20;

/// Every this many bytes, the file's new data is handed to the disk.
const WRITEBACK_STEP: u64 = 16 << 20;

/// The largest single `copy_file_range`: small enough to keep write-back flowing.
const COPY_STEP: u64 = WRITEBACK_STEP;

/// The tar stream's destination.
pub enum Sink<'a> {
    /// An uncompressed archive.
    Plain(Plain<'a>),
    /// A gzip stream.
    Gzip(flate2::write::GzEncoder<BufWriter<&'a mut File>>),
    /// A zstd stream.
    Zstd(zstd::stream::write::Encoder<'static, BufWriter<&'a mut File>>),
}

impl<'a> Sink<'a> {
    /// A sink writing `file` in `compression`.
    pub fn new(file: &'a mut File, compression: Compression) -> io::Result<Self> {
        let buffered = |file| BufWriter::with_capacity(1 << 16, file);
        Ok(match compression {
            Compression::None => Sink::Plain(Plain {
                file,
                batch: Vec::with_capacity(WRITE_BATCH),
                written: 0,
                handed_to_disk: 0,
            }),
            Compression::Gzip => Sink::Gzip(flate2::write::GzEncoder::new(
                buffered(file),
                flate2::Compression::default(),
            )),
            Compression::Zstd => {
                let mut encoder = zstd::stream::write::Encoder::new(buffered(file), 3)?;
                // Compression runs on the other cores while this thread reads files.
                let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
                encoder.multithread(workers as u32)?;
                Sink::Zstd(encoder)
            }
        })
    }

    /// Copies up to `len` bytes of `src` (from its current offset) into the stream;
    /// returns how many were copied, fewer if `src` ended first.
    pub fn copy_from(&mut self, src: &mut File, len: u64) -> io::Result<u64> {
        match self {
            Sink::Plain(plain) => plain.copy_from(src, len),
            other => io::copy(&mut src.take(len), other),
        }
    }

    /// Ends the stream (the compressed trailer) and flushes everything to the file.
    pub fn finish(self) -> io::Result<()> {
        match self {
            Sink::Plain(mut plain) => plain.flush(),
            Sink::Gzip(gz) => gz.finish()?.flush(),
            Sink::Zstd(zstd) => zstd.finish()?.flush(),
        }
    }
}

impl Write for Sink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Plain(plain) => plain.write(buf),
            Sink::Gzip(gz) => gz.write(buf),
            Sink::Zstd(zstd) => zstd.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Sink::Plain(plain) => plain.write_all(buf),
            Sink::Gzip(gz) => gz.write_all(buf),
            Sink::Zstd(zstd) => zstd.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Plain(plain) => plain.flush(),
            Sink::Gzip(gz) => gz.flush(),
            Sink::Zstd(zstd) => zstd.flush(),
        }
    }
}

/// The uncompressed archive file, written in large batches.
pub struct Plain<'a> {
    file: &'a mut File,
    batch: Vec<u8>,
    /// Bytes written to the file so far (not counting the batch).
    written: u64,
    /// Bytes already handed to the disk for write-back.
    handed_to_disk: u64,
}

impl Plain<'_> {
    fn flush_batch(&mut self) -> io::Result<()> {
        if !self.batch.is_empty() {
            self.file.write_all(&self.batch)?;
            self.written += self.batch.len() as u64;
            self.batch.clear();
            self.write_back();
        }
        Ok(())
    }

    /// Starts writing back what was written since the last call, once there is enough
    /// of it. Only a hint: the fsync at commit is what makes the archive durable.
    fn write_back(&mut self) {
        let pending = self.written - self.handed_to_disk;
        if pending < WRITEBACK_STEP {
            return;
        }
        // SAFETY: sync_file_range only reads its integer arguments; the descriptor is
        // open for as long as `self.file` is borrowed.
        unsafe {
            libc::sync_file_range(
                self.file.as_raw_fd(),
                self.handed_to_disk as libc::off64_t,
                pending as libc::off64_t,
                libc::SYNC_FILE_RANGE_WRITE,
            );
        }
        self.handed_to_disk = self.written;
    }

    fn copy_from(&mut self, src: &mut File, len: u64) -> io::Result<u64> {
        self.flush_batch()?;
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

impl Write for Plain<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        if self.batch.len() + buf.len() > WRITE_BATCH {
            self.flush_batch()?;
        }
        if buf.len() >= WRITE_BATCH {
            self.file.write_all(buf)?;
            self.written += buf.len() as u64;
            self.write_back();
        } else {
            self.batch.extend_from_slice(buf);
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_batch()?;
        self.file.flush()
    }
}
