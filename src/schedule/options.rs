//! A schedule's options: the fields after `PATH;HH:MM;NAME`, one option a field.
//!
//! ```text
//! src;02:00;code;zstd;keep=7;exclude=*.log;exclude=/build/;exclude-caches;gitignore
//! ```
//!
//! Each field is a word (`gzip`, `zstd`, `exclude-caches`, `gitignore`, `incremental`) or
//! a `key=value` pair (`keep=N`, `exclude=PATTERN`, `full-every=DAYS`). A three-field line
//! has every option at its default, which is the brief's behaviour: one plain `.tar`,
//! replaced at each run, holding the whole tree. Anything not understood makes the line
//! malformed, so that a typo never silently changes what is backed up.

use std::fmt;

use serde::Serialize;

use super::choosing::{self, ChoiceError, Choosing};
use super::days::Weekdays;
use super::recipients::Recipient;
use crate::naming::Compression;
use crate::retention::{Periods, Policy, Rule};
pub use error::OptionError;

mod error;

/// The most generations `keep=N` may ask for: a year of daily archives, three times over.
pub const MAX_KEEP: u16 = 1000;

/// The longest interval between two full backups of an incremental chain, in days.
pub const MAX_FULL_EVERY: u16 = 366;

/// How many days an incremental chain runs before its next full backup, by default: a
/// week, as duplicity users write `--full-if-older-than 7D`.
pub const DEFAULT_FULL_EVERY: u16 = 7;

/// Everything a schedule line says after its NAME. The default is a three-field line.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Options {
    /// The days of the week the schedule runs on (every day when not given).
    #[serde(skip_serializing_if = "Weekdays::is_every_day")]
    pub days: Weekdays,
    /// How the archive is compressed.
    pub compression: Compression,
    /// How many archives of the schedule to keep, the newest as `NAME.tar`; 1 replaces
    /// the archive at each run.
    pub keep: u16,
    /// Calendar retention (`keep-daily=7`...), kept besides the newest `keep`.
    #[serde(flatten)]
    pub periods: Periods,
    /// Patterns of paths to leave out, in `.gitignore` syntax, relative to PATH.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// Leave out the content of folders tagged with a valid `CACHEDIR.TAG`.
    pub exclude_caches: bool,
    /// Honour `.gitignore`, `.ignore` and `.git/info/exclude` inside the tree.
    pub gitignore: bool,
    /// An exclude file, one file system, a size limit.
    #[serde(flatten)]
    pub choosing: Choosing,
    /// When set, backups form incremental chains with a full backup every this many days.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incremental: Option<Incremental>,
    /// The public keys the archives are encrypted to; none for plain archives.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub encrypt: Vec<Recipient>,
}

/// An incremental chain's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Incremental {
    /// A chain whose full backup is this many days old starts again with a full backup.
    pub full_every_days: u16,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            days: Weekdays::EVERY_DAY,
            compression: Compression::None,
            keep: 1,
            periods: Periods::default(),
            exclude: Vec::new(),
            exclude_caches: false,
            gitignore: false,
            choosing: Choosing::default(),
            incremental: None,
            encrypt: Vec::new(),
        }
    }
}

impl Options {
    /// Whether the line has no option: the brief's three-field schedule.
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// The retention policy: `keep=N` and the calendar rules.
    pub fn policy(&self) -> Policy {
        Policy {
            last: self.keep,
            periods: self.periods,
        }
    }

    /// Whether the archives are encrypted (`encrypt=KEY`).
    pub fn is_encrypted(&self) -> bool {
        !self.encrypt.is_empty()
    }

    /// Adds a recipient, once.
    fn add_recipient(&mut self, key: Recipient) {
        if !self.encrypt.contains(&key) {
            self.encrypt.push(key);
        }
    }

    /// Whether anything leaves part of the tree out of the archive.
    pub fn excludes_anything(&self) -> bool {
        !self.exclude.is_empty()
            || self.exclude_caches
            || self.gitignore
            || self.choosing.exclude_from.is_some()
    }

