//! Reading an archive as a stream of entries, strictly: every header's checksum, every
//! entry's data present in full, and the end marker (two zero blocks) at the end.

use std::fs::File;
use std::io::{self, Read};

use anyhow::{Result, bail};
use tar::EntryType;

use super::dumpdir::MAX_LISTING;
use super::format::{self, Header, Kind};
use super::sparse;
use super::{BLOCK, DUMPDIR, MAX_META, padding};

/// The largest size of an entry's data read: more than any file system holds, and far
/// enough from the largest number that what follows it can be counted.
const MAX_SIZE: u64 = 1 << 62;

/// A tar stream that can pass over bytes without copying them out: what the data of the
/// entries is skipped with, where reading it into a scratch buffer would be a copy of the
/// whole archive for nothing.
pub trait Skip: Read {
    /// Passes over at most `n` bytes; returns how many, 0 only at the end of the stream.
    fn skip(&mut self, n: u64) -> io::Result<u64>;
}

impl<S: Skip + ?Sized> Skip for &mut S {
    fn skip(&mut self, n: u64) -> io::Result<u64> {
        (**self).skip(n)
    }
}

/// Reads entries one after the other. The data of an entry can be read with
/// [`Reader::read_data`] before asking for the next one; what is left unread is skipped.
pub struct Reader<R: Read> {
    inner: R,
    /// Bytes of the current entry's data not read yet.
    remaining: u64,
    /// Zero bytes after the current entry's data, up to the next block.
    padding: u64,
    /// Where in the (uncompressed) archive we are, for error messages.
    offset: u64,
    /// The current entry's name, for error messages.
    current: Vec<u8>,
    /// Where the current entry starts: its first block, a long name's or pax records'
    /// if it has them.
    start: u64,
    /// Where skipped data goes.
    scratch: Vec<u8>,
    /// Passes over bytes without reading them, when the input can.
    pass: Option<Pass<R>>,
    /// Writes bytes into a file without copying them here first, when the input can.
    send: Option<WriteOut<R>>,
}

/// Passes over up to that many bytes of the input: the bytes passed over (fewer, or
/// none, leaves the rest to be read).
pub type Pass<R> = fn(&mut R, u64) -> io::Result<u64>;

/// Writes up to that many bytes of the input into a file, at its position, straight from
/// where the input holds them: the bytes written (fewer, or none, leaves the rest to be
/// read).
pub type WriteOut<R> = fn(&mut R, &File, u64) -> io::Result<u64>;

impl<R: Read> Reader<R> {
    /// Starts reading the archive `inner` (uncompressed bytes).
    pub fn new(inner: R) -> Self {
        Reader {
            inner,
            remaining: 0,
            padding: 0,
            offset: 0,
            current: Vec::new(),
            start: 0,
            scratch: Vec::new(),
            pass: None,
            send: None,
        }
    }

    /// Starts reading the archive `inner`, passing over the data of the entries with
    /// [`Skip::skip`] rather than reading it.
    pub fn skipping(inner: R) -> Self
    where
        R: Skip,
    {
        Reader {
            pass: Some(<R as Skip>::skip),
            ..Reader::new(inner)
        }
    }

    /// Where in the tar stream the entry last returned starts (its first block, a long
    /// name's or pax records' if it has them), for an index to come back to it.
    pub fn entry_start(&self) -> u64 {
        self.start
    }

    /// Where in the tar stream the reader is: after [`Reader::next_entry`], where the
    /// entry's data starts.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Where the entry last returned is, as [`Reader::next_entry`] left the reader: for a
    /// second reading of the same archive to come back to it with [`Reader::go_to`],
    /// without parsing its headers again.
    pub fn place(&self) -> Place {
        Place {
            start: self.start,
            data: self.offset,
            remaining: self.remaining,
            padding: self.padding,
        }
    }

