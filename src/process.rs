//! Finding, starting and signalling this home's service, and nothing else.
//!
//! A process is taken for this home's service only when three things hold at once: it holds
//! the lock on the home's pid file (asked of the kernel), its executable is named
//! `backup_service`, and its working directory is the home. The check is made through a
//! pidfd opened *before* it, and the signal is sent through that same pidfd, so a pid that
//! is recycled between the check and the signal cannot be hit.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use nix::fcntl::OFlag;
use nix::libc;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::home::Home;
use crate::pidfile;

/// File name of the service's executable.
pub const SERVICE_BIN: &str = "backup_service";

/// This home's running service, proven so, and held by a pidfd.
#[derive(Debug)]
pub struct Service {
    pid: Pid,
    pidfd: OwnedFd,
}

impl Service {
    /// Finds this home's running service, or `None` when none runs.
    ///
    /// Fails, without touching anything, when the pid file is locked by a process that
    /// is not a `backup_service` of this home.
    pub fn find(home: &Home) -> Result<Option<Self>> {
        let pid_file = home.pid_file();
        let Some(pid) = pidfile::holder(&pid_file)? else {
            return Ok(None);
        };
        let pidfd = match pidfd_open(pid) {
            Ok(fd) => fd,
            // It exited since we asked: nothing runs.
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("opening a pidfd for pid {pid}")),
        };
        // Checked after the pidfd exists: if the pid was recycled before pidfd_open, the
        // lock holder is no longer that pid and this fails.
        if pidfile::holder(&pid_file)? != Some(pid) {
            return Ok(None);
        }
        verify_identity(pid, home)?;
        Ok(Some(Self { pid, pidfd }))
    }

    /// The service's process id.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Sends `signal` to the service (and only to it, through the pidfd).
    pub fn signal(&self, signal: Signal) -> Result<()> {
        // SAFETY: pidfd_send_signal takes a valid pidfd, a signal number, a null siginfo
        // (meaning "as kill(2) would") and zero flags; it touches no memory of ours.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.pidfd.as_raw_fd(),
                signal as libc::c_int,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if rc == -1 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::ESRCH) {
                return Ok(()); // already gone, which is what we wanted
            }
            return Err(err).with_context(|| format!("sending {signal} to pid {}", self.pid));
        }
        Ok(())
    }

    /// Waits up to `timeout` for the service to exit; `true` when it has.
    pub fn wait_exit(&self, timeout: Duration) -> Result<bool> {
        // A pidfd becomes readable when its process exits.
        let mut fds = [PollFd::new(self.pidfd.as_fd(), PollFlags::POLLIN)];
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ms = PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32)
                .unwrap_or(PollTimeout::MAX);
            match poll(&mut fds, ms) {
                Ok(0) => return Ok(false),
                Ok(_) => return Ok(true),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e).context("waiting for backup_service to exit"),
            }
        }
    }
}

/// Checks that `pid` runs the `backup_service` executable with `home` as its working
/// directory, reading both from `/proc`.
fn verify_identity(pid: Pid, home: &Home) -> Result<()> {
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let refuse = |why: String| {
        anyhow!(
            "pid {pid} holds the lock on {} but {why}: not touching it",
            home.pid_file().display()
        )
    };
    let exe = std::fs::read_link(proc_dir.join("exe"))
        .map_err(|e| refuse(format!("its executable cannot be read ({e})")))?;
    let exe_name = exe.file_name().map(|n| n.to_string_lossy().into_owned());
    // A rebuilt or reinstalled binary shows as "backup_service (deleted)".
    let exe_name = exe_name
        .as_deref()
        .map(|n| n.trim_end_matches(" (deleted)"));
    if exe_name != Some(SERVICE_BIN) {
        return Err(refuse(format!("it runs {}", exe.display())));
    }
    let cwd = std::fs::read_link(proc_dir.join("cwd"))
        .map_err(|e| refuse(format!("its working directory cannot be read ({e})")))?;
    if cwd != home.root() {
        return Err(refuse(format!("it runs in {}", cwd.display())));
    }
    Ok(())
}

fn pidfd_open(pid: Pid) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just gave us this descriptor, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}

