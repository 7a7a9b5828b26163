//! Browsing encrypted archives: `files`, `cat`, `find`, `diff` and `restore --path` with
//! the identity give what they give for the same tree unencrypted, through the archive's
//! sealed index, or the archive itself when that index is damaged; without the identity
//! they refuse, and nothing under `backups/` (index included) shows a name or a content.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{TestHome, age_key};

/// A name and a content that must never be seen in clear under `backups/`.
const SECRET_NAME: &str = "hunter2-token.env";
const SECRET_CONTENT: &str = "CONTENT-MARKER-7f3a9c";

/// A tree with the secret in it, and a large file last.
fn tree(home: &TestHome) {
    home.write("src/notes.txt", "hello\n");
    home.write(
        &format!("src/deep/{SECRET_NAME}"),
        format!("{SECRET_CONTENT}\n"),
    );
    home.write(
        "src/zz-big.bin",
        (0..3_000_000u32)
            .map(|i| b'a' + (i % 23) as u8)
            .collect::<Vec<_>>(),
    );
}

/// Stdout of a command that must succeed, with the warnings it gave on stderr.
fn answer(home: &TestHome, args: &[&str]) -> (Vec<u8>, String) {
    let out = home.manager(args);
    out.success();
    (out.stdout.clone().into_bytes(), out.stderr.clone())
}

/// What the browse commands say of schedule `name` (with `extra` arguments added to
/// each): its listing, two files, what find finds and the last two generations' diff.
fn answers(home: &TestHome, name: &str, extra: &[&str], chain: bool) -> Vec<Vec<u8>> {
    let with = |args: &[&str]| -> Vec<String> {
        args.iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
    };
    let run = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (out, _) = answer(home, &args);
        // The series' name and the archives' suffix differ; the rest must not.
        String::from_utf8(out)
            .unwrap()
            .replace(name, "NAME")
            .replace(".age", "")
            .into_bytes()
    };
    let secret = format!("deep/{SECRET_NAME}");
    let mut all = vec![
        run(with(&["files", name])),
        run(with(&["cat", name, &secret])),
        run(with(&["cat", name, "zz-big.bin"])),
        run(with(&["find", "*.env", name])),
        run(with(&["files", name, "deep", "--json"])),
    ];
    if chain {
        let diff = run(with(&["diff", name]));
        all.push(diff);
    }
    all
}

/// Every byte of every file of the encrypted schedule under `backups/` (archives,
/// indexes, records), searched for the secret name and content.
fn assert_nothing_in_clear(home: &TestHome) {
    let mut seen = 0;
    for entry in fs::read_dir(home.path().join("backups")).unwrap() {
        let path = entry.unwrap().path();
        if !path
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .contains("sealed")
        {
            continue;
        }
        let bytes = fs::read(&path).unwrap();
        for secret in [SECRET_NAME, SECRET_CONTENT, "notes.txt"] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} in clear in {}",
                path.display()
            );
        }
        seen += 1;
    }
    assert!(seen >= 2, "no archive and index to look at");
}

/// A home with a plain and an encrypted schedule of the same tree (with `args` to
/// create), each backed up `runs` times, the tree changing between runs.
fn two_schedules(args: &[&str], runs: usize) -> (TestHome, PathBuf, tempfile::TempDir) {
    let keys = tempfile::tempdir().unwrap();
    let (identity, public) = age_key(keys.path(), "key.txt");
    let home = TestHome::new();
    tree(&home);
    let sealed = format!("src;03:00;sealed;encrypt={public}");
    for line in ["src;03:00;plain", sealed.as_str()] {
        let mut create: Vec<&str> = vec!["create"];
        create.extend_from_slice(args);
        create.push(line);
        home.manager(&create).success();
    }
    for run in 0..runs {
        if run > 0 {
            home.write("src/notes.txt", format!("hello {run}\n"));
            home.write(&format!("src/new-{run}.txt"), "new");
        }
        home.run_ok(0);
        home.run_ok(1);
    }
    (home, identity, keys)
}

