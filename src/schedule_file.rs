//! `backup_schedules.txt`: reading it, and editing it under a lock with an atomic replace.

use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;

use crate::atomic_file;
use crate::edit_lock;
use crate::home::Home;
use crate::nofollow;
use crate::schedule::Schedule;

mod change;
mod clash;
mod select;

pub use change::{Replaced, delete_which, replace};
pub use clash::{Admitted, clash_at, name_taken};
pub use select::{choose, choose_one};

/// Permission bits of a schedule file we create; an existing file keeps its own.
const NEW_FILE_MODE: u32 = 0o644;

/// Reads the schedule file as lines of text (without their line ends). A missing file has
/// no lines.
///
/// Lines are returned as written, valid or not: indexes always count lines, so `delete N`
/// removes the line that `list` showed as `N`. A line that is not UTF-8 is an error naming
/// its index; callers that must go on past it use [`read_each_line`].
pub fn read_lines(path: &Path) -> Result<Vec<String>> {
    read_each_line(path)?
        .into_iter()
        .enumerate()
        .map(|(index, line)| {
            // The only reason a line has no text.
            line.map_err(|_| {
                anyhow!(
                    "reading {}: the line at index {index} is not valid UTF-8; `list` shows \
                     it and `delete {index}` removes it",
                    path.display()
                )
            })
        })
        .collect()
}

/// A line of the schedule file whose bytes are not UTF-8: it has no text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotUtf8;

impl fmt::Display for NotUtf8 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the line is not valid UTF-8")
    }
}

impl std::error::Error for NotUtf8 {}

/// Reads the schedule file line by line, for readers that must go on with the good lines
/// whatever the others hold: each line is its text, or [`NotUtf8`].
///
/// A line ending in "\r\n" (a file edited on Windows) reads as if it ended in "\n".
pub fn read_each_line(path: &Path) -> Result<Vec<Result<String, NotUtf8>>> {
    let bytes = read(path)?;
    Ok(split_lines(&bytes).map(text_of).collect())
}

/// Reads the schedule file as raw lines: each line's bytes, a final '\r' included.
pub fn read_raw_lines(path: &Path) -> Result<Vec<Vec<u8>>> {
    let bytes = read(path)?;
    Ok(split_lines(&bytes).map(<[u8]>::to_vec).collect())
}

/// The text of one raw line: its bytes without a final '\r', if they are UTF-8.
pub fn text_of(raw: &[u8]) -> Result<String, NotUtf8> {
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    String::from_utf8(raw.to_vec()).map_err(|_| NotUtf8)
}

