//! One schedule: `PATH;HH:MM;NAME`, optionally followed by options (`;zstd;keep=7`),
//! parsed and validated without touching the file system.

mod choosing;
mod clear;
mod days;
mod options;
mod recipients;
mod which;

use std::fmt;
use std::str::FromStr;

use chrono::NaiveTime;
use serde::{Serialize, Serializer};

use crate::naming::{Compression, Format, Stamp};

pub use choosing::{ChoiceError, Choosing, Size};
pub use clear::CLEARABLE;
pub use days::{BadDays, Weekdays};
pub use options::{
    DEFAULT_FULL_EVERY, Incremental, MAX_FULL_EVERY, MAX_KEEP, OptionError, Options,
};
pub use recipients::{BadRecipient, Recipient, parse_recipients_file};
pub use which::Which;

/// A time of day at minute precision, `00:00` to `23:59`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimeOfDay {
    hour: u8,
    minute: u8,
}

impl TimeOfDay {
    /// Builds a time of day, or `None` when out of range.
    pub fn new(hour: u8, minute: u8) -> Option<Self> {
        (hour < 24 && minute < 60).then_some(Self { hour, minute })
    }

    /// The hour, 0 to 23.
    pub fn hour(self) -> u8 {
        self.hour
    }

    /// The minute, 0 to 59.
    pub fn minute(self) -> u8 {
        self.minute
    }

    /// The time as a chrono value, at second 0.
    pub fn to_naive(self) -> NaiveTime {
        NaiveTime::from_hms_opt(self.hour.into(), self.minute.into(), 0)
            .expect("hour and minute were range-checked in TimeOfDay::new")
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.hour, self.minute)
    }
}

impl Serialize for TimeOfDay {
    /// As `"HH:MM"`, the way people and the schedule file write it.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl FromStr for TimeOfDay {
    type Err = Reason;

    /// Accepts exactly `HH:MM`: two digits each, as cron users write it, so that `7:5`
    /// is refused rather than guessed at.
    fn from_str(s: &str) -> Result<Self, Reason> {
        let bytes = s.as_bytes();
        let two_digits = |b: &[u8]| -> Option<u8> {
            match b {
                [a @ b'0'..=b'9', b @ b'0'..=b'9'] => Some((a - b'0') * 10 + (b - b'0')),
                _ => None,
            }
        };
        if bytes.len() != 5 || bytes[2] != b':' {
            return Err(Reason::TimeFormat(s.to_owned()));
        }
        let (hour, minute) = two_digits(&bytes[..2])
            .zip(two_digits(&bytes[3..]))
            .ok_or_else(|| Reason::TimeFormat(s.to_owned()))?;
        TimeOfDay::new(hour, minute).ok_or_else(|| Reason::TimeRange(s.to_owned()))
    }
}

/// When a schedule runs: at its time of day, on the days of the week it allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Calendar {
    /// The local time of day.
    pub time: TimeOfDay,
    /// The days it runs on.
    pub days: Weekdays,
}

impl From<TimeOfDay> for Calendar {
    /// Every day at `time`.
    fn from(time: TimeOfDay) -> Self {
        Calendar {
            time,
            days: Weekdays::EVERY_DAY,
        }
    }
}

/// A validated schedule: back up `path` every day at `time` into `backups/NAME.tar`
/// (or `NAME.tar.gz`, `NAME.tar.zst` when compressed), as its options say.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Schedule {
    /// The source, as written: a directory or a single file, relative to the home or absolute.
    pub path: String,
    /// Local time of day at which the backup is due.
    pub time: TimeOfDay,
    /// The archive's base name.
    pub name: String,
    /// Everything after NAME; a three-field line has every option at its default.
    #[serde(flatten)]
    pub options: Options,
}

impl Schedule {
    /// The archive's file name inside `backups/`.
    pub fn archive_file_name(&self) -> String {
        format!("{}{}", self.name, self.format().suffix())
    }

    /// How the archive file is written: compressed, and encrypted when the schedule has
    /// recipients.
    pub fn format(&self) -> Format {
        Format {
            compression: self.options.compression,
            encrypted: self.options.is_encrypted(),
        }
    }

    /// Whether `self` may not stand beside `earlier` in one schedule file: it uses the
    /// same NAME for another PATH or other options, so both would write one archive
    /// series. The one rule of `create`, `list`, `run` and the service; the same line twice
    /// is no clash (it is one schedule, run once).
    pub fn clashes_with(&self, earlier: &Schedule) -> bool {
        self.name == earlier.name && (self.path != earlier.path || self.options != earlier.options)
    }

    /// How the archive is compressed.
    pub fn compression(&self) -> Compression {
        self.options.compression
    }

    /// When it runs.
    pub fn calendar(&self) -> Calendar {
        Calendar {
            time: self.time,
            days: self.options.days,
        }
    }
}

impl fmt::Display for Schedule {
    /// Writes the schedule back in its file form: `PATH;HH:MM;NAME`, followed by the
    /// options that are not at their default, in a fixed order.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{};{};{}{}",
            self.path, self.time, self.name, self.options
        )
    }
}

impl FromStr for Schedule {
    type Err = ParseError;

    fn from_str(line: &str) -> Result<Self, ParseError> {
        parse_fields(line).map_err(|reason| ParseError {
            line: line.to_owned(),
            reason,
        })
    }
}

