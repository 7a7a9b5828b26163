//! Choosing what goes in: `--exclude-from FILE`, `--exclude-larger-than SIZE`,
//! `--one-file-system` and `run --dry-run`, through the real binary, with the archives
//! read by GNU tar.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::{TestHome, has_message, tar_list};

fn line(home: &TestHome, index: usize) -> String {
    let text = String::from_utf8(home.schedule_bytes().unwrap()).unwrap();
    text.lines().nth(index).unwrap().to_owned()
}

#[test]
fn an_exclude_file_is_read_at_each_backup_and_a_missing_one_fails_it() {
    let home = TestHome::new();
    for file in [
        "src/a.rs",
        "src/a.o",
        "src/keep.o",
        "build/out",
        "notes.txt",
    ] {
        home.write(&format!("data/{file}"), file);
    }
    let list = home.path().join("excludes.txt");
    fs::write(&list, "# build output\n*.o\n\n!keep.o\r\n/build/\n").unwrap();
    let list_arg = list.to_str().unwrap();
    home.back_up(&["--exclude-from", list_arg], "data;02:00;d");
    assert_eq!(
        line(&home, 0),
        format!("data;02:00;d;exclude-from={list_arg}")
    );
    let archive = home.archive_path("d.tar");
    assert_eq!(
        tar_list(&archive),
        [
            "data/",
            "data/notes.txt",
            "data/src/",
            "data/src/a.rs",
            "data/src/keep.o"
        ]
    );
    // Read again at the next backup: a pattern added is applied.
    fs::write(&list, "*.o\n/build/\nnotes.txt\n").unwrap();
    home.run_ok(0);
    assert_eq!(tar_list(&archive), ["data/", "data/src/", "data/src/a.rs"]);
    // Gone: the backup fails, naming the file, and the archive before stays.
    let before = fs::read(&archive).unwrap();
    fs::remove_file(&list).unwrap();
    let err = home.manager(&["run", "0"]).failure(1).to_owned();
    assert_eq!(
        err,
        format!(
            "backup_manager: backup of data into backups/d.tar failed: reading exclude file \
             {list_arg}: No such file or directory (os error 2)"
        )
    );
    assert!(has_message(
        &home.manager_log(),
        &format!("Error: {}", err.strip_prefix("backup_manager: ").unwrap())
    ));
    assert_eq!(fs::read(&archive).unwrap(), before);
    // A link in its place is not followed.
    std::os::unix::fs::symlink(home.path().join("elsewhere"), &list).unwrap();
    fs::write(home.path().join("elsewhere"), "*.o\n").unwrap();
    let err = home.manager(&["run", "0"]).failure(1).to_owned();
    assert!(err.contains("symbolic link"), "{err}");
}

#[test]
fn create_reads_the_exclude_file_as_a_backup_would() {
    let home = TestHome::new();
    home.write("data/a", "a");
    // A bad pattern is refused, naming the file and the line; nothing is written.
    home.write("bad.txt", "ok\nsrc/{a,b\n");
    let err = home
        .manager(&["create", "--exclude-from", "bad.txt", "data;02:00;d"])
        .failure(1)
        .to_owned();
    assert!(err.contains("bad.txt line 2"), "{err}");
    assert_eq!(home.schedule_bytes(), None);
    // A missing one is allowed, with a warning, as a PATH not there yet is.
    let out = home.manager(&["create", "--exclude-from", "later.txt", "data;02:00;d"]);
    out.success();
    assert!(
        out.stderr.contains("later.txt does not exist yet"),
        "{out:#?}"
    );
    // In the home a relative FILE stays relative (to the home); elsewhere it is made
    // absolute from the current folder, as PATH is.
    assert_eq!(line(&home, 0), "data;02:00;d;exclude-from=later.txt");
    let elsewhere = tempfile::tempdir().unwrap();
    fs::write(elsewhere.path().join("x.txt"), "*.o\n").unwrap();
    let out = common::run(
        common::MANAGER,
        &[
            "--home",
            home.path().to_str().unwrap(),
            "create",
            "--exclude-from",
            "x.txt",
            &format!("{}/data;03:00;e", home.path().display()),
        ],
        Some(elsewhere.path()),
    );
    out.success();
    let absolute = fs::canonicalize(elsewhere.path()).unwrap().join("x.txt");
    assert!(
        line(&home, 1).ends_with(&format!(";exclude-from={}", absolute.display())),
        "{}",
        line(&home, 1)
    );
    // Edited from there, the FILE already on a line stays as written.
    let out = common::run(
        common::MANAGER,
        &[
            "--home",
            home.path().to_str().unwrap(),
            "edit",
            "0",
            "--time",
            "05:00",
        ],
        Some(elsewhere.path()),
    );
    out.success();
    assert_eq!(line(&home, 0), "data;05:00;d;exclude-from=later.txt");
}

