//! The command line: commands, flags and their help, which clap also turns into the
//! manual page and the shell completions.

use std::path::PathBuf;

use backup::naming::Compression;
use backup::schedule::{DEFAULT_FULL_EVERY, Incremental, MAX_FULL_EVERY, MAX_KEEP, Options};
use clap::{Args, Parser, Subcommand};

/// Daily tar backups at scheduled times, without cron.
#[derive(Debug, Parser)]
#[command(version)]
pub struct Cli {
    /// The home: the folder holding backup_schedules.txt, logs/ and backups/; default
    /// $BACKUP_HOME, else the current folder.
    #[arg(long, global = true, value_name = "DIR")]
    pub home: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
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
    ///
    /// Exit codes:
    ///   0    the backup is done;
    ///   1    it failed (or was cancelled by the before-backup hook): the previous
    ///        archive is as it was;
    ///   2    usage error (a mistyped command or option);
    ///   3    done with warnings: the archive is written, but a file was left out or
    ///        changed while read (GNU tar says 1, restic 3);
    ///   130  interrupted by Ctrl-C (143: SIGTERM, 129: SIGHUP), as a shell reports a
    ///        command a signal ended; the unfinished archive is removed.
    #[command(verbatim_doc_comment)]
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
pub struct OptionFlags {
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

/// An INDEX as `list` shows it: digits only, so that `+1` or ` 1` is not taken for 1.
fn parse_index(text: &str) -> Result<usize, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err("an index is a number as `list` shows it, from 0".to_owned());
    }
    text.parse()
        .map_err(|_| "the number is too large for an index".to_owned())
}
