//! The incremental side of the walk: a folder written as a dumpdir, each child
//! marked stored or not, and the folders to enter next listed ahead.

use std::collections::VecDeque;

use super::*;

/// What an incremental backup does with a folder's child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Store {
    /// Unchanged: listed in the dumpdir, not stored.
    No,
    /// Stored: a new or changed file (or link, device...).
    File,
    /// A folder: always stored, as a dumpdir of its own.
    Folder,
}

/// How many folders an incremental backup lists ahead of the one it walks: two keep
/// the helper thread busy while the walk compares a folder with the record.
const LIST_AHEAD: usize = 2;

/// The folders of one listing still to be entered, some asked for ahead.
#[derive(Default)]
pub(super) struct Upcoming {
    /// Asked for ahead: each folder's place in the listing, and the helper's claim.
    asked: VecDeque<(usize, Option<Ahead>)>,
    /// Where to look for the next folder to ask for.
    looked_to: usize,
}

impl Upcoming {
    /// The walk is to enter the folder at `at` of the folder `dir`'s `children`, marked
    /// `stored`: gives its claim, if it was asked for ahead, and asks for the next ones.
    pub(super) fn enter(
        &mut self,
        at: usize,
        dir: BorrowedFd<'_>,
        children: &Listing,
        stored: &[Store],
        helper: &mut Helper,
    ) -> Option<Ahead> {
        let this = match self.asked.front() {
            Some((first, _)) if *first == at => self.asked.pop_front().and_then(|(_, this)| this),
            _ => None,
        };
        self.looked_to = self.looked_to.max(at + 1);
        let from = self.asked.len();
        // Asking for the farther of two when there is room for one only would leave the
        // nearer, needed first, to the walk.
        let room = helper.room();
        while self.asked.len() < LIST_AHEAD && self.asked.len() - from < room {
            let Some(next) = stored[self.looked_to..]
                .iter()
                .position(|store| *store == Store::Folder)
                .map(|next| self.looked_to + next)
            else {
                self.looked_to = stored.len();
                break;
            };
            self.looked_to = next + 1;
            self.asked.push_back((next, None));
        }
        // Asked for from the last: the thread lists the one asked for last first.
        for (next, asked) in self.asked.iter_mut().skip(from).rev() {
            *asked = helper.list_ahead(dir, &children[*next].0);
        }
        this
    }
}

impl Walk<'_, '_, '_> {
    /// Writes a folder as a dumpdir entry (see [`crate::incremental`]): stats every
    /// child, asks the tracker which changed, and lists them. Gives back the children
    /// still there, and for each whether it is to be stored (folders always are).
    pub(super) fn dumpdir(
        &mut self,
        dir: &Dir,
        disk: &Path,
        name: &[u8],
        mut header: Header,
        listed: Listing,
    ) -> Result<(Listing, Vec<Store>)> {
        let mut kept = Vec::with_capacity(listed.len());
        let mut stats = Vec::with_capacity(listed.len());
        let (listed, results) = self.helper.all(dir.as_fd(), listed);
        for ((file_name, file_type), stat) in listed.into_iter().zip(results) {
            match stat {
                Ok(stat) => {
                    stats.push(stat);
                    kept.push((file_name, file_type));
                }
                Err(e) => {
                    let mut path = disk.to_path_buf();
                    path.push(OsStr::from_bytes(file_name.to_bytes()));
                    self.warn(gone_or_unreadable(&path, e));
                }
            }
        }
        self.drop_too_large(&mut kept, &mut stats);
        let children: Vec<Child<'_>> = kept
            .iter()
            .zip(&stats)
            .map(|((file_name, _), stat)| Child::of(file_name.to_bytes(), stat))
            .collect();
        let tracker = self.incremental.as_mut().expect("an incremental walk");
        let changed = tracker.folder(name, &children)?;
        let data = incremental::dumpdir(&children, &changed);
        let stored = children
            .iter()
            .zip(changed)
            .map(|(child, changed)| match (child.is_dir(), changed) {
                (true, _) => Store::Folder,
                (false, true) => Store::File,
                (false, false) => Store::No,
            })
            .collect();
        header.kind = Kind::DUMPDIR;
        header.size = data.len() as u64;
        self.put_with(header, data)?;
        Ok((kept, stored))
    }
}