#[test]
fn files_larger_than_the_limit_are_left_out_plain_and_incremental() {
    let home = TestHome::new();
    home.write("data/small", vec![b's'; 1024]);
    home.write("data/large", vec![b'l'; 1025]);
    home.write("data/sub/huge", vec![b'h'; 3 << 20]);
    home.back_up(&["--exclude-larger-than", "1K"], "data;02:00;d");
    assert_eq!(line(&home, 0), "data;02:00;d;exclude-larger-than=1K");
    assert_eq!(
        tar_list(&home.archive_path("d.tar")),
        ["data/", "data/small", "data/sub/"]
    );
    home.back_up(
        &["--exclude-larger-than", "2m", "--incremental"],
        "data;03:00;i",
    );
    assert_eq!(
        line(&home, 1),
        "data;03:00;i;exclude-larger-than=2M;incremental"
    );
    let listed = tar_list(&home.archive_path("i.tar"));
    assert!(listed.contains(&"data/large".to_owned()), "{listed:?}");
    assert!(!listed.iter().any(|n| n.contains("huge")), "{listed:?}");
    // Restored with its chain, it holds what went in.
    let dest = tempfile::tempdir().unwrap();
    let r = dest.path().join("r");
    home.manager(&["restore", "i", r.to_str().unwrap()])
        .success();
    assert!(r.join("data/large").exists() && !r.join("data/sub/huge").exists());
    for bad in ["10X", "0", "1.5G", ""] {
        let out = home.manager(&["create", "--exclude-larger-than", bad, "data;04:00;x"]);
        assert_eq!(out.code(), Some(2), "{bad:?}: {out:#?}");
    }
    // Written by hand, a bad size makes the line malformed.
    fs::write(
        home.path().join("backup_schedules.txt"),
        "data;02:00;d;exclude-larger-than=lots\n",
    )
    .unwrap();
    let out = home.manager(&["list"]);
    assert!(
        out.stderr.contains("exclude-larger-than=\"lots\""),
        "{out:#?}"
    );
}

/// A tmpfs mounted at `at`, unmounted when dropped; `None` (with a note) where mounting
/// is not allowed.
struct Mounted(std::path::PathBuf);

