//! Encrypted schedules as a user meets them: archives sealed to age and SSH (ed25519 and
//! RSA) public keys, opened by Debian's `age` and restored by GNU tar, restored by us with
//! each identity alone, refused without one, with a wrong one or with a byte changed, and
//! a chain of a full and three incrementals restored at every point, by us and by
//! `age -d | tar -x`.
//! Nothing under `backups/` shows a file name or a byte of content.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{TestHome, mode};

/// A name and a content that must never be seen in clear under `backups/`.
const SECRET_NAME: &str = "hunter2-token.env";
const SECRET_CONTENT: &str = "CONTENT-MARKER-7f3a9c";

/// An identity and its public key.
struct Key {
    identity: PathBuf,
    public: String,
}

/// A new age X25519 identity in `dir`, made by `age-keygen`.
fn age_key(dir: &Path, name: &str) -> Key {
    let (identity, public) = common::age_key(dir, name);
    Key { identity, public }
}

/// A new SSH ed25519 key pair in `dir`, made by `ssh-keygen` without a passphrase.
fn ssh_key(dir: &Path, name: &str) -> Key {
    ssh_key_of(dir, name, &["-t", "ed25519"])
}

/// A new SSH key pair of the type `kind` asks for, in `dir`.
fn ssh_key_of(dir: &Path, name: &str, kind: &[&str]) -> Key {
    let identity = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(kind)
        .args(["-q", "-N", "", "-C", "me@box", "-f"])
        .arg(&identity)
        .output()
        .expect("running ssh-keygen (openssh-client)");
    assert!(out.status.success(), "{out:?}");
    let public = fs::read_to_string(identity.with_extension("pub")).unwrap();
    Key {
        identity,
        public: public.trim().to_owned(),
    }
}

/// A small tree holding the secret name and content.
fn tree(home: &TestHome) {
    home.write("src/notes.txt", "hello\n");
    home.write(
        &format!("src/deep/{SECRET_NAME}"),
        format!("{SECRET_CONTENT}\n"),
    );
    home.write("src/deep/big.bin", vec![7u8; 300 << 10]);
}

/// Each file's contents and each folder, relative to `root`.
fn snapshot(root: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if path.is_dir() {
                out.insert(rel, None);
                todo.push(path);
            } else {
                out.insert(rel, Some(fs::read(&path).unwrap()));
            }
        }
    }
    out
}

/// Runs a shell pipeline, which must succeed.
fn sh(script: &str) {
    let out = Command::new("sh")
        .args(["-c", script])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{script}: {out:?}");
}

/// `age -d -i IDENTITY ARCHIVE`, decompressed as its name says, extracted by GNU tar
/// into `dest` (with the options `tar` adds).
fn age_then_tar(identity: &Path, archive: &Path, dest: &Path, tar: &str) {
    fs::create_dir_all(dest).unwrap();
    let name = archive.to_string_lossy();
    let unzip = if name.ends_with(".zst.age") {
        "| zstd -d"
    } else if name.ends_with(".gz.age") {
        "| gzip -d"
    } else {
        ""
    };
    sh(&format!(
        "age -d -i '{}' '{}' {unzip} | tar -x {tar} -C '{}'",
        identity.display(),
        archive.display(),
        dest.display()
    ));
}

