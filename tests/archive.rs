//! The archive engine end to end: archives written by `backup_manager run` (the service's
//! own backup), read back by GNU tar and by `backup_manager verify` and `restore`,
//! compared with their source.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use backup::schedule::Schedule;
use backup::tar::{BLOCK, Header, Kind};

mod common;

/// A temporary home with the manager binary at hand.
struct Env {
    _dir: tempfile::TempDir,
    home: PathBuf,
    /// The user and group the manager runs as, if not ours.
    user: Option<(u32, u32)>,
}

/// `nobody`, whom a test running as root becomes to meet permissions it would pass.
const NOBODY: u32 = 65534;

impl Env {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().canonicalize().unwrap();
        fs::create_dir(home.join("backups")).unwrap();
        Env {
            _dir: dir,
            home,
            user: None,
        }
    }

    /// A home whose manager runs without privileges: as ourselves, or, when we are
    /// root, as `nobody`, to whom the home is given (root reads everything). Files made
    /// in it later must be given too, with [`Env::give`].
    fn unprivileged() -> Self {
        let mut env = Env::new();
        if is_root() {
            env.user = Some((NOBODY, NOBODY));
            env.give(&env.home);
            env.give(&env.path("backups"));
        }
        env
    }

    /// Gives `path` to the user the manager runs as.
    fn give(&self, path: &Path) {
        if let Some((uid, gid)) = self.user {
            std::os::unix::fs::lchown(path, Some(uid), Some(gid)).unwrap();
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.home.join(rel)
    }

    fn manager(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// `backup_manager` in this home, with `args`, not yet run.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_backup_manager"));
        command
            .arg("--home")
            .arg(&self.home)
            .args(args)
            .current_dir(&self.home);
        if let Some((uid, gid)) = self.user {
            use std::os::unix::process::CommandExt;
            command.uid(uid).gid(gid);
        }
        command
    }

    /// Adds the schedule with `backup_manager create`, then backs it up at once with
    /// `backup_manager run INDEX`, which must succeed.
    fn back_up(&self, line: &str, compress: Option<&str>) -> (Schedule, Ran) {
        let (schedule, index) = self.create(line, compress);
        let ran = self.run_ok(&schedule, index);
        (schedule, ran)
    }

    /// Adds the schedule with `backup_manager create`; returns it with its index.
    fn create(&self, line: &str, compress: Option<&str>) -> (Schedule, usize) {
        let mut args = vec!["create"];
        if let Some(c) = compress {
            args.extend(["--compress", c]);
        }
        args.push(line);
        let out = self.manager(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        let lines = fs::read_to_string(self.path("backup_schedules.txt")).unwrap();
        let schedule: Schedule = lines.lines().last().unwrap().parse().unwrap();
        (schedule, lines.lines().count() - 1)
    }

    /// Backs up schedule `index` with `backup_manager run INDEX`, which must succeed.
    fn run_ok(&self, schedule: &Schedule, index: usize) -> Ran {
        self.ran_ok(schedule, index, self.run(index))
    }

    /// What `backup_manager run INDEX`, which must have succeeded, printed.
    fn ran_ok(&self, schedule: &Schedule, index: usize, out: Output) -> Ran {
        // Done: 0, or 3 with warnings.
        assert!(
            matches!(out.status.code(), Some(0 | common::WARNINGS_EXIT)),
            "run {index}: {:?} {}",
            out.status,
            stderr(&out)
        );
        let log = fs::read_to_string(self.path("logs/backup_manager.log")).unwrap();
        let warnings = common::backed_up(
            &stderr(&out),
            &log,
            &schedule.path,
            &schedule.archive_file_name(),
        );
        common::assert_warned_status(out.status.code(), &warnings);
        Ran { warnings }
    }

    /// Starts `backup_manager run INDEX`, and returns as soon as the archive's temporary
    /// file appears: the backup has begun.
    fn start_run(&self, index: usize) -> Child {
        let run = self
            .command(&["run", &index.to_string()])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while fs::read_dir(self.path("backups")).unwrap().next().is_none() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no backup began"
            );
            // Yields rather than spins: on two cores, the backup needs one.
            std::thread::yield_now();
        }
        run
    }

    /// Restores the archive NAME into `out` in the home, which must succeed; returns
    /// `out`.
    fn restore_ok(&self, name: &str) -> PathBuf {
        let dest = self.path("out");
        let out = self.manager(&["restore", name, dest.to_str().unwrap()]);
        assert!(out.status.success(), "restore {name}: {}", stderr(&out));
        dest
    }

    /// `backup_manager run INDEX`.
    fn run(&self, index: usize) -> Output {
        self.manager(&["run", &index.to_string()])
    }
}

