//! Processes and homes: what the service keeps open, which folders are homes, schedule
//! lines that clash, the zone times are shown in, `run` interrupted, and exit statuses.

mod common;

use std::fs;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, NaiveDateTime, Offset, TimeZone};
use common::{
    MANAGER, Output, SERVICE, TestHome, WARNINGS_EXIT, archive_entries, assert_message,
    in_one_minute, still_in, wait_for,
};
use nix::sys::signal::Signal;

/// Time the service's first look needs to fit in the schedule's minute.
const MARGIN: Duration = Duration::from_secs(15);

fn once(home: &TestHome) -> Output {
    common::run(
        SERVICE,
        &["--once", "--home", home.path().to_str().unwrap()],
        None,
    )
}

/// `out=$(backup_manager start 9>&1)` returns at once: the service closes what its caller
/// left open, and keeps only what it opened itself.
#[test]
fn start_returns_at_once_with_a_descriptor_left_open() {
    let home = TestHome::new();
    home.manager(&["create", "data;03:00;docs"]).success();
    let started = Instant::now();
    // `timeout` turns a hang into a failure rather than a test that never ends.
    let out = Command::new("timeout")
        .args(["20", "sh", "-c"])
        .arg(format!(
            "out=$('{MANAGER}' --home '{}' start 9>&1); echo \"status $?\"",
            home.path().display()
        ))
        .output()
        .unwrap();
    let took = started.elapsed();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "status 0\n",
        "{out:?}"
    );
    assert!(took < Duration::from_secs(10), "start took {took:?}");
    let pid = home.service_pid().expect("the service runs");
    let pid_file = home.path().join(".backup_service.pid");
    let others = || {
        let mut others = Vec::new();
        for entry in fs::read_dir(format!("/proc/{pid}/fd")).unwrap() {
            let entry = entry.unwrap();
            let fd: i32 = entry.file_name().to_str().unwrap().parse().unwrap();
            let target = fs::read_link(entry.path()).unwrap_or_default();
            let own = target == pid_file || target.to_string_lossy().starts_with("anon_inode:");
            if fd > 2 && !own {
                others.push(format!("{fd} {}", target.display()));
            }
        }
        others
    };
    // The ready pipe goes just after the word "ready"; nothing else is there.
    let mut open = others();
    assert!(!open.iter().any(|o| o.starts_with("9 ")), "{open:?}");
    wait_for("the service to close its ready pipe", || {
        open = others();
        open.is_empty()
    });
    home.stop();
}

/// A folder whose service runs, or that holds the state file, is a home for `status` and
/// `stop` typed in it, even once its schedule file was removed.
#[test]
fn stop_and_status_find_a_home_whose_schedule_file_was_removed() {
    let home = TestHome::new();
    home.manager(&["create", "data;03:00;docs"]).success();
    let pid = home.start();
    fs::remove_file(home.path().join("backup_schedules.txt")).unwrap();
    assert!(!home.path().join("backups").exists());
    let here = |args: &[&str]| common::run(MANAGER, args, Some(home.path()));

    // The state file is left.
    let out = here(&["status"]);
    assert_eq!(out.code(), Some(0), "{out:#?}");
    assert!(
        out.stdout
            .starts_with(&format!("backup_service: running (pid {pid}"))
    );
    // Only the running service is left.
    fs::remove_file(home.path().join(".backup_state.json")).unwrap();
    let out = here(&["status"]);
    assert_eq!(out.code(), Some(0), "{out:#?}");
    here(&["stop"]).success();
    assert_eq!(home.service_pid(), None);
    // Now nothing makes it a home but the stale pid file, which is not enough.
    let out = here(&["status"]);
    assert!(out.stderr.contains("no home found here"), "{out:#?}");
}

