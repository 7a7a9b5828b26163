//! A plain (uncompressed, unencrypted) archive file: written with direct I/O where the
//! file system allows it, through the page cache with write-back started as it goes where
//! it does not.

use std::fs::File;
use std::io;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::Scope;

use crate::archive::direct::{self, set_direct};

/// When written through the page cache, every this many bytes of the file are handed to
/// the disk.
const WRITEBACK_STEP: u64 = 16 << 20;

/// Ranges waiting for the flusher, at most.
const FLUSHES: usize = 4;

/// The uncompressed archive file.
pub(super) struct Plain<'a> {
    pub(super) file: &'a mut File,
    /// Whether writes go straight to the disk (`O_DIRECT`).
    direct: bool,
    /// Bytes written to the file so far.
    written: u64,
    /// Bytes already handed to the flusher for write-back.
    handed_to_disk: u64,
    /// When the file system refuses direct I/O: where ranges written through the page
    /// cache go to be written back, on another thread: starting write-back takes time,
    /// which the other core can take.
    flusher: Option<SyncSender<(u64, u64)>>,
}

impl<'a> Plain<'a> {
    pub(super) fn new<'scope>(
        scope: &'scope Scope<'scope, '_>,
        file: &'a mut File,
    ) -> io::Result<Self> {
        // Refused by file systems without direct I/O (tmpfs on older kernels, some
        // FUSE ones): then the page cache it is. A refusal later, of the last write
        // only as a rule, needs no flusher: the fsync at commit writes that little.
        if set_direct(file, true).is_err() {
            return Self::buffered(scope, file);
        }
        Ok(Plain {
            file,
            direct: true,
            written: 0,
            handed_to_disk: 0,
            flusher: None,
        })
    }

    /// A plain archive written through the page cache, with write-back started as it goes.
    fn buffered<'scope>(scope: &'scope Scope<'scope, '_>, file: &'a mut File) -> io::Result<Self> {
        // Its own descriptor of the archive: the flusher only asks for write-back.
        let dup = file.try_clone()?;
        let (flusher, ranges) = sync_channel::<(u64, u64)>(FLUSHES);
        scope.spawn(move || {
            for (offset, len) in ranges {
                crate::write_back::start(&dup, offset, len);
            }
        });
        Ok(Plain {
            file,
            direct: false,
            written: 0,
            handed_to_disk: 0,
            flusher: Some(flusher),
        })
    }

    pub(super) fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        direct::write_all(self.file, buf, &mut self.direct)?;
        self.written += buf.len() as u64;
        self.write_back();
        Ok(())
    }

    /// Starts writing back what was written since the last call, once there is enough
    /// of it. Only a hint: the fsync at commit is what makes the archive durable.
    fn write_back(&mut self) {
        let Some(flusher) = &self.flusher else {
            return;
        };
        let pending = self.written - self.handed_to_disk;
        // A flusher that is behind is not waited for: the range grows until it has room
        // again.
        if pending >= WRITEBACK_STEP && flusher.try_send((self.handed_to_disk, pending)).is_ok() {
            self.handed_to_disk = self.written;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::direct::BATCH;

    /// Bytes that tell their offset: a misplaced or repeated piece shows.
    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn without_direct_io_the_page_cache_takes_it_all() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.tar");
        let mut file = File::create(&path).unwrap();
        // Past a few write-back steps, in pieces of odd sizes.
        let sent = pattern(3 * WRITEBACK_STEP as usize + 12345);
        std::thread::scope(|scope| {
            let mut plain = Plain::buffered(scope, &mut file).unwrap();
            for piece in sent.chunks(BATCH - 7) {
                plain.write_all(piece).unwrap();
            }
            assert!(
                plain.handed_to_disk >= 2 * WRITEBACK_STEP,
                "no write-back was started"
            );
        });
        assert!(
            std::fs::read(&path).unwrap() == sent,
            "the file differs from what was sent"
        );
    }
}
