//! Where the tar stream goes. The walk reads files on the calling thread and fills
//! batches; a writer thread writes them to the archive (compressing them, if asked), so
//! that reading the tree and writing the archive overlap on two cores.
//!
//! Memory stays bounded: a fixed number of batches exists, and they go round between the
//! two threads; when all are waiting to be written, the walk waits for one to come back.
//!
//! A plain archive is written with direct I/O where the file system allows it (see
//! [`super::direct`] for why): each batch goes from our memory to the disk, so batches
//! start on an aligned boundary and every write but the last is a whole number of
//! blocks. Where the file system refuses direct I/O, the archive goes through the page
//! cache, and another thread starts its write-back as it goes, so that the final fsync
//! has little left to do.
//!
//! The walk notes each entry it writes, with where it starts in the stream; one more
//! thread makes the archive's index from those notes as the archive is written (see
//! [`notes`], which bounds the memory they take). It is made from the headers as the
//! walk made them (as a reader reads them back, see [`Header::stored`]), not by parsing
//! the stream again, which cost a backup a third more work.

use std::fs::File;
use std::io::{self, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::{Scope, ScopedJoinHandle};

use super::direct::{ALIGN, BATCH, Batch};
use super::framed::Framed;
use super::sealed::{Out, Seal};
use crate::index::Frame;
use crate::naming::Compression;
use crate::tar::Header;
use notes::Noter;
pub use notes::Notes;
use plain::Plain;
use splice::{Moved, PAGE, Splicer};

mod notes;
mod plain;
mod splice;

/// The most [`Stream::room`] gives at once: a batch, less what may be carried over to
/// keep writes aligned.
pub const ROOM: u64 = (BATCH - ALIGN) as u64;

/// How many batches exist for a plain archive: one being filled, the others queued or
/// being written.
const BATCHES: usize = 4;

/// How many for a compressed one: the compressor sets the pace, so one being filled and
/// one being compressed keep it busy, and the memory goes to its workers instead.
const COMPRESSED_BATCHES: usize = 2;

/// A piece of the tar stream, as the walk hands it to the writer.
enum Piece {
    /// The first `usize` bytes of a batch.
    Bytes(Batch, usize),
    /// Bytes that went into the archive without a batch (file data the kernel moved).
    Passed(u64),
}

/// The walk's end of the tar stream.
pub struct Stream {
    /// The batch being filled, `used` bytes of it.
    batch: Batch,
    used: usize,
    /// Batches back from the writer, ready to be filled.
    free: Vec<Batch>,
    /// Batches to write, with how many of their bytes to write, and what went past
    /// them.
    jobs: SyncSender<Piece>,
    /// How many bytes of the stream went to the writer before the batch being filled.
    handed: u64,
    /// Where entries written are noted for the index (none when no index is made, or
    /// its thread stopped).
    noter: Option<Noter>,
    /// Batches written.
    done: Receiver<Batch>,
    /// How many batches there are.
    count: usize,
    /// What moves large files' data into a plain archive, where it can.
    splicer: Option<Splicer>,
}

/// The smallest file whose data the kernel moves into a plain archive (see
/// [`Stream::splice_from`]): the writer must be waited for first, which costs a little of
/// the overlap between the walk and the writer.
pub const SPLICE_FROM: u64 = 4 << 20;

/// What the writer wrote: the tar stream's length, and the frames of a compressed one.
#[derive(Debug, Default)]
pub struct Written {
    /// The length of the (uncompressed) tar stream.
    pub tar_len: u64,
    /// Where each independent frame (zstd) or member (gzip) starts; none for a plain
    /// archive.
    pub frames: Vec<Frame>,
}

/// What [`start`] started.
pub struct Started<'scope, T> {
    /// The walk's end of the tar stream.
    pub stream: Stream,
    /// The writer's thread: whether all went in.
    pub writer: ScopedJoinHandle<'scope, io::Result<Written>>,
    /// The index's thread, if one is made: what it made of the entries noted.
    pub index: Option<ScopedJoinHandle<'scope, T>>,
}

