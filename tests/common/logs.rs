//! The service's and the manager's log files, as a test reads them: each line's
//! timestamp checked, its message compared with or without the details in parentheses.

use std::fs;
use std::path::Path;

use chrono::NaiveDateTime;

/// The messages of a log file, each line checked to start with a real local time as
/// `[DD/MM/YYYY HH:MM] `. A missing file has none.
pub fn log_messages(path: &Path) -> Vec<String> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => panic!("reading {}: {e}", path.display()),
    };
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "{} ends in the middle of a line",
        path.display()
    );
    text.lines()
        .map(|line| {
            log_message(line)
                .unwrap_or_else(|| panic!("malformed line in {}: {line:?}", path.display()))
                .to_owned()
        })
        .collect()
}

/// The message after the `[DD/MM/YYYY HH:MM] ` timestamp of a log line, or `None` when
/// the line does not start with one.
pub fn log_message(line: &str) -> Option<&str> {
    const SHAPE: &[u8] = b"[dd/dd/dddd dd:dd] ";
    let bytes = line.as_bytes();
    if bytes.len() < SHAPE.len() {
        return None;
    }
    let shaped = bytes.iter().zip(SHAPE).all(|(&c, &s)| match s {
        b'd' => c.is_ascii_digit(),
        _ => c == s,
    });
    // The digits must also make a real date and time (no 32/13/2024 25:61).
    let real = shaped && NaiveDateTime::parse_from_str(&line[1..17], "%d/%m/%Y %H:%M").is_ok();
    real.then(|| &line[SHAPE.len()..])
}

/// Whether `messages` holds `expected`, either alone or followed by details in
/// parentheses (the service adds sizes and durations to the lines of the spec).
pub fn has_message(messages: &[String], expected: &str) -> bool {
    messages.iter().any(|m| is_message(m, expected))
}

/// How many of `messages` are `expected` (with or without details).
pub fn count_messages(messages: &[String], expected: &str) -> usize {
    messages.iter().filter(|m| is_message(m, expected)).count()
}

fn is_message(message: &str, expected: &str) -> bool {
    message
        .strip_prefix(expected)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(" ("))
}

/// Asserts that `messages` holds `expected` (see [`has_message`]).
pub fn assert_message(messages: &[String], expected: &str) {
    assert!(
        has_message(messages, expected),
        "no log line {expected:?} in {messages:#?}"
    );
}
