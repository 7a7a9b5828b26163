//! Writing one entry of an archive into the destination: a folder, a file, a link, a
//! node. Every name is reached through its parent folder's descriptor, never following a
//! link, and what stands in an entry's way is replaced (a folder only by a folder).

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, UnlinkatFlags};

use super::{Extract, components, dumpdir, dumpdir_data, folders, walk};
use crate::tar::{Header, Kind, Reader, sparse};

impl Extract {
    /// Restores the entry `header`, named `parts`, whose data `reader` is at.
    pub(super) fn entry<R: io::Read>(
        &mut self,
        header: &Header,
        parts: &[&[u8]],
        reader: &mut Reader<R>,
    ) -> Result<()> {
        let (leaf, parents) = parts.split_last().expect("components are never empty");
        let leaf = OsStr::from_bytes(leaf);
        let as_root = self.as_root;
        let restored = match header.kind {
            Kind::Dir | Kind::DUMPDIR => {
                self.folder(header, parts, reader)?;
                true
            }
            Kind::File => {
                file(self.parent(parents)?, leaf, header, reader, as_root)?;
                true
            }
            Kind::Symlink => {
                symlink(self.parent(parents)?, leaf, header, as_root)?;
                true
            }
            Kind::HardLink => {
                self.hard_link(parents, leaf, header)?;
                true
            }
            Kind::Fifo | Kind::CharDevice | Kind::BlockDevice => {
                match node(self.parent(parents)?, leaf, header, as_root)? {
                    Ok(()) => true,
                    Err(e) => {
                        let why = format!("cannot create the {} ({})", header.kind, e.desc());
                        self.not_restored(header, &why);
                        false
                    }
                }
            }
            Kind::Other(_) => {
                self.not_restored(header, &format!("skipped, {} is not restored", header.kind));
                false
            }
        };
        if restored {
            self.done.entries += 1;
        }
        Ok(())
    }

    /// Notes an entry that could not be restored, and why.
    fn not_restored(&mut self, header: &Header, why: &str) {
        let name = String::from_utf8_lossy(&header.name);
        self.done.not_restored.push(name.clone().into());
        self.done.warnings.push(format!("{name}: {why}"));
    }

    /// A folder: made, or found in place (and made writable); a dumpdir also removes
    /// what its listing does not hold.
    fn folder<R: io::Read>(
        &mut self,
        header: &Header,
        parts: &[&[u8]],
        reader: &mut Reader<R>,
    ) -> Result<()> {
        let (leaf, parents) = parts.split_last().expect("components are never empty");
        let leaf = OsStr::from_bytes(leaf);
        let parent = self.parent(parents)?;
        let rwx = Mode::from_bits_truncate(0o700);
        let existed = match nix::sys::stat::mkdirat(parent, leaf, rwx) {
            Ok(()) => false,
            Err(Errno::EEXIST) if is_dir(parent, leaf) => true,
            Err(Errno::EEXIST) => {
                remove(parent, leaf)?;
                nix::sys::stat::mkdirat(parent, leaf, rwx)?;
                false
            }
            Err(e) => return Err(e.into()),
        };
        self.folders.restored(parts, header);
        let is_dumpdir = header.kind == Kind::DUMPDIR;
        if existed || is_dumpdir {
            let dir = walk(&self.root, parts)?;
            if existed {
                // Left read-only by an earlier restore into this DEST.
                folders::make_writable(&dir)?;
            }
            if is_dumpdir {
                let data = dumpdir_data(header, reader)?;
                dumpdir::purge(&dir, &data)?;
            }
        }
        Ok(())
    }

    /// A hard link to an entry restored earlier.
    fn hard_link(&mut self, parents: &[&[u8]], leaf: &OsStr, header: &Header) -> Result<()> {
        remove(self.parent(parents)?, leaf)?;
        let target = components(&header.link)?.context("hard link to nothing")?;
        let (target_leaf, target_parents) =
            target.split_last().expect("components are never empty");
        let target_dir = walk(&self.root, target_parents)?;
        let parent = self.parent(parents)?;
        nix::unistd::linkat(
            &target_dir,
            OsStr::from_bytes(target_leaf),
            parent,
            leaf,
            AtFlags::empty(),
        )
        .with_context(|| format!("linking to {}", String::from_utf8_lossy(&header.link)))?;
        Ok(())
    }
}

