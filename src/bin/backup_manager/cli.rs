//! The command line: commands, flags and their help, which clap also turns into the
//! manual page and the shell completions.

use std::path::PathBuf;

use backup::naming::Compression;
use backup::retention::{Periods, Within};
use backup::schedule::{
    CLEARABLE, Choosing, DEFAULT_FULL_EVERY, Incremental, MAX_FULL_EVERY, MAX_KEEP, Options,
    Recipient, Size, TimeOfDay, Weekdays, Which,
};
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
    /// Delete the schedule at INDEX (as shown by list, from 0), or every line of NAME.
    Delete {
        /// The schedule's index (digits only), or its NAME: each of its lines.
        #[arg(value_name = "INDEX|NAME")]
        which: Which,
    },
    /// Change a schedule in place: its time, or any option create takes.
    ///
    /// E.g. edit proj --time 03:00 --compress zstd --clear keep. Options not named stay as
    /// they are; --clear OPTION sets one back to its default (exclude drops every pattern),
    /// before the flags given are applied. The line is checked as create checks a new one.
    Edit {
        /// The schedule's index (digits only), or its NAME when it has a single line.
        #[arg(value_name = "INDEX|NAME")]
        which: Which,
        /// The new time of day.
        #[arg(long, value_name = "HH:MM", value_parser = parse_time)]
        time: Option<TimeOfDay>,
        /// Set OPTION back to its default (repeatable): one of the flags' names, e.g. keep,
        /// exclude, compress, days.
        #[arg(long, value_name = "OPTION",
              value_parser = clap::builder::PossibleValuesParser::new(CLEARABLE))]
        clear: Vec<String>,
        #[command(flatten)]
        options: OptionFlags,
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
        #[arg(long, conflicts_with = "long")]
        json: bool,
        /// Show each archive's size, when it was made, and whether it is a plain archive,
        /// the full backup of a chain, or an incremental one.
        #[arg(long, short = 'l')]
        long: bool,
    },
    /// Show whether the service runs, and each schedule's next run and last result.
    ///
    /// Exit codes:
    ///   0  the service runs and no last run failed;
    ///   1  a last run failed (or was cancelled by the before-backup hook), a hook
    ///      failed, timed out or was skipped, or a schedule is overdue (no successful
    ///      backup for longer than its period and 2 hours);
    ///   2  usage error (a mistyped command or option);
    ///   3  the service is not running;
    ///   4  the status cannot be told (an unreadable file, or no home found).
    #[command(verbatim_doc_comment)]
    Status {
        /// Print JSON, for scripts and monitors.
        #[arg(long)]
        json: bool,
    },
    /// Back up the schedule at INDEX (or NAME) now, in the foreground.
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
        /// The schedule's index (digits only), or its NAME: backed up once for all its
        /// lines.
        #[arg(value_name = "INDEX|NAME")]
        which: Which,
        /// List every entry the backup would hold, and their total size, on stdout;
        /// write nothing, run no hook.
        #[arg(long, conflicts_with = "metrics")]
        dry_run: bool,
        /// Rewrite this Prometheus text-format file of every schedule's last backup after
        /// it; default $BACKUP_METRICS.
        #[arg(long, value_name = "FILE")]
        metrics: Option<PathBuf>,
    },
    /// Apply a schedule's retention policy now: list what it keeps and why, and remove
    /// the rest (with --dry-run, remove nothing).
    Forget {
        /// The schedule's NAME.
        name: String,
        /// Show what would be kept and removed, and remove nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Check an archive end to end; with --source, compare it with the live tree.
    Verify {
        /// The schedule's NAME, or an archive file name as `backups` lists it.
        name: String,
        /// Also compare every entry with the source it was made from, listing differences.
        #[arg(long)]
        source: bool,
        /// The age identity file or SSH private key that opens an encrypted archive;
        /// without it, only what can be checked without the key is (exit 3).
        #[arg(long, value_name = "FILE")]
        identity: Option<PathBuf>,
        /// Make again the index of each archive whose index is missing or does not
        /// match it.
        #[arg(long)]
        rebuild_index: bool,
    },
    /// Extract an archive into DEST (new or empty), never writing outside it.
    Restore {
        /// The schedule's NAME, or an archive file name as `backups` lists it.
        name: String,
        /// The folder to restore into.
        dest: PathBuf,
        /// Restore into a folder that is not empty, replacing files in the way and
        /// leaving the rest alone.
        #[arg(long)]
        force: bool,
        /// Also delete what DEST holds and the archive does not, inside the folders the
        /// archive holds (a mirror, as rsync --delete); implies --force.
        #[arg(long)]
        delete: bool,
        /// The generation to restore, as its date in `backups` (YYYY-MM-DD_HHMM) or its
        /// file name; an incremental one comes back with its chain.
        #[arg(long, value_name = "GENERATION")]
        at: Option<String>,
        /// The age identity file or SSH private key that opens an encrypted archive.
        #[arg(long, value_name = "FILE")]
        identity: Option<PathBuf>,
        /// Only this file or folder (repeatable): as the absolute source path, as stored
        /// in the archive, or relative to the schedule's PATH.
        #[arg(long = "path", value_name = "PATH")]
        paths: Vec<String>,
    },
    #[command(flatten)]
    Browse(crate::browse::BrowseCommand),
    /// Mount every kept generation read-only at DIR: DIR/NAME/GENERATION/... and
    /// DIR/NAME/latest. Stays in the foreground until Ctrl-C, SIGTERM or
    /// `fusermount3 -u DIR`.
    Mount {
        /// An empty folder outside the home.
        dir: PathBuf,
        /// Only these schedules (all with archives by default).
        names: Vec<String>,
        /// Mount in the background and return once the mount is there.
        #[arg(long)]
        daemon: bool,
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
        /// Have the service keep this Prometheus text-format file (an absolute path).
        #[arg(long, value_name = "FILE", conflicts_with = "timer")]
        metrics: Option<PathBuf>,
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
    /// Run only on these days of the week (local time), e.g. mon-fri, sat,sun or
    /// mon,wed,fri; every day by default.
    #[arg(long, value_name = "DAYS")]
    days: Option<Weekdays>,
    /// Compress the archive: backups/NAME.tar.gz or backups/NAME.tar.zst.
    #[arg(long, value_name = "gzip|zstd")]
    compress: Option<Compression>,
    /// Keep the N newest archives (like restic's --keep-last): the newest as
    /// backups/NAME.tar, each under the dated name it was written with.
    #[arg(long, visible_alias = "keep-last", value_name = "N", value_parser = keep_count())]
    keep: Option<u16>,
    /// Also keep the newest archive of each of the last N hours that have one.
    #[arg(long, value_name = "N", value_parser = keep_count())]
    keep_hourly: Option<u16>,
    /// Also keep the newest archive of each of the last N days that have one.
    #[arg(long, value_name = "N", value_parser = keep_count())]
    keep_daily: Option<u16>,
    /// Also keep the newest archive of each of the last N weeks (ISO weeks) that have one.
    #[arg(long, value_name = "N", value_parser = keep_count())]
    keep_weekly: Option<u16>,
    /// Also keep the newest archive of each of the last N months that have one.
    #[arg(long, value_name = "N", value_parser = keep_count())]
    keep_monthly: Option<u16>,
    /// Also keep the newest archive of each of the last N years that have one.
    #[arg(long, value_name = "N", value_parser = keep_count())]
    keep_yearly: Option<u16>,
    /// Also keep every archive made within DURATION of the newest, e.g. 10d, 2w, 6m, 1y.
    #[arg(long, value_name = "DURATION")]
    keep_within: Option<Within>,
    /// Leave out paths matching PATTERN (.gitignore syntax, relative to PATH); repeatable.
    #[arg(long, value_name = "PATTERN")]
    exclude: Vec<String>,
    /// Leave out the content of folders holding a valid CACHEDIR.TAG (the tag is kept).
    #[arg(long)]
    exclude_caches: bool,
    /// Honour .gitignore, .ignore and .git/info/exclude inside the tree (.git/ is kept).
    #[arg(long)]
    gitignore: bool,
    /// Leave out the patterns listed in FILE, one a line (# comments and blank lines
    /// ignored); the file is read at each backup, which fails if it cannot be.
    #[arg(long, value_name = "FILE")]
    exclude_from: Option<String>,
    /// Do not descend into folders on other file systems (mount points are stored empty).
    #[arg(long, visible_alias = "xdev")]
    one_file_system: bool,
    /// Leave out files larger than SIZE, e.g. 500K, 10M, 1G (powers of 1024).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    exclude_larger_than: Option<Size>,
    /// Back up only what changed since the previous backup, in chains that restart with
    /// a full backup every --full-every days.
    #[arg(long)]
    incremental: bool,
    /// Days between two full backups of an incremental chain (default 7).
    #[arg(long, value_name = "DAYS", requires = "incremental",
          value_parser = clap::value_parser!(u16).range(1..=i64::from(MAX_FULL_EVERY)))]
    full_every: Option<u16>,
    /// Encrypt the archives to this public key (age1... or ssh-ed25519/ssh-rsa ...):
    /// backups/NAME.tar[.gz|.zst].age; repeatable. Only its identity can read them.
    #[arg(long, value_name = "RECIPIENT")]
    encrypt: Vec<String>,
    /// Encrypt to the public keys in FILE, one a line, as age -R reads them; the keys
    /// are copied onto the schedule's line.
    #[arg(long, value_name = "FILE")]
    recipients_file: Vec<PathBuf>,
}

