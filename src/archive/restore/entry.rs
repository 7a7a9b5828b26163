//! Writing one entry of an archive into the destination: a folder, a file, a link, a
//! node. Every name is reached through its parent folder's descriptor, never following a
//! link, and what stands in an entry's way is replaced (a folder only by a folder).

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, UnlinkatFlags};

use super::dumpdir::{self, Purge};
use super::{Extract, canonical, folders};
use crate::archive::extras::Setter;
use crate::tar::dumpdir::Listing;
use crate::tar::{Extras, Header, Kind, Reader, sparse};

/// Set-user-id and set-group-id: dropped from what a user other than root restores, as
/// GNU tar does, so that a restore never makes a program run as someone else.
const SET_ID: u32 = 0o6000;

/// The most memory the extended attributes and ACLs of folders, kept to be set at the
/// end, take (counted as their records' bytes and [`PER_ATTRIBUTE`] for each).
const MAX_KEPT_EXTRAS: usize = 32 << 20;

/// What keeping an attribute costs beyond its bytes: its name's and value's vectors.
pub(super) const PER_ATTRIBUTE: usize = 128;

/// A folder not held by the archive, made on the way to an entry: all but the umask.
fn implicit() -> Option<Mode> {
    Some(Mode::from_bits_truncate(0o777))
}

