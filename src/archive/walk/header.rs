//! An entry's header from its `stat`, and the words for an entry left out.

use super::*;

/// Why an entry is left out: it vanished, or could not be read.
pub(super) fn gone_or_unreadable(disk: &Path, e: Errno) -> String {
    match e {
        Errno::ENOENT => format!(
            "{}: vanished while the backup ran; left out",
            disk.display()
        ),
        e => format!(
            "{}: cannot read it ({}); left out",
            disk.display(),
            e.desc()
        ),
    }
}

/// What the `stat` of an entry says it is; `None` for what is not archived (a socket).
pub(super) fn kind_of(stat: &FileStat) -> Option<Kind> {
    let format = SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits());
    Some(match format {
        SFlag::S_IFREG => Kind::File,
        SFlag::S_IFDIR => Kind::Dir,
        SFlag::S_IFLNK => Kind::Symlink,
        SFlag::S_IFIFO => Kind::Fifo,
        SFlag::S_IFCHR => Kind::CharDevice,
        SFlag::S_IFBLK => Kind::BlockDevice,
        _ => return None,
    })
}

/// The header for an entry, from its `stat`; owner and group names looked up once each.
pub(super) fn walk_header(
    users: &mut HashMap<u32, Vec<u8>>,
    groups: &mut HashMap<u32, Vec<u8>>,
    name: &[u8],
    kind: Kind,
    stat: &FileStat,
) -> Header {
    let mut header = Header::new(name.to_vec(), kind);
    header.mode = stat.st_mode & 0o7777;
    header.uid = stat.st_uid.into();
    header.gid = stat.st_gid.into();
    header.mtime = stat.st_mtime;
    header.mtime_nsec = stat.st_mtime_nsec as u32;
    if kind == Kind::File {
        header.size = stat.st_size as u64;
    }
    header.uname = users
        .entry(stat.st_uid)
        .or_insert_with(|| {
            nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(stat.st_uid))
                .ok()
                .flatten()
                .map(|u| u.name.into_bytes())
                .unwrap_or_default()
        })
        .clone();
    header.gname = groups
        .entry(stat.st_gid)
        .or_insert_with(|| {
            nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(stat.st_gid))
                .ok()
                .flatten()
                .map(|g| g.name.into_bytes())
                .unwrap_or_default()
        })
        .clone();
    header
}

/// Fails the backup, before anything of it is written, on an entry a reader would
/// refuse (see [`Header::unreadable`]): an archive holding it could not be restored.
pub(super) fn refuse_unreadable(header: &Header, data: u64) -> Result<()> {
    let Some(why) = header.unreadable(data) else {
        return Ok(());
    };
    const SHOWN: usize = 200;
    let name = String::from_utf8_lossy(&header.name[..header.name.len().min(SHOWN)]);
    let more = if header.name.len() > SHOWN { "..." } else { "" };
    anyhow::bail!(
        "{name}{more}: {why}, more than a restore reads; refusing to write an archive \
         that could not be restored"
    )
}