/// Lines written by hand that reuse a NAME for another PATH or other options: `list`
/// names them and fails, `run` refuses them, the service skips them with an error, and
/// `create` refuses the same, by the same rule.
#[test]
fn hand_written_clashes_are_reported_by_list_and_skipped_by_the_service() {
    in_one_minute(MARGIN, |now| {
        let home = TestHome::new();
        home.write("a/one", "1\n");
        home.write("b/two", "2\n");
        let lines = [
            format!("a;{now};x"),
            format!("b;{now};x"),
            format!("a;{now};x;zstd"),
            format!("b;{now};y"),
        ];
        home.write("backup_schedules.txt", lines.join("\n") + "\n");
        let taken = |index: usize| {
            format!(
                "index {index} (archive name \"x\" is already used by schedule 0 ({}) for \
                 another PATH or other options)",
                lines[0]
            )
        };
        let out = home.manager(&["list"]);
        assert_eq!(out.code(), Some(1), "{out:#?}");
        let shown: Vec<String> = (0..4).map(|i| format!("{i}: {}", lines[i])).collect();
        assert_eq!(out.stdout_lines(), shown);
        assert!(out.stderr.contains(&taken(1)), "{}", out.stderr);
        assert!(out.stderr.contains(&taken(2)), "{}", out.stderr);
        let err = home.manager(&["run", "1"]).failure(1).to_owned();
        assert!(
            err.contains(&format!(
                "schedule 1 ({}) is skipped: archive name \"x\"",
                lines[1]
            )),
            "{err}"
        );
        let err = home.manager(&["create", &lines[1]]).failure(1).to_owned();
        assert!(err.contains("is already used by schedule 0"), "{err}");

        once(&home).success();
        if !still_in(now) {
            return None;
        }
        let log = home.service_log();
        for index in [1, 2] {
            assert_message(
                &log,
                &format!(
                    "Error: schedule {index} ({}) skipped: archive name \"x\" is already used \
                     by schedule 0 ({}) for another PATH or other options; `create` refuses \
                     such a line",
                    lines[index], lines[0]
                ),
            );
        }
        let x: Vec<String> = archive_entries(&home.archive_path("x.tar"))
            .into_keys()
            .collect();
        assert_eq!(x, ["a", "a/one"], "x.tar holds another schedule's files");
        assert!(!home.archive_path("x.tar.zst").exists());
        assert!(home.archive_path("y.tar").exists());
        let status = home.manager(&["status"]).stdout.clone();
        assert!(
            status.contains("   clashes:   archive name \"x\""),
            "{status}"
        );
        Some(())
    });
}

