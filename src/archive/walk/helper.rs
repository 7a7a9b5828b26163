//! A second thread for the walk of an incremental backup.
//!
//! An incremental backup must `stat` every file of the tree to tell what changed, and on
//! a tree of small files that is most of its time: a few microseconds each, spent in the
//! kernel's path lookup. The helper thread shares that work, and some of the rest:
//! - it `stat`s a large folder's children with the walk ([`Helper::all`]), each thread
//!   taking the next few names in turn, so that neither waits for the other however
//!   busy the machine keeps either core; small folders are done in line, where handing
//!   them over would cost more than it saves;
//! - it opens and lists the folders the walk will enter next ([`Helper::list_ahead`])
//!   while the walk is in the ones before. Only folders the walk has decided to enter
//!   are listed ahead, so nothing an exclude leaves out is opened sooner than without
//!   it. The thread does `stat`s first, since the walk waits for them, and lists while
//!   the walk compares a folder with the record. A listing made ahead is used only if
//!   the walk, when it gets there, finds the folder unchanged since ([`Listed::seen`]),
//!   and only on [`LOCAL`] file systems, whose `stat` is never answered from a cache;
//! - it closes the folders the walk is done with: closing a folder that was listed
//!   frees what the file system kept for the listing, which takes time too.
//!
//! Whichever thread starts a listing first does it: the walk never waits for one the
//! thread has not begun. The two threads meet once per folder, a few hundred
//! microseconds apart. Waking a sleeping thread costs tens of microseconds on a virtual
//! machine, a good part of what is shared; so each side, when it finds nothing to take,
//! first waits briefly without sleeping ([`wait`]), and only then sleeps until woken.

use std::cell::Cell;
use std::ffi::CStr;
use std::marker::PhantomData;
use std::os::fd::BorrowedFd;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use nix::dir::Dir;
use nix::fcntl::AtFlags;
use nix::sys::stat::{FileStat, fstatat};
use nix::sys::statfs::{self, FsType, fstatfs};

use super::list::{Listed, Listing};
use jobs::{Job, ListJob, QUEUED, READY, Slot, TAKEN};

mod jobs;

/// Folders with fewer children than this are `stat`ed on the walk's thread alone.
const SPLIT_FROM: usize = 64;

/// How many names a thread takes at a time from a shared folder: enough that taking
/// them costs little against their `stat`s, few enough that the last ones taken keep
/// the other thread waiting only briefly.
const CHUNK: usize = 16;

/// How many folders may wait to be closed before the thread is woken to close them.
const CLOSE_BATCH: usize = 8;

/// How many folders may wait to be closed at most: beyond, the walk closes them itself.
/// With [`AHEAD_MAX`], this bounds the descriptors the thread adds to the walk's one per
/// level (about 32), so that a deep tree does not run out of them under a low limit.
const CLOSE_MAX: usize = 16;

/// How many folders may be asked for ahead at once, over all levels of the walk: each
/// holds up to two descriptors.
const AHEAD_MAX: usize = 8;

/// How long a thread with nothing to take waits awake before it sleeps: longer than the
/// walk usually spends between two large folders, short enough not to matter where
/// large folders are rare.
const SPIN: Duration = Duration::from_micros(500);

/// The file systems on which folders are listed ahead: local ones, whose folders' times
/// a `stat` reads from the file system itself. On a network or FUSE file system it may
/// read them from a cache that another machine's changes have not reached yet, and a
/// folder changed since it was listed would look unchanged.
const LOCAL: [FsType; 8] = [
    statfs::EXT4_SUPER_MAGIC, // and ext2, ext3
    statfs::XFS_SUPER_MAGIC,
    statfs::BTRFS_SUPER_MAGIC,
    statfs::TMPFS_MAGIC,
    statfs::F2FS_SUPER_MAGIC,
    statfs::OVERLAYFS_SUPER_MAGIC, // a container's root, whose layers are local
    FsType(0x2fc1_2fc1_u32 as _),  // ZFS
    FsType(0xca45_1a4e_u32 as _),  // bcachefs
];

