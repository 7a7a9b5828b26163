//! What every integration test needs: a temporary home of its own, the real binaries run
//! in it, and ways to look at what a user would see (output, logs, archives, processes).
//!
//! Nothing here waits a fixed time: conditions are polled until a deadline, and a deadline
//! only turns a hang into a failure with a message.

// Each test binary uses its own part of these helpers.
#![allow(dead_code)]

pub mod clock;
pub mod offsite;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use chrono::{Local, NaiveDateTime, Timelike};
use nix::fcntl::{FcntlArg, fcntl};
use nix::libc;

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

/// The messages of a log file, each line checked to start with a real local time as
/// `[DD/MM/YYYY HH:MM] `. A missing file has none.
pub fn log_messages(path: &Path) -> Vec<String> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => panic!("reading {}: {e}", path.display()),
    };
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "{} ends in the middle of a line",
        path.display()
    );
    text.lines()
        .map(|line| {
            log_message(line)
                .unwrap_or_else(|| panic!("malformed line in {}: {line:?}", path.display()))
                .to_owned()
        })
        .collect()
}

/// The message after the `[DD/MM/YYYY HH:MM] ` timestamp of a log line, or `None` when
/// the line does not start with one.
pub fn log_message(line: &str) -> Option<&str> {
    const SHAPE: &[u8] = b"[dd/dd/dddd dd:dd] ";
    let bytes = line.as_bytes();
    if bytes.len() < SHAPE.len() {
        return None;
    }
    let shaped = bytes.iter().zip(SHAPE).all(|(&c, &s)| match s {
        b'd' => c.is_ascii_digit(),
        _ => c == s,
    });
    // The digits must also make a real date and time (no 32/13/2024 25:61).
    let real = shaped && NaiveDateTime::parse_from_str(&line[1..17], "%d/%m/%Y %H:%M").is_ok();
    real.then(|| &line[SHAPE.len()..])
}

/// Whether `messages` holds `expected`, either alone or followed by details in
/// parentheses (the service adds sizes and durations to the lines of the spec).
pub fn has_message(messages: &[String], expected: &str) -> bool {
    messages.iter().any(|m| is_message(m, expected))
}

/// How many of `messages` are `expected` (with or without details).
pub fn count_messages(messages: &[String], expected: &str) -> usize {
    messages.iter().filter(|m| is_message(m, expected)).count()
}

fn is_message(message: &str, expected: &str) -> bool {
    message
        .strip_prefix(expected)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(" ("))
}

/// Asserts that `messages` holds `expected` (see [`has_message`]).
pub fn assert_message(messages: &[String], expected: &str) {
    assert!(
        has_message(messages, expected),
        "no log line {expected:?} in {messages:#?}"
    );
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

/// The pid holding a POSIX write lock on `path` (`F_GETLK`), if any process does.
pub fn lock_holder(path: &Path) -> Option<i32> {
    let file = File::open(path).ok()?;
    // SAFETY: `flock` is a plain C struct of integers, for which all zeroes is valid.
    let mut query: libc::flock = unsafe { std::mem::zeroed() };
    query.l_type = libc::F_WRLCK as libc::c_short;
    query.l_whence = libc::SEEK_SET as libc::c_short;
    fcntl(&file, FcntlArg::F_GETLK(&mut query)).expect("querying a lock");
    (i32::from(query.l_type) != libc::F_UNLCK).then_some(query.l_pid)
}

/// Whether `pid` is a live process (a zombie is not).
pub fn is_running(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat_fields(&stat).first() != Some(&"Z"),
        Err(_) => false,
    }
}

/// Whether `pid` is stopped by a signal (SIGSTOP).
pub fn is_stopped(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat_fields(&stat).first() == Some(&"T"))
}

/// The session id of `pid`, from `/proc/PID/stat`.
pub fn session_of(pid: i32) -> i32 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // After the command name: state, ppid, pgrp, session.
    stat_fields(&stat)[3].parse().unwrap()
}

/// The fields of a `/proc/PID/stat` line after the command name, which may hold spaces.
fn stat_fields(stat: &str) -> Vec<&str> {
    let after_name = &stat[stat.rfind(')').expect("a stat line") + 1..];
    after_name.split_whitespace().collect()
}

/// The current minute as `HH:MM`, first waiting for the next minute when fewer than
/// `margin` seconds of this one are left, so that what the test does next fits in it.
pub fn current_minute(margin: Duration) -> String {
    let now = Local::now();
    let left = 60 - u64::from(now.second());
    if left < margin.as_secs() {
        thread::sleep(Duration::from_secs(left) + Duration::from_millis(100));
    }
    Local::now().format("%H:%M").to_string()
}

/// Whether the local time is still in minute `hh_mm`.
pub fn still_in(hh_mm: &str) -> bool {
    Local::now().format("%H:%M").to_string() == hh_mm
}

/// Runs a scenario that needs the service to find its schedules due: they are set for
/// the current minute, which must not have turned by the time each `start` returns.
/// The scenario gets the minute and returns `None` when it saw the minute turn too early
/// (or anything else that makes the run prove nothing); it is then run once more, from
/// scratch.
pub fn in_one_minute<T>(margin: Duration, mut scenario: impl FnMut(&str) -> Option<T>) -> T {
    for _ in 0..3 {
        if let Some(result) = scenario(&current_minute(margin)) {
            return result;
        }
    }
    panic!("three runs of the scenario could not go as planned (the minute turned too early)");
}

