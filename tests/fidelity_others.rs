//! Fidelity with other tools' archives and other users: GNU tar's and bsdtar's own
//! archives with attributes and ACLs restore the same; an attribute no file can have is
//! refused before anything is written; as root, `trusted.*` attributes and file
//! capabilities come back; a user restores attributes and ACLs, and skips `trusted.*`
//! with one warning; a file system that keeps no attributes gives one warning for the whole
//! restore.

mod attrs;
mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use attrs::{fidelity, have, make_tree, our_restore, sh, supported};
use common::TestHome;

#[test]
fn gnu_tars_and_bsdtars_own_archives_restore_the_same() {
    let home = TestHome::new();
    if !supported(&home) {
        return;
    }
    make_tree(&home);
    let want = fidelity(home.path());
    // The schedule's archive, written by GNU tar instead, so that --source knows its tree.
    home.manager(&["create", "src;03:00;gnu"]).success();
    fs::create_dir_all(home.path().join("backups")).unwrap();
    // GNU tar also stores the ACLs as their binary attributes, and atimes and ctimes.
    let args = [
        "--posix",
        "--xattrs",
        "--acls",
        "-cf",
        "backups/gnu.tar",
        "src",
    ];
    sh(home.path(), "tar", &args);
    assert_eq!(our_restore(&home, "gnu"), want);
    home.manager(&["verify", "gnu", "--source"]).success();
    if !have("bsdtar") {
        eprintln!("note: bsdtar is missing; its archives not tested");
        return;
    }
    // bsdtar writes ACLs with ids after the permissions, commas between, the group's own
    // entry in the mode: the ACL's mask must win over it.
    home.manager(&["create", "src;03:00;bsd"]).success();
    let args = [
        "--format=pax",
        "--xattrs",
        "--acls",
        "-cf",
        "backups/bsd.tar",
        "src",
    ];
    sh(home.path(), "bsdtar", &args);
    // But for a time before 1970 with a fraction, which bsdtar writes its own way (`-1.25`
    // for GNU tar's `-0.75`): read as GNU tar reads it, it is a second off.
    let but_old = |text: String| {
        text.replace(
            "src/old 1969-12-31 23:59:58.75",
            "src/old 1969-12-31 23:59:59.25",
        )
    };
    assert_eq!(but_old(our_restore(&home, "bsd")), want);
    let out = home.manager(&["verify", "bsd", "--source"]);
    assert_eq!(out.stdout, "src/old: modification time differs\n");
}

/// An archive of one file whose pax header names an attribute `name`.
fn with_attribute(name: &[u8]) -> Vec<u8> {
    use backup::tar::{Header, Kind};
    let mut header = Header::new(b"f".to_vec(), Kind::File);
    header.mode = 0o644;
    header.extras.xattrs.push((name.to_vec(), b"v".to_vec()));
    let mut out = Vec::new();
    header.encode(&mut out);
    out.extend_from_slice(&[0u8; 1024]);
    out
}

#[test]
fn an_attribute_no_file_can_have_is_refused_before_anything_is_written() {
    let home = TestHome::new();
    fs::create_dir(home.path().join("backups")).unwrap();
    fs::write(
        home.path().join("backups/ok.tar"),
        with_attribute(b"user.fine"),
    )
    .unwrap();
    home.manager(&["verify", "ok.tar"]).success();
    let dest = home.path().join("out");
    for name in [&b"user.a\0b"[..], b"", &[b'u'; 256]] {
        fs::write(home.path().join("backups/bad.tar"), with_attribute(name)).unwrap();
        let out = home.manager(&["restore", "bad.tar", dest.to_str().unwrap()]);
        let err = out.failure(1);
        assert!(
            err.contains("has an extended attribute named") && err.contains("nothing was written"),
            "{err}"
        );
        assert!(!dest.exists());
        let err = home.manager(&["verify", "bad.tar"]).failure(1).to_owned();
        assert!(err.contains("restore would refuse it"), "{err}");
    }
}

#[test]
fn an_attribute_of_another_system_is_said_to_be_so_not_blamed_on_the_file_system() {
    let home = TestHome::new();
    fs::create_dir(home.path().join("backups")).unwrap();
    let mut archive = with_attribute(b"com.apple.quarantine");
    archive.truncate(archive.len() - 1024);
    let mut header = backup::tar::Header::new(b"g".to_vec(), backup::tar::Kind::File);
    header.mode = 0o644;
    header
        .extras
        .xattrs
        .push((b"user.kept".to_vec(), b"1".to_vec()));
    header.encode(&mut archive);
    archive.extend_from_slice(&[0u8; 1024]);
    fs::write(home.path().join("backups/mac.tar"), archive).unwrap();
    let dest = home.path().join("out");
    let out = home.manager(&["restore", "mac.tar", dest.to_str().unwrap()]);
    out.success();
    let warnings: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("warning"))
        .collect();
    assert_eq!(
        warnings,
        [
            "backup_manager: warning: 1 extended attribute not restored: its name is in no \
          namespace Linux has (user, security, trusted, system) (com.apple.quarantine on f)"
        ],
        "{}",
        out.stderr
    );
    if supported(&home) {
        let got = Command::new("getfattr")
            .args(["--only-values", "-n", "user.kept"])
            .arg(dest.join("g"))
            .output()
            .unwrap();
        assert_eq!(got.stdout, b"1", "{got:?}");
    }
}