/// What `backup_manager run` printed about a backup that succeeded.
struct Ran {
    /// Its warnings, one per line, as on stderr (without the program's name).
    warnings: Vec<String>,
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// A tree with every kind of entry the engine stores, and a socket it skips.
fn build_tree(root: &Path) {
    fs::create_dir_all(root.join("docs/empty")).unwrap();
    fs::write(root.join("docs/hello.txt"), "hello\n").unwrap();
    fs::write(root.join("docs/big.bin"), vec![7u8; 600 * 1024]).unwrap();
    fs::set_permissions(
        root.join("docs/hello.txt"),
        fs::Permissions::from_mode(0o4751),
    )
    .unwrap();
    fs::hard_link(
        root.join("docs/hello.txt"),
        root.join("docs/hello-again.txt"),
    )
    .unwrap();
    symlink("hello.txt", root.join("docs/link")).unwrap();
    symlink("/nowhere/at/all", root.join("docs/dangling")).unwrap();
    nix::unistd::mkfifo(
        &root.join("docs/pipe"),
        nix::sys::stat::Mode::from_bits_truncate(0o640),
    )
    .unwrap();
    // Names over 100 and over 255 bytes, and one that is not UTF-8.
    let long = "d".repeat(120);
    let deep = root.join(&long).join(&long);
    fs::create_dir_all(&deep).unwrap();
    fs::write(deep.join("f".repeat(200)), "deep\n").unwrap();
    symlink("t".repeat(150), root.join(&long).join("long-link")).unwrap();
    fs::write(
        root.join(OsStr::from_bytes(b"caf\xe9-latin1.txt")),
        "not utf-8",
    )
    .unwrap();
    let old = nix::sys::time::TimeSpec::new(981_173_106, 0);
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        &root.join("docs/empty"),
        &old,
        &old,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .unwrap();
    if is_root() {
        nix::unistd::chown(
            &root.join("docs/big.bin"),
            Some(nix::unistd::Uid::from_raw(4321)),
            Some(nix::unistd::Gid::from_raw(8765)),
        )
        .unwrap();
    }
    std::os::unix::net::UnixListener::bind(root.join("docs/socket")).unwrap();
}

/// Everything about a tree that a backup must keep, by relative path.
fn snapshot(root: &Path) -> BTreeMap<Vec<u8>, String> {
    let mut out = BTreeMap::new();
    let mut inodes = BTreeMap::new();
    walk(root, root, &mut out, &mut inodes);
    out
}

fn walk(
    root: &Path,
    path: &Path,
    out: &mut BTreeMap<Vec<u8>, String>,
    inodes: &mut BTreeMap<u64, Vec<u8>>,
) {
    let meta = fs::symlink_metadata(path).unwrap();
    let rel = path
        .strip_prefix(root)
        .unwrap()
        .as_os_str()
        .as_bytes()
        .to_vec();
    let t = meta.file_type();
    let mut line = format!(
        "mode {:o} uid {} gid {}",
        meta.mode(),
        meta.uid(),
        meta.gid()
    );
    if !t.is_symlink() {
        line += &format!(" mtime {}", meta.mtime());
    }
    if t.is_file() {
        // Hard links: the second name of an inode says which name it shares it with.
        if meta.nlink() > 1 {
            if let Some(first) = inodes.get(&meta.ino()) {
                line += &format!(" same file as {}", String::from_utf8_lossy(first));
            } else {
                inodes.insert(meta.ino(), rel.clone());
            }
        }
        line += &format!(" file {:?}", fs::read(path).unwrap());
    } else if t.is_symlink() {
        line += &format!(" link to {:?}", fs::read_link(path).unwrap());
    } else if t.is_dir() {
        line += " dir";
        let mut children: Vec<_> = fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        children.sort();
        for child in children {
            walk(root, &child, out, inodes);
        }
    } else {
        line += &format!(" other {:?}", t);
    }
    out.insert(rel, line);
}

fn without_socket(mut snap: BTreeMap<Vec<u8>, String>) -> BTreeMap<Vec<u8>, String> {
    snap.remove(b"docs/socket".as_slice());
    snap
}

#[test]
fn gnu_tar_extracts_every_kind_of_entry_as_it_was() {
    let env = Env::new();
    build_tree(&env.path("tree"));
    let (schedule, ran) = env.back_up("tree;03:00;tree", None);
    assert_eq!(ran.warnings.len(), 1, "{:?}", ran.warnings);
    assert!(
        ran.warnings[0].contains("docs/socket") && ran.warnings[0].contains("socket"),
        "{:?}",
        ran.warnings
    );
    let archive_path = env.path("backups").join(schedule.archive_file_name());
    let mode = fs::metadata(&archive_path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let out = env.path("gnu");
    fs::create_dir(&out).unwrap();
    let status = Command::new("tar")
        .args(["-xpf"])
        .arg(&archive_path)
        .arg("-C")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    common::assert_same_map(
        &snapshot(&out.join("tree")),
        &without_socket(snapshot(&env.path("tree"))),
        "GNU tar's extraction",
    );

    // Entries are named after the schedule's PATH; hard links are stored once.
    let listing = Command::new("tar")
        .arg("-tvf")
        .arg(&archive_path)
        .output()
        .unwrap();
    let listing = stdout(&listing);
    assert!(
        listing.contains("tree/docs/hello.txt link to tree/docs/hello-again.txt"),
        "{listing}"
    );
    assert!(
        listing.contains("root/root"),
        "owner names are stored: {listing}"
    );
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with('p') && l.ends_with("tree/docs/pipe"))
    );
}

