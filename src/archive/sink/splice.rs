//! A large file's data moved into a plain archive by the kernel (`splice`): from the page
//! cache, through a pipe, to the disk with direct I/O, page by page, without a copy into
//! our memory. Reading every file into the batches was most of a backup's CPU time, and
//! on a busy machine a backup short of CPU falls behind the disk.
//!
//! Only where it cannot change a byte of the archive, nor how it is written: a plain
//! archive written with direct I/O, on a file system whose direct I/O takes offsets and
//! lengths of a tar block (an entry's data starts on one), for whole pages of a file (the
//! rest, and anything the kernel would not move, goes through the batches as before).
//! The stream hands the writer everything queued and waits for it first, so that the
//! archive's offset is the stream's; the writer is told of what went past it.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, SpliceFFlags, fcntl, splice};

/// The pipe's capacity asked for: what one move takes at most, as a batch.
const PIPE: usize = 1 << 20;

/// The most a file system may ask of direct I/O's offsets for this to be used: a tar
/// block, since that is where an entry's data starts.
const BLOCK: u32 = 512;

/// The page size the pieces moved are whole multiples of, from the file's start: the
/// pipe then holds whole pages, aligned as direct I/O wants its memory.
pub(super) const PAGE: u64 = 4096;

/// What moves file data into the archive.
pub(super) struct Splicer {
    /// The archive, through a descriptor of its own that shares the writer's offset and
    /// flags (direct I/O on or off).
    out: File,
    /// The pipe the pages go through.
    from_pipe: OwnedFd,
    to_pipe: OwnedFd,
    /// The pipe's capacity, a multiple of [`PAGE`].
    capacity: usize,
    /// Set when the kernel refused a move into the archive: the rest of it goes through
    /// the batches.
    refused: bool,
}

/// What one move did: bytes taken from the file that went into the archive, then bytes
/// taken from it that could not go this way (the file ended within a page, or direct I/O
/// refused them), for the stream to write. Neither: nothing was taken, read it instead.
#[derive(Default)]
pub(super) struct Moved {
    pub(super) archived: usize,
    pub(super) spilled: Vec<u8>,
}

impl Splicer {
    /// A splicer for the plain archive `file`, if its file system's direct I/O allows.
    pub(super) fn new(file: &File) -> Option<Self> {
        if !takes_blocks(file) {
            return None;
        }
        let out = file.try_clone().ok()?;
        let (from_pipe, to_pipe) = nix::unistd::pipe2(OFlag::O_CLOEXEC).ok()?;
        // The capacity granted may be less than asked (a lower limit for this user).
        let granted = fcntl(&to_pipe, FcntlArg::F_SETPIPE_SZ(PIPE as i32))
            .or_else(|_| fcntl(&to_pipe, FcntlArg::F_GETPIPE_SZ))
            .ok()?;
        let capacity = usize::try_from(granted).ok()? / PAGE as usize * PAGE as usize;
        (capacity > 0).then_some(Splicer {
            out,
            from_pipe,
            to_pipe,
            capacity,
            refused: false,
        })
    }

    /// Whether moves go straight to the disk now: the writer turns direct I/O off for
    /// good when the file system refuses a write, and then this is of no use.
    pub(super) fn usable(&self) -> bool {
        !self.refused
            && fcntl(&self.out, FcntlArg::F_GETFL)
                .is_ok_and(|flags| OFlag::from_bits_retain(flags).contains(OFlag::O_DIRECT))
    }

    /// Moves at most `len` bytes of `file`, from its offset (a multiple of [`PAGE`]),
    /// into the archive at its offset, which the caller has made the stream's. A read
    /// error of `file` moves nothing (reading it again tells the error); a write error of
    /// the archive is an error.
    pub(super) fn move_from(&mut self, file: &File, len: u64) -> io::Result<Moved> {
        let want = usize::try_from(len)
            .unwrap_or(usize::MAX)
            .min(self.capacity);
        let taken = loop {
            match splice(
                file,
                None,
                &self.to_pipe,
                None,
                want,
                SpliceFFlags::SPLICE_F_MOVE,
            ) {
                Ok(0) => return Ok(Moved::default()),
                Ok(n) => break n,
                Err(Errno::EINTR) => {}
                // The file system cannot splice, or the file cannot be read: the read
                // that follows does it, or says why not.
                Err(_) => return Ok(Moved::default()),
            }
        };
        // A file that ended within a page leaves a piece direct I/O would refuse.
        if taken as u64 % u64::from(BLOCK) != 0 {
            return self.spill(taken, 0);
        }
        let mut written = 0;
        while written < taken {
            match splice(
                &self.from_pipe,
                None,
                &self.out,
                None,
                taken - written,
                SpliceFFlags::SPLICE_F_MOVE,
            ) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => written += n,
                Err(Errno::EINTR) => {}
                // Direct I/O refused this piece: it and the rest of the archive go
                // through the batches.
                Err(Errno::EINVAL) => {
                    self.refused = true;
                    return self.spill(taken, written);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Moved {
            archived: taken,
            spilled: Vec::new(),
        })
    }

    /// What was left in the pipe when `written` of the `taken` bytes had gone into the
    /// archive, read back.
    fn spill(&mut self, taken: usize, written: usize) -> io::Result<Moved> {
        let mut spilled = vec![0; taken - written];
        let mut got = 0;
        while got < spilled.len() {
            match nix::unistd::read(self.from_pipe.as_fd(), &mut spilled[got..]) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => got += n,
                Err(Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Moved {
            archived: written,
            spilled,
        })
    }
}

/// Whether direct I/O on `file` takes offsets and lengths of a tar block, and memory of a
/// page, as its file system says (`statx`'s `STATX_DIOALIGN`); false where it cannot say.
fn takes_blocks(file: &File) -> bool {
    use std::os::fd::AsRawFd;
    let mut stat = std::mem::MaybeUninit::<libc::statx>::zeroed();
    // SAFETY: statx writes at most a `struct statx` into `stat`, which has room for one;
    // the empty path with AT_EMPTY_PATH names the descriptor itself.
    let done = unsafe {
        libc::statx(
            file.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            libc::STATX_DIOALIGN,
            stat.as_mut_ptr(),
        )
    };
    if done != 0 {
        return false;
    }
    // SAFETY: statx succeeded, so it filled `stat` (zeroed first: fields it did not
    // fill read as 0, which is refused below).
    let stat = unsafe { stat.assume_init() };
    stat.stx_mask & libc::STATX_DIOALIGN != 0
        && stat.stx_dio_offset_align != 0
        && stat.stx_dio_offset_align <= BLOCK
        && stat.stx_dio_mem_align != 0
        && u64::from(stat.stx_dio_mem_align) <= PAGE
}
