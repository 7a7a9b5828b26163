//! A hook checked and run as one open file: no rename between the check and the start can
//! make another file run.
//!
//! The hook is opened by walking from `/` without following links ([`trust::open`]), every
//! folder on the way checked; the open file is checked, and that very file is executed
//! (`execveat` with `AT_EMPTY_PATH`). A `#!` script is handed to its interpreter by the
//! kernel as `/dev/fd/N`, so for a script that one descriptor stays open, read-only, on
//! the hook itself; every other descriptor above 2 is closed at the exec.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::FileExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use anyhow::{Context, Result, bail};
use nix::libc;

use crate::descriptors::CloseOnExec;
use crate::home::Home;
use crate::trust::{self, Want};

/// A hook that passed [`check`], held open.
#[derive(Debug)]
pub struct Checked {
    fd: OwnedFd,
    /// Its real path, links resolved.
    pub path: PathBuf,
    /// Whether it starts with `#!`.
    script: bool,
}

/// Like ssh's StrictModes: every folder from `/` down to the hook's real location (and
/// every folder holding a link on the way) is owned by this user or root and writable by
/// no one else, and so is the hook, a regular, executable file. Returns it open.
pub fn check(path: &Path) -> Result<Checked> {
    let opened = trust::open(path, Want::File)?;
    trust::check(&opened.path, &opened.stat)?;
    if opened.stat.st_mode & 0o100 == 0 {
        bail!("{} is not executable (chmod u+x)", opened.path.display());
    }
    let mut start = [0u8; 2];
    let file = fs::File::from(opened.fd);
    let read = file
        .read_at(&mut start, 0)
        .with_context(|| format!("reading {}", opened.path.display()))?;
    Ok(Checked {
        fd: file.into(),
        path: opened.path,
        script: read == 2 && start == *b"#!",
    })
}

/// The argument and environment vectors of an exec, built before the fork: nothing may
/// allocate between fork and exec.
struct ExecArgs {
    _strings: Vec<CString>,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
}

// SAFETY: the pointers point into `_strings`, owned alongside and never changed; the
// vectors are only read, in the forked child.
unsafe impl Send for ExecArgs {}
// SAFETY: as above: shared, they are only read.
unsafe impl Sync for ExecArgs {}

impl ExecArgs {
    fn new(path: &Path, env: &[(&'static str, String)]) -> Result<Self> {
        let c = |bytes: Vec<u8>| CString::new(bytes).context("a NUL byte in the environment");
        let argv0 = c(path.as_os_str().to_owned().into_vec())?;
        let mut vars = Vec::new();
        for (key, value) in std::env::vars_os() {
            if env.iter().any(|(k, _)| key == *k) {
                continue;
            }
            let mut var = key.into_vec();
            var.push(b'=');
            var.extend(value.into_vec());
            vars.push(c(var)?);
        }
        for (key, value) in env {
            vars.push(c(format!("{key}={value}").into_bytes())?);
        }
        let argv = vec![argv0.as_ptr(), std::ptr::null()];
        let mut envp: Vec<_> = vars.iter().map(|v| v.as_ptr()).collect();
        envp.push(std::ptr::null());
        let mut strings = vars;
        strings.push(argv0);
        Ok(Self {
            _strings: strings,
            argv,
            envp,
        })
    }

    /// Executes the open file `fd` with these vectors; returns only when that fails.
    /// Async-signal-safe: one system call.
    fn exec(&self, fd: libc::c_int) -> io::Error {
        // SAFETY: the vectors are NULL-terminated arrays of pointers to NUL-terminated
        // strings that live in `self`; the path is the empty C string AT_EMPTY_PATH asks.
        unsafe {
            libc::syscall(
                libc::SYS_execveat,
                fd,
                c"".as_ptr(),
                self.argv.as_ptr(),
                self.envp.as_ptr(),
                libc::AT_EMPTY_PATH,
            );
        }
        io::Error::last_os_error()
    }
}

/// Starts the checked hook in a process group of its own, in the home, with `env` added
/// and its output (stdout and stderr together) collected; it gets descriptors 0, 1 and 2
/// (and, a script, its own file) and nothing else.
pub fn spawn(
    home: &Home,
    hook: &Checked,
    env: &[(&'static str, String)],
) -> Result<(Child, mpsc::Receiver<Vec<u8>>)> {
    let (reader, writer) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .context("creating a pipe for the hook's output")?;
    let args = ExecArgs::new(&hook.path, env)?;
    let close = CloseOnExec::prepare();
    let (fd, script) = (hook.fd.as_raw_fd(), hook.script);
    let mut command = Command::new(&hook.path);
    command
        .current_dir(home.root())
        .stdin(Stdio::null())
        .stdout(
            writer
                .try_clone()
                .context("sharing the hook's output pipe")?,
        )
        .stderr(writer)
        .process_group(0);
    // SAFETY: between fork and exec only async-signal-safe calls are allowed: these are
    // system calls on numbers and on vectors built before the fork; nothing allocates.
    unsafe {
        command.pre_exec(move || {
            // The service blocks its termination signals to read them from a signalfd; a
            // blocked mask is inherited across exec, and a hook must be stoppable.
            let empty = nix::sys::signal::SigSet::empty();
            nix::sys::signal::pthread_sigmask(
                nix::sys::signal::SigmaskHow::SIG_SETMASK,
                Some(&empty),
                None,
            )
            .map_err(io::Error::from)?;
            close.apply();
            // The interpreter of a script reads it through /dev/fd/N: that one stays.
            if script && libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                return Err(io::Error::last_os_error());
            }
            Err(args.exec(fd))
        });
    }
    let child = command
        .spawn()
        .with_context(|| format!("starting {}", hook.path.display()))?;
    // The command keeps the write ends until dropped; the reader sees EOF only without them.
    drop(command);
    Ok((child, super::collect(fs::File::from(reader))))
}
