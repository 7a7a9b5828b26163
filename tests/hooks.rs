//! Hooks in the home's `hooks/` folder, run by the real binaries around real backups.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{
    TestHome, assert_message, has_message, in_one_minute, is_running, still_in, wait_for,
};

/// Time the service's first look needs to fit in the schedule's minute.
const MARGIN: Duration = Duration::from_secs(15);

/// Writes an executable hook, mode 0755, as a user would install one.
fn hook(home: &TestHome, name: &str, script: &str) {
    let path = home.path().join("hooks").join(name);
    home.write(&format!("hooks/{name}"), script);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// A hook that writes the facts it was given to `got-NAME` in the home, one a line.
fn recording(name: &str) -> String {
    format!(
        "#!/bin/sh\n\
         {{ echo \"cwd=$(pwd)\"; echo \"name=$BACKUP_NAME\"; echo \"source=$BACKUP_SOURCE\"; \
         echo \"archive=$BACKUP_ARCHIVE\"; echo \"home=$BACKUP_HOME\"; \
         echo \"result=$BACKUP_RESULT\"; echo \"error=$BACKUP_ERROR\"; }} > got-{name}\n"
    )
}

/// What a recording hook wrote, as `key=value` lines.
fn got(home: &TestHome, name: &str) -> String {
    fs::read_to_string(home.path().join(format!("got-{name}")))
        .unwrap_or_else(|e| panic!("hook {name} recorded nothing: {e}"))
}

#[test]
fn after_backup_copies_the_archive_and_gets_the_facts() {
    let home = TestHome::trusted();
    let offsite = tempfile::tempdir().unwrap();
    home.write("data/file.txt", "precious\n");
    hook(
        &home,
        "after-backup",
        &format!(
            "{}cp \"$BACKUP_ARCHIVE\" '{}/'\necho copied off the box\n",
            recording("after"),
            offsite.path().display()
        ),
    );
    home.manager(&["create", "data;03:00;docs"]).success();
    home.manager(&["run", "0"]).success();

    let archive = home.archive_path("docs.tar");
    let copy = offsite.path().join("docs.tar");
    assert_eq!(fs::read(&copy).unwrap(), fs::read(&archive).unwrap());
    let root = home.path().display();
    let facts = got(&home, "after");
    for line in [
        format!("cwd={root}"),
        "name=docs".to_owned(),
        format!("source={root}/data"),
        format!("archive={root}/backups/docs.tar"),
        format!("home={root}"),
        "result=done".to_owned(),
        "error=".to_owned(),
    ] {
        assert!(facts.lines().any(|l| l == line), "{line} not in {facts}");
    }
    assert_message(
        &home.manager_log(),
        "hook after-backup exited with 0; last output: copied off the box",
    );
    assert!(!home.path().join("got-on-failure").exists());
}

#[test]
fn a_failing_after_backup_is_logged_and_fails_nothing() {
    let home = TestHome::trusted();
    home.write("data/file.txt", "x\n");
    hook(
        &home,
        "after-backup",
        "#!/bin/sh\necho connecting\necho 'remote refused the upload' >&2\nexit 3\n",
    );
    hook(&home, "on-failure", &recording("on-failure"));
    home.manager(&["create", "data;03:00;docs"]).success();
    home.manager(&["run", "0"]).success();
    assert!(home.archive_path("docs.tar").is_file());
    assert_message(
        &home.manager_log(),
        "Error: hook after-backup exited with 3; last output: connecting | remote refused the upload",
    );
    // The backup is done: no alert for it.
    assert!(!home.path().join("got-on-failure").exists());
    let status = home.manager(&["status"]);
    assert!(status.stdout.contains(", ok"), "{status:#?}");
}

#[test]
fn before_backup_that_fails_cancels_the_backup_and_on_failure_hears_of_it() {
    let home = TestHome::trusted();
    home.write("data/file.txt", "x\n");
    hook(
        &home,
        "before-backup",
        "#!/bin/sh\necho 'database dump failed' >&2\nexit 1\n",
    );
    hook(&home, "after-backup", &recording("after"));
    hook(&home, "on-failure", &recording("on-failure"));
    home.manager(&["create", "data;03:00;docs"]).success();
    let out = home.manager(&["run", "0"]);
    let err = out.failure(1);
    assert!(
        err.contains("cancelled: hook before-backup exited with 1"),
        "{err}"
    );
    assert!(!home.archive_path("docs.tar").exists());
    assert!(!home.path().join("got-after").exists());
    let facts = got(&home, "on-failure");
    assert!(facts.contains("result=failed\n"), "{facts}");
    assert!(
        facts.contains("error=backup of data cancelled: hook before-backup exited with 1"),
        "{facts}"
    );
    assert_message(
        &home.manager_log(),
        "Error: hook before-backup exited with 1; last output: database dump failed",
    );
    assert_eq!(home.manager(&["status"]).code(), Some(3));
    let status = home.manager(&["status"]).stdout;
    assert!(status.contains(", failed"), "{status}");
}

#[test]
fn on_failure_gets_the_error_of_a_failed_backup() {
    let home = TestHome::trusted();
    hook(&home, "on-failure", &recording("on-failure"));
    home.manager(&["create", "missing;03:00;gone"]).success();
    home.manager(&["run", "0"]).failure(1);
    let facts = got(&home, "on-failure");
    assert!(facts.contains("name=gone\n"), "{facts}");
    assert!(facts.contains("result=failed\n"), "{facts}");
    assert!(
        facts.contains("error=backup of missing into backups/gone.tar failed"),
        "{facts}"
    );
}

#[test]
fn hooks_writable_by_others_or_not_executable_are_skipped_with_an_error() {
    let home = TestHome::trusted();
    home.write("data/file.txt", "x\n");
    hook(&home, "after-backup", &recording("after"));
    let path = home.path().join("hooks/after-backup");
    home.manager(&["create", "data;03:00;docs"]).success();
    for (mode, why) in [
        (0o775, "is writable by group or others (mode 775)"),
        (0o757, "is writable by group or others (mode 757)"),
        (0o644, "is not executable (chmod u+x)"),
    ] {
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        home.manager(&["run", "0"]).success();
        assert!(!home.path().join("got-after").exists(), "mode {mode:o} ran");
        let log = home.manager_log();
        assert!(
            log.iter()
                .any(|m| m.starts_with("Error: hook after-backup skipped: ") && m.ends_with(why)),
            "{why}: {log:#?}"
        );
    }
    // Owned by another user (who could change it): refused, as ssh refuses such a file.
    if nix::unistd::geteuid().is_root() {
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
        home.manager(&["run", "0"]).success();
        assert!(
            !home.path().join("got-after").exists(),
            "a foreign hook ran"
        );
        let log = home.manager_log();
        assert!(
            log.iter()
                .any(|m| m.starts_with("Error: hook after-backup skipped: ")
                    && m.ends_with("is owned by uid 65534, not by this user or root")),
            "{log:#?}"
        );
        std::os::unix::fs::chown(&path, Some(0), None).unwrap();
    }
    // A hooks folder others may write to makes every hook in it untrusted.
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(home.path().join("hooks"), fs::Permissions::from_mode(0o777)).unwrap();
    home.manager(&["run", "0"]).success();
    assert!(!home.path().join("got-after").exists());
    fs::set_permissions(home.path().join("hooks"), fs::Permissions::from_mode(0o755)).unwrap();
    home.manager(&["run", "0"]).success();
    assert!(got(&home, "after").contains("result=done\n"));
}

fn pid_in(path: &Path) -> Option<i32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[test]
fn a_hook_that_hangs_is_killed_with_its_children_and_the_service_goes_on() {
    in_one_minute(MARGIN, |now| {
        let home = TestHome::trusted();
        home.write("data/file.txt", "x\n");
        hook(
            &home,
            "after-backup",
            "#!/bin/sh\nsleep 1000 &\necho $! > child.pid\necho $$ > hook.pid\n\
             echo uploading\nwait\n",
        );
        home.manager(&["create", &format!("data;{now};docs")])
            .success();
        home.manager_env(&[("BACKUP_HOOK_TIMEOUT", "1")], &["start"])
            .success();
        let pid = home.service_pid().expect("the service runs");
        if !still_in(now) {
            return None;
        }
        wait_for("the hook to be killed", || {
            has_message(
                &home.service_log(),
                "Error: hook after-backup killed with its process group after its time limit of 1 s \
                 (BACKUP_HOOK_TIMEOUT); last output: uploading",
            )
        });
        let hook_pid = pid_in(&home.path().join("hook.pid")).unwrap();
        let child_pid = pid_in(&home.path().join("child.pid")).unwrap();
        wait_for("the hook and its child to be gone", || {
            !is_running(hook_pid) && !is_running(child_pid)
        });
        assert!(home.archive_path("docs.tar").is_file());
        assert_eq!(home.service_pid(), Some(pid), "the service stopped");
        // The run is recorded just after its hooks are done: the backup is done, and the
        // hook killed at its limit is what `status` reports, exiting 1.
        wait_for("the backup recorded as done", || {
            let status = home.manager(&["status"]);
            status.code() == Some(1)
                && status.stdout.contains(", ok")
                && status
                    .stdout
                    .contains("hook after-backup killed with its process group")
        });
        home.stop();
        Some(())
    });
}

#[test]
fn ctrl_c_on_run_stops_the_hook_with_its_children_then_the_manager() {
    use std::os::unix::process::ExitStatusExt;

    let home = TestHome::trusted();
    home.write("data/file.txt", "x\n");
    hook(
        &home,
        "before-backup",
        "#!/bin/sh\nsleep 1000 &\necho $! > child.pid\necho $$ > hook.pid\nwait\n",
    );
    home.manager(&["create", "data;03:00;docs"]).success();
    let mut run = common::ChildGuard(home.spawn_manager(&["run", "0"]));
    wait_for("the hook to start its child", || {
        pid_in(&home.path().join("child.pid")).is_some()
    });
    let hook_pid = pid_in(&home.path().join("hook.pid")).unwrap();
    let child_pid = pid_in(&home.path().join("child.pid")).unwrap();
    // What Ctrl-C does: SIGINT to the terminal's foreground group, which the hook, in a
    // group of its own, is not in.
    let manager = nix::unistd::Pid::from_raw(run.0.id() as i32);
    nix::sys::signal::kill(manager, nix::sys::signal::Signal::SIGINT).unwrap();
    let status = run.wait();
    assert_eq!(status.signal(), Some(libc::SIGINT), "{status:?}");
    wait_for("the hook and its child to be gone", || {
        !is_running(hook_pid) && !is_running(child_pid)
    });
    assert_message(
        &home.manager_log(),
        "Error: hook before-backup stopped with its process group: backup_manager got SIGINT",
    );
    assert!(!home.archive_path("docs.tar").exists(), "the backup ran");
}

#[test]
fn stop_during_a_hanging_hook_waits_only_for_its_limit() {
    in_one_minute(MARGIN, |now| {
        let home = TestHome::trusted();
        home.write("data/file.txt", "x\n");
        hook(
            &home,
            "before-backup",
            "#!/bin/sh\necho $$ > hook.pid\nsleep 1000\n",
        );
        home.manager(&["create", &format!("data;{now};docs")])
            .success();
        home.manager_env(&[("BACKUP_HOOK_TIMEOUT", "2")], &["start"])
            .success();
        if !still_in(now) {
            return None;
        }
        wait_for("the hook to start", || {
            home.path().join("hook.pid").exists()
        });
        // Well within stop's own time limit, though the hook would sleep for 1000 s.
        home.manager(&["stop", "--timeout", "30"]).success();
        assert_eq!(home.service_pid(), None);
        let log = home.service_log();
        assert!(
            log.iter().any(
                |m| m.starts_with("Error: backup of data cancelled: hook before-backup killed")
            ),
            "{log:#?}"
        );
        assert!(!home.archive_path("docs.tar").exists());
        Some(())
    });
}

#[test]
fn the_example_after_backup_says_what_it_lacks_and_copies_with_rclone_where_present() {
    let home = TestHome::trusted();
    home.write("data/file.txt", "x\n");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hooks/after-backup");
    hook(&home, "after-backup", &fs::read_to_string(example).unwrap());
    home.manager(&["create", "data;03:00;docs"]).success();
    home.manager(&["run", "0"]).success();
    assert_message(
        &home.manager_log(),
        "Error: hook after-backup exited with 2; last output: no destination: set \
         BACKUP_RCLONE_DEST or write one in hooks/rclone-destination",
    );

    // rclone is not needed by the tests; where it is installed, the example copies the
    // archive to a remote of type alias, set up through the environment alone.
    if Command::new("rclone").arg("version").output().is_ok() {
        let offsite = tempfile::tempdir().unwrap();
        home.write("hooks/rclone-destination", "offsite:copies\n");
        let remote = offsite.path().to_str().unwrap();
        home.manager_env(
            &[
                ("RCLONE_CONFIG_OFFSITE_TYPE", "alias"),
                ("RCLONE_CONFIG_OFFSITE_REMOTE", remote),
            ],
            &["run", "0"],
        )
        .success();
        let copy = offsite.path().join("copies/docs.tar");
        assert_eq!(
            fs::read(copy).unwrap(),
            fs::read(home.archive_path("docs.tar")).unwrap()
        );
    }
}

/// A hook that fails or is skipped is said on `run`'s stderr, shown in `status` under its
/// schedule's last run, and makes `status` exit 1, while the backup stays done.
#[test]
fn a_failing_or_skipped_hook_is_seen_in_run_and_status() {
    let home = TestHome::trusted();
    home.write("data/file.txt", "x\n");
    fs::create_dir_all(home.path().join("hooks")).unwrap();
    fs::set_permissions(home.path().join("hooks"), fs::Permissions::from_mode(0o755)).unwrap();
    hook(
        &home,
        "after-backup",
        "#!/bin/sh\necho remote refused >&2\nexit 3\n",
    );
    home.manager(&["create", "data;03:00;docs"]).success();
    let pid = home.start();
    let warnings = home.run_ok(0);
    assert_eq!(
        warnings,
        ["hook after-backup exited with 3; last output: remote refused"]
    );
    let status = home.manager(&["status"]);
    assert_eq!(status.code(), Some(1), "{status:#?}");
    assert!(
        status.stdout.contains("   last run:  ")
            && status.stdout.contains(
                "              hook after-backup exited with 3; last output: remote refused"
            ),
        "{}",
        status.stdout
    );
    // Skipped: mode 775, what `chmod +x` gives under umask 002.
    hook(&home, "after-backup", "#!/bin/sh\nexit 0\n");
    let path = home.path().join("hooks/after-backup");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o775)).unwrap();
    let warnings = home.run_ok(0);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("hook after-backup skipped: ")
            && warnings[0].ends_with("is writable by group or others (mode 775)"),
        "{warnings:?}"
    );
    assert_eq!(home.manager(&["status"]).code(), Some(1));
    // Mended: all is well again.
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    assert!(home.run_ok(0).is_empty());
    assert_eq!(home.manager(&["status"]).code(), Some(0));
    assert!(common::is_running(pid));
    home.stop();
}

