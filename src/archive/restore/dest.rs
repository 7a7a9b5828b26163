//! DEST as a restore finds it: open if it exists, the room on its file system, and
//! whether it may be written into.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::unistd::Uid;

use super::super::check::Needs;

/// DEST as the check pass sees it: open if it exists, and its file system's room.
pub struct Target {
    /// DEST, when it exists.
    pub fd: Option<std::os::fd::OwnedFd>,
    /// DEST's canonical path, when it exists.
    pub canonical: Option<PathBuf>,
    /// The block size of DEST's file system.
    pub block: u64,
    /// Bytes and entries free, for this user; `None` when the file system does not say.
    free: Option<(u64, Option<u64>)>,
}

impl Target {
    // statvfs's field types are u64 here but not on every target.
    #[allow(clippy::unnecessary_cast)]
    pub fn of(dest: &Path) -> Result<Self> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let fd = match nix::fcntl::open(dest, flags, Mode::empty()) {
            Ok(fd) => Some(fd),
            Err(nix::errno::Errno::ENOENT) => None,
            Err(e) => return Err(e).with_context(|| format!("opening {}", dest.display())),
        };
        // The nearest folder that exists holds the file system DEST will be on.
        let existing = dest
            .ancestors()
            .find(|p| p.exists())
            .unwrap_or(Path::new("/"));
        let free = nix::sys::statvfs::statvfs(existing).ok().map(|st| {
            let root = Uid::effective().is_root();
            let blocks = if root {
                st.blocks_free()
            } else {
                st.blocks_available()
            };
            let files = if root {
                st.files_free()
            } else {
                st.files_available()
            };
            let bytes = (blocks as u64).saturating_mul(st.fragment_size() as u64);
            (bytes, (st.files() > 0).then_some(files as u64))
        });
        let block = nix::sys::statvfs::statvfs(existing)
            .map_or(4096, |st| (st.fragment_size() as u64).max(512));
        Ok(Target {
            canonical: fd.as_ref().and_then(|_| fs::canonicalize(dest).ok()),
            fd,
            block,
            free,
        })
    }

    /// Refuses a restore that cannot fit: what the archives need at most at any time,
    /// against what DEST's file system has free (replaced files are not counted as
    /// freed, so this errs on the side of refusing).
    pub fn has_room(&self, needs: Needs, dest: &Path) -> Result<()> {
        let Some((bytes, entries)) = self.free else {
            return Ok(());
        };
        if needs.bytes > bytes {
            bail!(
                "refusing to restore into {}: the archive needs up to {} and its file system \
                 has {} free; nothing was written",
                dest.display(),
                size(needs.bytes),
                size(bytes)
            );
        }
        if let Some(free) = entries.filter(|&free| needs.entries > free) {
            bail!(
                "refusing to restore into {}: the archive holds up to {} and its file \
                 system has room for {free} more; nothing was written",
                dest.display(),
                crate::logging::counted(needs.entries, "entry", "entries")
            );
        }
        Ok(())
    }
}

/// A size as people read it: bytes, KiB, MiB, GiB or TiB.
fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Makes DEST ready; true when the restore made it or it held nothing, so that all it
/// will hold is the restore's.
pub fn prepare(dest: &Path, force: bool) -> Result<bool> {
    match fs::read_dir(dest) {
        Ok(mut entries) => {
            let empty = entries.next().is_none();
            if !force && !empty {
                bail!(
                    "{} is not empty: restore into a new or empty folder, or add --force \
                     to replace what is there",
                    dest.display()
                );
            }
            Ok(empty)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(dest).with_context(|| format!("creating {}", dest.display()))?;
            Ok(true)
        }
        Err(e) => Err(e).with_context(|| format!("opening {}", dest.display())),
    }
}
