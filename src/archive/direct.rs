//! Writing an archive file past the page cache (`O_DIRECT`), where its file system allows.
//!
//! A backup is written once and not read again soon: caching it would only push the
//! user's own files out of memory, and copying every byte into the page cache can cost
//! the writer as much CPU as compressing it (see docs/benchmarks.md). Direct I/O wants aligned memory, offsets and
//! lengths: [`Batch`] is memory on an [`ALIGN`] boundary, and [`Direct`] writes whole
//! batches, then its short tail with direct I/O turned off.

use std::fs::File;
use std::io::{self, Seek, Write};

use nix::fcntl::{FcntlArg, OFlag, fcntl};

/// The size of a batch: the most a writer hands to the kernel in one `write`.
pub(super) const BATCH: usize = 1 << 20;

/// The alignment direct I/O asks for, of memory, offsets and lengths: 512 bytes or 4 KiB
/// on usual disks. Where a disk wants more, the first refused write sends the rest of
/// the archive through the page cache.
pub(super) const ALIGN: usize = 4096;

/// A batch's memory: `BATCH` bytes starting on an `ALIGN` boundary.
pub(super) struct Batch {
    memory: Vec<u8>,
    start: usize,
}

impl Batch {
    pub(super) fn new() -> Self {
        let memory = vec![0; BATCH + ALIGN];
        // The vector's memory never moves, so the offset stays right wherever the batch goes.
        let start = (ALIGN - memory.as_ptr().addr() % ALIGN) % ALIGN;
        Batch { memory, start }
    }

    pub(super) fn bytes(&self) -> &[u8] {
        &self.memory[self.start..self.start + BATCH]
    }

    pub(super) fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.memory[self.start..self.start + BATCH]
    }

    /// Copies as much of `buf` as fits after the first `used` bytes, and counts it in
    /// `used`; returns how much that was.
    pub(super) fn put(&mut self, used: &mut usize, buf: &[u8]) -> usize {
        let n = buf.len().min(BATCH - *used);
        self.bytes_mut()[*used..*used + n].copy_from_slice(&buf[..n]);
        *used += n;
        n
    }
}

impl AsRef<[u8]> for Batch {
    fn as_ref(&self) -> &[u8] {
        self.bytes()
    }
}

/// Turns direct I/O on or off for `file`.
pub(super) fn set_direct(file: &File, on: bool) -> io::Result<()> {
    let flags = OFlag::from_bits_retain(fcntl(file, FcntlArg::F_GETFL)?);
    let flags = if on {
        flags | OFlag::O_DIRECT
    } else {
        flags - OFlag::O_DIRECT
    };
    fcntl(file, FcntlArg::F_SETFL(flags))?;
    Ok(())
}

/// Writes all of `buf` to `file`, with direct I/O while `direct`. A write that direct I/O
/// refuses (the last one, not a whole number of blocks, or one after a short write)
/// turns it off: this and the rest go through the page cache.
pub(super) fn write_all(file: &File, buf: &[u8], direct: &mut bool) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        match (&*file).write(&buf[done..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if *direct && e.raw_os_error() == Some(libc::EINVAL) => {
                set_direct(file, false)?;
                *direct = false;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A file written in whole batches with direct I/O, through the page cache where its
/// file system refuses it. What is written stays in the batch until it is full or
/// [`Direct::finish`] writes the rest: `flush` does not write a short batch, which
/// would misalign every write after it.
pub(super) struct Direct<'a> {
    file: &'a mut File,
    batch: Batch,
    used: usize,
    /// Whether writes go straight to the disk.
    direct: bool,
}

impl<'a> Direct<'a> {
    /// Writes to `file` from where it stands; direct only if that is an aligned offset
    /// and the file system takes it.
    pub(super) fn new(file: &'a mut File) -> io::Result<Self> {
        let aligned = file.stream_position()? % ALIGN as u64 == 0;
        let direct = aligned && set_direct(file, true).is_ok();
        Ok(Direct {
            file,
            batch: Batch::new(),
            used: 0,
            direct,
        })
    }

    /// Writes the full batch with direct I/O (through the page cache, if refused).
    fn write_batch(&mut self) -> io::Result<()> {
        write_all(self.file, self.batch.bytes(), &mut self.direct)?;
        self.used = 0;
        Ok(())
    }

    /// Writes what the batch holds: its whole blocks with direct I/O, then the rest
    /// without, which also leaves the file as it was opened for the fsync after.
    pub(super) fn finish(mut self) -> io::Result<()> {
        let blocks = self.used - self.used % ALIGN;
        let (whole, tail) = self.batch.bytes()[..self.used].split_at(blocks);
        write_all(self.file, whole, &mut self.direct)?;
        if self.direct {
            set_direct(self.file, false)?;
        }
        self.file.write_all(tail)
    }
}

impl Write for Direct<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.used == BATCH {
            self.write_batch()?;
        }
        Ok(self.batch.put(&mut self.used, buf))
    }

    /// Nothing: a short batch waits for [`Direct::finish`].
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes that tell their offset.
    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn what_goes_in_comes_out_whole_at_any_length() {
        let dir = tempfile::tempdir().unwrap();
        for len in [0, 1, ALIGN, BATCH, BATCH + 1, 3 * BATCH - 17] {
            let path = dir.path().join(format!("out{len}"));
            let mut file = File::create(&path).unwrap();
            let sent = pattern(len);
            let mut out = Direct::new(&mut file).unwrap();
            for piece in sent.chunks(BATCH / 3 + 5) {
                out.write_all(piece).unwrap();
            }
            out.finish().unwrap();
            let flags = fcntl(&file, FcntlArg::F_GETFL).unwrap();
            assert_eq!(flags & libc::O_DIRECT, 0, "left direct");
            assert_eq!(std::fs::read(&path).unwrap(), sent, "length {len}");
        }
    }

    #[test]
    fn a_file_at_an_unaligned_offset_is_written_through_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let mut file = File::create(&path).unwrap();
        file.write_all(b"head").unwrap();
        let mut out = Direct::new(&mut file).unwrap();
        assert!(!out.direct);
        out.write_all(&pattern(BATCH + 9)).unwrap();
        out.finish().unwrap();
        let mut expected = b"head".to_vec();
        expected.extend(pattern(BATCH + 9));
        assert_eq!(std::fs::read(&path).unwrap(), expected);
    }
}
