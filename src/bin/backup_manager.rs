//! `backup_manager`: edits the schedules and starts, stops and questions the service.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use backup::archive::Compression;
use backup::home::Home;
use backup::logging::{self, Echo};
use backup::manager;
use clap::{Parser, Subcommand};

/// Daily tar backups at scheduled times, without cron.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// The home: the folder holding backup_schedules.txt, logs/ and backups/.
    #[arg(long, global = true, value_name = "DIR")]
    home: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Add a schedule, e.g. create "test;16:07;backup_test" (PATH;HH:MM;NAME).
    Create {
        /// Compress the archive: backups/NAME.tar.gz or backups/NAME.tar.zst.
        #[arg(long, value_name = "gzip|zstd")]
        compress: Option<Compression>,
        /// PATH;HH:MM;NAME: back up PATH every day at HH:MM into backups/NAME.tar.
        schedule: String,
    },
    /// Delete the schedule at INDEX (as shown by list, from 0).
    Delete {
        /// The schedule's index.
        index: usize,
    },
    /// Show the schedules, each with its index.
    List,
    /// Start backup_service in the background.
    Start,
    /// Stop backup_service, letting the backups in progress finish.
    Stop {
        /// Kill it at once; an interrupted archive is discarded, never left in place.
        #[arg(long)]
        force: bool,
        /// How long to wait for the backups in progress, in seconds.
        #[arg(long, value_name = "SECS", default_value_t = 60)]
        timeout: u64,
    },
    /// List the finished archives in backups/.
    Backups,
    /// Check an archive end to end; with --source, compare it with the live tree.
    Verify {
        /// The schedule's NAME, or an archive file name as `backups` lists it.
        name: String,
        /// Also compare every entry with the source it was made from, listing differences.
        #[arg(long)]
        source: bool,
    },
    /// Extract an archive into DEST (new or empty), never writing outside it.
    Restore {
        /// The schedule's NAME, or an archive file name as `backups` lists it.
        name: String,
        /// The folder to restore into.
        dest: PathBuf,
        /// Restore into a folder that is not empty, replacing files in the way.
        #[arg(long)]
        force: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let home = match Home::open(cli.home.as_deref()) {
        Ok(home) => home,
        Err(err) => {
            eprintln!("backup_manager: {err:#}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(err) = logging::init(&home.manager_log(), Echo::None) {
        eprintln!("backup_manager: warning: {err:#}; going on without a log");
    }
    match run(&home, cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            log::error!("{err:#}");
            eprintln!("backup_manager: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(home: &Home, command: Command) -> Result<()> {
    match command {
        Command::Create { schedule, compress } => {
            if let Some(warning) = manager::create(home, &schedule, compress)? {
                eprintln!("backup_manager: {warning}");
            }
        }
        Command::Delete { index } => manager::delete(home, index)?,
        Command::List => print_lines(&manager::list(home)?),
        Command::Start => manager::start(home)?,
        Command::Stop { force, timeout } => {
            manager::stop(home, force, Duration::from_secs(timeout), &mut |msg| {
                eprintln!("backup_manager: {msg}")
            })?
        }
        Command::Backups => print_lines(&manager::backups(home)?),
        Command::Verify { name, source } => {
            let mut differences = Vec::new();
            let result = manager::verify(home, &name, source, &mut |line| {
                differences.push(line.to_owned())
            });
            print_lines(&differences);
            result?
        }
        Command::Restore { name, dest, force } => {
            for warning in manager::restore(home, &name, &dest, force)? {
                eprintln!("backup_manager: warning: {warning}");
            }
        }
    }
    Ok(())
}

fn print_lines(lines: &[String]) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for line in lines {
        // A closed pipe (`backup_manager list | head -1`) is not an error.
        if writeln!(out, "{line}").is_err() {
            return;
        }
    }
}