/// What a child's `stat` gave.
pub(super) type Stat = nix::Result<FileStat>;

/// The walk's claim on a folder asked to be listed ahead: given back to
/// [`Helper::listed`] when the walk gets there. Dropped unused, the listing is called
/// off if not begun.
pub(super) struct Ahead {
    job: Arc<ListJob>,
    /// Where the job waits for the thread.
    shared: Arc<Shared>,
    /// The count of claims not yet given back or dropped, shared with the [`Helper`].
    out: Rc<Cell<usize>>,
}

impl Ahead {
    /// Takes the job back if the thread has not begun it: true if so. It then leaves
    /// the thread's stack at once, with the descriptor it holds.
    fn take_back(&self) -> bool {
        let taken = self
            .job
            .state
            .compare_exchange(QUEUED, TAKEN, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok();
        if taken {
            lock(&self.shared.lists).retain(|job| !Arc::ptr_eq(job, &self.job));
        }
        taken
    }
}

impl Drop for Ahead {
    fn drop(&mut self) {
        self.out.set(self.out.get() - 1);
        self.take_back();
    }
}

/// What the walk's thread and the helper thread share.
struct Shared {
    jobs: Slot<Arc<Job>>,
    /// Folders to list ahead, the soonest needed (the deepest, asked for last) last.
    lists: Mutex<Vec<Arc<ListJob>>>,
    /// Folders the walk is done with, for the thread to close.
    closing: Mutex<Vec<Dir>>,
    /// Set whenever something is put in `jobs` or `lists`.
    work: AtomicBool,
    /// Set when the walk ends: the thread returns.
    stop: AtomicBool,
    /// Set when the thread has returned, for whatever reason.
    gone: AtomicBool,
}

/// Marks the thread gone and wakes the walk, however the thread ends.
struct Gone(Arc<Shared>, Thread);

impl Drop for Gone {
    fn drop(&mut self) {
        self.0.gone.store(true, Ordering::Release);
        self.1.unpark();
    }
}

struct Worker {
    shared: Arc<Shared>,
    thread: JoinHandle<()>,
}

/// The walk's side of the helper thread, which starts on first use and ends on drop.
pub(super) struct Helper {
    worker: Option<Worker>,
    /// Whether the thread could not be started, or ended before its time: then all is
    /// done in line.
    alone: bool,
    /// What folders listed ahead leave out, as the walk's own listings do.
    exclude: Vec<(u64, u64)>,
    /// How many folders are asked for ahead: at most [`AHEAD_MAX`].
    ahead: Rc<Cell<usize>>,
    /// The thread wakes the one that started it with each answer: so that this is the
    /// one that waits, `Helper` stays on it (a raw pointer is neither `Send` nor `Sync`).
    _one_thread: PhantomData<*const ()>,
}

impl Helper {
    /// A helper whose listings leave out what `exclude` names (device, inode).
    pub(super) fn new(exclude: Vec<(u64, u64)>) -> Self {
        Helper {
            worker: None,
            alone: false,
            exclude,
            ahead: Rc::new(Cell::new(0)),
            _one_thread: PhantomData,
        }
    }

