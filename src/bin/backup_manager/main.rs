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
use backup::schedule::{TimeOfDay, Which};
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
            if let Some(warning) = manager::create(home, &schedule, options.options()?)? {
                say(&warning);
            }
        }
        Command::Delete { which } => manager::delete(home, &which)?,
        Command::Edit {
            which,
            time,
            clear,
            options,
        } => edit(home, &which, time, &clear, options)?,
        Command::List { json } => list(home, json)?,
        Command::Start => start(home)?,
        Command::Stop { force, timeout } => {
            manager::stop(home, force, Duration::from_secs(timeout), &mut |msg| {
                say(msg)
            })?
        }
        command @ (Command::Backups { .. }
        | Command::Verify { .. }
        | Command::Forget { .. }
        | Command::Browse(_)
        | Command::Mount { .. }
        | Command::Restore { .. }) => return archives(home, command),
        Command::Status { json } => return status(home, json),
        Command::Run {
            which,
            dry_run: true,
            ..
        } => return dry_run(home, &which),
        Command::Run { which, metrics, .. } => return run_now(home, &which, metrics),
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
    }
    Ok(ExitCode::SUCCESS)
}

/// The commands about the archives of `backups/`.
fn archives(home: &Home, command: Command) -> Result<ExitCode> {
    match command {
        Command::Backups { json, long: false } => print_all(&manager::backups(home)?, json)?,
        Command::Backups { long: true, .. } => backups_long(home)?,
        Command::Verify {
            name,
            source,
            identity,
            rebuild_index,
        } => return verify(home, &name, (source, rebuild_index), identity.as_deref()),
        Command::Forget {
            name,
            dry_run,
            json,
        } => {
            let forget = manager::forget(home, &name, dry_run, &mut |msg| say(msg))?;
            print_all(&forget.generations, json)?;
            say(&forget.summary);
        }
        Command::Browse(command) => browse::run(home, command)?,
        Command::Mount {
            dir,
            names,
            daemon,
            identity,
        } => mount(home, &dir, (names, identity.as_deref()), daemon)?,
        Command::Restore {
            name,
            dest,
            force,
            delete,
            at,
            identity,
            paths,
        } => restore(
            home,
            &name,
            &dest,
            (force, delete),
            (at.as_deref(), identity.as_deref()),
            &paths,
        )?,
        _ => unreachable!("only the archive commands come here"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `mount`: in the foreground, said once mounted; with `daemon`, in the background.
fn mount(home: &Home, dir: &Path, which: (Vec<String>, Option<&Path>), daemon: bool) -> Result<()> {
    if daemon {
        let pid = manager::mount_daemon(home, dir, which)?;
        say(&format!(
            "mounted the backups at {} (pid {pid}); `fusermount3 -u {}` unmounts them",
            dir.display(),
            dir.display()
        ));
        return Ok(());
    }
    manager::mount_here(home, dir, which, |at| {
        say(&format!(
            "mounted the backups at {}; Ctrl-C or `fusermount3 -u {}` unmounts them",
            at.display(),
            at.display()
        ))
    })
}

/// `list`: every line is shown first, so that the bad ones can be found and deleted.
fn list(home: &Home, json: bool) -> Result<()> {
    let entries = manager::list(home)?;
    print_all(&entries, json)?;
    if let Some(bad) = manager::bad_lines(home, &entries) {
        anyhow::bail!("{bad}");
    }
    Ok(())
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

/// `edit`: the flags given change the line; at least one must be.
fn edit(
    home: &Home,
    which: &Which,
    time: Option<TimeOfDay>,
    clear: &[String],
    mut options: cli::OptionFlags,
) -> Result<()> {
    // Read before the lock is taken: a recipients file slow to read holds up no one.
    let keys = options.keys()?;
    let (replaced, warning) = manager::edit(home, which, |schedule| {
        for key in clear {
            schedule.options.clear(key).map_err(anyhow::Error::msg)?;
        }
        let given = options.apply(&mut schedule.options, keys);
        if let Some(time) = time {
            schedule.time = time;
        }
        if !given && time.is_none() && clear.is_empty() {
            anyhow::bail!("edit: nothing to change; give --time, --clear OPTION or an option flag");
        }
        Ok(())
    })?;
    if let Some(warning) = warning {
        say(&warning);
    }
    if replaced.before == replaced.after {
        say(&format!(
            "schedule {} unchanged: {}",
            replaced.index, replaced.after
        ));
    } else {
        say(&format!(
            "schedule {} is now {}",
            replaced.index, replaced.after
        ));
    }
    Ok(())
}

/// `run --dry-run`: each entry on stdout, the count and size on stderr.
fn dry_run(home: &Home, which: &Which) -> Result<ExitCode> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut failed = None;
    let listed = manager::dry_run(home, which, &mut |name| {
        if failed.is_none() {
            if let Err(err) = writeln!(out, "{}", logging::one_line(name)) {
                failed = Some(err);
            }
        }
    })?;
    match failed.map_or_else(|| out.flush(), Err) {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
            anyhow::bail!("writing the list of entries: {err}")
        }
        _ => {}
    }
    for warning in &listed.warnings {
        say(&format!("warning: {warning}"));
    }
    say(&listed.summary);
    Ok(if listed.warnings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(backup::job::WARNINGS_EXIT)
    })
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

/// `verify`: the differences on stdout, then what was verified on stderr; exit 3 when
/// an encrypted archive could only be checked from outside, without its identity.
fn verify(
    home: &Home,
    name: &str,
    (source, rebuild_index): (bool, bool),
    identity: Option<&Path>,
) -> Result<ExitCode> {
    if rebuild_index {
        // Refused at once: nothing is read, and no file changes.
        manager::rebuild_needs_identity(home, name, identity)?;
    }
    let mut differences = Vec::new();
    let result = manager::verify(home, name, source, identity, &mut |line: &str| {
        differences.push(line.to_owned())
    });
    print_all(&differences, false)?;
    Ok(match result? {
        manager::Verified::Whole(message) => {
            // The archives are sound: now their indexes.
            for line in manager::verify_indexes(home, name, rebuild_index, identity)? {
                say(&line);
            }
            say(&message);
            ExitCode::SUCCESS
        }
        manager::Verified::Outside(message) => {
            say(&message);
            ExitCode::from(backup::job::WARNINGS_EXIT)
        }
    })
}

/// `restore`, of the newest archive or the generation `at`.
fn restore(
    home: &Home,
    name: &str,
    dest: &Path,
    (force, delete): (bool, bool),
    (at, identity): (Option<&str>, Option<&Path>),
    paths: &[String],
) -> Result<()> {
    let name = match at {
        Some(at) => manager::generation(home, name, at)?,
        None => name.to_owned(),
    };
    let finished = manager::restore_paths(home, &name, dest, (force, delete), identity, paths)?;
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

/// `run INDEX|NAME`, with a spinner on a terminal; the outcome is on stderr either way.
fn run_now(home: &Home, which: &Which, metrics: Option<std::path::PathBuf>) -> Result<ExitCode> {
    if let Some(metrics) = metrics {
        backup::metrics::set_file(metrics);
    }
    let spinner = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_message(format!("backing up {which}..."));
        bar.enable_steady_tick(Duration::from_millis(100));
        bar
    });
    let show = |progress: Progress| {
        if let Some(bar) = &spinner {
            bar.set_message(format!(
                "backing up {which}: {}, {:.1} MiB",
                logging::counted(progress.entries, "entry", "entries"),
                progress.bytes as f64 / f64::from(1 << 20)
            ));
        }
    };
    let progress = spinner.is_some().then_some(&show as &dyn Fn(Progress));
    let result = manager::run_now(home, which, progress, &mut |msg| say(msg));
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
