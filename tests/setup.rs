//! Living with it: the home named once (BACKUP_HOME), no stray home, systemd units,
//! completions, manual pages and `status --help`.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{MANAGER, Output, SERVICE, TestHome, assert_message, names};

/// Runs `program ARGS` in `cwd` with `BACKUP_HOME` set to `home`, or unset when `None`.
fn run_in(program: &str, cwd: &Path, home: Option<&Path>, args: &[&str]) -> Output {
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match home {
        Some(home) => command.env("BACKUP_HOME", home),
        None => command.env_remove("BACKUP_HOME"),
    };
    common::finish(command.spawn().unwrap())
}

#[test]
fn backup_home_names_the_home_and_home_wins_over_it() {
    let a = TestHome::new();
    let b = TestHome::new();
    let elsewhere = tempfile::tempdir().unwrap();
    let cwd = elsewhere.path();
    a.write("docs/f", "a\n");
    // Absolute PATHs: a relative one typed here would be taken from this folder.

    run_in(
        MANAGER,
        cwd,
        Some(a.path()),
        &["create", "/srv/docs;03:00;docs"],
    )
    .success();
    assert_eq!(a.schedule_bytes().unwrap(), b"/srv/docs;03:00;docs\n");
    run_in(
        MANAGER,
        cwd,
        Some(a.path()),
        &[
            "--home",
            b.path().to_str().unwrap(),
            "create",
            "/srv/b;04:00;b",
        ],
    )
    .success();
    assert_eq!(b.schedule_bytes().unwrap(), b"/srv/b;04:00;b\n");
    assert_eq!(a.schedule_bytes().unwrap(), b"/srv/docs;03:00;docs\n");

    let list = run_in(MANAGER, cwd, Some(a.path()), &["list"]);
    assert_eq!(list.success().stdout, "0: /srv/docs;03:00;docs\n");
    let list = run_in(
        MANAGER,
        cwd,
        Some(a.path()),
        &["list", "--home", b.path().to_str().unwrap()],
    );
    assert_eq!(list.success().stdout, "0: /srv/b;04:00;b\n");

    // status and start say which home they use.
    let status = run_in(MANAGER, cwd, Some(a.path()), &["status"]);
    assert_eq!(status.code(), Some(3));
    assert_eq!(
        status.stderr,
        format!("backup_manager: home {}\n", a.path().display())
    );
    let start = run_in(MANAGER, cwd, Some(a.path()), &["start"]);
    start.success();
    let pid = a.service_pid().expect("the service of home a runs");
    assert_eq!(
        start.stderr,
        format!(
            "backup_manager: backup_service started (pid {pid}, home {})\n",
            a.path().display()
        )
    );
    assert_eq!(b.service_pid(), None);
    a.stop();
    // In the home itself, start is as quiet as the brief's walkthrough shows it.
    let start = run_in(MANAGER, a.path(), None, &["start"]);
    start.success();
    assert_eq!((start.stdout.as_str(), start.stderr.as_str()), ("", ""));
    a.stop();

    // The service reads it too.
    run_in(SERVICE, cwd, Some(a.path()), &["--once"]).success();
    assert!(a.path().join("logs/backup_service.log").is_file());
    // Nothing of either home went into the folder the commands were typed in.
    assert!(names(cwd).is_empty(), "{:?}", names(cwd));
}