    /// Parses the fields after NAME.
    pub fn parse(fields: &[&str]) -> Result<Self, OptionError> {
        let mut options = Options::default();
        let mut seen: Vec<&'static str> = Vec::new();
        let mut once = |key: &'static str| {
            if seen.contains(&key) {
                Err(OptionError::Repeated(key))
            } else {
                seen.push(key);
                Ok(())
            }
        };
        let mut full_every = None;
        for &field in fields {
            let (key, value) = field
                .split_once('=')
                .map_or((field, None), |(key, value)| (key, Some(value)));
            match (key, value) {
                ("days", Some(value)) => {
                    once("days")?;
                    options.days = value.parse().map_err(OptionError::Days)?;
                }
                ("gzip" | "zstd", None) => {
                    once("compression")?;
                    options.compression = field.parse().expect("gzip and zstd are compressions");
                }
                ("keep" | "keep-last", Some(value)) => {
                    once("keep")?;
                    options.keep = parse_number("keep", value, 1, MAX_KEEP)?;
                }
                ("keep-within", Some(value)) => {
                    once("keep-within")?;
                    options.periods.within = Some(value.parse().map_err(OptionError::Within)?);
                }
                (key, Some(value)) if period(key).is_some() => {
                    let (name, rule) = period(key).expect("just matched");
                    once(name)?;
                    let n = parse_number(name, value, 1, MAX_KEEP)?;
                    *options.periods.count_mut(rule).expect("a counted rule") = n;
                }
                ("exclude", Some(pattern)) => {
                    check_pattern(pattern)?;
                    if !options.exclude.iter().any(|p| p == pattern) {
                        options.exclude.push(pattern.to_owned());
                    }
                }
                (flag @ ("exclude-caches" | "gitignore"), None) => {
                    let (name, on) = match flag {
                        "gitignore" => ("gitignore", &mut options.gitignore),
                        _ => ("exclude-caches", &mut options.exclude_caches),
                    };
                    once(name)?;
                    *on = true;
                }
                (key, value) if choosing::key(key).is_some() => {
                    once(choosing::key(key).expect("just matched"))?;
                    options
                        .choosing
                        .set(key, value)
                        .map_err(|e| e.about(field))?;
                }
                ("incremental", None) => {
                    once("incremental")?;
                    options.incremental = Some(Incremental {
                        full_every_days: DEFAULT_FULL_EVERY,
                    });
                }
                ("encrypt", Some(key)) => {
                    options.add_recipient(key.parse().map_err(OptionError::Recipient)?);
                }
                ("full-every", Some(value)) => {
                    once("full-every")?;
                    full_every = Some(parse_number("full-every", value, 1, MAX_FULL_EVERY)?);
                }
                _ => return Err(OptionError::Unknown(field.to_owned())),
            }
        }
        set_full_every(&mut options, full_every)?;
        Ok(options)
    }

    /// Adds the options given as command-line flags to those of the line. A flag that
    /// contradicts the line's own field is an error; excludes add up.
    pub fn combine(&mut self, flags: Options) -> Result<(), OptionError> {
        let defaults = Options::default();
        if flags.days != defaults.days {
            if self.days != defaults.days && self.days != flags.days {
                return Err(OptionError::Contradicts("days"));
            }
            self.days = flags.days;
        }
        if flags.compression != defaults.compression {
            if self.compression != defaults.compression && self.compression != flags.compression {
                return Err(OptionError::Contradicts("compress"));
            }
            self.compression = flags.compression;
        }
        if flags.keep != defaults.keep {
            if self.keep != defaults.keep && self.keep != flags.keep {
                return Err(OptionError::Contradicts("keep"));
            }
            self.keep = flags.keep;
        }
        self.periods = combine_periods(self.periods, flags.periods)?;
        for pattern in flags.exclude {
            check_pattern(&pattern)?;
            if !self.exclude.contains(&pattern) {
                self.exclude.push(pattern);
            }
        }
        self.exclude_caches |= flags.exclude_caches;
        self.gitignore |= flags.gitignore;
        self.choosing
            .combine(flags.choosing)
            .map_err(|e| e.about(""))?;
        if let Some(wanted) = flags.incremental {
            let default = DEFAULT_FULL_EVERY;
            let merged = match self.incremental {
                None => wanted,
                Some(own) if own == wanted || wanted.full_every_days == default => own,
                Some(own) if own.full_every_days == default => wanted,
                Some(_) => return Err(OptionError::Contradicts("full-every")),
            };
            self.incremental = Some(merged);
        }
        for key in flags.encrypt {
            self.add_recipient(key);
        }
        Ok(())
    }
}

