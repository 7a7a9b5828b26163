//! Links: a symbolic link stored as one, never followed; a file met again by another
//! name stored as a hard link to the first.

use super::*;

impl Walk<'_, '_, '_> {
    /// Archives the symbolic link `file_name` of `parent` as a link, never following it.
    pub(super) fn symlink(
        &mut self,
        parent: BorrowedFd<'_>,
        file_name: &CStr,
        disk: &Path,
        name: &[u8],
        kind: Kind,
        stat: &FileStat,
    ) -> Result<()> {
        let target = match nix::fcntl::readlinkat(parent, file_name) {
            Ok(target) => target,
            Err(e) => {
                self.warn(gone_or_unreadable(disk, e));
                return Ok(());
            }
        };
        if self.hard_link(name, stat)? {
            return Ok(());
        }
        let mut header = walk_header(&mut self.users, &mut self.groups, name, kind, stat);
        header.link = target.as_bytes().to_vec();
        self.put(header)
    }

    /// Stores the entry as a hard link if an earlier entry is the same file; remembers
    /// it otherwise. True when it was stored as a link.
    pub(super) fn hard_link(&mut self, name: &[u8], stat: &FileStat) -> Result<bool> {
        if stat.st_nlink <= 1 {
            return Ok(false);
        }
        let key = (stat.st_dev, stat.st_ino);
        if let Some(first) = self.hard_links.get(&key) {
            let mut header = walk_header(
                &mut self.users,
                &mut self.groups,
                name,
                Kind::HardLink,
                stat,
            );
            header.link = first.clone();
            self.put(header)?;
            return Ok(true);
        }
        self.hard_links.insert(key, name.to_vec());
        Ok(false)
    }
}
