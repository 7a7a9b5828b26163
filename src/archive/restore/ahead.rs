//! Reading a decompressed (or decrypted) tar stream ahead, on a thread of its own, so
//! that decompressing overlaps checking and writing on another core. Memory is bounded:
//! [`CHUNKS`] chunks of [`CHUNK`] bytes are in flight at most, handed back and forth.

use std::fs::File;
use std::io::{self, Read, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

/// The bytes a chunk holds.
const CHUNK: usize = 1 << 17;

/// The chunks in flight: read ahead, or being read from.
const CHUNKS: usize = 4;

/// A stream read ahead by a thread.
pub struct Ahead {
    /// Chunks read, in order; an error ends the stream.
    full: Option<Receiver<io::Result<Vec<u8>>>>,
    /// Chunks read from, handed back to be filled again.
    empty: Option<SyncSender<Vec<u8>>>,
    /// The chunk being read from, and how much of it was.
    current: Vec<u8>,
    at: usize,
    done: bool,
    thread: Option<JoinHandle<()>>,
}

impl Ahead {
    /// Starts reading `stream` ahead.
    pub fn new(mut stream: Box<dyn Read + Send>) -> io::Result<Self> {
        let (full_tx, full) = sync_channel(CHUNKS);
        let (empty, empty_rx) = sync_channel::<Vec<u8>>(CHUNKS);
        let thread = std::thread::Builder::new()
            .name("restore-read".into())
            .spawn(move || {
                let mut made = 0;
                loop {
                    // New chunks until there are CHUNKS of them, then those handed back.
                    let mut chunk = if made < CHUNKS {
                        made += 1;
                        Vec::new()
                    } else {
                        match empty_rx.recv() {
                            Ok(chunk) => chunk,
                            Err(_) => return,
                        }
                    };
                    let (sent, end) = match fill(&mut stream, &mut chunk) {
                        Ok(0) => (Ok(Vec::new()), true),
                        Ok(_) => (Ok(chunk), false),
                        Err(e) => (Err(e), true),
                    };
                    if full_tx.send(sent).is_err() || end {
                        return;
                    }
                }
            })?;
        Ok(Ahead {
            full: Some(full),
            empty: Some(empty),
            current: Vec::new(),
            at: 0,
            done: false,
            thread: Some(thread),
        })
    }
}

/// Fills `buf` (made [`CHUNK`] long) from `stream` as far as it goes: the bytes read,
/// 0 at its end.
fn fill(stream: &mut dyn Read, buf: &mut Vec<u8>) -> io::Result<usize> {
    buf.resize(CHUNK, 0);
    let mut filled = 0;
    while filled < CHUNK {
        match stream.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    Ok(filled)
}

impl Ahead {
    /// The bytes of the current chunk not read yet, the next chunk's once it is all
    /// read; empty at the end of the stream.
    fn held(&mut self) -> io::Result<&[u8]> {
        while self.at == self.current.len() {
            if self.done {
                return Ok(&[]);
            }
            let full = self.full.as_ref().expect("open until dropped");
            let next = match full.recv() {
                Ok(next) => next,
                Err(_) => Err(io::Error::other("the thread reading the archive stopped")),
            };
            let next = next.inspect_err(|_| self.done = true)?;
            if next.is_empty() {
                self.done = true;
                return Ok(&[]);
            }
            let used = std::mem::replace(&mut self.current, next);
            self.at = 0;
            // Handed back to be filled again (never more than there are chunks).
            if let Some(empty) = &self.empty {
                let _ = empty.try_send(used);
            }
        }
        Ok(&self.current[self.at..])
    }

    /// Passes over up to `n` bytes, without copying them: the bytes passed over, fewer
    /// at the end of the stream.
    pub fn pass(&mut self, n: u64) -> io::Result<u64> {
        self.each(n, |_| Ok(()))
    }

    /// Writes up to `n` bytes into `out`, straight from the chunks: the bytes written,
    /// fewer at the end of the stream.
    pub fn send(&mut self, out: &File, n: u64) -> io::Result<u64> {
        self.each(n, |bytes| (&*out).write_all(bytes))
    }

    /// Gives up to `n` bytes to `take`, a chunk's worth at a time: the bytes given.
    fn each(&mut self, n: u64, mut take: impl FnMut(&[u8]) -> io::Result<()>) -> io::Result<u64> {
        let mut done = 0;
        while done < n {
            let held = self.held()?;
            if held.is_empty() {
                break;
            }
            let k = held
                .len()
                .min(usize::try_from(n - done).unwrap_or(usize::MAX));
            take(&held[..k])?;
            self.at += k;
            done += k as u64;
        }
        Ok(done)
    }
}

impl Read for Ahead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let held = self.held()?;
        let n = buf.len().min(held.len());
        buf[..n].copy_from_slice(&held[..n]);
        self.at += n;
        Ok(n)
    }
}

impl Drop for Ahead {
    fn drop(&mut self) {
        // The thread stops at its next chunk, finding no one to send it to nor any
        // chunk handed back.
        self.full = None;
        self.empty = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Seek;

    use super::*;

    /// Reads in odd sizes, and fails at `fail_at` if set.
    struct Source {
        data: Vec<u8>,
        at: usize,
        fail_at: Option<usize>,
    }

    impl Read for Source {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.fail_at.is_some_and(|f| self.at >= f) {
                return Err(io::Error::other("broken archive"));
            }
            let n = buf.len().min(7919).min(self.data.len() - self.at);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    fn data() -> Vec<u8> {
        (0..5 * CHUNK + 12345)
            .map(|i| (i * 31 % 253) as u8)
            .collect()
    }

    #[test]
    fn gives_the_stream_in_order_and_its_error() {
        let source = Source {
            data: data(),
            at: 0,
            fail_at: None,
        };
        let mut out = Vec::new();
        Ahead::new(Box::new(source))
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, data());
        let source = Source {
            data: data(),
            at: 0,
            fail_at: Some(2 * CHUNK + 5),
        };
        let mut out = Vec::new();
        let err = Ahead::new(Box::new(source))
            .unwrap()
            .read_to_end(&mut out)
            .unwrap_err();
        assert_eq!(err.to_string(), "broken archive");
        assert_eq!(out, data()[..2 * CHUNK]);
    }

    #[test]
    fn passes_over_and_writes_out_across_chunks() {
        let source = Source {
            data: data(),
            at: 0,
            fail_at: None,
        };
        let mut ahead = Ahead::new(Box::new(source)).unwrap();
        let tmp = tempfile::tempfile().unwrap();
        assert_eq!(ahead.pass(CHUNK as u64 - 10).unwrap(), CHUNK as u64 - 10);
        assert_eq!(
            ahead.send(&tmp, 2 * CHUNK as u64).unwrap(),
            2 * CHUNK as u64
        );
        let mut rest = Vec::new();
        ahead.read_to_end(&mut rest).unwrap();
        let mut written = Vec::new();
        (&tmp).seek(io::SeekFrom::Start(0)).unwrap();
        (&tmp).read_to_end(&mut written).unwrap();
        assert_eq!(written, data()[CHUNK - 10..3 * CHUNK - 10]);
        assert_eq!(rest, data()[3 * CHUNK - 10..]);
        assert_eq!(ahead.pass(5).unwrap(), 0, "at the end");
    }

    #[test]
    fn dropped_early_stops_its_thread() {
        let source = Source {
            data: data(),
            at: 0,
            fail_at: None,
        };
        let mut ahead = Ahead::new(Box::new(source)).unwrap();
        let mut buf = [0u8; 100];
        ahead.read_exact(&mut buf).unwrap();
        drop(ahead);
    }
}