/// Starts the writer thread in `scope`, writing `file` in `compression`, encrypted when
/// `seal` says to whom (compressed first, then encrypted), and a thread that runs
/// `index` on the entries as they are noted ([`Stream::note`]), if it is given. The
/// stream is ended by [`Stream::finish`]; the writer's handle then says whether all
/// went in, and the index's what it made of the entries.
pub fn start<'scope, T: Send + 'scope>(
    scope: &'scope Scope<'scope, '_>,
    file: &'scope mut File,
    compression: Compression,
    seal: Seal<'_>,
    index: Option<impl FnOnce(Notes) -> T + Send + 'scope>,
) -> io::Result<Started<'scope, T>> {
    let mut splicer = None;
    let (mut sink, batches) = match (compression, seal) {
        (Compression::None, None) => {
            splicer = Splicer::new(file);
            (Sink::Plain(Plain::new(scope, file)?), BATCHES)
        }
        (Compression::None, Some(_)) => (Sink::Sealed(Out::new(scope, file, seal)?), BATCHES),
        (compressed, _) => (
            Sink::Framed(Framed::new(Out::new(scope, file, seal)?, compressed)?),
            COMPRESSED_BATCHES,
        ),
    };
    // Room for every batch and as many pieces passed: the writer never waits to give
    // one back.
    let (jobs, queued) = sync_channel::<Piece>(2 * batches);
    let (gave_back, done) = sync_channel(batches);
    let (noter, index) = match index {
        Some(index) => {
            let (noter, notes) = notes::channel();
            (Some(noter), Some(scope.spawn(move || index(notes))))
        }
        None => (None, None),
    };
    let writer = scope.spawn(move || {
        let mut tar_len = 0;
        for piece in queued {
            let len = match &piece {
                Piece::Bytes(batch, len) => {
                    sink.write_all(&batch.bytes()[..*len])?;
                    *len as u64
                }
                Piece::Passed(len) => *len,
            };
            tar_len += len;
            // The walk may have stopped waiting (it failed): that is its to say.
            if let Piece::Bytes(batch, _) = piece {
                let _ = gave_back.send(batch);
            }
        }
        let frames = sink.finish()?;
        Ok(Written { tar_len, frames })
    });
    let stream = Stream {
        batch: Batch::new(),
        used: 0,
        free: (1..batches).map(|_| Batch::new()).collect(),
        jobs,
        handed: 0,
        noter,
        done,
        count: batches,
        splicer,
    };
    Ok(Started {
        stream,
        writer,
        index,
    })
}

/// The writer stopped (a write failed); its own error says why.
fn writer_stopped() -> io::Error {
    io::Error::other("the archive writer stopped")
}

impl Stream {
    /// Hands the filled part of the batch to the writer and takes a free one. Unless it
    /// is the `last`, only whole `ALIGN`s go; the rest is carried to the next batch.
    fn send(&mut self, last: bool) -> io::Result<()> {
        let len = if last {
            self.used
        } else {
            self.used - self.used % ALIGN
        };
        if len == 0 {
            return Ok(());
        }
        let mut next = match self.free.pop() {
            Some(batch) => batch,
            None => self.done.recv().map_err(|_| writer_stopped())?,
        };
        let carry = self.used - len;
        next.bytes_mut()[..carry].copy_from_slice(&self.batch.bytes()[len..self.used]);
        let full = std::mem::replace(&mut self.batch, next);
        self.jobs
            .send(Piece::Bytes(full, len))
            .map_err(|_| writer_stopped())?;
        self.handed += len as u64;
        self.used = carry;
        Ok(())
    }

    /// Where the end of the stream is: the offset in the tar stream of what is written
    /// next.
    pub fn position(&self) -> u64 {
        self.handed + self.used as u64
    }

    /// Notes, for the index, an entry written: its `header` (as given to
    /// [`Header::encode`]), which starts at `at` in the tar stream and whose data starts
    /// at `data_at`, and a dumpdir's `listing`. Entries are noted in the order they are
    /// written.
    pub fn note(&mut self, header: Header, at: u64, data_at: u64, listing: &[u8]) {
        // An index's thread that stopped (it failed) takes no more, and says why itself.
        if let Some(noter) = &mut self.noter {
            if !noter.note(header, at, data_at, listing) {
                self.noter = None;
            }
        }
    }