    /// `stat`s (without following links) each child of `dir` in `listed`; gives back
    /// the listing, in its order, with each child's result.
    pub(super) fn all(&mut self, dir: BorrowedFd<'_>, listed: Listing) -> (Listing, Vec<Stat>) {
        let shared = if listed.len() < SPLIT_FROM {
            None
        } else {
            self.worker().map(|worker| Arc::clone(&worker.shared))
        };
        // Out of descriptors, say: do it all here.
        let dir_copy = shared.as_ref().and_then(|_| dir.try_clone_to_owned().ok());
        let (Some(shared), Some(dir_copy)) = (shared, dir_copy) else {
            let stats = listed.iter().map(|(name, _)| stat(dir, name)).collect();
            return (listed, stats);
        };
        let mut job = Arc::new(Job {
            dir: dir_copy,
            names: listed,
            next: AtomicUsize::new(0),
            theirs: Mutex::new(Vec::new()),
        });
        shared.jobs.put(Arc::clone(&job));
        self.wake();
        let mine = job.work();
        // Taken back if the thread never took it; if it did, it lets go once its last
        // chunk is in (or it is gone, which lets go of all it held).
        drop(shared.jobs.take_back());
        let job = loop {
            match Arc::try_unwrap(job) {
                Ok(job) => break job,
                Err(held) => {
                    job = held;
                    wait(|| Arc::strong_count(&job) == 1, &shared.gone);
                }
            }
        };
        let theirs = job.theirs.into_inner().unwrap_or_else(|e| e.into_inner());
        let stats = merge(dir, &job.names, mine, theirs);
        (job.names, stats)
    }

    /// Asks for the folder `name` of `parent` to be opened and listed ahead of the walk,
    /// which is to take it with [`Helper::listed`]. `None` if there is no thread for it,
    /// or enough folders are asked for already.
    pub(super) fn list_ahead(&mut self, parent: BorrowedFd<'_>, name: &CStr) -> Option<Ahead> {
        if self.room() == 0 {
            return None;
        }
        let shared = Arc::clone(&self.worker()?.shared);
        let parent = parent.try_clone_to_owned().ok()?;
        let job = Arc::new(ListJob {
            parent,
            name: name.to_owned(),
            state: AtomicU8::new(QUEUED),
            result: Mutex::new(None),
        });
        lock(&shared.lists).push(Arc::clone(&job));
        self.wake();
        self.ahead.set(self.ahead.get() + 1);
        Some(Ahead {
            job,
            shared,
            out: Rc::clone(&self.ahead),
        })
    }

    /// How many more folders may be asked for ahead now.
    pub(super) fn room(&self) -> usize {
        AHEAD_MAX.saturating_sub(self.ahead.get())
    }

    /// The folder asked for by `ahead`, opened and listed; `None` when the walk is to do
    /// it itself: the thread had not begun it, could not open it, or is gone.
    pub(super) fn listed(&mut self, ahead: Ahead) -> Option<(Dir, Listed)> {
        if ahead.take_back() {
            return None;
        }
        let job = &ahead.job;
        let worker = self.worker.as_ref()?;
        wait(
            || job.state.load(Ordering::Acquire) == READY,
            &worker.shared.gone,
        );
        lock(&job.result).take()
    }

    /// Closes `dir`, which the walk is done with, on the thread if there is one; it
    /// does so when it has nothing else to do, and is told to once a few are waiting.
    pub(super) fn close(&mut self, dir: Dir) {
        let Some(worker) = self.running() else {
            return;
        };
        let waiting = {
            let mut closing = lock(&worker.shared.closing);
            if closing.len() >= CLOSE_MAX {
                return;
            }
            closing.push(dir);
            closing.len()
        };
        if waiting >= CLOSE_BATCH {
            self.wake();
        }
    }

    /// Tells the thread there is something for it.
    fn wake(&self) {
        if let Some(worker) = &self.worker {
            worker.shared.work.store(true, Ordering::Release);
            // Only a sleeping thread costs a system call to wake.
            worker.thread.thread().unpark();
        }
    }

    /// The helper thread, started on first use.
    fn worker(&mut self) -> Option<&Worker> {
        if self.worker.is_none() && !self.alone {
            self.worker = start(self.exclude.clone());
            self.alone = self.worker.is_none();
        }
        self.running()
    }

    /// The helper thread, if it is running. One that ended before its time (a bug) is
    /// not started again: what it did not do, the walk does, and from then on all.
    fn running(&mut self) -> Option<&Worker> {
        if self
            .worker
            .as_ref()
            .is_some_and(|worker| worker.shared.gone.load(Ordering::Acquire))
        {
            self.stop();
            self.alone = true;
        }
        self.worker.as_ref()
    }