    /// Passes over what is left of the current entry and the headers up to `place` (of
    /// the entry `name`, found by a reading of the same archive), and reads on as
    /// [`Reader::next_entry`] would have left the reader there. Only forwards.
    pub fn go_to(&mut self, place: Place, name: &[u8]) -> Result<()> {
        self.skip_rest()?;
        let Some(gap) = place.data.checked_sub(self.offset) else {
            bail!(
                "at byte {}: the entry {} is behind, at byte {}",
                self.offset,
                String::from_utf8_lossy(name),
                place.data
            );
        };
        self.padding = gap;
        self.skip_rest()?;
        self.start = place.start;
        self.remaining = place.remaining;
        self.padding = place.padding;
        self.current.clear();
        self.current.extend_from_slice(name);
        Ok(())
    }

    /// The next entry's header, or `None` after the end marker. Fails on a bad checksum,
    /// a truncated archive, or anything but zeros after the end marker.
    pub fn next_entry(&mut self) -> Result<Option<Header>> {
        self.skip_rest()?;
        self.start = self.offset;
        let mut meta = Meta::default();
        loop {
            let at = self.offset;
            let Some(block) = self.block()? else {
                bail!("the archive ends at byte {at} without its end marker (it was cut short)");
            };
            if block.iter().all(|&b| b == 0) {
                return self.end(at).map(|()| None);
            }
            let raw = format::decode(&block).map_err(|e| anyhow::anyhow!("at byte {at}: {e}"))?;
            if self.meta_entry(&raw, at, &mut meta)? {
                continue;
            }
            let mut header = raw.header;
            if raw.entry_type == EntryType::GNUSparse {
                self.old_gnu_sparse(&block, at, &mut header)?;
            }
            meta.apply(&mut header)
                .map_err(|e| anyhow::anyhow!("at byte {at}: {e:#}"))?;
            self.start_data(&mut header, raw.entry_type.as_byte(), at)?;
            return Ok(Some(header));
        }
    }

