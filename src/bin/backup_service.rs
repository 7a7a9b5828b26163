//! `backup_service`: runs until stopped, backing up each schedule when it is due.

use std::fs::File;
use std::os::fd::{FromRawFd, RawFd};
use std::path::PathBuf;
use std::process::ExitCode;

use backup::home::Home;
use backup::logging::{self, Echo};
use backup::service;
use backup::state::Outcome;
use clap::{CommandFactory, Parser};

/// Backs up each schedule of backup_schedules.txt every day at its time. Usually
/// started by `backup_manager start`; runs in the foreground when started by hand.
#[derive(Debug, Parser)]
#[command(name = "backup_service", version)]
struct Cli {
    /// The home: the folder holding backup_schedules.txt, logs/ and backups/; default
    /// $BACKUP_HOME, else the current folder.
    #[arg(long, value_name = "DIR")]
    home: Option<PathBuf>,

    /// Descriptor on which to write "ready" once up (used by backup_manager start).
    #[arg(long, value_name = "FD", hide = true, value_parser = clap::value_parser!(RawFd).range(3..))]
    notify_fd: Option<RawFd>,

    /// Look at the schedules once, run what is owed, and exit (for cron or a systemd timer).
    ///
    /// Exits 0 when every backup it ran was done (or none was owed), 1 when one failed,
    /// 3 when none failed but one was done with warnings (a file left out).
    #[arg(long)]
    once: bool,

    /// Keep a Prometheus text-format file of every schedule's last backup, rewritten after
    /// each one (for node_exporter's textfile collector); default $BACKUP_METRICS.
    #[arg(long, value_name = "FILE")]
    metrics: Option<PathBuf>,

    /// Print the manual page (roff) and exit, e.g. backup_service --man | man -l -
    #[arg(long, exclusive = true)]
    man: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Before anything is opened: what the caller left open (`start 9>&1`) would keep its
    // reader waiting for as long as the service runs.
    backup::descriptors::close_inherited(cli.notify_fd);
    if cli.man {
        return match backup::manual::render(Cli::command(), &mut std::io::stdout()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("backup_service: writing the manual page: {err}");
                ExitCode::FAILURE
            }
        };
    }
    // SAFETY: the manager passes the write end of a pipe it made for this, and nothing
    // else in this process knows the number; the range check keeps stdio out.
    let mut ready = cli.notify_fd.map(|fd| unsafe { File::from_raw_fd(fd) });
    let home = match Home::find(cli.home.as_deref(), false) {
        Ok(home) => home,
        Err(err) => {
            eprintln!("backup_service: {err:#}");
            return ExitCode::FAILURE;
        }
    };
    // Relative schedule paths are relative to the home, and the manager recognises its
    // service by its working directory.
    if let Err(err) = std::env::set_current_dir(home.root()) {
        eprintln!("backup_service: entering {}: {err}", home.root().display());
        return ExitCode::FAILURE;
    }
    if let Err(err) = logging::init(&home.service_log(), Echo::Stderr) {
        eprintln!("backup_service: {err:#}");
        service::report_failure(&mut ready, &err);
        return ExitCode::FAILURE;
    }
    if let Some(metrics) = cli.metrics {
        backup::metrics::set_file(metrics);
    }
    let mode = if cli.once {
        service::Mode::Once
    } else {
        service::Mode::Forever
    };
    match service::run(&home, mode, &mut ready) {
        Ok(None | Some(Outcome::Ok)) => ExitCode::SUCCESS,
        Ok(Some(Outcome::Warnings)) => ExitCode::from(backup::job::WARNINGS_EXIT),
        Ok(Some(Outcome::Failed)) => ExitCode::FAILURE,
        Err(err) => {
            log::error!("{err:#}");
            service::report_failure(&mut ready, &err);
            ExitCode::FAILURE
        }
    }
}
