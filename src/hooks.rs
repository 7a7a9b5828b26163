//! Hooks, git-style: executables in the home's `hooks/` folder run around each backup.
//!
//! - `before-backup` runs first; a non-zero exit (or a kill at its time limit) cancels the
//!   backup, which is recorded as failed with the hook's message.
//! - `after-backup` runs after a finished archive (done or with warnings), e.g. to copy it
//!   off the box. Its failure is logged and changes nothing else.
//! - `on-failure` runs after a failed or cancelled backup, e.g. to send an alert.
//!
//! Each runs with the home as working folder, in a process group of its own, with the facts
//! in its environment (`BACKUP_NAME`, `BACKUP_SOURCE`, `BACKUP_ARCHIVE`, `BACKUP_HOME`,
//! `BACKUP_RESULT`, `BACKUP_ERROR`). Past its time limit the whole group is killed, so a
//! hang is bounded and `stop` stays prompt. Its exit code and last lines of output go to the
//! log. Like ssh's StrictModes, a hook, the `hooks/` folder and every folder above them up to
//! `/` (and up to the hook's real location, when it is a link) must be owned by the user
//! running it or by root and be writable by no one else; otherwise it is skipped with a
//! logged error. The file checked is the file run ([`check`] returns it open). No hook
//! file, no change.

mod exec;

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use log::{error, info};
use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
use nix::unistd::Pid;

pub use exec::{Checked, check};

use crate::generations::chain;
use crate::home::{BACKUPS_DIR, Home};
use crate::interrupt::{self, Interrupts};
use crate::schedule::Schedule;
use crate::state::{Outcome, Run};

/// Folder of the hooks, relative to the home.
pub const HOOKS_DIR: &str = "hooks";
/// Environment variable that sets every hook's time limit, in seconds.
pub const TIMEOUT_VAR: &str = "BACKUP_HOOK_TIMEOUT";
/// A hook's time limit when [`TIMEOUT_VAR`] is not set: as long as a slow upload may need.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a hook's group has between SIGTERM and SIGKILL once past its limit.
const GRACE: Duration = Duration::from_secs(2);
/// How many of a hook's last output lines go to the log.
const LAST_LINES: usize = 10;
/// How many bytes of a hook's output are kept to find those lines.
const KEPT_BYTES: usize = 8 * 1024;

/// The three hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// Before a backup; a failure cancels it.
    BeforeBackup,
    /// After a finished archive.
    AfterBackup,
    /// After a failed or cancelled backup.
    OnFailure,
}

impl Hook {
    /// The hook's file name in `hooks/`.
    pub fn file_name(self) -> &'static str {
        match self {
            Hook::BeforeBackup => "before-backup",
            Hook::AfterBackup => "after-backup",
            Hook::OnFailure => "on-failure",
        }
    }
}

/// How a hook ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// There is no such hook: nothing ran.
    Absent,
    /// The hook was refused (ownership, permissions) or could not be started; logged.
    Skipped(String),
    /// It exited with status 0.
    Succeeded,
    /// It failed: a non-zero exit, a signal, or a kill at the time limit, said in words.
    Failed(String),
}

/// Backs up `schedule` with `back_up`, running the home's hooks around it, and returns the
/// run to record. A cancelling `before-backup` makes a failed run without calling
/// `back_up`. No hook file, no change: the run is `back_up`'s.
///
/// `manual` says whether the backup was asked by hand (`run INDEX`).
pub fn around(
    home: &Home,
    schedule: &Schedule,
    manual: bool,
    back_up: impl FnOnce() -> (Run, Option<Written>),
) -> Run {
    let before = run(
        home,
        Hook::BeforeBackup,
        &facts(home, schedule, None, None),
        manual,
    );
    // A failing before-backup cancels the backup: the run's own failure. One skipped
    // cancels nothing, but must be seen all the same.
    let skipped_before = match &before {
        Ended::Skipped(_) => before.problem(Hook::BeforeBackup),
        _ => None,
    };
    let (mut run_, written) = match before {
        Ended::Failed(why) => (cancelled(schedule, &why, manual), None),
        Ended::Absent | Ended::Skipped(_) | Ended::Succeeded => back_up(),
    };
    let hook = match run_.outcome {
        Outcome::Ok | Outcome::Warnings => Hook::AfterBackup,
        Outcome::Failed => Hook::OnFailure,
    };
    let env = facts(home, schedule, Some(&run_), written.as_ref());
    let after = run(home, hook, &env, manual);
    run_.hooks.extend(skipped_before);
    run_.hooks.extend(after.problem(hook));
    run_
}

