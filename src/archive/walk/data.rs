//! Reading a regular file's data into the stream: a small file whole, a large one a batch
//! at a time, and a file that changed size while read cut or padded to what its header
//! announced.

use super::*;
use crate::logging::counted;

impl Walk<'_, '_, '_> {
    pub(super) fn file(
        &mut self,
        parent: BorrowedFd<'_>,
        file_name: &CStr,
        disk: &Path,
        name: &[u8],
    ) -> Result<()> {
        // O_NOFOLLOW: if the file was replaced by a link since it was listed, the link is
        // not followed out of the tree. O_NONBLOCK: nor does a FIFO put there hang us.
        let flags = OFlag::O_RDONLY
            | OFlag::O_NOFOLLOW
            | OFlag::O_CLOEXEC
            | OFlag::O_NOCTTY
            | OFlag::O_NONBLOCK;
        let fd = match nix::fcntl::openat(parent, file_name, flags, Mode::empty()) {
            Ok(fd) => fd,
            // Now a link (ELOOP) or something else: look again, by type.
            Err(Errno::ELOOP | Errno::ENXIO) => {
                return self.entry(parent, file_name, None, disk, name, None);
            }
            Err(e) => {
                self.warn(gone_or_unreadable(disk, e));
                return Ok(());
            }
        };
        let mut file = File::from(fd);
        let stat = match fstat(&file) {
            Ok(stat) => stat,
            Err(e) => {
                self.warn(gone_or_unreadable(disk, e));
                return Ok(());
            }
        };
        if kind_of(&stat) != Some(Kind::File) {
            drop(file);
            return self.entry(parent, file_name, None, disk, name, None);
        }
        // Grown past the limit since it was listed, it is left out all the same.
        if self.too_large(&stat) {
            return Ok(());
        }
        if self.hard_link(name, &stat)? {
            return Ok(());
        }
        let mut header = walk_header(&mut self.users, &mut self.groups, name, Kind::File, &stat);
        refuse_unreadable(&header, 0)?;
        self.extras(file.as_fd(), disk, &mut header);
        self.listed(&header);
        let size = header.size;
        self.header.clear();
        header.encode(&mut self.header);
        let at = self.stream.position();
        let data_at = at + self.header.len() as u64;
        let result = if size <= SMALL_FILE && self.header.len() as u64 + size < ROOM {
            self.small_file(&mut file, &header)
        } else {
            self.large_file(&mut file, &header)
        };
        // Whatever was read, the entry went in whole (padded with zeros if need be),
        // unless the archive could not be written, which ends the backup.
        self.stream.note(header, at, data_at, &[]);
        match result {
            Ok(()) => Ok(()),
            Err(Trouble::Read(message)) => {
                self.warn(format!("{}: {message}", disk.display()));
                Ok(())
            }
            Err(Trouble::Write(e)) => Err(e.context("writing to the archive")),
        }
    }

    /// Reads the file in one go, asking for one byte more than its size: getting it
    /// means the file grew, at no extra system call.
    /// The file is read straight into the stream, after its header: no copy.
    fn small_file(&mut self, file: &mut File, header: &Header) -> Result<(), Trouble> {
        let size = header.size as usize;
        let head = self.header.len();
        let room = self.stream.room(head + size + 1)?;
        room[..head].copy_from_slice(&self.header);
        let data = &mut room[head..];
        let mut got = 0;
        let mut error = None;
        while got < size + 1 {
            match file.read(&mut data[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        let stored = got.min(size);
        // The byte read past the size, if any, is not kept.
        self.stream.advance(head + stored);
        self.summary.entries += 1;
        self.bytes += stored as u64;
        self.finish_data(header, stored as u64, error, got > size)
    }

    /// Reads the file straight into the stream's batches, a batch at a time, reporting
    /// progress between them.
    fn large_file(&mut self, file: &mut File, header: &Header) -> Result<(), Trouble> {
        self.stream.write_all(&self.header)?;
        self.summary.entries += 1;
        let mut copied = 0;
        if header.size >= sink::SPLICE_FROM {
            // Its whole pages by the kernel where the archive allows, the rest read.
            while copied < header.size {
                match self.stream.splice_from(file, header.size - copied)? {
                    0 => break,
                    n => {
                        copied += n;
                        self.bytes += n;
                        self.tick();
                    }
                }
            }
        }
        let mut error = None;
        while copied < header.size {
            let space = self.stream.space()?;
            let want = (header.size - copied).min(space.len() as u64) as usize;
            match file.read(&mut space[..want]) {
                Ok(0) => break,
                Ok(n) => {
                    self.stream.advance(n);
                    copied += n as u64;
                    self.bytes += n as u64;
                    self.tick();
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        let mut probe = [0u8; 1];
        let grew = copied == header.size
            && matches!(
                nix::sys::uio::pread(&*file, &mut probe, header.size as i64),
                Ok(1)
            );
        self.finish_data(header, copied, error, grew)
    }

    /// Pads a short file to its announced size, then to the block, and says what happened.
    fn finish_data(
        &mut self,
        header: &Header,
        stored: u64,
        error: Option<io::Error>,
        grew: bool,
    ) -> Result<(), Trouble> {
        self.tick();
        let missing = header.size - stored;
        let mut left = missing + tar::padding(header.size);
        while left > 0 {
            let n = left.min(ZEROS.len() as u64) as usize;
            self.stream.write_all(&ZEROS[..n])?;
            left -= n as u64;
        }
        if let Some(e) = error {
            return Err(Trouble::Read(format!(
                "read error after {stored} of {} ({e}); the rest is stored as zeros",
                counted(header.size, "byte", "bytes")
            )));
        }
        if missing > 0 {
            return Err(Trouble::Read(format!(
                "shrank by {} while being read; stored padded with zeros to its size of {}",
                counted(missing, "byte", "bytes"),
                counted(header.size, "byte", "bytes")
            )));
        }
        if grew {
            return Err(Trouble::Read(format!(
                "grew while being read; stored its first {}",
                counted(header.size, "byte", "bytes")
            )));
        }
        Ok(())
    }
}
