//! Restore as root over files it must not lose, from archives that are hostile, into
//! places it must not write: `--force` keeps what DEST held, `--delete` mirrors, hostile
//! archives are refused before anything is written (and `verify` refuses them too), a
//! failure says DEST is partial, and a home's own files are never written.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use backup::tar::{BLOCK, Header, Kind};

mod common;

use common::{TestHome, UNPRIVILEGED, unprivileged_prefix};

// ---- archives made by hand -------------------------------------------------------

/// One entry's blocks: its header (with long-name entries as needed) and its data.
fn entry(name: &str, kind: Kind, mode: u32, data: &[u8], link: &str) -> Vec<u8> {
    let mut h = Header::new(name.as_bytes().to_vec(), kind);
    h.mode = mode;
    h.mtime = 1_700_000_000;
    h.size = data.len() as u64;
    h.link = link.as_bytes().to_vec();
    let mut out = Vec::new();
    h.encode(&mut out);
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
    out
}

fn file(name: &str, data: &[u8]) -> Vec<u8> {
    entry(name, Kind::File, 0o644, data, "")
}

fn dir(name: &str) -> Vec<u8> {
    entry(name, Kind::Dir, 0o755, b"", "")
}

/// A header of type `flag` declaring `size` bytes, without its data.
fn declaring(name: &str, flag: u8, size: u64) -> Vec<u8> {
    let mut block = entry(name, Kind::Other(flag), 0o644, b"", "");
    block.truncate(BLOCK);
    let mut h = tar::Header::new_gnu();
    h.as_mut_bytes().copy_from_slice(&block);
    h.set_size(size);
    h.set_cksum();
    h.as_bytes().to_vec()
}

/// Pax records, each `LEN key=value\n`.
fn pax(records: &[(&str, &str)]) -> Vec<u8> {
    let mut data = Vec::new();
    for (key, value) in records {
        let body = format!(" {key}={value}\n");
        let mut len = body.len() + 1;
        while format!("{len}{body}").len() != len {
            len += 1;
        }
        data.extend_from_slice(format!("{len}{body}").as_bytes());
    }
    entry("pax", Kind::Other(b'x'), 0o644, &data, "")
}

fn archive_of(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut out = entries.concat();
    out.extend_from_slice(&[0u8; 2 * BLOCK]);
    out
}

fn put(home: &TestHome, file_name: &str, bytes: &[u8]) {
    fs::create_dir_all(home.path().join("backups")).unwrap();
    fs::write(home.path().join("backups").join(file_name), bytes).unwrap();
}

fn stderr(out: &common::Output) -> String {
    out.stderr.clone()
}

/// What a folder holds: each path under it with its kind and contents (or target).
fn tree(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for child in fs::read_dir(&dir).unwrap() {
            let path = child.unwrap().path();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            let meta = fs::symlink_metadata(&path).unwrap();
            let what = if meta.is_dir() {
                todo.push(path);
                "folder".to_owned()
            } else if meta.file_type().is_symlink() {
                format!("link {}", fs::read_link(&path).unwrap().display())
            } else {
                String::from_utf8_lossy(&fs::read(&path).unwrap()).into_owned()
            };
            out.insert(rel, what);
        }
    }
    out
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

// ---- restoring over what DEST holds ---------------------------------------------

/// A home whose schedule `code` backs up `src` incrementally: a full archive, then an
/// incremental after `a/gone` was deleted and `a/new` made.
fn chain_home() -> TestHome {
    let home = TestHome::new();
    home.manager(&["create", "--incremental", "src;03:00;code"])
        .success();
    home.write("src/a/kept", "kept");
    home.write("src/a/gone", "gone");
    home.write("src/b/file", "b");
    home.run_ok(0);
    fs::remove_file(home.path().join("src/a/gone")).unwrap();
    home.write("src/a/new", "new");
    home.run_ok(0);
    home
}

