//! Archives sealed to public keys: age v1 files (the C2SP age format), written with the
//! recipients alone and opened with an identity.
//!
//! The writer needs no secret: [`seal`] wraps any `Write` (an archive, or any other file
//! written under `backups/`) so that what goes in comes out encrypted to every recipient.
//! The reader, [`open`], gives a `Read + Seek` over the plaintext: age seals the payload
//! in 64 KiB chunks, each authenticated on its own, so a reader can seek to any chunk and
//! decrypt only that one. Without the identity, [`inspect`] checks what can be checked:
//! the header parses and the payload's length is one that age writes.
//!
//! A file of an incremental chain also carries, in a header stanza of its own that every
//! age implementation skips, whether it starts a chain ([`Mark`]), so that rotation and
//! pruning, which must know the chains, work without the identity.

mod header;
mod identity;
pub mod payload;

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, Result, bail};

pub use header::{Sealed, inspect};
pub use identity::Identity;

use crate::schedule::Recipient;

/// The tag of the stanza that says where a file stands in its chain.
pub const MARK_TAG: &str = "backup_manager.org/chain";

/// Where an archive stands in an incremental chain, said in clear in its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// The full backup that starts a chain.
    Full,
    /// An incremental backup.
    Incremental,
}

impl Mark {
    fn as_str(self) -> &'static str {
        match self {
            Mark::Full => "full",
            Mark::Incremental => "incremental",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "full" => Some(Mark::Full),
            "incremental" => Some(Mark::Incremental),
            _ => None,
        }
    }
}

impl age::Recipient for Mark {
    /// No key at all: a stanza that no identity unwraps, holding the mark.
    fn wrap_file_key(
        &self,
        _file_key: &age_core::format::FileKey,
    ) -> Result<
        (
            Vec<age_core::format::Stanza>,
            std::collections::HashSet<String>,
        ),
        age::EncryptError,
    > {
        let stanza = age_core::format::Stanza {
            tag: MARK_TAG.to_owned(),
            args: vec![self.as_str().to_owned()],
            body: Vec::new(),
        };
        Ok((vec![stanza], Default::default()))
    }
}

/// The public keys a schedule's files are sealed to, ready to seal with.
pub struct Recipients {
    keys: Vec<Box<dyn age::Recipient + Send + Sync>>,
}

impl std::fmt::Debug for Recipients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Recipients({})", self.keys.len())
    }
}

impl Recipients {
    /// The keys of a schedule line (already checked when the line was parsed).
    pub fn new(keys: &[Recipient]) -> Result<Self> {
        if keys.is_empty() {
            bail!("no recipient to encrypt to");
        }
        let mut out: Vec<Box<dyn age::Recipient + Send + Sync>> = Vec::new();
        for key in keys {
            let text = key.as_str();
            let bad = |e: String| anyhow::anyhow!("recipient {text:?}: {e}");
            if key.is_ssh() {
                let parsed: age::ssh::Recipient =
                    text.parse().map_err(|e| bad(format!("{e:?}")))?;
                out.push(Box::new(parsed));
            } else {
                let parsed: age::x25519::Recipient =
                    text.parse().map_err(|e: &str| bad(e.into()))?;
                out.push(Box::new(parsed));
            }
        }
        Ok(Recipients { keys: out })
    }
}

/// A writer that encrypts what it is given into `W`; [`Sealer::finish`] writes the last
/// chunk, without which the file does not decrypt.
pub struct Sealer<W: Write> {
    stream: age::stream::StreamWriter<W>,
}

impl<W: Write> Write for Sealer<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

impl<W: Write> Sealer<W> {
    /// Writes the final chunk and gives back the writer underneath.
    pub fn finish(self) -> io::Result<W> {
        self.stream.finish()
    }
}

/// Starts an age file on `out`, sealed to `recipients`, with `mark` in its header when
/// it is part of a chain. The header goes out at once.
pub fn seal<W: Write>(
    recipients: &Recipients,
    mark: Option<Mark>,
    out: W,
) -> io::Result<Sealer<W>> {
    Ok(Sealer {
        stream: encryptor(recipients, mark, None)?.wrap_output(out)?,
    })
}

/// An age encryptor to `recipients`, with `mark`'s stanza when it is part of a chain, and
/// `also` (a recipient of our own) after them.
fn encryptor(
    recipients: &Recipients,
    mark: Option<Mark>,
    also: Option<&dyn age::Recipient>,
) -> io::Result<age::Encryptor> {
    let keys = recipients
        .keys
        .iter()
        .map(|k| k.as_ref() as &dyn age::Recipient)
        .chain(mark.as_ref().map(|m| m as &dyn age::Recipient))
        .chain(also);
    age::Encryptor::with_recipients(keys).map_err(io::Error::other)
}

/// Whether `identity` opens what is sealed to `recipients`: an empty file is sealed to
/// them in memory and opened, so that nothing is written for keys it cannot read.
pub fn opens(recipients: &Recipients, identity: &Identity) -> Result<bool> {
    let mut sealed = Vec::new();
    seal(recipients, None, &mut sealed)?.finish()?;
    let opened = open(io::Cursor::new(sealed), Path::new("a test file"), identity);
    Ok(opened.is_ok())
}