impl Ended {
    /// What went wrong with `hook`, as one sentence, when it failed or was skipped.
    pub fn problem(&self, hook: Hook) -> Option<String> {
        let name = hook.file_name();
        match self {
            Ended::Absent | Ended::Succeeded => None,
            Ended::Skipped(why) => Some(format!("hook {name} skipped: {why}")),
            Ended::Failed(why) => Some(format!("hook {name} {why}")),
        }
    }
}

/// What a backup wrote, for the hooks after it: what a mirror of `backups/` copies and
/// removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The file just written, under the name it keeps (`NAME.YYYY-MM-DD_HHMM.tar` for a
    /// schedule that keeps several, `NAME.tar` for one that does not).
    pub archive: String,
    /// `plain`, `full` or `incremental`.
    pub kind: &'static str,
    /// The files the backup removed (pruned generations), oldest first.
    pub pruned: Vec<String>,
}

/// Tells the `after-backup` hook that `forget` removed `pruned` (file names in
/// `backups/`), with `BACKUP_RESULT=pruned` and no `BACKUP_ARCHIVE`, so that a mirror
/// removes them too.
pub fn after_prune(home: &Home, schedule: &Schedule, pruned: &[String]) -> Ended {
    let mut env = facts(home, schedule, None, None);
    for (key, value) in &mut env {
        match *key {
            "BACKUP_ARCHIVE" | "BACKUP_CHAIN" => value.clear(),
            "BACKUP_RESULT" => *value = "pruned".to_owned(),
            "BACKUP_PRUNED" => *value = in_backups(home, pruned),
            _ => {}
        }
    }
    run(home, Hook::AfterBackup, &env, true)
}

/// The absolute paths of `files` in the home's `backups/`, one a line.
fn in_backups(home: &Home, files: &[String]) -> String {
    let dir = home.backups();
    let paths: Vec<String> = files
        .iter()
        .map(|f| dir.join(f).to_string_lossy().into_owned())
        .collect();
    paths.join("\n")
}

/// The run recorded for a backup that `before-backup` cancelled.
fn cancelled(schedule: &Schedule, why: &str, manual: bool) -> Run {
    let message = format!(
        "backup of {} cancelled: hook before-backup {why}",
        schedule.path
    );
    error!("{message}");
    Run {
        started: chrono::Local::now().fixed_offset(),
        duration_secs: 0.0,
        outcome: Outcome::Failed,
        bytes: 0,
        entries: 0,
        messages: vec![message],
        warning_count: 0,
        manual,
        hooks: Vec::new(),
    }
}

/// The environment a hook is given: before the backup, `run` is `None`.
fn facts(
    home: &Home,
    schedule: &Schedule,
    run: Option<&Run>,
    written: Option<&Written>,
) -> Vec<(&'static str, String)> {
    let file_name = written.map_or_else(|| schedule.archive_file_name(), |w| w.archive.clone());
    let archive = home.root().join(BACKUPS_DIR).join(&file_name);
    // The chain, oldest first, that restores this archive: itself alone unless it is an
    // incremental one.
    let chain = match written {
        Some(w) if w.kind == "incremental" => {
            chain::chain_to(&home.backups(), &file_name, schedule.format())
                .map(|paths| {
                    let paths: Vec<String> = paths
                        .iter()
                        .map(|p| p.to_string_lossy().into_owned())
                        .collect();
                    paths.join("\n")
                })
                .unwrap_or_default()
        }
        Some(_) => archive.to_string_lossy().into_owned(),
        None => String::new(),
    };
    let source = home.resolve(Path::new(&schedule.path));
    let (result, error) = match run.map(|r| r.outcome) {
        None => ("", String::new()),
        Some(Outcome::Ok) => ("done", String::new()),
        Some(Outcome::Warnings) => ("warnings", String::new()),
        Some(Outcome::Failed) => (
            "failed",
            run.map(|r| r.messages.join("\n")).unwrap_or_default(),
        ),
    };
    vec![
        ("BACKUP_NAME", schedule.name.clone()),
        ("BACKUP_SOURCE", source.to_string_lossy().into_owned()),
        ("BACKUP_ARCHIVE", archive.to_string_lossy().into_owned()),
        ("BACKUP_HOME", home.root().to_string_lossy().into_owned()),
        ("BACKUP_RESULT", result.to_owned()),
        ("BACKUP_ERROR", error),
        ("BACKUP_KIND", written.map_or("", |w| w.kind).to_owned()),
        ("BACKUP_CHAIN", chain),
        (
            "BACKUP_PRUNED",
            written.map_or_else(String::new, |w| in_backups(home, &w.pruned)),
        ),
    ]
}