/// A local HTTP server on 127.0.0.1 that answers 200 to everything and keeps each
/// request's first line, and its body.
fn http_server() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/check", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut first = String::new();
            reader.read_line(&mut first).unwrap();
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                if let Some(n) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = n.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let body = String::from_utf8_lossy(&body);
            kept.lock()
                .unwrap()
                .push(format!("{} {body}", first.trim_end()).trim().to_owned());
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK");
        }
    });
    (url, seen)
}

/// The example ping hook tells a monitoring URL of a backup's start, success and failure.
#[test]
fn the_example_ping_hook_tells_a_monitor_of_start_success_and_failure() {
    if Command::new("curl").arg("--version").output().is_err() {
        eprintln!("note: curl is not installed; test skipped");
        return;
    }
    let home = TestHome::trusted();
    home.write("data/file.txt", "x\n");
    let ping =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hooks/ping"))
            .unwrap();
    for name in ["before-backup", "after-backup", "on-failure"] {
        hook(&home, name, &ping);
    }
    home.manager(&["create", "data;03:00;docs"]).success();
    let (url, seen) = http_server();
    let run = |home: &TestHome| home.manager_env(&[("BACKUP_PING_URL", &url)], &["run", "0"]);
    run(&home).success();
    fs::remove_dir_all(home.path().join("data")).unwrap();
    assert_eq!(run(&home).code(), Some(1));
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 4, "{seen:#?}");
    assert_eq!(seen[0], "POST /check/start HTTP/1.1");
    assert_eq!(seen[1], "POST /check HTTP/1.1");
    assert_eq!(seen[2], "POST /check/start HTTP/1.1");
    assert!(
        seen[3]
            .starts_with("POST /check/fail HTTP/1.1 backup of data into backups/docs.tar failed"),
        "{seen:#?}"
    );
}
