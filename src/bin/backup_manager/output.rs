//! What the manager prints: lines on stdout, JSON for scripts, messages on stderr.

use std::fmt::Display;
use std::io::Write;

use anyhow::{Context, Result};
use backup::logging;
use serde::Serialize;

pub fn print_all<T: Display + Serialize>(items: &[T], json: bool) -> Result<()> {
    if json {
        return print_json(items);
    }
    // Buffered: stdout flushes every line, one write each for 10,000 schedules.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for item in items {
        // Control characters shown escaped: a malformed line, a file name or an entry
        // in an archive may hold a carriage return or a terminal escape.
        if let Err(e) = writeln!(out, "{}", logging::one_line(&item.to_string())) {
            return quiet_on_broken_pipe(e);
        }
    }
    out.flush().or_else(quiet_on_broken_pipe)
}

pub fn print_text(item: &impl Display) -> Result<()> {
    write!(std::io::stdout().lock(), "{item}").or_else(quiet_on_broken_pipe)
}

pub fn print_json<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value).context("writing JSON")?;
    writeln!(out).or_else(quiet_on_broken_pipe)
}

/// A reader that stopped reading (`backup_manager list | head -1`) is not an error.
fn quiet_on_broken_pipe(e: std::io::Error) -> Result<()> {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(e).context("writing to stdout")
    }
}

/// Prints a message for the user on stderr, on one line whatever it holds, as in the log.
pub fn say(message: &str) {
    eprintln!("backup_manager: {}", logging::one_line(message));
}
