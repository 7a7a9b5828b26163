//! A compressed archive written as independent frames, so that it can be read from the
//! middle (see [`crate::index::seekable`]): zstd frames of [`ZSTD_FRAME`] bytes of tar
//! stream each, followed by the zstd seekable format's seek table, and gzip members of
//! [`GZIP_MEMBER`] bytes each. `zstd -d`, `gzip -d`, `tar` and bsdtar read them as one
//! stream.

use std::io::{self, Write};

use zstd::zstd_safe::zstd_sys::ZSTD_EndDirective;
use zstd::zstd_safe::{CCtx, CParameter, InBuffer, OutBuffer};

use super::sealed::Out;
use crate::index::Frame;
use crate::index::seekable::zstd_seek_table;
use crate::naming::Compression;

/// How much of the tar stream a zstd frame holds, at least (a frame ends at the end of
/// the batch that fills it): decoding starts at a frame, so one file is read by
/// decoding at most this much more than it holds.
pub const ZSTD_FRAME: u64 = 4 << 20;

/// How much a gzip member holds, at least.
pub const GZIP_MEMBER: u64 = 1 << 20;

/// The size of the jobs zstd's workers compress.
const ZSTD_JOB: i32 = 512 << 10;

/// zstd's window, as a power of two: 1 MiB, so that a worker's history stays small.
const ZSTD_WINDOW_LOG: u32 = 20;

/// The compressed archive, on the writer thread.
pub struct Framed<'a> {
    out: Out<'a>,
    codec: Codec,
    /// Where the current frame started.
    start: Frame,
    /// Where we are: bytes of tar stream taken, bytes of archive written.
    at: Frame,
    /// Every frame started so far, the current one last.
    frames: Vec<Frame>,
}

enum Codec {
    Gzip(Option<flate2::write::GzEncoder<Vec<u8>>>),
    Zstd(Box<CCtx<'static>>, Vec<u8>),
}

impl<'a> Framed<'a> {
    /// Starts writing `out` compressed in `compression` (gzip or zstd).
    pub fn new(out: Out<'a>, compression: Compression) -> io::Result<Self> {
        let codec = match compression {
            Compression::None => unreachable!("a plain archive is not compressed"),
            Compression::Gzip => Codec::Gzip(None),
            Compression::Zstd => Codec::Zstd(Box::new(zstd_context()?), Vec::new()),
        };
        Ok(Framed {
            out,
            codec,
            start: Frame { tar: 0, file: 0 },
            at: Frame { tar: 0, file: 0 },
            frames: Vec::new(),
        })
    }

    /// Compresses `buf` into the current frame, and ends the frame when it is full.
    pub fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        if self.at == self.start {
            self.frames.push(self.start);
        }
        match &mut self.codec {
            Codec::Gzip(member) => member
                .get_or_insert_with(|| {
                    let out = Vec::with_capacity(GZIP_MEMBER as usize);
                    flate2::write::GzEncoder::new(out, flate2::Compression::default())
                })
                .write_all(buf)?,
            Codec::Zstd(cctx, out) => {
                let n = zstd_step(cctx, out, buf, &mut self.out)?;
                self.at.file += n;
            }
        }
        self.at.tar += buf.len() as u64;
        let full = match self.codec {
            Codec::Gzip(_) => GZIP_MEMBER,
            Codec::Zstd(..) => ZSTD_FRAME,
        };
        if self.at.tar - self.start.tar >= full {
            self.end_frame()?;
        }
        Ok(())
    }

    /// Ends the current frame, if it holds anything.
    fn end_frame(&mut self) -> io::Result<()> {
        if self.at == self.start {
            return Ok(());
        }
        match &mut self.codec {
            Codec::Gzip(member) => {
                if let Some(member) = member.take() {
                    let bytes = member.finish()?;
                    self.out.write_all(&bytes)?;
                    self.at.file += bytes.len() as u64;
                }
            }
            Codec::Zstd(cctx, out) => self.at.file += zstd_end(cctx, out, &mut self.out)?,
        }
        self.start = self.at;
        Ok(())
    }

