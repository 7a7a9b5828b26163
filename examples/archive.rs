//! Writes one archive the way the service does, without a schedule or a home: the
//! benchmark (`scripts/bench.sh`) times it against GNU tar.
//!
//! Usage: `archive SOURCE TARGET [OPTION...]`, where each OPTION is a schedule line's
//! field (`gzip`, `zstd`, `exclude=PATTERN`, `exclude-caches`, `gitignore`...), or
//! `no-index`: the archive alone, without the index the service writes beside it (to
//! measure what the index costs). Prints the summary; exits 1 when there were warnings, 2
//! on failure, like GNU tar.

use std::path::Path;
use std::process::ExitCode;

use backup::archive::{self, Request};
use backup::schedule::Options;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [source, target, fields @ ..] = &args[..] else {
        eprintln!("usage: archive SOURCE TARGET [OPTION...]");
        return ExitCode::from(2);
    };
    let indexed = !fields.iter().any(|field| field == "no-index");
    let fields: Vec<&str> = fields
        .iter()
        .map(String::as_str)
        .filter(|&field| field != "no-index")
        .collect();
    let options = match Options::parse(&fields) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("archive: {e}");
            return ExitCode::from(2);
        }
    };
    let request = Request {
        written: source,
        source: Path::new(source),
        target: Path::new(target),
        exclude: &[],
        options: &options,
        format: backup::naming::Format {
            compression: options.compression,
            encrypted: options.is_encrypted(),
        },
        progress: None,
        incremental: None,
    };
    let created = if indexed {
        archive::create(&request)
    } else {
        archive::create_unindexed(&request)
    };
    match created {
        Ok(summary) => {
            for warning in &summary.warnings {
                eprintln!("archive: warning: {warning}");
            }
            println!("{} entries, {} bytes", summary.entries, summary.bytes);
            if summary.is_clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(err) => {
            eprintln!("archive: {err:#}");
            ExitCode::from(2)
        }
    }
}
