//! Reading a compressed archive from the middle: its frames are independent (zstd frames,
//! gzip members), so decoding can start at the one holding a given offset of the tar
//! stream. zstd archives also end with the zstd seekable format's seek table, in a
//! skippable frame that every zstd decoder passes over.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};

use super::Frame;
use crate::naming::Compression;

/// The magic number of the skippable frame holding the seek table.
const SKIPPABLE_MAGIC: u32 = 0x184D_2A5E;
/// The magic number ending the seek table.
const SEEKABLE_MAGIC: u32 = 0x8F92_EAB1;
/// Seek tables of more frames than this are not read: 16 TiB of tar stream in frames of
/// 4 MiB, and a table of 32 MiB at most.
const MAX_FRAMES: u64 = 1 << 22;

/// The tar stream of the archive open as `file` (the archive file, or an encrypted one's
/// plaintext), compressed in `compression` with the
/// given `frames`, from byte `offset` of the tar stream on. Only the frames from the one
/// holding `offset` are decoded.
pub fn open_at<R: Read + Seek + 'static>(
    mut file: R,
    compression: Compression,
    frames: &[Frame],
    offset: u64,
) -> io::Result<Box<dyn Read>> {
    let start = match compression {
        Compression::None => Frame {
            tar: offset,
            file: offset,
        },
        _ => {
            let i = frames.partition_point(|f| f.tar <= offset);
            i.checked_sub(1)
                .map_or(Frame { tar: 0, file: 0 }, |i| frames[i])
        }
    };
    file.seek(SeekFrom::Start(start.file))?;
    let file = BufReader::with_capacity(1 << 16, file);
    let mut stream: Box<dyn Read> = match compression {
        Compression::None => Box::new(file),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(file)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(file)?),
    };
    let skip = offset
        .checked_sub(start.tar)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "frames out of order"))?;
    let skipped = io::copy(&mut (&mut stream).take(skip), &mut io::sink())?;
    if skipped < skip {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("the archive's tar stream ends before byte {offset}"),
        ));
    }
    Ok(stream)
}

/// The seek table of the zstd seekable format for frames of the given (compressed,
/// decompressed) sizes, as a skippable frame, without per-frame checksums (each frame
/// carries zstd's own content checksum).
pub fn zstd_seek_table(sizes: &[(u32, u32)]) -> Vec<u8> {
    let mut table = Vec::with_capacity(sizes.len() * 8 + 17);
    table.extend_from_slice(&SKIPPABLE_MAGIC.to_le_bytes());
    let len = sizes.len() * 8 + 9;
    table.extend_from_slice(&(len as u32).to_le_bytes());
    for (compressed, decompressed) in sizes {
        table.extend_from_slice(&compressed.to_le_bytes());
        table.extend_from_slice(&decompressed.to_le_bytes());
    }
    table.extend_from_slice(&(sizes.len() as u32).to_le_bytes());
    // The descriptor: no checksums.
    table.push(0);
    table.extend_from_slice(&SEEKABLE_MAGIC.to_le_bytes());
    table
}

/// The frames that the seek table at the end of the zstd archive `file` gives, or `None`
/// when it ends with none. Fails on a table that does not fit the file.
pub fn read_zstd_seek_table(file: &File) -> io::Result<Option<Vec<Frame>>> {
    use std::os::unix::fs::FileExt;
    // Read at offsets: the file's own position is left where it was.
    seek_table_of(file.metadata()?.len(), &mut |buf, at| {
        file.read_exact_at(buf, at)
    })
}

/// As [`read_zstd_seek_table`], from a stream that seeks (an encrypted archive's
/// plaintext); its position is left anywhere.
pub fn read_zstd_seek_table_from<R: Read + Seek>(file: &mut R) -> io::Result<Option<Vec<Frame>>> {
    let len = file.seek(SeekFrom::End(0))?;
    seek_table_of(len, &mut |buf, at| {
        file.seek(SeekFrom::Start(at))?;
        file.read_exact(buf)
    })
}