impl fmt::Display for Options {
    /// The options as fields of a schedule line, each with its leading `;`, in a fixed
    /// order; options at their default are left out, so a three-field line stays one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.days.is_every_day() {
            write!(f, ";days={}", self.days)?;
        }
        if self.compression != Compression::None {
            write!(f, ";{}", self.compression)?;
        }
        if self.keep != 1 {
            write!(f, ";keep={}", self.keep)?;
        }
        for (rule, n) in self.periods.counts() {
            if n > 0 {
                write!(f, ";{}={n}", rule.option())?;
            }
        }
        if let Some(within) = self.periods.within {
            write!(f, ";keep-within={within}")?;
        }
        for pattern in &self.exclude {
            write!(f, ";exclude={pattern}")?;
        }
        if self.exclude_caches {
            f.write_str(";exclude-caches")?;
        }
        if self.gitignore {
            f.write_str(";gitignore")?;
        }
        self.choosing.fmt(f)?;
        if let Some(chain) = self.incremental {
            f.write_str(";incremental")?;
            if chain.full_every_days != DEFAULT_FULL_EVERY {
                write!(f, ";full-every={}", chain.full_every_days)?;
            }
        }
        for key in &self.encrypt {
            write!(f, ";encrypt={key}")?;
        }
        Ok(())
    }
}

/// `full-every=DAYS`, if given, for the chain `incremental` asked for.
fn set_full_every(options: &mut Options, full_every: Option<u16>) -> Result<(), OptionError> {
    if let Some(days) = full_every {
        let chain = options
            .incremental
            .as_mut()
            .ok_or(OptionError::FullEveryAlone)?;
        chain.full_every_days = days;
    }
    Ok(())
}

impl ChoiceError {
    /// As an error about the option `field` of a line.
    fn about(self, field: &str) -> OptionError {
        match self {
            ChoiceError::Unknown => OptionError::Unknown(field.to_owned()),
            ChoiceError::Bad(why) => OptionError::Choice(why),
            ChoiceError::Contradicts(flag) => OptionError::Contradicts(flag),
        }
    }
}

/// The counted calendar rule an option names (`keep-daily`...), with its name.
pub(super) fn period(key: &str) -> Option<(&'static str, Rule)> {
    [
        Rule::Hourly,
        Rule::Daily,
        Rule::Weekly,
        Rule::Monthly,
        Rule::Yearly,
    ]
    .into_iter()
    .find(|rule| rule.option() == key)
    .map(|rule| (rule.option(), rule))
}

/// The calendar rules of the line with those of the flags added; a flag may not say
/// otherwise than the line.
fn combine_periods(mut line: Periods, flags: Periods) -> Result<Periods, OptionError> {
    for (rule, n) in flags.counts() {
        let own = line.count_mut(rule).expect("a counted rule");
        if n > 0 {
            if *own > 0 && *own != n {
                return Err(OptionError::Contradicts(rule.option()));
            }
            *own = n;
        }
    }
    if let Some(within) = flags.within {
        if line.within.is_some_and(|own| own != within) {
            return Err(OptionError::Contradicts("keep-within"));
        }
        line.within = Some(within);
    }
    Ok(line)
}

fn parse_number(key: &'static str, value: &str, min: u16, max: u16) -> Result<u16, OptionError> {
    let out_of_range = || OptionError::Number {
        key,
        value: value.to_owned(),
        min,
        max,
    };
    // Digits only, as for an INDEX: `+3` or ` 3` is a typo, not a number.
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(out_of_range());
    }
    value
        .parse::<u16>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(out_of_range)
}

/// A pattern must survive the trip through the line: a `;` would split it, a control
/// character would garble `list`, and white space at either end would be invisible.
fn check_pattern(pattern: &str) -> Result<(), OptionError> {
    let why = if pattern.is_empty() {
        "it is empty"
    } else if pattern.contains(';') {
        "it holds a ';', which separates a schedule's fields"
    } else if pattern.chars().any(char::is_control) {
        "it holds a control character"
    } else if pattern.trim() != pattern {
        "it starts or ends with white space"
    } else {
        // Refused here, not at the next backup: the matcher must accept every pattern.
        return check_glob(pattern);
    };
    Err(OptionError::Pattern {
        pattern: pattern.to_owned(),
        why,
    })
}

/// Checks that `pattern` is valid `.gitignore` syntax for the matcher the walk uses; the
/// error says why not.
fn check_glob(pattern: &str) -> Result<(), OptionError> {
    ignore::gitignore::GitignoreBuilder::new(".")
        .add_line(None, pattern)
        .map(|_| ())
        .map_err(|e| OptionError::Glob {
            pattern: pattern.to_owned(),
            why: match e {
                ignore::Error::Glob { err, .. } => err,
                other => other.to_string(),
            },
        })
}

#[cfg(test)]
mod tests;
