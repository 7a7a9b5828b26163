//! Getting files back without restoring a whole archive: `files` lists what `tar -tv`
//! lists, `cat` prints a file as it was, from plain, gzip and zstd archives (written in
//! independent frames that GNU tar, zstd, gzip and bsdtar still read), and an archive
//! whose index is missing or damaged gives the same answers, with one warning.

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use common::TestHome;

/// Bytes that tell their offset, so that a piece read from the wrong place shows.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|i| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (x >> 56) as u8 ^ (i as u8)
        })
        .collect()
}

/// A tree with what a user keeps: folders (one empty), small files, a file that spans
/// several compressed frames, a symbolic and a hard link, a name over 100 bytes.
fn make_tree(home: &TestHome) {
    home.write("src/a.txt", "alpha\n");
    home.write("src/sub/b.rs", "fn main() {}\n");
    home.write("src/sub/deeper/c.bin", pattern(5000, 3));
    home.write("src/big.bin", pattern(9 << 20, 7));
    let long = format!("src/{}/{}.txt", "l".repeat(60), "n".repeat(70));
    home.write(&long, "long name\n");
    home.write("src/last.txt", "the end\n");
    fs::create_dir_all(home.path().join("src/empty")).unwrap();
    symlink("a.txt", home.path().join("src/link")).unwrap();
    fs::hard_link(home.path().join("src/a.txt"), home.path().join("src/hard")).unwrap();
}

