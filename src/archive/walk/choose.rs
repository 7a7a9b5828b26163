//! What the walk leaves out by the schedule's other choices, `one-file-system` and
//! `exclude-larger-than`, and how it tells `run --dry-run` what it writes.

use super::*;

/// What a walk leaves out and whom it tells as it goes.
pub struct Plan<'p> {
    /// What never to archive (device, inode), wherever it is met.
    pub exclude: Vec<(u64, u64)>,
    /// What the schedule's patterns, tags and ignore files leave out.
    pub excludes: Option<Excludes>,
    /// Stay on the source's file system: a folder on another is stored empty.
    pub one_file_system: bool,
    /// Leave out regular files larger than this many bytes.
    pub larger_than: Option<u64>,
    /// Told how far the walk got.
    pub progress: Option<ProgressFn<'p>>,
    /// Told each entry written, by name (a folder's ending in `/`) and size of its data.
    pub listing: Option<ListFn<'p>>,
}

impl Walk<'_, '_, '_> {
    /// With `exclude-larger-than`: whether the regular file with `stat` is left out.
    pub(super) fn too_large(&self, stat: &FileStat) -> bool {
        self.larger_than
            .is_some_and(|limit| u64::try_from(stat.st_size).unwrap_or(0) > limit)
    }

    /// With `exclude-larger-than`, in an incremental backup: drops from a folder's
    /// children, `stat`ed for its dumpdir, the regular files too large, so that the
    /// dumpdir does not list them either.
    pub(super) fn drop_too_large(&self, kept: &mut Listing, stats: &mut Vec<FileStat>) {
        if self.larger_than.is_none() {
            return;
        }
        let mut i = 0;
        while i < stats.len() {
            if kind_of(&stats[i]) == Some(Kind::File) && self.too_large(&stats[i]) {
                kept.remove(i);
                stats.remove(i);
            } else {
                i += 1;
            }
        }
    }

    /// With `one-file-system`: a folder on another file system than the source's is
    /// stored, with its mode and owner, but empty, as GNU tar's `--one-file-system`
    /// stores a mount point; nothing in it is listed.
    pub(super) fn mount_point(
        &mut self,
        parent: BorrowedFd<'_>,
        file_name: &CStr,
        disk: &Path,
        name: &mut Vec<u8>,
        header: Header,
    ) -> Result<()> {
        if self.incremental.is_none() {
            return self.put(header);
        }
        // A dumpdir, empty: the chain's record holds no child of it.
        match open_dir(parent, file_name) {
            Ok(dir) => {
                let nothing = Listed {
                    children: Vec::new(),
                    error: None,
                    seen: None,
                };
                self.children(
                    dir,
                    Some(nothing),
                    &mut disk.to_path_buf(),
                    name,
                    Some(header),
                )
            }
            Err(e) => {
                self.warn(gone_or_unreadable(disk, e));
                Ok(())
            }
        }
    }

    /// Tells the listing, if any, of the entry `header` is written for.
    pub(super) fn listed(&self, header: &Header) {
        let Some(listing) = self.listing else {
            return;
        };
        // A chain's label is not an entry extraction makes.
        if header.kind == Kind::VOLUME_LABEL {
            return;
        }
        if header.kind == Kind::Dir || header.kind == Kind::DUMPDIR {
            let mut name = header.name.clone();
            name.push(b'/');
            listing(&name, 0);
        } else {
            listing(&header.name, header.size);
        }
    }
}