/// The user's own files in DEST: in a folder the chain holds, a folder of theirs in
/// one, and one beside what the chain holds.
fn users_files(dest: &Path) {
    for (rel, data) in [
        ("src/a/mine", "mine"),
        ("src/mine_dir/deep", "deep"),
        ("mine_top", "top"),
    ] {
        fs::create_dir_all(dest.join(rel).parent().unwrap()).unwrap();
        fs::write(dest.join(rel), data).unwrap();
    }
}

#[test]
fn force_keeps_what_dest_held_and_delete_removes_it_inside_the_chains_folders() {
    let home = chain_home();
    let dest = home.path().join("r");
    users_files(&dest);
    let source = tree(&home.path().join("src"));

    let out = home.manager(&["restore", "code", dest.to_str().unwrap(), "--force"]);
    out.success();
    let said = stderr(&out);
    assert!(
        said.contains("entries)") && !said.contains("removed"),
        "{said}"
    );
    let mut restored = tree(&dest.join("src"));
    assert_eq!(restored.remove("a/mine").as_deref(), Some("mine"), "{said}");
    assert_eq!(restored.remove("mine_dir/deep").as_deref(), Some("deep"));
    assert_eq!(restored.remove("mine_dir").as_deref(), Some("folder"));
    // What the full archive wrote and the incremental deleted is gone all the same.
    assert_eq!(restored, source);
    assert_eq!(fs::read_to_string(dest.join("mine_top")).unwrap(), "top");

    // A mirror: the user's files inside src/ go, and are counted; mine_top stays.
    let out = home.manager(&["restore", "code", dest.to_str().unwrap(), "--delete"]);
    out.success();
    let said = stderr(&out);
    assert!(said.contains(", 3 removed)"), "{said}");
    assert_eq!(tree(&dest.join("src")), source);
    assert_eq!(fs::read_to_string(dest.join("mine_top")).unwrap(), "top");
    let log = home.manager_log().join("\n");
    assert!(log.contains("3 removed)"), "{log}");
}

#[test]
fn delete_mirrors_a_plain_archive_too_and_force_alone_keeps_extra_files() {
    let home = TestHome::new();
    home.write("src/x", "x");
    home.write("src/sub/y", "y");
    home.manager(&["create", "src;03:00;plain"]).success();
    home.run_ok(0);
    let dest = home.path().join("r");
    fs::create_dir_all(dest.join("src/sub")).unwrap();
    fs::write(dest.join("src/sub/extra"), "extra").unwrap();
    fs::write(dest.join("src/x"), "old x").unwrap();
    let out = home.manager(&["restore", "plain", dest.to_str().unwrap(), "--force"]);
    out.success();
    assert_eq!(fs::read_to_string(dest.join("src/x")).unwrap(), "x");
    assert_eq!(
        fs::read_to_string(dest.join("src/sub/extra")).unwrap(),
        "extra"
    );
    let out = home.manager(&["restore", "plain", dest.to_str().unwrap(), "--delete"]);
    out.success();
    assert!(stderr(&out).contains(", 1 removed)"), "{}", stderr(&out));
    assert_eq!(tree(&dest.join("src")), tree(&home.path().join("src")));

    // An archive of `./` (as `tar -C DIR .` writes) holds DEST itself: --delete mirrors it.
    put(
        &home,
        "dot.tar",
        &archive_of(&[dir("./"), file("./x", b"x")]),
    );
    let out = home.manager(&["restore", "dot.tar", dest.to_str().unwrap(), "--force"]);
    out.success();
    assert!(dest.join("src").exists());
    let out = home.manager(&["restore", "dot.tar", dest.to_str().unwrap(), "--delete"]);
    out.success();
    assert!(stderr(&out).contains(", 4 removed)"), "{}", stderr(&out));
    assert_eq!(
        tree(&dest),
        BTreeMap::from([("x".to_owned(), "x".to_owned())])
    );
}

// ---- hostile archives ------------------------------------------------------------

