//! `backup_manager`: edits the schedules and starts, stops and questions the service.

mod browse;
mod cli;
mod output;

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use backup::archive::Progress;
use backup::home::Home;
use backup::job::format_size;
use backup::logging::{self, Echo};
use backup::manager;
use backup::state::Outcome;
use backup::unit;
use chrono::Local;
use clap::{CommandFactory, Parser};

use cli::{Cli, Command};
use output::{print_all, print_json, print_text, say};

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
        Command::Start => start(home)?,
        Command::Stop { force, timeout } => {
            manager::stop(home, force, Duration::from_secs(timeout), &mut |msg| {
                say(msg)
            })?
        }
        Command::Backups { json, long: false } => print_all(&manager::backups(home)?, json)?,
        Command::Backups { long: true, .. } => backups_long(home)?,
        Command::Status { json } => return status(home, json),
        Command::Run { index, metrics } => {
            if let Some(metrics) = metrics {
                backup::metrics::set_file(metrics);
            }
            return run_now(home, index);
        }
        Command::Verify {
            name,
            source,
            rebuild_index,
        } => verify(home, &name, source, rebuild_index)?,
        Command::Forget {
            name,
            dry_run,
            json,
        } => {
            let forget = manager::forget(home, &name, dry_run, &mut |msg| say(msg))?;
            print_all(&forget.generations, json)?;
            say(&forget.summary);
        }
        Command::Unit {
            timer,
            once,
            metrics,
        } => {
            let kind = match (timer, once) {
                (true, _) => unit::Kind::Timer,
                (false, true) => unit::Kind::Once,
                (false, false) => unit::Kind::Service,
            };
            print_text(&unit::for_home(home, kind, metrics.as_deref())?)?;
        }
        Command::Completions { .. } | Command::Man => unreachable!("handled before the home"),
        Command::Browse(command) => browse::run(home, command)?,
        Command::Restore {
            name,
            dest,
            force,
            delete,
            at,
            paths,
        } => restore(home, &name, &dest, (force, delete), at.as_deref(), &paths)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `start`: said when the home was named elsewhere (--home, BACKUP_HOME), where starting
/// the service of the wrong one is easy; in the home itself, start stays as quiet as the
/// brief shows it.
fn start(home: &Home) -> Result<()> {
    let pid = manager::start(home)?;
    if !is_current_dir(home) {
        say(&format!(
            "backup_service started (pid {pid}, home {})",
            home.root().display()
        ));
    }
    Ok(())
}

/// `backups --long`: a column each for the name, size, date made and kind.
fn backups_long(home: &Home) -> Result<()> {
    let archives = manager::backups_long(home)?;
    let width = archives
        .iter()
        .map(|(a, _)| a.name.len())
        .max()
        .unwrap_or(0);
    let lines: Vec<String> = archives
        .iter()
        .map(|(archive, kind)| {
            format!(
                "{:width$}  {:>10}  {}  {}",
                archive.name,
                format_size(archive.bytes),
                archive.made.with_timezone(&Local).format("%d/%m/%Y %H:%M"),
                kind.as_str()
            )
        })
        .collect();
    print_all(&lines, false)
}

/// `status`, with its exit code for monitors.
fn status(home: &Home, json: bool) -> Result<ExitCode> {
    let status = backup::status::status(home)?;
    if json {
        print_json(&status)?;
    } else {
        // On stderr: what stdout shows stays as it was, for scripts reading it.
        say(&format!("home {}", home.root().display()));
        print_text(&status)?;
    }
    Ok(match (status.service.running, status.any_failed()) {
        (false, _) => ExitCode::from(NOT_RUNNING),
        (true, true) => ExitCode::FAILURE,
        (true, false) => ExitCode::SUCCESS,
    })
}

/// `verify`: the differences on stdout, then what was verified on stderr.
fn verify(home: &Home, name: &str, source: bool, rebuild_index: bool) -> Result<()> {
    let mut differences = Vec::new();
    let result = manager::verify(home, name, source, &mut |line| {
        differences.push(line.to_owned())
    });
    print_all(&differences, false)?;
    let verified = result?;
    // The archives are sound: now their indexes.
    for line in manager::verify_indexes(home, name, rebuild_index)? {
        say(&line);
    }
    say(&verified);
    Ok(())
}

/// `restore`, of the newest archive or the generation `at`.
fn restore(
    home: &Home,
    name: &str,
    dest: &Path,
    (force, delete): (bool, bool),
    at: Option<&str>,
    paths: &[String],
) -> Result<()> {
    let name = match at {
        Some(at) => manager::generation(home, name, at)?,
        None => name.to_owned(),
    };
    let finished = manager::restore_paths(home, &name, dest, (force, delete), paths)?;
    for warning in &finished.warnings {
        say(&format!("warning: {warning}"));
    }
    if let Some(incomplete) = finished.incomplete {
        anyhow::bail!("{incomplete}");
    }
    say(&finished.message);
    Ok(())
}

/// Whether the home is the folder the command was run in.
fn is_current_dir(home: &Home) -> bool {
    std::env::current_dir()
        .and_then(std::fs::canonicalize)
        .is_ok_and(|dir| dir == home.root())
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
                "backing up schedule {index}: {}, {:.1} MiB",
                logging::counted(progress.entries, "entry", "entries"),
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
    // A hook that failed, timed out or was skipped is never only in the log.
    for problem in &run.hooks {
        say(&format!("warning: {problem}"));
    }
    Ok(match run.outcome {
        Outcome::Failed => ExitCode::FAILURE,
        outcome @ (Outcome::Ok | Outcome::Warnings) => {
            let warned = backup::job::describe_warnings(run.warning_count);
            say(&format!(
                "backed up {} into backups/{} ({}, {}, {:.2} s{warned})",
                schedule.path,
                schedule.archive_file_name(),
                logging::counted(run.entries, "entry", "entries"),
                backup::job::format_size(run.bytes),
                run.duration_secs
            ));
            if outcome == Outcome::Warnings {
                ExitCode::from(backup::job::WARNINGS_EXIT)
            } else {
                ExitCode::SUCCESS
            }
        }
    })
}
