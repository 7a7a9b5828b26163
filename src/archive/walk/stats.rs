//! `stat` of a folder's children on two threads.
//!
//! An incremental backup must `stat` every file of the tree to tell what changed, and on
//! a tree of small files that is most of its time: a few microseconds each, spent in the
//! kernel's path lookup. The walk hands the second half of each large folder's names to
//! one long-lived thread and does the first half itself, so both cores work on it. Small
//! folders are done in line, where waking the thread would cost more than it saves.

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

use anyhow::{Context, Result};
use nix::dir::Type;
use nix::fcntl::AtFlags;
use nix::sys::stat::{FileStat, fstatat};

/// Folders with fewer children than this are done on the walk's thread alone.
const SPLIT_FROM: usize = 64;

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

struct Worker {
    jobs: SyncSender<Job>,
    done: Receiver<Done>,
    thread: JoinHandle<()>,
}

/// Stats the children of folders, on a second thread as well as the caller's when a
/// folder is large. The thread starts with the first large folder and ends on drop.
#[derive(Default)]
pub(super) struct Stats {
    worker: Option<Worker>,
}

impl Stats {
    /// `stat`s (without following links) each child of `dir` in `listed`; gives back
    /// the listing, in its order, with each child's result.
    pub(super) fn all(
        &mut self,
        dir: BorrowedFd<'_>,
        mut listed: Listing,
    ) -> Result<(Listing, Vec<Stat>)> {
        if listed.len() < SPLIT_FROM {
            let stats = stat_each(dir, &listed);
            return Ok((listed, stats));
        }
        let second = listed.split_off(listed.len() / 2);
        let job = match dir.try_clone_to_owned() {
            Ok(dir) => Job { dir, names: second },
            // Out of descriptors, say: do it all here.
            Err(_) => {
                listed.extend(second);
                let stats = stat_each(dir, &listed);
                return Ok((listed, stats));
            }
        };
        if let Err(job) = self.send(job) {
            listed.extend(job.names);
            let stats = stat_each(dir, &listed);
            return Ok((listed, stats));
        }
        let mut stats = stat_each(dir, &listed);
        let worker = self.worker.as_ref().expect("a job was sent to the thread");
        // The thread ends only when told to, short of a bug; should it have, its half of
        // the names went with it, and a folder listed without them would have them
        // deleted on extraction: the backup stops instead.
        let Done {
            names,
            stats: theirs,
        } = worker
            .done
            .recv()
            .context("the thread reading files' status stopped")?;
        listed.extend(names);
        stats.extend(theirs);
        Ok((listed, stats))
    }

    /// Hands `job` to the thread, starting it if need be; gives the job back if there is
    /// no thread to take it.
    fn send(&mut self, job: Job) -> std::result::Result<(), Job> {
        if self.worker.is_none() {
            self.worker = start();
        }
        let sent = match &self.worker {
            Some(worker) => worker.jobs.send(job),
            None => return Err(job),
        };
        sent.map_err(|mpsc::SendError(job)| {
            self.worker = None;
            job
        })
    }
}

impl Drop for Stats {
    fn drop(&mut self) {
        if let Some(Worker { jobs, done, thread }) = self.worker.take() {
            // Closing the channel ends the thread's loop.
            drop(jobs);
            drop(done);
            let _ = thread.join();
        }
    }
}

fn start() -> Option<Worker> {
    let (jobs, job_rx) = mpsc::sync_channel::<Job>(1);
    let (done_tx, done) = mpsc::sync_channel::<Done>(1);
    let thread = std::thread::Builder::new()
        .name("stat".into())
        .spawn(move || {
            for Job { dir, names } in job_rx {
                let stats = stat_each(dir.as_fd(), &names);
                if done_tx.send(Done { names, stats }).is_err() {
                    break;
                }
            }
        })
        .ok()?;
    Some(Worker { jobs, done, thread })
}

fn stat_each(dir: BorrowedFd<'_>, names: &Listing) -> Vec<Stat> {
    names
        .iter()
        .map(|(name, _)| fstatat(dir, name.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW))
        .collect()
}
