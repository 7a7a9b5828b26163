//! The check pass's reading of an archive, on a thread of its own: parsing the headers
//! (checksums, numbers, pax records) costs about as much as checking them, and on two
//! cores the two overlap. Entries come in batches, in order, and a reading error comes
//! after the entries read before it, so that what is refused first does not change.
//! What is read ahead is bounded in bytes, as an entry may hold a folder listing or a
//! sparse map of many megabytes.

use std::io::Read;
use std::path::Path;
use std::sync::mpsc::{Sender, channel};
use std::sync::{Condvar, Mutex};

use anyhow::{Context, Result, anyhow};

use super::super::check::{MAX_FILE_SIZE, listing_of};
use super::kept::cost;
use crate::tar::{Header, Place, Reader};

/// Entries sent at a time at most: enough that the channel costs nothing beside the
/// parsing.
const BATCH: usize = 256;

/// A batch is sent once it takes this many bytes, whatever its count.
const BATCH_BYTES: usize = 1 << 20;

/// The most bytes of entries read ahead of the check (but one batch, which may be one
/// large entry, always goes).
const AHEAD_BYTES: usize = 16 << 20;

/// One entry as read: its header, where its data is, and a folder listing's bytes.
pub struct Parsed {
    pub header: Header,
    pub place: Place,
    pub listing: Option<Vec<u8>>,
}

impl Parsed {
    /// The bytes it takes, near enough.
    fn cost(&self) -> usize {
        cost(&self.header) + self.listing.as_ref().map_or(0, Vec::capacity)
    }
}

/// A batch of entries, and the bytes it takes.
type Batch = (Result<Vec<Parsed>>, usize);

/// The bytes read ahead and not yet checked, and whether the check is done with them.
#[derive(Default)]
struct ReadAhead {
    state: Mutex<(usize, bool)>,
    changed: Condvar,
}

impl ReadAhead {
    /// Waits until `bytes` more may be read ahead; false once the check stopped.
    fn take(&self, bytes: usize) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while !state.1 && state.0 > 0 && state.0 + bytes > AHEAD_BYTES {
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.0 += bytes;
        !state.1
    }

    /// Gives back `bytes`, checked; or, with `stop`, says that no more will be.
    fn give(&self, bytes: usize, stop: bool) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.0 = state.0.saturating_sub(bytes);
        state.1 |= stop;
        self.changed.notify_all();
    }
}

/// Calls `each` on every entry of the archive `reader` reads (at `path`, for errors),
/// in order, the entries read on another thread. Stops at the first error of either;
/// `each`'s comes first.
pub fn each_entry<R: Read + Send>(
    reader: Reader<R>,
    path: &Path,
    mut each: impl FnMut(Parsed) -> Result<()>,
) -> Result<()> {
    let ahead = ReadAhead::default();
    std::thread::scope(|scope| {
        let (sender, receiver) = channel();
        let ahead = &ahead;
        // The sender goes with the thread: the channel closes when it ends.
        let reading = scope.spawn(move || read_all(reader, &sender, ahead));
        let checked = (|| {
            for (batch, bytes) in &receiver {
                for parsed in batch.with_context(|| format!("reading {}", path.display()))? {
                    each(parsed)?;
                }
                ahead.give(bytes, false);
            }
            Ok(())
        })();
        // The reading thread stops at its next entry, or its next wait.
        ahead.give(0, true);
        drop(receiver);
        match (checked, reading.join()) {
            (Err(err), _) => Err(err),
            (Ok(()), Err(_)) => Err(anyhow!(
                "reading {}: the thread reading it failed",
                path.display()
            )),
            (Ok(()), Ok(())) => Ok(()),
        }
    })
}

/// Reads every entry and sends them on, until the end, an error, or the check stops.
fn read_all<R: Read>(mut reader: Reader<R>, sender: &Sender<Batch>, ahead: &ReadAhead) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut bytes = 0;
    let send = |batch: Vec<Parsed>, bytes: usize| {
        ahead.take(bytes) && sender.send((Ok(batch), bytes)).is_ok()
    };
    let failed = loop {
        let header = match reader.next_entry() {
            Ok(Some(header)) => header,
            Ok(None) => break None,
            Err(e) => break Some(e),
        };
        let place = reader.place();
        // Not passed over here: the check refuses it, and reading past it could take
        // as long as decompressing it.
        let too_large = (header.kind.has_data() && header.size > MAX_FILE_SIZE).then(|| {
            anyhow!(
                "{}: {} bytes of data, more than a restore reads",
                String::from_utf8_lossy(&header.name),
                header.size
            )
        });
        let listing = match listing_of(&header, &mut reader) {
            Ok(listing) => listing,
            Err(e) => break Some(e),
        };
        let parsed = Parsed {
            header,
            place,
            listing,
        };
        bytes += parsed.cost();
        batch.push(parsed);
        if let Some(err) = too_large {
            break Some(err);
        }
        if batch.len() == BATCH || bytes >= BATCH_BYTES {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
            if !send(full, std::mem::take(&mut bytes)) {
                return;
            }
        }
    };
    if send(batch, bytes)
        && let Some(e) = failed
    {
        let _ = sender.send((Err(e), 0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    #[test]
    fn reading_ahead_waits_for_the_check_past_its_bound_and_ends_when_the_check_does() {
        let ahead = ReadAhead::default();
        // One batch always goes, however large; the next waits.
        assert!(ahead.take(AHEAD_BYTES + 1));
        let taken = AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                assert!(ahead.take(1));
                taken.store(true, Ordering::SeqCst);
            });
            std::thread::sleep(Duration::from_millis(50));
            assert!(!taken.load(Ordering::SeqCst), "read ahead past the bound");
            ahead.give(AHEAD_BYTES + 1, false);
        });
        assert!(taken.load(Ordering::SeqCst));
        ahead.give(1, false);
        // Waiting past the bound, and the check stops: no more is read.
        assert!(ahead.take(AHEAD_BYTES));
        std::thread::scope(|scope| {
            let waiting = scope.spawn(|| ahead.take(AHEAD_BYTES));
            std::thread::sleep(Duration::from_millis(50));
            ahead.give(0, true);
            assert!(!waiting.join().unwrap());
        });
    }
}