impl OptionFlags {
    /// The options the flags ask for, with the keys of every recipients file read in.
    pub fn options(mut self) -> anyhow::Result<Options> {
        // Checked here rather than by clap: a bad key is an error of one line, as a bad
        // exclude pattern is.
        let keys = self.keys()?;
        let mut options = Options::from(self);
        options.encrypt = keys;
        Ok(options)
    }

    /// The keys of `--encrypt` and of every `--recipients-file`, each once, taken out of
    /// the flags.
    pub fn keys(&mut self) -> anyhow::Result<Vec<Recipient>> {
        let mut keys: Vec<Recipient> = Vec::new();
        for key in std::mem::take(&mut self.encrypt) {
            let key = key.parse::<Recipient>()?;
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        for path in std::mem::take(&mut self.recipients_file) {
            for key in backup::encryption::read_recipients_file(&path)? {
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
        }
        Ok(keys)
    }
}

impl From<OptionFlags> for Options {
    fn from(flags: OptionFlags) -> Self {
        Options {
            days: flags.days.unwrap_or_default(),
            compression: flags.compress.unwrap_or_default(),
            keep: flags.keep.unwrap_or(1),
            periods: Periods {
                hourly: flags.keep_hourly.unwrap_or(0),
                daily: flags.keep_daily.unwrap_or(0),
                weekly: flags.keep_weekly.unwrap_or(0),
                monthly: flags.keep_monthly.unwrap_or(0),
                yearly: flags.keep_yearly.unwrap_or(0),
                within: flags.keep_within,
            },
            exclude: flags.exclude,
            exclude_caches: flags.exclude_caches,
            gitignore: flags.gitignore,
            choosing: Choosing {
                exclude_from: flags.exclude_from,
                one_file_system: flags.one_file_system,
                exclude_larger_than: flags.exclude_larger_than,
            },
            incremental: flags.incremental.then(|| Incremental {
                full_every_days: flags.full_every.unwrap_or(DEFAULT_FULL_EVERY),
            }),
            // Parsed by [`OptionFlags::options`], which reads the recipients files too.
            encrypt: Vec::new(),
        }
    }
}

impl OptionFlags {
    /// For `edit`: sets on `options` each option given, leaving the others as they are
    /// (excludes add up; the keys given replace the line's, so that who can read the
    /// archives is exactly what was typed): `keys`, taken out by [`OptionFlags::keys`]
    /// before the schedule file is locked. Returns whether any was given.
    pub fn apply(self, options: &mut Options, keys: Vec<Recipient>) -> bool {
        let mut given = !keys.is_empty();
        if given {
            options.encrypt = keys;
        }
        let mut set = |is: bool| given |= is;
        macro_rules! put {
            ($flag:expr, $field:expr) => {
                if let Some(value) = $flag {
                    $field = value;
                    set(true);
                }
            };
        }
        put!(self.days, options.days);
        put!(self.compress, options.compression);
        put!(self.keep, options.keep);
        put!(self.keep_hourly, options.periods.hourly);
        put!(self.keep_daily, options.periods.daily);
        put!(self.keep_weekly, options.periods.weekly);
        put!(self.keep_monthly, options.periods.monthly);
        put!(self.keep_yearly, options.periods.yearly);
        put!(self.keep_within.map(Some), options.periods.within);
        put!(self.exclude_from.map(Some), options.choosing.exclude_from);
        put!(
            self.exclude_larger_than.map(Some),
            options.choosing.exclude_larger_than
        );
        for pattern in self.exclude {
            if !options.exclude.contains(&pattern) {
                options.exclude.push(pattern);
            }
            set(true);
        }
        options.exclude_caches |= self.exclude_caches;
        options.gitignore |= self.gitignore;
        options.choosing.one_file_system |= self.one_file_system;
        set(self.exclude_caches || self.gitignore || self.one_file_system);
        if self.incremental {
            let own = options.incremental.map(|chain| chain.full_every_days);
            options.incremental = Some(Incremental {
                full_every_days: self.full_every.or(own).unwrap_or(DEFAULT_FULL_EVERY),
            });
            set(true);
        }
        given
    }
}

/// A time of day as the schedule line writes it, `HH:MM`.
fn parse_time(text: &str) -> Result<TimeOfDay, String> {
    text.parse()
        .map_err(|why: backup::schedule::Reason| why.to_string())
}

/// A size, as `exclude-larger-than=` takes it.
fn parse_size(text: &str) -> Result<Size, String> {
    text.parse()
        .map_err(|why: backup::schedule::ChoiceError| why.to_string())
}

/// A count of archives to keep, from 1 to the most a schedule may keep.
fn keep_count() -> clap::builder::RangedI64ValueParser<u16> {
    clap::value_parser!(u16).range(1..=i64::from(MAX_KEEP))
}