/// The regular files of the tree under `root`, relative to `root`'s parent.
fn files_under(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                let rel = entry.path();
                let rel = rel.strip_prefix(root.parent().unwrap()).unwrap();
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

fn tar_tv(archive: &Path) -> Vec<String> {
    let out = Command::new("tar")
        .arg("-tvf")
        .arg(archive)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// `files NAME` and `cat` of every file give what `tar -tv` and the source give; the
/// warnings the manager printed are returned.
fn assert_browses(home: &TestHome, name: &str, archive: &Path) -> Vec<String> {
    let listed = home.manager(&["files", name]);
    listed.success();
    common::assert_same_lines(&listed.stdout_lines(), &tar_tv(archive), "files");
    let mut warnings: Vec<String> = listed.stderr.lines().map(str::to_owned).collect();
    for file in files_under(&home.path().join("src")) {
        let out = Command::new(env!("CARGO_BIN_EXE_backup_manager"))
            .arg("--home")
            .arg(home.path())
            .args(["cat", name, &file])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cat {file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stdout == fs::read(home.path().join(&file)).unwrap(),
            "cat {file} differs from the source"
        );
        warnings.extend(
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .map(str::to_owned),
        );
    }
    warnings
}

/// Extracts `archive` with a standard tool into a new folder of `home`; returns it.
fn extract_with(home: &TestHome, archive: &Path, how: &str) -> std::path::PathBuf {
    let dest = home
        .path()
        .join(format!("by-{}", how.split(' ').next().unwrap()));
    fs::create_dir_all(&dest).unwrap();
    let script = if how.starts_with("bsdtar") || how.starts_with("tar ") {
        format!("{how} \"$1\" -C \"$2\"")
    } else {
        format!("{how} \"$1\" | tar -x -C \"$2\"")
    };
    let out = Command::new("sh")
        .args(["-c", &script, "sh"])
        .arg(archive)
        .arg(&dest)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{how}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dest
}

fn assert_same_files(a: &Path, b: &Path) {
    let (fa, fb) = (files_under(a), files_under(b));
    let strip = |list: Vec<String>| -> Vec<String> {
        list.into_iter()
            .map(|f| f.split_once('/').map_or(f.clone(), |(_, r)| r.to_owned()))
            .collect()
    };
    assert_eq!(strip(fa.clone()), strip(fb.clone()));
    for (x, y) in fa.iter().zip(&fb) {
        let x = a.parent().unwrap().join(x);
        let y = b.parent().unwrap().join(y);
        assert!(
            fs::read(&x).unwrap() == fs::read(&y).unwrap(),
            "{}",
            x.display()
        );
    }
}

#[test]
fn files_and_cat_answer_from_plain_gzip_and_zstd_archives() {
    for (compress, file, tools) in [
        (None, "src.tar", &["tar -xf", "bsdtar -xf"][..]),
        (
            Some("gzip"),
            "src.tar.gz",
            &["gzip -dc", "tar -xzf", "bsdtar -xf"][..],
        ),
        (
            Some("zstd"),
            "src.tar.zst",
            &["zstd -dc", "tar --zstd -xf", "bsdtar -xf"][..],
        ),
    ] {
        let home = TestHome::new();
        make_tree(&home);
        let args: Vec<&str> = compress.map_or(vec![], |c| vec!["--compress", c]);
        home.back_up(&args, "src;03:00;src");
        let archive = home.archive_path(file);
        assert!(home.archive_path(&format!(".{file}.idx")).is_file());
        let warnings = assert_browses(&home, "src", &archive);
        assert!(warnings.is_empty(), "{warnings:?}");
        for tool in tools {
            let dest = extract_with(&home, &archive, tool);
            assert_same_files(&dest.join("src"), &home.path().join("src"));
        }
    }
}

#[test]
fn zstd_archives_are_seekable_frames_with_a_seek_table() {
    let home = TestHome::new();
    make_tree(&home);
    home.back_up(&["--compress", "zstd"], "src;03:00;src");
    let out = Command::new("zstd")
        .arg("-l")
        .arg(home.archive_path("src.tar.zst"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // Frames, then the skippable frame that holds the seek table.
    let line = text.lines().nth(1).unwrap().to_owned();
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert!(fields[0].parse::<u32>().unwrap() >= 3, "{text}");
    assert_eq!(fields[1], "1", "{text}");
    let data = fs::read(home.archive_path("src.tar.zst")).unwrap();
    assert_eq!(&data[data.len() - 4..], &0x8F92_EAB1u32.to_le_bytes());
}

#[test]
fn a_missing_or_damaged_index_falls_back_to_the_archive_with_one_warning() {
    for (compress, file) in [(None, "src.tar"), (Some("zstd"), "src.tar.zst")] {
        let home = TestHome::new();
        make_tree(&home);
        let args: Vec<&str> = compress.map_or(vec![], |c| vec!["--compress", c]);
        home.back_up(&args, "src;03:00;src");
        let archive = home.archive_path(file);
        let index = home.archive_path(&format!(".{file}.idx"));
        let good = fs::read(&index).unwrap();

        fs::remove_file(&index).unwrap();
        let warnings = assert_browses(&home, "src", &archive);
        assert!(!warnings.is_empty());
        assert!(
            warnings
                .iter()
                .all(|w| w.contains("has no index; reading the archive instead")),
            "{warnings:?}"
        );
        let listed = home.manager(&["files", "src"]);
        assert_eq!(listed.stderr.lines().count(), 1, "{}", listed.stderr);

        let mut damaged = good.clone();
        let middle = damaged.len() / 2;
        damaged[middle] ^= 0x10;
        fs::write(&index, &damaged).unwrap();
        let warnings = assert_browses(&home, "src", &archive);
        assert!(
            warnings
                .iter()
                .all(|w| w.contains("damaged") && w.contains("reading the archive")),
            "{warnings:?}"
        );

        fs::write(&index, &good[..good.len() / 3]).unwrap();
        let warnings = assert_browses(&home, "src", &archive);
        assert!(
            warnings.iter().all(|w| w.contains("reading the archive")),
            "{warnings:?}"
        );
    }
}

#[test]
fn files_under_a_path_and_cat_take_the_path_as_the_user_knows_it() {
    let home = TestHome::new();
    make_tree(&home);
    home.back_up(&[], "src;03:00;src");
    let absolute = home.path().join("src/sub");
    for path in ["sub", "src/sub", absolute.to_str().unwrap()] {
        let out = home.manager(&["files", "src", path]);
        out.success();
        let names: Vec<&str> = out
            .stdout_lines()
            .iter()
            .map(|l| l.rsplit(' ').next().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "src/sub/",
                "src/sub/b.rs",
                "src/sub/deeper/",
                "src/sub/deeper/c.bin"
            ],
            "{path}"
        );
        let cat = home.manager(&["cat", "src", &format!("{path}/b.rs")]);
        cat.success();
        assert_eq!(cat.stdout, "fn main() {}\n");
    }
    // Each name of a hard link, alone, comes back with its data.
    for (i, path) in ["a.txt", "hard"].into_iter().enumerate() {
        let dest = home.path().join(format!("only-{i}"));
        home.manager(&["restore", "src", dest.to_str().unwrap(), "--path", path])
            .success();
        assert_eq!(fs::read(dest.join("src").join(path)).unwrap(), b"alpha\n");
        assert!(!dest.join("src/sub").exists());
    }
    let dest = home.path().join("refused");
    let out = home.manager(&["restore", "src", dest.to_str().unwrap(), "--path", "nope"]);
    assert!(
        out.failure(1).contains("holds no \"nope\""),
        "{}",
        out.stderr
    );
    assert!(!dest.exists(), "a refused restore made its destination");
    let out = home.manager(&["cat", "src", "nope.txt"]);
    assert!(
        out.failure(1).contains("holds no \"nope.txt\""),
        "{}",
        out.stderr
    );
    let out = home.manager(&["cat", "src", "sub"]);
    assert!(out.failure(1).contains("not a file"), "{}", out.stderr);
}

#[test]
fn verify_checks_the_index_and_rebuilds_it() {
    for (compress, file) in [
        (None, "src.tar"),
        (Some("gzip"), "src.tar.gz"),
        (Some("zstd"), "src.tar.zst"),
    ] {
        let home = TestHome::new();
        make_tree(&home);
        let args: Vec<&str> = compress.map_or(vec![], |c| vec!["--compress", c]);
        home.back_up(&args, "src;03:00;src");
        let index = home.archive_path(&format!(".{file}.idx"));
        let good = fs::read(&index).unwrap();
        home.manager(&["verify", "src"]).success();

        // An index of another archive of the same name: told apart, refused.
        home.write("src/a.txt", "alpha, longer now\n");
        home.run_ok(0);
        let newer = fs::read(&index).unwrap();
        fs::write(&index, &good).unwrap();
        let out = home.manager(&["verify", "src"]);
        let err = out.failure(1);
        assert!(
            err.contains("made for another one") && err.contains("--rebuild-index"),
            "{err}"
        );
        let out = home.manager(&["verify", "src", "--rebuild-index"]);
        out.success();
        assert!(
            out.stderr
                .contains(&format!("rebuilt the index of backups/{file}")),
            "{}",
            out.stderr
        );
        home.manager(&["verify", "src"]).success();
        let listed = home.manager(&["files", "src"]);
        assert_eq!(listed.stderr, "");
        assert_browses(&home, "src", &home.archive_path(file));
        // Rebuilt, it says what the one written with the archive said.
        let rebuilt = home.manager(&["files", "src", "--json"]).stdout;
        fs::write(&index, &newer).unwrap();
        assert_eq!(home.manager(&["files", "src", "--json"]).stdout, rebuilt);

        fs::remove_file(&index).unwrap();
        let out = home.manager(&["verify", "src"]);
        out.success();
        assert!(out.stderr.contains("has no index"), "{}", out.stderr);
    }
}
