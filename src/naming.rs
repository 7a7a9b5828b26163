//! The vocabulary of the backups folder, with no I/O: how an archive is compressed and
//! whether it is encrypted (its [`Format`], and so how its file name ends), when a
//! generation was made (its [`Stamp`]), and the file names that say both.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, FixedOffset, Local, NaiveDate, NaiveDateTime, TimeZone, Timelike};

/// How an archive is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// A plain `.tar`.
    #[default]
    None,
    /// `.tar.gz`.
    Gzip,
    /// `.tar.zst`.
    Zstd,
}

impl Compression {
    /// Every format, plain first.
    pub const ALL: [Compression; 3] = [Compression::None, Compression::Gzip, Compression::Zstd];

    /// The archive file name's ending.
    pub fn suffix(self) -> &'static str {
        match self {
            Compression::None => ".tar",
            Compression::Gzip => ".tar.gz",
            Compression::Zstd => ".tar.zst",
        }
    }

    /// The format of an archive file name, from its ending.
    pub fn of_file_name(name: &str) -> Option<Self> {
        // Longest endings first: "x.tar.gz" must not be taken for a plain tar.
        [Compression::Gzip, Compression::Zstd, Compression::None]
            .into_iter()
            .find(|c| name.ends_with(c.suffix()) && name.len() > c.suffix().len())
    }
}

impl fmt::Display for Compression {
    /// The name used on the command line and in the schedule file.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        })
    }
}

impl FromStr for Compression {
    type Err = UnknownCompression;

    /// Accepts `gzip` and `zstd`: a plain tar is written with no compression field at
    /// all, so that a schedule has one spelling only.
    fn from_str(s: &str) -> Result<Self, UnknownCompression> {
        match s {
            "gzip" => Ok(Compression::Gzip),
            "zstd" => Ok(Compression::Zstd),
            other => Err(UnknownCompression(other.to_owned())),
        }
    }
}

/// A compression name that is neither `gzip` nor `zstd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCompression(pub String);

impl fmt::Display for UnknownCompression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "compression {:?} is not gzip or zstd", self.0)
    }
}

impl std::error::Error for UnknownCompression {}

/// The ending an encrypted archive's file name adds: an age v1 file.
pub const ENCRYPTED_SUFFIX: &str = ".age";

/// How an archive file is written: its compression, and whether the compressed stream
/// is then encrypted (`NAME.tar.zst.age`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Format {
    /// How the tar stream is compressed.
    pub compression: Compression,
    /// Whether the compressed stream is sealed in an age file.
    pub encrypted: bool,
}

impl Format {
    /// Every format: the plain ones first, then the encrypted ones.
    pub const ALL: [Format; 6] = [
        Format::plain(Compression::None),
        Format::plain(Compression::Gzip),
        Format::plain(Compression::Zstd),
        Format::sealed(Compression::None),
        Format::sealed(Compression::Gzip),
        Format::sealed(Compression::Zstd),
    ];

    /// An unencrypted archive in `compression`.
    pub const fn plain(compression: Compression) -> Self {
        Format {
            compression,
            encrypted: false,
        }
    }

    /// An encrypted archive in `compression`.
    pub const fn sealed(compression: Compression) -> Self {
        Format {
            compression,
            encrypted: true,
        }
    }

    /// The archive file name's ending: `.tar`, `.tar.zst`, `.tar.gz.age`...
    pub fn suffix(self) -> &'static str {
        match (self.compression, self.encrypted) {
            (c, false) => c.suffix(),
            (Compression::None, true) => ".tar.age",
            (Compression::Gzip, true) => ".tar.gz.age",
            (Compression::Zstd, true) => ".tar.zst.age",
        }
    }

    /// The format of an archive file name, from its ending.
    pub fn of_file_name(name: &str) -> Option<Self> {
        match name.strip_suffix(ENCRYPTED_SUFFIX) {
            Some(sealed) => Compression::of_file_name(sealed).map(Format::sealed),
            None => Compression::of_file_name(name).map(Format::plain),
        }
    }
}

impl From<Compression> for Format {
    fn from(compression: Compression) -> Self {
        Format::plain(compression)
    }
}

/// When a generation was made, at minute precision, with a sequence number for a second
/// (third...) one in the same minute: `2026-11-22_0200`, `2026-11-22_0200-2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Stamp {
    /// The local minute (seconds are always 0).
    minute: NaiveDateTime,
    /// 1 for the first in its minute, written without a suffix.
    seq: u32,
}

impl Stamp {
    /// The stamp of an archive made at `time` (local), first in its minute.
    pub fn at(time: NaiveDateTime) -> Self {
        let minute = time
            .with_second(0)
            .and_then(|t| t.with_nanosecond(0))
            .expect("0 is a valid second and nanosecond");
        Self { minute, seq: 1 }
    }