/// Runs `backup_manager --home HOME ARGS` under `/usr/bin/time -v`; returns its output
/// and its peak resident memory in KiB (`None` without GNU time).
fn with_peak_memory(home: &TestHome, args: &[&str]) -> (std::process::Output, Option<u64>) {
    let time = Path::new("/usr/bin/time");
    let mut command = if time.exists() {
        let mut c = Command::new(time);
        c.arg("-v").arg(common::MANAGER);
        c
    } else {
        eprintln!("note: no /usr/bin/time here; memory is not measured");
        Command::new(common::MANAGER)
    };
    let out = command
        .arg("--home")
        .arg(home.path())
        .args(args)
        .output()
        .unwrap();
    let peak = String::from_utf8_lossy(&out.stderr)
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .and_then(|n| n.parse().ok());
    (out, peak)
}

/// A zstd-compressed stream of `bytes` then `zeros` zero bytes.
fn zstd_of(bytes: &[u8], zeros: u64) -> Vec<u8> {
    let mut out = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    out.write_all(bytes).unwrap();
    let chunk = vec![0u8; 1 << 20];
    let mut left = zeros;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        out.write_all(&chunk[..n]).unwrap();
        left -= n as u64;
    }
    out.finish().unwrap()
}

#[test]
fn huge_metadata_is_refused_with_bounded_memory() {
    let home = TestHome::new();
    let dest = home.path().join("r");
    // Each declares 400 MiB of metadata, held in a few hundred KiB of zstd.
    let size = 400 << 20;
    for (what, flag, refusal) in [
        ("a folder listing", b'D', "folder listing of"),
        ("a long name", b'L', "long-name or pax entry"),
        ("pax records", b'x', "long-name or pax entry"),
    ] {
        let mut tar = declaring("big", flag, size);
        tar.extend(std::iter::repeat_n(b'Y', 4096));
        let bytes = zstd_of(&tar, size - 4096 + 2 * BLOCK as u64);
        assert!(bytes.len() < 1 << 20, "{what}: {} bytes", bytes.len());
        put(&home, "evil.tar.zst", &bytes);
        for args in [
            vec!["restore", "evil.tar.zst", dest.to_str().unwrap()],
            vec!["verify", "evil.tar.zst"],
        ] {
            let started = Instant::now();
            let (out, peak) = with_peak_memory(&home, &args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{what}: {args:?} succeeded");
            assert!(err.contains(refusal), "{what}: {args:?}: {err}");
            if let Some(kib) = peak {
                eprintln!(
                    "{what}: {args:?}: peak RSS {kib} KiB in {:?}",
                    started.elapsed()
                );
                assert!(kib < 64 << 10, "{what}: {args:?} peaked at {kib} KiB");
            }
        }
        assert!(!dest.exists() || fs::read_dir(&dest).unwrap().count() == 0);
    }
}

/// `cmd`, killed if it runs past `limit`; its output and how long it took.
fn within(mut cmd: Command, limit: Duration) -> (std::process::Output, Duration) {
    let started = Instant::now();
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            child.kill().unwrap();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (child.wait_with_output().unwrap(), started.elapsed())
}

#[test]
fn ten_thousand_nested_folders_are_checked_and_restored_in_seconds() {
    let home = TestHome::new();
    let mut bytes = Vec::new();
    let mut name = String::new();
    for _ in 0..10_000 {
        name.push_str("d/");
        bytes.extend(dir(&name));
    }
    bytes.extend(file(&format!("{name}leaf"), b"at the bottom"));
    put(&home, "deep.tar", &archive_of(&[bytes]));
    let dest = home.path().join("r");
    let limit = Duration::from_secs(60);
    for args in [
        vec!["verify", "deep.tar"],
        vec!["restore", "deep.tar", dest.to_str().unwrap()],
    ] {
        let mut cmd = Command::new(common::MANAGER);
        cmd.arg("--home").arg(home.path()).args(&args);
        let (out, took) = within(cmd, limit);
        eprintln!("{args:?}: {took:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?} after {took:?}: {err}");
        assert!(err.contains("10001 entries"), "{err}");
    }
    let find = Command::new("find")
        .arg(&dest)
        .args(["-name", "leaf"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&find.stdout).lines().count(), 1);
    // GNU rm copes with any depth; the temporary folder's own removal may not.
    Command::new("rm").arg("-rf").arg(&dest).status().unwrap();
}

/// Mounts a tmpfs of `size` at `at`; false (with a note) where that is not allowed.
fn small_fs(at: &Path, size: &str) -> bool {
    fs::create_dir_all(at).unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(at)
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("note: cannot mount a tmpfs here; the room check is not tested");
    }
    ok
}