/// The files of `backups/`, hidden ones too.
fn backups_files(home: &TestHome) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(home.path().join("backups"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

#[test]
fn a_bad_recipient_is_refused_and_nothing_is_written() {
    let home = TestHome::new();
    let keys = tempfile::tempdir().unwrap();
    for bad in [
        "age1nope",
        "ssh-dss AAAAB3NzaC1kc3MAAACBAPqx",
        "AGE-SECRET-KEY-1QQQ",
    ] {
        let out = home.manager(&["create", "--encrypt", bad, "src;02:00;code"]);
        assert!(
            out.failure(1).contains("is not a public key to encrypt to"),
            "{out:?}"
        );
    }
    // A secret given by mistake is repeated neither on stderr nor in the log.
    let log = fs::read_to_string(home.path().join("logs/backup_manager.log")).unwrap();
    assert!(log.contains("secret key") && !log.contains("1QQQ"), "{log}");
    let line = home.manager(&["create", "src;02:00;code;encrypt=age1nope"]);
    assert!(
        line.failure(1)
            .starts_with("backup_manager: malformed schedule"),
        "{line:?}"
    );
    assert_eq!(home.schedule_bytes(), None);
    let file = keys.path().join("recipients.txt");
    let good = age_key(keys.path(), "k").public;
    fs::write(&file, format!("# team\n{good}\nssh-ed25519 AAAA broken\n")).unwrap();
    let out = home.manager(&[
        "create",
        "--recipients-file",
        file.to_str().unwrap(),
        "src;02:00;code",
    ]);
    let line = out.failure(1);
    assert!(
        line.contains("recipients file") && line.contains("line 3"),
        "{line}"
    );
    assert_eq!(home.schedule_bytes(), None);
    // A file of good keys: copied onto the line, each once; a plain line stays plain.
    let ssh = ssh_key(keys.path(), "id").public;
    fs::write(&file, format!("# team\n{good}\n\n{ssh}\n")).unwrap();
    home.manager(&[
        "create",
        "--recipients-file",
        file.to_str().unwrap(),
        "--encrypt",
        &good,
        "src;02:00;code",
    ])
    .success();
    home.manager(&["create", "src;02:00;plain"]).success();
    let ssh_key_only: String = ssh.split(' ').take(2).collect::<Vec<_>>().join(" ");
    let lines = String::from_utf8(home.schedule_bytes().unwrap()).unwrap();
    assert_eq!(
        lines,
        format!("src;02:00;code;encrypt={good};encrypt={ssh_key_only}\nsrc;02:00;plain\n")
    );
}

#[test]
fn archives_are_opened_by_age_and_gnu_tar_and_by_each_identity_alone() {
    let keys = tempfile::tempdir().unwrap();
    let alice = age_key(keys.path(), "alice.txt");
    let bob = ssh_key(keys.path(), "bob");
    let carol = ssh_key_of(keys.path(), "carol", &["-t", "rsa", "-b", "2048"]);
    for (flags, file) in [
        (vec![], "code.tar.age"),
        (vec!["--compress", "zstd"], "code.tar.zst.age"),
    ] {
        let home = TestHome::new();
        tree(&home);
        let mut args = flags.clone();
        for key in [&alice, &bob, &carol] {
            args.extend(["--encrypt", &key.public]);
        }
        home.back_up(&args, "src;02:00;code");
        let archive = home.archive_path(file);
        assert_eq!(mode(&archive), 0o600);
        assert!(
            fs::read(&archive)
                .unwrap()
                .starts_with(b"age-encryption.org/v1\n")
        );
        let source = snapshot(&home.path().join("src"));
        for key in [&alice, &bob, &carol] {
            let who = key.identity.file_name().unwrap().to_str().unwrap();
            // Debian's age and GNU tar, without this program.
            let out = keys.path().join(format!("tar-{file}-{who}"));
            age_then_tar(&key.identity, &archive, &out, "");
            assert_eq!(snapshot(&out.join("src")), source, "{file} by age and tar");
            // Ours, with this identity alone.
            let dest = keys.path().join(format!("ours-{file}-{who}"));
            let id = key.identity.to_str().unwrap();
            home.manager(&["restore", "code", dest.to_str().unwrap(), "--identity", id])
                .success();
            assert_eq!(snapshot(&dest.join("src")), source, "{file} by us");
            home.manager(&["verify", "code", "--identity", id])
                .success();
        }
    }
}

/// A home with one zstd schedule encrypted to a new key, backed up once.
fn encrypted_home() -> (TestHome, tempfile::TempDir, Key) {
    let home = TestHome::new();
    let keys = tempfile::tempdir().unwrap();
    let mine = age_key(keys.path(), "mine.txt");
    tree(&home);
    home.back_up(
        &["--compress", "zstd", "--encrypt", &mine.public],
        "src;02:00;code",
    );
    (home, keys, mine)
}

#[test]
fn without_the_right_identity_nothing_is_restored() {
    let (home, keys, mine) = encrypted_home();
    let other = age_key(keys.path(), "other.txt");
    let dest = keys.path().join("dest");
    let dest_s = dest.to_str().unwrap();
    // No identity: restore names what it needs; verify checks the outside and says so.
    let line = home
        .manager(&["restore", "code", dest_s])
        .failure(1)
        .to_owned();
    assert!(
        line.contains("is encrypted") && line.contains("--identity FILE"),
        "{line}"
    );
    let out = home.manager(&["verify", "code"]);
    assert_eq!(out.code(), Some(3), "{out:?}");
    assert!(out.stderr.contains("contents were not checked"), "{out:?}");
    // A wrong identity, a readable one, a link: refused before anything is written.
    let other_s = other.identity.to_str().unwrap();
    let wrong = home.manager(&["restore", "code", dest_s, "--identity", other_s]);
    assert!(
        wrong.failure(1).contains("opens none of its recipients"),
        "{wrong:?}"
    );
    let mine_s = mine.identity.to_str().unwrap();
    fs::set_permissions(&mine.identity, fs::Permissions::from_mode(0o644)).unwrap();
    let open = home.manager(&["restore", "code", dest_s, "--identity", mine_s]);
    assert!(open.failure(1).contains("chmod 600"), "{open:?}");
    fs::set_permissions(&mine.identity, fs::Permissions::from_mode(0o600)).unwrap();
    let link = keys.path().join("link.txt");
    std::os::unix::fs::symlink(&mine.identity, &link).unwrap();
    let link_s = link.to_str().unwrap();
    home.manager(&["restore", "code", dest_s, "--identity", link_s])
        .failure(1);
    assert!(!dest.exists());
    home.manager(&["restore", "code", dest_s, "--identity", mine_s])
        .success();
}

#[test]
fn a_byte_changed_anywhere_is_refused_with_dest_untouched() {
    let (home, keys, mine) = encrypted_home();
    let dest = keys.path().join("dest");
    let dest_s = dest.to_str().unwrap();
    let id = mine.identity.to_str().unwrap();
    // In the header, the first chunk, the middle, the last chunk, the very end.
    let archive = home.archive_path("code.tar.zst.age");
    let good = fs::read(&archive).unwrap();
    for at in [
        30,
        good.len() / 3,
        good.len() / 2,
        good.len() - 20,
        good.len() - 1,
    ] {
        let mut bad = good.clone();
        bad[at] ^= 0x10;
        fs::write(&archive, &bad).unwrap();
        home.manager(&["restore", "code", dest_s, "--identity", id])
            .failure(1);
        assert!(
            !dest.exists(),
            "a restore with byte {at} changed wrote {dest_s}"
        );
        let verify = home.manager(&["verify", "code", "--identity", id]);
        assert_eq!(verify.code(), Some(1), "byte {at}: {verify:?}");
    }
    // Cut inside its first chunk's tag: caught even without the identity.
    let mac = good.windows(5).position(|w| w == b"\n--- ").unwrap() + 1;
    let header = mac + good[mac..].iter().position(|&b| b == b'\n').unwrap() + 1;
    fs::write(&archive, &good[..header + 20]).unwrap();
    let cut = home.manager(&["verify", "code"]);
    assert!(cut.failure(1).contains("is cut or damaged"), "{cut:?}");
    fs::write(&archive, &good).unwrap();
    home.manager(&["restore", "code", dest_s, "--identity", id])
        .success();
}

#[test]
fn an_archive_sealed_by_age_is_restored() {
    let home = TestHome::new();
    let keys = tempfile::tempdir().unwrap();
    let key = age_key(keys.path(), "key.txt");
    tree(&home);
    fs::create_dir(home.path().join("backups")).unwrap();
    let archive = home.archive_path("theirs.tar.zst.age");
    sh(&format!(
        "cd '{}' && tar -c src | zstd -q | age -r {} > '{}'",
        home.path().display(),
        key.public,
        archive.display()
    ));
    let dest = keys.path().join("dest");
    let id = key.identity.to_str().unwrap();
    home.manager(&[
        "restore",
        "theirs.tar.zst.age",
        dest.to_str().unwrap(),
        "--identity",
        id,
    ])
    .success();
    assert_eq!(
        snapshot(&dest.join("src")),
        snapshot(&home.path().join("src"))
    );
    home.manager(&["verify", "theirs", "--identity", id])
        .success();
}

/// Changes the tree between the backups of the chain.
fn change(home: &TestHome, step: usize) {
    match step {
        1 => home.write("src/new.txt", "added\n"),
        2 => fs::remove_file(home.path().join("src/notes.txt")).unwrap(),
        _ => home.write(
            &format!("src/deep/{SECRET_NAME}"),
            format!("{SECRET_CONTENT} v2\n"),
        ),
    }
}

/// Asserts that no file under `backups/` holds a name or a content of the tree.
fn assert_nothing_shows(home: &TestHome) {
    for file in backups_files(home) {
        let bytes = fs::read(&file).unwrap();
        for secret in [SECRET_NAME, SECRET_CONTENT, "notes.txt", "deep"] {
            let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
            assert!(!found, "{} shows {secret:?}", file.display());
        }
    }
}

/// A full backup and three incrementals of an encrypted schedule; the tree at each.
fn chain(home: &TestHome, key: &Key) -> Vec<BTreeMap<String, Option<Vec<u8>>>> {
    tree(home);
    let args = [
        "--incremental",
        "--keep",
        "10",
        "--compress",
        "zstd",
        "--encrypt",
        &key.public,
    ];
    let (index, _) = home.back_up(&args, "src;02:00;data");
    let mut points = vec![snapshot(&home.path().join("src"))];
    for step in 1..=3 {
        change(home, step);
        home.run_ok(index);
        points.push(snapshot(&home.path().join("src")));
    }
    points
}

#[test]
fn an_encrypted_chain_restores_at_every_point_and_backups_show_nothing() {
    let home = TestHome::new();
    let keys = tempfile::tempdir().unwrap();
    let key = age_key(keys.path(), "key.txt");
    let id = key.identity.to_str().unwrap().to_owned();
    let points = chain(&home, &key);
    // The service's view, without any key: the kinds, the chain, the record's place.
    let long = home.manager(&["backups", "--long"]);
    let kinds: Vec<&str> = long
        .stdout
        .lines()
        .map(|l| l.rsplit(' ').next().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["incremental", "incremental", "incremental", "full"],
        "{long:?}"
    );
    assert_eq!(mode(&home.path().join(".records/data.record")), 0o600);
    assert_eq!(mode(&home.path().join(".records")), 0o700);
    // Every restore point, by us and by age and GNU tar.
    let listed = home.manager(&["backups"]);
    let names = listed.stdout_lines();
    let oldest_first: Vec<&str> = names[1..].iter().rev().copied().chain([names[0]]).collect();
    for (at, expected) in points.iter().enumerate() {
        let dest = keys.path().join(format!("ours-{at}"));
        let dest_s = dest.to_str().unwrap();
        home.manager(&["restore", oldest_first[at], dest_s, "--identity", &id])
            .success();
        assert_eq!(
            &snapshot(&dest.join("src")),
            expected,
            "restore point {at} by us"
        );
        let theirs = keys.path().join(format!("tar-{at}"));
        for archive in &oldest_first[..=at] {
            let path = home.archive_path(archive);
            age_then_tar(
                &key.identity,
                &path,
                &theirs,
                "--listed-incremental=/dev/null",
            );
        }
        assert_eq!(
            &snapshot(&theirs.join("src")),
            expected,
            "restore point {at} by tar"
        );
    }
    home.manager(&["verify", "data", "--identity", &id])
        .success();
    assert_nothing_shows(&home);
}