/// The time limit of every hook: [`TIMEOUT_VAR`] in seconds, or [`DEFAULT_TIMEOUT`].
/// A value that is not a positive number is logged and the default used.
pub fn time_limit() -> Duration {
    match std::env::var(TIMEOUT_VAR) {
        Err(_) => DEFAULT_TIMEOUT,
        Ok(text) => match text.trim().parse::<u64>() {
            Ok(secs) if secs > 0 => Duration::from_secs(secs),
            _ => {
                error!(
                    "{TIMEOUT_VAR}={text:?} is not a number of seconds above 0; hooks get {} s",
                    DEFAULT_TIMEOUT.as_secs()
                );
                DEFAULT_TIMEOUT
            }
        },
    }
}

/// Runs `hook` of `home` if there is one, with `env` added, and logs how it ended.
///
/// Run by hand (`manual`), in a terminal: Ctrl-C, SIGTERM or SIGHUP while the hook runs
/// stops the hook's process group (SIGTERM, then SIGKILL), is logged, and then ends this
/// process as the signal would have.
pub fn run(home: &Home, hook: Hook, env: &[(&'static str, String)], manual: bool) -> Ended {
    let name = hook.file_name();
    let path = home.root().join(HOOKS_DIR).join(name);
    match fs::symlink_metadata(&path) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ended::Absent,
        _ => {}
    }
    let checked = match check(&path) {
        Ok(checked) => checked,
        Err(err) => {
            let why = format!("{err:#}");
            error!("hook {name} skipped: {why}");
            return Ended::Skipped(why);
        }
    };
    let limit = time_limit();
    let interrupts = if manual {
        Interrupts::catch()
            .inspect_err(|err| error!("{err:#}; Ctrl-C will not reach hook {name}"))
            .ok()
    } else {
        None
    };
    // Checked once the signals are caught for the hook: a command already on its way out
    // (Ctrl-C on `run`) must not leave a hook behind it.
    if interrupt::stopping() {
        return Ended::Skipped("not started: interrupted".to_owned());
    }
    let ended = match execute(home, &checked, env, limit, interrupts.as_ref()) {
        Err(err) => {
            let why = format!("{err:#}");
            error!("hook {name} skipped: {why}");
            Ended::Skipped(why)
        }
        Ok((ended, output)) => {
            let tail = last_lines(&output);
            let shown = if tail.is_empty() {
                String::new()
            } else {
                format!("; last output: {tail}")
            };
            match ended {
                Ended::Succeeded => {
                    info!("hook {name} exited with 0{shown}");
                    Ended::Succeeded
                }
                // Its last words go with the failure, wherever it is told.
                Ended::Failed(why) => {
                    let why = format!("{why}{shown}");
                    error!("hook {name} {why}");
                    Ended::Failed(why)
                }
                other => other,
            }
        }
    };
    if let Some(interrupts) = interrupts {
        interrupts.end();
    }
    ended
}

/// Runs the checked hook in a process group of its own and waits for it at most `limit`;
/// past that, or once `interrupts` caught a signal, the group gets SIGTERM, then SIGKILL.
/// Returns how it ended and the last bytes of its output (stdout and stderr together).
fn execute(
    home: &Home,
    hook: &Checked,
    env: &[(&'static str, String)],
    limit: Duration,
    interrupts: Option<&Interrupts>,
) -> Result<(Ended, Vec<u8>)> {
    let path = hook.path.as_path();
    let (mut child, output) = exec::spawn(home, hook, env)?;
    let pid = Pid::from_raw(child.id() as i32);
    let (status, stopped) = wait(pid, path, limit, interrupts)?;
    if stopped.is_some() {
        // What the group's other members did with SIGTERM does not matter: none outlives
        // the hook.
        let _ = killpg(pid, Signal::SIGKILL);
    }
    let exit = child
        .wait()
        .with_context(|| format!("reaping {}", path.display()))?;
    let ended = match (stopped, status) {
        (Some(Stop::TimeLimit), _) => Ended::Failed(format!(
            "killed with its process group after its time limit of {} s ({TIMEOUT_VAR})",
            limit.as_secs()
        )),
        (Some(Stop::Interrupted(signal)), _) => Ended::Failed(format!(
            "stopped with its process group: backup_manager got {signal}"
        )),
        (None, WaitStatus::Exited(_, 0)) => Ended::Succeeded,
        (None, WaitStatus::Exited(_, code)) => Ended::Failed(format!("exited with {code}")),
        (None, _) => Ended::Failed(format!("ended with {exit}")),
    };
    // A child left running in the background may hold the pipe open: wait a little for
    // the output, then go on with what came.
    let bytes = output
        .recv_timeout(Duration::from_millis(500))
        .unwrap_or_default();
    Ok((ended, bytes))
}

/// Waits for the hook `pid` to exit, stopping its group (SIGTERM, then SIGKILL after
/// [`GRACE`]) past `limit` or once `interrupts` caught a signal. Returns how it exited and
/// why it was stopped, if it was. The hook is left a zombie, for its caller to reap.
fn wait(
    pid: Pid,
    path: &Path,
    limit: Duration,
    interrupts: Option<&Interrupts>,
) -> Result<(WaitStatus, Option<Stop>)> {
    let started = Instant::now();
    // Why the group is being stopped, and when SIGTERM went.
    let mut stopping: Option<(Stop, Instant)> = None;
    let mut killed = false;
    loop {
        // WNOWAIT leaves the hook a zombie, so its process group id cannot be reused
        // while we may still signal it.
        match waitid(
            Id::Pid(pid),
            WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT,
        ) {
            Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::EINTR) => {}
            Ok(status) => return Ok((status, stopping.map(|(stop, _)| stop))),
            Err(err) => bail!("waiting for {}: {err}", path.display()),
        }
        match stopping {
            None => {
                let stop = match interrupts.and_then(Interrupts::caught) {
                    Some(signal) => Some(Stop::Interrupted(signal)),
                    None => (started.elapsed() >= limit).then_some(Stop::TimeLimit),
                };
                if let Some(stop) = stop {
                    let _ = killpg(pid, Signal::SIGTERM);
                    stopping = Some((stop, Instant::now()));
                }
            }
            Some((_, termed)) if !killed && termed.elapsed() >= GRACE => {
                let _ = killpg(pid, Signal::SIGKILL);
                killed = true;
            }
            Some(_) => {}
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Why a hook's process group is stopped before it ends on its own.
#[derive(Clone, Copy)]
enum Stop {
    TimeLimit,
    Interrupted(Signal),
}

/// Reads `reader` to its end in a thread, keeping the last [`KEPT_BYTES`].
pub(crate) fn collect(mut reader: fs::File) -> mpsc::Receiver<Vec<u8>> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    kept.extend_from_slice(&buf[..n]);
                    if kept.len() > KEPT_BYTES {
                        kept.drain(..kept.len() - KEPT_BYTES);
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = sender.send(kept);
    });
    receiver
}

/// The last `LAST_LINES` non-empty lines of `output`, joined with " | " for one log line.
pub fn last_lines(output: &[u8]) -> String {
    let text = String::from_utf8_lossy(output);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(LAST_LINES);
    lines[start..].join(" | ")
}

/// The path of `hook` in `home`.
pub fn path(home: &Home, hook: Hook) -> PathBuf {
    home.root().join(HOOKS_DIR).join(hook.file_name())
}

#[cfg(test)]
mod tests;
