//! The backups as a read-only file system, through the binaries: every generation of a
//! plain, a zstd and an incremental schedule compared with `diff -r` against `restore
//! --at` of it and with `stat`; writes refused; a generation pruned while mounted gone
//! from the listing while a file open from it reads on; SIGTERM, `fusermount3 -u` and
//! `--daemon`. Skipped, with a note, where this machine has no FUSE.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{ChildGuard, MANAGER, TestHome, wait_for};

/// Whether FUSE can be used here; if not, says so.
fn fuse_here() -> bool {
    let there = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
        .is_ok()
        && (nix::unistd::geteuid().is_root() || which("fusermount3"));
    if !there {
        eprintln!("note: no usable /dev/fuse or fusermount3 here: the mount tests are skipped");
    }
    there
}

fn which(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether a mount of ours is at `dir`.
fn mounted(dir: &Path) -> bool {
    let dir = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(dir.to_str().unwrap()) && l.contains(" - fuse"))
}

/// `backup_manager mount DIR NAMES...` running in the foreground.
struct Mounted {
    child: ChildGuard,
    dir: PathBuf,
}

impl Mounted {
    fn start(home: &TestHome, names: &[&str]) -> Mounted {
        let dir = home.path().parent().unwrap().join(format!(
            "mnt-{}",
            home.path().file_name().unwrap().to_string_lossy()
        ));
        fs::create_dir_all(&dir).unwrap();
        let child = Command::new(MANAGER)
            .arg("--home")
            .arg(home.path())
            .arg("mount")
            .arg(&dir)
            .args(names)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut child = ChildGuard(child);
        wait_for("the mount", || {
            assert!(child.is_running(), "mount exited: {:?}", child.0.wait());
            mounted(&dir)
        });
        Mounted { child, dir }
    }

    fn generation(&self, name: &str, label: &str) -> PathBuf {
        self.dir.join(name).join(label)
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if mounted(&self.dir) {
            let _ = Command::new("fusermount3")
                .arg("-u")
                .arg(&self.dir)
                .status();
        }
        let _ = fs::remove_dir(&self.dir);
    }
}

/// The generation folders of NAME in the mount, newest first, without `latest`.
fn labels(mount: &Mounted, name: &str) -> Vec<String> {
    let mut found: Vec<String> = fs::read_dir(mount.dir.join(name))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "latest")
        .collect();
    found.sort();
    found.reverse();
    found
}

