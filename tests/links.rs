//! Links planted in a home: at each file the programs open there, no link is followed and
//! nothing is created through one, and `backups/` or `logs/` may be a link only to a
//! folder no other user can change.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use common::{MANAGER, Output, SERVICE, TestHome};

/// Files outside the home that a planted link points to: one that exists, with known
/// contents and an old mtime, and one that does not.
struct Victims {
    _dir: tempfile::TempDir,
    existing: PathBuf,
    missing: PathBuf,
}

const CONTENTS: &str = "precious, not to be touched\n";

impl Victims {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let existing = dir.path().join("existing");
        fs::write(&existing, CONTENTS).unwrap();
        let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        fs::File::options()
            .write(true)
            .open(&existing)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let missing = dir.path().join("missing");
        Victims {
            _dir: dir,
            existing,
            missing,
        }
    }

    /// Asserts that neither was written, and the missing one not created.
    fn assert_untouched(&self, what: &str) {
        assert_eq!(
            fs::read_to_string(&self.existing).unwrap(),
            CONTENTS,
            "{what}: the link's target was written"
        );
        let mtime = fs::metadata(&self.existing).unwrap().mtime();
        assert_eq!(
            mtime, 1_000_000_000,
            "{what}: the link's target was modified"
        );
        assert!(
            !self.missing.exists(),
            "{what}: the link's missing target was created"
        );
    }
}

/// Plants at `rel` in the home a link to `target`, replacing what is there.
fn plant(home: &TestHome, rel: &str, target: &Path) {
    let at = home.path().join(rel);
    fs::create_dir_all(at.parent().unwrap()).unwrap();
    let _ = fs::remove_file(&at);
    symlink(target, &at).unwrap();
}

/// A home with a schedule of `data`, `OPTIONS` added to `create`, backed up once.
fn home_with(options: &[&str]) -> TestHome {
    let home = TestHome::new();
    home.write("data/file.txt", "x\n");
    home.back_up(options, "data;03:00;docs");
    home
}

fn service_once(home: &TestHome) -> Output {
    common::run(
        SERVICE,
        &["--once", "--home", home.path().to_str().unwrap()],
        None,
    )
}

/// Asserts that `out` failed with `code` and one line naming the link as the reason.
fn refused(out: &Output, code: i32, what: &str) {
    let err = out.failure(code);
    assert!(err.contains("symbolic link"), "{what}: {err}");
}

/// Each file, a link to an existing file and to a missing one: the command fails with an
/// error that says so, or carries on without the file, and the targets are untouched.
#[test]
fn links_planted_at_the_homes_files_are_never_followed() {
    type Check = fn(&TestHome, &str);
    let cases: Vec<(&str, &[&str], Check)> = vec![
        (".backup_schedules.lock", &[], |home, what| {
            refused(&home.manager(&["create", "data;04:00;more"]), 1, what);
        }),
        (".backup_state.lock", &[], |home, what| {
            refused(&home.manager(&["create", "data;04:00;more"]), 1, what);
        }),
        (".backup_state.json", &[], |home, what| {
            // The backup is done; its record cannot be kept, which the log says.
            home.manager(&["run", "0"]).success();
            let log = home.manager_log().join("\n");
            assert!(log.contains("symbolic link"), "{what}: {log}");
            home.manager(&["status"]);
        }),
        ("backup_schedules.txt", &[], |home, what| {
            refused(&home.manager(&["list"]), 1, what);
            refused(&home.manager(&["create", "data;04:00;more"]), 1, what);
        }),
        (".backup_service.pid", &[], |home, what| {
            refused(&home.manager(&["start"]), 1, what);
            refused(&home.manager(&["status"]), 4, what);
            let out = service_once(home);
            assert_eq!(out.code(), Some(1), "{what}: {out:#?}");
        }),
        ("logs/backup_manager.log", &[], |home, what| {
            // Without its log the manager goes on, and says so.
            let out = home.manager(&["list"]);
            assert_eq!(out.code(), Some(0), "{what}: {out:#?}");
            assert!(out.stderr.contains("going on without a log"), "{what}");
        }),
        ("logs/backup_service.log", &[], |home, what| {
            refused(&home.manager(&["start"]), 1, what);
            let out = service_once(home);
            assert_eq!(out.code(), Some(1), "{what}: {out:#?}");
        }),
        ("backups/.docs.lock", &["--keep", "2"], |home, what| {
            refused(&home.manager(&["run", "0"]), 1, what);
        }),
        ("backups/.docs.record", &["--incremental"], |home, what| {
            // The record cannot be read: a full backup replaces the link with a record.
            let out = home.manager(&["run", "0"]);
            assert_eq!(out.code(), Some(3), "{what}: {out:#?}");
            let record = home.path().join("backups/.docs.record");
            assert!(fs::symlink_metadata(record).unwrap().is_file(), "{what}");
        }),
    ];
    for (rel, options, check) in cases {
        for missing in [false, true] {
            let home = home_with(options);
            let victims = Victims::new();
            let target = if missing {
                &victims.missing
            } else {
                &victims.existing
            };
            let what = format!("a link at {rel} to {}", target.display());
            plant(&home, rel, target);
            check(&home, &what);
            victims.assert_untouched(&what);
        }
    }
}