/// Backups made in one zone and shown in another: every time is the instant stored,
/// shown in the current zone, as `next run` beside it always was.
#[test]
fn times_are_shown_in_the_current_zone() {
    let paris = chrono_tz::Europe::Paris;
    let new_york = chrono_tz::America::New_York;
    let home = TestHome::new();
    home.write("data/file.txt", "x\n");
    home.manager_env(
        &[("TZ", "Europe/Paris")],
        &["create", "--keep", "3", "data;03:00;docs"],
    )
    .success();
    home.manager_env(&[("TZ", "Europe/Paris")], &["run", "0"])
        .success();
    home.manager_env(&[("TZ", "Europe/Paris")], &["run", "0"])
        .success();

    let state: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(home.path().join(".backup_state.json")).unwrap())
            .unwrap();
    let record = &state["schedules"]["data;03:00;docs;keep=3"];
    let started =
        DateTime::parse_from_rfc3339(record["last_run"]["started"].as_str().unwrap()).unwrap();
    let shown = started
        .with_timezone(&new_york)
        .format("%d/%m/%Y %H:%M")
        .to_string();
    let status = home.manager_env(&[("TZ", "America/New_York")], &["status"]);
    assert!(
        status
            .stdout
            .contains(&format!("   last run:  {shown}, ok,")),
        "expected {shown}: {}",
        status.stdout
    );

    // The dated archive's name is Paris's wall time; `made` is that instant in New York.
    let listing = home.manager_env(&[("TZ", "America/New_York")], &["backups", "--json"]);
    let listing: serde_json::Value = serde_json::from_str(&listing.stdout).unwrap();
    let dated = listing
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["latest"] == false)
        .expect("a dated archive");
    let name = dated["name"].as_str().unwrap();
    let stamp = name.trim_start_matches("docs.").trim_end_matches(".tar");
    let stamp = NaiveDateTime::parse_from_str(&stamp[..15], "%Y-%m-%d_%H%M").unwrap();
    let expected = paris.from_local_datetime(&stamp).earliest().unwrap();
    let made = DateTime::parse_from_rfc3339(dated["made"].as_str().unwrap()).unwrap();
    assert_eq!(made, expected, "{dated:#}");
    let offset = new_york.from_utc_datetime(&made.naive_utc()).offset().fix();
    assert_eq!(*made.offset(), offset, "{dated:#}");
    let oldest = expected.with_timezone(&new_york).format("%d/%m/%Y %H:%M");
    assert!(
        status
            .stdout
            .contains(&format!("   archives:  2, oldest made {oldest}")),
        "{}",
        status.stdout
    );

    // JSON too: the same instant, with New York's offset.
    let json = home.manager_env(&[("TZ", "America/New_York")], &["status", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let last: DateTime<FixedOffset> = DateTime::parse_from_rfc3339(
        json["schedules"][0]["last_run"]["started"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(last, started);
    assert_eq!(
        *last.offset(),
        new_york.from_utc_datetime(&last.naive_utc()).offset().fix()
    );
}

/// Ctrl-C (SIGINT) or SIGTERM while `run` writes: the unfinished file goes, the log says
/// so, the previous archive is as it was, and a shell sees status 130 or 143.
#[test]
fn ctrl_c_or_sigterm_on_run_removes_the_partial_file_and_logs_it() {
    for (signal, status) in [(Signal::SIGINT, 130), (Signal::SIGTERM, 143)] {
        let home = TestHome::new();
        home.write("data/sub/file.txt", "x\n");
        home.back_up(&[], "data;03:00;docs");
        let before = fs::read(home.archive_path("docs.tar")).unwrap();
        let marker = home.path().join("paused");
        // The manager runs under a shell, which says how it ended.
        let mut shell = common::ChildGuard(
            Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "'{MANAGER}' --home '{}' run 0 2>/dev/null; echo $?",
                    home.path().display()
                ))
                .env(
                    "BACKUP_TEST_PAUSE",
                    format!("enter-sub:{}", marker.display()),
                )
                .stdout(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        wait_for("the backup to reach data/sub", || marker.exists());
        // The archive's and its index's.
        assert_eq!(home.partial_files().len(), 2, "{:?}", home.partial_files());
        let sh = shell.pid();
        let children = fs::read_to_string(format!("/proc/{sh}/task/{sh}/children")).unwrap();
        let manager: i32 = children.split_whitespace().next().unwrap().parse().unwrap();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(manager), signal).unwrap();
        shell.wait();
        let mut said = String::new();
        std::io::Read::read_to_string(&mut shell.0.stdout.take().unwrap(), &mut said).unwrap();
        assert_eq!(said, format!("{status}\n"), "{signal}");
        assert_eq!(home.partial_files(), Vec::<String>::new(), "{signal}");
        assert_eq!(fs::read(home.archive_path("docs.tar")).unwrap(), before);
        assert_message(
            &home.manager_log(),
            &format!(
                "Error: backup of data into backups/docs.tar interrupted by {signal}; 2 \
                 unfinished files removed, the previous archive is as it was"
            ),
        );
        let _ = fs::remove_file(&marker);
    }
}

/// A backup done with warnings exits 3 from `run` and from `backup_service --once`, and
/// the timer's unit counts 3 as a success; a failed one exits 1.
#[test]
fn a_backup_with_warnings_exits_3_from_run_and_from_the_service_once() {
    let home = TestHome::new();
    home.write("data/file.txt", "x\n");
    let _socket = std::os::unix::net::UnixListener::bind(home.path().join("data/sock")).unwrap();
    home.manager(&["create", "data;03:00;docs"]).success();
    let out = home.manager(&["run", "0"]);
    assert_eq!(out.code(), Some(WARNINGS_EXIT), "{out:#?}");
    assert!(
        out.stderr
            .contains("sock: skipped, a socket cannot be archived"),
        "{out:#?}"
    );
    assert!(out.stderr.contains("done with 1 warning)"), "{out:#?}");
    let unit = home.manager(&["unit", "--once"]).success().stdout.clone();
    assert!(unit.contains("\nSuccessExitStatus=3\n"), "{unit}");

    in_one_minute(MARGIN, |now| {
        let home = TestHome::new();
        home.write("data/file.txt", "x\n");
        let _socket =
            std::os::unix::net::UnixListener::bind(home.path().join("data/sock")).unwrap();
        home.manager(&["create", &format!("data;{now};docs")])
            .success();
        let warned = once(&home);
        home.manager(&["create", &format!("missing;{now};gone")])
            .success();
        let failed = once(&home);
        if !still_in(now) {
            return None;
        }
        assert_eq!(warned.code(), Some(WARNINGS_EXIT), "{warned:#?}");
        assert_eq!(failed.code(), Some(1), "{failed:#?}");
        Some(())
    });

    // As a user who cannot read one file of the tree.
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    let home = TestHome::new();
    home.write("data/open.txt", "x\n");
    home.write("data/secret.txt", "root only\n");
    fs::set_permissions(
        home.path().join("data/secret.txt"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    home.manager(&["create", "data;03:00;docs"]).success();
    let chown = Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(home.path())
        .status()
        .unwrap();
    assert!(chown.success());
    std::os::unix::fs::chown(home.path().join("data/secret.txt"), Some(0), Some(0)).unwrap();
    let out = Command::new(MANAGER)
        .arg("--home")
        .arg(home.path())
        .args(["run", "0"])
        .uid(65534)
        .gid(65534)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(WARNINGS_EXIT), "{stderr}");
    assert!(stderr.contains("secret.txt: cannot read it"), "{stderr}");
}