#[test]
fn commands_in_a_folder_that_is_no_home_say_so_and_create_nothing() {
    let stray = tempfile::tempdir().unwrap();
    let cwd = stray.path();
    for args in [
        &["list"][..],
        &["backups"],
        &["status"],
        &["verify", "docs"],
        &["restore", "docs", "out"],
        &["stop"],
        &["start"],
        &["delete", "0"],
        &["run", "0"],
        &["unit"],
    ] {
        let out = run_in(MANAGER, cwd, None, args);
        let code = if args == ["status"] { 4 } else { 1 };
        let err = out.failure(code);
        assert!(
            err.contains(&format!(
                "no home found here: {} holds no backup_schedules.txt and no backups/; name \
                 one with --home DIR or BACKUP_HOME=DIR",
                fs::canonicalize(cwd).unwrap().display()
            )),
            "{args:?}: {err}"
        );
        assert!(names(cwd).is_empty(), "{args:?} left {:?}", names(cwd));
    }
    let out = run_in(SERVICE, cwd, None, &["--once"]);
    assert_eq!(out.code(), Some(1));
    assert!(out.stderr.contains("no home found here"), "{out:#?}");
    assert!(names(cwd).is_empty(), "{:?}", names(cwd));

    // An empty BACKUP_HOME names nothing.
    run_in(MANAGER, cwd, Some(Path::new("")), &["list"]).failure(1);

    // create still makes a new home where it is run; then it is one.
    fs::create_dir(cwd.join("docs")).unwrap();
    run_in(MANAGER, cwd, None, &["create", "docs;03:00;docs"]).success();
    let list = run_in(MANAGER, cwd, None, &["list"]);
    assert_eq!(list.success().stdout, "0: docs;03:00;docs\n");
    assert_message(
        &common::log_messages(&cwd.join("logs/backup_manager.log")),
        "New schedule added: docs;03:00;docs",
    );
}

#[test]
fn a_folder_with_only_backups_is_a_home() {
    let home = TestHome::new();
    home.write("backups/old.tar", "x");
    let out = run_in(MANAGER, home.path(), None, &["backups"]);
    assert_eq!(out.success().stdout, "old.tar\n");
}