    /// Reads a meta entry (a long name or link, pax records) into `meta`; false for an
    /// entry of the archive's own.
    fn meta_entry(&mut self, raw: &format::RawHeader, at: u64, meta: &mut Meta) -> Result<bool> {
        match raw.entry_type {
            EntryType::GNULongName | EntryType::GNULongLink => {
                let mut data = self.meta(&raw.header, at)?;
                while data.last() == Some(&0) {
                    data.pop();
                }
                if raw.entry_type == EntryType::GNULongName {
                    meta.long_name = Some(data);
                } else {
                    meta.long_link = Some(data);
                }
            }
            EntryType::XHeader => meta.pax = Some(self.meta(&raw.header, at)?),
            // Global records (git archive writes one, holding a comment) are read past:
            // none of their keys is one we keep.
            EntryType::XGlobalHeader => {
                self.meta(&raw.header, at)?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The map of an old GNU sparse entry (type `S`), in its header and the extension
    /// blocks after it.
    fn old_gnu_sparse(&mut self, block: &[u8; BLOCK], at: u64, header: &mut Header) -> Result<()> {
        let (mut map, mut extended) =
            sparse::old_gnu_header(block).map_err(|e| anyhow::anyhow!("at byte {at}: {e:#}"))?;
        while extended {
            let Some(more) = self.block()? else {
                bail!("the archive ends inside a sparse map at byte {at}");
            };
            extended = sparse::old_gnu_extension(&more, &mut map)
                .map_err(|e| anyhow::anyhow!("at byte {at}: {e:#}"))?;
        }
        header.kind = Kind::File;
        header.sparse = Some(map);
        Ok(())
    }

    /// Sets up the reading of the data that follows `header` (type flag `type_flag`,
    /// at byte `at`), reading a pax 1.0 sparse map first and checking any sparse map.
    fn start_data(&mut self, header: &mut Header, type_flag: u8, at: u64) -> Result<()> {
        if header.kind == Kind::Dir {
            format::trim_slashes(&mut header.name);
        }
        // Links, folders and the like carry no data, whatever their size field says (GNU
        // tar writes hard links with size 0; some tools do not). A GNU dumpdir (`D`, from
        // `tar -g`) is a folder followed by the list of its names.
        let size = if header.kind.has_data() || type_flag == DUMPDIR {
            header.size
        } else {
            0
        };
        // No archive holds this much, and what follows it could not be counted.
        if size > MAX_SIZE {
            bail!(
                "at byte {at}: {}: a size of {size} bytes, more than any archive holds",
                String::from_utf8_lossy(&header.name)
            );
        }
        if type_flag == DUMPDIR && size > MAX_LISTING {
            bail!(
                "at byte {at}: {}: a folder listing of {size} bytes, over the {MAX_LISTING} \
                 a restore reads; refusing it",
                String::from_utf8_lossy(&header.name)
            );
        }
        self.remaining = size;
        self.padding = padding(size);
        self.current.clone_from(&header.name);
        if let Some(map) = &mut header.sparse {
            let mut stored = size;
            if map.map_in_data {
                stored -= sparse::read_map_1_0(&mut self.data(), map)
                    .map_err(|e| anyhow::anyhow!("at byte {at}: {e:#}"))?;
            }
            map.check(stored).map_err(|e| {
                anyhow::anyhow!(
                    "at byte {at}: {}: {e:#}",
                    String::from_utf8_lossy(&header.name)
                )
            })?;
        }
        Ok(())
    }

    /// Reads some of the current entry's data; 0 at its end. Fails if the archive ends
    /// before the data does.
    pub fn read_data(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(self.cut_short());
        }
        self.remaining -= n as u64;
        self.offset += n as u64;
        Ok(n)
    }

    /// A dumpdir's listing (the current entry's data), read whole: the reader refused
    /// any longer than [`MAX_LISTING`] when it read the header.
    pub fn listing(&mut self) -> Result<Vec<u8>> {
        let mut data = Vec::with_capacity(self.remaining.min(MAX_LISTING) as usize);
        self.data()
            .take(MAX_LISTING)
            .read_to_end(&mut data)
            .map_err(|e| anyhow::anyhow!("reading a folder listing: {e}"))?;
        Ok(data)
    }

    /// Writes the current entry's data into `out` (at its position) without copying it
    /// through a buffer, when the input can; the bytes written, the rest (or all) left
    /// to read with [`Reader::data`].
    pub fn send_data(&mut self, out: &File) -> io::Result<u64> {
        let Some(send) = self.send.filter(|_| self.remaining > 0) else {
            return Ok(0);
        };
        let sent = send(&mut self.inner, out, self.remaining)?.min(self.remaining);
        self.remaining -= sent;
        self.offset += sent;
        Ok(sent)
    }

    /// Starts reading the archive `inner`, whose bytes can also be passed over with
    /// `pass` and written into a file with `send`.
    pub fn with_shortcuts(inner: R, pass: Pass<R>, send: WriteOut<R>) -> Self {
        let mut reader = Reader::new(inner);
        reader.pass = Some(pass);
        reader.send = Some(send);
        reader
    }

    /// The current entry's data as a reader.
    pub fn data(&mut self) -> Data<'_, R> {
        Data { reader: self }
    }

    fn cut_short(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "the archive ends inside the data of {} ({} missing)",
                String::from_utf8_lossy(&self.current),
                crate::logging::counted(self.remaining, "byte", "bytes")
            ),
        )
    }

    fn skip_rest(&mut self) -> Result<()> {
        if self.remaining == 0 && self.padding == 0 {
            return Ok(());
        }
        if let Some(pass) = self.pass {
            // As long as the input passes over some: what it leaves is read below,
            // which also tells where an archive cut short ends.
            while self.remaining + self.padding > 0 {
                let passed = pass(&mut self.inner, self.remaining + self.padding)?;
                if passed == 0 {
                    break;
                }
                let of_data = passed.min(self.remaining);
                self.remaining -= of_data;
                self.padding -= (passed - of_data).min(self.padding);
                self.offset += passed;
            }
            if self.remaining == 0 && self.padding == 0 {
                return Ok(());
            }
        }
        // One buffer for every entry skipped: zeroing a new one each time would cost more
        // than the skipping of small files.
        let mut buf = std::mem::take(&mut self.scratch);
        if buf.is_empty() {
            buf = vec![0u8; 64 * 1024];
        }
        let skipped = self.skip_into(&mut buf);
        self.scratch = buf;
        skipped
    }

    fn skip_into(&mut self, buf: &mut [u8]) -> Result<()> {
        while self.remaining > 0 {
            self.read_data(buf)?;
        }
        while self.padding > 0 {
            let n = (self.padding as usize).min(buf.len());
            if !self.fill(&mut buf[..n])? {
                bail!(
                    "the archive ends inside the padding of {}",
                    String::from_utf8_lossy(&self.current)
                );
            }
            self.padding -= n as u64;
        }
        Ok(())
    }

    /// The data of a meta entry (long name, pax records).
    fn meta(&mut self, header: &Header, at: u64) -> Result<Vec<u8>> {
        if header.size > MAX_META {
            bail!(
                "at byte {at}: a {} byte long-name or pax entry; refusing it",
                header.size
            );
        }
        let mut data = vec![0u8; header.size as usize];
        if !self.fill(&mut data)? {
            bail!("the archive ends inside a long-name or pax entry at byte {at}");
        }
        let mut pad = [0u8; BLOCK];
        if !self.fill(&mut pad[..padding(header.size) as usize])? {
            bail!("the archive ends inside a long-name or pax entry at byte {at}");
        }
        Ok(data)
    }

    /// After the first zero block: a second one, then nothing but zeros (the padding tar
    /// adds to fill its last record).
    fn end(&mut self, at: u64) -> Result<()> {
        match self.block()? {
            Some(block) if block.iter().all(|&b| b == 0) => {}
            Some(_) => bail!("at byte {at}: a lone zero block in the middle of the archive"),
            None => bail!("the archive ends at byte {at} with half an end marker (cut short)"),
        }
        let mut buf = [0u8; 64 * 1024];
        loop {
            let n = self.inner.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            if buf[..n].iter().any(|&b| b != 0) {
                bail!("data after the end marker, near byte {}", self.offset);
            }
            self.offset += n as u64;
        }
    }

    /// Reads one block; `None` at a clean end of input, an error on a partial block.
    fn block(&mut self) -> Result<Option<[u8; BLOCK]>> {
        let mut block = [0u8; BLOCK];
        let mut filled = 0;
        while filled < BLOCK {
            let n = self.inner.read(&mut block[filled..])?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        self.offset += filled as u64;
        match filled {
            0 => Ok(None),
            BLOCK => Ok(Some(block)),
            _ => bail!(
                "the archive ends inside a header, at byte {} (it was cut short)",
                self.offset
            ),
        }
    }

    /// Fills `buf`; false if the input ends first.
    fn fill(&mut self, buf: &mut [u8]) -> Result<bool> {
        let mut filled = 0;
        while filled < buf.len() {
            let n = self.inner.read(&mut buf[filled..])?;
            if n == 0 {
                return Ok(false);
            }
            filled += n;
        }
        self.offset += filled as u64;
        Ok(true)
    }
}

/// Where an entry is in an archive: see [`Reader::place`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    start: u64,
    data: u64,
    remaining: u64,
    padding: u64,
}

/// What the meta entries before an entry say of it.
#[derive(Default)]
struct Meta {
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax: Option<Vec<u8>>,
}

impl Meta {
    /// Gives `header` the long name, link and pax records read before it.
    fn apply(self, header: &mut Header) -> Result<()> {
        if let Some(name) = self.long_name {
            header.name = name;
        }
        if let Some(link) = self.long_link {
            header.link = link;
        }
        if let Some(records) = self.pax {
            format::apply_pax(&records, header)?;
        }
        Ok(())
    }
}

/// The data of the current entry, as a reader.
pub struct Data<'a, R: Read> {
    reader: &'a mut Reader<R>,
}

impl<R: Read> Read for Data<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reader.read_data(buf)
    }
}
