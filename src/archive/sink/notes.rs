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

/// How many bytes of dumpdir listings a lot holds before it goes, however few its
/// entries: a folder of many children lists them all, and each lot that exists could
/// otherwise keep hundreds of such listings. A buffer grown larger than this is freed
/// when its lot comes back, rather than kept for the next entry.
const LOT_BYTES: usize = 1 << 20;

/// How many full lots may wait for the index's thread: what bounds the memory they take
/// when it is slower than the walk.
const WAITING: usize = 4;

/// Entries noted, the first `used` of them; the others are buffers to fill.
#[derive(Default)]
struct Lot {
    entries: Vec<Entry>,
    used: usize,
    /// The bytes of the listings of those noted.
    listed: usize,
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
        lot.listed += listing.len();
        (lot.used < LOT && lot.listed < LOT_BYTES) || self.send()
    }

    /// Sends the lot being filled, and takes an emptied one (or a new one, while fewer
    /// than can exist do) to fill next. False when the index's thread stopped.
    pub(super) fn send(&mut self) -> bool {
        let next = match self.emptied.try_recv() {
            Ok(mut lot) => {
                for entry in &mut lot.entries[..lot.used] {
                    if entry.listing.capacity() > LOT_BYTES {
                        entry.listing = Vec::new();
                    }
                }
                Lot {
                    used: 0,
                    listed: 0,
                    ..lot
                }
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tar::Kind;

    #[test]
    fn a_lot_of_large_listings_goes_before_it_is_full() {
        let (mut noter, notes) = channel();
        let (small, large) = (vec![b'Y'; 100], vec![b'Y'; LOT_BYTES + 1]);
        for (i, listing) in [&small, &large, &small].into_iter().enumerate() {
            let header = Header::new(format!("dir{i}").into_bytes(), Kind::DUMPDIR);
            let at = i as u64 * 4096;
            assert!(noter.note(header, at, at + 512, listing));
        }
        // The large listing passed the lot's bytes: it went with two entries, the third
        // waits.
        let sent = notes.full.try_recv().expect("a lot sent");
        assert_eq!(sent.used, 2);
        assert_eq!(sent.entries[1].name, b"dir1");
        assert_eq!(sent.entries[1].listing, large);
        assert!(notes.full.try_recv().is_err());
        // Back, its grown buffer is freed before it is filled again; the others kept.
        notes.emptied.send(sent).unwrap();
        assert!(noter.send());
        let refilled = &noter.lot;
        assert_eq!((refilled.used, refilled.listed), (0, 0));
        let kept: Vec<bool> = refilled
            .entries
            .iter()
            .map(|e| e.listing.capacity() > 0)
            .collect();
        assert_eq!(kept, [true, false]);
    }
}
