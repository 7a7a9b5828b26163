//! Reading an index's entries one at a time: all of them, block after block, or only the
//! blocks whose filters may hold some names.

use std::io::{self, Read};

use anyhow::{Context, Result, bail};

use super::codec::{Input, decode_into, read_varint};
use super::lookup::{BLOCK, Filter, Probe, filter_len};
use super::{Entry, HEAD_LEN, Index};

/// A run of an index's entries, each but the first against the one before: a block (from
/// version 3), or all of them (before).
#[derive(Debug, Clone, Copy)]
pub(super) struct Part {
    /// Where its first entry starts in the index.
    start: u64,
    /// Where its last entry ends (its block's filter starts).
    end: u64,
    /// How many entries it holds.
    count: u64,
    /// Whether all of them are read, which must then end where it does; otherwise only
    /// the first `count`.
    whole: bool,
}

impl Part {
    /// The run of `count` entries from `start` to `end`.
    pub(super) fn whole(start: u64, end: u64, count: u64) -> Self {
        Part {
            start,
            end,
            count,
            whole: true,
        }
    }
}

/// Reads where each block of an index of `entries` entries starts, and makes its part:
/// in order, each long enough for its filter, between the index's head and `entries_end`
/// (where its trailer starts).
pub(super) fn read_blocks(
    input: &mut impl Read,
    entries: u64,
    entries_end: u64,
) -> Result<Vec<Part>> {
    // An entry takes nine bytes at least, and two of its block's filter: a count that the
    // index cannot hold is refused before anything is allocated for it.
    if entries > (entries_end - HEAD_LEN) / 11 {
        bail!("it claims {entries} entries, more than it holds");
    }
    let count = entries.div_ceil(BLOCK) as usize;
    // Each block's start, then where the last one ends.
    let mut starts = Vec::with_capacity(count + 1);
    let mut previous = 0u64;
    for _ in 0..count {
        let start = previous
            .checked_add(read_varint(input)?)
            .filter(|&at| at > previous && at < entries_end)
            .context("its block table is out of place")?;
        starts.push(start);
        previous = start;
    }
    if starts.first().is_some_and(|&first| first != HEAD_LEN) {
        bail!("its first block does not start after its head");
    }
    starts.push(entries_end);
    let mut blocks = Vec::with_capacity(count);
    for (i, pair) in starts.windows(2).enumerate() {
        let count = (entries - i as u64 * BLOCK).min(BLOCK);
        let end = pair[1]
            .checked_sub(filter_len(count))
            .filter(|&end| end >= pair[0])
            .with_context(|| format!("its block {i} is too short for its filter"))?;
        blocks.push(Part::whole(pair[0], end, count));
    }
    Ok(blocks)
}

impl Index {
    /// The entries, in the archive's order, read one at a time.
    pub fn entries(&self) -> Result<Entries<'_>> {
        Ok(Entries::new(self, self.blocks.clone()))
    }

    /// The entries that may be named by one of `names`, in the archive's order, and the
    /// first (which says whether the archive is incremental): only the blocks whose
    /// filters may hold one of the names are read, and what else they hold is given too,
    /// for the caller to pass over. An index without blocks (before version 3) gives
    /// every entry.
    pub fn among(&self, names: &[Vec<u8>]) -> Result<Entries<'_>> {
        if !self.has_filters() {
            return self.entries();
        }
        let probes: Vec<Probe> = names.iter().map(|name| Probe::of(name)).collect();
        let mut parts = Vec::new();
        let mut filter = Vec::new();
        for (i, &block) in self.blocks.iter().enumerate() {
            self.filter_into(block, &mut filter)?;
            if probes.iter().any(|probe| probe.may_be_in(&filter)) {
                parts.push(block);
            } else if i == 0 {
                parts.push(Part {
                    count: 1,
                    whole: false,
                    ..block
                });
            }
        }
        Ok(Entries::new(self, parts))
    }

    /// Whether each block's filter is the one its entries' names make: what `verify`
    /// checks, as a filter that missed a name would hide its file from `cat`.
    pub fn filters_match(&self) -> Result<bool> {
        if !self.has_filters() {
            return Ok(true);
        }
        let mut stored = Vec::new();
        let mut made = Filter::default();
        for &block in &self.blocks {
            self.filter_into(block, &mut stored)?;
            let mut entries = Entries::new(self, vec![block]);
            while let Some(entry) = entries.next_entry() {
                made.add(&entry?.name);
            }
            if made.take() != stored {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Reads the filter of `block` into `filter`.
    fn filter_into(&self, block: Part, filter: &mut Vec<u8>) -> Result<()> {
        filter.resize(filter_len(block.count) as usize, 0);
        self.data
            .read_exact_at(filter, block.end)
            .with_context(|| format!("reading the index {}", self.path.display()))
    }
}

/// The entries of an [`Index`], one at a time: those of its parts, in order.
pub struct Entries<'a> {
    index: &'a Index,
    parts: std::vec::IntoIter<Part>,
    /// Whether the part being read is read whole, and must end where its entries do.
    whole: bool,
    input: Input<Box<dyn Read + 'a>>,
    /// The entry last read, which the next is read over.
    current: Entry,
    /// How many are left to read of the part.
    left: u64,
}

impl<'a> Entries<'a> {
    fn new(index: &'a Index, parts: Vec<Part>) -> Self {
        Entries {
            index,
            parts: parts.into_iter(),
            whole: false,
            input: Input::new(Box::new(io::empty()), 0),
            current: Entry::default(),
            left: 0,
        }
    }

    /// The next entry, read over the one before (no copy is made): for reading many
    /// quickly.
    pub fn next_entry(&mut self) -> Option<Result<&Entry>> {
        let read = match self.next_part() {
            Ok(false) => return None,
            Ok(true) => {
                self.left -= 1;
                decode_into(&mut self.input, &mut self.current, self.index.has_nanos())
            }
            Err(err) => Err(err),
        };
        match read {
            Ok(()) => Some(Ok(&self.current)),
            Err(err) => {
                // Nothing more is read after an error.
                (self.left, self.whole) = (0, false);
                self.parts = Vec::new().into_iter();
                Some(Err(err.context(format!(
                    "reading an entry of the index {}",
                    self.index.path.display()
                ))))
            }
        }
    }

    /// Moves to the next part when the one being read is done, once it is found to end
    /// where it should; whether there is an entry left to read.
    fn next_part(&mut self) -> Result<bool> {
        while self.left == 0 {
            if std::mem::take(&mut self.whole) && self.input.left != 0 {
                bail!("its entries end before the end of their block");
            }
            let Some(part) = self.parts.next() else {
                return Ok(false);
            };
            let len = part.end - part.start;
            self.input
                .reset(self.index.data.reader(part.start, len)?, len);
            // A block's first entry is against an empty one.
            self.current = Entry::default();
            (self.left, self.whole) = (part.count, part.whole);
        }
        Ok(true)
    }
}

impl Iterator for Entries<'_> {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Result<Entry>> {
        self.next_entry().map(|entry| entry.cloned())
    }
}
