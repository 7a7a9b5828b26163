//! `backup_service` and its control by `backup_manager`: starting and stopping it safely,
//! the archives it writes, and what it does when things go wrong.

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    ChildGuard, SERVICE, TestHome, archive_entries, assert_message, count_messages, in_one_minute,
    is_running, is_stopped, mode, run, session_of, still_in, wait_for,
};
use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, getsid};

#[test]
fn two_homes_run_side_by_side_and_each_stop_stops_its_own() {
    let a = TestHome::new();
    let b = TestHome::new();
    let pid_a = a.start();
    let pid_b = b.start();
    assert_ne!(pid_a, pid_b);
    assert_eq!(a.service_processes(), [pid_a]);
    assert_eq!(b.service_processes(), [pid_b]);

    a.stop();
    assert!(!is_running(pid_a));
    assert!(
        is_running(pid_b),
        "stopping home a stopped home b's service"
    );
    assert_eq!(b.service_pid(), Some(pid_b));
    assert_message(&a.manager_log(), "backup_service stopped");
    assert!(
        !common::has_message(&b.manager_log(), "backup_service stopped"),
        "{:#?}",
        b.manager_log()
    );

    // A second start in a is a new service; b's is untouched.
    let pid_a2 = a.start();
    assert_ne!(pid_a2, pid_b);
    b.manager(&["stop", "--force"]).success();
    assert!(is_running(pid_a2));
    assert_eq!(b.service_pid(), None);
    a.stop();
}

/// A process the test started and waited for: its pid is free (or reused by chance).
fn dead_pid() -> i32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id() as i32;
    child.wait().unwrap();
    pid
}

fn sleeper(program: &Path, cwd: &Path) -> ChildGuard {
    let spawn = || {
        Command::new(program)
            .arg("300")
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
    };
    // A program just copied can be "busy" for a moment: another test thread's fork may
    // still hold the descriptor the copy was written through (ETXTBSY).
    for _ in 0..50 {
        match spawn() {
            Err(e) if e.raw_os_error() == Some(nix::libc::ETXTBSY) => {
                std::thread::sleep(Duration::from_millis(20));
            }
            child => return ChildGuard(child.unwrap()),
        }
    }
    ChildGuard(spawn().unwrap())
}

fn write_pid_file(home: &TestHome, pid: i32) {
    home.write(".backup_service.pid", format!("{pid}\n"));
}

#[test]
fn a_stale_pid_file_is_recognised_and_replaced() {
    let home = TestHome::new();
    let mut unrelated = sleeper(Path::new("sleep"), home.path());
    for stale in [dead_pid(), unrelated.pid()] {
        write_pid_file(&home, stale);
        let err = home.manager(&["stop"]).failure(1).to_owned();
        assert!(err.contains("not running"), "{err}");
        let err = home.manager(&["stop", "--force"]).failure(1).to_owned();
        assert!(err.contains("not running"), "{err}");
        assert!(
            unrelated.is_running(),
            "stop signalled an unrelated process"
        );

        let pid = home.start();
        assert_ne!(pid, stale);
        assert_eq!(
            fs::read_to_string(home.path().join(".backup_service.pid")).unwrap(),
            format!("{pid}\n")
        );
        home.stop();
        assert!(
            unrelated.is_running(),
            "stop signalled an unrelated process"
        );
    }
}

/// Another program called `backup_service` (here a copy of `sleep`), in the home or
/// elsewhere, with its pid in the pid file: it is not this home's service.
#[test]
fn a_look_alike_named_backup_service_survives_stop() {
    let home = TestHome::new();
    let elsewhere = TestHome::new();
    let look_alike = elsewhere.path().join("backup_service");
    fs::copy("/bin/sleep", &look_alike).unwrap();
    let mut outside = sleeper(&look_alike, elsewhere.path());
    let mut inside = sleeper(&look_alike, home.path());
    for pid in [outside.pid(), inside.pid()] {
        write_pid_file(&home, pid);
        let err = home.manager(&["stop", "--force"]).failure(1).to_owned();
        assert!(err.contains("not running"), "{err}");
        let err = home.manager(&["stop"]).failure(1).to_owned();
        assert!(err.contains("not running"), "{err}");
        assert!(outside.is_running() && inside.is_running());
    }

    // The real service starts over the stale file, and stopping it spares them too.
    let pid = home.start();
    home.stop();
    assert!(!is_running(pid));
    assert!(outside.is_running() && inside.is_running());
}