/// The entries of a tar archive: name to (kind, contents, link target).
pub fn archive_entries(path: &Path) -> BTreeMap<String, Entry> {
    let mut archive = tar::Archive::new(File::open(path).unwrap());
    let mut entries = BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        // GNU tar names folders with a trailing '/'; the kind says what an entry is.
        let full = entry.path().unwrap().to_string_lossy().into_owned();
        let name = full.trim_end_matches('/').to_owned();
        let kind = entry.header().entry_type();
        let link = entry
            .link_name()
            .unwrap()
            .map(|l| l.to_string_lossy().into_owned());
        let mut contents = Vec::new();
        entry.read_to_end(&mut contents).unwrap();
        let previous = entries.insert(
            name.clone(),
            Entry {
                kind,
                contents,
                link,
            },
        );
        assert!(previous.is_none(), "{name} twice in {}", path.display());
    }
    entries
}

/// One entry of an archive.
#[derive(Debug)]
pub struct Entry {
    pub kind: tar::EntryType,
    pub contents: Vec<u8>,
    pub link: Option<String>,
}

/// The permission bits of `path`.
pub fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
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

/// Asserts that two maps (trees, listings) are equal; on failure, shows only what differs:
/// each key missing on one side, and each key whose values differ, with both values.
pub fn assert_same_map<K: Ord + std::fmt::Debug, V: PartialEq + std::fmt::Debug>(
    actual: &BTreeMap<K, V>,
    expected: &BTreeMap<K, V>,
    what: &str,
) {
    if actual == expected {
        return;
    }
    let mut diff = Vec::new();
    for (key, want) in expected {
        match actual.get(key) {
            None => diff.push(format!("- {key:?}: {want:?}")),
            Some(got) if got != want => diff.push(format!(
                "~ {key:?}:\n    expected {want:?}\n    found    {got:?}"
            )),
            Some(_) => {}
        }
    }
    for (key, got) in actual {
        if !expected.contains_key(key) {
            diff.push(format!("+ {key:?}: {got:?}"));
        }
    }
    panic!(
        "{what}: {} difference(s) (- expected only, + found only, ~ both):\n{}",
        diff.len(),
        diff.join("\n")
    );
}

/// Asserts that two listings are equal, line for line; on failure, shows a diff.
pub fn assert_same_lines<S: AsRef<str>, T: AsRef<str>>(actual: &[S], expected: &[T], what: &str) {
    let actual: Vec<&str> = actual.iter().map(AsRef::as_ref).collect();
    let expected: Vec<&str> = expected.iter().map(AsRef::as_ref).collect();
    if actual == expected {
        return;
    }
    // A longest-common-subsequence diff: listings here are short.
    let (n, m) = (expected.len(), actual.len());
    let mut common = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            common[i][j] = if expected[i] == actual[j] {
                common[i + 1][j + 1] + 1
            } else {
                common[i + 1][j].max(common[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut diff) = (0, 0, Vec::new());
    while i < n || j < m {
        if i < n && j < m && expected[i] == actual[j] {
            diff.push(format!("  {}", expected[i]));
            (i, j) = (i + 1, j + 1);
        } else if j < m && (i == n || common[i][j + 1] >= common[i + 1][j]) {
            diff.push(format!("+ {}", actual[j]));
            j += 1;
        } else {
            diff.push(format!("- {}", expected[i]));
            i += 1;
        }
    }
    panic!("{what} differs (- expected, + found):\n{}", diff.join("\n"));
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

/// The user restores run as when the tests run as root, who ignores modes: `nobody`.
pub const UNPRIVILEGED: u32 = 65534;

/// How to run a program as a user other than root: nothing to add when the tests already
/// run as one, else `setpriv` or `runuser` in front of it; `None` when neither works here.
pub fn unprivileged_prefix() -> Option<Vec<String>> {
    if !nix::unistd::Uid::effective().is_root() {
        return Some(Vec::new());
    }
    let id = UNPRIVILEGED.to_string();
    let candidates = [
        vec![
            "setpriv".to_owned(),
            format!("--reuid={id}"),
            format!("--regid={id}"),
            "--clear-groups".to_owned(),
        ],
        vec![
            "runuser".to_owned(),
            "-u".to_owned(),
            "nobody".to_owned(),
            "--".to_owned(),
        ],
    ];
    candidates.into_iter().find(|prefix| {
        Command::new(&prefix[0])
            .args(&prefix[1..])
            .args(["sh", "-c", &format!("test \"$(id -u)\" = {id}")])
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// A folder of mode `mode` outside any home, where every folder above it is trusted (in
/// the build's temporary folder), with the guard that removes it.
pub fn outside_folder(mode: u32) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let folder = dir.path().join("outside");
    fs::create_dir(&folder).unwrap();
    fs::set_permissions(&folder, fs::Permissions::from_mode(mode)).unwrap();
    (dir, fs::canonicalize(folder).unwrap())
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

/// A new age identity `name` in `dir`, made by `age-keygen`: its file and its public key.
pub fn age_key(dir: &Path, name: &str) -> (PathBuf, String) {
    let identity = dir.join(name);
    let out = Command::new("age-keygen")
        .arg("-o")
        .arg(&identity)
        .output()
        .expect("running age-keygen");
    assert!(out.status.success(), "{out:?}");
    let text = fs::read_to_string(&identity).unwrap();
    let public = text
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap()
        .to_owned();
    (identity, public)
}

/// The member names of an archive, as GNU tar's `tar -tf` lists them.
pub fn tar_list(archive: &Path) -> Vec<String> {
    let out = Command::new("tar")
        .arg("-tf")
        .arg(archive)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The names in a folder, sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}