#[test]
fn restore_and_verify_round_trip_in_every_format() {
    for compress in [None, Some("gzip"), Some("zstd")] {
        let env = Env::new();
        build_tree(&env.path("tree"));
        let (schedule, _) = env.back_up("tree;03:00;tree", compress);
        let expected = match compress {
            None => "tree.tar",
            Some("gzip") => "tree.tar.gz",
            _ => "tree.tar.zst",
        };
        assert_eq!(schedule.archive_file_name(), expected);
        let listed = env.manager(&["backups"]);
        assert_eq!(stdout(&listed), format!("{expected}\n"));

        let verified = env.manager(&["verify", "tree", "--source"]);
        assert!(
            verified.status.success(),
            "{compress:?}: {}",
            stderr(&verified)
        );
        assert_eq!(stdout(&verified), "");
        assert!(
            stderr(&verified)
                .starts_with(&format!("backup_manager: verified backups/{expected} (")),
            "{compress:?}: {}",
            stderr(&verified)
        );

        let dest = env.path("restored");
        let restored = env.manager(&["restore", "tree", dest.to_str().unwrap()]);
        assert!(
            restored.status.success(),
            "{compress:?}: {}",
            stderr(&restored)
        );
        // Every entry but DEST itself came out of the archive.
        assert_eq!(
            stderr(&restored),
            format!(
                "backup_manager: restored backups/{expected} into {} ({} entries)\n",
                dest.display(),
                snapshot(&dest).len() - 1
            ),
            "{compress:?}"
        );
        common::assert_same_map(
            &snapshot(&dest.join("tree")),
            &without_socket(snapshot(&env.path("tree"))),
            &format!("{compress:?}"),
        );
        let log = fs::read_to_string(env.path("logs/backup_manager.log")).unwrap();
        assert!(
            log.contains(&format!("Verified backups/{expected} (")),
            "{log}"
        );
        assert!(
            log.contains(&format!(
                "Restored backups/{expected} into {}",
                dest.display()
            )),
            "{log}"
        );
    }
}

