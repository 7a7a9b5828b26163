//! An age file's payload sealed by the caller, one 64 KiB chunk at a time and in any
//! order, so that a large archive's chunks can be sealed on several cores at once.
//!
//! The `age` crate writes the header (each recipient's stanza and the header's MAC) and
//! the payload's nonce; it seals the payload itself one chunk after another, on one
//! thread. Here its header and nonce are kept, and the file key it wraps is taken, by a
//! recipient of our own that adds no stanza ([`Tap`]), to derive the same payload key
//! age does: HKDF-SHA256 of the file key, salted with the nonce, labelled `payload`. Each
//! chunk is then sealed with ChaCha20-Poly1305 under a nonce of its 11-byte big-endian
//! counter and a last-chunk flag, as the age format (C2SP age, its STREAM) says. What is
//! written is an ordinary age v1 file: `age -d` and [`super::open`] read it.

use std::cell::RefCell;
use std::io;

use age_core::format::FileKey;
use age_core::secrecy::ExposeSecret;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use zeroize::Zeroizing;

use super::{Mark, Recipients};

/// The plaintext of every chunk but the last.
pub const CHUNK: usize = 64 << 10;

/// The tag that follows each sealed chunk.
pub const TAG: usize = 16;

/// The payload's nonce, the last bytes of what [`start`] gives.
const NONCE: usize = 16;

/// The key that seals every chunk of one file's payload.
pub struct Payload {
    aead: LessSafeKey,
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Payload")
    }
}

impl Payload {
    /// Seals `chunk` (at most [`CHUNK`] bytes; empty only as the last of an empty
    /// payload), the `counter`th of the payload, in place; gives its tag, which follows it
    /// in the file. Each counter must be sealed once, and only the last chunk as `last`.
    pub fn seal(&self, counter: u64, last: bool, chunk: &mut [u8]) -> [u8; TAG] {
        debug_assert!(chunk.len() <= CHUNK);
        let mut nonce = [0u8; 12];
        nonce[3..11].copy_from_slice(&counter.to_be_bytes());
        nonce[11] = u8::from(last);
        // Unique for this key: each counter is sealed once, and the key is this file's.
        let nonce = Nonce::assume_unique_for_key(nonce);
        let tag = self
            .aead
            .seal_in_place_separate_tag(nonce, Aad::empty(), chunk)
            .expect("a chunk is far below ChaCha20-Poly1305's limit");
        tag.as_ref().try_into().expect("a Poly1305 tag is 16 bytes")
    }
}

/// A recipient that adds no stanza and keeps the file key it is given.
struct Tap {
    key: RefCell<Option<Zeroizing<[u8; 16]>>>,
}

impl age::Recipient for Tap {
    fn wrap_file_key(
        &self,
        file_key: &FileKey,
    ) -> Result<
        (
            Vec<age_core::format::Stanza>,
            std::collections::HashSet<String>,
        ),
        age::EncryptError,
    > {
        *self.key.borrow_mut() = Some(Zeroizing::new(*file_key.expose_secret()));
        // No labels, as the X25519 and SSH recipients give none: age refuses to mix
        // recipients whose labels differ, so one with labels could not be added beside it.
        Ok(Default::default())
    }
}

/// Starts an age file sealed to `recipients`, with `mark` in its header when it is part
/// of a chain: the bytes that open the file (its header and the payload's nonce), and
/// the key to seal the payload's chunks with.
pub fn start(recipients: &Recipients, mark: Option<Mark>) -> io::Result<(Vec<u8>, Payload)> {
    let tap = Tap {
        key: RefCell::new(None),
    };
    let encryptor = super::encryptor(recipients, mark, Some(&tap))?;
    let mut head = Vec::new();
    // Only the header and the nonce are written when the stream starts; its chunks,
    // which age would seal itself, are never written to.
    drop(encryptor.wrap_output(&mut head)?);
    let file_key = tap
        .key
        .take()
        .ok_or_else(|| io::Error::other("age did not wrap a file key"))?;
    let nonce = head
        .len()
        .checked_sub(NONCE)
        .map(|at| &head[at..])
        .ok_or_else(|| io::Error::other("age wrote no payload nonce"))?;
    let key = Zeroizing::new(age_core::primitives::hkdf(nonce, b"payload", &file_key[..]));
    let aead = UnboundKey::new(&CHACHA20_POLY1305, &key[..])
        .map(LessSafeKey::new)
        .map_err(|_| io::Error::other("ChaCha20-Poly1305 refused a 32-byte key"))?;
    Ok((head, Payload { aead }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encryption::{Identity, inspect, open};
    use std::io::{Cursor, Read, Write};
    use std::path::Path;

    /// A new X25519 key: its recipients, and an identity file for it in `dir`.
    fn key(dir: &Path) -> (Recipients, Identity) {
        let (recipient, identity) = crate::encryption::tests::key(dir);
        (Recipients::new(&[recipient]).unwrap(), identity)
    }

    /// `data` sealed chunk by chunk, last first, as a parallel writer may.
    fn sealed_out_of_order(recipients: &Recipients, data: &[u8]) -> Vec<u8> {
        let (mut file, payload) = start(recipients, Some(Mark::Full)).unwrap();
        let mut chunks: Vec<Vec<u8>> = data.chunks(CHUNK).map(<[u8]>::to_vec).collect();
        if chunks.is_empty() {
            chunks.push(Vec::new());
        }
        let last = chunks.len() - 1;
        let mut tags = vec![[0u8; TAG]; chunks.len()];
        for (i, chunk) in chunks.iter_mut().enumerate().rev() {
            tags[i] = payload.seal(i as u64, i == last, chunk);
        }
        for (chunk, tag) in chunks.iter().zip(&tags) {
            file.write_all(chunk).unwrap();
            file.write_all(tag).unwrap();
        }
        file
    }

    #[test]
    fn chunks_sealed_in_any_order_make_the_file_age_itself_writes() {
        let dir = tempfile::tempdir().unwrap();
        let (recipients, identity) = key(dir.path());
        // Empty, one short chunk, exactly two chunks, and two and a bit.
        for len in [0, 1000, 2 * CHUNK, 2 * CHUNK + 5] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let ours = sealed_out_of_order(&recipients, &data);
            let path = Path::new("test.age");
            // The payload has the length age gives that plaintext, and the header is age's.
            let header = inspect(&mut Cursor::new(&ours), path).unwrap();
            assert_eq!(header.plaintext_bytes, len as u64);
            assert_eq!(header.mark, Some(Mark::Full));
            assert_eq!(header.recipients, ["X25519"]);
            let mut opened = open(Cursor::new(ours.clone()), path, &identity).unwrap();
            let mut back = Vec::new();
            opened.read_to_end(&mut back).unwrap();
            assert_eq!(back, data, "{len} bytes");
            // A flipped byte in the last chunk fails its check.
            let mut bad = ours;
            let at = bad.len() - 1;
            bad[at] ^= 1;
            let mut opened = open(Cursor::new(bad), path, &identity).unwrap();
            assert!(opened.read_to_end(&mut Vec::new()).is_err(), "{len} bytes");
        }
    }
}
