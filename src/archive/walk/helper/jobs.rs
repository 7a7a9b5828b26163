//! What the walk hands the helper thread: a large folder's names to `stat` ([`Job`]), a
//! folder to list ahead ([`ListJob`]), and the one-item mailbox a job waits in
//! ([`Slot`]).

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::thread::Thread;

use nix::dir::Dir;

use super::super::list::{Listed, Listing, list, open_dir};
use super::{CHUNK, Stat, is_local, lock, stat};

/// A large folder's names to `stat`, shared by both threads a [`CHUNK`] at a time.
pub(super) struct Job {
    /// The folder: a descriptor of the job's own, so that the job owns all it uses.
    pub(super) dir: OwnedFd,
    pub(super) names: Listing,
    /// Where the next chunk not yet taken starts.
    pub(super) next: AtomicUsize,
    /// What the helper thread did: each name it took, by its place, with its `stat`.
    pub(super) theirs: Mutex<Vec<(usize, Stat)>>,
}

impl Job {
    /// Takes chunks until none is left; gives back each name taken, by its place, with
    /// its `stat`.
    pub(super) fn work(&self) -> Vec<(usize, Stat)> {
        let mut done = Vec::new();
        loop {
            let from = self.next.fetch_add(CHUNK, Ordering::Relaxed);
            let Some(chunk) = self.names.get(from..) else {
                return done;
            };
            for (i, (name, _)) in chunk.iter().take(CHUNK).enumerate() {
                done.push((from + i, stat(self.dir.as_fd(), name)));
            }
        }
    }
}

/// A one-item mailbox: the walk puts, and either thread takes.
pub(super) struct Slot<T> {
    pub(super) item: Mutex<Option<T>>,
    /// Whether `item` holds something: read without the lock while waiting.
    pub(super) full: AtomicBool,
}

impl<T> Slot<T> {
    pub(super) fn new() -> Self {
        Slot {
            item: Mutex::new(None),
            full: AtomicBool::new(false),
        }
    }

    pub(super) fn put(&self, item: T) {
        *lock(&self.item) = Some(item);
        self.full.store(true, Ordering::Release);
    }

    /// The item, if there is one now: cheap when there is none.
    pub(super) fn take(&self) -> Option<T> {
        if !self.full.swap(false, Ordering::Acquire) {
            return None;
        }
        lock(&self.item).take()
    }

    /// The item, if there is one now, whatever `full` says.
    pub(super) fn take_back(&self) -> Option<T> {
        self.full.store(false, Ordering::Relaxed);
        lock(&self.item).take()
    }
}

/// A folder to list ahead of the walk.
pub(super) struct ListJob {
    /// The folder it is in (a descriptor of the job's own), and its name.
    pub(super) parent: OwnedFd,
    pub(super) name: CString,
    /// [`QUEUED`], [`LISTING`], [`TAKEN`] or [`READY`].
    pub(super) state: AtomicU8,
    /// The opened folder and its listing, once [`READY`]; `None` if it could not be
    /// opened (the walk then tries itself, and reports why) or is not on a [`LOCAL`](super::LOCAL)
    /// file system.
    pub(super) result: Mutex<Option<(Dir, Listed)>>,
}

/// Asked for, not begun.
pub(super) const QUEUED: u8 = 0;
/// Being listed by the thread.
pub(super) const LISTING: u8 = 1;
/// Taken back by the walk before the thread began it: the thread passes it by.
pub(super) const TAKEN: u8 = 2;
/// Listed by the thread.
pub(super) const READY: u8 = 3;

impl ListJob {
    /// Lists the folder, unless the walk took it back first; wakes the walk when done.
    pub(super) fn run(&self, exclude: &[(u64, u64)], walker: &Thread) {
        if self
            .state
            .compare_exchange(QUEUED, LISTING, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        // Not listed on a file system that is not local: the walk lists it itself.
        let result = open_dir(self.parent.as_fd(), &self.name)
            .ok()
            .filter(|dir| is_local(dir.as_fd()))
            .map(|mut dir| {
                let listed = list(&mut dir, exclude);
                (dir, listed)
            });
        *lock(&self.result) = result;
        self.state.store(READY, Ordering::Release);
        walker.unpark();
    }
}