#[test]
fn as_root_trusted_attributes_and_file_capabilities_come_back() {
    let home = TestHome::new();
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("note: not root; trusted attributes and capabilities not tested");
        return;
    }
    if !supported(&home) {
        return;
    }
    home.write("src/ping", "a program\n");
    let dir = home.path();
    sh(
        dir,
        "setfattr",
        &["-n", "trusted.note", "-v", "kept", "src/ping"],
    );
    // cap_net_raw+ep, as `setcap cap_net_raw+ep` writes it (version 2).
    let cap = "0sAQAAAgAgAAAAAAAAAAAAAAAAAAA=";
    sh(
        dir,
        "setfattr",
        &["-n", "security.capability", "-v", cap, "src/ping"],
    );
    let shown = |root: &Path| {
        let all = sh(
            root,
            "getfattr",
            &["-d", "-m", "^(trusted|security\\.capability)", "src/ping"],
        );
        assert!(all.contains("trusted.note=\"kept\""), "{all}");
        all
    };
    let want = shown(dir);
    home.back_up(&["--compress", "zstd"], "src;03:00;caps");
    let dest = tempfile::tempdir().unwrap();
    let out = home.manager(&["restore", "caps", dest.path().to_str().unwrap()]);
    out.success();
    assert_eq!(shown(dest.path()), want);
}

#[test]
fn a_user_restores_attributes_and_acls_but_no_trusted_ones() {
    let prefix = match common::unprivileged_prefix() {
        Some(prefix) if nix::unistd::Uid::effective().is_root() => prefix,
        _ => {
            eprintln!("note: skipped, it needs root and a way to run a program as another user");
            return;
        }
    };
    let home = TestHome::new();
    if !supported(&home) {
        return;
    }
    make_tree(&home);
    sh(
        home.path(),
        "setfattr",
        &["-n", "trusted.note", "-v", "x", "src/f"],
    );
    home.back_up(&[], "src;03:00;plain");
    let owner = format!("{}:{}", common::UNPRIVILEGED, common::UNPRIVILEGED);
    sh(home.path(), "chown", &["-R", &owner, "."]);
    // Owners aside, which only root restores.
    let shown = |root: &Path| {
        let all = fidelity(root);
        let kept = all
            .lines()
            .filter(|l| !l.starts_with("# owner") && !l.starts_with("# group"));
        kept.collect::<Vec<_>>().join("\n")
    };
    let want = shown(home.path());
    let dest = home.path().join("restored");
    let mut command: Vec<&str> = prefix.iter().map(String::as_str).collect();
    let args = ["--home", home.path().to_str().unwrap(), "restore", "plain"];
    command.extend([common::MANAGER].iter().chain(&args));
    command.push(dest.to_str().unwrap());
    let out = Command::new(command[0])
        .args(&command[1..])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "warning: 1 extended attribute of the security and trusted namespaces not \
             restored: only root sets them (trusted.note on src/f)"
        ),
        "{stderr}"
    );
    assert_eq!(shown(&dest), want);
    let trusted = sh(&dest, "getfattr", &["-d", "-m", "^trusted", "src/f"]);
    assert_eq!(trusted, "");
}

/// Unmounts what a test mounted, however it ends.
struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_file_system_without_attributes_gives_one_warning_for_the_whole_restore() {
    let home = TestHome::new();
    // ramfs keeps no extended attributes, and says it has no room: empty files, at the
    // top, need none.
    let mnt = home.path().join("ramfs");
    fs::create_dir(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "ramfs", "ramfs"])
        .arg(&mnt)
        .output()
        .is_ok_and(|o| o.status.success());
    if !mounted {
        eprintln!("note: cannot mount a ramfs here; not tested");
        return;
    }
    let _unmount = Unmount(mnt.clone());
    let mut archive = Vec::new();
    for name in ["a", "b", "c", "d"] {
        let mut header =
            backup::tar::Header::new(name.as_bytes().to_vec(), backup::tar::Kind::File);
        header.mode = 0o644;
        header.mtime = 1_577_934_245;
        header.mtime_nsec = 5;
        header
            .extras
            .xattrs
            .push((b"user.one".to_vec(), b"1".to_vec()));
        header
            .extras
            .xattrs
            .push((b"user.two".to_vec(), b"2".to_vec()));
        header.encode(&mut archive);
    }
    archive.extend_from_slice(&[0u8; 1024]);
    fs::create_dir(home.path().join("backups")).unwrap();
    fs::write(home.path().join("backups/attrs.tar"), archive).unwrap();
    let dest = mnt.join("r");
    let out = home.manager(&["restore", "attrs.tar", dest.to_str().unwrap()]);
    out.success();
    let warnings: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("warning"))
        .collect();
    assert_eq!(
        warnings,
        [
            "backup_manager: warning: extended attributes or ACLs of 4 entries not restored: the \
          file system restored to does not keep them (a: user.one, b: user.one, c: user.one \
          and 1 more)"
        ],
        "{}",
        out.stderr
    );
    let meta = fs::metadata(dest.join("d")).unwrap();
    assert_eq!((meta.mtime(), meta.mtime_nsec()), (1_577_934_245, 5));
}
