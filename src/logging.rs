//! Timestamped log files: `[DD/MM/YYYY HH:MM] message`, one whole line per write.
//!
//! simplelog combines the loggers (the file, and for the service a copy on stderr), but the
//! file line is formatted here: simplelog's timestamps use a UTC offset read once at start-up,
//! which a service that runs across a DST change would get wrong, and it writes a line in
//! several pieces, which two processes appending to one log could interleave.

use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{DateTime, Local, TimeZone};
use log::{Level, LevelFilter, Log, Metadata, Record};
use simplelog::{
    ColorChoice, CombinedLogger, ConfigBuilder, SharedLogger, TermLogger, TerminalMode,
};

use crate::nofollow::{self, Access};

/// Where a process's log lines go besides its log file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Echo {
    /// Only the log file (the manager prints its own errors).
    None,
    /// Also stderr, without timestamps (a service in the foreground, or under systemd).
    Stderr,
}

/// Installs the process-wide logger writing to `log_file`, creating its folder.
///
/// Fails when the file cannot be opened for appending, so that a process that cannot
/// keep its log says so once, at start, instead of silently losing every line; a link
/// planted at the log file is such a failure (see [`open_for_append`]).
pub fn init(log_file: &Path, echo: Echo) -> Result<()> {
    open_for_append(log_file)?;

    let mut loggers: Vec<Box<dyn SharedLogger>> = vec![Box::new(FileLogger {
        path: log_file.to_path_buf(),
    })];
    if echo == Echo::Stderr {
        let config = ConfigBuilder::new()
            .set_time_level(LevelFilter::Off)
            .set_target_level(LevelFilter::Off)
            .set_thread_level(LevelFilter::Off)
            .set_location_level(LevelFilter::Off)
            .build();
        loggers.push(TermLogger::new(
            LevelFilter::Info,
            config,
            TerminalMode::Stderr,
            ColorChoice::Never,
        ));
    }
    CombinedLogger::init(loggers).context("installing the logger")
}

/// Formats one log line, newline included.
///
/// Errors read `Error: ...` and warnings `Warning: ...`. Control characters (a newline in
/// a file name, say) are escaped so that one event is always exactly one line.
pub fn format_line<Tz: TimeZone>(time: &DateTime<Tz>, level: Level, message: &str) -> String
where
    Tz::Offset: std::fmt::Display,
{
    let mut line = time.format("[%d/%m/%Y %H:%M] ").to_string();
    match level {
        Level::Error => line.push_str("Error: "),
        Level::Warn => line.push_str("Warning: "),
        _ => {}
    }
    push_one_line(&mut line, message);
    line.push('\n');
    line
}

/// `n` and the noun that goes with it: `1 entry`, `2 entries`, `0 entries`.
pub fn counted(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `message` with its control characters escaped (`\n`, `\t`...), so that it prints as
/// exactly one line, on stderr as in the log.
pub fn one_line(message: &str) -> String {
    let mut line = String::with_capacity(message.len());
    push_one_line(&mut line, message);
    line
}

fn push_one_line(line: &mut String, message: &str) {
    for c in message.chars() {
        if c.is_control() {
            let _ = write!(line, "{}", c.escape_default());
        } else {
            line.push(c);
        }
    }
}

/// Opens the log at `path` for appending, making its folder if it is missing.
///
/// Neither the folder nor the file is reached through a planted link: log lines quote
/// schedule text, which whoever wrote the schedule file chose, and appended to another
/// file (as root, any file) they could do harm. The folder may be a link to a folder
/// only this user and root can change (see [`nofollow::folder`]).
pub fn open_for_append(path: &Path) -> Result<fs::File> {
    let (dir, name) = match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) if !dir.as_os_str().is_empty() => (dir, name),
        _ => anyhow::bail!("{} is not a log file's path", path.display()),
    };
    let folder = nofollow::folder(dir, true)
        .with_context(|| format!("opening log folder {}", dir.display()))?
        .expect("created when missing");
    nofollow::open_file_at(folder.as_fd(), name, Access::Append, 0o666)
        .with_context(|| format!("opening log file {}", path.display()))
}

/// Appends each record to the log file with a single `write` on an `O_APPEND` descriptor,
/// which the kernel places whole at the end even with several writers.
///
/// The file is reopened for every line: logs are written a few times a minute at most,
/// and reopening lets `logrotate` move the file away without a restart.
struct FileLogger {
    path: PathBuf,
}

impl FileLogger {
    /// Opens the log, making its folder again if someone removed it: a detached service
    /// has nowhere else to report anything.
    fn open(&self) -> Result<fs::File> {
        open_for_append(&self.path)
    }
}

impl Log for FileLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= Level::Info
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format_line(&Local::now(), record.level(), &record.args().to_string());
        let written = self.open().and_then(|mut file| {
            file.write_all(line.as_bytes())
                .with_context(|| format!("writing log file {}", self.path.display()))
        });
        if let Err(err) = written {
            // The log is where errors go; when it fails, stderr is all that is left.
            eprintln!("{err:#}: {}", line.trim_end());
        }
    }

    fn flush(&self) {}
}

impl SharedLogger for FileLogger {
    fn level(&self) -> LevelFilter {
        LevelFilter::Info
    }

    fn config(&self) -> Option<&simplelog::Config> {
        None
    }

    fn as_log(self: Box<Self>) -> Box<dyn Log> {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::FixedOffset;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<FixedOffset> {
        FixedOffset::east_opt(3600)
            .unwrap()
            .with_ymd_and_hms(y, mo, d, h, mi, 59)
            .unwrap()
    }

    #[test]
    fn lines_start_with_the_briefs_timestamp() {
        assert_eq!(
            format_line(
                &at(2023, 2, 8, 16, 7),
                Level::Info,
                "Backup done for test in backups/backup_test.tar"
            ),
            "[08/02/2023 16:07] Backup done for test in backups/backup_test.tar\n"
        );
    }

    #[test]
    fn errors_and_warnings_are_labelled() {
        let t = at(2024, 12, 31, 0, 0);
        assert_eq!(
            format_line(&t, Level::Error, "malformed schedule: test;"),
            "[31/12/2024 00:00] Error: malformed schedule: test;\n"
        );
        assert_eq!(
            format_line(&t, Level::Warn, "x"),
            "[31/12/2024 00:00] Warning: x\n"
        );
    }

    #[test]
    fn counts_take_the_singular_for_one() {
        assert_eq!(counted(1, "entry", "entries"), "1 entry");
        assert_eq!(counted(0, "entry", "entries"), "0 entries");
        assert_eq!(counted(12, "entry", "entries"), "12 entries");
    }

    #[test]
    fn control_characters_cannot_split_a_line() {
        let line = format_line(&at(2024, 1, 1, 9, 5), Level::Info, "a\nb\tc");
        assert_eq!(line, "[01/01/2024 09:05] a\\nb\\tc\n");
        assert_eq!(line.matches('\n').count(), 1);
        assert_eq!(one_line("a\nb\tc é"), "a\\nb\\tc é");
    }
}
