//! What the fidelity tests share: the tools they drive (`setfattr`, `setfacl`, GNU tar,
//! bsdtar, zstd), a tree with attributes, ACLs and mtimes with fractions, and what
//! `getfattr -d`, `getfacl` and `stat -c %y` say of a tree, to compare restores with.

// Each test binary uses its own part of these functions.
#![allow(dead_code)]

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::TestHome;

/// Runs `program ARGS` in `dir`, which must succeed; returns its stdout.
pub fn sh(dir: &Path, program: &str, args: &[&str]) -> String {
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

pub fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Whether this machine can make and read attributes and ACLs in `home`; prints why not.
pub fn supported(home: &TestHome) -> bool {
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
pub fn make_tree(home: &TestHome) {
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
pub fn fidelity(root: &Path) -> String {
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

pub fn walk(path: &Path) -> Vec<std::path::PathBuf> {
    let mut all = vec![path.to_path_buf()];
    if fs::symlink_metadata(path).unwrap().is_dir() {
        for entry in fs::read_dir(path).unwrap() {
            all.extend(walk(&entry.unwrap().path()));
        }
    }
    all
}

/// Our restore of `name` into a new folder; gives what it holds.
pub fn our_restore(home: &TestHome, name: &str) -> String {
    let dest = tempfile::tempdir().unwrap();
    let out = home.manager(&["restore", name, dest.path().to_str().unwrap()]);
    out.success();
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
    fidelity(dest.path())
}

/// GNU tar's extraction of `archives` in order, each through `filter` if given.
pub fn gnu_restore(home: &TestHome, archives: &[String], filter: Option<&str>) -> String {
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
pub fn bsdtar_lists(home: &TestHome, archive: &str) {
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
pub fn members(home: &TestHome, archive: &str) -> Vec<String> {
    let path = home.path().join("backups").join(archive);
    sh(home.path(), "tar", &["-tf", path.to_str().unwrap()])
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The archive names `backups` lists, oldest first.
pub fn chain(home: &TestHome) -> Vec<String> {
    let out = home.manager(&["backups"]);
    out.success();
    let mut names: Vec<String> = out.stdout_lines().into_iter().map(str::to_owned).collect();
    names.reverse();
    names
}
