//! What every integration test needs: a temporary home of its own, the real binaries run
//! in it, and ways to look at what a user would see (output, logs, archives, processes).
//!
//! Nothing here waits a fixed time: conditions are polled until a deadline, and a deadline
//! only turns a hang into a failure with a message.

// Each test binary uses its own part of these helpers.
#![allow(dead_code)]

pub mod clock;
pub mod offsite;

mod archives;
mod compare;
mod logs;
mod minutes;
mod procs;
mod users;

// Each test binary uses some of them: the others would be unused imports there.
#[allow(unused_imports)]
pub use archives::*;
#[allow(unused_imports)]
pub use compare::*;
#[allow(unused_imports)]
pub use logs::*;
#[allow(unused_imports)]
pub use minutes::*;
#[allow(unused_imports)]
pub use procs::*;
#[allow(unused_imports)]
pub use users::*;

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How long a condition may take before the test gives up on it. Generous: a loaded
/// 2-core machine runs several tests, each with its own service, at once.
pub const DEADLINE: Duration = Duration::from_secs(30);

pub const MANAGER: &str = env!("CARGO_BIN_EXE_backup_manager");

/// The exit status of `run` and `backup_service --once` for a backup done with warnings.
pub const WARNINGS_EXIT: i32 = 3;

/// Asserts that a backup's exit status says whether it had `warnings`: 3 if it had, else 0.
/// A hook's trouble is said as a warning too, but leaves the backup's own status alone.
pub fn assert_warned_status(code: Option<i32>, warnings: &[String]) {
    let of_the_backup = warnings.iter().filter(|w| !w.starts_with("hook ")).count();
    let expected = if of_the_backup == 0 { 0 } else { WARNINGS_EXIT };
    assert_eq!(code, Some(expected), "warnings: {warnings:#?}");
}
pub const SERVICE: &str = env!("CARGO_BIN_EXE_backup_service");

/// A home of its own in a temporary folder. Dropping it force-stops a service still
/// running there, so that no process outlives a failed test, then removes the folder.
pub struct TestHome {
    root: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestHome {
    pub fn new() -> Self {
        Self::in_folder(&std::env::temp_dir())
    }

    /// A home under the build's `target/tmp` rather than in `/tmp`, for the tests that
    /// run hooks: a folder others may write (`/tmp`, sticky or not) makes every home
    /// under it untrusted, and its hooks are refused.
    pub fn trusted() -> Self {
        Self::in_folder(Path::new(env!("CARGO_TARGET_TMPDIR")))
    }

    fn in_folder(base: &Path) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("backup-test.")
            .tempdir_in(base)
            .expect("creating a temporary home");
        // Canonical, as the service sees its own working directory.
        let root = fs::canonicalize(dir.path()).unwrap();
        Self { root, _dir: dir }
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Runs `backup_manager --home HOME ARGS...` and returns what it did.
    pub fn manager(&self, args: &[&str]) -> Output {
        let mut all = vec!["--home", self.root.to_str().unwrap()];
        all.extend_from_slice(args);
        // In the home, as the brief's walkthrough runs it: a relative PATH given to
        // `create` elsewhere is taken from the current folder.
        run(MANAGER, &all, Some(&self.root))
    }

    /// Like [`TestHome::manager`], but started without waiting for it.
    pub fn spawn_manager(&self, args: &[&str]) -> Child {
        Command::new(MANAGER)
            .arg("--home")
            .arg(&self.root)
            .args(args)
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting backup_manager")
    }

    /// Writes `contents` at `rel` in the home, creating folders.
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) {
        let path = self.root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, contents).unwrap();
    }

    /// The schedule file's bytes, or `None` when it does not exist.
    pub fn schedule_bytes(&self) -> Option<Vec<u8>> {
        fs::read(self.root.join("backup_schedules.txt")).ok()
    }

    pub fn manager_log(&self) -> Vec<String> {
        log_messages(&self.root.join("logs/backup_manager.log"))
    }

    pub fn service_log(&self) -> Vec<String> {
        log_messages(&self.root.join("logs/backup_service.log"))
    }

    pub fn archive_path(&self, file_name: &str) -> PathBuf {
        self.root.join("backups").join(file_name)
    }

    /// The pid of the process holding the lock on the pid file, asked of the kernel:
    /// that lock is what makes a process this home's running service.
    pub fn service_pid(&self) -> Option<i32> {
        lock_holder(&self.root.join(".backup_service.pid"))
    }

    /// Hidden temporary archives in `backups/` (`.NAME.tar.PID.partial`).
    pub fn partial_files(&self) -> Vec<String> {
        let Ok(entries) = fs::read_dir(self.root.join("backups")) else {
            return Vec::new();
        };
        let mut found: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|name| name.starts_with('.') && name.ends_with(".partial"))
            .collect();
        found.sort();
        found
    }

    /// Every running `backup_service` of this build whose working directory is this home.
    pub fn service_processes(&self) -> Vec<i32> {
        let ours = fs::canonicalize(SERVICE).unwrap();
        let mut pids: Vec<i32> = fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                let proc_dir = PathBuf::from(format!("/proc/{pid}"));
                is_running(*pid)
                    && fs::read_link(proc_dir.join("exe")).is_ok_and(|exe| exe == ours)
                    && fs::read_link(proc_dir.join("cwd")).is_ok_and(|cwd| cwd == self.root)
            })
            .collect();
        pids.sort();
        pids
    }

    /// Checks that a second service (`out`) refused to run beside the service `pid`,
    /// and left it alone: still holding the lock, and the only one of this home.
    pub fn assert_second_service_refused(&self, out: &Output, pid: i32) {
        assert_eq!(out.code(), Some(1), "{out:#?}");
        assert!(out.stderr.contains("already running"), "{out:#?}");
        assert_eq!(self.service_pid(), Some(pid));
        assert_eq!(self.service_processes(), [pid]);
    }

    /// Runs `start` and checks that it worked, returning the service's pid.
    pub fn start(&self) -> i32 {
        self.manager(&["start"]).success();
        self.service_pid()
            .expect("start succeeded, yet no process holds the pid lock")
    }

    /// Runs `stop` and checks that it worked and that the service is gone.
    pub fn stop(&self) {
        let pid = self.service_pid();
        self.manager(&["stop"]).success();
        assert_eq!(
            self.service_pid(),
            None,
            "stop returned, yet the lock is held"
        );
        if let Some(pid) = pid {
            assert!(!is_running(pid), "stop returned, yet pid {pid} runs");
        }
    }
}

