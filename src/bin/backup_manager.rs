//! `backup_manager`: edits the schedules and starts, stops and questions the service.

use std::fmt::Display;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use backup::archive::{Compression, Progress};
use backup::home::Home;
use backup::logging::{self, Echo};
use backup::manager;
use backup::state::Outcome;
use backup::unit;
use clap::{CommandFactory, Parser, Subcommand};
use serde::Serialize;

/// Daily tar backups at scheduled times, without cron.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// The home: the folder holding backup_schedules.txt, logs/ and backups/; default
    /// $BACKUP_HOME, else the current folder.
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
        #[arg(value_parser = parse_index)]
        index: usize,
    },
    /// Show the schedules, each with its index.
    List {
        /// Print JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
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
    Backups {
        /// Print JSON with each archive's size and modification time.
        #[arg(long)]
        json: bool,
    },
    /// Show whether the service runs, and each schedule's next run and last result.
    ///
    /// Exit codes:
    ///   0  the service runs and no last run failed;
    ///   1  a last run failed (or was cancelled by the before-backup hook);
    ///   2  usage error (a mistyped command or option);
    ///   3  the service is not running;
    ///   4  the status cannot be told (an unreadable file, or no home found).
    #[command(verbatim_doc_comment)]
    Status {
        /// Print JSON, for scripts and monitors.
        #[arg(long)]
        json: bool,
    },
    /// Back up the schedule at INDEX now, in the foreground.
    Run {
        /// The schedule's index.
        #[arg(value_parser = parse_index)]
        index: usize,
    },
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
    /// Print a systemd user unit running backup_service for this home.
    ///
    /// backup_manager unit > ~/.config/systemd/user/backup_service.service
    Unit {
        /// Print the timer that starts `unit --once` every minute, instead.
        #[arg(long, conflicts_with = "once")]
        timer: bool,
        /// Print the oneshot service (backup_service --once) that the timer starts.
        #[arg(long)]
        once: bool,
    },
    /// Print the completion script for SHELL, e.g. source <(backup_manager completions bash).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), e.g. backup_manager man | man -l -
    Man,
}

/// `status`'s exit code when the service is not running, as `systemctl status` uses.
const NOT_RUNNING: u8 = 3;

/// `status`'s exit code when the status could not be told (an unreadable file), as LSB
/// init scripts use: a monitor must not take it for a failed backup.
const STATUS_UNKNOWN: u8 = 4;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A monitor calling `status` must not take an error for a failed backup.
    let failure = match cli.command {
        Command::Status { .. } => ExitCode::from(STATUS_UNKNOWN),
        _ => ExitCode::FAILURE,
    };
    // These need no home, and must leave the current folder as it is.
    match cli.command {
        Command::Completions { shell } => {
            let mut command = Cli::command();
            clap_complete::generate(
                shell,
                &mut command,
                "backup_manager",
                &mut std::io::stdout(),
            );
            return ExitCode::SUCCESS;
        }
        Command::Man => {
            return match backup::manual::render(Cli::command(), &mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                // `backup_manager man | head` is not an error.
                Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(err) => {
                    say(&format!("writing the manual page: {err}"));
                    ExitCode::FAILURE
                }
            };
        }
        _ => {}
    }
    // Only `create` makes a new home in a folder that is not one yet.
    let may_start_here = matches!(cli.command, Command::Create { .. });
    let home = match Home::find(cli.home.as_deref(), may_start_here) {
        Ok(home) => home,
        Err(err) => {
            say(&format!("{err:#}"));
            return failure;
        }
    };
    if let Err(err) = logging::init(&home.manager_log(), Echo::None) {
        say(&format!("warning: {err:#}; going on without a log"));
    }
    match run(&home, cli.command) {
        Ok(code) => code,
        Err(err) => {
            log::error!("{err:#}");
            // One line, as in the log: a file name or a schedule may hold a newline.
            say(&format!("{err:#}"));
            failure
        }
    }
}

