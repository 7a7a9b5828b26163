//! The home's backups as Prometheus metrics, in the text format that node_exporter's
//! textfile collector reads: per schedule, when its last backup started and when its last
//! successful one did, how it ended, how long it took, the archive's size and entries.
//! The file is replaced whole (written aside, then renamed), as the collector requires.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::Result;
use log::error;

use crate::atomic_file;
use crate::home::Home;
use crate::schedule::Schedule;
use crate::schedule_file;
use crate::state::{self, Outcome, Record, State};

/// Environment variable naming the metrics file when no `--metrics` is given.
pub const METRICS_VAR: &str = "BACKUP_METRICS";

/// The file named by `--metrics`, for the whole process.
static FILE: OnceLock<PathBuf> = OnceLock::new();

/// Names the metrics file for this process (the `--metrics FILE` of a binary); the first
/// call wins.
pub fn set_file(path: PathBuf) {
    let _ = FILE.set(path);
}

/// The metrics file to keep: the one set by [`set_file`], else [`METRICS_VAR`] if set
/// and not empty; `None` keeps none.
pub fn file() -> Option<PathBuf> {
    FILE.get().cloned().or_else(|| {
        std::env::var_os(METRICS_VAR)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    })
}

/// After a backup: rewrites the metrics file of `home`'s schedules, if one is kept. A
/// failure is logged; the backup is done all the same.
pub fn update(home: &Home) {
    let Some(path) = file() else { return };
    let written = (|| -> Result<()> {
        let schedules: Vec<Schedule> = schedule_file::read_each_line(&home.schedules())?
            .iter()
            .flatten()
            .filter_map(|line| line.parse().ok())
            .collect();
        let (state, _) = state::load(home)?;
        write(&path, &schedules, &state)
    })();
    if let Err(err) = written {
        error!("writing the metrics file {}: {err:#}", path.display());
    }
}

/// The file's mode: readable by the exporter, which often runs as another user.
const MODE: u32 = 0o644;

/// One metric: its name, help, and value for a schedule's record.
struct Metric {
    name: &'static str,
    help: &'static str,
    value: fn(&Record) -> Option<f64>,
}

const METRICS: [Metric; 5] = [
    Metric {
        name: "backup_last_attempt_timestamp_seconds",
        help: "When the schedule's last backup started, as a Unix time.",
        value: |r| r.last_run.as_ref().map(|run| seconds(&run.started)),
    },
    Metric {
        name: "backup_last_success_timestamp_seconds",
        help: "When the schedule's last backup that wrote an archive started, as a Unix time.",
        value: |r| r.last_success.as_ref().map(seconds),
    },
    Metric {
        name: "backup_last_duration_seconds",
        help: "How long the schedule's last backup took.",
        value: |r| r.last_run.as_ref().map(|run| run.duration_secs),
    },
    Metric {
        name: "backup_last_archive_bytes",
        help: "The size of the archive the schedule's last backup wrote (0 when it failed).",
        value: |r| r.last_run.as_ref().map(|run| run.bytes as f64),
    },
    Metric {
        name: "backup_last_entries",
        help: "The entries in the archive the schedule's last backup wrote.",
        value: |r| r.last_run.as_ref().map(|run| run.entries as f64),
    },
];

fn seconds(t: &chrono::DateTime<chrono::FixedOffset>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

/// The metrics of `schedules` by what `state` remembers of them, in the text format.
pub fn render(schedules: &[Schedule], state: &State) -> String {
    let records: Vec<(String, &Record)> = schedules
        .iter()
        .filter_map(|s| {
            let record = state.schedules.get(&s.to_string())?;
            Some((labels(s), record))
        })
        .collect();
    let mut out = String::new();
    for metric in &METRICS {
        let _ = writeln!(out, "# HELP {} {}", metric.name, metric.help);
        let _ = writeln!(out, "# TYPE {} gauge", metric.name);
        for (labels, record) in &records {
            if let Some(value) = (metric.value)(record) {
                let _ = writeln!(out, "{}{{{labels}}} {value}", metric.name);
            }
        }
    }
    let name = "backup_last_result";
    let _ = writeln!(
        out,
        "# HELP {name} How the schedule's last backup ended: 1 for its result, 0 for the others."
    );
    let _ = writeln!(out, "# TYPE {name} gauge");
    for (labels, record) in &records {
        let Some(run) = &record.last_run else {
            continue;
        };
        for (result, outcome) in [
            ("ok", Outcome::Ok),
            ("warnings", Outcome::Warnings),
            ("failed", Outcome::Failed),
        ] {
            let value = u8::from(run.outcome == outcome);
            let _ = writeln!(out, "{name}{{{labels},result=\"{result}\"}} {value}");
        }
    }
    out
}

/// The labels of a schedule: its NAME and time (one NAME may run at several times).
fn labels(schedule: &Schedule) -> String {
    format!(
        "name=\"{}\",time=\"{}\"",
        escape(&schedule.name),
        schedule.time
    )
}

/// A label value as the format wants it: backslash, double quote and newline escaped.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Replaces the metrics file at `path` with the metrics of `schedules`.
pub fn write(path: &Path, schedules: &[Schedule], state: &State) -> Result<()> {
    atomic_file::replace(path, MODE, render(schedules, state).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Run;

    fn run(outcome: Outcome) -> Run {
        Run {
            started: "2026-12-01T02:00:00.5+01:00".parse().unwrap(),
            duration_secs: 1.25,
            outcome,
            bytes: 4096,
            entries: 7,
            messages: Vec::new(),
            warning_count: 0,
            manual: false,
            hooks: Vec::new(),
        }
    }

    #[test]
    fn each_schedule_has_its_lines_and_the_names_are_escaped() {
        let ok: Schedule = "src;02:00;code".parse().unwrap();
        let odd: Schedule = "src;03:00;a \"b\\c".parse().unwrap();
        let never: Schedule = "src;04:00;never".parse().unwrap();
        let mut state = State::default();
        let mut record = Record::new("2026-11-01T00:00:00+01:00".parse().unwrap());
        record.last_run = Some(run(Outcome::Ok));
        record.last_success = Some(run(Outcome::Ok).started);
        state.schedules.insert(ok.to_string(), record.clone());
        record.last_run = Some(run(Outcome::Failed));
        state.schedules.insert(odd.to_string(), record);
        let text = render(&[ok, odd, never], &state);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.contains(
            &"backup_last_success_timestamp_seconds{name=\"code\",time=\"02:00\"} 1796086800.5"
        ));
        assert!(lines.contains(&"backup_last_entries{name=\"code\",time=\"02:00\"} 7"));
        assert!(lines.contains(
            &"backup_last_result{name=\"a \\\"b\\\\c\",time=\"03:00\",result=\"failed\"} 1"
        ));
        assert!(
            lines.contains(
                &"backup_last_result{name=\"a \\\"b\\\\c\",time=\"03:00\",result=\"ok\"} 0"
            )
        );
        assert!(!text.contains("never"), "{text}");
        assert_eq!(text.matches("# TYPE").count(), 6);
    }
}