impl Default for TestHome {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestHome {
    fn drop(&mut self) {
        if self.service_pid().is_some() {
            let _ = Command::new(MANAGER)
                .arg("--home")
                .arg(&self.root)
                .args(["stop", "--force"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        // A service that lost its lock (the kind of bug these tests look for) cannot be
        // stopped by the manager; it is this build's service in this test's home, so it
        // is ours to kill.
        for pid in self.service_processes() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// A child process the test started itself, killed when dropped if still there.
pub struct ChildGuard(pub Child);

impl ChildGuard {
    pub fn pid(&self) -> i32 {
        self.0.id() as i32
    }

    /// Whether it is still running (not exited, not reaped).
    pub fn is_running(&mut self) -> bool {
        self.0.try_wait().unwrap().is_none()
    }

    /// Waits for it to exit, failing the test after [`DEADLINE`].
    pub fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "pid {} did not exit", self.pid());
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// What a finished run of a binary did.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Asserts exit status 0, showing stderr otherwise.
    pub fn success(&self) -> &Self {
        assert!(self.status.success(), "expected success, got {self:#?}");
        self
    }

    /// Asserts that a backup was done: exit 0, or 3 when done with warnings.
    pub fn done(&self) -> &Self {
        assert!(
            matches!(self.code(), Some(0 | WARNINGS_EXIT)),
            "expected a backup done, got {self:#?}"
        );
        self
    }

    /// Asserts the exit code and that stderr is exactly one line, and returns that line.
    pub fn failure(&self, code: i32) -> &str {
        assert_eq!(self.code(), Some(code), "{self:#?}");
        let err = self.stderr.strip_suffix('\n').unwrap_or(&self.stderr);
        assert!(
            !err.is_empty() && !err.contains('\n'),
            "expected one line on stderr: {self:#?}"
        );
        assert_eq!(self.stdout, "", "an error printed on stdout: {self:#?}");
        err
    }

    pub fn stdout_lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

/// Runs `program` with `args` (in `cwd`, when given) and collects its output.
///
/// Its stdout and stderr must close when it exits: a process it left behind still holding
/// them (a service that inherited them) would hang `$(backup_manager start)` in a shell,
/// and fails the test here instead.
pub fn run(program: &str, args: &[&str], cwd: Option<&Path>) -> Output {
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(cwd) = cwd {
        command.current_dir(cwd);
    }
    let mut child = command.spawn().expect("starting the program");
    let stdout = read_in_background(child.stdout.take().unwrap());
    let stderr = read_in_background(child.stderr.take().unwrap());
    let mut guard = ChildGuard(child);
    let status = guard.wait();
    let collect = |rx: mpsc::Receiver<Vec<u8>>, which: &str| {
        let bytes = rx.recv_timeout(DEADLINE).unwrap_or_else(|_| {
            panic!("{program} {args:?} exited but its {which} is still open in another process")
        });
        String::from_utf8(bytes).unwrap()
    };
    Output {
        status,
        stdout: collect(stdout, "stdout"),
        stderr: collect(stderr, "stderr"),
    }
}

/// Collects the output of a child started with [`TestHome::spawn_manager`].
pub fn finish(child: Child) -> Output {
    let output = child.wait_with_output().unwrap();
    Output {
        status: output.status,
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

fn read_in_background(mut pipe: impl Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        let _ = tx.send(bytes);
    });
    rx
}

/// Polls `condition` until it holds, failing the test with `what` after [`DEADLINE`].
pub fn wait_for(what: &str, condition: impl FnMut() -> bool) {
    wait_within(DEADLINE, what, condition);
}

/// Polls `condition` until it holds, failing the test with `what` after `limit`: for
/// what must happen before something else would (e.g. before the service's next cycle).
pub fn wait_within(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what} ({} s)",
            limit.as_secs()
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// `backup_manager run 0` in `home`, paused at `step` of its rotation by the debug
/// builds' `BACKUP_TEST_PAUSE` hook, so that the test can kill it there: the pause
/// creates `marker` and waits until it is removed.
pub fn run_paused(home: &TestHome, step: &str, marker: &Path, stderr: File) -> ChildGuard {
    let child = Command::new(MANAGER)
        .arg("--home")
        .arg(home.path())
        .args(["run", "0"])
        .env("BACKUP_TEST_PAUSE", format!("{step}:{}", marker.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut child = ChildGuard(child);
    wait_for(&format!("the run to reach {step}"), || {
        assert!(child.is_running(), "run 0 ended before {step}");
        marker.exists()
    });
    child
}

/// The warnings that `backup_manager run` printed on `stderr` about a backup that must have
/// succeeded, checking that its last line says it backed up `path` into
/// `backups/{archive}` and that the manager's log `log` keeps each warning.
pub fn backed_up(stderr: &str, log: &str, path: &str, archive: &str) -> Vec<String> {
    let mut said: Vec<String> = stderr
        .lines()
        .map(|l| l.strip_prefix("backup_manager: ").unwrap_or(l).to_owned())
        // Said while it waits for another backup of the same NAME.
        .filter(|l| !l.starts_with("waiting for another backup of "))
        .collect();
    let last = said.pop().unwrap_or_default();
    let warnings: Vec<String> = said
        .iter()
        .map(|l| {
            l.strip_prefix("warning: ")
                .unwrap_or_else(|| panic!("not a warning: {l}"))
                .to_owned()
        })
        .collect();
    let done = format!("backed up {path} into backups/{archive} (");
    assert!(last.starts_with(&done), "{stderr}");
    // Each is in the log too: a file left out as a warning, a hook's trouble as an error.
    for warning in &warnings {
        let logged = |level: &str| log.contains(&format!("] {level}: {warning}\n"));
        assert!(logged("Warning") || logged("Error"), "{log}");
    }
    warnings
}

impl TestHome {
    /// Adds `line` with `create ARGS... LINE`, then backs it up at once with `run`; both
    /// must succeed. Returns the schedule's index and the backup's warnings.
    pub fn back_up(&self, args: &[&str], line: &str) -> (usize, Vec<String>) {
        let mut create = vec!["create"];
        create.extend_from_slice(args);
        create.push(line);
        self.manager(&create).success();
        let lines = String::from_utf8(self.schedule_bytes().unwrap()).unwrap();
        let index = lines.lines().count() - 1;
        (index, self.run_ok(index))
    }

    /// Backs up schedule `index` now with `run`, which must succeed; returns its warnings.
    pub fn run_ok(&self, index: usize) -> Vec<String> {
        let out = self.manager(&["run", &index.to_string()]);
        out.done();
        let lines = String::from_utf8(self.schedule_bytes().unwrap()).unwrap();
        let schedule: backup::schedule::Schedule =
            lines.lines().nth(index).unwrap().parse().unwrap();
        let log = fs::read_to_string(self.path().join("logs/backup_manager.log")).unwrap();
        let warnings = backed_up(
            &out.stderr,
            &log,
            &schedule.path,
            &schedule.archive_file_name(),
        );
        assert_warned_status(out.code(), &warnings);
        warnings
    }
}

impl TestHome {
    /// Like [`TestHome::manager`], with `env` added to its environment and
    /// `BACKUP_HOME` removed.
    pub fn manager_env(&self, env: &[(&str, &str)], args: &[&str]) -> Output {
        let child = Command::new(MANAGER)
            .arg("--home")
            .arg(&self.root)
            .args(args)
            .current_dir(&self.root)
            .envs(env.iter().copied())
            .env_remove("BACKUP_HOME")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting backup_manager");
        finish(child)
    }
}
