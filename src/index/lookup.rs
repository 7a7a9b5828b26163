//! Finding a few names in an index without decoding every entry: the entries are written
//! in blocks, each encoded on its own (its first entry against an empty one), and each
//! followed by a Bloom filter of its names. A reader looking for a name tests every
//! block's filter and decodes only the blocks that may hold it.
//!
//! A filter never misses a name its block holds; it may say "maybe" of one the block
//! does not hold (about one test in 1,750, in theory), which costs that block's decoding and
//! nothing else, as every entry decoded is compared by name.

use xxhash_rust::xxh3::xxh3_64;

/// Entries in a block, but the last, which holds the rest.
pub(super) const BLOCK: u64 = 1024;
/// Bytes of filter for each entry of a block.
pub(super) const FILTER_BYTES_PER_ENTRY: u64 = 2;
/// Bits set (and tested) for each name.
const PROBES: u64 = 8;

/// The length of the filter of a block of `entries` entries.
pub(super) fn filter_len(entries: u64) -> u64 {
    entries * FILTER_BYTES_PER_ENTRY
}

/// What a name sets in a filter: the two halves of one hash, from which each probe's bit
/// is made (double hashing).
#[derive(Debug, Clone, Copy)]
pub(super) struct Probe(u64);

impl Probe {
    /// The probe of `name`, as the index stores it.
    pub(super) fn of(name: &[u8]) -> Self {
        Probe(xxh3_64(name))
    }

    /// The bits it sets in a filter of `bits` bits (fewer than 2^32): each probe a 32-bit
    /// number, scaled to the filter by a multiplication rather than a division.
    fn bits(self, bits: u64) -> impl Iterator<Item = u64> {
        let first = self.0 as u32;
        // Odd, so that the probes of one name do not fall on one bit.
        let step = (self.0 >> 32) as u32 | 1;
        (0..PROBES as u32)
            .map(move |i| (u64::from(first.wrapping_add(i.wrapping_mul(step))) * bits) >> 32)
    }

    /// Whether the block whose filter is `filter` may hold the name.
    pub(super) fn may_be_in(self, filter: &[u8]) -> bool {
        let bits = filter.len() as u64 * 8;
        bits != 0
            && self
                .bits(bits)
                .all(|bit| filter[(bit / 8) as usize] & (1 << (bit % 8)) != 0)
    }
}

/// The filter of the block being written.
#[derive(Debug, Default)]
pub(super) struct Filter {
    probes: Vec<Probe>,
}

impl Filter {
    /// Adds the name of the block's next entry.
    pub(super) fn add(&mut self, name: &[u8]) {
        self.probes.push(Probe::of(name));
    }

    /// How many names it holds.
    pub(super) fn len(&self) -> u64 {
        self.probes.len() as u64
    }

    /// The filter's bytes, sized for the names added, and the filter emptied for the
    /// next block.
    pub(super) fn take(&mut self) -> Vec<u8> {
        let mut filter = vec![0u8; filter_len(self.len()) as usize];
        let bits = filter.len() as u64 * 8;
        for probe in self.probes.drain(..) {
            for bit in probe.bits(bits) {
                filter[(bit / 8) as usize] |= 1 << (bit % 8);
            }
        }
        filter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(i: u64) -> Vec<u8> {
        format!("home/dev/project/dir{:04}/file{:03}.rs", i / 100, i % 100).into_bytes()
    }

    #[test]
    fn a_filter_holds_every_name_added_and_few_others() {
        let mut filter = Filter::default();
        for i in 0..BLOCK {
            filter.add(&name(i));
        }
        assert_eq!(filter.len(), BLOCK);
        let bytes = filter.take();
        assert_eq!(bytes.len() as u64, filter_len(BLOCK));
        assert_eq!(filter.len(), 0, "emptied for the next block");
        for i in 0..BLOCK {
            assert!(Probe::of(&name(i)).may_be_in(&bytes), "name {i} missed");
        }
        let others = (BLOCK..BLOCK + 100_000)
            .filter(|&i| Probe::of(&name(i)).may_be_in(&bytes))
            .count();
        // About 0.06% in theory for 16 bits and 8 probes a name.
        assert!(others < 300, "{others} of 100000 other names said maybe");
    }

    #[test]
    fn a_block_of_one_name_and_an_empty_filter() {
        let mut filter = Filter::default();
        filter.add(b"only");
        let bytes = filter.take();
        assert!(Probe::of(b"only").may_be_in(&bytes));
        assert!(!Probe::of(b"only").may_be_in(&[]));
        assert!(Filter::default().take().is_empty());
    }
}
