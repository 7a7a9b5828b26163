//! `stat` of a folder's children on two threads.
//!
//! An incremental backup must `stat` every file of the tree to tell what changed, and on
//! a tree of small files that is most of its time: a few microseconds each, spent in the
//! kernel's path lookup. The walk hands the second half of each large folder's names to
//! one long-lived thread and does the first half itself, so both cores work on it. Small
//! folders are done in line, where handing them over would cost more than it saves.
//!
//! The two threads meet once per large folder, a few hundred microseconds apart. Waking
//! a sleeping thread costs tens of microseconds on a virtual machine, a good part of
//! what is shared; so each side, when it finds nothing to take, first waits briefly
//! without sleeping ([`Slot::take`]), and only then sleeps until woken.

use std::ffi::CString;
use std::marker::PhantomData;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use nix::dir::Type;
use nix::fcntl::AtFlags;
use nix::sys::stat::{FileStat, fstatat};

/// Folders with fewer children than this are done on the walk's thread alone.
const SPLIT_FROM: usize = 64;

/// How long a thread with nothing to take waits awake before it sleeps: longer than the
/// walk usually spends between two large folders, short enough not to matter where
/// large folders are rare.
const SPIN: Duration = Duration::from_micros(500);

/// A folder's children as listed: name and, when the listing tells it, type.
pub(super) type Listing = Vec<(CString, Option<Type>)>;

/// What a child's `stat` gave.
pub(super) type Stat = nix::Result<FileStat>;

/// The names to stat in a folder, and the folder (its own descriptor, so that the job
/// owns all it uses).
struct Job {
    dir: OwnedFd,
    names: Listing,
}

/// The thread's answer: the names back, each with its `stat`.
struct Done {
    names: Listing,
    stats: Vec<Stat>,
}

/// A one-item mailbox between two threads: one puts, the other takes.
struct Slot<T> {
    item: Mutex<Option<T>>,
    /// Whether `item` holds something: read without the lock while waiting.
    full: AtomicBool,
}

impl<T> Slot<T> {
    fn new() -> Self {
        Slot {
            item: Mutex::new(None),
            full: AtomicBool::new(false),
        }
    }

    /// Puts `item` in and wakes `taker` if it sleeps.
    fn put(&self, item: T, taker: &Thread) {
        *self.item.lock().unwrap_or_else(|e| e.into_inner()) = Some(item);
        self.full.store(true, Ordering::Release);
        // Only a sleeping thread costs a system call to wake.
        taker.unpark();
    }

    /// The item, if there is one now.
    fn take_now(&self) -> Option<T> {
        self.full.store(false, Ordering::Relaxed);
        self.item.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Waits for an item, awake for [`SPIN`] and then asleep; `None` once `stop` is set
    /// and the slot is empty. Spurious wake-ups just look again.
    fn take(&self, stop: &AtomicBool) -> Option<T> {
        let started = Instant::now();
        let mut spins = 0u32;
        loop {
            if self.full.load(Ordering::Acquire) {
                return self.take_now();
            }
            if stop.load(Ordering::Acquire) {
                return None;
            }
            spins = spins.wrapping_add(1);
            if spins % 64 != 0 || started.elapsed() < SPIN {
                std::hint::spin_loop();
            } else {
                std::thread::park();
            }
        }
    }
}

/// What the walk's thread and the stat thread share.
struct Shared {
    jobs: Slot<Job>,
    done: Slot<Done>,
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

/// Stats the children of folders, on a second thread as well as the caller's when a
/// folder is large. The thread starts with the first large folder and ends on drop.
#[derive(Default)]
pub(super) struct Stats {
    worker: Option<Worker>,
    /// Whether the thread could not be started or stopped: then all is done in line.
    alone: bool,
    /// The thread wakes the one that started it with each answer: so that this is the
    /// one that waits, `Stats` stays on it (a raw pointer is neither `Send` nor `Sync`).
    _one_thread: PhantomData<*const ()>,
}

impl Stats {
    /// `stat`s (without following links) each child of `dir` in `listed`; gives back
    /// the listing, in its order, with each child's result.
    pub(super) fn all(
        &mut self,
        dir: BorrowedFd<'_>,
        mut listed: Listing,
    ) -> Result<(Listing, Vec<Stat>)> {
        if listed.len() < SPLIT_FROM || self.worker().is_none() {
            let stats = stat_each(dir, &listed);
            return Ok((listed, stats));
        }
        // Out of descriptors, say: do it all here.
        let Ok(dir_copy) = dir.try_clone_to_owned() else {
            let stats = stat_each(dir, &listed);
            return Ok((listed, stats));
        };
        let worker = self.worker.as_ref().expect("started above");
        let second = listed.split_off(listed.len() / 2);
        worker.shared.jobs.put(
            Job {
                dir: dir_copy,
                names: second,
            },
            worker.thread.thread(),
        );
        let mut stats = stat_each(dir, &listed);
        if let Some(Done {
            names,
            stats: theirs,
        }) = worker.shared.done.take(&worker.shared.gone)
        {
            listed.extend(names);
            stats.extend(theirs);
            return Ok((listed, stats));
        }
        // The thread ends only when told to, short of a bug. If it never took the job,
        // the names are still there: do them here, and from now on all folders.
        self.alone = true;
        let left = self
            .worker
            .take()
            .and_then(|worker| worker.shared.jobs.take_now());
        let Some(Job { names, .. }) = left else {
            // Its half of the names went with it, and a folder listed without them would
            // have them deleted on extraction: the backup stops instead.
            bail!("the thread reading files' status stopped");
        };
        stats.extend(stat_each(dir, &names));
        listed.extend(names);
        Ok((listed, stats))
    }

    /// The stat thread, started on first use.
    fn worker(&mut self) -> Option<&Worker> {
        if self.worker.is_none() && !self.alone {
            self.worker = start();
            self.alone = self.worker.is_none();
        }
        self.worker.as_ref()
    }
}

impl Drop for Stats {
    fn drop(&mut self) {
        if let Some(Worker { shared, thread }) = self.worker.take() {
            shared.stop.store(true, Ordering::Release);
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

fn start() -> Option<Worker> {
    let shared = Arc::new(Shared {
        jobs: Slot::new(),
        done: Slot::new(),
        stop: AtomicBool::new(false),
        gone: AtomicBool::new(false),
    });
    let walker = std::thread::current();
    let theirs = Arc::clone(&shared);
    let thread = std::thread::Builder::new()
        .name("stat".into())
        .spawn(move || {
            let _gone = Gone(Arc::clone(&theirs), walker.clone());
            while let Some(Job { dir, names }) = theirs.jobs.take(&theirs.stop) {
                let stats = stat_each(dir.as_fd(), &names);
                theirs.done.put(Done { names, stats }, &walker);
            }
        })
        .ok()?;
    Some(Worker { shared, thread })
}

fn stat_each(dir: BorrowedFd<'_>, names: &Listing) -> Vec<Stat> {
    names
        .iter()
        .map(|(name, _)| fstatat(dir, name.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW))
        .collect()
}
