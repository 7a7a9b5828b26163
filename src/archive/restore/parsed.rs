//! The check pass's reading of an archive, on a thread of its own: parsing the headers
//! (checksums, numbers, pax records) costs about as much as checking them, and on two
//! cores the two overlap. Entries come in batches, in order, and a reading error comes
//! after the entries read before it, so that what is refused first does not change.

use std::io::Read;
use std::path::Path;
use std::sync::mpsc::{SyncSender, sync_channel};

use anyhow::{Context, Result};

use super::super::check::listing_of;
use crate::tar::{Header, Place, Reader};

/// Entries sent at a time: enough that the channel costs nothing beside the parsing.
const BATCH: usize = 256;

/// Batches on their way at most: a bound on what is read ahead of the check.
const BATCHES: usize = 4;

/// One entry as read: its header, where its data is, and a folder listing's bytes.
pub struct Parsed {
    pub header: Header,
    pub place: Place,
    pub listing: Option<Vec<u8>>,
}

/// Calls `each` on every entry of the archive `reader` reads (at `path`, for errors),
/// in order, the entries read on another thread. Stops at the first error of either.
pub fn each_entry<R: Read + Send>(
    reader: Reader<R>,
    path: &Path,
    mut each: impl FnMut(Parsed) -> Result<()>,
) -> Result<()> {
    std::thread::scope(|scope| {
        // Made inside the scope: when `each` fails, the receiver is dropped before the
        // scope waits for the reading thread, which then stops at its next send.
        let (sender, receiver) = sync_channel(BATCHES);
        scope.spawn(move || read_all(reader, &sender));
        for batch in receiver {
            let batch: Result<Vec<Parsed>> = batch;
            for parsed in batch.with_context(|| format!("reading {}", path.display()))? {
                each(parsed)?;
            }
        }
        Ok(())
    })
}

/// Reads every entry and sends them on, until the end, an error, or nobody listens.
fn read_all<R: Read>(mut reader: Reader<R>, sender: &SyncSender<Result<Vec<Parsed>>>) {
    let mut batch = Vec::with_capacity(BATCH);
    let failed = loop {
        let header = match reader.next_entry() {
            Ok(Some(header)) => header,
            Ok(None) => break None,
            Err(e) => break Some(e),
        };
        let place = reader.place();
        let listing = match listing_of(&header, &mut reader) {
            Ok(listing) => listing,
            Err(e) => break Some(e),
        };
        batch.push(Parsed {
            header,
            place,
            listing,
        });
        if batch.len() == BATCH {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
            if sender.send(Ok(full)).is_err() {
                return;
            }
        }
    };
    if sender.send(Ok(batch)).is_ok()
        && let Some(e) = failed
    {
        let _ = sender.send(Err(e));
    }
}
