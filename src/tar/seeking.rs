//! A plain archive's file as the reader's input: read through a buffer, passed over by
//! seeking (so that checking an archive costs its headers, not its size), and written
//! out without a copy through this process where it can be.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};

use super::reader::Reader;

/// From this many bytes, a file's data goes file to file in the kernel; below, it is
/// written from the buffer, which holds most of it already.
const SEND_FROM: u64 = 1 << 20;

impl Reader<Seeking> {
    /// Starts reading the plain (uncompressed, unencrypted) archive open as `file`, from
    /// its start, passing over the data of the entries not read by seeking rather than
    /// reading it: checking an archive's structure then costs its headers, not its size.
    pub fn seeking(mut file: File) -> io::Result<Self> {
        let size = file.metadata()?.len();
        file.seek(SeekFrom::Start(0))?;
        let input = Seeking {
            file: BufReader::with_capacity(1 << 16, file),
            left: size,
        };
        Ok(Reader::with_shortcuts(input, Seeking::pass, Seeking::send))
    }
}

/// A plain archive's file, read through a buffer, that can be passed over.
pub struct Seeking {
    file: BufReader<File>,
    /// Bytes from here to the end of the file, as its size was when opened.
    left: u64,
}

impl Seeking {
    /// Passes over `n` bytes; none, when fewer are left (reading them then tells where
    /// the archive was cut short).
    fn pass(&mut self, n: u64) -> io::Result<u64> {
        let Ok(by) = i64::try_from(n) else {
            return Ok(0);
        };
        if n > self.left {
            return Ok(0);
        }
        // Within the buffer this only moves in it; past it, one lseek.
        self.file.seek_relative(by)?;
        self.left -= n;
        Ok(n)
    }
}

impl Seeking {
    /// Copies up to `n` bytes into `out`: from the buffer, refilled as needed, without a
    /// copy through another; once the buffer is drained, [`SEND_FROM`] bytes or more go
    /// file to file in the kernel (page cache to page cache, never through this process).
    /// Stops early, and quietly, where the archive ends or the kernel cannot (the bytes
    /// copied are what counts).
    fn send(&mut self, out: &File, n: u64) -> io::Result<u64> {
        let mut sent = 0;
        while sent < n {
            let rest = n - sent;
            let count = usize::try_from(rest).unwrap_or(usize::MAX);
            if rest >= SEND_FROM && self.file.buffer().is_empty() {
                // The file's own position is where the data goes on, and sendfile moves
                // it on.
                match nix::sys::sendfile::sendfile(
                    out,
                    self.file.get_ref(),
                    None,
                    count.min(1 << 30),
                ) {
                    Ok(0) | Err(_) => break,
                    Ok(done) => {
                        sent += done as u64;
                        self.left = self.left.saturating_sub(done as u64);
                        continue;
                    }
                }
            }
            let held = self.file.fill_buf()?;
            if held.is_empty() {
                break;
            }
            let k = held.len().min(count);
            (&*out).write_all(&held[..k])?;
            self.file.consume(k);
            self.left = self.left.saturating_sub(k as u64);
            sent += k as u64;
        }
        Ok(sent)
    }
}

impl Read for Seeking {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        self.left = self.left.saturating_sub(n as u64);
        Ok(n)
    }
}
