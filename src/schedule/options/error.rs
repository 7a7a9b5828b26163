//! Why the options of a schedule line, or the flags given with them, were refused: each
//! reason says which option and what would be accepted.

use std::fmt;

use crate::schedule::recipients::BadRecipient;

/// Why the options of a schedule were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptionError {
    /// A field that is no option.
    Unknown(String),
    /// An option given twice.
    Repeated(&'static str),
    /// A number out of its range, or not a number.
    Number {
        /// The option.
        key: &'static str,
        /// The value given.
        value: String,
        /// The smallest allowed.
        min: u16,
        /// The largest allowed.
        max: u16,
    },
    /// An exclude pattern that cannot be stored on the line.
    Pattern {
        /// The pattern.
        pattern: String,
        /// Why not.
        why: &'static str,
    },
    /// An exclude pattern that is not valid `.gitignore` syntax.
    Glob {
        /// The pattern.
        pattern: String,
        /// Why not, as the matcher says.
        why: String,
    },
    /// A `keep-within=` value that is not a duration.
    Within(crate::retention::BadWithin),
    /// A `days=` value that is not a list of days of the week.
    Days(crate::schedule::days::BadDays),
    /// `full-every=N` without `incremental`.
    FullEveryAlone,
    /// A command-line flag that says otherwise than the line's own field.
    Contradicts(&'static str),
    /// An `exclude-from=` or `exclude-larger-than=` value refused, with why.
    Choice(String),
    /// An `encrypt=` value that is no public key.
    Recipient(BadRecipient),
}

impl fmt::Display for OptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptionError::Unknown(field) => write!(
                f,
                "option {:?} is not understood (options: days=DAYS, gzip, zstd, keep=N, \
                 keep-hourly=N, keep-daily=N, keep-weekly=N, keep-monthly=N, keep-yearly=N, \
                 keep-within=DURATION, exclude=PATTERN, exclude-caches, gitignore, \
                 exclude-from=FILE, one-file-system, exclude-larger-than=SIZE, incremental, \
                 full-every=DAYS, encrypt=KEY)",
                crate::schedule::shown(field)
            ),
            OptionError::Repeated(key) => write!(f, "option {key} is given twice"),
            OptionError::Number {
                key,
                value,
                min,
                max,
            } => write!(
                f,
                "{key}={} is not a number from {min} to {max}",
                crate::schedule::shown(value)
            ),
            OptionError::Pattern { pattern, why } => {
                write!(
                    f,
                    "exclude pattern {:?} cannot be used: {why}",
                    crate::schedule::shown(pattern)
                )
            }
            OptionError::Glob { pattern, why } => write!(
                f,
                "exclude pattern {:?} is not a valid pattern: {why}",
                crate::schedule::shown(pattern)
            ),
            OptionError::Days(bad) => bad.fmt(f),
            OptionError::Within(bad) => write!(f, "keep-within={bad}"),
            OptionError::FullEveryAlone => f.write_str("full-every=DAYS needs incremental"),
            OptionError::Choice(why) => f.write_str(why),
            OptionError::Contradicts(flag) => {
                write!(f, "--{flag} contradicts the schedule's own field")
            }
            OptionError::Recipient(bad) => bad.fmt(f),
        }
    }
}
