//! Tables of many names, hashed once each with xxh3 rather than with the standard
//! library's SipHash, which costs more than the rest of reading a large index: an
//! archive's names come from the archive, but a table that an archive could fill with
//! colliding names only gets slower, never wrong.

use std::hash::{BuildHasherDefault, Hash, Hasher};

/// A name as a table's key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Name(pub Vec<u8>);

impl Hash for Name {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(hash(&self.0, 0));
    }
}

/// The hash of `name`, with `seed` (another key's part, such as its folder).
pub fn hash(name: &[u8], seed: u64) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(name, seed)
}

/// What a table of keys hashed already is built with.
pub type Hashed = BuildHasherDefault<Given>;

/// Takes the hash it is given: the keys hash themselves with [`hash`].
#[derive(Default)]
pub struct Given(u64);

impl Hasher for Given {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}
