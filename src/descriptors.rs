//! The descriptors a process inherits, and those it passes on.
//!
//! A descriptor left open by a caller (`out=$(backup_manager start 9>&1)`: the pipe of the
//! command substitution as descriptor 9) stays open in every process started after it,
//! unless closed: the service would keep the caller waiting for an end of file that never
//! comes, and a hook could read or write what its caller had open.

use std::os::fd::RawFd;

use nix::libc;

/// Closes every descriptor above 2 but `keep` (the service's ready pipe), for a process
/// that has just started and has opened nothing of its own yet.
pub fn close_inherited(keep: Option<RawFd>) {
    let ranges = match keep {
        Some(keep) if keep > 2 => [(3, keep - 1), (keep + 1, RawFd::MAX)],
        _ => [(3, RawFd::MAX), (0, -1)],
    };
    for (first, last) in ranges {
        if first <= last && !close_range(first, last, 0) {
            close_each(first, last);
        }
    }
}

/// `close_range(2)`; `false` where the kernel has none (before Linux 5.9).
fn close_range(first: RawFd, last: RawFd, flags: libc::c_uint) -> bool {
    // SAFETY: close_range takes two descriptor numbers and flags and touches no memory;
    // nothing in this process is using the descriptors it closes (see the callers).
    let rc = unsafe { libc::syscall(libc::SYS_close_range, first as u32, last as u32, flags) };
    rc == 0
}

/// Closes the open descriptors from `first` to `last`, as listed in `/proc/self/fd`.
fn close_each(first: RawFd, last: RawFd) {
    let Ok(listing) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    // Listed first and closed after, so that the listing's own descriptor is closed by
    // its drop rather than under it.
    let open: Vec<RawFd> = listing
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    for fd in open.into_iter().filter(|fd| (first..=last).contains(fd)) {
        // SAFETY: closing a descriptor nothing in this process uses (see the callers);
        // the one that listed them is gone already, or gets EBADF.
        unsafe {
            libc::close(fd);
        }
    }
}

/// What a child needs to mark every descriptor above 2 close-on-exec between fork and
/// exec, computed before the fork (nothing may allocate after it).
#[derive(Debug, Clone, Copy)]
pub struct CloseOnExec {
    /// The highest descriptor number to mark where `close_range` is missing.
    limit: RawFd,
}

impl CloseOnExec {
    /// Reads the descriptor limit, for the fallback of [`CloseOnExec::apply`].
    pub fn prepare() -> Self {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit fills in the struct it is given, which lives on our stack.
        let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
        let limit = if rc == 0 {
            limit.rlim_cur.min(1 << 20) as RawFd
        } else {
            1024
        };
        Self { limit }
    }

    /// Marks every descriptor above 2 close-on-exec, in a forked child. Marked rather than
    /// closed, so that the error pipe of the standard library's spawn still reports a
    /// failed exec.
    ///
    /// Async-signal-safe: system calls only.
    pub fn apply(self) {
        if close_range(3, RawFd::MAX, libc::CLOSE_RANGE_CLOEXEC) {
            return;
        }
        for fd in 3..self.limit {
            // SAFETY: F_SETFD on a descriptor number, open or not, touches no memory.
            unsafe {
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            }
        }
    }
}