/// How a raw line is shown to people: its text, with each byte that is not UTF-8 written
/// as `\xNN` (control characters are escaped when printed, as everywhere else).
pub fn shown(raw: &[u8]) -> String {
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    let mut out = String::with_capacity(raw.len());
    for chunk in raw.utf8_chunks() {
        out.push_str(chunk.valid());
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out
}

/// The file's bytes; none when it is missing. A link planted in its place is refused,
/// never followed (see [`nofollow`]).
fn read(path: &Path) -> Result<Vec<u8>> {
    match nofollow::read(path) {
        Ok(bytes) => Ok(bytes.unwrap_or_default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Splits on '\n' only, keeping any '\r' (readers drop it, see [`text_of`]), so that an
/// edit writes every other line back byte for byte; the newline that ends the last line
/// does not start another.
fn split_lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let empty = body.is_empty() && bytes.len() <= 1;
    body.split(|&b| b == b'\n').filter(move |_| !empty)
}

/// Appends `schedule`, refusing an exact duplicate and a NAME that another PATH already
/// uses (both sources would overwrite one archive).
pub fn append(home: &Home, schedule: &Schedule) -> Result<()> {
    edit(home, |lines| {
        for (index, raw) in lines.iter().enumerate() {
            let Ok(line) = text_of(raw) else {
                continue;
            };
            let Ok(existing) = line.parse::<Schedule>() else {
                continue;
            };
            if existing == *schedule {
                bail!("schedule {schedule} already exists at index {index}");
            }
            if schedule.clashes_with(&existing) {
                bail!(
                    "refusing schedule {schedule}: {}",
                    name_taken(&schedule.name, index, &line)
                );
            }
        }
        // A file edited on Windows gets a line like its others.
        let crlf = lines.last().is_some_and(|last| last.ends_with(b"\r"));
        let mut line = schedule.to_string().into_bytes();
        if crlf {
            line.push(b'\r');
        }
        lines.push(line);
        Ok(())
    })
}

/// A line removed by [`delete`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    /// Its text, when it is UTF-8.
    pub text: Result<String, NotUtf8>,
    /// How it is shown to people (see [`shown`]).
    pub shown: String,
}

/// Removes the line at `index`, valid or not, and returns it; every other line is kept
/// byte for byte.
pub fn delete(home: &Home, index: usize) -> Result<Removed> {
    edit(home, |lines| {
        if index >= lines.len() {
            bail!("{}", no_such_index(index, lines.len()));
        }
        let raw = lines.remove(index);
        Ok(Removed {
            text: text_of(&raw),
            shown: shown(&raw),
        })
    })
}

/// The error for an index past the end of a file of `len` lines.
pub fn no_such_index(index: usize, len: usize) -> String {
    match len {
        0 => format!("no schedule at index {index}: there are no schedules"),
        1 => format!("no schedule at index {index}: the only index is 0"),
        n => format!(
            "no schedule at index {index}: indexes go from 0 to {}",
            n - 1
        ),
    }
}

/// Runs `change` on the file's lines while holding the edit lock, then replaces the file
/// atomically. When `change` fails, the file is not touched.
///
/// Lines are handled as bytes, so that the lines not changed (a "\r" end, bytes that are
/// not UTF-8) are written back exactly as they were.
fn edit<T>(home: &Home, change: impl FnOnce(&mut Vec<Vec<u8>>) -> Result<T>) -> Result<T> {
    let _lock = edit_lock::lock(&home.schedules_lock())?;
    let path = home.schedules();
    let bytes = read(&path)?;
    let mut lines: Vec<Vec<u8>> = split_lines(&bytes).map(<[u8]>::to_vec).collect();
    let result = change(&mut lines)?;
    write_lines(&path, &lines)?;
    Ok(result)
}

fn write_lines(path: &Path, lines: &[Vec<u8>]) -> Result<()> {
    // An existing file keeps its own mode.
    let mode = match fs::symlink_metadata(path) {
        Ok(meta) => meta.permissions().mode() & 0o7777,
        Err(e) if e.kind() == io::ErrorKind::NotFound => NEW_FILE_MODE,
        Err(e) => {
            return Err(e).with_context(|| format!("reading the mode of {}", path.display()));
        }
    };
    let mut text = Vec::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
    for line in lines {
        text.extend_from_slice(line);
        text.push(b'\n');
    }
    atomic_file::replace(path, mode, &text)
}

/// One line of the schedule file, as `list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// The line's index, from 0.
    pub index: usize,
    /// The line as written.
    pub line: String,
    /// The schedule, when the line is valid.
    pub schedule: Option<Schedule>,
    /// Why the line is not a valid schedule, or, for a valid one, why it is skipped: its
    /// NAME is an earlier schedule's, for another PATH or other options ([`Admitted`]).
    pub error: Option<String>,
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.index, self.line)
    }
}