    /// Ends the last frame, writes the seek table of a zstd archive, and flushes it all
    /// to the file. Returns where each frame starts.
    pub fn finish(mut self) -> io::Result<Vec<Frame>> {
        self.end_frame()?;
        if let Codec::Zstd(..) = self.codec {
            let mut sizes = Vec::with_capacity(self.frames.len());
            let ends = self.frames.iter().skip(1).copied().chain([self.at]);
            for (start, end) in self.frames.iter().zip(ends) {
                let size = |n: u64| {
                    u32::try_from(n).map_err(|_| io::Error::other("a zstd frame over 4 GiB"))
                };
                sizes.push((size(end.file - start.file)?, size(end.tar - start.tar)?));
            }
            self.out.write_all(&zstd_seek_table(&sizes))?;
        }
        self.out.finish()?;
        Ok(self.frames)
    }
}

/// A zstd context as archives are written with: level 3, a content checksum in every
/// frame, compressed on every core.
fn zstd_context() -> io::Result<CCtx<'static>> {
    let mut cctx = CCtx::create();
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    // A checksum of the content, so that damage to the data itself is caught on reading,
    // not only damage to the frame. Fed by its own thread, the context keeps several
    // jobs in flight, each holding its input, output and window: with the default job
    // size memory grows with the number of cores on incompressible data, so jobs and the
    // window are kept small (see docs/benchmarks.md for what it measured).
    for parameter in [
        CParameter::CompressionLevel(3),
        CParameter::ChecksumFlag(true),
        CParameter::NbWorkers(workers as u32),
        CParameter::JobSize(ZSTD_JOB as u32),
        CParameter::WindowLog(ZSTD_WINDOW_LOG),
    ] {
        cctx.set_parameter(parameter).map_err(zstd_error)?;
    }
    Ok(cctx)
}

fn zstd_error(code: usize) -> io::Error {
    io::Error::other(format!("zstd: {}", zstd::zstd_safe::get_error_name(code)))
}

/// Compresses `input` into the current frame, writing what comes out to `file`; returns
/// how many bytes it wrote.
fn zstd_step(
    cctx: &mut CCtx,
    out: &mut Vec<u8>,
    input: &[u8],
    file: &mut impl Write,
) -> io::Result<u64> {
    let mut input = InBuffer::around(input);
    let mut written = 0;
    while input.pos() < input.src.len() {
        written += zstd_call(
            cctx,
            out,
            &mut input,
            ZSTD_EndDirective::ZSTD_e_continue,
            file,
        )?
        .1;
    }
    Ok(written)
}

/// Ends the current frame; returns how many bytes it wrote.
fn zstd_end(cctx: &mut CCtx, out: &mut Vec<u8>, file: &mut impl Write) -> io::Result<u64> {
    let mut input = InBuffer::around(&[]);
    let mut written = 0;
    loop {
        let (left, n) = zstd_call(cctx, out, &mut input, ZSTD_EndDirective::ZSTD_e_end, file)?;
        written += n;
        if left == 0 {
            return Ok(written);
        }
    }
}

/// One call of the compressor; returns what it has left to flush and what it wrote.
fn zstd_call(
    cctx: &mut CCtx,
    out: &mut Vec<u8>,
    input: &mut InBuffer<'_>,
    directive: ZSTD_EndDirective,
    file: &mut impl Write,
) -> io::Result<(usize, u64)> {
    out.clear();
    out.reserve(CCtx::out_size());
    let mut output = OutBuffer::around(out);
    let left = cctx
        .compress_stream2(&mut output, input, directive)
        .map_err(zstd_error)?;
    let n = output.pos();
    file.write_all(&out[..n])?;
    Ok((left, n as u64))
}