#[test]
fn verify_source_lists_what_changed_since_the_backup() {
    let env = Env::new();
    build_tree(&env.path("tree"));
    env.back_up("tree;03:00;tree", None);
    fs::write(env.path("tree/docs/hello.txt"), "HELLO\n").unwrap();
    fs::remove_file(env.path("tree/docs/link")).unwrap();
    let out = env.manager(&["verify", "tree", "--source"]);
    assert!(!out.status.success());
    let listed = stdout(&out);
    // hello.txt and hello-again.txt are one file; the archive holds its data under the
    // name that sorts first.
    assert!(
        listed.contains("tree/docs/hello-again.txt: contents differ"),
        "{listed}"
    );
    assert!(
        listed.contains("tree/docs/link: missing from the source"),
        "{listed}"
    );
    assert!(
        stderr(&out).contains("differs from its source"),
        "{}",
        stderr(&out)
    );
    // Without --source, only the structure is checked: it is sound.
    assert!(env.manager(&["verify", "tree"]).status.success());
}

#[test]
fn restore_refuses_a_folder_that_is_not_empty_unless_forced() {
    let env = Env::new();
    build_tree(&env.path("tree"));
    env.back_up("tree;03:00;tree", None);
    let dest = env.path("dest");
    fs::create_dir(&dest).unwrap();
    fs::write(dest.join("keep.txt"), "mine").unwrap();
    let out = env.manager(&["restore", "tree", dest.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not empty"), "{}", stderr(&out));
    assert_eq!(fs::read_dir(&dest).unwrap().count(), 1);
    let out = env.manager(&["restore", "tree", dest.to_str().unwrap(), "--force"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(fs::read_to_string(dest.join("keep.txt")).unwrap(), "mine");
    assert_eq!(
        fs::read_to_string(dest.join("tree/docs/hello.txt")).unwrap(),
        "hello\n"
    );
}

// ---- live data -------------------------------------------------------------------

/// Checks that GNU tar and our verify both accept the archive.
fn assert_valid(env: &Env, schedule: &Schedule) {
    let path = env.path("backups").join(schedule.archive_file_name());
    let tar = Command::new("tar").arg("-tvf").arg(&path).output().unwrap();
    assert!(tar.status.success(), "GNU tar: {}", stderr(&tar));
    let ours = env.manager(&["verify", &schedule.name]);
    assert!(ours.status.success(), "verify: {}", stderr(&ours));
}

#[test]
fn a_file_shorter_than_its_size_is_padded_and_warned_about() {
    // sysfs files claim 4096 bytes and hold a few: a file that shrinks as it is read.
    let path = "/sys/kernel/mm/transparent_hugepage/enabled";
    if !Path::new(path).exists() {
        eprintln!("skipped: no {path}");
        return;
    }
    let env = Env::new();
    let (schedule, ran) = env.back_up(&format!("{path};03:00;shrank"), None);
    assert_eq!(ran.warnings.len(), 1, "{:?}", ran.warnings);
    assert!(ran.warnings[0].contains(path), "{:?}", ran.warnings);
    assert!(ran.warnings[0].contains("shrank"), "{:?}", ran.warnings);
    assert_valid(&env, &schedule);
    let dest = env.restore_ok("shrank");
    let restored = fs::read(dest.join(&path[1..])).unwrap();
    assert_eq!(restored.len(), 4096);
    assert!(restored.starts_with(&fs::read(path).unwrap()));
}

#[test]
fn a_file_longer_than_its_size_is_cut_and_warned_about() {
    // procfs files claim 0 bytes and hold more: a file that grows as it is read.
    let env = Env::new();
    let (schedule, ran) = env.back_up("/proc/version;03:00;grew", None);
    assert_eq!(ran.warnings.len(), 1, "{:?}", ran.warnings);
    assert!(
        ran.warnings[0].contains("/proc/version"),
        "{:?}",
        ran.warnings
    );
    assert!(ran.warnings[0].contains("grew"), "{:?}", ran.warnings);
    assert_valid(&env, &schedule);
}

#[test]
fn a_large_file_that_shrinks_during_the_backup_is_padded_and_warned_about() {
    // Cut from 64 MiB down to 32, a MiB at a time, as soon as the backup begins: the walk
    // takes the file's size somewhere on the way and then finds less to read. Tried until
    // it did.
    for _ in 0..20 {
        let env = Env::new();
        fs::create_dir(env.path("live")).unwrap();
        let big = env.path("live/big.bin");
        fs::write(&big, vec![b'x'; 64 << 20]).unwrap();
        let (schedule, index) = env.create("live;03:00;live", None);
        let file = fs::OpenOptions::new().write(true).open(&big).unwrap();
        let run = env.start_run(index);
        for mib in (32..64).rev() {
            file.set_len(mib << 20).unwrap();
        }
        let ran = env.ran_ok(&schedule, index, run.wait_with_output().unwrap());
        if ran.warnings.is_empty() {
            continue;
        }
        assert_valid(&env, &schedule);
        // What was read is there, then zeros, to the size the header announced.
        let dest = env.restore_ok("live");
        let restored = fs::read(dest.join("live/big.bin")).unwrap();
        let data = restored.iter().take_while(|&&b| b == b'x').count();
        assert!(data >= 32 << 20, "only {data} bytes of data");
        assert!(data < restored.len(), "nothing was padded");
        assert!(restored[data..].iter().all(|&b| b == 0));
        assert_eq!(
            ran.warnings,
            [format!(
                "{}: shrank by {} bytes while being read; stored padded with zeros to its \
                 size of {} bytes",
                big.display(),
                restored.len() - data,
                restored.len()
            )]
        );
        return;
    }
    panic!("the file never shrank while being read in 20 tries");
}

#[test]
fn a_file_that_grows_during_the_backup_leaves_a_valid_archive() {
    let env = Env::new();
    fs::create_dir(env.path("live")).unwrap();
    fs::write(env.path("live/a.txt"), "before").unwrap();
    let growing = env.path("live/growing.log");
    fs::write(&growing, vec![b'x'; 4 << 20]).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let growing = growing.clone();
        std::thread::spawn(move || {
            use std::io::Write;
            let mut f = fs::OpenOptions::new().append(true).open(growing).unwrap();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                f.write_all(&[b'y'; 4096]).unwrap();
            }
        })
    };
    let (schedule, ran) = env.back_up("live;03:00;live", None);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    // The writer never stops while the backup runs: the file always grew after its size
    // was taken.
    assert_eq!(ran.warnings.len(), 1, "{:?}", ran.warnings);
    assert!(
        ran.warnings[0].starts_with(&format!("{}: grew while being read", growing.display())),
        "{}",
        ran.warnings[0]
    );
    assert_valid(&env, &schedule);
    let dest = env.restore_ok("live");
    assert_eq!(
        fs::read_to_string(dest.join("live/a.txt")).unwrap(),
        "before"
    );
}

#[test]
fn files_that_vanish_during_the_backup_leave_a_valid_archive() {
    // Deleting while the backup runs is a race. Files are deleted from the last, as soon
    // as the archive's temporary file appears, while the walk goes from the first: they
    // meet in the middle, and what the walk listed but did not reach has vanished. Tried
    // until a file was seen to vanish.
    for _ in 0..20 {
        let env = Env::new();
        let dir = env.path("live");
        fs::create_dir(&dir).unwrap();
        for i in 0..3000 {
            fs::write(dir.join(format!("f{i:04}")), format!("{i}")).unwrap();
        }
        let (schedule, index) = env.create("live;03:00;live", None);
        let run = env.start_run(index);
        for i in (0..3000).rev().step_by(2) {
            let _ = fs::remove_file(dir.join(format!("f{i:04}")));
        }
        let ran = env.ran_ok(&schedule, index, run.wait_with_output().unwrap());
        assert_valid(&env, &schedule);
        for warning in &ran.warnings {
            assert!(warning.contains("vanished"), "{warning}");
        }
        if !ran.warnings.is_empty() {
            // Every other entry is whole.
            let dest = env.restore_ok("live");
            for entry in fs::read_dir(dest.join("live")).unwrap() {
                let entry = entry.unwrap();
                let name = entry.file_name().into_string().unwrap();
                let n: u32 = name[1..].parse().unwrap();
                assert_eq!(fs::read_to_string(entry.path()).unwrap(), n.to_string());
            }
            return;
        }
    }
    panic!("no file vanished mid-backup in 20 tries");
}

#[test]
fn unreadable_files_and_folders_are_left_out_with_a_warning() {
    let env = Env::unprivileged();
    for folder in ["src", "src/locked"] {
        fs::create_dir(env.path(folder)).unwrap();
        env.give(&env.path(folder));
    }
    for file in ["src/ok.txt", "src/secret.txt", "src/locked/inner.txt"] {
        fs::write(env.path(file), file).unwrap();
        env.give(&env.path(file));
    }
    let no_access = fs::Permissions::from_mode(0o000);
    fs::set_permissions(env.path("src/secret.txt"), no_access.clone()).unwrap();
    fs::set_permissions(env.path("src/locked"), no_access).unwrap();

    let (schedule, ran) = env.back_up("src;03:00;src", None);
    // As ourselves, the folder must be opened again to be removed.
    fs::set_permissions(env.path("src/locked"), fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(
        ran.warnings,
        [
            "src/locked: cannot open the folder (Permission denied); its contents are left out",
            "src/secret.txt: cannot read it (Permission denied); left out",
        ]
        .map(|w| format!("{}/{w}", env.home.display())),
    );
    assert_valid(&env, &schedule);
    let tar = Command::new("tar")
        .arg("-tf")
        .arg(env.path("backups/src.tar"))
        .output()
        .unwrap();
    assert_eq!(stdout(&tar), "src/\nsrc/locked/\nsrc/ok.txt\n");
}

#[test]
fn an_unreadable_source_fails_the_backup_and_writes_no_archive() {
    let env = Env::unprivileged();
    fs::create_dir(env.path("src")).unwrap();
    env.give(&env.path("src"));
    fs::set_permissions(env.path("src"), fs::Permissions::from_mode(0o000)).unwrap();
    env.create("src;03:00;src", None);
    let out = env.run(0);
    fs::set_permissions(env.path("src"), fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let said = stderr(&out);
    assert!(
        said.starts_with("backup_manager: backup of src into backups/src.tar failed")
            && said.contains(&format!(
                "opening source folder {}",
                env.path("src").display()
            ))
            && said.ends_with("Permission denied\n")
            && said.lines().count() == 1,
        "{said}"
    );
    assert_eq!(fs::read_dir(env.path("backups")).unwrap().count(), 0);
}

// ---- hostile and damaged archives ------------------------------------------------

fn entry(name: &str, kind: Kind, data: &[u8], link: &str) -> Vec<u8> {
    let mut h = Header::new(name.as_bytes().to_vec(), kind);
    h.mode = if kind == Kind::Dir { 0o755 } else { 0o644 };
    h.size = data.len() as u64;
    h.link = link.as_bytes().to_vec();
    let mut out = Vec::new();
    h.encode(&mut out);
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
    out
}

fn archive_of(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut out = entries.concat();
    out.extend_from_slice(&[0u8; 2 * BLOCK]);
    out
}

/// Restores a hand-made archive; returns the manager's output.
fn restore_hostile(env: &Env, bytes: &[u8], dest: &Path, force: bool) -> Output {
    fs::write(env.path("backups/evil.tar"), bytes).unwrap();
    let mut args = vec!["restore", "evil.tar", dest.to_str().unwrap()];
    if force {
        args.push("--force");
    }
    env.manager(&args)
}

#[test]
fn restore_never_writes_outside_dest() {
    let env = Env::new();
    let outside = env.path("outside");
    fs::create_dir(&outside).unwrap();
    let dest = env.path("dest");
    let outside_str = outside.to_str().unwrap();
    let evil_abs = format!("{outside_str}/abs.txt");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "dot-dot",
            archive_of(&[
                entry("ok.txt", Kind::File, b"fine", ""),
                entry("../outside/up.txt", Kind::File, b"evil", ""),
            ]),
        ),
        (
            "absolute",
            archive_of(&[entry(&evil_abs, Kind::File, b"evil", "")]),
        ),
        (
            "through a link",
            archive_of(&[
                entry("hop", Kind::Symlink, b"", outside_str),
                entry("hop/through.txt", Kind::File, b"evil", ""),
            ]),
        ),
        (
            "hard link out",
            archive_of(&[entry("hl", Kind::HardLink, b"", "../outside/victim")]),
        ),
    ];
    fs::write(outside.join("victim"), "untouched").unwrap();
    for (what, bytes) in cases {
        let _ = fs::remove_dir_all(&dest);
        let out = restore_hostile(&env, &bytes, &dest, false);
        assert!(!out.status.success(), "{what}: restore succeeded");
        assert!(
            stderr(&out).contains("refusing"),
            "{what}: {}",
            stderr(&out)
        );
        assert_eq!(
            fs::read_dir(&outside).unwrap().count(),
            1,
            "{what}: something was written outside"
        );
        // Checked before anything is written: the destination stays empty.
        assert!(
            !dest.exists() || fs::read_dir(&dest).unwrap().count() == 0,
            "{what}: partial restore"
        );
    }
    assert_eq!(
        fs::read_to_string(outside.join("victim")).unwrap(),
        "untouched"
    );
}

#[test]
fn restore_does_not_write_through_a_link_already_in_dest() {
    let env = Env::new();
    let outside = env.path("outside");
    fs::create_dir(&outside).unwrap();
    let dest = env.path("dest");
    fs::create_dir(&dest).unwrap();
    symlink(&outside, dest.join("docs")).unwrap();
    symlink(outside.join("target.txt"), dest.join("file.txt")).unwrap();
    let bytes = archive_of(&[
        entry("file.txt", Kind::File, b"replaces the link", ""),
        entry("docs/x.txt", Kind::File, b"evil", ""),
    ]);
    let out = restore_hostile(&env, &bytes, &dest, true);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("refusing to write through docs"),
        "{}",
        stderr(&out)
    );
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
    // The link in the way of a file was replaced, not followed.
    assert!(
        !fs::symlink_metadata(dest.join("file.txt"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

fn good_archive(env: &Env, compress: Option<&str>) -> (Schedule, Vec<u8>) {
    fs::create_dir_all(env.path("src/sub")).unwrap();
    fs::write(env.path("src/a.txt"), "a".repeat(3000)).unwrap();
    fs::write(env.path("src/sub/b.txt"), "b".repeat(5000)).unwrap();
    let (schedule, _) = env.back_up("src;03:00;src", compress);
    let bytes = fs::read(env.path("backups").join(schedule.archive_file_name())).unwrap();
    (schedule, bytes)
}

#[test]
fn a_link_in_the_backups_folder_is_not_an_archive() {
    let env = Env::new();
    good_archive(&env, None);
    // A good archive outside the folder, linked in: verify and restore would read it.
    fs::rename(env.path("backups/src.tar"), env.path("elsewhere.tar")).unwrap();
    symlink(env.path("elsewhere.tar"), env.path("backups/src.tar")).unwrap();
    assert_eq!(stdout(&env.manager(&["backups"])), "");
    let dest = env.path("out");
    for args in [
        vec!["verify", "src"],
        vec!["verify", "src.tar"],
        vec!["restore", "src.tar", dest.to_str().unwrap()],
    ] {
        let out = env.manager(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).starts_with("backup_manager: no archive named src"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    assert!(!dest.exists());
}

fn verify_fails(env: &Env, schedule: &Schedule, bytes: &[u8], what: &str) -> String {
    fs::write(
        env.path("backups").join(schedule.archive_file_name()),
        bytes,
    )
    .unwrap();
    let out = env.manager(&["verify", &schedule.name]);
    assert!(!out.status.success(), "{what}: verify passed");
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{what}: {err}");
    let log = fs::read_to_string(env.path("logs/backup_manager.log")).unwrap();
    assert!(
        log.lines()
            .last()
            .unwrap()
            .contains("] Error: verifying backups/"),
        "{log}"
    );
    err
}

#[test]
fn verify_catches_truncated_and_corrupted_archives() {
    let env = Env::new();
    let (schedule, good) = good_archive(&env, None);
    assert!(env.manager(&["verify", "src"]).status.success());
    // Cut in the data of a file, in a header, and before the end marker.
    let err = verify_fails(&env, &schedule, &good[..BLOCK * 3], "cut in data");
    assert!(
        err.contains("cut short") || err.contains("ends inside"),
        "{err}"
    );
    verify_fails(&env, &schedule, &good[..BLOCK * 2 + 100], "cut in header");
    let end = good.len() - good.iter().rev().take_while(|&&b| b == 0).count();
    let end = end.div_ceil(BLOCK) * BLOCK;
    let err = verify_fails(&env, &schedule, &good[..end], "no end marker");
    assert!(err.contains("end marker"), "{err}");
    // One flipped bit in the first header (the pax header of the first entry: the block
    // after it holds its records, which carry no checksum, as a file's data carries none).
    let mut flipped = good.clone();
    flipped[10] ^= 0x01;
    let err = verify_fails(&env, &schedule, &flipped, "flipped bit");
    assert!(err.contains("checksum"), "{err}");
}

#[test]
fn verify_catches_damaged_compressed_archives() {
    for compress in ["gzip", "zstd"] {
        let env = Env::new();
        let (schedule, good) = good_archive(&env, Some(compress));
        assert!(env.manager(&["verify", "src"]).status.success());
        verify_fails(&env, &schedule, &good[..good.len() - 5], compress);
        let mut flipped = good.clone();
        let middle = flipped.len() / 2;
        flipped[middle] ^= 0xff;
        verify_fails(&env, &schedule, &flipped, compress);
    }
}

#[test]
fn a_failed_backup_leaves_the_previous_archive_and_no_temporary_file() {
    let env = Env::new();
    let (_, good) = good_archive(&env, None);
    fs::remove_dir_all(env.path("src")).unwrap();
    let out = env.run(0);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("backup of src into backups/src.tar failed"),
        "{}",
        stderr(&out)
    );
    let mut names: Vec<_> = fs::read_dir(env.path("backups"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    // The archive and its (hidden) index, as they were.
    assert_eq!(names, [".src.tar.idx", "src.tar"]);
    assert_eq!(fs::read(env.path("backups/src.tar")).unwrap(), good);
}

#[test]
fn a_name_is_one_archive_series_whatever_its_compression() {
    let env = Env::new();
    fs::create_dir(env.path("src")).unwrap();
    assert!(env.manager(&["create", "src;01:00;n"]).status.success());
    let out = env.manager(&["create", "--compress", "zstd", "src;02:00;n"]);
    assert!(!out.status.success());
    let out = env.manager(&["create", "src;02:00;m;xz"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("malformed schedule: src;02:00;m;xz"),
        "{}",
        stderr(&out)
    );
    let out = env.manager(&["create", "--compress", "gzip", "src;02:00;m"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let list = env.manager(&["list"]);
    assert_eq!(stdout(&list), "0: src;01:00;n\n1: src;02:00;m;gzip\n");
}

/// Files of several MiB, of sizes that end inside a page and on one, among small ones:
/// their data goes into a plain archive by the kernel where it can, and the archive must
/// hold exactly what they hold, for GNU tar, our restore and the index alike.
#[test]
fn large_files_of_any_size_come_back_whole() {
    let env = Env::new();
    let tree = env.path("tree");
    fs::create_dir_all(&tree).unwrap();
    let sizes = [(4 << 20) + 777, 9 << 20, (5 << 20) + 4096, (6 << 20) - 1];
    for (i, size) in sizes.iter().enumerate() {
        let data: Vec<u8> = (0..*size).map(|n: usize| (n * 31 + i) as u8).collect();
        fs::write(tree.join(format!("big{i}.bin")), data).unwrap();
        fs::write(tree.join(format!("small{i}.txt")), format!("small {i}\n")).unwrap();
    }
    let (schedule, ran) = env.back_up("tree;03:00;tree", None);
    assert!(ran.warnings.is_empty(), "{:?}", ran.warnings);
    let archive = env.path("backups").join(schedule.archive_file_name());

    let by_tar = env.path("by-tar");
    fs::create_dir_all(&by_tar).unwrap();
    let extracted = std::process::Command::new("tar")
        .arg("-xf")
        .arg(&archive)
        .arg("-C")
        .arg(&by_tar)
        .status()
        .unwrap();
    assert!(extracted.success(), "GNU tar: {extracted}");
    let dest = env.path("restored");
    let restored = env.manager(&["restore", "tree", dest.to_str().unwrap()]);
    assert!(restored.status.success(), "{}", stderr(&restored));
    for i in 0..sizes.len() {
        let name = format!("tree/big{i}.bin");
        let source = fs::read(env.path(&name)).unwrap();
        for (who, got) in [
            ("GNU tar", by_tar.join(&name)),
            ("restore", dest.join(&name)),
        ] {
            assert!(fs::read(&got).unwrap() == source, "{who}: {name} differs");
        }
        let printed = env.manager(&["cat", "tree", &name]);
        assert!(printed.status.success(), "{}", stderr(&printed));
        assert!(printed.stdout == source, "cat: {name} differs");
    }
    let verified = env.manager(&["verify", "tree"]);
    assert!(verified.status.success(), "{}", stderr(&verified));
}
