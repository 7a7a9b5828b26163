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

/// How many bytes of names, link targets and dumpdir listings a lot holds before it
/// goes, however few its entries: a folder of many children lists them all.
const LOT_BYTES: usize = 1 << 20;

/// How many such bytes may be in lots the index's thread has not given back: when more
/// would be, the walk waits for it. One entry larger than this goes alone.
const IN_FLIGHT: usize = 8 << 20;

/// The largest buffer an entry of a lot keeps for the next entry filled in it: a larger
/// one is freed when its lot comes back, so that what lots keep stays small whatever
/// went through them.
const KEPT: usize = 4 << 10;

/// How many full lots may wait for the index's thread.
const WAITING: usize = 4;

/// Entries noted, the first `used` of them; the others are buffers to fill.
#[derive(Default)]
struct Lot {
    entries: Vec<Entry>,
    used: usize,
    /// The bytes of the names, links and listings of those noted.
    bytes: usize,
}

impl Lot {
    /// This lot, read, made ready to be filled again: its large buffers freed.
    fn emptied(mut self) -> Lot {
        for entry in &mut self.entries[..self.used] {
            for buffer in [&mut entry.name, &mut entry.link, &mut entry.listing] {
                if buffer.capacity() > KEPT {
                    *buffer = Vec::new();
                }
            }
        }
        Lot {
            used: 0,
            bytes: 0,
            ..self
        }
    }
}

/// The walk's end: the lot being filled, lots back to fill next, and what is out.
pub(super) struct Noter {
    lot: Lot,
    spare: Vec<Lot>,
    /// How many lots went to the index's thread and are not back, and their bytes.
    out: usize,
    flying: usize,
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
    // Room for every lot there can be: a new one is made only when none is back, so
    // there are at most those waiting, the one being read, and two at the walk. The
    // index's thread never waits to give one back.
    let (back, emptied) = sync_channel(WAITING + 3);
    let noter = Noter {
        lot: Lot::default(),
        spare: Vec::new(),
        out: 0,
        flying: 0,
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
        lot.bytes += header.name.len() + header.link.len() + listing.len();
        lot.entries[lot.used].fill(&header.stored(), at, data_at, listing);
        lot.used += 1;
        (lot.used < LOT && lot.bytes < LOT_BYTES) || self.send()
    }

    /// Sends the lot being filled, first taking back the lots read (waiting for them
    /// while those out hold more than [`IN_FLIGHT`] bytes with it), and takes one of
    /// them, or a new one, to fill next. False when the index's thread stopped.
    pub(super) fn send(&mut self) -> bool {
        let bytes = self.lot.bytes;
        loop {
            let back = if self.out > 0 && self.flying + bytes > IN_FLIGHT {
                match self.emptied.recv() {
                    Ok(lot) => lot,
                    Err(_) => return false,
                }
            } else {
                match self.emptied.try_recv() {
                    Ok(lot) => lot,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return false,
                }
            };
            self.out -= 1;
            self.flying -= back.bytes;
            self.spare.push(back.emptied());
        }
        let next = self.spare.pop().unwrap_or_default();
        let lot = std::mem::replace(&mut self.lot, next);
        self.out += 1;
        self.flying += bytes;
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

    fn dumpdir(i: usize) -> Header {
        Header::new(format!("dir{i}").into_bytes(), Kind::DUMPDIR)
    }

    #[test]
    fn a_lot_of_large_listings_goes_before_it_is_full_and_its_buffers_are_freed() {
        let (mut noter, notes) = channel();
        let (small, large) = (vec![b'Y'; 100], vec![b'Y'; LOT_BYTES + 1]);
        for (i, listing) in [&small, &large, &small].into_iter().enumerate() {
            let at = i as u64 * 4096;
            assert!(noter.note(dumpdir(i), at, at + 512, listing));
        }
        // The large listing passed the lot's bytes: it went with two entries, the third
        // waits.
        let sent = notes.full.try_recv().expect("a lot sent");
        assert_eq!(sent.used, 2);
        assert_eq!(sent.entries[1].name, b"dir1");
        assert_eq!(sent.entries[1].listing, large);
        assert!(notes.full.try_recv().is_err());
        // Back, its large buffer is freed before it is filled again; the others kept.
        notes.emptied.send(sent).unwrap();
        assert!(noter.send());
        let refilled = &noter.lot;
        assert_eq!((refilled.used, refilled.bytes), (0, 0));
        let kept: Vec<bool> = refilled
            .entries
            .iter()
            .map(|e| e.listing.capacity() > 0)
            .collect();
        assert_eq!(kept, [true, false]);
        // Out now: the third entry, its name and listing.
        assert_eq!((noter.out, noter.flying), (1, 4 + 100));
    }

    #[test]
    fn the_walk_waits_while_the_lots_out_hold_more_than_their_budget() {
        let (mut noter, notes) = channel();
        let listing = vec![b'Y'; IN_FLIGHT / 3];
        // A reader that gives each lot back at once: the walk never holds more out than
        // the budget and one lot.
        let reader = std::thread::spawn(move || {
            let mut most = 0;
            let mut count = 0;
            notes
                .for_each(&mut |entry| {
                    count += 1;
                    most = most.max(entry.listing.len());
                    Ok(())
                })
                .unwrap();
            (count, most)
        });
        for i in 0..12 {
            assert!(noter.note(dumpdir(i), 0, 512, &listing));
            assert!(
                noter.flying <= IN_FLIGHT + listing.len(),
                "{}",
                noter.flying
            );
        }
        assert!(noter.send());
        drop(noter);
        assert_eq!(reader.join().unwrap(), (12, listing.len()));
    }
}