/// Asserts that the two lists of answers are the same, showing the first that is not.
fn assert_same(got: &[Vec<u8>], expected: &[Vec<u8>]) {
    assert_eq!(got.len(), expected.len());
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        assert!(
            g == e,
            "answer {i} differs:\n{}\n---- expected:\n{}",
            String::from_utf8_lossy(&g[..g.len().min(600)]),
            String::from_utf8_lossy(&e[..e.len().min(600)])
        );
    }
}

#[test]
fn an_encrypted_archive_browses_as_the_plain_one_and_without_the_identity_refuses() {
    let (home, identity, _keys) = two_schedules(&["--compress", "zstd"], 1);
    let (plain, sealed) = (&home, &home);
    let id = identity.to_str().unwrap();
    let idx = sealed.path().join("backups/.sealed.tar.zst.age.idx");
    assert!(idx.exists(), "no sealed index beside the archive");
    let expected = answers(plain, "plain", &[], false);
    let got = answers(sealed, "sealed", &["--identity", id], false);
    assert_same(&got, &expected);
    for args in [
        vec!["files", "sealed"],
        vec!["cat", "sealed", "notes.txt"],
        vec!["diff", "sealed"],
    ] {
        let out = sealed.manager(&args);
        let err = out.failure(1);
        assert!(
            err.contains("is encrypted") && err.contains("--identity FILE"),
            "{args:?}: {err}"
        );
    }
    // find across schedules passes over the encrypted one, saying so.
    let (out, err) = answer(sealed, &["find", "*.env"]);
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("plain") && !out.contains("sealed"), "{out}");
    assert!(
        err.contains("were not searched") && err.contains("of sealed"),
        "{err}"
    );
    let (out, _) = answer(sealed, &["find", "*.env", "--identity", id]);
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("plain") && out.contains("sealed"), "{out}");
    assert_nothing_in_clear(sealed);
    // verify with the identity reads the sealed index too.
    sealed
        .manager(&["verify", "sealed", "--identity", id])
        .success();
    // A byte changed in the sealed index: verify fails, saying so; the others warn,
    // then give the same answers.
    let mut bytes = fs::read(&idx).unwrap();
    let at = bytes.len() - 40;
    bytes[at] ^= 1;
    fs::write(&idx, bytes).unwrap();
    let out = sealed.manager(&["verify", "sealed", "--identity", id]);
    let err = out.failure(1);
    assert!(err.contains("its index cannot be used"), "{err}");
    let (_, err) = answer(sealed, &["files", "sealed", "--identity", id]);
    assert!(
        err.contains("cannot be used") && err.contains("reading the archive instead"),
        "{err}"
    );
    let got = answers(sealed, "sealed", &["--identity", id], false);
    assert_same(&got, &expected);
}

#[test]
fn an_encrypted_chain_browses_and_restores_paths_as_the_plain_one() {
    let args = ["--compress", "zstd", "--incremental", "--keep", "10"];
    let (home, identity, _keys) = two_schedules(&args, 3);
    let (plain, sealed) = (&home, &home);
    let id = identity.to_str().unwrap();
    let expected = answers(plain, "plain", &[], true);
    let got = answers(sealed, "sealed", &["--identity", id], true);
    assert_same(&got, &expected);
    let dests = tempfile::tempdir().unwrap();
    for (home, name, extra) in [
        (plain, "plain", vec![]),
        (sealed, "sealed", vec!["--identity", id]),
    ] {
        let dest = dests.path().join(name);
        let mut args = vec!["restore", name, dest.to_str().unwrap(), "--path", "deep"];
        args.extend(extra);
        home.manager(&args).success();
    }
    let restored = |name: &str| {
        let file = dests.path().join(name).join("src/deep").join(SECRET_NAME);
        fs::read_to_string(file).unwrap()
    };
    assert_eq!(restored("sealed"), restored("plain"));
    assert!(!dests.path().join("sealed/src/notes.txt").exists());
    let out = sealed.manager(&["diff", "sealed"]);
    assert!(out.failure(1).contains("--identity FILE"));
    assert_nothing_in_clear(sealed);
}