    /// The local minute it names.
    pub fn minute(&self) -> NaiveDateTime {
        self.minute
    }

    /// The stamp as a time with its UTC offset; in the hour that happens twice, the
    /// first, and in a skipped hour, as if no change had happened.
    pub fn to_local(&self) -> DateTime<FixedOffset> {
        let local = Local.from_local_datetime(&self.minute);
        local
            .earliest()
            .unwrap_or_else(|| Local.from_utc_datetime(&self.minute))
            .fixed_offset()
    }

    /// Parses `YYYY-MM-DD_HHMM` or `YYYY-MM-DD_HHMM-K` (K from 2), exactly as written.
    pub fn parse(text: &str) -> Option<Self> {
        let b = text.as_bytes();
        if b.len() < 15 || b[4] != b'-' || b[7] != b'-' || b[10] != b'_' {
            return None;
        }
        let num = |range: std::ops::Range<usize>| -> Option<u32> {
            let part = &text[range];
            part.bytes()
                .all(|c| c.is_ascii_digit())
                .then(|| part.parse().ok())?
        };
        let date = NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?;
        let minute = date.and_hms_opt(num(11..13)?, num(13..15)?, 0)?;
        let seq = match &text[15..] {
            "" => 1,
            rest => {
                let digits = rest.strip_prefix('-')?;
                // Written as we write it: no leading zero, no `-1`.
                if digits.is_empty() || digits.starts_with('0') {
                    return None;
                }
                let seq = num(16..text.len())?;
                if seq < 2 {
                    return None;
                }
                seq
            }
        };
        Some(Self { minute, seq })
    }
}

impl fmt::Display for Stamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.minute.format("%Y-%m-%d_%H%M"))?;
        if self.seq > 1 {
            write!(f, "-{}", self.seq)?;
        }
        Ok(())
    }
}

/// The stamp for an archive made at `made`, given the stamps already taken: its own
/// minute, unless that is not after every one taken (a second backup in the minute, a
/// clock that went back), then the newest taken with the next sequence number. So a
/// new stamp never equals an old one and always sorts last.
pub fn next_stamp(taken: impl IntoIterator<Item = Stamp>, made: NaiveDateTime) -> Stamp {
    let wanted = Stamp::at(made);
    match taken.into_iter().max() {
        Some(newest) if newest >= wanted => Stamp {
            minute: newest.minute,
            seq: newest.seq + 1,
        },
        _ => wanted,
    }
}

/// The dated file name of a generation: `NAME.YYYY-MM-DD_HHMM[-K].tar[.gz|.zst][.age]`.
pub fn dated_file_name(name: &str, stamp: Stamp, format: Format) -> String {
    format!("{name}.{stamp}{}", format.suffix())
}

/// The hidden name of the newest generation's dated link: `.` and its dated name.
pub fn hidden_file_name(name: &str, stamp: Stamp, format: Format) -> String {
    format!(".{}", dated_file_name(name, stamp, format))
}