#[test]
fn concurrent_starts_leave_exactly_one_service() {
    let home = TestHome::new();
    let starts: Vec<_> = (0..5).map(|_| home.spawn_manager(&["start"])).collect();
    let outputs: Vec<_> = starts.into_iter().map(common::finish).collect();
    let (won, lost): (Vec<_>, Vec<_>) = outputs.iter().partition(|o| o.status.success());
    assert_eq!(won.len(), 1, "{outputs:#?}");
    for out in lost {
        assert!(out.failure(1).contains("already running"), "{out:#?}");
    }
    let pid = home.service_pid().expect("a service runs");
    assert_eq!(home.service_processes(), [pid]);
    assert_eq!(
        count_messages(&home.manager_log(), "backup_service started"),
        1
    );
    home.stop();
    assert_eq!(home.service_processes(), Vec::<i32>::new());
}

/// What `start` leaves: a service in a session of its own, holding nothing of ours.
#[test]
fn start_detaches_the_service_and_returns() {
    let home = TestHome::new();
    // `run` fails the test if the service kept the manager's stdout or stderr open,
    // which would hang `out=$(backup_manager start)`.
    let out = run(
        common::MANAGER,
        &["--home", home.path().to_str().unwrap(), "start"],
        None,
    );
    out.success();
    let pid = home.service_pid().unwrap();
    // Only the one line that says which home it started for.
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        format!(
            "backup_manager: backup_service started (pid {pid}, home {})\n",
            home.path().display()
        )
    );
    let ours = getsid(None).unwrap().as_raw();
    assert_ne!(
        session_of(pid),
        ours,
        "the service is in the test's session"
    );
    assert_eq!(
        session_of(pid),
        pid,
        "the service leads a session of its own"
    );
    for fd in 0..3 {
        let target = fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap();
        assert_eq!(target, Path::new("/dev/null"), "fd {fd}");
    }
    assert_message(
        &home.service_log(),
        &format!(
            "backup_service started (pid {pid}, home {})",
            home.path().display()
        ),
    );
    home.stop();
}