#[test]
fn an_archive_declaring_more_than_dest_has_room_for_is_refused_before_writing() {
    let home = TestHome::new();
    let mnt = home.path().join("small");
    if !small_fs(&mnt, "8m") {
        return;
    }
    let _unmount = Unmount(mnt.clone());
    // 64 MiB of zeros, in a few KiB of zstd.
    let mut tar = file("fits", b"small");
    let mut h = Header::new(b"zeros".to_vec(), Kind::File);
    h.mode = 0o644;
    h.size = 64 << 20;
    h.encode(&mut tar);
    let bytes = zstd_of(&tar, (64 << 20) + 2 * BLOCK as u64);
    assert!(bytes.len() < 100 << 10, "{} bytes", bytes.len());
    put(&home, "zeros.tar.zst", &bytes);
    let dest = mnt.join("r");
    let out = home.manager(&["restore", "zeros.tar.zst", dest.to_str().unwrap()]);
    let err = out.failure(1).to_owned();
    assert!(
        err.contains("the archive needs up to 64.0 MiB") && err.contains("nothing was written"),
        "{err}"
    );
    assert!(!dest.exists() || fs::read_dir(&dest).unwrap().count() == 0);
}

struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Archives that restore refuses, each with what it is and why it is refused.
fn refused_archives() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let huge_sparse = [
        pax(&[
            ("GNU.sparse.name", "huge"),
            ("GNU.sparse.realsize", "1125899906842624"),
            ("GNU.sparse.map", "0,512"),
        ]),
        file("GNUSparseFile.0/huge", &[b'x'; 512]),
    ]
    .concat();
    vec![
        ("dot-dot", file("a/../../up", b"x"), "has '..' in its name"),
        ("absolute", file("/tmp/abs", b"x"), "has an absolute name"),
        (
            "under a link",
            [
                entry("l", Kind::Symlink, 0o777, b"", "/tmp"),
                file("l/x", b"x"),
            ]
            .concat(),
            "a symbolic link stored earlier",
        ),
        (
            "hard link out",
            entry("h", Kind::HardLink, 0o644, b"", "../etc/passwd"),
            "has '..' in its name",
        ),
        (
            "hard link to nothing",
            entry("h", Kind::HardLink, 0o644, b"", "nowhere"),
            "which the archive does not hold",
        ),
        (
            "folder then file",
            [dir("same"), file("same/in", b"x"), file("same", b"x")].concat(),
            "comes after a folder of the same name",
        ),
        (
            "under a file",
            [file("f", b"x"), file("f/x", b"x")].concat(),
            "which the archive holds as a file",
        ),
        (
            "petabyte sparse file",
            huge_sparse,
            "is a file of 1125899906842624 bytes",
        ),
        (
            "listing naming a path",
            entry("d", Kind::DUMPDIR, 0o755, b"Ya/../../x\0\0", ""),
            "folder listing naming",
        ),
    ]
}

