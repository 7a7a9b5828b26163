//! `verify`'s look at the indexes: each archive of the chain checked against its index,
//! and with `--rebuild-index`, an index that is missing or does not match made again.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{Context, Result, bail};
use log::info;

use super::browse::Picked;
use crate::archive::{self, IndexProblem};
use crate::encryption::Recipients;
use crate::home::{BACKUPS_DIR, Home};
use crate::index;

/// Checks the index of every archive of the generation `name`'s chain against the
/// archive; with `rebuild`, makes again each that is missing or does not match. Returns
/// what to say: a warning for each archive without an index (older archives have none),
/// and what was rebuilt. Fails for an index that does not match, unless rebuilt.
pub fn verify_indexes(
    home: &Home,
    name: &str,
    rebuild: bool,
    identity: Option<&Path>,
) -> Result<Vec<String>> {
    // An encrypted archive's index is sealed: it is checked only with the identity.
    let encrypted = super::archives::find_archive(home, name)?.format.encrypted;
    if encrypted && identity.is_none() {
        return Ok(Vec::new());
    }
    let picked = Picked::new(home, name, None, identity)?;
    let reading = archive::Reading::new(picked.found.format, picked.key.as_deref());
    let mut said = Vec::new();
    for path in &picked.chain {
        let shown = format!(
            "{BACKUPS_DIR}/{}",
            path.file_name().unwrap_or_default().to_string_lossy()
        );
        let problem = archive::check_index_as(path, reading)
            .with_context(|| format!("checking the index of {shown}"))?;
        let Some(problem) = problem else {
            continue;
        };
        match problem {
            _ if rebuild => {
                let recipients = encrypted.then(|| recipients_of(&picked)).transpose()?;
                let entries = archive::rebuild_index(path, reading, recipients.as_ref())
                    .with_context(|| format!("rebuilding the index of {shown}"))?;
                link_to_twins(path)?;
                info!("Rebuilt the index of {shown} ({entries} entries): {problem}");
                said.push(format!(
                    "rebuilt the index of {shown} ({entries} entries): {problem}"
                ));
            }
            IndexProblem::Missing => said.push(format!(
                "warning: {shown} has no index; `verify --rebuild-index` makes it"
            )),
            IndexProblem::Older => said.push(format!(
                "warning: the index of {shown} is of an earlier version, which finds a file \
                 by reading all of it; `verify --rebuild-index` makes it again"
            )),
            IndexProblem::Wrong(why) => {
                bail!("{shown} is sound, but {why}; `verify --rebuild-index` rebuilds it")
            }
        }
    }
    Ok(said)
}

/// Refuses `verify --rebuild-index` of an encrypted generation without `--identity`,
/// before anything is read or written: its index is made from the decrypted archive.
pub fn rebuild_needs_identity(home: &Home, name: &str, identity: Option<&Path>) -> Result<()> {
    let found = super::archives::find_archive(home, name)?;
    if found.format.encrypted && identity.is_none() {
        bail!(
            "{} is encrypted: rebuilding its index reads it, which needs the identity of \
             one of its recipients, given with --identity FILE",
            found.shown()
        );
    }
    Ok(())
}

/// The recipients a rebuilt sealed index goes to: those of the schedule's line, as the
/// backup seals to (only public keys: the service never holds a secret).
fn recipients_of(picked: &Picked) -> Result<Recipients> {
    let Some(schedule) = &picked.found.schedule else {
        bail!(
            "{} is encrypted and no schedule writes it: its index is sealed to a \
             schedule's recipients",
            picked.found.shown()
        );
    };
    if schedule.options.encrypt.is_empty() {
        bail!(
            "{} is encrypted, but the schedule {} no longer encrypts: its index is sealed \
             only to recipients",
            picked.found.shown(),
            schedule.name
        );
    }
    let recipients = Recipients::new(&schedule.options.encrypt)?;
    // An index the identity cannot open would be no use to it: the line's keys changed
    // since the archive was written (its next backup starts a chain sealed to them).
    if let Some(key) = &picked.key {
        if !crate::encryption::opens(&recipients, key)? {
            bail!(
                "the identity {} opens none of the recipients on the line of {}: its keys \
                 changed since {} was written, so an index sealed to them could not be read \
                 with it; nothing was rebuilt",
                key.path().display(),
                schedule.name,
                picked.found.shown()
            );
        }
    }
    Ok(recipients)
}

/// Gives the other names of the archive at `path` (`NAME.tar` and its dated name are
/// one file) its new index too.
fn link_to_twins(path: &Path) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let meta = fs::symlink_metadata(path)?;
    let built = index::sidecar(path);
    for entry in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry?;
        let other = entry.path();
        let Some(file_name) = other.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if other == path || crate::naming::parse_file_name(file_name).is_none() {
            continue;
        }
        let same = entry
            .metadata()
            .is_ok_and(|m| m.is_file() && m.dev() == meta.dev() && m.ino() == meta.ino());
        if !same {
            continue;
        }
        let temp = dir.join(format!(".{file_name}.idx.{}.partial", std::process::id()));
        let _ = fs::remove_file(&temp);
        fs::hard_link(&built, &temp)
            .with_context(|| format!("linking {} as {}", built.display(), temp.display()))?;
        let target = index::sidecar(&other);
        if let Err(e) = fs::rename(&temp, &target) {
            let _ = fs::remove_file(&temp);
            return Err(e)
                .with_context(|| format!("renaming {} over {}", temp.display(), target.display()));
        }
    }
    crate::atomic_file::sync_dir(dir)
}
