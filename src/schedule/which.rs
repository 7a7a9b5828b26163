//! Which schedules a command means: an INDEX as `list` shows it, or a NAME.

use std::fmt;
use std::str::FromStr;

/// The schedules a command such as `run`, `delete` or `edit` is given: an argument of
/// digits only is an INDEX (so that scripts written for indexes keep working, even for a
/// NAME made of digits); anything else is a NAME, meaning every line of that NAME.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Which {
    /// The line at this index, from 0.
    Index(usize),
    /// Every line with this NAME.
    Name(String),
}

impl FromStr for Which {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            return text
                .parse()
                .map(Which::Index)
                .map_err(|_| "the number is too large for an index".to_owned());
        }
        super::validate_name(text).map_err(|why| {
            format!("an index is a number as `list` shows it, from 0, and this is no NAME: {why}")
        })?;
        Ok(Which::Name(text.to_owned()))
    }
}

impl fmt::Display for Which {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Which::Index(index) => write!(f, "schedule {index}"),
            Which::Name(name) => write!(f, "schedule {name:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_an_index_and_anything_else_a_valid_name() {
        assert_eq!("0".parse(), Ok(Which::Index(0)));
        assert_eq!("0042".parse(), Ok(Which::Index(42)));
        assert_eq!("proj".parse(), Ok(Which::Name("proj".into())));
        assert_eq!("+1".parse(), Ok(Which::Name("+1".into())));
        assert_eq!("0x1".parse(), Ok(Which::Name("0x1".into())));
        for bad in ["", " 1", "a/b", ".hidden", "x\n"] {
            assert!(bad.parse::<Which>().is_err(), "{bad:?}");
        }
        assert!("99999999999999999999999".parse::<Which>().is_err());
    }
}
