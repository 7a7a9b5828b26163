//! The options that choose what goes in besides the patterns: `exclude-from=FILE`,
//! `one-file-system` and `exclude-larger-than=SIZE`.
//!
//! ```text
//! src;02:00;code;exclude-from=/home/me/.backup-excludes;one-file-system;exclude-larger-than=1G
//! ```

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// What a schedule chooses to leave out besides its `exclude=` patterns; all off by
/// default, when none is written on the line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Choosing {
    /// A file of exclude patterns, one a line (`#` comments and blank lines ignored),
    /// read at each backup; relative to the home when not absolute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exclude_from: Option<String>,
    /// Stay on PATH's file system: a folder on another one (a mount point) is stored
    /// empty, as GNU tar's `--one-file-system` does.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub one_file_system: bool,
    /// Leave out regular files larger than this, as restic's `--exclude-larger-than`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exclude_larger_than: Option<Size>,
}

/// The option keys of [`Choosing`], as written on the line.
pub const KEYS: [&str; 3] = ["exclude-from", "one-file-system", "exclude-larger-than"];

/// The key of [`Choosing`] that `key` is, if any.
pub fn key(key: &str) -> Option<&'static str> {
    KEYS.into_iter().find(|k| *k == key)
}

impl Choosing {
    /// Sets the option `key` (one of [`KEYS`]) from its field, `value` after the `=`.
    pub fn set(&mut self, key: &str, value: Option<&str>) -> Result<(), ChoiceError> {
        match (key, value) {
            ("exclude-from", Some(path)) => {
                check_path(path)?;
                self.exclude_from = Some(path.to_owned());
            }
            ("one-file-system", None) => self.one_file_system = true,
            ("exclude-larger-than", Some(size)) => {
                self.exclude_larger_than = Some(size.parse()?);
            }
            _ => return Err(ChoiceError::Unknown),
        }
        Ok(())
    }

    /// Whether any of them is set.
    pub fn is_set(&self) -> bool {
        *self != Self::default()
    }

    /// Adds the options given as flags; a flag may not say otherwise than the line.
    pub fn combine(&mut self, flags: Choosing) -> Result<(), ChoiceError> {
        if let Some(path) = flags.exclude_from {
            check_path(&path)?;
            if self.exclude_from.as_ref().is_some_and(|own| *own != path) {
                return Err(ChoiceError::Contradicts("exclude-from"));
            }
            self.exclude_from = Some(path);
        }
        self.one_file_system |= flags.one_file_system;
        if let Some(size) = flags.exclude_larger_than {
            if self.exclude_larger_than.is_some_and(|own| own != size) {
                return Err(ChoiceError::Contradicts("exclude-larger-than"));
            }
            self.exclude_larger_than = Some(size);
        }
        Ok(())
    }

    /// Sets the option `key` (one of [`KEYS`]) back to its default.
    pub fn clear(&mut self, key: &str) {
        match key {
            "exclude-from" => self.exclude_from = None,
            "one-file-system" => self.one_file_system = false,
            "exclude-larger-than" => self.exclude_larger_than = None,
            _ => {}
        }
    }
}

impl fmt::Display for Choosing {
    /// The options set, as fields of a schedule line, each with its leading `;`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(path) = &self.exclude_from {
            write!(f, ";exclude-from={path}")?;
        }
        if self.one_file_system {
            f.write_str(";one-file-system")?;
        }
        if let Some(size) = self.exclude_larger_than {
            write!(f, ";exclude-larger-than={size}")?;
        }
        Ok(())
    }
}

/// Why an option of [`Choosing`] was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChoiceError {
    /// The field is not one of them as written (`one-file-system=yes`, `exclude-from`).
    Unknown,
    /// A value refused, with the sentence saying why.
    Bad(String),
    /// A flag that says otherwise than the line's own field.
    Contradicts(&'static str),
}

impl std::fmt::Display for ChoiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChoiceError::Unknown => f.write_str("option not understood"),
            ChoiceError::Bad(why) => f.write_str(why),
            ChoiceError::Contradicts(flag) => {
                write!(f, "--{flag} contradicts the schedule's own field")
            }
        }
    }
}