#[test]
fn verify_refuses_what_restore_refuses_and_says_why() {
    let home = TestHome::new();
    let cases = refused_archives();
    let dest = home.path().join("r");
    for (what, bytes, why) in cases {
        put(&home, "evil.tar", &archive_of(&[bytes]));
        let out = home.manager(&["verify", "evil.tar"]);
        let err = out.failure(1).to_owned();
        assert!(
            err.contains("restore would refuse it") && err.contains(why),
            "{what}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{what}: {err}");
        let out = home.manager(&["restore", "evil.tar", dest.to_str().unwrap()]);
        let err = out.failure(1).to_owned();
        assert!(
            err.contains("refusing to restore") && err.contains(why),
            "{what}: {err}"
        );
        assert!(err.contains("nothing was written"), "{what}: {err}");
        assert!(
            !dest.exists() || fs::read_dir(&dest).unwrap().count() == 0,
            "{what}"
        );
    }
    // A hard link to a file already in DEST is fine for restore (verify cannot know).
    fs::create_dir_all(&dest).unwrap();
    fs::write(dest.join("there"), "there").unwrap();
    put(
        &home,
        "link.tar",
        &archive_of(&[entry("h", Kind::HardLink, 0o644, b"", "there")]),
    );
    let out = home.manager(&["restore", "link.tar", dest.to_str().unwrap(), "--force"]);
    out.success();
    assert_eq!(fs::read_to_string(dest.join("h")).unwrap(), "there");
}

#[test]
fn a_plain_archive_cut_short_or_hostile_past_large_files_is_refused_before_writing() {
    let home = TestHome::new();
    let dest = home.path().join("r");
    // Files larger than a read's buffer, whose data the check passes over, and large
    // enough to be copied file to file by the kernel when restored.
    let big: Vec<u8> = (0..1_500_000u32).map(|i| (i % 251) as u8).collect();
    let good = [
        file("a/big", &big),
        file("a/small", b"s"),
        file("b/big", &big),
    ];
    let whole = archive_of(&good);
    let in_second_big = whole.len() - 2 * BLOCK - 1000;
    let before_end = whole.len() - 2 * BLOCK;
    let cases = [
        (
            "cut in a large file's data",
            whole[..in_second_big].to_vec(),
            "ends inside the data of b/big",
        ),
        (
            "cut before the end marker",
            whole[..before_end].to_vec(),
            "without its end marker",
        ),
        (
            "hostile after large files",
            archive_of(&[good.concat(), file("a/../../up", b"x")]),
            "has '..' in its name",
        ),
        (
            // A negative size, which read as a number would be nearly 2^64 bytes.
            "a pax size of -1",
            archive_of(&[
                good.concat(),
                entry(
                    "PaxHeaders/c",
                    Kind::Other(b'x'),
                    0o644,
                    b"11 size=-1\n",
                    "",
                ),
                file("c", b"c"),
            ]),
            "a pax size of -1",
        ),
    ];
    for (what, bytes, why) in cases {
        put(&home, "cut.tar", &bytes);
        let out = home.manager(&["restore", "cut.tar", dest.to_str().unwrap()]);
        let err = out.failure(1).to_owned();
        assert!(err.contains(why), "{what}: {err}");
        assert!(
            err.contains("nothing was written") || !dest.exists(),
            "{what}: {err}"
        );
        assert!(
            !dest.exists() || fs::read_dir(&dest).unwrap().count() == 0,
            "{what}"
        );
    }
    put(&home, "whole.tar", &whole);
    home.manager(&["restore", "whole.tar", dest.to_str().unwrap()])
        .success();
    assert_eq!(fs::read(dest.join("a/big")).unwrap(), big);
    assert_eq!(fs::read(dest.join("a/small")).unwrap(), b"s");
    assert_eq!(fs::read(dest.join("b/big")).unwrap(), big);
}

