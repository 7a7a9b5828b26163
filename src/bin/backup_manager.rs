//! `backup_manager`: edits the schedules and starts, stops and questions the service.

use std::fmt::Display;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use backup::archive::Progress;
use backup::home::Home;
use backup::logging::{self, Echo};
use backup::manager;
use backup::naming::Compression;
use backup::schedule::{DEFAULT_FULL_EVERY, Incremental, MAX_FULL_EVERY, MAX_KEEP, Options};
use backup::state::Outcome;
use backup::unit;
use clap::{Args, CommandFactory, Parser, Subcommand};
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
    ///
    /// The flags are stored as options on the schedule's line, e.g.
    /// `src;02:00;code;zstd;keep=7;exclude=target/`, where they can be read and edited.
    Create {
        #[command(flatten)]
        options: OptionFlags,
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
        /// The generation to restore, as its date in `backups` (YYYY-MM-DD_HHMM) or its
        /// file name; an incremental one comes back with its chain.
        #[arg(long, value_name = "GENERATION")]
        at: Option<String>,
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

/// The options of `create`, each stored on the schedule's line.
#[derive(Debug, Args)]
struct OptionFlags {
    /// Compress the archive: backups/NAME.tar.gz or backups/NAME.tar.zst.
    #[arg(long, value_name = "gzip|zstd")]
    compress: Option<Compression>,
    /// Keep N archives: the newest as backups/NAME.tar, older ones under dated names.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=i64::from(MAX_KEEP)))]
    keep: Option<u16>,
    /// Leave out paths matching PATTERN (.gitignore syntax, relative to PATH); repeatable.
    #[arg(long, value_name = "PATTERN")]
    exclude: Vec<String>,
    /// Leave out the content of folders holding a valid CACHEDIR.TAG (the tag is kept).
    #[arg(long)]
    exclude_caches: bool,
    /// Honour .gitignore, .ignore and .git/info/exclude inside the tree (.git/ is kept).
    #[arg(long)]
    gitignore: bool,
    /// Back up only what changed since the previous backup, in chains that restart with
    /// a full backup every --full-every days.
    #[arg(long)]
    incremental: bool,
    /// Days between two full backups of an incremental chain (default 7).
    #[arg(long, value_name = "DAYS", requires = "incremental",
          value_parser = clap::value_parser!(u16).range(1..=i64::from(MAX_FULL_EVERY)))]
    full_every: Option<u16>,
}

impl From<OptionFlags> for Options {
    fn from(flags: OptionFlags) -> Self {
        Options {
            compression: flags.compress.unwrap_or_default(),
            keep: flags.keep.unwrap_or(1),
            exclude: flags.exclude,
            exclude_caches: flags.exclude_caches,
            gitignore: flags.gitignore,
            incremental: flags.incremental.then(|| Incremental {
                full_every_days: flags.full_every.unwrap_or(DEFAULT_FULL_EVERY),
            }),
        }
    }
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
        Command::Create { schedule, options } => {
            if let Some(warning) = manager::create(home, &schedule, options.into())? {
                say(&warning);
            }
        }
        Command::Delete { index } => manager::delete(home, index)?,
        Command::List { json } => {
            let entries = manager::list(home)?;
            print_all(&entries, json)?;
            // Every line is shown first, so that the bad ones can be found and deleted.
            if let Some(bad) = manager::bad_lines(home, &entries) {
                anyhow::bail!("{bad}");
            }
        }
        Command::Start => {
            let pid = manager::start(home)?;
            // Said when the home was named elsewhere (--home, BACKUP_HOME), where starting
            // the service of the wrong one is easy; in the home itself, start stays as
            // quiet as the brief shows it.
            if !is_current_dir(home) {
                say(&format!(
                    "backup_service started (pid {pid}, home {})",
                    home.root().display()
                ));
            }
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
        Command::Restore {
            name,
            dest,
            force,
            at,
        } => {
            let name = match at {
                Some(at) => manager::generation(home, &name, &at)?,
                None => name,
            };
            let finished = manager::restore(home, &name, &dest, force)?;
            for warning in &finished.warnings {
                say(&format!("warning: {warning}"));
            }
            if let Some(incomplete) = finished.incomplete {
                anyhow::bail!("{incomplete}");
            }
            say(&finished.message);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether the home is the folder the command was run in.
fn is_current_dir(home: &Home) -> bool {
    std::env::current_dir()
        .and_then(std::fs::canonicalize)
        .is_ok_and(|dir| dir == home.root())
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
    let result = manager::run_now(home, index, progress, &mut |msg| say(msg));
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
            let warned = backup::job::describe_warnings(run.warning_count);
            say(&format!(
                "backed up {} into backups/{} ({} entries, {}, {:.2} s{warned})",
                schedule.path,
                schedule.archive_file_name(),
                run.entries,
                backup::job::format_size(run.bytes),
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