fn service_exits_0_on(signal: Signal) {
    let home = TestHome::new();
    let mut service = ChildGuard(
        Command::new(SERVICE)
            .arg("--home")
            .arg(home.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = service.pid();
    // Logged once the signals are its to handle.
    wait_for("the service to log its start", || {
        common::has_message(
            &home.service_log(),
            &format!(
                "backup_service started (pid {pid}, home {})",
                home.path().display()
            ),
        )
    });
    kill(Pid::from_raw(pid), signal).unwrap();
    let status = service.wait();
    assert_eq!(status.code(), Some(0), "{status:?} after {signal}");
    assert_message(
        &home.service_log(),
        &format!("backup_service stopped (pid {pid}, {signal})"),
    );
    assert_eq!(home.service_pid(), None);
}

#[test]
fn the_service_exits_0_on_sigterm() {
    service_exits_0_on(Signal::SIGTERM);
}

#[test]
fn the_service_exits_0_on_sigint() {
    service_exits_0_on(Signal::SIGINT);
}

/// Margin before the minute turns for the scenarios that start the service once.
const MARGIN: Duration = Duration::from_secs(15);

/// Creates the schedules, starts the service and stops it once it has backed them up.
/// `None` when the minute turned before the service looked.
fn back_up_now(home: &TestHome, schedules: &[String], now: &str) -> Option<()> {
    for schedule in schedules {
        home.manager(&["create", schedule]).success();
    }
    home.start();
    if !still_in(now) {
        return None;
    }
    // stop lets the due backups finish.
    home.stop();
    Some(())
}

/// Deletes every schedule and creates `schedules` again, which forgets what was served:
/// a running service is told, and runs those due in the current minute at once.
fn renew(home: &TestHome, schedules: &[String]) {
    for _ in schedules {
        home.manager(&["delete", "0"]).success();
    }
    for schedule in schedules {
        home.manager(&["create", schedule]).success();
    }
}

/// A schedule of `.` backs up the home but not `backups/` (nor its own archive), and the
/// service, whose pid file is in the home, is still there to be stopped afterwards.
#[test]
fn a_schedule_of_the_home_leaves_backups_out() {
    let home = in_one_minute(MARGIN, |now| {
        let home = TestHome::new();
        home.write("a.txt", "a\n");
        home.write("sub/b.txt", "b\n");
        home.write("backups/old.tar", "an older archive\n");
        home.manager(&["create", &format!(".;{now};home")])
            .success();
        let pid = home.start();
        if !still_in(now) {
            return None;
        }
        wait_for("the backup of .", || {
            common::has_message(&home.service_log(), "Backup done for . in backups/home.tar")
        });
        // Archiving the home reads the pid file; the service must still hold its lock.
        assert_eq!(home.service_pid(), Some(pid), "{:#?}", home.service_log());
        let err = home.manager(&["start"]).failure(1).to_owned();
        assert!(err.contains("already running"), "{err}");
        home.stop();
        Some(home)
    });
    let entries = archive_entries(&home.archive_path("home.tar"));
    let names: Vec<&str> = entries.keys().map(String::as_str).collect();
    for name in ["a.txt", "sub", "sub/b.txt", "backup_schedules.txt", "logs"] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    // Nor the pid file: reading it would have cost the service its lock.
    assert!(!names.contains(&".backup_service.pid"), "{names:?}");
    assert!(
        !names.iter().any(|n| n.starts_with("backups")),
        "backups/ archived: {names:?}"
    );
    assert_eq!(entries["sub/b.txt"].contents, b"b\n");
    assert_eq!(
        home.manager(&["backups"]).stdout,
        "home.tar\nold.tar\n",
        "the older archive was touched"
    );
}

/// Links are stored as links: what they point to outside the tree stays out.
#[test]
fn a_link_out_of_the_tree_is_stored_as_a_link() {
    let outside = TestHome::new();
    let secret = format!("outside secret {}", std::process::id());
    outside.write("secret.txt", &secret);
    let target_file = outside.path().join("secret.txt");
    let home = in_one_minute(MARGIN, |now| {
        let home = TestHome::new();
        home.write("test/file.txt", "inside\n");
        symlink(&target_file, home.path().join("test/link")).unwrap();
        symlink(outside.path(), home.path().join("test/dirlink")).unwrap();
        back_up_now(&home, &[format!("test;{now};t")], now)?;
        Some(home)
    });
    let archive = home.archive_path("t.tar");
    assert_eq!(mode(&archive), 0o600);
    let entries = archive_entries(&archive);
    let link = &entries["test/link"];
    assert_eq!(link.kind, tar::EntryType::Symlink);
    assert_eq!(link.link.as_deref(), target_file.to_str());
    let dirlink = &entries["test/dirlink"];
    assert_eq!(dirlink.kind, tar::EntryType::Symlink);
    assert_eq!(dirlink.link.as_deref(), outside.path().to_str());
    assert!(
        !entries.keys().any(|n| n.starts_with("test/dirlink/")),
        "{entries:#?}"
    );
    assert_eq!(entries["test/file.txt"].contents, b"inside\n");
    let bytes = fs::read(&archive).unwrap();
    assert!(
        !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "the outside file's content is in the archive"
    );
}

/// A source that disappeared: the failure is logged with the path and the reason, the
/// previous archive stays, and the service goes on with the others.
#[test]
fn a_missing_source_is_logged_and_the_service_goes_on() {
    in_one_minute(MARGIN, |now| {
        let home = TestHome::new();
        home.write("docs/a.txt", "first\n");
        home.write("other/b.txt", "other\n");
        let schedules = [format!("docs;{now};docs"), format!("other;{now};other")];
        back_up_now(&home, &schedules, now)?;
        let previous = fs::read(home.archive_path("docs.tar")).unwrap();

        fs::remove_dir_all(home.path().join("docs")).unwrap();
        let pid = home.start();
        // Their occurrence was served: created anew, they are owed again in this minute.
        renew(&home, &schedules);
        if !still_in(now) {
            return None;
        }
        wait_for("the second backup of other", || {
            count_messages(
                &home.service_log(),
                "Backup done for other in backups/other.tar",
            ) == 2
        });
        let log = home.service_log();
        let docs = home.path().join("docs");
        let error = log
            .iter()
            .find(|m| m.starts_with("Error: ") && m.contains(docs.to_str().unwrap()))
            .unwrap_or_else(|| panic!("no error naming {}: {log:#?}", docs.display()));
        assert!(error.contains("No such file or directory"), "{error}");
        assert!(error.contains("docs.tar"), "{error}");

        assert!(is_running(pid), "the service exited after a failed backup");
        assert_eq!(home.service_pid(), Some(pid));
        assert_eq!(fs::read(home.archive_path("docs.tar")).unwrap(), previous);
        assert_eq!(home.manager(&["backups"]).stdout, "docs.tar\nother.tar\n");
        home.stop();
        Some(())
    });
}

/// How a test ends a service in the middle of a large backup.
#[derive(Debug, Clone, Copy, PartialEq)]
enum End {
    /// `backup_manager stop --force`.
    Force,
    /// `kill -9` on the service.
    Kill9,
    /// `backup_manager stop`, which lets the backup finish.
    Stop,
}

/// Large enough that a backup is still being written when the test sees its temporary
/// file appear: the archive is fsynced before it is renamed into place.
const BIG_FILES: usize = 100;
const BIG_FILE_SIZE: usize = 2 << 20;

/// The temporary file of the backup the service `pid` is writing, once it appears;
/// `None` when the backup ended too quickly to be seen in progress.
fn backup_in_progress(home: &TestHome, pid: i32, done_line: &str) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(
            Instant::now() < deadline,
            "no backup in progress after 30 s: {:#?}",
            home.service_log()
        );
        // The archive's, not its index's.
        if let Some(name) = home
            .partial_files()
            .into_iter()
            .find(|name| !name.contains(".idx."))
        {
            return Some(name);
        }
        assert!(
            is_running(pid),
            "the service exited: {:#?}",
            home.service_log()
        );
        if count_messages(&home.service_log(), done_line) == 2 {
            // Too quick to be seen in progress: this run proves nothing; run again.
            return None;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// After a backup ended by `end` (not `Stop`): the last good archive is there, byte for
/// byte, and the temporary file `partial` goes, at once or at the next start.
fn assert_interrupted_left_the_good_archive(
    home: &TestHome,
    end: End,
    good: &[u8],
    partial: &str,
    done: usize,
) {
    let archive = home.archive_path("big.tar");
    // Interrupted: the last good archive is there, whole, byte for byte.
    assert_eq!(done, 1, "{:#?}", home.service_log());
    assert!(fs::read(&archive).unwrap() == good, "big.tar changed");
    if end == End::Force {
        // stop --force clears what the killed backup left.
        assert_eq!(home.partial_files(), Vec::<String>::new());
        return;
    }
    // After kill -9 the hidden temporary files (the archive's and its index's) stay
    // (unlisted) until the next start.
    let index_partial = format!(".{}", partial.replacen(".tar.", ".tar.idx.", 1));
    assert_eq!(
        home.partial_files(),
        &[index_partial.clone(), partial.to_owned()]
    );
    // Without its schedule, so that the next service does not start another backup.
    home.manager(&["delete", "0"]).success();
    home.start();
    assert_eq!(home.partial_files(), Vec::<String>::new());
    for left in [partial, &index_partial] {
        assert_message(
            &home.service_log(),
            &format!(
                "Removed {}, left by an interrupted backup",
                home.path().join("backups").join(left).display()
            ),
        );
    }
    home.stop();
    assert!(fs::read(&archive).unwrap() == good, "big.tar changed");
}

/// Backs up a small tree, then makes it large, starts a new service and ends it as `end`
/// says while the second backup is written; checks what is left.
fn end_during_a_large_backup(end: End) {
    in_one_minute(Duration::from_secs(25), |now| {
        let home = TestHome::new();
        home.write("big/small.txt", "the first version\n");
        // Made aside and moved in at once, so that the first backup stays small.
        let chunk: Vec<u8> = (0..BIG_FILE_SIZE).map(|i| (i % 251) as u8).collect();
        for i in 0..BIG_FILES {
            home.write(&format!("staging/data/{i:03}.bin"), &chunk);
        }
        back_up_now(&home, &[format!("big;{now};big")], now)?;
        let good = fs::read(home.archive_path("big.tar")).unwrap();
        assert!(archive_entries(&home.archive_path("big.tar")).contains_key("big/small.txt"));

        fs::rename(
            home.path().join("staging/data"),
            home.path().join("big/data"),
        )
        .unwrap();
        let pid = home.start();
        // Its occurrence was served: created anew, it is owed again in this minute.
        renew(&home, &[format!("big;{now};big")]);
        if !still_in(now) {
            return None;
        }
        let done_line = "Backup done for big in backups/big.tar";
        let partial = backup_in_progress(&home, pid, done_line)?;
        if end != End::Stop {
            // Frozen, so that the kill below lands in the middle of the backup however
            // the threads of this machine are scheduled. Still there once frozen, the
            // temporary file shows that the backup was not finished.
            kill(Pid::from_raw(pid), Signal::SIGSTOP).unwrap();
            wait_for("the service to be stopped", || is_stopped(pid));
            if !home.partial_files().contains(&partial) {
                kill(Pid::from_raw(pid), Signal::SIGCONT).unwrap();
                return None;
            }
        }
        match end {
            End::Force => {
                home.manager(&["stop", "--force"]).success();
            }
            End::Kill9 => {
                kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
                wait_for("the killed service to be gone", || {
                    !is_running(pid) && home.service_pid().is_none()
                });
            }
            End::Stop => home.stop(),
        }
        assert!(!is_running(pid));
        let done = count_messages(&home.service_log(), done_line);
        let backups = home.manager(&["backups"]);
        assert_eq!(backups.stdout, "big.tar\n", "{backups:#?}");
        let archive = home.archive_path("big.tar");
        assert_eq!(mode(&archive), 0o600);

        if end == End::Stop {
            // The backup that was due when the signal came was completed.
            assert_eq!(done, 2, "{:#?}", home.service_log());
            let entries = archive_entries(&archive);
            assert_eq!(entries.len(), 3 + BIG_FILES, "{:?}", entries.keys());
            assert_eq!(entries["big/data/042.bin"].contents, chunk);
            assert_eq!(home.partial_files(), Vec::<String>::new());
            return Some(());
        }

        assert_interrupted_left_the_good_archive(&home, end, &good, &partial, done);
        Some(())
    });
}

#[test]
fn stop_force_during_a_large_backup_keeps_the_last_good_archive() {
    end_during_a_large_backup(End::Force);
}

#[test]
fn kill_9_during_a_large_backup_keeps_the_last_good_archive() {
    end_during_a_large_backup(End::Kill9);
}

#[test]
fn stop_during_a_large_backup_lets_it_finish() {
    end_during_a_large_backup(End::Stop);
}

/// A single file, and an absolute path: entries are named as the path was written, less
/// a leading `/`, as tar names them.
#[test]
fn a_single_file_and_an_absolute_path_are_archived_as_written() {
    in_one_minute(MARGIN, |now| {
        let home = TestHome::new();
        home.write("notes.txt", "a note\n");
        home.write("abs/deep/file.txt", "deep\n");
        let absolute = home.path().join("abs");
        let schedules = [
            format!("notes.txt;{now};notes"),
            format!("{};{now};abs", absolute.display()),
        ];
        back_up_now(&home, &schedules, now)?;

        let notes = archive_entries(&home.archive_path("notes.tar"));
        assert_eq!(notes.keys().collect::<Vec<_>>(), ["notes.txt"]);
        assert_eq!(notes["notes.txt"].contents, b"a note\n");

        let stripped = absolute.strip_prefix("/").unwrap().display().to_string();
        let abs = archive_entries(&home.archive_path("abs.tar"));
        assert_eq!(
            abs.keys().map(String::as_str).collect::<Vec<_>>(),
            [
                stripped.clone(),
                format!("{stripped}/deep"),
                format!("{stripped}/deep/file.txt"),
            ]
        );
        assert_message(
            &home.service_log(),
            &format!("Backup done for {} in backups/abs.tar", absolute.display()),
        );
        Some(())
    });
}

/// Nothing the schedule file holds stops the service: bad lines are reported and skipped,
/// and an unreadable file is reported while the service waits for a better one.
#[test]
fn a_bad_schedule_file_does_not_stop_the_service() {
    in_one_minute(MARGIN, |now| {
        let home = TestHome::new();
        home.write("test/a.txt", "a\n");
        home.write(
            "backup_schedules.txt",
            format!("junk line\ntest;{now};t\na;25:00;x\n"),
        );
        home.start();
        if !still_in(now) {
            return None;
        }
        home.stop();
        let log = home.service_log();
        assert_message(
            &log,
            "Error: schedule 0 skipped: malformed schedule: junk line",
        );
        assert_message(
            &log,
            "Error: schedule 2 skipped: malformed schedule: a;25:00;x",
        );
        assert_message(&log, "Backup done for test in backups/t.tar");
        Some(())
    });

    let home = TestHome::new();
    home.write("backup_schedules.txt", b"test;01:00;t\n\xff\n");
    let pid = home.start();
    // Only the line that is not UTF-8 is skipped; the service goes on with the others.
    assert_message(
        &home.service_log(),
        "Error: schedule 1 skipped: the line is not valid UTF-8",
    );
    assert!(is_running(pid));
    home.stop();
}

/// The service started by hand while one runs refuses to run, and leaves the first alone.
#[test]
fn a_second_service_of_a_home_refuses_to_run() {
    let home = TestHome::new();
    let pid = home.start();
    let out = run(SERVICE, &["--home", home.path().to_str().unwrap()], None);
    home.assert_second_service_refused(&out, pid);
    home.stop();
}

/// A lock on the pid file whose owner the kernel does not name (an open file description
/// lock) is nobody's to signal: every command refuses to guess, and none hangs.
#[test]
fn an_anonymous_lock_on_the_pid_file_is_refused_plainly() {
    let home = TestHome::new();
    let pid_file = home.path().join(".backup_service.pid");
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&pid_file)
        .unwrap();
    // SAFETY: flock is a plain C struct of integers, for which all zeroes is valid.
    let mut lock: nix::libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = nix::libc::F_WRLCK as _;
    lock.l_whence = nix::libc::SEEK_SET as _;
    nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_OFD_SETLK(&lock)).unwrap();
    let unnamed = "locked by a process the kernel does not name";
    let out = home.manager(&["status"]);
    assert!(out.failure(4).contains(unnamed), "{out:#?}");
    let out = home.manager(&["stop"]);
    assert!(out.failure(1).contains(unnamed), "{out:#?}");
    let out = run(SERVICE, &["--home", home.path().to_str().unwrap()], None);
    assert!(out.failure(1).contains(unnamed), "{out:#?}");
    assert!(home.service_processes().is_empty());
}

/// A home named through a link, or with a relative path, is the same home: its service is
/// found and stopped whichever name is used.
#[test]
fn a_home_reached_through_a_link_is_the_same_home() {
    let home = TestHome::new();
    let links = TestHome::new();
    let link = links.path().join("link-to-home");
    symlink(home.path(), &link).unwrap();
    let out = run(
        common::MANAGER,
        &["--home", link.to_str().unwrap(), "start"],
        None,
    );
    out.success();
    let pid = home.service_pid().unwrap();
    let err = run(
        common::MANAGER,
        &["--home", ".", "start"],
        Some(home.path()),
    )
    .failure(1)
    .to_owned();
    assert!(err.contains("already running"), "{err}");
    run(
        common::MANAGER,
        &["--home", "link-to-home", "stop"],
        Some(links.path()),
    )
    .success();
    assert!(!is_running(pid));
    assert_eq!(home.service_pid(), None);
}
