//! A plain archive's file as the reader's input: read at its own position through a
//! buffer (`pread`, so that passing over bytes costs no call), and written out without a
//! copy through this process where it can be. Checking an archive then costs its
//! headers, not its size; and a restore that already knows where each entry's data is
//! (see [`super::Reader::go_to`]) copies every file in the kernel, never reading the
//! archive itself.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;

use super::reader::Reader;

/// The buffer headers and small files are read through.
const BUFFER: usize = 1 << 16;

/// From this many bytes past what the buffer holds, a file's data goes file to file in
/// the kernel rather than through the buffer: a refill would read it whole anyway. Data
/// the buffer does not hold at all always goes so.
const SEND_FROM: u64 = 1 << 20;

impl Reader<Seeking> {
    /// Starts reading the plain (uncompressed, unencrypted) archive open as `file`, from
    /// its start, passing over the data of the entries not read rather than reading it.
    pub fn seeking(file: File) -> io::Result<Self> {
        let size = file.metadata()?.len();
        let input = Seeking {
            file,
            size,
            at: 0,
            buffer: Vec::new(),
            held: 0..0,
        };
        Ok(Reader::with_shortcuts(input, Seeking::pass, Seeking::send))
    }
}

/// A plain archive's file, read at its own position through a buffer.
pub struct Seeking {
    file: File,
    /// The file's size when opened: nothing is read past it.
    size: u64,
    /// Where the next byte is read.
    at: u64,
    buffer: Vec<u8>,
    /// The bytes of the file `buffer` holds, as offsets in the file.
    held: std::ops::Range<u64>,
}

impl Seeking {
    /// Bytes from here to the end of the file, as its size was when opened.
    fn left(&self) -> u64 {
        self.size.saturating_sub(self.at)
    }

    /// What the buffer holds from `at` on; empty when it holds nothing there.
    fn buffered(&self) -> &[u8] {
        if self.held.contains(&self.at) {
            let from = (self.at - self.held.start) as usize;
            &self.buffer[from..(self.held.end - self.held.start) as usize]
        } else {
            &[]
        }
    }

    /// Reads the buffer full from `at` on; empty at the end of the file.
    fn refill(&mut self) -> io::Result<&[u8]> {
        if self.buffer.is_empty() {
            self.buffer = vec![0; BUFFER];
        }
        let want = (self.left() as usize).min(BUFFER);
        let n = loop {
            match self.file.read_at(&mut self.buffer[..want], self.at) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        self.held = self.at..self.at + n as u64;
        Ok(&self.buffer[..n])
    }

    /// Passes over `n` bytes; none, when fewer are left (reading them then tells where
    /// the archive was cut short). No call: the next read starts further on.
    fn pass(&mut self, n: u64) -> io::Result<u64> {
        if n > self.left() {
            return Ok(0);
        }
        self.at += n;
        Ok(n)
    }

    /// Copies up to `n` bytes into `out`: what the buffer holds, written from it, then
    /// the rest file to file in the kernel (page cache to page cache, never through this
    /// process) when it is [`SEND_FROM`] bytes or more, or when the buffer held none of
    /// it; else through the buffer, refilled. Stops early, and quietly, where the archive
    /// ends or the kernel cannot (the bytes copied are what counts).
    fn send(&mut self, out: &File, n: u64) -> io::Result<u64> {
        let mut sent = 0;
        let mut from_buffer = !self.buffered().is_empty();
        while sent < n {
            let rest = (n - sent).min(self.left());
            if rest == 0 {
                break;
            }
            let held = self.buffered();
            if held.is_empty() && (!from_buffer || rest >= SEND_FROM) {
                let mut offset = i64::try_from(self.at).map_err(io::Error::other)?;
                let count = usize::try_from(rest).unwrap_or(usize::MAX).min(1 << 30);
                match nix::sys::sendfile::sendfile(out, &self.file, Some(&mut offset), count) {
                    Ok(0) | Err(_) => break,
                    Ok(done) => {
                        self.at += done as u64;
                        sent += done as u64;
                        continue;
                    }
                }
            }
            let held = if held.is_empty() {
                from_buffer = true;
                self.refill()?
            } else {
                held
            };
            if held.is_empty() {
                break;
            }
            let k = held.len().min(usize::try_from(rest).unwrap_or(usize::MAX));
            (&*out).write_all(&held[..k])?;
            self.at += k as u64;
            sent += k as u64;
        }
        Ok(sent)
    }
}

impl Read for Seeking {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let held = match self.buffered() {
            [] => self.refill()?,
            held => held,
        };
        let k = held.len().min(buf.len());
        buf[..k].copy_from_slice(&held[..k]);
        self.at += k as u64;
        Ok(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file of `len` bytes, each its offset's low byte mixed, and a reader of it.
    fn file_of(len: usize) -> (Vec<u8>, Seeking) {
        let bytes: Vec<u8> = (0..len).map(|i| (i ^ (i >> 8)) as u8).collect();
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&bytes).unwrap();
        let size = bytes.len() as u64;
        let input = Seeking {
            file,
            size,
            at: 0,
            buffer: Vec::new(),
            held: 0..0,
        };
        (bytes, input)
    }

    /// What `send` wrote, read back.
    fn sent(input: &mut Seeking, n: u64) -> (u64, Vec<u8>) {
        let out = tempfile::tempfile().unwrap();
        let done = input.send(&out, n).unwrap();
        let mut back = vec![0; done as usize];
        out.read_exact_at(&mut back, 0).unwrap();
        (done, back)
    }

    #[test]
    fn reads_and_passes_land_where_the_bytes_are() {
        let (bytes, mut input) = file_of(300_000);
        let mut got = [0u8; 100];
        input.read_exact(&mut got).unwrap();
        assert_eq!(got, bytes[..100]);
        assert_eq!(input.pass(70_000).unwrap(), 70_000);
        input.read_exact(&mut got[..10]).unwrap();
        assert_eq!(got[..10], bytes[70_100..70_110]);
        // Past the end: nothing passed, and reading says where it ends.
        assert_eq!(input.pass(300_000).unwrap(), 0);
        assert_eq!(input.pass(300_000 - 70_110).unwrap(), 300_000 - 70_110);
        assert_eq!(input.read(&mut got).unwrap(), 0);
    }

    #[test]
    fn sends_from_the_buffer_then_in_the_kernel_and_stop_at_the_end() {
        let (bytes, mut input) = file_of(3 << 20);
        let mut first = [0u8; 10];
        input.read_exact(&mut first).unwrap();
        // Buffered, then more than SEND_FROM past it.
        let (done, back) = sent(&mut input, 2 << 20);
        assert_eq!(done, 2 << 20);
        assert_eq!(back, bytes[10..10 + (2 << 20)]);
        // Nothing buffered here: small data goes in the kernel too.
        input.pass(1000).unwrap();
        let at = 10 + (2 << 20) + 1000;
        let (done, back) = sent(&mut input, 5000);
        assert_eq!((done, back.as_slice()), (5000, &bytes[at..at + 5000]));
        // Cut short: what is there, no more.
        let at = at + 5000;
        let (done, back) = sent(&mut input, 4 << 20);
        assert_eq!(done as usize, bytes.len() - at);
        assert_eq!(back, bytes[at..]);
    }
}
