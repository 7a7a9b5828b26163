//! The headers the check pass read, and their names made canonical, kept for the write
//! pass (within a bound), so that each is parsed once: the write pass then passes over
//! the header blocks to each entry's data instead of reading them again. It also writes
//! exactly the entries that were checked, whatever the file holds by then.

use std::io::Read;
use std::mem::size_of;

use anyhow::Result;

use super::entry::PER_ATTRIBUTE;
use crate::tar::{Header, Place, Reader};

/// At most this many bytes of headers are kept, for all the archives of a restore
/// together; an archive whose headers do not fit is parsed again by the write pass.
const BUDGET: usize = 64 << 20;

/// One entry as the check pass read it: its header, where its data is, and its name
/// made canonical.
pub type Kept = (Header, Place, Vec<u8>);

/// The entries of one archive, in order.
pub type Entries = Vec<Kept>;

/// Keeps the headers of a restore's archives, one archive after the other.
pub struct Keeper {
    /// Bytes still free in the budget.
    left: usize,
    /// The current archive's, until it overflows the budget.
    current: Option<Entries>,
}

impl Keeper {
    pub fn new() -> Self {
        Keeper {
            left: BUDGET,
            current: None,
        }
    }

    /// Starts keeping the headers of the next archive.
    pub fn start(&mut self) {
        self.current = Some(Vec::new());
    }

    /// Keeps `header` of the current archive, at `place`, named `name` once canonical,
    /// while the budget allows.
    pub fn keep(&mut self, header: Header, place: Place, name: Vec<u8>) {
        let Some(entries) = &mut self.current else {
            return;
        };
        let needed = cost(&header) + name.capacity();
        if needed > self.left {
            // Given back: this archive will be read again whole.
            self.left += entries
                .iter()
                .map(|(h, _, name)| cost(h) + name.capacity())
                .sum::<usize>();
            self.current = None;
            return;
        }
        self.left -= needed;
        entries.push((header, place, name));
    }

    /// The current archive's headers, if they all fitted.
    pub fn finish(&mut self) -> Option<Entries> {
        self.current.take()
    }
}

/// The bytes a kept header takes, near enough.
pub fn cost(header: &Header) -> usize {
    size_of::<Kept>()
        + header.name.capacity()
        + header.link.capacity()
        + header.uname.capacity()
        + header.gname.capacity()
        + header.extras.record_bytes()
        + PER_ATTRIBUTE * header.extras.xattrs.len()
        + header
            .sparse
            .as_ref()
            .map_or(0, |s| s.parts.capacity() * size_of::<(u64, u64)>())
}

/// The entries of one archive for the write pass: those kept, or else read again.
pub enum Source {
    Kept(std::vec::IntoIter<Kept>),
    Read,
}

impl Source {
    pub fn of(kept: Option<Entries>) -> Self {
        kept.map_or(Source::Read, |entries| Source::Kept(entries.into_iter()))
    }

    /// The next entry, with `reader` at its data, and its canonical name when kept;
    /// `None` after the last.
    pub fn next<R: Read>(
        &mut self,
        reader: &mut Reader<R>,
    ) -> Result<Option<(Header, Option<Vec<u8>>)>> {
        match self {
            Source::Read => Ok(reader.next_entry()?.map(|header| (header, None))),
            Source::Kept(entries) => match entries.next() {
                Some((header, place, name)) => {
                    reader.go_to(place, &header.name)?;
                    Ok(Some((header, Some(name))))
                }
                None => Ok(None),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tar::{Kind, padding};

    /// An archive of files named `name0`, `name1`... (one name long enough for a
    /// long-name entry), each with `size` bytes of data and nanoseconds in its time.
    fn archive(sizes: &[usize]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, &size) in sizes.iter().enumerate() {
            let long = if i == 1 {
                "x".repeat(150)
            } else {
                String::new()
            };
            let mut header = Header::new(format!("{long}name{i}").into_bytes(), Kind::File);
            header.size = size as u64;
            header.mode = 0o644;
            header.mtime_nsec = 5 + i as u32;
            header.encode(&mut out);
            out.extend((0..size).map(|b| (b + i) as u8));
            out.resize(out.len() + padding(size as u64) as usize, 0);
        }
        out.resize(out.len() + 1024, 0);
        out
    }

    /// Every entry's header and data, taken from `source`.
    fn read_all(data: &[u8], mut source: Source) -> Vec<(Header, Option<Vec<u8>>, Vec<u8>)> {
        let mut reader = Reader::new(data);
        let mut all = Vec::new();
        while let Some((header, name)) = source.next(&mut reader).unwrap() {
            let mut bytes = Vec::new();
            reader.data().read_to_end(&mut bytes).unwrap();
            all.push((header, name, bytes));
        }
        all
    }

    /// The first pass, keeping what `keeper` can.
    fn keep_all(data: &[u8], keeper: &mut Keeper) -> Option<Entries> {
        let mut reader = Reader::new(data);
        keeper.start();
        while let Some(header) = reader.next_entry().unwrap() {
            let name = header.name.clone();
            keeper.keep(header, reader.place(), name);
        }
        keeper.finish()
    }

    #[test]
    fn kept_entries_read_as_the_archive_does() {
        let data = archive(&[0, 3, 512, 700, 70_000, 1]);
        let kept = keep_all(&data, &mut Keeper::new()).expect("fits");
        let again = read_all(&data, Source::Read);
        let replayed = read_all(&data, Source::of(Some(kept)));
        assert_eq!(again.len(), 6);
        assert_eq!(replayed.len(), again.len());
        for ((a, none, a_data), (b, name, b_data)) in again.iter().zip(&replayed) {
            assert_eq!(a, b);
            assert_eq!(a_data, b_data);
            assert_eq!(none, &None);
            assert_eq!(name.as_ref(), Some(&a.name));
        }
        assert_eq!(again[4].2.len(), 70_000);
        assert_eq!(again[1].0.name.len(), 155);
    }

    #[test]
    fn an_archive_over_the_budget_is_read_again_and_gives_its_room_back() {
        let big = archive(&[10; 40]);
        let small = archive(&[10; 2]);
        let room = cost(&Header::new(b"name00".to_vec(), Kind::File)) * 10;
        let mut keeper = Keeper {
            left: room,
            current: None,
        };
        assert!(keep_all(&big, &mut keeper).is_none());
        assert_eq!(keeper.left, room);
        assert_eq!(keep_all(&small, &mut keeper).map(|e| e.len()), Some(2));
    }

    #[test]
    fn a_place_behind_the_reader_is_refused() {
        let data = archive(&[3, 3]);
        let kept = keep_all(&data, &mut Keeper::new()).expect("fits");
        let mut reader = Reader::new(&data[..]);
        reader.go_to(kept[1].1, b"name1").unwrap();
        let err = reader.go_to(kept[0].1, b"name0").unwrap_err();
        assert!(format!("{err:#}").contains("is behind"), "{err:#}");
    }
}
