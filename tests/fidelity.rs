//! Extended attributes, POSIX ACLs and nanosecond mtimes, as a user meets them: a tree
//! with `user.*` attributes (one binary, with a new line in it), an access ACL on a file,
//! an access and a default ACL on a folder, and mtimes with fractions (one before 1970) is
//! backed up plain, with zstd, and as a chain of a full and incrementals; our restore and
//! GNU tar's `tar --xattrs --acls -x` (through `zstd -d`, and chained with
//! `--listed-incremental=/dev/null`) both give it back as `getfattr -d`, `getfacl` and
//! `stat -c %y` see it; bsdtar lists every archive. A change of attributes or ACL alone
//! makes the next incremental store the file again, and `verify --source` names it.
//!
//! Where `setfattr`, `setfacl` or their `get` twins are missing, or the temporary
//! folder's file system keeps no user attributes or ACLs, each test prints a note and
//! checks nothing more.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use common::TestHome;

/// Runs `program ARGS` in `dir`, which must succeed; returns its stdout.
fn sh(dir: &Path, program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Whether this machine can make and read attributes and ACLs in `home`; prints why not.
fn supported(home: &TestHome) -> bool {
    for tool in ["setfattr", "setfacl", "getfattr", "getfacl", "tar"] {
        if !have(tool) {
            eprintln!("note: {tool} is missing; extended attributes and ACLs not tested");
            return false;
        }
    }
    home.write("probe", "p");
    let ok = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .current_dir(home.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let fine = ok("setfattr", &["-n", "user.probe", "-v", "1", "probe"])
        && ok("setfacl", &["-m", "u:nobody:r", "probe"]);
    fs::remove_file(home.path().join("probe")).unwrap();
    if !fine {
        eprintln!("note: the temporary folder's file system refuses user attributes or ACLs");
    }
    fine
}

/// Makes `src` in the home: attributes, ACLs and mtimes with fractions.
fn make_tree(home: &TestHome) {
    home.write("src/f", "file with attributes\n");
    home.write("src/d/g", "in a folder with a default ACL\n");
    home.write("src/old", "before 1970\n");
    let dir = home.path();
    sh(dir, "setfattr", &["-n", "user.color", "-v", "red", "src/f"]);
    // Binary, with a new line and a NUL: pax records are read by their lengths.
    sh(
        dir,
        "setfattr",
        &["-n", "user.bin", "-v", "0sAAoCAw==", "src/f"],
    );
    sh(
        dir,
        "setfattr",
        &["-n", "user.dir", "-v", "a folder's", "src/d"],
    );
    sh(dir, "setfacl", &["-m", "u:nobody:rw", "src/f"]);
    sh(dir, "setfacl", &["-m", "u:nobody:rx", "src/d"]);
    sh(dir, "setfacl", &["-d", "-m", "u:nobody:rwx", "src/d"]);
    std::os::unix::fs::symlink("f", dir.join("src/l")).unwrap();
    for (time, path) in [
        ("2020-01-02 03:04:05.123456789", "src/f"),
        ("1999-12-31 23:59:59.000000001", "src/d/g"),
        ("1969-12-31 23:59:59.25", "src/old"),
        ("2021-06-01 12:00:00.5", "src/d"),
        ("2022-02-02 02:02:02.020202020", "src"),
    ] {
        sh(dir, "touch", &["-d", time, path]);
    }
    sh(
        dir,
        "touch",
        &["-h", "-d", "2023-03-03 03:03:03.75", "src/l"],
    );
}

/// What `getfattr -d`, `getfacl` and `stat -c %y` say of `src` under `root`.
fn fidelity(root: &Path) -> String {
    let mut out = sh(root, "getfattr", &["-R", "-d", "src"]);
    out.push_str(&sh(root, "getfacl", &["-R", "src"]));
    let mut times: Vec<String> = walk(&root.join("src"))
        .iter()
        .map(|path| {
            let rel = path.strip_prefix(root).unwrap().to_str().unwrap();
            sh(root, "stat", &["-c", "%n %y", rel])
        })
        .collect();
    times.sort();
    out.push_str(&times.concat());
    out
}

fn walk(path: &Path) -> Vec<std::path::PathBuf> {
    let mut all = vec![path.to_path_buf()];
    if fs::symlink_metadata(path).unwrap().is_dir() {
        for entry in fs::read_dir(path).unwrap() {
            all.extend(walk(&entry.unwrap().path()));
        }
    }
    all
}

/// Our restore of `name` into a new folder; gives what it holds.
fn our_restore(home: &TestHome, name: &str) -> String {
    let dest = tempfile::tempdir().unwrap();
    let out = home.manager(&["restore", name, dest.path().to_str().unwrap()]);
    out.success();
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
    fidelity(dest.path())
}

/// GNU tar's extraction of `archives` in order, each through `filter` if given.
fn gnu_restore(home: &TestHome, archives: &[String], filter: Option<&str>) -> String {
    let dest = tempfile::tempdir().unwrap();
    for archive in archives {
        let path = home.path().join("backups").join(archive);
        let mut tar = Command::new("tar");
        tar.arg("-C")
            .arg(dest.path())
            .args(["--xattrs", "--acls", "-x"]);
        tar.arg("--listed-incremental=/dev/null");
        let out = match filter {
            None => tar.arg("-f").arg(&path).output().unwrap(),
            Some(filter) => {
                let data = Command::new(filter).arg("-dc").arg(&path).output().unwrap();
                assert!(data.status.success(), "{filter} -dc {archive}");
                let mut child = tar
                    .args(["-f", "-"])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                use std::io::Write;
                child.stdin.take().unwrap().write_all(&data.stdout).unwrap();
                child.wait_with_output().unwrap()
            }
        };
        // GNU tar warns of a time before 1970 with a fraction, in its own archives too
        // (`-0.75` read as "implausibly old time stamp 1970-01-01 00:00:00.75"), and sets
        // it right.
        let stderr = String::from_utf8_lossy(&out.stderr);
        let other = stderr
            .lines()
            .filter(|l| !l.contains("src/old: implausibly old time stamp"))
            .count();
        assert!(
            out.status.success() && other == 0,
            "tar -x {archive}: {stderr}"
        );
    }
    fidelity(dest.path())
}

/// bsdtar lists every entry of `archive` that GNU tar lists.
fn bsdtar_lists(home: &TestHome, archive: &str) {
    if !have("bsdtar") || (archive.ends_with(".zst") && !have("zstd")) {
        eprintln!("note: bsdtar or zstd is missing; bsdtar's listing not checked");
        return;
    }
    let path = home.path().join("backups").join(archive);
    let path = path.to_str().unwrap();
    let listed = |program: &str| -> Vec<String> {
        sh(home.path(), program, &["-tf", path])
            .lines()
            .map(|l| l.trim_end_matches('/').to_owned())
            .collect()
    };
    let (gnu, bsdtar) = (listed("tar"), listed("bsdtar"));
    assert!(gnu.contains(&"src".to_owned()), "{gnu:?}");
    // GNU tar lists a chain's volume label, which bsdtar reads past.
    for name in gnu
        .iter()
        .filter(|name| !name.starts_with("backup_manager "))
    {
        assert!(
            bsdtar.contains(name),
            "{archive}: bsdtar lists no {name}: {bsdtar:?}"
        );
    }
}

/// The entries a GNU tar listing of `archive` shows.
fn members(home: &TestHome, archive: &str) -> Vec<String> {
    let path = home.path().join("backups").join(archive);
    sh(home.path(), "tar", &["-tf", path.to_str().unwrap()])
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn plain_and_zstd_archives_keep_attributes_acls_and_nanoseconds() {
    let home = TestHome::new();
    if !supported(&home) {
        return;
    }
    make_tree(&home);
    let want = fidelity(home.path());
    assert!(want.contains("user.bin=0sAAoCAw=="), "{want}");
    assert!(want.contains("default:user:nobody:rwx"), "{want}");
    assert!(
        want.contains("src/f 2020-01-02 03:04:05.123456789"),
        "{want}"
    );
    let (_, warnings) = home.back_up(&[], "src;03:00;plain");
    assert_eq!(warnings, Vec::<String>::new());
    assert_eq!(our_restore(&home, "plain"), want);
    assert_eq!(gnu_restore(&home, &["plain.tar".to_owned()], None), want);
    bsdtar_lists(&home, "plain.tar");
    home.back_up(&["--compress", "zstd"], "src;03:00;packed");
    assert_eq!(our_restore(&home, "packed"), want);
    if have("zstd") {
        let gnu = gnu_restore(&home, &["packed.tar.zst".to_owned()], Some("zstd"));
        assert_eq!(gnu, want);
    }
    bsdtar_lists(&home, "packed.tar.zst");
    let out = home.manager(&["verify", "plain", "--source"]);
    out.success();
}

/// The archive names `backups` lists, oldest first.
fn chain(home: &TestHome) -> Vec<String> {
    let out = home.manager(&["backups"]);
    out.success();
    let mut names: Vec<String> = out.stdout_lines().into_iter().map(str::to_owned).collect();
    names.reverse();
    names
}

#[test]
fn a_chain_stores_what_only_changed_its_attributes_and_restores_it() {
    let home = TestHome::new();
    if !supported(&home) {
        return;
    }
    make_tree(&home);
    home.back_up(&["--incremental", "--keep", "9"], "src;03:00;chain");
    let dir = home.path();
    // An attribute alone, then an ACL alone, then a time's fraction alone: each time of
    // a file the newest archive holds, which is what `verify --source` compares.
    let changes: [(&str, &[&str]); 3] = [
        ("setfattr", &["-n", "user.color", "-v", "blue", "src/f"]),
        ("setfacl", &["-m", "u:nobody:r", "src/f"]),
        ("touch", &["-d", "2020-01-02 03:04:05.9", "src/f"]),
    ];
    let changed = "src/f";
    for (program, args) in changes {
        let before = fidelity(dir);
        sh(dir, program, args);
        let want = fidelity(dir);
        assert_ne!(want, before, "{program} {args:?} changed nothing");
        let out = home.manager(&["verify", "chain", "--source"]);
        assert_eq!(out.code(), Some(1), "{out:?}");
        assert!(out.stdout.starts_with(&format!("{changed}: ")), "{out:?}");
        home.run_ok(0);
        let archives = chain(&home);
        let stored = members(&home, archives.last().unwrap());
        assert!(stored.contains(&changed.to_owned()), "{stored:?}");
        assert!(!stored.contains(&"src/old".to_owned()), "{stored:?}");
        assert_eq!(our_restore(&home, "chain"), want);
        assert_eq!(gnu_restore(&home, &archives, None), want);
        bsdtar_lists(&home, archives.last().unwrap());
        home.manager(&["verify", "chain", "--source"]).success();
    }
}

#[test]
fn verify_source_names_each_kind_of_difference() {
    let home = TestHome::new();
    if !supported(&home) {
        return;
    }
    make_tree(&home);
    home.back_up(&[], "src;03:00;plain");
    let dir = home.path();
    sh(dir, "setfattr", &["-x", "user.color", "src/f"]);
    sh(dir, "setfacl", &["-k", "src/d"]);
    sh(dir, "setfacl", &["-m", "u:nobody:---", "src/d"]);
    sh(
        dir,
        "touch",
        &["-d", "1999-12-31 23:59:59.000000002", "src/d/g"],
    );
    let out = home.manager(&["verify", "plain", "--source"]);
    assert_eq!(out.code(), Some(1), "{out:?}");
    assert_eq!(
        out.stdout_lines(),
        [
            "src/d: access ACL differs",
            "src/d: default ACL differs",
            "src/d/g: modification time differs",
            "src/f: extended attributes differ (user.color)",
        ]
    );
}

#[test]
fn gnu_tars_own_posix_archive_restores_the_same() {
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