/// The seek table at the end of a zstd stream `len` bytes long, read by `read_at`.
fn seek_table_of(
    len: u64,
    read_at: &mut dyn FnMut(&mut [u8], u64) -> io::Result<()>,
) -> io::Result<Option<Vec<Frame>>> {
    if len < 17 {
        return Ok(None);
    }
    let mut foot = [0u8; 9];
    read_at(&mut foot, len - 9)?;
    let word = |b: &[u8]| u32::from_le_bytes(b.try_into().expect("4 bytes"));
    if word(&foot[5..9]) != SEEKABLE_MAGIC {
        return Ok(None);
    }
    let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, format!("seek table: {why}"));
    let count = u64::from(word(&foot[..4]));
    if count > MAX_FRAMES {
        return Err(bad("more frames than an archive has"));
    }
    let entry = if foot[4] & 0x80 != 0 { 12 } else { 8 };
    let table_len = count * entry + 17;
    if table_len > len {
        return Err(bad("longer than the archive"));
    }
    let mut table = vec![0u8; table_len as usize];
    read_at(&mut table, len - table_len)?;
    if word(&table[..4]) != SKIPPABLE_MAGIC || u64::from(word(&table[4..8])) != table_len - 8 {
        return Err(bad("not in a skippable frame"));
    }
    let mut frames = Vec::with_capacity(count as usize);
    let (mut tar, mut at) = (0u64, 0u64);
    for chunk in table[8..8 + (count * entry) as usize].chunks(entry as usize) {
        frames.push(Frame { tar, file: at });
        at += u64::from(word(&chunk[..4]));
        tar += u64::from(word(&chunk[4..8]));
    }
    if at + table_len != len {
        return Err(bad("its frames do not add up to the archive"));
    }
    Ok(Some(frames))
}

/// The tar stream of a gzip archive read member by member, noting where each starts,
/// to rebuild the index of an archive written in members.
pub struct GzMembers<R = File> {
    /// The member being read, or the file between members.
    state: Option<Member<R>>,
    /// Each member's start, in the tar stream and in the file.
    frames: Vec<Frame>,
    /// Bytes of tar stream read so far.
    tar: u64,
    /// The archive's length.
    len: u64,
}

enum Member<R> {
    Reading(flate2::bufread::GzDecoder<BufReader<R>>),
    Between(BufReader<R>),
}

impl<R: Read + Seek> GzMembers<R> {
    /// Reads the gzip archive open as `file` (or an encrypted one's plaintext), from its
    /// start.
    pub fn new(mut file: R) -> io::Result<Self> {
        let len = file.seek(SeekFrom::End(0))?;
        file.seek(SeekFrom::Start(0))?;
        Ok(GzMembers {
            state: Some(Member::Between(BufReader::with_capacity(1 << 16, file))),
            frames: Vec::new(),
            tar: 0,
            len,
        })
    }

    /// Where each member starts; complete once the stream was read to its end.
    pub fn frames(&self) -> &[Frame] {
        &self.frames
    }
}

impl<R: Read + Seek> Read for GzMembers<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.state.take() {
                None => return Ok(0),
                Some(Member::Between(mut file)) => {
                    let at = file.stream_position()?;
                    if at >= self.len {
                        return Ok(0);
                    }
                    self.frames.push(Frame {
                        tar: self.tar,
                        file: at,
                    });
                    // Positioned on the member's first byte: `bufread` decoders read no
                    // further than their member.
                    let _ = file.fill_buf()?;
                    self.state = Some(Member::Reading(flate2::bufread::GzDecoder::new(file)));
                }
                Some(Member::Reading(mut member)) => {
                    let n = member.read(buf)?;
                    if n > 0 || buf.is_empty() {
                        self.tar += n as u64;
                        self.state = Some(Member::Reading(member));
                        return Ok(n);
                    }
                    self.state = Some(Member::Between(member.into_inner()));
                }
            }
        }
    }
}

use std::io::BufRead;