#[test]
fn unit_names_the_binaries_in_use_and_the_home() {
    let home = TestHome::new();
    let service = fs::canonicalize(SERVICE).unwrap();
    let unit = home.manager(&["unit"]).success().stdout.clone();
    let exec = format!(
        "ExecStart=\"{}\" --home \"{}\"",
        service.display(),
        home.path().display()
    );
    assert!(unit.lines().any(|l| l == exec), "{exec} not in:\n{unit}");
    for line in [
        "[Unit]",
        "[Service]",
        "Restart=on-failure",
        "[Install]",
        "WantedBy=default.target",
    ] {
        assert!(unit.lines().any(|l| l == line), "{line} not in:\n{unit}");
    }
    let once = home.manager(&["unit", "--once"]).success().stdout.clone();
    assert!(once.lines().any(|l| l == "Type=oneshot"), "{once}");
    assert!(
        once.lines().any(|l| l == format!("{exec} --once")),
        "{once}"
    );
    let timer = home.manager(&["unit", "--timer"]).success().stdout.clone();
    for line in [
        "[Timer]",
        "OnCalendar=*-*-* *:*:00",
        "Unit=backup_service-once.service",
        "WantedBy=timers.target",
    ] {
        assert!(timer.lines().any(|l| l == line), "{line} not in:\n{timer}");
    }

    // Where systemd is installed, it must accept them as they are.
    let analyze = Command::new("systemd-analyze").arg("--version").output();
    if analyze.is_ok_and(|o| o.status.success()) {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [
            ("backup_service.service", &unit),
            ("backup_service-once.service", &once),
            ("backup_service.timer", &timer),
        ] {
            let path = dir.path().join(name);
            fs::write(&path, text).unwrap();
            let out = Command::new("systemd-analyze")
                .arg("verify")
                .arg(&path)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "systemd-analyze verify {name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

#[test]
fn completions_for_each_shell_and_bash_loads_them() {
    let home = TestHome::new();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = home.manager(&["completions", shell]);
        assert!(out.success().stdout.contains("backup_manager"), "{shell}");
        for command in ["create", "status", "restore", "unit", "completions"] {
            assert!(out.stdout.contains(command), "{shell} lacks {command}");
        }
    }
    // They need no home: none is looked for, nothing is written.
    let stray = tempfile::tempdir().unwrap();
    run_in(MANAGER, stray.path(), None, &["completions", "bash"]).success();
    run_in(MANAGER, stray.path(), None, &["man"]).success();
    assert!(names(stray.path()).is_empty());

    if Command::new("bash").arg("--version").output().is_ok() {
        let script =
            format!("source <('{MANAGER}' completions bash) && complete -p backup_manager");
        let out = Command::new("bash").args(["-c", &script]).output().unwrap();
        let shown = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{out:?}");
        assert!(shown.contains("-F _backup_manager"), "{shown}");
        assert!(shown.trim_end().ends_with(" backup_manager"), "{shown}");
    }
}

#[test]
fn man_pages_for_both_programs() {
    let home = TestHome::new();
    let page = home.manager(&["man"]).success().stdout.clone();
    assert!(page.contains(".TH backup_manager 1"), "{page}");
    for command in ["create", "status", "unit", "completions"] {
        assert!(
            page.contains(&format!("\\fBbackup_manager {command}")),
            "{command}: {page}"
        );
    }
    assert!(page.contains(".SH ENVIRONMENT"), "{page}");
    // Where man is installed, it shows the page.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backup_manager.1");
    fs::write(&file, &page).unwrap();
    if let Ok(out) = Command::new("man")
        .arg("-l")
        .arg(&file)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
    {
        let shown = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{out:?}");
        assert!(shown.contains("COMMANDS"), "{shown}");
        assert!(shown.contains("BACKUP_HOOK_TIMEOUT"), "{shown}");
    }
    let page = run_in(SERVICE, home.path(), None, &["--man"])
        .success()
        .stdout
        .clone();
    assert!(page.contains(".TH backup_service 1"), "{page}");
    assert!(page.contains("\\-\\-once"), "{page}");
}

#[test]
fn status_help_lists_every_exit_code() {
    let home = TestHome::new();
    let help = home.manager(&["status", "--help"]).success().stdout.clone();
    for line in [
        "  0  the service runs and no last run failed;",
        "  1  a last run failed (or was cancelled by the before-backup hook), a hook",
        "     failed, timed out or was skipped, or a schedule is overdue (no successful",
        "     backup for longer than its period and 2 hours);",
        "  2  usage error (a mistyped command or option);",
        "  3  the service is not running;",
        "  4  the status cannot be told (an unreadable file, or no home found).",
    ] {
        assert!(help.lines().any(|l| l == line), "{line:?} not in:\n{help}");
    }
}

/// A relative PATH typed in a folder other than the home is taken from that folder, and
/// `~` from the user's home, as the shell would; in the home, lines stay as typed.
#[test]
fn a_path_is_taken_as_the_user_typed_it() {
    let home = TestHome::new();
    let parent = tempfile::tempdir().unwrap();
    let parent = fs::canonicalize(parent.path()).unwrap();
    fs::create_dir(parent.join("proj")).unwrap();
    let out = run_in(
        MANAGER,
        &parent,
        Some(home.path()),
        &["create", "proj;02:00;p"],
    );
    out.success();
    let line = format!("{}/proj;02:00;p\n", parent.display());
    assert_eq!(home.schedule_bytes().unwrap(), line.as_bytes());
    assert_eq!(
        out.stderr,
        format!(
            "backup_manager: proj taken as {}/proj (as the shell would: from the current \
             folder, ~ as your home)\n",
            parent.display()
        )
    );
    // `~` from HOME.
    let mut command = Command::new(MANAGER);
    command
        .args(["create", "~/notes;03:00;notes"])
        .current_dir(&parent)
        .env("BACKUP_HOME", home.path())
        .env("HOME", &parent);
    common::finish(command.spawn().unwrap()).success();
    let text = String::from_utf8(home.schedule_bytes().unwrap()).unwrap();
    assert!(
        text.ends_with(&format!("{}/notes;03:00;notes\n", parent.display())),
        "{text}"
    );
    // In the home itself, as typed.
    run_in(MANAGER, home.path(), None, &["create", "test;04:00;t"]).success();
    assert!(
        String::from_utf8(home.schedule_bytes().unwrap())
            .unwrap()
            .ends_with("\ntest;04:00;t\n")
    );
}