/// The plaintext of an age file, readable and seekable: each 64 KiB chunk is decrypted
/// and authenticated as it is reached, so a seek costs one chunk, not the file.
pub struct Opened<R> {
    stream: age::stream::StreamReader<R>,
}

impl<R> std::fmt::Debug for Opened<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Opened")
    }
}

impl<R: Read> Read for Opened<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.read(buf).map_err(damaged)
    }
}

impl<R: Read + Seek> Seek for Opened<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.stream.seek(pos).map_err(damaged)
    }
}

/// A chunk that fails its authentication, said as what it means.
fn damaged(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::InvalidData {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("encrypted data that fails its check, so damaged or changed ({e})"),
        )
    } else {
        e
    }
}

/// Opens the age file `file` (at `path`, for messages: an archive, or any other file
/// written by [`seal`]) with `identity`, from its start.
/// The header is checked first ([`inspect`]); an identity that opens none of its stanzas
/// is refused here, before any of the payload is read. Each chunk is authenticated as it
/// is read: damage anywhere makes that read fail.
pub fn open<R: Read + Seek>(mut file: R, path: &Path, identity: &Identity) -> Result<Opened<R>> {
    inspect(&mut file, path)?;
    file.seek(SeekFrom::Start(0))
        .with_context(|| format!("reading {}", path.display()))?;
    let decryptor = age::Decryptor::new(file)
        .map_err(|e| anyhow::anyhow!("reading the age header of {}: {e}", path.display()))?;
    let stream = decryptor.decrypt(identity.iter()).map_err(|e| match e {
        age::DecryptError::NoMatchingKeys => anyhow::anyhow!(
            "{} is encrypted to other keys: the identity {} opens none of its recipients",
            path.display(),
            identity.path().display()
        ),
        other => anyhow::anyhow!("decrypting {}: {other}", path.display()),
    })?;
    Ok(Opened { stream })
}

/// Reads the recipients file at `path`, as `age -R` does: a key a line, `#` comments.
pub fn read_recipients_file(path: &Path) -> Result<Vec<Recipient>> {
    const MAX: u64 = 1 << 20;
    let mut text = String::new();
    let reading = || format!("reading recipients file {}", path.display());
    // Without waiting on a FIFO or a device: the file is checked once open.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .with_context(reading)?;
    if !file.metadata().with_context(reading)?.is_file() {
        bail!("{}: it is not a regular file", reading());
    }
    file.take(MAX + 1)
        .read_to_string(&mut text)
        .with_context(reading)?;
    if text.len() as u64 > MAX {
        bail!("recipients file {} is larger than 1 MiB", path.display());
    }
    crate::schedule::parse_recipients_file(&text)
        .map_err(|why| anyhow::anyhow!("recipients file {}: {why}", path.display()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Cursor;
    use std::os::unix::fs::PermissionsExt;

    /// A new X25519 key: its recipient, and an identity file for it in `dir`.
    pub(crate) fn key(dir: &Path) -> (Recipient, Identity) {
        let secret = age::x25519::Identity::generate();
        let path = dir.join("key.txt");
        std::fs::write(
            &path,
            format!(
                "{}\n",
                age::secrecy::ExposeSecret::expose_secret(&secret.to_string())
            ),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let recipient = secret.to_public().to_string().parse().unwrap();
        (recipient, Identity::load(&path).unwrap())
    }

    #[test]
    fn a_sealed_file_opens_with_its_identity_and_seeks_to_any_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let (recipient, identity) = key(dir.path());
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let recipients = Recipients::new(&[recipient]).unwrap();
        let mut sealer = seal(&recipients, Some(Mark::Incremental), Vec::new()).unwrap();
        sealer.write_all(&data).unwrap();
        let sealed = sealer.finish().unwrap();
        let path = Path::new("test.age");
        let mut cursor = Cursor::new(sealed.clone());
        let header = inspect(&mut cursor, path).unwrap();
        assert_eq!(header.plaintext_bytes, data.len() as u64);
        assert_eq!(header.mark, Some(Mark::Incremental));
        assert_eq!(header.recipients, ["X25519"]);
        let mut opened = open(Cursor::new(sealed.clone()), path, &identity).unwrap();
        opened.seek(SeekFrom::Start(200_000)).unwrap();
        let mut part = vec![0; 1000];
        opened.read_exact(&mut part).unwrap();
        assert_eq!(part, data[200_000..201_000]);
        // Another key is refused before any payload is read; a changed byte on reading.
        let other = tempfile::tempdir().unwrap();
        let (_, stranger) = key(other.path());
        let err = open(Cursor::new(sealed.clone()), path, &stranger).unwrap_err();
        assert!(
            err.to_string().contains("opens none of its recipients"),
            "{err}"
        );
        let mut bad = sealed;
        let at = bad.len() - 100;
        bad[at] ^= 1;
        let mut opened = open(Cursor::new(bad), path, &identity).unwrap();
        let err = std::io::copy(&mut opened, &mut std::io::sink()).unwrap_err();
        assert!(err.to_string().contains("damaged or changed"), "{err}");
    }
}