fn parse_fields(line: &str) -> Result<Schedule, Reason> {
    let fields: Vec<&str> = line.split(';').collect();
    let [path, time, name, ref options @ ..] = fields[..] else {
        return Err(Reason::FieldCount(fields.len()));
    };
    if path.is_empty() {
        return Err(Reason::EmptyPath);
    }
    if path.chars().any(char::is_control) {
        return Err(Reason::ControlCharInPath);
    }
    let time = time.parse()?;
    validate_name(name)?;
    let options = Options::parse(options).map_err(Reason::Option)?;
    Ok(Schedule {
        path: path.to_owned(),
        time,
        name: name.to_owned(),
        options,
    })
}

/// The longest NAME, in bytes: the temporary archive `.NAME.tar.zst.PID.partial` must
/// still fit the 255 bytes a file name may have.
pub const MAX_NAME_LEN: usize = 200;

/// A NAME becomes a file name in `backups/`, so it must not be able to point anywhere
/// else, nor hide itself among the service's own hidden temporary files.
fn validate_name(name: &str) -> Result<(), Reason> {
    if name.is_empty() {
        Err(Reason::EmptyName)
    } else if name.contains('/') {
        Err(Reason::SlashInName)
    } else if name.starts_with('.') {
        Err(Reason::DotName)
    } else if name.chars().any(char::is_control) {
        Err(Reason::ControlCharInName)
    } else if name.trim() != name {
        // `x ` beside `x` would be a second archive that looks like the first.
        Err(Reason::SpaceAroundName)
    } else if name.len() > MAX_NAME_LEN {
        Err(Reason::NameTooLong(name.len()))
    } else if name
        .rsplit_once('.')
        .is_some_and(|(_, end)| Stamp::parse(end).is_some())
    {
        // `code.2026-11-22_0200.tar` is a kept generation of `code`: another NAME's
        // archive of that name would be listed, rotated and pruned as one.
        Err(Reason::DatedName)
    } else {
        Ok(())
    }
}

/// Why a schedule line was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Fewer than three `;`-separated fields.
    FieldCount(usize),
    /// A field after NAME that is not a valid option.
    Option(OptionError),
    /// The PATH field is empty.
    EmptyPath,
    /// The PATH holds a control character (a tab, a carriage return...).
    ControlCharInPath,
    /// The time is not two digits, a colon, two digits.
    TimeFormat(String),
    /// The time is well formed but not a time of day.
    TimeRange(String),
    /// The NAME field is empty.
    EmptyName,
    /// The NAME holds a `/`.
    SlashInName,
    /// The NAME starts with a dot (`.`, `..`, hidden names).
    DotName,
    /// The NAME holds a control character.
    ControlCharInName,
    /// The NAME starts or ends with white space.
    SpaceAroundName,
    /// The NAME is longer than [`MAX_NAME_LEN`] bytes.
    NameTooLong(usize),
    /// The NAME ends in `.YYYY-MM-DD_HHMM`, as a kept generation of another NAME does.
    DatedName,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::FieldCount(n) => {
                write!(f, "expected PATH;HH:MM;NAME[;OPTION]..., found {n} field")?;
                if *n != 1 {
                    f.write_str("s")?;
                }
                Ok(())
            }
            Reason::Option(why) => why.fmt(f),
            Reason::EmptyPath => f.write_str("PATH is empty"),
            Reason::ControlCharInPath => f.write_str("PATH holds a control character"),
            Reason::TimeFormat(t) => {
                write!(f, "time {:?} is not HH:MM", shown(t))?;
                match suggested_time(t) {
                    Some(time) => write!(f, "; did you mean {time}?"),
                    None => Ok(()),
                }
            }
            Reason::TimeRange(t) => write!(f, "time {t:?} is not between 00:00 and 23:59"),
            Reason::EmptyName => f.write_str("NAME is empty"),
            Reason::SlashInName => f.write_str("NAME holds a '/'"),
            Reason::DotName => f.write_str("NAME starts with '.'"),
            Reason::ControlCharInName => f.write_str("NAME holds a control character"),
            Reason::SpaceAroundName => f.write_str("NAME starts or ends with a space"),
            Reason::NameTooLong(n) => {
                write!(f, "NAME is {n} bytes long, more than {MAX_NAME_LEN}")
            }
            Reason::DatedName => f.write_str(
                "NAME ends in .YYYY-MM-DD_HHMM, which names a kept generation of another NAME",
            ),
        }
    }
}

/// The time a user most likely meant by `text` when it is not written `HH:MM`: one or two
/// digits each side of the colon (`7:5` is `07:05`), within the day.
fn suggested_time(text: &str) -> Option<TimeOfDay> {
    let (h, m) = text.split_once(':')?;
    let number = |part: &str| -> Option<u8> {
        (matches!(part.len(), 1 | 2) && part.bytes().all(|b| b.is_ascii_digit()))
            .then(|| part.parse().ok())?
    };
    TimeOfDay::new(number(h)?, number(m)?)
}

/// A line that is not a valid schedule, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The refused line, as given.
    pub line: String,
    /// Why it was refused.
    pub reason: Reason,
}

/// How much of a refused line (or field) an error shows: enough to recognise it, while a
/// line of megabytes does not become a log line of megabytes.
const SHOWN: usize = 300;

/// `text` as an error shows it: cut after [`SHOWN`] bytes, saying how long it was.
pub(crate) fn shown(text: &str) -> std::borrow::Cow<'_, str> {
    if text.len() <= SHOWN {
        return text.into();
    }
    let mut end = SHOWN;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes in all)", &text[..end], text.len()).into()
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "malformed schedule: {} ({})",
            shown(&self.line),
            self.reason
        )
    }
}

impl std::error::Error for ParseError {}

#[cfg(test)]
mod tests;