/// The file `program` names on `PATH`, if there is one.
pub fn on_path(program: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// Finds the service executable: next to the running program, then on `PATH`.
pub fn service_binary() -> Result<PathBuf> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(SERVICE_BIN)));
    beside
        .filter(|candidate| candidate.is_file())
        .or_else(|| on_path(SERVICE_BIN))
        .ok_or_else(|| {
            anyhow!("cannot find {SERVICE_BIN}: it is neither next to this program nor on PATH")
        })
}

/// A service just spawned by [`spawn`], not yet known to be up.
#[derive(Debug)]
pub struct Spawned {
    child: Child,
    ready: File,
}

/// How a freshly spawned service ended its start-up.
#[derive(Debug)]
pub enum StartUp {
    /// It is up and has looked at the schedules once.
    Ready(Pid),
    /// It exited before it was ready.
    Exited(ExitStatus),
    /// It said why it could not start (and then exited, with this status).
    Failed(String, Option<ExitStatus>),
    /// It said nothing within the time allowed.
    TimedOut(Pid),
}

/// Starts `binary` as this home's service, detached: in a new session, in the home, with
/// no terminal and no inherited output, so that `$(backup_manager start)` returns at once.
///
/// The service reports readiness by writing to a pipe whose write end it inherits; the
/// descriptor number is passed with `--notify-fd`.
pub fn spawn(binary: &Path, home: &Home) -> Result<Spawned> {
    let (read_end, write_end) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).context("creating the start-up pipe")?;
    let notify_fd = write_end.as_raw_fd();
    let mut command = Command::new(binary);
    command
        .arg("--home")
        .arg(home.root())
        .arg("--notify-fd")
        .arg(notify_fd.to_string())
        .current_dir(home.root())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: between fork and exec only async-signal-safe calls are allowed; setsid and
    // fcntl are, and the closure allocates nothing.
    unsafe {
        command.pre_exec(move || {
            if libc::setsid() == -1 {
                return Err(io::Error::last_os_error());
            }
            // Let the write end survive exec, in the child only.
            if libc::fcntl(notify_fd, libc::F_SETFD, 0) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    // Our copy of the write end must go, or the pipe never reports the child's exit.
    drop(write_end);
    Ok(Spawned {
        child,
        ready: File::from(read_end),
    })
}

impl Spawned {
    /// The child's pid.
    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// Waits up to `timeout` for the service to report it is ready, or to exit.
    pub fn wait_ready(mut self, timeout: Duration) -> Result<StartUp> {
        let pid = self.pid();
        let mut fds = [PollFd::new(self.ready.as_fd(), PollFlags::POLLIN)];
        let ms = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
        let events = loop {
            match poll(&mut fds, ms) {
                Err(nix::errno::Errno::EINTR) => continue,
                other => break other.context("waiting for backup_service to start")?,
            }
        };
        if events == 0 {
            return Ok(StartUp::TimedOut(pid));
        }
        let mut said = [0u8; 4096];
        // One read: the service writes its word (or its error) at once. A read error is
        // the same news as end of file: it did not say "ready".
        let n = self.ready.read(&mut said).unwrap_or(0);
        if said[..n].starts_with(b"ready") {
            return Ok(StartUp::Ready(pid));
        }
        if let Some(why) = said[..n].strip_prefix(b"error: ") {
            // The rest, should it come in more than one piece, up to the service's exit.
            let mut why = why.to_vec();
            let _ = (&self.ready).take(64 * 1024).read_to_end(&mut why);
            let why = String::from_utf8_lossy(&why).trim_end().to_owned();
            let status = self.child.wait().ok();
            return Ok(StartUp::Failed(why, status));
        }
        // The pipe closed without a word: the child is exiting, so this wait is short.
        let status = self
            .child
            .wait()
            .context("waiting for backup_service to exit")?;
        Ok(StartUp::Exited(status))
    }
}

/// Formats an exit status for a person: "status 3" or "signal SIGKILL".
pub fn describe_exit(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("status {code}"),
        (None, Some(sig)) => Signal::try_from(sig)
            .map(|s| format!("signal {s}"))
            .unwrap_or_else(|_| format!("signal {sig}")),
        _ => status.to_string(),
    }
}