/// Asserts that `verify --rebuild-index` of the encrypted schedule refuses, changing no
/// file under `backups/`: without an identity (in one line saying what is needed), and
/// with `id` once the line's key was changed by hand to one made in `keys`.
fn assert_rebuild_refused(home: &TestHome, id: &str, keys: &Path) {
    let backups = home.path().join("backups");
    let before = common::offsite::tree(&backups);
    let unchanged = || {
        assert!(
            common::offsite::tree(&backups) == before,
            "a refused rebuild changed a file under backups/"
        )
    };
    let out = home.manager(&["verify", "sealed", "--rebuild-index"]);
    let err = out.failure(1);
    assert!(
        err.contains("is encrypted") && err.contains("--identity FILE"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    unchanged();

    // An index sealed to the line's new key would be no use to this identity.
    let line = String::from_utf8(home.schedule_bytes().unwrap()).unwrap();
    let (_, other) = age_key(keys, "other.txt");
    let public = line.split("encrypt=").nth(1).unwrap().trim_end();
    home.write("backup_schedules.txt", line.replace(public, &other));
    let out = home.manager(&["verify", "sealed", "--rebuild-index", "--identity", id]);
    let err = out.failure(1);
    assert!(
        err.contains("opens none of the recipients on the line"),
        "{err}"
    );
    unchanged();
    home.write("backup_schedules.txt", &line);
}

#[test]
fn verify_rebuilds_a_sealed_index_with_the_identity_and_refuses_without_it() {
    for (compress, suffix) in [("zstd", ".tar.zst.age"), ("gzip", ".tar.gz.age")] {
        let (home, identity, keys) = two_schedules(&["--compress", compress], 1);
        let id = identity.to_str().unwrap();
        let expected = answers(&home, "plain", &[], false);
        let backups = home.path().join("backups");
        let idx = backups.join(format!(".sealed{suffix}.idx"));
        let mut bytes = fs::read(&idx).unwrap();
        let at = bytes.len() - 40;
        bytes[at] ^= 1;
        fs::write(&idx, bytes).unwrap();

        assert_rebuild_refused(&home, id, keys.path());
        let rebuild = ["verify", "sealed", "--rebuild-index", "--identity", id];
        let out = home.manager(&rebuild);
        out.success();
        assert!(
            out.stderr
                .contains(&format!("rebuilt the index of backups/sealed{suffix} ("))
                && out.stderr.contains("its index cannot be used"),
            "{}",
            out.stderr
        );
        // Sealed again, and read as the one written with the archive was: no warning.
        let (_, err) = answer(&home, &["verify", "sealed", "--identity", id]);
        assert!(!err.contains("index"), "{err}");
        let (_, err) = answer(&home, &["files", "sealed", "--identity", id]);
        assert_eq!(err, "");
        assert_same(
            &answers(&home, "sealed", &["--identity", id], false),
            &expected,
        );
        assert_nothing_in_clear(&home);

        // A missing one is made too, and nothing is left aside.
        fs::remove_file(&idx).unwrap();
        let out = home.manager(&rebuild);
        out.success();
        assert!(out.stderr.contains("it has no index"), "{}", out.stderr);
        assert!(
            fs::read(&idx)
                .unwrap()
                .starts_with(b"age-encryption.org/v1\n"),
            "the rebuilt index is not an age file"
        );
        let names = common::names(&backups);
        assert!(
            !names
                .iter()
                .any(|n| n.contains("partial") || n.contains("tmp")),
            "{names:?}"
        );
        let (_, err) = answer(&home, &["files", "sealed", "--identity", id]);
        assert_eq!(err, "");
    }
}