/// The file's path must survive the trip through the line, as a pattern must.
fn check_path(path: &str) -> Result<(), ChoiceError> {
    let why = if path.is_empty() {
        "it is empty"
    } else if path.contains(';') {
        "it holds a ';', which separates a schedule's fields"
    } else if path.chars().any(char::is_control) {
        "it holds a control character"
    } else if path.trim() != path {
        "it starts or ends with white space"
    } else {
        return Ok(());
    };
    Err(ChoiceError::Bad(format!(
        "exclude-from={:?} cannot be used: {why}",
        super::shown(path)
    )))
}

/// A size in bytes, written as a number with an optional unit: `K`, `M`, `G` or `T`
/// (powers of 1024, either case, as restic reads them), e.g. `500K`, `10M`, `1G`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Size(pub u64);

const UNITS: [(char, u32); 4] = [('T', 40), ('G', 30), ('M', 20), ('K', 10)];

impl FromStr for Size {
    type Err = ChoiceError;

    fn from_str(text: &str) -> Result<Self, ChoiceError> {
        let bad = || {
            ChoiceError::Bad(format!(
                "exclude-larger-than={:?} is not a size such as 500K, 10M or 1G (a number \
                 from 1, with K, M, G or T for powers of 1024)",
                super::shown(text)
            ))
        };
        let (digits, shift) = match text.char_indices().last() {
            Some((at, unit)) if unit.is_ascii_alphabetic() => {
                let (_, shift) = UNITS
                    .iter()
                    .find(|(u, _)| *u == unit.to_ascii_uppercase())
                    .ok_or_else(bad)?;
                (&text[..at], *shift)
            }
            _ => (text, 0),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let number: u64 = digits.parse().map_err(|_| bad())?;
        let bytes = number.checked_mul(1 << shift).ok_or_else(bad)?;
        if bytes == 0 {
            return Err(bad());
        }
        Ok(Size(bytes))
    }
}

impl fmt::Display for Size {
    /// In the largest unit that divides it: `10M`, `1536K`, `1000`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (unit, shift) in UNITS {
            if self.0 % (1 << shift) == 0 {
                return write!(f, "{}{unit}", self.0 >> shift);
            }
        }
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_restic_reads_them_and_are_written_in_their_largest_unit() {
        for (text, bytes, written) in [
            ("10M", 10 << 20, "10M"),
            ("10m", 10 << 20, "10M"),
            ("1G", 1 << 30, "1G"),
            ("1024K", 1 << 20, "1M"),
            ("1536k", 1536 << 10, "1536K"),
            ("1000", 1000, "1000"),
            ("2T", 2 << 40, "2T"),
        ] {
            let size: Size = text.parse().unwrap();
            assert_eq!(size, Size(bytes), "{text}");
            assert_eq!(size.to_string(), written, "{text}");
            assert_eq!(written.parse::<Size>().unwrap(), size);
        }
        for bad in [
            "",
            "0",
            "0K",
            "M",
            "10X",
            "-1",
            "+1",
            "1.5G",
            " 1G",
            "1 G",
            "99999999T",
        ] {
            assert!(bad.parse::<Size>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn each_option_round_trips_and_bad_ones_are_refused() {
        let mut choosing = Choosing::default();
        choosing.set("exclude-from", Some("/e x/list")).unwrap();
        choosing.set("one-file-system", None).unwrap();
        choosing.set("exclude-larger-than", Some("10M")).unwrap();
        assert_eq!(
            choosing.to_string(),
            ";exclude-from=/e x/list;one-file-system;exclude-larger-than=10M"
        );
        assert!(choosing.set("one-file-system", Some("yes")).is_err());
        assert!(choosing.set("exclude-from", None).is_err());
        for bad in ["", "a;b", "a\tb", " a"] {
            assert!(choosing.set("exclude-from", Some(bad)).is_err(), "{bad:?}");
        }
        let other = Choosing {
            exclude_from: Some("/other".into()),
            ..Choosing::default()
        };
        assert_eq!(
            choosing.combine(other),
            Err(ChoiceError::Contradicts("exclude-from"))
        );
        for key in KEYS {
            choosing.clear(key);
        }
        assert!(!choosing.is_set());
    }
}