/// Every line of the schedule file, parsed where it can be; a line that is not UTF-8 is
/// shown with those bytes escaped, and a line that clashes with an earlier one
/// ([`Admitted`]) has its schedule and the error saying why it is skipped.
pub fn entries(home: &Home) -> Result<Vec<Entry>> {
    let lines = read_raw_lines(&home.schedules())?;
    let mut admitted = Admitted::default();
    Ok(lines
        .into_iter()
        .enumerate()
        .map(|(index, raw)| {
            let (line, parsed) = match text_of(&raw) {
                Ok(text) => {
                    let parsed = text.parse::<Schedule>().map_err(|e| e.reason.to_string());
                    (text, parsed)
                }
                Err(why) => (shown(&raw), Err(why.to_string())),
            };
            let (schedule, error) = match parsed {
                Ok(schedule) => {
                    let clash = admitted.admit(index, &schedule, &line).err();
                    (Some(schedule), clash)
                }
                Err(err) => (None, Some(err)),
            };
            Entry {
                index,
                line,
                schedule,
                error,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::home::temporary as home;

    fn schedule(line: &str) -> Schedule {
        line.parse().unwrap()
    }

    #[test]
    fn a_missing_file_has_no_lines_and_append_creates_it() {
        let (_dir, home) = home();
        assert!(read_lines(&home.schedules()).unwrap().is_empty());
        append(&home, &schedule("test;16:07;backup_test")).unwrap();
        append(&home, &schedule("test1;16:07;personal_data")).unwrap();
        assert_eq!(
            fs::read_to_string(home.schedules()).unwrap(),
            "test;16:07;backup_test\ntest1;16:07;personal_data\n"
        );
    }

    #[test]
    fn append_after_a_last_line_without_newline_keeps_both_lines() {
        let (_dir, home) = home();
        fs::write(home.schedules(), "a;01:00;a").unwrap();
        append(&home, &schedule("b;02:00;b")).unwrap();
        assert_eq!(
            read_lines(&home.schedules()).unwrap(),
            ["a;01:00;a", "b;02:00;b"]
        );
    }

    #[test]
    fn delete_keeps_the_other_lines_byte_for_byte_even_malformed_ones() {
        let (_dir, home) = home();
        let original = "a;01:00;a\nhand-written junk  \nb;02:00;b\n";
        fs::write(home.schedules(), original).unwrap();
        assert_eq!(delete(&home, 0).unwrap().text, Ok("a;01:00;a".to_owned()));
        assert_eq!(
            fs::read_to_string(home.schedules()).unwrap(),
            "hand-written junk  \nb;02:00;b\n"
        );
    }

    #[test]
    fn a_missing_index_is_refused_and_the_file_is_untouched() {
        let (_dir, home) = home();
        fs::write(home.schedules(), "a;01:00;a\n").unwrap();
        let err = delete(&home, 3).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no schedule at index 3: the only index is 0"
        );
        assert_eq!(fs::read_to_string(home.schedules()).unwrap(), "a;01:00;a\n");
    }

    #[test]
    fn a_name_used_by_another_path_or_an_exact_duplicate_is_refused() {
        let (_dir, home) = home();
        append(&home, &schedule("a;01:00;x")).unwrap();
        let err = append(&home, &schedule("b;02:00;x")).unwrap_err();
        assert!(
            err.to_string().contains("already used by schedule 0"),
            "{err}"
        );
        let err = append(&home, &schedule("a;01:00;x")).unwrap_err();
        assert!(
            err.to_string().contains("already exists at index 0"),
            "{err}"
        );
        // The same source twice a day into one archive is fine, but not in another format.
        append(&home, &schedule("a;13:00;x")).unwrap();
        let err = append(&home, &schedule("a;14:00;x;zstd")).unwrap_err();
        assert!(
            err.to_string().contains("already used by schedule 0"),
            "{err}"
        );
        assert_eq!(read_lines(&home.schedules()).unwrap().len(), 2);
    }

    #[test]
    fn an_existing_files_mode_is_kept() {
        let (_dir, home) = home();
        fs::write(home.schedules(), "a;01:00;a\n").unwrap();
        fs::set_permissions(home.schedules(), fs::Permissions::from_mode(0o600)).unwrap();
        append(&home, &schedule("b;02:00;b")).unwrap();
        let mode = fs::metadata(home.schedules()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn the_service_reads_the_good_lines_of_a_file_with_a_bad_one() {
        assert_eq!(NotUtf8.to_string(), "the line is not valid UTF-8");
        let (_dir, home) = home();
        fs::write(home.schedules(), b"a;01:00;a\r\nb;02:00;\xff\n\nc;03:00;c").unwrap();
        let lines = read_each_line(&home.schedules()).unwrap();
        assert_eq!(
            lines,
            [
                Ok("a;01:00;a".to_owned()),
                Err(NotUtf8),
                Ok(String::new()),
                Ok("c;03:00;c".to_owned()),
            ]
        );
    }

    #[test]
    fn a_crlf_file_reads_as_lf_and_edits_keep_its_other_lines() {
        let (_dir, home) = home();
        fs::write(home.schedules(), "a;01:00;a\r\nb;02:00;b\r\nc;03:00;c\r\n").unwrap();
        assert_eq!(
            read_lines(&home.schedules()).unwrap(),
            ["a;01:00;a", "b;02:00;b", "c;03:00;c"]
        );
        assert_eq!(delete(&home, 1).unwrap().text, Ok("b;02:00;b".to_owned()));
        append(&home, &schedule("d;04:00;d")).unwrap();
        assert_eq!(
            fs::read(home.schedules()).unwrap(),
            b"a;01:00;a\r\nc;03:00;c\r\nd;04:00;d\r\n"
        );
        // The same line with either end is the same schedule.
        let err = append(&home, &schedule("a;01:00;a")).unwrap_err();
        assert!(
            err.to_string().contains("already exists at index 0"),
            "{err}"
        );
    }

    #[test]
    fn a_line_that_is_not_utf8_can_be_deleted_and_the_others_stay() {
        let (_dir, home) = home();
        let original = b"a;01:00;\xff\r\nb;02:00;\xfeb\nc;03:00;c\r\n";
        fs::write(home.schedules(), original).unwrap();
        assert_eq!(shown(b"a;01:00;\xff\r"), "a;01:00;\\xff");
        let removed = delete(&home, 0).unwrap();
        assert_eq!(removed.text, Err(NotUtf8));
        assert_eq!(removed.shown, "a;01:00;\\xff");
        assert_eq!(
            fs::read(home.schedules()).unwrap(),
            b"b;02:00;\xfeb\nc;03:00;c\r\n"
        );
    }

    #[test]
    fn invalid_utf8_is_an_error_naming_the_file() {
        let (_dir, home) = home();
        fs::write(home.schedules(), b"a;01:00;\xff\n").unwrap();
        let err = read_lines(&home.schedules()).unwrap_err();
        assert!(
            format!("{err:#}").contains("backup_schedules.txt"),
            "{err:#}"
        );
    }
}