    /// `len` bytes of room at the end of the stream, in one piece, to be filled and then
    /// kept with [`Stream::advance`]. `len` is at most [`ROOM`].
    pub fn room(&mut self, len: usize) -> io::Result<&mut [u8]> {
        assert!(
            len as u64 <= ROOM,
            "room for {len} bytes asked, at most {ROOM} is given"
        );
        if BATCH - self.used < len {
            self.send(false)?;
        }
        Ok(&mut self.batch.bytes_mut()[self.used..self.used + len])
    }

    /// All the room left in the current batch, at least `ALIGN` bytes, to be filled and
    /// then kept with [`Stream::advance`]: large files are read straight into it.
    pub fn space(&mut self) -> io::Result<&mut [u8]> {
        if BATCH - self.used < ALIGN {
            self.send(false)?;
        }
        Ok(&mut self.batch.bytes_mut()[self.used..])
    }

    /// Moves whole pages of `file`'s data, at most `len` bytes, from its offset into a
    /// plain archive by the kernel (see [`splice`]), past the batches; returns how many
    /// bytes of `file` it took, 0 when it moved nothing (then read them instead).
    /// `file`'s offset must be a multiple of the page size.
    pub fn splice_from(&mut self, file: &File, len: u64) -> io::Result<u64> {
        let len = len - len % PAGE;
        if len == 0 || self.splicer.is_none() {
            return Ok(0);
        }
        self.drain()?;
        let Some(splicer) = self.splicer.as_mut().filter(|splicer| splicer.usable()) else {
            self.splicer = None;
            return Ok(0);
        };
        let Moved { archived, spilled } = splicer.move_from(file, len)?;
        if archived > 0 {
            self.jobs
                .send(Piece::Passed(archived as u64))
                .map_err(|_| writer_stopped())?;
            self.handed += archived as u64;
        }
        self.write_all(&spilled)?;
        Ok((archived + spilled.len()) as u64)
    }

    /// Hands what the batch holds to the writer and waits until every batch is back:
    /// all is written, and the archive's offset is the stream's.
    fn drain(&mut self) -> io::Result<()> {
        self.send(true)?;
        while self.free.len() + 1 < self.count {
            let batch = self.done.recv().map_err(|_| writer_stopped())?;
            self.free.push(batch);
        }
        Ok(())
    }

    /// Keeps the first `len` bytes of the room last asked for.
    pub fn advance(&mut self, len: usize) {
        self.used += len;
    }

    /// Ends the stream: what is left goes to the writer, which then finishes the archive
    /// (the compressed trailer) and stops. Its handle says whether all of it went in.
    /// Returns the stream's length, as counted here.
    pub fn finish(mut self) -> io::Result<u64> {
        if let Some(noter) = &mut self.noter {
            noter.send();
        }
        let end = self.position();
        self.send(true)?;
        Ok(end)
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.used == BATCH {
            self.send(false)?;
        }
        Ok(self.batch.put(&mut self.used, buf))
    }

    /// Nothing to do: batches go to the writer as they fill, and [`Stream::finish`]
    /// sends the last.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The tar stream's destination, on the writer thread.
enum Sink<'a> {
    /// An uncompressed archive.
    Plain(Plain<'a>),
    /// An uncompressed archive, encrypted.
    Sealed(Out<'a>),
    /// A compressed one, in independent frames.
    Framed(Framed<'a>),
}

impl Sink<'_> {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Sink::Plain(plain) => plain.write_all(buf),
            Sink::Sealed(out) => out.write_all(buf),
            Sink::Framed(framed) => framed.write_all(buf),
        }
    }