impl Extract {
    /// Restores the entry `header`, named `name` (canonical, not empty), whose data
    /// `reader` is at.
    pub(super) fn entry<R: io::Read>(
        &mut self,
        header: &Header,
        name: &[u8],
        reader: &mut Reader<R>,
    ) -> Result<()> {
        let (parents, leaf) = split(name);
        let node = self.tree.open(parents, implicit())?.expect("made");
        let (_, _, id) = self.tree.here()?;
        let leaf = OsStr::from_bytes(leaf);
        self.guard.check_write(id, leaf)?;
        let as_root = self.as_root;
        let restored = match header.kind {
            Kind::Dir | Kind::DUMPDIR => {
                self.folder(header, name, reader)?;
                true
            }
            Kind::File => {
                // A new file's owner is this process's user, and its group the
                // folder's when that is this process's group (under any rule for it).
                let (user, group) = self.ids;
                let owned = u32::try_from(header.uid).is_ok_and(|uid| uid == user.as_raw())
                    && u32::try_from(header.gid)
                        .is_ok_and(|gid| gid == group.as_raw() && gid == self.tree.gid_here());
                // Where neither a default ACL nor the umask changes the mode asked for, a
                // file is made with its own at once.
                let umask = self.umask.filter(|_| !self.tree.inherits_here());
                let to = To {
                    parent: self.tree.here()?.1,
                    leaf,
                    chown: as_root && !owned,
                    set_id: as_root,
                    umask,
                };
                file(&to, header, reader, &mut self.buffer, &mut self.extras)?;
                true
            }
            Kind::Symlink => {
                symlink(self.tree.here()?.1, leaf, header, as_root)?;
                true
            }
            Kind::HardLink => {
                self.hard_link(parents, leaf, header)?;
                true
            }
            Kind::Fifo | Kind::CharDevice | Kind::BlockDevice => {
                match node_entry(self.tree.here()?.1, leaf, header, as_root)? {
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
            self.tree.wrote(node, leaf.as_bytes());
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
    /// what an earlier archive of this restore wrote in it and its listing does not
    /// hold (and, with `--delete`, whatever else it does not hold).
    fn folder<R: io::Read>(
        &mut self,
        header: &Header,
        name: &[u8],
        reader: &mut Reader<R>,
    ) -> Result<()> {
        let (_, leaf) = split(name);
        let (_, parent, _) = self.tree.here()?;
        let leaf = OsStr::from_bytes(leaf);
        if exists(parent, leaf) && !is_dir(parent, leaf) {
            remove(parent, leaf)?;
        }
        let rwx = Mode::from_bits_truncate(0o700);
        let node = self.tree.open(name, Some(rwx))?.expect("made");
        // Left read-only by an earlier restore into this DEST, maybe.
        folders::make_writable(self.tree.here()?.1)?;
        // Its attributes are kept for the end with its mode, within a bound: past it (an
        // archive of very many folders with large attributes) they are set now.
        let size = header.extras.record_bytes() + PER_ATTRIBUTE * header.extras.xattrs.len();
        if size > 0 && self.kept_extras + size > MAX_KEPT_EXTRAS {
            let dir = self.tree.here()?.1.as_fd();
            self.extras.attributes(dir, &header.extras, &header.name);
            self.extras.acls(dir, &header.extras, &header.name);
            // A default ACL set now changes the mode of what is made in it from here on.
            self.tree.acls_set_here();
            let mut rest = header.clone();
            rest.extras = Extras::default();
            self.tree.restored(node, &rest);
        } else {
            self.kept_extras += size;
            self.tree.restored(node, header);
        }
        if header.kind == Kind::DUMPDIR {
            let data = reader.listing()?;
            let listing = Listing::new(&data);
            let how = Purge::Unlisted(&listing, self.delete);
            self.done.removed += dumpdir::purge(&mut self.tree, &self.guard, how)?;
        }
        Ok(())
    }

    /// A hard link to an entry restored earlier (or, checked before, already in DEST).
    fn hard_link(&mut self, parents: &[u8], leaf: &OsStr, header: &Header) -> Result<()> {
        remove(self.tree.here()?.1, leaf)?;
        let target = canonical(&header.link).map_err(anyhow::Error::msg)?;
        let (target_parents, target_leaf) = split(&target);
        if self.tree.open(target_parents, None)?.is_none() {
            bail!(
                "its target {} is gone",
                String::from_utf8_lossy(&header.link)
            );
        }
        let target_dir = self.tree.here()?.1.try_clone()?;
        self.tree.open(parents, implicit())?;
        let parent = self.tree.here()?.1;
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

/// Where a file is restored, and how.
struct To<'a> {
    parent: &'a OwnedFd,
    leaf: &'a OsStr,
    /// Whether to give it the archived owner (it does not have it yet).
    chown: bool,
    /// Whether set-user-id and set-group-id are kept.
    set_id: bool,
    /// The umask a file made there gets its mode through, when that is all that changes
    /// it (no default ACL there) and it is known.
    umask: Option<u32>,
}

/// A regular file, its data from `reader` (through `buffer`), then its owner, extended
/// attributes and ACLs, mode and time.
fn file<R: io::Read>(
    to: &To<'_>,
    header: &Header,
    reader: &mut Reader<R>,
    buffer: &mut Vec<u8>,
    extras: &mut Setter,
) -> Result<()> {
    let wanted = mode(header, to.set_id);
    // Private while it is written, unless it is made with the mode it ends with: a plain
    // one (no set-id or sticky bit) that the umask leaves whole, with no attributes to
    // set (which may need the owner's write bit) and no ACL, and already with its owner
    // (until a chown, its group would be this process's or the folder's).
    let at_once = !to.chown
        && to.umask.is_some_and(|umask| {
            header.extras.is_empty() && wanted.bits() & !0o777 == 0 && wanted.bits() & umask == 0
        });
    let born = if at_once {
        wanted
    } else {
        Mode::from_bits_truncate(0o600)
    };
    let create = || {
        nix::fcntl::openat(
            to.parent,
            to.leaf,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            born,
        )
    };
    // Made new, without a look first: only what stands in its way is removed, and
    // O_EXCL never opens, nor follows, what is there.
    let fd = match create() {
        Err(Errno::EEXIST) => {
            remove(to.parent, to.leaf)?;
            create()?
        }
        made => made?,
    };
    let mut file = File::from(fd);
    match &header.sparse {
        None => {
            let sent = reader.send_data(&file)?;
            copy(&mut reader.data(), &mut file, header.size - sent, buffer)?;
        }
        Some(map) => sparse::write(map, &mut reader.data(), &mut file)?,
    }
    if to.chown {
        nix::unistd::fchown(&file, Some(uid(header)), Some(gid(header)))?;
    }
    // After chown, which drops file capabilities, and while the file is still writable
    // by its owner, as setting a user's attribute asks.
    extras.attributes(file.as_fd(), &header.extras, &header.name);
    // After chown, which clears setuid and setgid.
    // Even a file made 0600 is given its mode: the umask or an ACL may have taken bits.
    if !at_once {
        nix::sys::stat::fchmod(&file, wanted)?;
    }
    extras.acls(file.as_fd(), &header.extras, &header.name);
    nix::sys::stat::futimens(&file, &TimeSpec::UTIME_OMIT, &mtime(header))?;
    Ok(())
}

/// The largest buffer a file's data is copied through, allocated once for the restore:
/// a large file then takes few reads and writes.
const COPY_BUFFER: usize = 1 << 20;

/// Copies `data` (of `size` bytes) into `file` through `buffer`, grown as needed up to
/// [`COPY_BUFFER`], each write a full buffer but the last.
fn copy(
    data: &mut impl io::Read,
    file: &mut File,
    size: u64,
    buffer: &mut Vec<u8>,
) -> io::Result<()> {
    let want = usize::try_from(size).map_or(COPY_BUFFER, |size| size.clamp(1, COPY_BUFFER));
    if buffer.len() < want {
        buffer.resize(want, 0);
    }
    loop {
        let mut filled = 0;
        while filled < buffer.len() {
            match data.read(&mut buffer[filled..])? {
                0 => break,
                n => filled += n,
            }
        }
        if filled == 0 {
            return Ok(());
        }
        file.write_all(&buffer[..filled])?;
        if filled < buffer.len() {
            return Ok(());
        }
    }
}

/// This process's umask, read from `/proc` rather than set and set back, which another
/// thread could see in between; `None` when it cannot be read.
pub(super) fn umask() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
    u32::from_str_radix(field.trim(), 8).ok()
}

/// A symbolic link, with its owner (as root) and time.
fn symlink(parent: &OwnedFd, leaf: &OsStr, header: &Header, as_root: bool) -> Result<()> {
    remove(parent, leaf)?;
    nix::unistd::symlinkat(OsStr::from_bytes(&header.link), parent, leaf)?;
    if as_root {
        chown_entry(parent, leaf, header)?;
    }
    set_mtime(parent, leaf, &mtime(header))?;
    Ok(())
}

/// A FIFO or a device. The inner result is the refusal to create it (a device, when not
/// root), which does not stop the restore.
fn node_entry(
    parent: &OwnedFd,
    leaf: &OsStr,
    header: &Header,
    as_root: bool,
) -> Result<nix::Result<()>> {
    remove(parent, leaf)?;
    let device = || nix::sys::stat::makedev(header.device.0.into(), header.device.1.into());
    let (kind, dev) = match header.kind {
        Kind::Fifo => (SFlag::S_IFIFO, 0),
        Kind::CharDevice => (SFlag::S_IFCHR, device()),
        _ => (SFlag::S_IFBLK, device()),
    };
    let mode = mode(header, as_root);
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
    set_mtime(parent, leaf, &mtime(header))?;
    Ok(Ok(()))
}

/// A canonical name's folder and leaf: `a/b/c` is `a/b` and `c`, `c` is `` and `c`.
fn split(name: &[u8]) -> (&[u8], &[u8]) {
    match memchr::memrchr(b'/', name) {
        Some(at) => (&name[..at], &name[at + 1..]),
        None => (&[], name),
    }
}

/// The mode a file or node is restored with: its archived one, less set-user-id and
/// set-group-id when not restoring as root.
fn mode(header: &Header, as_root: bool) -> Mode {
    let mode = if as_root {
        header.mode
    } else {
        header.mode & !SET_ID
    };
    Mode::from_bits_truncate(mode)
}

fn exists(parent: impl AsFd, leaf: &OsStr) -> bool {
    nix::sys::stat::fstatat(parent, leaf, AtFlags::AT_SYMLINK_NOFOLLOW).is_ok()
}

pub(super) fn is_dir(parent: impl AsFd, leaf: &OsStr) -> bool {
    nix::sys::stat::fstatat(parent, leaf, AtFlags::AT_SYMLINK_NOFOLLOW)
        .is_ok_and(|st| st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFDIR.bits())
}

/// Removes what is at `leaf` so that an entry can take its place; a folder is refused.
fn remove(parent: impl AsFd, leaf: &OsStr) -> Result<()> {
    match nix::unistd::unlinkat(parent, leaf, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(Errno::EISDIR | Errno::EPERM) => {
            bail!("a folder is in the way (restore does not replace a folder by a file)")
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

/// The archived mtime, to the nanosecond.
pub(super) fn mtime(header: &Header) -> TimeSpec {
    TimeSpec::new(header.mtime, header.mtime_nsec.min(999_999_999).into())
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
