//! Hooks run only what was checked: every folder from / down to the hook trusted, the file
//! checked the very file run, and nothing of the caller's left open in it.

mod common;

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{MANAGER, TestHome};

/// Writes an executable file at `path` with `mode`, making its folder.
fn script(path: &Path, text: &str, mode: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// A trusted home with a schedule of `data`.
fn home() -> TestHome {
    let home = TestHome::trusted();
    home.write("data/file.txt", "x\n");
    home.manager(&["create", "data;03:00;docs"]).success();
    home
}

/// The hook errors of the manager's log.
fn skipped(home: &TestHome) -> Vec<String> {
    home.manager_log()
        .into_iter()
        .filter(|m| m.starts_with("Error: hook after-backup skipped: "))
        .collect()
}

/// A script hook that appends `word` to `ran` in the home.
fn appending(word: &str) -> String {
    format!("#!/bin/sh\necho {word} >> ran\n")
}

/// A second process renames a file that fails the checks (writable by anyone) over the
/// hook, and back, in a tight loop, while backups run: whatever the timing, the file run
/// is the one checked, so the other never runs.
#[test]
fn a_hook_swapped_while_it_is_checked_never_runs_the_swapped_file() {
    let home = home();
    let hooks = home.path().join("hooks");
    script(&hooks.join(".good"), &appending("good"), 0o755);
    script(&hooks.join(".evil"), &appending("evil"), 0o777);
    fs::hard_link(hooks.join(".good"), hooks.join("after-backup")).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (stop, hooks) = (stop.clone(), hooks.clone());
        std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for (from, aside) in [(".evil", ".e"), (".good", ".g")] {
                    let _ = fs::hard_link(hooks.join(from), hooks.join(aside));
                    let _ = fs::rename(hooks.join(aside), hooks.join("after-backup"));
                }
                swaps += 1;
            }
            swaps
        })
    };
    let ran = home.path().join("ran");
    let mut runs = 0;
    // Until the race was seen both ways, with a bound.
    while runs < 200 {
        home.manager(&["run", "0"]).success();
        runs += 1;
        let words = fs::read_to_string(&ran).unwrap_or_default();
        assert!(!words.contains("evil"), "the swapped file ran, run {runs}");
        if runs >= 30 && words.contains("good") && !skipped(&home).is_empty() {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    let words = fs::read_to_string(&ran).unwrap_or_default();
    assert!(!words.contains("evil"), "the swapped file ran");
    assert!(
        words.contains("good"),
        "the checked hook never ran in {runs} runs"
    );
    let refused = skipped(&home);
    assert!(
        refused.iter().all(|m| m
            .ends_with("after-backup is writable by group or others (mode 777)")
            || m.ends_with("after-backup was replaced while it was checked")),
        "{refused:#?}"
    );
    eprintln!(
        "{runs} runs, {swaps} swaps: {} ran the hook, {} refused it",
        words.lines().count(),
        refused.len()
    );
}

/// A hook that is a link is checked where it really is: every folder down to its file.
#[test]
fn a_hook_linked_into_a_folder_others_can_write_is_refused() {
    let (_good_dir, good) = common::outside_folder(0o755);
    let (_open_dir, open) = common::outside_folder(0o777);
    let in_tmp = tempfile::tempdir().unwrap();
    for (folder, why) in [
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
        (good.clone(), String::new()),
    ] {
        let home = home();
        let target = folder.join("upload");
        script(&target, &appending("linked"), 0o755);
        fs::create_dir(home.path().join("hooks")).unwrap();
        symlink(&target, home.path().join("hooks/after-backup")).unwrap();
        home.manager(&["run", "0"]).success();
        let ran = fs::read_to_string(home.path().join("ran")).unwrap_or_default();
        if why.is_empty() {
            assert_eq!(ran, "linked\n", "a hook linked to {}", folder.display());
            assert!(skipped(&home).is_empty());
        } else {
            assert_eq!(ran, "", "a hook linked to {} ran", folder.display());
            let refused = skipped(&home);
            assert!(
                refused.iter().any(|m| m.ends_with(&why)),
                "{why}: {refused:#?}"
            );
        }
        fs::remove_file(target).unwrap();
    }
}

/// A home that others can write (or that lies in such a folder) runs no hooks, and the
/// log says why.
#[test]
fn a_home_others_can_write_runs_no_hooks() {
    let home = home();
    script(
        &home.path().join("hooks/after-backup"),
        &appending("ran"),
        0o755,
    );
    let root = home.path().display().to_string();
    for mode in [0o777, 0o775, 0o1777] {
        fs::set_permissions(home.path(), fs::Permissions::from_mode(mode)).unwrap();
        home.manager(&["run", "0"]).success();
        assert!(!home.path().join("ran").exists(), "mode {mode:o} ran");
        let why = format!("{root} is writable by group or others (mode {mode:o})");
        assert!(skipped(&home).iter().any(|m| m.ends_with(&why)), "{why}");
    }
    fs::set_permissions(home.path(), fs::Permissions::from_mode(0o755)).unwrap();
    home.manager(&["run", "0"]).success();
    assert!(home.path().join("ran").exists());

    // In /tmp, which anyone can write.
    let home = TestHome::new();
    home.write("data/file.txt", "x\n");
    home.manager(&["create", "data;03:00;docs"]).success();
    script(
        &home.path().join("hooks/after-backup"),
        &appending("ran"),
        0o755,
    );
    home.manager(&["run", "0"]).success();
    assert!(!home.path().join("ran").exists());
    let why = "/tmp is writable by group or others (mode 1777)";
    assert!(skipped(&home).iter().any(|m| m.ends_with(why)), "{why}");
}

/// `backup_manager run 0` with descriptor 9 open on `held`, as a shell leaves one.
fn run_with_fd_9(home: &TestHome, held: &Path) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "exec 9>'{}'; exec '{MANAGER}' --home '{}' run 0",
            held.display(),
            home.path().display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// A hook gets descriptors 0, 1 and 2 and nothing of its caller's; a script also has its
/// own file open, through which its interpreter reads it.
#[test]
fn a_hook_gets_only_the_standard_descriptors() {
    let home = home();
    let hook = home.path().join("hooks/after-backup");
    script(
        &hook,
        // `exec`: what `ls` lists is what the hook's process holds, without the copies
        // a shell keeps around a redirection.
        "#!/bin/sh\nexec ls -l /proc/self/fd > fds\n",
        0o755,
    );
    let held = home.path().join("held-open");
    run_with_fd_9(&home, &held);
    let fds = fs::read_to_string(home.path().join("fds")).unwrap();
    let mut numbers = Vec::new();
    for line in fds.lines().filter(|l| l.contains(" -> ")) {
        let (left, target) = line.split_once(" -> ").unwrap();
        let fd: i32 = left.rsplit(' ').next().unwrap().parse().unwrap();
        numbers.push(fd);
        // Beyond 2: the hook itself, for its interpreter, or the folder `ls` reads.
        let listing = target.starts_with("/proc/") && target.ends_with("/fd");
        if fd > 2 && !listing {
            assert_eq!(Path::new(target), hook, "descriptor {fd}: {fds}");
        }
    }
    numbers.sort();
    assert!(numbers.starts_with(&[0, 1, 2]), "{fds}");
    assert!(!fds.contains("held-open"), "{fds}");

    // A compiled hook has no script to read: exactly 0, 1 and 2.
    let source = home.path().join("fds.c");
    fs::write(
        &source,
        "#include <fcntl.h>\n#include <stdio.h>\n\
         int main(void) { FILE *out = fopen(\"fds\", \"w\"); int fd;\n\
         for (fd = 0; fd < 4096; fd++) if (fd != fileno(out) && fcntl(fd, F_GETFD) != -1)\n\
         fprintf(out, \"%d\\n\", fd); return 0; }\n",
    )
    .unwrap();
    let compiled = Command::new("cc")
        .arg("-o")
        .arg(&hook)
        .arg(&source)
        .status();
    if !compiled.is_ok_and(|s| s.success()) {
        eprintln!("note: no C compiler here: the check of a compiled hook is skipped");
        return;
    }
    fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).unwrap();
    run_with_fd_9(&home, &held);
    assert_eq!(
        fs::read_to_string(home.path().join("fds")).unwrap(),
        "0\n1\n2\n"
    );
}