    /// Ends the stream (the last frame, the seek table) and flushes everything to the
    /// file. Returns the frames.
    fn finish(self) -> io::Result<Vec<Frame>> {
        match self {
            Sink::Plain(plain) => plain.file.flush().map(|()| Vec::new()),
            Sink::Sealed(out) => out.finish().map(|()| Vec::new()),
            Sink::Framed(framed) => framed.finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes that tell their offset: a misplaced or repeated piece shows.
    fn pattern(from: usize, len: usize) -> Vec<u8> {
        (from..from + len).map(|i| (i % 251) as u8).collect()
    }

    /// Writes pieces of the given lengths through every way into the stream; returns
    /// what the file holds and what was sent.
    fn through_stream(lengths: &[usize]) -> (Vec<u8>, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.tar");
        let mut file = File::create(&path).unwrap();
        let mut sent = Vec::new();
        std::thread::scope(|scope| {
            let Started {
                mut stream,
                writer,
                index,
            } = start(scope, &mut file, Compression::None, None, None::<fn(Notes)>).unwrap();
            assert!(index.is_none());
            for (i, &len) in lengths.iter().enumerate() {
                let piece = pattern(sent.len(), len);
                match i % 3 {
                    0 => stream.write_all(&piece).unwrap(),
                    1 => {
                        stream.room(len).unwrap().copy_from_slice(&piece);
                        stream.advance(len);
                    }
                    _ => {
                        let mut done = 0;
                        while done < len {
                            let space = stream.space().unwrap();
                            let n = space.len().min(len - done);
                            space[..n].copy_from_slice(&piece[done..done + n]);
                            stream.advance(n);
                            done += n;
                        }
                    }
                }
                sent.extend_from_slice(&piece);
                assert_eq!(stream.position(), sent.len() as u64);
            }
            assert_eq!(stream.finish().unwrap(), sent.len() as u64);
            writer.join().unwrap().unwrap();
        });
        (std::fs::read(&path).unwrap(), sent)
    }

    #[test]
    fn every_byte_arrives_in_order_whatever_the_alignment() {
        // Unaligned pieces make batches carry bytes over; the odd total makes the last
        // write one that direct I/O refuses, so it goes through the page cache.
        let lengths = [
            100,
            ROOM as usize,
            3 * BATCH + 17,
            4096,
            1,
            ROOM as usize - 5,
            7,
        ];
        let (written, sent) = through_stream(&lengths);
        assert_eq!(written.len(), sent.len());
        assert!(written == sent, "the file differs from what was sent");
    }

    #[test]
    fn notes_reach_the_index_in_order_with_where_their_entries_are() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = File::create(dir.path().join("out.tar")).unwrap();
        // More entries than go in one lot, and some larger than a batch.
        let lengths: Vec<usize> = (0..3 * 1024 + 7).map(|i| (i * 7919) % 3000 + 1).collect();
        let mut expected = Vec::new();
        let collect = |notes: Notes| {
            let mut got = Vec::new();
            notes
                .for_each(&mut |e| {
                    got.push((e.name.clone(), e.header, e.data));
                    Ok(())
                })
                .unwrap();
            got
        };
        let got: Vec<_> = std::thread::scope(|scope| {
            let Started {
                mut stream,
                writer,
                index,
            } = start(scope, &mut file, Compression::Zstd, None, Some(collect)).unwrap();
            for (i, &len) in lengths.iter().enumerate() {
                let at = stream.position();
                let big = if i % 500 == 0 { 2 * BATCH } else { 0 };
                stream.write_all(&pattern(at as usize, len + big)).unwrap();
                let name = i.to_string().into_bytes();
                let header = Header::new(name.clone(), crate::tar::Kind::File);
                stream.note(header, at, at + 1, &[]);
                expected.push((name, at, at + 1));
            }
            let end = stream.position();
            assert_eq!(stream.finish().unwrap(), end);
            assert_eq!(writer.join().unwrap().unwrap().tar_len, end);
            index.unwrap().join().unwrap()
        });
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "notes came other than they were taken");
    }

    #[test]
    fn an_empty_stream_writes_nothing() {
        let (written, _) = through_stream(&[]);
        assert!(written.is_empty());
    }

    #[test]
    fn batches_start_aligned() {
        for _ in 0..BATCHES {
            let mut batch = Batch::new();
            assert_eq!(batch.bytes_mut().as_ptr().addr() % ALIGN, 0);
            assert_eq!(batch.bytes().len(), BATCH);
        }
    }
}