fn run(home: &Home, command: Command) -> Result<ExitCode> {
    match command {
        Command::Create { schedule, compress } => {
            if let Some(warning) = manager::create(home, &schedule, compress)? {
                say(&warning);
            }
        }
        Command::Delete { index } => manager::delete(home, index)?,
        Command::List { json } => print_all(&manager::list(home)?, json)?,
        Command::Start => {
            let pid = manager::start(home)?;
            say(&format!(
                "backup_service started (pid {pid}, home {})",
                home.root().display()
            ));
        }
        Command::Stop { force, timeout } => {
            manager::stop(home, force, Duration::from_secs(timeout), &mut |msg| {
                say(msg)
            })?
        }
        Command::Backups { json } => print_all(&manager::backups(home)?, json)?,
        Command::Status { json } => {
            let status = backup::status::status(home)?;
            if json {
                print_json(&status)?;
            } else {
                // On stderr: what stdout shows stays as it was, for scripts reading it.
                say(&format!("home {}", home.root().display()));
                print_text(&status)?;
            }
            return Ok(match (status.service.running, status.any_failed()) {
                (false, _) => ExitCode::from(NOT_RUNNING),
                (true, true) => ExitCode::FAILURE,
                (true, false) => ExitCode::SUCCESS,
            });
        }
        Command::Run { index } => return run_now(home, index),
        Command::Verify { name, source } => {
            let mut differences = Vec::new();
            let result = manager::verify(home, &name, source, &mut |line| {
                differences.push(line.to_owned())
            });
            print_all(&differences, false)?;
            say(&result?);
        }
        Command::Unit { timer, once } => {
            let kind = match (timer, once) {
                (true, _) => unit::Kind::Timer,
                (false, true) => unit::Kind::Once,
                (false, false) => unit::Kind::Service,
            };
            print_text(&unit::for_home(home, kind)?)?;
        }
        Command::Completions { .. } | Command::Man => unreachable!("handled before the home"),
        Command::Restore { name, dest, force } => {
            let finished = manager::restore(home, &name, &dest, force)?;
            for warning in &finished.warnings {
                say(&format!("warning: {warning}"));
            }
            say(&finished.message);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// An INDEX as `list` shows it: digits only, so that `+1` or ` 1` is not taken for 1.
fn parse_index(text: &str) -> Result<usize, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err("an index is a number as `list` shows it, from 0".to_owned());
    }
    text.parse()
        .map_err(|_| "the number is too large for an index".to_owned())
}

/// `run INDEX`, with a spinner on a terminal; the outcome is on stderr either way.
fn run_now(home: &Home, index: usize) -> Result<ExitCode> {
    let spinner = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_message(format!("backing up schedule {index}..."));
        bar.enable_steady_tick(Duration::from_millis(100));
        bar
    });
    let show = |progress: Progress| {
        if let Some(bar) = &spinner {
            bar.set_message(format!(
                "backing up schedule {index}: {} entries, {:.1} MiB",
                progress.entries,
                progress.bytes as f64 / f64::from(1 << 20)
            ));
        }
    };
    let progress = spinner.is_some().then_some(&show as &dyn Fn(Progress));
    let result = manager::run_now(home, index, progress);
    if let Some(bar) = spinner {
        bar.finish_and_clear();
    }
    let (schedule, run) = result?;
    let label = match run.outcome {
        Outcome::Failed => "",
        Outcome::Ok | Outcome::Warnings => "warning: ",
    };
    for message in &run.messages {
        say(&format!("{label}{message}"));
    }
    Ok(match run.outcome {
        Outcome::Failed => ExitCode::FAILURE,
        Outcome::Ok | Outcome::Warnings => {
            let warned = backup::service::describe_warnings(run.warning_count);
            say(&format!(
                "backed up {} into backups/{} ({} entries, {}, {:.2} s{warned})",
                schedule.path,
                schedule.archive_file_name(),
                run.entries,
                backup::service::format_size(run.bytes),
                run.duration_secs
            ));
            ExitCode::SUCCESS
        }
    })
}

fn print_all<T: Display + Serialize>(items: &[T], json: bool) -> Result<()> {
    if json {
        return print_json(items);
    }
    let mut out = std::io::stdout().lock();
    for item in items {
        // Control characters shown escaped: a malformed line, a file name or an entry
        // in an archive may hold a carriage return or a terminal escape.
        if let Err(e) = writeln!(out, "{}", logging::one_line(&item.to_string())) {
            return quiet_on_broken_pipe(e);
        }
    }
    Ok(())
}

fn print_text(item: &impl Display) -> Result<()> {
    write!(std::io::stdout().lock(), "{item}").or_else(quiet_on_broken_pipe)
}

fn print_json<T: Serialize + ?Sized>(value: &T) -> Result<()> {
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
fn say(message: &str) {
    eprintln!("backup_manager: {}", logging::one_line(message));
}