/// A regular file, its data from `reader`, then its owner, mode and time.
fn file<R: io::Read>(
    parent: &OwnedFd,
    leaf: &OsStr,
    header: &Header,
    reader: &mut Reader<R>,
    as_root: bool,
) -> Result<()> {
    remove(parent, leaf)?;
    let fd = nix::fcntl::openat(
        parent,
        leaf,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )?;
    let mut file = File::from(fd);
    match &header.sparse {
        None => {
            io::copy(&mut reader.data(), &mut file)?;
        }
        Some(map) => sparse::write(map, &mut reader.data(), &mut file)?,
    }
    if as_root {
        nix::unistd::fchown(&file, Some(uid(header)), Some(gid(header)))?;
    }
    // After chown, which clears setuid and setgid.
    nix::sys::stat::fchmod(&file, Mode::from_bits_truncate(header.mode))?;
    let mtime = TimeSpec::new(header.mtime, 0);
    nix::sys::stat::futimens(&file, &TimeSpec::UTIME_OMIT, &mtime)?;
    Ok(())
}

/// A symbolic link, with its owner (as root) and time.
fn symlink(parent: &OwnedFd, leaf: &OsStr, header: &Header, as_root: bool) -> Result<()> {
    remove(parent, leaf)?;
    nix::unistd::symlinkat(OsStr::from_bytes(&header.link), parent, leaf)?;
    if as_root {
        chown_entry(parent, leaf, header)?;
    }
    set_mtime(parent, leaf, &TimeSpec::new(header.mtime, 0))?;
    Ok(())
}

/// A FIFO or a device. The inner result is the refusal to create it (a device, when not
/// root), which does not stop the restore.
fn node(parent: &OwnedFd, leaf: &OsStr, header: &Header, as_root: bool) -> Result<nix::Result<()>> {
    remove(parent, leaf)?;
    let device = || nix::sys::stat::makedev(header.device.0.into(), header.device.1.into());
    let (kind, dev) = match header.kind {
        Kind::Fifo => (SFlag::S_IFIFO, 0),
        Kind::CharDevice => (SFlag::S_IFCHR, device()),
        _ => (SFlag::S_IFBLK, device()),
    };
    let mode = Mode::from_bits_truncate(header.mode);
    if let Err(e) = nix::sys::stat::mknodat(parent, leaf, kind, mode, dev) {
        return Ok(Err(e));
    }
    if as_root {
        chown_entry(parent, leaf, header)?;
    }
    // Not following: had the node been swapped for a link since mknodat, a restore run as
    // root would change a file outside DEST.
    nix::sys::stat::fchmodat(
        parent,
        leaf,
        mode,
        nix::sys::stat::FchmodatFlags::NoFollowSymlink,
    )?;
    set_mtime(parent, leaf, &TimeSpec::new(header.mtime, 0))?;
    Ok(Ok(()))
}

fn is_dir(parent: impl AsFd, leaf: &OsStr) -> bool {
    nix::sys::stat::fstatat(parent, leaf, AtFlags::AT_SYMLINK_NOFOLLOW)
        .is_ok_and(|st| st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFDIR.bits())
}

/// Removes what is at `leaf` so that an entry can take its place; a folder is refused.
fn remove(parent: impl AsFd, leaf: &OsStr) -> Result<()> {
    match nix::unistd::unlinkat(parent, leaf, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(Errno::EISDIR | Errno::EPERM) => {
            bail!("a folder is in the way")
        }
        Err(e) => Err(e.into()),
    }
}

fn uid(header: &Header) -> Uid {
    Uid::from_raw(header.uid as u32)
}

fn gid(header: &Header) -> Gid {
    Gid::from_raw(header.gid as u32)
}

/// Gives the entry `leaf` of `parent` its mtime (leaving its atime), never following a link.
fn set_mtime(parent: &OwnedFd, leaf: &OsStr, mtime: &TimeSpec) -> nix::Result<()> {
    nix::sys::stat::utimensat(
        parent,
        leaf,
        &TimeSpec::UTIME_OMIT,
        mtime,
        UtimensatFlags::NoFollowSymlink,
    )
}

/// Gives the entry `leaf` of `parent` the archive's owner, never following a link.
fn chown_entry(parent: &OwnedFd, leaf: &OsStr, header: &Header) -> nix::Result<()> {
    nix::unistd::fchownat(
        parent,
        leaf,
        Some(uid(header)),
        Some(gid(header)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
}
