//! The commands that read what the archives hold: `files`, `cat`, `find` and `diff`.

use std::path::{Path, PathBuf};

use anyhow::Result;
use backup::home::Home;
use backup::manager::{self, FileInfo, TarLines};
use clap::Subcommand;

use crate::output::{print_all, print_json, say};

#[derive(Debug, Subcommand)]
pub enum BrowseCommand {
    /// List what a generation holds, whole or under the PATHs, as `tar -tv` does.
    Files {
        /// The schedule's NAME, or an archive file name as `backups` lists it.
        name: String,
        /// Only these files or folders: as the absolute source path, as stored in the
        /// archive, or relative to the schedule's PATH.
        paths: Vec<String>,
        /// The generation, as its date in `backups` (YYYY-MM-DD_HHMM) or its file name.
        #[arg(long, value_name = "GENERATION")]
        at: Option<String>,
        /// The age identity file or SSH private key that opens an encrypted archive.
        #[arg(long, value_name = "FILE")]
        identity: Option<PathBuf>,
        /// Print JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Print one file of a generation on stdout.
    Cat {
        /// The schedule's NAME, or an archive file name as `backups` lists it.
        name: String,
        /// The file: as the absolute source path, as stored in the archive, or relative
        /// to the schedule's PATH.
        path: String,
        /// The generation, as its date in `backups` (YYYY-MM-DD_HHMM) or its file name.
        #[arg(long, value_name = "GENERATION")]
        at: Option<String>,
        /// The age identity file or SSH private key that opens an encrypted archive.
        #[arg(long, value_name = "FILE")]
        identity: Option<PathBuf>,
    },
    /// Find a path or glob in every generation of the NAMEs (every schedule's, by
    /// default): each version with its generation, size and mtime, newest first.
    Find {
        /// A path or glob (`src/parser.rs`, `*.rs`, `src/**/mod.rs`): matched against
        /// names as stored and relative to the schedule's PATH; one without `/` against
        /// file names too.
        pattern: String,
        /// The schedules' NAMEs.
        names: Vec<String>,
        /// The age identity file or SSH private key that opens an encrypted archive.
        #[arg(long, value_name = "FILE")]
        identity: Option<PathBuf>,
        /// Print JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// What was added, removed and changed between two generations (by default the last
    /// two; with one, it and the newest).
    Diff {
        /// The schedule's NAME, or an archive file name as `backups` lists it.
        name: String,
        /// The older generation, as its date in `backups` (YYYY-MM-DD_HHMM) or its file
        /// name.
        old: Option<String>,
        /// The newer generation.
        new: Option<String>,
        /// The age identity file or SSH private key that opens an encrypted archive.
        #[arg(long, value_name = "FILE")]
        identity: Option<PathBuf>,
        /// Print JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
}

/// Runs one of the commands that read the archives.
pub fn run(home: &Home, command: BrowseCommand) -> Result<()> {
    let warnings = match command {
        BrowseCommand::Files {
            name,
            paths,
            at,
            identity,
            json,
        } => files(
            home,
            &name,
            (at.as_deref(), identity.as_deref()),
            &paths,
            json,
        )?,
        BrowseCommand::Cat {
            name,
            path,
            at,
            identity,
        } => {
            let mut out = std::io::stdout().lock();
            let at = (at.as_deref(), identity.as_deref());
            manager::cat(home, &name, at, &path, &mut out)?
        }
        BrowseCommand::Find {
            pattern,
            names,
            identity,
            json,
        } => {
            let found = manager::find(home, &pattern, &names, identity.as_deref())?;
            print_all(&found.versions, json)?;
            found.warnings
        }
        BrowseCommand::Diff {
            name,
            old,
            new,
            identity,
            json,
        } => {
            let generations = (old.as_deref(), new.as_deref());
            let diff = manager::diff(home, &name, generations, identity.as_deref())?;
            print_all(&diff.changes, json)?;
            say(&diff.summary);
            diff.warnings
        }
    };
    for warning in warnings {
        say(&format!("warning: {warning}"));
    }
    Ok(())
}

/// `files`: lines as they come; JSON once all are read.
fn files(
    home: &Home,
    name: &str,
    at: (Option<&str>, Option<&Path>),
    paths: &[String],
    json: bool,
) -> Result<Vec<String>> {
    use std::io::Write;
    if json {
        let mut all = Vec::new();
        let warnings = manager::files(home, name, at, paths, &mut |entry| {
            all.push(FileInfo::of(entry));
            Ok(())
        })?;
        print_json(&all)?;
        return Ok(warnings);
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut lines = TarLines::default();
    let mut first = true;
    let listed = manager::files(home, name, at, paths, &mut |entry| {
        writeln!(out, "{}", lines.line(entry))?;
        // The first line shows at once; the rest go in large writes.
        if std::mem::take(&mut first) {
            out.flush()?;
        }
        Ok(())
    });
    let flushed = out.flush();
    match (listed, flushed) {
        (Err(e), _) if is_broken_pipe(&e) => Ok(Vec::new()),
        (Err(e), _) => Err(e),
        (Ok(_), Err(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(Vec::new()),
        (Ok(_), Err(e)) => Err(e.into()),
        (Ok(warnings), Ok(())) => Ok(warnings),
    }
}

/// Whether `err` is a reader that stopped reading (`files NAME | head`), which is no
/// error.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