#[test]
fn verify_source_never_opens_a_path_outside_the_source() {
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
    let home = TestHome::new();
    home.write("src/ok", "ok");
    home.manager(&["create", "src;03:00;code"]).success();
    home.write("outside/secret", "secret");
    // A folder in the archive that is a link to outside in the live tree now.
    symlink("../outside", home.path().join("src/was_a_folder")).unwrap();
    let watch = Inotify::init(InitFlags::IN_NONBLOCK).unwrap();
    watch
        .add_watch(&home.path().join("outside"), AddWatchFlags::IN_OPEN)
        .unwrap();
    for (what, bytes) in [
        ("climbing out", file("src/../outside/secret", b"secret")),
        (
            "through a live link",
            [
                dir("src"),
                dir("src/was_a_folder"),
                file("src/was_a_folder/secret", b"secret"),
            ]
            .concat(),
        ),
    ] {
        put(&home, "code.tar", &archive_of(&[bytes]));
        let out = home.manager(&["verify", "code", "--source"]);
        assert_ne!(out.code(), Some(0), "{what}: {}", out.stderr);
        let opened = watch.read_events().unwrap_or_default();
        assert!(opened.is_empty(), "{what}: outside/ was opened: {opened:?}");
        if what == "climbing out" {
            assert!(
                out.stderr.contains("restore would refuse it"),
                "{}",
                out.stderr
            );
        } else {
            let said = out.stdout_lines().join("\n");
            assert!(said.contains("src/was_a_folder/secret: missing"), "{said}");
        }
    }
}

// ---- failures and guarded places ---------------------------------------------------