impl Mounted {
    fn tmpfs(at: &Path) -> Option<Self> {
        fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
            .arg(at)
            .output();
        match out {
            Ok(out) if out.status.success() => Some(Mounted(at.to_path_buf())),
            other => {
                eprintln!("note: cannot mount a tmpfs here ({other:?}); test skipped");
                None
            }
        }
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn one_file_system_stores_a_mount_point_empty() {
    let home = TestHome::new();
    home.write("data/a", "a");
    let Some(_mounted) = Mounted::tmpfs(&home.path().join("data/mnt")) else {
        return;
    };
    home.write("data/mnt/inside", "other file system");
    home.write("data/mnt/deep/x", "x");
    home.back_up(&["--one-file-system"], "data;02:00;one");
    assert_eq!(line(&home, 0), "data;02:00;one;one-file-system");
    assert_eq!(
        tar_list(&home.archive_path("one.tar")),
        ["data/", "data/a", "data/mnt/"]
    );
    home.back_up(&[], "data;02:00;all");
    assert_eq!(
        tar_list(&home.archive_path("all.tar")),
        [
            "data/",
            "data/a",
            "data/mnt/",
            "data/mnt/deep/",
            "data/mnt/deep/x",
            "data/mnt/inside"
        ]
    );
    // In a chain, the mount point is an empty folder listing too.
    home.back_up(&["--one-file-system", "--incremental"], "data;02:00;chain");
    home.run_ok(2);
    let listed = tar_list(&home.archive_path("chain.tar"));
    assert!(listed.contains(&"data/mnt/".to_owned()), "{listed:?}");
    assert!(!listed.iter().any(|n| n.contains("inside")), "{listed:?}");
    let dest = tempfile::tempdir().unwrap();
    let r = dest.path().join("r");
    home.manager(&["restore", "chain", r.to_str().unwrap()])
        .success();
    assert!(r.join("data/mnt").is_dir() && !r.join("data/mnt/inside").exists());
}

#[test]
fn a_dry_run_lists_what_a_backup_would_hold_and_writes_nothing() {
    let home = TestHome::new();
    home.write("data/a.txt", "hello");
    home.write("data/b.log", vec![b'x'; 2048]);
    home.write("data/sub/c", "c");
    home.manager(&["create", "--exclude", "*.log", "data;02:00;d"])
        .success();
    let state = fs::read(home.path().join(".backup_state.json")).unwrap();
    let log = home.manager_log();
    let out = home.manager(&["run", "--dry-run", "d"]);
    out.success();
    assert_eq!(
        out.stdout_lines(),
        ["data/", "data/a.txt", "data/sub/", "data/sub/c"]
    );
    assert_eq!(
        out.stderr,
        "backup_manager: dry run: 4 entries would go into backups/d.tar, 6 B of file data; \
         nothing was written\n"
    );
    assert!(
        !home.path().join("backups").exists(),
        "no archive, no folder"
    );
    assert_eq!(
        fs::read(home.path().join(".backup_state.json")).unwrap(),
        state
    );
    let new_lines = &home.manager_log()[log.len()..];
    assert_eq!(
        new_lines,
        ["Dry run of schedule 0: data;02:00;d;exclude=*.log"]
    );
    // The same entries as the backup then holds.
    home.run_ok(0);
    assert_eq!(tar_list(&home.archive_path("d.tar")), out.stdout_lines());
    // A source that cannot be read fails it, as it would the backup.
    home.manager(&["create", "nothing;02:00;n"]).success();
    let err = home
        .manager(&["run", "--dry-run", "n"])
        .failure(1)
        .to_owned();
    assert!(err.contains("dry run of nothing"), "{err}");
}

#[test]
fn a_dry_run_runs_no_hook() {
    use std::os::unix::fs::PermissionsExt;
    // A trusted home, where hooks run.
    let home = TestHome::trusted();
    home.write("data/a", "a");
    home.write("hooks/before-backup", "#!/bin/sh\necho ran >> hook-ran\n");
    let hook = home.path().join("hooks/before-backup");
    fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).unwrap();
    home.manager(&["create", "data;02:00;d"]).success();
    home.manager(&["run", "--dry-run", "0"]).success();
    assert!(!home.path().join("hook-ran").exists());
    home.manager(&["run", "0"]).success();
    assert_eq!(
        fs::read_to_string(home.path().join("hook-ran")).unwrap(),
        "ran\n"
    );
}

#[test]
fn a_dry_run_of_a_chain_lists_what_the_next_incremental_would_store() {
    let home = TestHome::new();
    home.write("data/a", "a");
    home.write("data/sub/b", "b");
    home.manager(&["create", "--incremental", "data;02:00;d"])
        .success();
    let out = home.manager(&["run", "--dry-run", "d"]);
    out.success();
    assert_eq!(
        out.stdout_lines(),
        ["data/", "data/a", "data/sub/", "data/sub/b"]
    );
    assert!(
        out.stderr.contains("(the full backup of a chain)"),
        "{out:#?}"
    );
    assert!(!home.path().join("backups").exists());
    home.run_ok(0);
    let record = home.archive_path(".d.record");
    let before = fs::read(&record).unwrap();
    let listing = fs::read_dir(home.path().join("backups")).unwrap().count();
    home.write("data/sub/b", "changed, and longer");
    let out = home.manager(&["run", "--dry-run", "d"]);
    out.success();
    assert_eq!(out.stdout_lines(), ["data/", "data/sub/", "data/sub/b"]);
    assert!(out.stderr.contains("(an incremental backup: "), "{out:#?}");
    assert_eq!(
        fs::read(&record).unwrap(),
        before,
        "the record is untouched"
    );
    let now = fs::read_dir(home.path().join("backups")).unwrap().count();
    assert_eq!(now, listing, "nothing new in backups/");
    // The backup then stores just that.
    home.run_ok(0);
    let stored: Vec<String> = tar_list(&home.archive_path("d.tar"))
        .into_iter()
        .filter(|n| n.starts_with("data"))
        .collect();
    assert_eq!(stored, out.stdout_lines());
}