/// A tree with a symlink, a hard link, a private file and an empty folder.
fn tree(home: &TestHome) {
    home.write("src/a.txt", "one\n");
    home.write("src/sub/b.txt", "nested\n");
    home.write("src/private", "secret\n");
    fs::set_permissions(
        home.path().join("src/private"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    fs::create_dir_all(home.path().join("src/empty")).unwrap();
    std::os::unix::fs::symlink("a.txt", home.path().join("src/link")).unwrap();
    fs::hard_link(home.path().join("src/a.txt"), home.path().join("src/hard")).unwrap();
}

/// `diff -r` finds `restored` and `mounted` the same, links compared as links.
fn same_tree(restored: &Path, mounted: &Path, what: &str) {
    let diff = Command::new("diff")
        .args(["-r", "--no-dereference"])
        .arg(restored)
        .arg(mounted)
        .output()
        .unwrap();
    assert!(diff.status.success(), "{what}: {diff:?}");
}

/// Every file of `restored` has, in `mounted`, the same mode, size, owner and mtime.
fn same_metadata(restored: &Path, mounted: &Path) {
    for entry in fs::read_dir(restored).unwrap() {
        let path = entry.unwrap().path();
        let other = mounted.join(path.file_name().unwrap());
        let (a, b) = (
            fs::symlink_metadata(&path).unwrap(),
            fs::symlink_metadata(&other).unwrap(),
        );
        let facts = |m: &fs::Metadata| (m.mode(), m.uid(), m.gid(), m.mtime());
        assert_eq!(facts(&a), facts(&b), "{}", other.display());
        if a.is_file() {
            assert_eq!(a.len(), b.len(), "{}", other.display());
        }
        if a.is_dir() {
            same_metadata(&path, &other);
        }
    }
}

#[test]
fn every_generation_reads_as_restore_gives_it() {
    if !fuse_here() {
        return;
    }
    let home = TestHome::new();
    tree(&home);
    let schedules = [
        ("plain", ""),
        ("z", "--compress zstd"),
        ("inc", "--incremental"),
    ];
    for (i, (name, flags)) in schedules.iter().enumerate() {
        let mut args = vec!["--keep", "5"];
        args.extend(flags.split_whitespace());
        home.back_up(&args, &format!("src;02:0{i};{name}"));
    }
    home.write("src/a.txt", "two, longer\n");
    home.write("src/new.txt", "new\n");
    // A time to the nanosecond, which the archives keep and the mount shows.
    let a_txt = home.path().join("src/a.txt");
    let touched = Command::new("touch")
        .args(["-d", "@1700000000.123456789"])
        .arg(&a_txt)
        .status()
        .unwrap();
    assert!(touched.success());
    (0..3).for_each(|i| drop(home.run_ok(i)));
    fs::remove_file(home.path().join("src/sub/b.txt")).unwrap();
    (0..3).for_each(|i| drop(home.run_ok(i)));
    let mount = Mounted::start(&home, &[]);
    for (name, _) in schedules {
        let labels = labels(&mount, name);
        assert_eq!(labels.len(), 3, "{name}: {labels:?}");
        let latest = fs::read_link(mount.dir.join(name).join("latest")).unwrap();
        assert_eq!(latest, Path::new(&labels[0]));
        for label in &labels {
            let dest = home.path().join(format!("restored-{name}-{label}"));
            let dest_text = dest.to_str().unwrap();
            home.manager(&["restore", name, dest_text, "--at", label])
                .success();
            let seen = mount.generation(name, label);
            same_tree(&dest, &seen, &format!("{name} {label}"));
            same_metadata(&dest, &seen);
        }
        let shown = mount.dir.join(name).join("latest/src/a.txt");
        assert_eq!(stat_time(&shown), stat_time(&a_txt), "{name}");
        assert!(stat_time(&shown).contains(".123456789 "), "{name}");
    }
    let newest = mount.dir.join("z/latest/src");
    let (a, hard) = (
        fs::metadata(newest.join("a.txt")).unwrap(),
        fs::metadata(newest.join("hard")).unwrap(),
    );
    assert_eq!(
        (a.ino(), a.nlink()),
        (hard.ino(), 2),
        "a hard link shares its inode"
    );
    refuses_writes(&newest);
    unmounts_on_sigterm(mount);
}

/// The mtime of `path` as `stat` shows it, to the nanosecond.
fn stat_time(path: &Path) -> String {
    let out = Command::new("stat")
        .args(["-c", "%y"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// Nothing can be written in the mount.
fn refuses_writes(folder: &Path) {
    let erofs = |e: std::io::Error| e.raw_os_error() == Some(libc::EROFS);
    let write = fs::OpenOptions::new()
        .append(true)
        .open(folder.join("a.txt"));
    assert!(write.is_err_and(erofs), "a file opened for writing");
    assert!(fs::write(folder.join("made"), "x").is_err_and(erofs));
    assert!(fs::create_dir(folder.join("made")).is_err_and(erofs));
    assert!(fs::remove_file(folder.join("a.txt")).is_err_and(erofs));
}

/// SIGTERM unmounts, and the mount ends well.
fn unmounts_on_sigterm(mut mount: Mounted) {
    let pid = nix::unistd::Pid::from_raw(mount.child.pid());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = mount.child.wait();
    assert!(status.success(), "{status}");
    assert!(!mounted(&mount.dir), "still mounted after SIGTERM");
}

#[test]
fn a_generation_pruned_while_mounted_goes_and_an_open_file_reads_on() {
    if !fuse_here() {
        return;
    }
    let home = TestHome::new();
    home.write("src/f", "first\n");
    home.back_up(&["--keep", "2"], "src;02:00;p");
    home.write("src/f", "second\n");
    home.run_ok(0);
    let mut mount = Mounted::start(&home, &["p"]);
    let before = labels(&mount, "p");
    assert_eq!(before.len(), 2);
    let open = fs::File::open(mount.generation("p", &before[1]).join("src/f")).unwrap();
    home.write("src/f", "third\n");
    home.run_ok(0);
    wait_for(
        "the pruned generation to go and the new one to come",
        || {
            let now = labels(&mount, "p");
            now.len() == 2 && !now.contains(&before[1]) && now.contains(&before[0])
        },
    );
    assert_eq!(std::io::read_to_string(open).unwrap(), "first\n");
    let newest = labels(&mount, "p").remove(0);
    let read = fs::read_to_string(mount.generation("p", &newest).join("src/f")).unwrap();
    assert_eq!(read, "third\n");
    // Unmounted from outside: the mount ends well.
    let unmount = Command::new("fusermount3")
        .arg("-u")
        .arg(&mount.dir)
        .status();
    assert!(unmount.unwrap().success());
    assert!(mount.child.wait().success());
    assert!(!mounted(&mount.dir));
}

#[test]
fn daemon_returns_once_mounted_and_bad_places_and_names_are_refused() {
    if !fuse_here() {
        return;
    }
    let home = TestHome::new();
    home.write("src/f", "data\n");
    home.back_up(&[], "src;02:00;p");
    let dir = home.path().parent().unwrap().join(format!(
        "daemon-{}",
        home.path().file_name().unwrap().to_string_lossy()
    ));
    fs::create_dir_all(&dir).unwrap();
    let dir_text = dir.to_str().unwrap();
    let out = home.manager(&["mount", dir_text, "--daemon"]);
    out.success();
    assert!(mounted(&dir), "{out:?}");
    assert_eq!(
        fs::read_to_string(dir.join("p/latest/src/f")).unwrap(),
        "data\n"
    );
    // Mounted already: refused, and the mount stays.
    let again = home.manager(&["mount", dir_text]);
    assert!(again.failure(1).contains("already"), "{again:?}");
    assert!(
        Command::new("fusermount3")
            .arg("-u")
            .arg(&dir)
            .status()
            .unwrap()
            .success()
    );
    wait_for("the daemon's mount to go", || !mounted(&dir));
    fs::remove_dir(&dir).unwrap();
    let home_text = home.path().to_str().unwrap();
    let out = home.manager(&["mount", home_text]);
    let err = out.failure(1);
    assert!(err.contains("would hide this home"), "{err}");
    let elsewhere = home.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    let out = home.manager(&["mount", elsewhere.to_str().unwrap(), "nope"]);
    let err = out.failure(1);
    assert!(
        err.contains("no archive of a schedule named \"nope\""),
        "{err}"
    );
    assert!(!mounted(&elsewhere));
}

#[test]
fn an_encrypted_schedule_is_shown_only_with_its_identity() {
    if !fuse_here() || !which("age-keygen") {
        return;
    }
    let home = TestHome::new();
    let (key, public) = common::age_key(home.path(), "key.txt");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
    home.write("src/s.txt", "sealed\n");
    home.back_up(
        &["--compress", "zstd", "--encrypt", &public],
        "src;02:00;enc",
    );
    home.back_up(&[], "src;02:00;plain");
    let mount = Mounted::start(&home, &[]);
    assert!(mount.dir.join("plain/latest/src/s.txt").exists());
    assert!(
        !mount.dir.join("enc").exists(),
        "shown without its identity"
    );
    drop(mount);
    let dir = home.path().parent().unwrap().join(format!(
        "sealed-{}",
        home.path().file_name().unwrap().to_string_lossy()
    ));
    fs::create_dir_all(&dir).unwrap();
    let (dir_text, key_text) = (dir.to_str().unwrap(), key.to_str().unwrap());
    let out = home.manager(&["mount", dir_text, "enc", "--identity", key_text, "--daemon"]);
    out.success();
    let read = fs::read_to_string(dir.join("enc/latest/src/s.txt"));
    let unmount = Command::new("fusermount3").arg("-u").arg(&dir).status();
    assert_eq!(read.unwrap(), "sealed\n");
    assert!(unmount.unwrap().success());
    wait_for("the mount to go", || !mounted(&dir));
    fs::remove_dir(&dir).unwrap();
}

#[test]
fn another_tools_archive_with_a_sparse_file_reads_as_restore_gives_it() {
    if !fuse_here() {
        return;
    }
    let home = TestHome::new();
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/foreign/posix-sparse-1.0.tar");
    fs::create_dir_all(home.path().join("backups")).unwrap();
    let archive = home.archive_path("sp.tar");
    fs::copy(&fixture, &archive).unwrap();
    fs::set_permissions(&archive, fs::Permissions::from_mode(0o600)).unwrap();
    let dest = home.path().join("restored");
    home.manager(&["restore", "sp", dest.to_str().unwrap()])
        .success();
    let mount = Mounted::start(&home, &[]);
    let label = labels(&mount, "sp").remove(0);
    let seen = mount.generation("sp", &label);
    same_tree(&dest, &seen, "sp");
    // Its holes read as zeros from anywhere in the file.
    let sparse = fs::read(seen.join("tree/sparse.bin")).unwrap();
    let restored = fs::read(dest.join("tree/sparse.bin")).unwrap();
    assert_eq!(sparse, restored);
    assert_eq!(sparse.len(), 65536);
    // And read from the middle first, in a file opened again.
    let file = fs::File::open(seen.join("tree/sparse.bin")).unwrap();
    for at in [61440, 32768, 4096, 0] {
        let mut part = vec![1u8; 4096];
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut part, at).unwrap();
        assert_eq!(part, restored[at as usize..][..4096], "at {at}");
    }
}