/// The temporary files are named with the writer's pid, which a planted link can guess:
/// a link there is removed (in backups/) or refused, never written through.
#[test]
fn links_planted_at_the_temporary_names_are_never_written_through() {
    for rel in [
        "backups/.docs.tar.$$.partial",
        ".backup_state.json.$$.partial",
        ".backup_schedules.txt.$$.partial",
    ] {
        let home = home_with(&[]);
        let victims = Victims::new();
        // `exec` keeps the shell's pid, so $$ is the manager's.
        let at = home.path().join(rel);
        let script = format!(
            "ln -s '{}' \"{}\" && exec '{MANAGER}' --home '{}' \"$@\"",
            victims.existing.display(),
            at.display(),
            home.path().display()
        );
        for args in [["run", "0"], ["create", "data;05:00;other"]] {
            let out = Command::new("sh")
                .args(["-c", &script, "sh"])
                .args(args)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.code() == Some(0) || stderr.contains("File exists"),
                "{rel}, {args:?}: {stderr}"
            );
            victims.assert_untouched(rel);
            // Whatever was left there is the link, or nothing.
            for entry in fs::read_dir(at.parent().unwrap()).unwrap() {
                let path = entry.unwrap().path();
                if path.to_string_lossy().ends_with(".partial") {
                    assert!(
                        fs::symlink_metadata(&path).unwrap().is_symlink(),
                        "{path:?}"
                    );
                    fs::remove_file(path).unwrap();
                }
            }
        }
    }
}

#[test]
fn backups_as_a_link_is_followed_only_to_a_folder_no_one_else_can_change() {
    // A folder on another disk that only its owner can write: accepted.
    let home = TestHome::new();
    home.write("data/file.txt", "x\n");
    let (_good_dir, good) = common::outside_folder(0o755);
    symlink(&good, home.path().join("backups")).unwrap();
    home.back_up(&["--keep", "2"], "data;03:00;docs");
    assert!(good.join("docs.tar").is_file());
    assert!(good.join(".docs.lock").is_file());
    assert_eq!(home.manager(&["backups"]).success().stdout, "docs.tar\n");

    // One that anyone can write, or under a folder anyone can write: refused, naming
    // the folder and why, and nothing is written there.
    let (_open_dir, open) = common::outside_folder(0o777);
    let in_tmp = tempfile::tempdir().unwrap();
    for (target, why) in [
        (
            open.clone(),
            format!(
                "{} is writable by group or others (mode 777)",
                open.display()
            ),
        ),
        (
            in_tmp.path().to_path_buf(),
            "/tmp is writable by group or others (mode 1777)".to_owned(),
        ),
    ] {
        let home = TestHome::new();
        home.write("data/file.txt", "x\n");
        symlink(&target, home.path().join("backups")).unwrap();
        home.manager(&["create", "data;03:00;docs"]).success();
        let err = home.manager(&["run", "0"]).failure(1).to_owned();
        assert!(err.contains("is a symbolic link to"), "{err}");
        assert!(err.ends_with(&why), "{err}");
        assert_eq!(fs::read_dir(&target).unwrap().count(), 0, "{err}");
        service_once(&home);
        assert_eq!(fs::read_dir(&target).unwrap().count(), 0);
        let log = home.service_log().join("\n");
        assert!(log.contains(&why), "{log}");
    }
}

#[test]
fn logs_as_a_link_is_followed_only_to_a_folder_no_one_else_can_change() {
    let home = TestHome::new();
    let (_good_dir, good) = common::outside_folder(0o755);
    symlink(&good, home.path().join("logs")).unwrap();
    home.manager(&["create", "data;03:00;docs"]).success();
    assert!(
        fs::read_to_string(good.join("backup_manager.log"))
            .unwrap()
            .contains("New schedule added: data;03:00;docs")
    );

    let home = TestHome::new();
    let (_open_dir, open) = common::outside_folder(0o777);
    symlink(&open, home.path().join("logs")).unwrap();
    let out = home.manager(&["create", "data;03:00;docs"]);
    assert!(
        out.stderr.contains("going on without a log")
            && out
                .stderr
                .contains("is writable by group or others (mode 777)"),
        "{out:#?}"
    );
    let out = service_once(&home);
    assert_eq!(out.code(), Some(1), "{out:#?}");
    assert_eq!(fs::read_dir(&open).unwrap().count(), 0);
}