#[test]
fn a_restore_failing_while_writing_sets_folder_modes_back_and_says_dest_is_partial() {
    let home = TestHome::new();
    let bytes = archive_of(&[
        entry("src", Kind::Dir, 0o755, b"", ""),
        entry("src/ro", Kind::Dir, 0o555, b"", ""),
        file("src/ro/f", b"f"),
        file("src/x", b"x"),
    ]);
    put(&home, "evil.tar", &bytes);
    let dest = home.path().join("r");
    // A folder of the user's where the archive has a file: never replaced.
    fs::create_dir_all(dest.join("src/x")).unwrap();
    fs::write(dest.join("src/x/users"), "users").unwrap();
    let out = home.manager(&["restore", "evil.tar", dest.to_str().unwrap(), "--force"]);
    let err = out.failure(1).to_owned();
    assert!(
        err.contains("a folder is in the way") && err.contains("is partial"),
        "{err}"
    );
    assert_eq!(mode(&dest.join("src/ro")), 0o555);
    assert_eq!(mode(&dest.join("src")), 0o755);
    assert_eq!(
        fs::read_to_string(dest.join("src/x/users")).unwrap(),
        "users"
    );
    fs::set_permissions(dest.join("src/ro"), fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn a_user_restore_drops_set_id_bits_and_root_keeps_them() {
    let home = TestHome::new();
    let bytes = archive_of(&[
        entry("suid", Kind::File, 0o4755, b"#!/bin/sh\n", ""),
        entry("sgid", Kind::File, 0o2755, b"#!/bin/sh\n", ""),
        entry("plain", Kind::File, 0o1755, b"#!/bin/sh\n", ""),
    ]);
    put(&home, "ids.tar", &bytes);
    let Some(prefix) = unprivileged_prefix() else {
        eprintln!("note: skipped, no way to run as uid {UNPRIVILEGED} here");
        return;
    };
    let as_root = nix::unistd::Uid::effective().is_root();
    if as_root {
        let root_dest = home.path().join("as_root");
        let out = home.manager(&["restore", "ids.tar", root_dest.to_str().unwrap()]);
        out.success();
        assert_eq!(mode(&root_dest.join("suid")), 0o4755);
        assert_eq!(mode(&root_dest.join("sgid")), 0o2755);
        let owner = format!("{UNPRIVILEGED}:{UNPRIVILEGED}");
        let ok = Command::new("chown")
            .args(["-R", &owner])
            .arg(home.path())
            .status();
        assert!(ok.unwrap().success());
    }
    let dest = home.path().join("as_user");
    let mut command: Vec<&str> = prefix.iter().map(String::as_str).collect();
    command.extend([common::MANAGER, "--home", home.path().to_str().unwrap()]);
    command.extend(["restore", "ids.tar", dest.to_str().unwrap()]);
    let out = Command::new(command[0])
        .args(&command[1..])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mode(&dest.join("suid")), 0o755);
    assert_eq!(mode(&dest.join("sgid")), 0o755);
    assert_eq!(mode(&dest.join("plain")) & 0o777, 0o755);
}

#[test]
fn dest_may_not_be_the_home_or_in_its_backups_folder() {
    let home = TestHome::new();
    home.write("src/f", "f");
    home.manager(&["create", "src;03:00;code"]).success();
    home.run_ok(0);
    let before = tree(home.path());
    let h = home.path().display().to_string();
    for (dest, why) in [
        (h.clone(), "it is this home"),
        (format!("{h}/src/.."), "it is this home"),
        (format!("{h}/backups"), "inside this home's backups folder"),
        (
            format!("{h}/backups/new/r"),
            "inside this home's backups folder",
        ),
    ] {
        let out = home.manager(&["restore", "code", &dest, "--force"]);
        let err = out.failure(1).to_owned();
        assert!(
            err.contains(why) && err.contains("restore into another folder"),
            "{dest}: {err}"
        );
    }
    let mut after = tree(home.path());
    after.retain(|path, _| !path.starts_with("logs"));
    let mut before = before;
    before.retain(|path, _| !path.starts_with("logs"));
    assert_eq!(after, before);
}

#[test]
fn a_restore_above_the_home_never_writes_over_its_files() {
    let top = tempfile::tempdir().unwrap();
    let top = top.path().canonicalize().unwrap();
    let home = top.join("h");
    fs::create_dir_all(home.join("backups")).unwrap();
    let run = |args: &[&str]| {
        let mut all = vec!["--home", home.to_str().unwrap()];
        all.extend_from_slice(args);
        common::run(common::MANAGER, &all, None)
    };
    fs::create_dir(home.join("src")).unwrap();
    run(&["create", "src;03:00;code"]).success();
    let schedules = fs::read(home.join("backup_schedules.txt")).unwrap();
    let state = fs::read(home.join(".backup_state.json")).ok();
    for (name, what) in [
        ("h/backup_schedules.txt", "this home's schedule file"),
        ("h/.backup_state.json", "this home's state file"),
        ("h/.backup_service.pid", "this home's pid file"),
        ("h/backups/code.tar", "this home's backups folder"),
        (
            "./h//.backup_schedules.lock",
            "this home's schedule lock file",
        ),
    ] {
        let bytes = archive_of(&[dir("h"), dir("h/src"), file(name, b"evil")]);
        fs::write(home.join("backups/evil.tar"), &bytes).unwrap();
        let out = run(&["restore", "evil.tar", top.to_str().unwrap(), "--force"]);
        let err = out.failure(1).to_owned();
        assert!(
            err.contains("would write") && err.contains(what),
            "{name}: {err}"
        );
        assert!(err.contains("nothing was written"), "{err}");
    }
    assert_eq!(
        fs::read(home.join("backup_schedules.txt")).unwrap(),
        schedules
    );
    assert_eq!(fs::read(home.join(".backup_state.json")).ok(), state);
    assert!(!home.join("backups/code.tar").exists());
    // A restore of the home's own tree above it is fine, and --delete keeps the home.
    let bytes = archive_of(&[dir("h"), dir("h/src"), file("h/src/new", b"new")]);
    fs::write(home.join("backups/ok.tar"), &bytes).unwrap();
    let out = run(&["restore", "ok.tar", top.to_str().unwrap(), "--delete"]);
    out.success();
    assert_eq!(fs::read_to_string(home.join("src/new")).unwrap(), "new");
    assert_eq!(
        fs::read(home.join("backup_schedules.txt")).unwrap(),
        schedules
    );
    assert!(home.join("backups/ok.tar").exists());
}
