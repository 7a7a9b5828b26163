//! Starting a file's write-back early, so that the fsync that makes it durable has
//! little left to wait for.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsRawFd;

/// Starts writing `len` bytes of `file` from `offset` back to disk, without waiting for
/// them. Only a hint: an fsync is still what makes them durable, and a refusal changes
/// nothing but when the bytes get written.
pub fn start(file: &File, offset: u64, len: u64) {
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

/// A file written from its start, whose bytes are handed to the disk a MiB at a time as
/// they are written, and the rest on [`Eager::hand_over`].
#[derive(Debug)]
pub struct Eager {
    file: File,
    written: u64,
    /// Bytes handed to the disk so far.
    handed: u64,
}

/// How many bytes written start their write-back.
const STEP: u64 = 1 << 20;

impl Eager {
    /// Writes to `file` from its start.
    pub fn new(file: File) -> Self {
        Eager {
            file,
            written: 0,
            handed: 0,
        }
    }

    /// Starts the write-back of all written so far.
    pub fn hand_over(&mut self) {
        if self.written > self.handed {
            start(&self.file, self.handed, self.written - self.handed);
            self.handed = self.written;
        }
    }

    /// The file.
    pub fn into_inner(self) -> File {
        self.file
    }
}

impl Write for Eager {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        if self.written - self.handed >= STEP {
            self.hand_over();
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}