    /// Stops the thread and waits for it.
    fn stop(&mut self) {
        if let Some(Worker { shared, thread }) = self.worker.take() {
            shared.stop.store(true, Ordering::Release);
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        self.stop();
    }
}

fn start(exclude: Vec<(u64, u64)>) -> Option<Worker> {
    let shared = Arc::new(Shared {
        jobs: Slot::new(),
        lists: Mutex::new(Vec::new()),
        closing: Mutex::new(Vec::new()),
        work: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        gone: AtomicBool::new(false),
    });
    let walker = std::thread::current();
    let theirs = Arc::clone(&shared);
    let thread = std::thread::Builder::new()
        .name("walk helper".into())
        .spawn(move || {
            let _gone = Gone(Arc::clone(&theirs), walker.clone());
            while wait(|| theirs.work.swap(false, Ordering::Acquire), &theirs.stop) {
                // `work` is cleared before looking, so anything put from now on sets it
                // again and is seen on the next round.
                loop {
                    // Stats first (see the module's comment).
                    if let Some(job) = theirs.jobs.take() {
                        let done = job.work();
                        *lock(&job.theirs) = done;
                        // Let go before waking the walk, which waits for just that.
                        drop(job);
                        walker.unpark();
                        continue;
                    }
                    let list = lock(&theirs.lists).pop();
                    if let Some(job) = list {
                        job.run(&exclude, &walker);
                        continue;
                    }
                    let closing = std::mem::take(&mut *lock(&theirs.closing));
                    if closing.is_empty() {
                        break;
                    }
                    drop(closing);
                }
            }
        })
        .ok()?;
    Some(Worker { shared, thread })
}

/// Waits until `ready()` holds, awake for [`SPIN`] and then asleep until woken; false if
/// `give_up` is set while it does not. Spurious wake-ups just look again.
fn wait(mut ready: impl FnMut() -> bool, give_up: &AtomicBool) -> bool {
    let started = Instant::now();
    let mut spins = 0u32;
    loop {
        if ready() {
            return true;
        }
        if give_up.load(Ordering::Acquire) {
            // What was done just before giving up still counts.
            return ready();
        }
        spins = spins.wrapping_add(1);
        if spins % 64 != 0 || started.elapsed() < SPIN {
            std::hint::spin_loop();
        } else {
            std::thread::park();
        }
    }
}

/// A lock that a panic elsewhere does not spoil: what it guards is replaced whole.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether `dir` is on a [`LOCAL`] file system.
fn is_local(dir: BorrowedFd<'_>) -> bool {
    fstatfs(dir).is_ok_and(|fs| LOCAL.contains(&fs.filesystem_type()))
}

/// The `stat` of `name` in `dir`, not following a link.
fn stat(dir: BorrowedFd<'_>, name: &CStr) -> Stat {
    fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
}

/// Every name's `stat`, in order, from what each thread did (each in its own order);
/// any name neither did (the helper thread went away with it) is done here.
fn merge(
    dir: BorrowedFd<'_>,
    names: &Listing,
    mine: Vec<(usize, Stat)>,
    theirs: Vec<(usize, Stat)>,
) -> Vec<Stat> {
    let mut mine = mine.into_iter().peekable();
    let mut theirs = theirs.into_iter().peekable();
    let mut stats = Vec::with_capacity(names.len());
    for (i, (name, _)) in names.iter().enumerate() {
        let done = if mine.peek().is_some_and(|(at, _)| *at == i) {
            mine.next()
        } else if theirs.peek().is_some_and(|(at, _)| *at == i) {
            theirs.next()
        } else {
            None
        };
        stats.push(done.map_or_else(|| stat(dir, name), |(_, stat)| stat));
    }
    stats
}

#[cfg(test)]
mod tests;
