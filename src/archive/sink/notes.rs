//! The entries the walk writes, noted for the index's thread: each one as the index
//! keeps it, made from its header as a reader reads it back ([`Header::stored`]) and
//! where it is in the tar stream.
//!
//! Notes go over in lots, and each lot comes back to the walk once read, to be filled
//! again in the same buffers. The walk frees each header at once, as it does when no
//! index is made: headers kept by the thousand until read would take the allocator off
//! its fast path, at a cost larger than the index's own work.

use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};

use anyhow::Result;

use crate::index::Entry;
use crate::tar::Header;

/// How many entries a lot holds.
const LOT: usize = 256;

/// How many full lots may wait for the index's thread: what bounds the memory they take
/// when it is slower than the walk.
const WAITING: usize = 4;

/// Entries noted, the first `used` of them; the others are buffers to fill.
#[derive(Default)]
struct Lot {
    entries: Vec<Entry>,
    used: usize,
}

/// The walk's end: the lot being filled.
pub(super) struct Noter {
    lot: Lot,
    full: SyncSender<Lot>,
    emptied: Receiver<Lot>,
}

/// The index's end: the entries the walk wrote, in order, until it is done.
pub struct Notes {
    full: Receiver<Lot>,
    emptied: SyncSender<Lot>,
}

/// The two ends of the way notes go.
pub(super) fn channel() -> (Noter, Notes) {
    let (full, queued) = sync_channel(WAITING);
    // Room for every lot that can exist but the one being filled: a new one is made
    // only when none is back, so there are at most those waiting, the one being read,
    // and two at the walk. The index's thread never waits to give one back.
    let (back, emptied) = sync_channel(WAITING + 2);
    let noter = Noter {
        lot: Lot::default(),
        full,
        emptied,
    };
    let notes = Notes {
        full: queued,
        emptied: back,
    };
    (noter, notes)
}

impl Noter {
    /// Notes the entry `header` (as given to [`Header::encode`]), which starts at `at`
    /// in the tar stream and whose data starts at `data_at`, with a dumpdir's
    /// `listing`. False when the index's thread stopped (it failed, and says why).
    pub(super) fn note(&mut self, header: Header, at: u64, data_at: u64, listing: &[u8]) -> bool {
        let lot = &mut self.lot;
        if lot.used == lot.entries.len() {
            lot.entries.push(Entry::default());
        }
        lot.entries[lot.used].fill(&header.stored(), at, data_at, listing);
        lot.used += 1;
        lot.used < LOT || self.send()
    }

    /// Sends the lot being filled, and takes an emptied one (or a new one, while fewer
    /// than can exist do) to fill next. False when the index's thread stopped.
    pub(super) fn send(&mut self) -> bool {
        let next = match self.emptied.try_recv() {
            Ok(lot) => Lot { used: 0, ..lot },
            Err(TryRecvError::Empty) => Lot::default(),
            Err(TryRecvError::Disconnected) => return false,
        };
        let lot = std::mem::replace(&mut self.lot, next);
        self.full.send(lot).is_ok()
    }
}

impl Notes {
    /// Gives each entry, in the order written, to `each`, until the walk is done or
    /// `each` fails.
    pub fn for_each(self, each: &mut dyn FnMut(&Entry) -> Result<()>) -> Result<()> {
        for lot in &self.full {
            for entry in &lot.entries[..lot.used] {
                each(entry)?;
            }
            // To be filled again by the walk; gone, it is freed here.
            let _ = self.emptied.send(lot);
        }
        Ok(())
    }
}