/// What an archive's file name says: its schedule's NAME, its stamp when it is a dated
/// (older) generation, and its format. `None` for what is not an archive name.
///
/// A NAME that itself ends in `.YYYY-MM-DD_HHMM` cannot be told from a dated generation
/// of a shorter NAME; such names are read as dated.
pub fn parse_file_name(file_name: &str) -> Option<(&str, Option<Stamp>, Format)> {
    let format = Format::of_file_name(file_name)?;
    let base = &file_name[..file_name.len() - format.suffix().len()];
    if let Some((name, stamp)) = base.rsplit_once('.') {
        if !name.is_empty() {
            if let Some(stamp) = Stamp::parse(stamp) {
                return Some((name, Some(stamp), format));
            }
        }
    }
    Some((base, None, format))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_tell_the_format() {
        assert_eq!(Compression::of_file_name("a.tar"), Some(Compression::None));
        assert_eq!(
            Compression::of_file_name("a.tar.gz"),
            Some(Compression::Gzip)
        );
        assert_eq!(
            Compression::of_file_name("a.tar.zst"),
            Some(Compression::Zstd)
        );
        assert_eq!(Compression::of_file_name("a.zip"), None);
        assert_eq!(Compression::of_file_name(".tar"), None);
    }

    #[test]
    fn only_gzip_and_zstd_are_names() {
        assert_eq!("gzip".parse(), Ok(Compression::Gzip));
        assert_eq!("zstd".parse(), Ok(Compression::Zstd));
        assert!("none".parse::<Compression>().is_err());
        assert!("xz".parse::<Compression>().is_err());
    }

    fn time(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    fn stamp(text: &str) -> Stamp {
        Stamp::parse(text).unwrap_or_else(|| panic!("{text} is not a stamp"))
    }

    #[test]
    fn stamps_read_back_as_written() {
        for text in ["2026-11-22_0200", "2026-11-22_2359-2", "1999-01-01_0000-17"] {
            assert_eq!(stamp(text).to_string(), text);
        }
        assert_eq!(
            Stamp::at(time("2026-11-22 02:00:59")).to_string(),
            "2026-11-22_0200"
        );
        for bad in [
            "2026-11-22_200",
            "2026-11-22_2400",
            "2026-02-30_0100",
            "2026-11-22_0200-1",
            "2026-11-22_0200-02",
            "2026-11-22_0200-",
            "2026-11-22_0200x",
            "2026-11-22-0200",
            "+026-11-22_0200",
        ] {
            assert_eq!(Stamp::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn stamps_order_by_minute_then_sequence() {
        assert!(stamp("2026-11-22_0200") < stamp("2026-11-22_0200-2"));
        assert!(stamp("2026-11-22_0200-9") < stamp("2026-11-22_0200-10"));
        assert!(stamp("2026-11-22_0200-10") < stamp("2026-11-22_0201"));
        // Across midnight and a year.
        assert!(stamp("2026-12-31_2359-3") < stamp("2027-01-01_0000"));
    }

    #[test]
    fn a_new_stamp_is_its_minute_or_after_every_one_taken() {
        let made = time("2026-11-22 02:00:30");
        assert_eq!(next_stamp([], made), stamp("2026-11-22_0200"));
        assert_eq!(
            next_stamp([stamp("2026-11-21_0200")], made),
            stamp("2026-11-22_0200")
        );
        // A second and a third in the same minute.
        assert_eq!(
            next_stamp([stamp("2026-11-22_0200")], made),
            stamp("2026-11-22_0200-2")
        );
        assert_eq!(
            next_stamp([stamp("2026-11-22_0200"), stamp("2026-11-22_0200-2")], made),
            stamp("2026-11-22_0200-3")
        );
        // The autumn DST change: 01:30 EDT, then 01:10 EST the same night. The later
        // backup must not sort before the earlier one.
        let later = next_stamp([stamp("2026-11-01_0130")], time("2026-11-01 01:10:00"));
        assert_eq!(later, stamp("2026-11-01_0130-2"));
        assert!(later > stamp("2026-11-01_0130"));
        // Across midnight.
        assert_eq!(
            next_stamp([stamp("2026-11-21_2359")], time("2026-11-22 00:00:00")),
            stamp("2026-11-22_0000")
        );
    }

    #[test]
    fn file_names_tell_name_stamp_and_compression() {
        let s = stamp("2026-11-22_0200-2");
        let zstd = Format::plain(Compression::Zstd);
        assert_eq!(
            dated_file_name("code", s, zstd),
            "code.2026-11-22_0200-2.tar.zst"
        );
        assert_eq!(
            parse_file_name("code.2026-11-22_0200-2.tar.zst"),
            Some(("code", Some(s), zstd))
        );
        assert_eq!(
            parse_file_name("code.tar.gz"),
            Some(("code", None, Format::plain(Compression::Gzip)))
        );
        // Encrypted ones.
        assert_eq!(
            dated_file_name("code", s, Format::sealed(Compression::Zstd)),
            "code.2026-11-22_0200-2.tar.zst.age"
        );
        assert_eq!(
            parse_file_name("code.2026-11-22_0200-2.tar.zst.age"),
            Some(("code", Some(s), Format::sealed(Compression::Zstd)))
        );
        assert_eq!(
            parse_file_name("code.tar.age"),
            Some(("code", None, Format::sealed(Compression::None)))
        );
        assert_eq!(parse_file_name("code.age"), None);
        assert_eq!(parse_file_name(".tar.age"), None);
        for format in Format::ALL {
            assert_eq!(
                Format::of_file_name(&format!("x{}", format.suffix())),
                Some(format)
            );
        }
        // NAMEs with dots, and dots that are not stamps.
        assert_eq!(
            parse_file_name("my.site.2026-11-22_0200.tar"),
            Some(("my.site", Some(stamp("2026-11-22_0200")), Format::default()))
        );
        assert_eq!(
            parse_file_name("my.site.tar"),
            Some(("my.site", None, Format::default()))
        );
        assert_eq!(
            parse_file_name("v1.2.tar"),
            Some(("v1.2", None, Format::default()))
        );
        assert_eq!(parse_file_name("notes.txt"), None);
        assert_eq!(parse_file_name(".tar"), None);
    }
}
