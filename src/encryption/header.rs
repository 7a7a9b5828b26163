//! An age file's header, read without any key: what `verify` checks of an encrypted
//! archive when it has no identity, and where a chain's [`Mark`] is found.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::{Context, Result};

use super::{MARK_TAG, Mark};

/// The first line of every age v1 file.
const INTRO: &[u8] = b"age-encryption.org/v1\n";

/// The stanza types of the recipients this program encrypts to.
const RECIPIENT_TAGS: [&str; 3] = ["X25519", "ssh-ed25519", "ssh-rsa"];

/// The longest header read: far more than many recipients need, and a bound on what a
/// hostile file makes us hold.
const MAX_HEADER: usize = 256 << 10;

/// A payload chunk's plaintext, and the tag that seals it.
const CHUNK: u64 = super::payload::CHUNK as u64;
const TAG: u64 = super::payload::TAG as u64;

/// The payload's nonce, before the first chunk.
const NONCE: u64 = 16;

/// What an age file's header says, and its payload's size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The types of the recipient stanzas it has of the kinds this program writes
    /// (`X25519`, `ssh-ed25519`, `ssh-rsa`), one per recipient; others (another tool's,
    /// and the random ones age adds so that readers keep skipping unknown stanzas) are
    /// not counted.
    pub recipients: Vec<String>,
    /// Where it stands in a chain, if it says.
    pub mark: Option<Mark>,
    /// The bytes of the header.
    pub header_bytes: u64,
    /// The plaintext's size, as the payload's length tells it.
    pub plaintext_bytes: u64,
}

/// Reads the header of the age file `file` (at `path`, for messages; any file sealed by
/// [`super::seal`], an archive or another) and checks that the
/// payload's length is one age writes: a nonce, then full chunks, then a last one. A cut
/// file is caught when its cut falls inside a chunk's tag; any other damage only the
/// identity can find.
pub fn inspect<R: Read + Seek>(file: &mut R, path: &Path) -> Result<Sealed> {
    let shown = path.display();
    let len = file
        .seek(SeekFrom::End(0))
        .with_context(|| format!("reading the size of {shown}"))?;
    file.seek(SeekFrom::Start(0))
        .with_context(|| format!("reading {shown}"))?;
    let mut head = Vec::new();
    file.take(MAX_HEADER as u64)
        .read_to_end(&mut head)
        .with_context(|| format!("reading {shown}"))?;
    let (mut sealed, header) =
        parse(&head).map_err(|why| anyhow::anyhow!("{shown} is not a readable age file: {why}"))?;
    sealed.header_bytes = header as u64;
    let payload = len.saturating_sub(header as u64);
    sealed.plaintext_bytes = plaintext_len(payload).with_context(|| {
        format!("{shown} is cut or damaged: its payload of {payload} bytes is not one age writes")
    })?;
    Ok(sealed)
}

/// The plaintext's size for a payload of `payload` bytes, if age writes such a payload.
fn plaintext_len(payload: u64) -> Option<u64> {
    let sealed = payload.checked_sub(NONCE)?;
    if sealed < TAG {
        return None;
    }
    let full = sealed / (CHUNK + TAG);
    let rest = sealed % (CHUNK + TAG);
    match rest {
        // The last chunk was full.
        0 => Some(full * CHUNK),
        // A chunk with no room for its tag, or an empty last chunk after others.
        r if r < TAG || (r == TAG && full > 0) => None,
        r => Some(full * CHUNK + r - TAG),
    }
}

/// Parses the header at the start of `data`: what it says, and its length.
fn parse(data: &[u8]) -> Result<(Sealed, usize), String> {
    if !data.starts_with(INTRO) {
        return Err("it does not start with age-encryption.org/v1".to_owned());
    }
    let mut at = INTRO.len();
    let mut stanzas = 0;
    let mut sealed = Sealed {
        recipients: Vec::new(),
        mark: None,
        header_bytes: 0,
        plaintext_bytes: 0,
    };
    let line = |at: &mut usize| -> Result<&[u8], String> {
        let rest = &data[*at..];
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| "its header is cut or too long".to_owned())?;
        *at += end + 1;
        Ok(&rest[..end])
    };
    loop {
        let text = line(&mut at)?;
        if let Some(mac) = text.strip_prefix(b"--- ") {
            if mac.len() != 43
                || !mac
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || b"+/".contains(b))
            {
                return Err("its header's MAC is malformed".to_owned());
            }
            if stanzas == 0 {
                return Err("its header names no recipient".to_owned());
            }
            return Ok((sealed, at));
        }
        let Some(stanza) = text.strip_prefix(b"-> ") else {
            return Err("its header holds a line that is no stanza".to_owned());
        };
        let stanza = std::str::from_utf8(stanza).map_err(|_| "a stanza is not text".to_owned())?;
        let mut words = stanza.split(' ');
        let tag = words.next().unwrap_or_default();
        if tag.is_empty() || !tag.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("a stanza has no type".to_owned());
        }
        if tag == MARK_TAG {
            sealed.mark = words.next().and_then(Mark::parse);
        } else {
            stanzas += 1;
            if RECIPIENT_TAGS.contains(&tag) {
                sealed.recipients.push(tag.to_owned());
            }
        }
        // The body: lines of 64 columns, ended by a shorter one.
        loop {
            let body = line(&mut at)?;
            if body.len() > 64 {
                return Err("a stanza's body has a line longer than 64 columns".to_owned());
            }
            if body.len() < 64 {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_payload_lengths_age_writes_pass() {
        assert_eq!(plaintext_len(16 + 16), Some(0));
        assert_eq!(plaintext_len(16 + 16 + 5), Some(5));
        assert_eq!(plaintext_len(16 + CHUNK + TAG), Some(CHUNK));
        assert_eq!(plaintext_len(16 + CHUNK + TAG + 17), Some(CHUNK + 1));
        assert_eq!(plaintext_len(16 + CHUNK + TAG + 16), None);
        assert_eq!(plaintext_len(16 + CHUNK + TAG + 3), None);
        assert_eq!(plaintext_len(20), None);
        assert_eq!(plaintext_len(0), None);
    }

    #[test]
    fn a_header_is_read_for_its_stanzas() {
        let body = "A".repeat(64);
        let text = format!(
            "age-encryption.org/v1\n-> X25519 abc\n{body}\nxyz\n-> {MARK_TAG} full\n\n--- {}\npayload",
            "B".repeat(43)
        );
        let (sealed, len) = parse(text.as_bytes()).unwrap();
        assert_eq!(sealed.recipients, ["X25519"]);
        assert_eq!(sealed.mark, Some(Mark::Full));
        assert_eq!(&text.as_bytes()[len..], b"payload");
        for bad in [
            "ustar",
            "age-encryption.org/v1\n--- x\n",
            "age-encryption.org/v1\n-> X25519 abc\n",
            "age-encryption.org/v1\nhello\n",
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad:?}");
        }
    }
}
