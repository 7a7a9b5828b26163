//! Writes one archive the way the service does, without a schedule or a home: the
//! benchmark (`scripts/bench.sh`) times it against GNU tar.
//!
//! Usage: `archive SOURCE TARGET [gzip|zstd]`. Prints the summary; exits 1 when there
//! were warnings, 2 on failure, like GNU tar.

use std::path::Path;
use std::process::ExitCode;

use backup::archive::{self, Compression, Request};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (source, target, compression) = match &args[..] {
        [source, target] => (source, target, Compression::None),
        [source, target, compression] => match compression.parse() {
            Ok(compression) => (source, target, compression),
            Err(e) => {
                eprintln!("archive: {e}");
                return ExitCode::from(2);
            }
        },
        _ => {
            eprintln!("usage: archive SOURCE TARGET [gzip|zstd]");
            return ExitCode::from(2);
        }
    };
    let request = Request {
        written: source,
        source: Path::new(source),
        target: Path::new(target),
        exclude: &[],
        compression,
        progress: None,
        incremental: None,
    };
    match archive::create(&request) {
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
