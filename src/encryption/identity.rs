//! The secret that opens encrypted archives: an age identity file (`age-keygen -o`) or an
//! unencrypted SSH private key, read as `age -i` reads one.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::nofollow::{self, Access};

/// The largest identity file read.
const MAX_IDENTITY: u64 = 1 << 20;

/// Identities loaded from one file.
pub struct Identity {
    path: PathBuf,
    keys: Vec<Box<dyn age::Identity>>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identity({})", self.path.display())
    }
}

impl Identity {
    /// Reads the identity file at `path`. A symbolic link there is not followed, and a
    /// file that its group or others may read is refused, as ssh refuses such a private
    /// key: a secret anyone could have read is no longer one.
    pub fn load(path: &Path) -> Result<Self> {
        let shown = path.display();
        let file = nofollow::open_file(path, Access::Read, 0)
            .with_context(|| format!("opening identity file {shown}"))?;
        let mode = file
            .metadata()
            .with_context(|| format!("reading identity file {shown}"))?
            .mode();
        if mode & 0o077 != 0 {
            bail!(
                "refusing identity file {shown}: its mode {:o} lets others read or change it; \
                 chmod 600 it",
                mode & 0o777
            );
        }
        let mut data = Vec::new();
        file.take(MAX_IDENTITY + 1)
            .read_to_end(&mut data)
            .with_context(|| format!("reading identity file {shown}"))?;
        if data.len() as u64 > MAX_IDENTITY {
            bail!("identity file {shown} is larger than 1 MiB: no identity is");
        }
        let keys = parse(&data).map_err(|why| anyhow::anyhow!("identity file {shown}: {why}"))?;
        Ok(Identity {
            path: path.to_path_buf(),
            keys,
        })
    }

    /// The file it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its keys, for a decryptor.
    pub(super) fn iter(&self) -> impl Iterator<Item = &dyn age::Identity> {
        self.keys.iter().map(|k| k.as_ref())
    }
}

/// The keys in an identity file's text.
fn parse(data: &[u8]) -> Result<Vec<Box<dyn age::Identity>>, String> {
    if data.starts_with(b"-----BEGIN") {
        return match age::ssh::Identity::from_buffer(data, None) {
            Ok(age::ssh::Identity::Unencrypted(key)) => {
                Ok(vec![Box::new(age::ssh::Identity::Unencrypted(key))])
            }
            Ok(age::ssh::Identity::Encrypted(_)) => Err(
                "the SSH key is protected by a passphrase, which cannot be asked for here; \
                 use a copy without one (ssh-keygen -p) or an age identity"
                    .to_owned(),
            ),
            Ok(age::ssh::Identity::Unsupported(_)) => Err(
                "this type of SSH key is not supported (ssh-ed25519 and ssh-rsa are)".to_owned(),
            ),
            Err(e) => Err(format!("not a readable SSH private key: {e}")),
        };
    }
    let file = age::IdentityFile::from_buffer(data)
        .map_err(|e| format!("not an age identity file or SSH private key: {e}"))?;
    let keys = file
        .into_identities()
        .map_err(|e| format!("not usable: {e}"))?;
    if keys.is_empty() {
        return Err("it holds no identity (AGE-SECRET-KEY-1...)".to_owned());
    }
    Ok(keys)
}
