//! Extended attributes, POSIX ACLs and nanosecond mtimes, as a user meets them: a tree
//! with `user.*` attributes (one binary, with a new line in it), an access ACL on a file,
//! an access and a default ACL on a folder, and mtimes with fractions (one before 1970) is
//! backed up plain, with zstd, and as a chain of a full and incrementals; our restore and
//! GNU tar's `tar --xattrs --acls -x` (through `zstd -d`, and chained with
//! `--listed-incremental=/dev/null`) both give it back as `getfattr -d`, `getfacl` and
//! `stat -c %y` see it; bsdtar lists every archive. A change of attributes or ACL alone
//! makes the next incremental store the file again, and `verify --source` names it.
//! Files get their archived modes under any umask, and in a folder whose default ACL
//! would give them others.
//!
//! Where `setfattr`, `setfacl` or their `get` twins are missing, or the temporary
//! folder's file system keeps no user attributes or ACLs, each test prints a note and
//! checks nothing more.

mod attrs;
mod common;

use attrs::{
    bsdtar_lists, chain, fidelity, gnu_restore, have, make_tree, members, our_restore, sh,
    supported,
};
use common::TestHome;

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

/// The permission bits of every file under `root`, by file name.
fn modes(root: &std::path::Path) -> Vec<(String, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut found: Vec<(String, u32)> = attrs::walk(root)
        .into_iter()
        .filter(|p| p.is_file())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (
                name,
                std::fs::metadata(&p).unwrap().permissions().mode() & 0o7777,
            )
        })
        .collect();
    found.sort();
    found
}

#[test]
fn files_get_their_archived_modes_under_any_umask_and_a_default_acl() {
    use std::os::unix::fs::PermissionsExt;
    let home = TestHome::new();
    if !supported(&home) {
        return;
    }
    let src = home.path().join("src");
    std::fs::create_dir(&src).unwrap();
    for (name, mode) in [
        ("a", 0o644),
        ("b", 0o600),
        ("c", 0o755),
        ("d", 0o666),
        ("e", 0o640),
        ("f", 0o444),
    ] {
        let path = src.join(name);
        std::fs::write(&path, name).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let want = modes(&src);
    home.back_up(&[], "src;03:00;m");
    // A folder whose default ACL gives files made in it no group or other bits.
    let inheriting = home.path().join("inheriting");
    std::fs::create_dir(&inheriting).unwrap();
    sh(
        home.path(),
        "setfacl",
        &["-d", "-m", "u::rwx,g::---,o::---", "inheriting"],
    );
    // 277 takes the owner's write bit: a file made 0600 comes out 0400 unless chmodded.
    let cases = [
        ("077", "strict"),
        ("277", "narrow"),
        ("000", "open"),
        ("022", "inheriting"),
    ];
    for (umask, dest) in cases {
        let script = format!("umask {umask} && exec \"$0\" --home . restore m {dest}");
        let out = std::process::Command::new("sh")
            .args(["-c", &script, common::MANAGER])
            .current_dir(home.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            modes(&home.path().join(dest)),
            want,
            "umask {umask} into {dest}"
        );
    }
}
