//! What a schedule leaves out: `--exclude PATTERN`, `--exclude-caches` and `--gitignore`,
//! through `backup_manager create`, `run` and `verify --source`, with the archives read
//! by GNU tar, and inotify watching that nothing left out is ever opened.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::os::unix::fs::symlink;
use std::path::PathBuf;

use common::{TestHome, tar_list};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};

const SIGNATURE: &str = "Signature: 8a477f597d28d172789f06886806bc55";

/// Writes each `(path, contents)` under the home, creating folders; a path ending in
/// `/` is an empty folder.
fn tree(home: &TestHome, files: &[(&str, &str)]) {
    for (path, contents) in files {
        match path.strip_suffix('/') {
            Some(folder) => fs::create_dir_all(home.path().join(folder)).unwrap(),
            None => home.write(path, contents),
        }
    }
}

/// `create ARGS... LINE`, then `run` of that schedule, which must succeed with no
/// warning; returns the archive's member names as `tar -tf` lists them.
fn back_up(home: &TestHome, args: &[&str], line: &str) -> Vec<String> {
    let (_, warnings) = home.back_up(args, line);
    assert!(warnings.is_empty(), "{warnings:?}");
    let name = line.split(';').nth(2).unwrap();
    tar_list(&home.archive_path(&format!("{name}.tar")))
}

/// Watches folders for any file or folder in them being opened or read, by any process.
struct Watch {
    inotify: Inotify,
    folders: HashMap<WatchDescriptor, PathBuf>,
}

impl Watch {
    fn new(home: &TestHome, folders: &[&str]) -> Self {
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).unwrap();
        let folders = folders
            .iter()
            .map(|folder| {
                let wd = inotify
                    .add_watch(
                        &home.path().join(folder),
                        AddWatchFlags::IN_OPEN | AddWatchFlags::IN_ACCESS,
                    )
                    .unwrap();
                (wd, PathBuf::from(folder))
            })
            .collect();
        Self { inotify, folders }
    }

    /// What was opened or read so far, as paths in the home; a watched folder itself
    /// (listed) as its path with a `/` at the end.
    fn opened(&self) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        loop {
            match self.inotify.read_events() {
                Ok(events) => {
                    for event in events {
                        let folder = &self.folders[&event.wd];
                        seen.insert(match event.name {
                            Some(name) => folder.join(name).display().to_string(),
                            None => format!("{}/", folder.display()),
                        });
                    }
                }
                Err(nix::errno::Errno::EAGAIN) => return seen,
                Err(e) => panic!("reading inotify events: {e}"),
            }
        }
    }
}

/// `--exclude`: `.gitignore` syntax, relative to PATH (even when PATH is several folders
/// deep), a pattern with no `/` against any name, `!` taking back an earlier pattern;
/// what is left out is never opened.
#[test]
fn exclude_patterns_match_paths_relative_to_the_source() {
    let home = TestHome::new();
    tree(
        &home,
        &[
            ("wrk/proj/a.log", "a"),
            ("wrk/proj/keep.txt", "k"),
            ("wrk/proj/sub/b.log", "b"),
            ("wrk/proj/sub/c.log", "c"),
            ("wrk/proj/sub/d.txt", "d"),
            ("wrk/proj/build/out.o", "o"),
            ("wrk/proj/sub/build/out.o", "o"),
            ("wrk/proj/docs/x.md", "x"),
            ("wrk/proj/docs/deep/y.md", "y"),
            ("wrk/proj/wrk/proj/z.txt", "z"),
        ],
    );
    let watch = Watch::new(&home, &["wrk/proj", "wrk/proj/build", "wrk/proj/docs"]);
    let names = back_up(
        &home,
        &[
            "--exclude",
            "*.log",
            "--exclude",
            "!sub/b.log",
            "--exclude",
            "/build/",
            "--exclude",
            "docs/*.md",
            "--exclude",
            "/wrk/proj/keep.txt",
        ],
        "wrk/proj;03:00;proj",
    );
    common::assert_same_lines(
        &names,
        &[
            "wrk/proj/",
            "wrk/proj/docs/",
            "wrk/proj/docs/deep/",
            "wrk/proj/docs/deep/y.md",
            "wrk/proj/keep.txt",
            "wrk/proj/sub/",
            "wrk/proj/sub/b.log",
            "wrk/proj/sub/build/",
            "wrk/proj/sub/build/out.o",
            "wrk/proj/sub/d.txt",
            "wrk/proj/wrk/",
            "wrk/proj/wrk/proj/",
            "wrk/proj/wrk/proj/z.txt",
        ],
        "the archive's listing",
    );
    let opened = watch.opened();
    for never in [
        "wrk/proj/a.log",
        "wrk/proj/build",
        "wrk/proj/build/",
        "wrk/proj/build/out.o",
        "wrk/proj/docs/x.md",
    ] {
        assert!(!opened.contains(never), "{never} was opened: {opened:?}");
    }
    // The watch sees the walk's opens: it is not blind.
    assert!(opened.contains("wrk/proj/keep.txt"), "{opened:?}");
    assert!(opened.contains("wrk/proj/docs/"), "{opened:?}");
    home.manager(&["verify", "proj", "--source"]).success();
}

/// `--exclude-caches`, as GNU tar's: a folder with a valid `CACHEDIR.TAG` keeps the tag
/// and loses the rest, unread; a tag without the exact signature, or a link named
/// `CACHEDIR.TAG`, marks no cache.
#[test]
fn exclude_caches_keeps_only_the_tag_of_a_tagged_folder() {
    let home = TestHome::new();
    let valid = format!("{SIGNATURE}\n# This file is a cache directory tag.\n");
    tree(
        &home,
        &[
            ("src/main.rs", "fn main() {}"),
            ("src/target/CACHEDIR.TAG", &valid),
            ("src/target/.rustc_info.json", "{}"),
            ("src/target/debug/app", "binary"),
            ("src/target/debug/deps/lib.rlib", "rlib"),
            ("src/a/b/cache/CACHEDIR.TAG", SIGNATURE),
            ("src/a/b/cache/blob", "blob"),
            ("src/a/b/kept", "kept"),
            (
                "src/wrong/CACHEDIR.TAG",
                "Signature: 8a477f597d28d172789f06886806bc5X",
            ),
            ("src/wrong/data", "data"),
            ("src/short/CACHEDIR.TAG", &SIGNATURE[..30]),
            ("src/short/data", "data"),
            ("src/linked/data", "data"),
        ],
    );
    symlink(
        "../target/CACHEDIR.TAG",
        home.path().join("src/linked/CACHEDIR.TAG"),
    )
    .unwrap();
    let watch = Watch::new(&home, &["src/target", "src/target/debug", "src/a/b/cache"]);
    let names = back_up(&home, &["--exclude-caches"], "src;03:00;code");
    common::assert_same_lines(
        &names,
        &[
            "src/",
            "src/a/",
            "src/a/b/",
            "src/a/b/cache/",
            "src/a/b/cache/CACHEDIR.TAG",
            "src/a/b/kept",
            "src/linked/",
            "src/linked/CACHEDIR.TAG",
            "src/linked/data",
            "src/main.rs",
            "src/short/",
            "src/short/CACHEDIR.TAG",
            "src/short/data",
            "src/target/",
            "src/target/CACHEDIR.TAG",
            "src/wrong/",
            "src/wrong/CACHEDIR.TAG",
            "src/wrong/data",
        ],
        "the archive's listing",
    );
    // A cache folder is listed and its tag read; nothing else in it is touched.
    assert_eq!(
        watch.opened(),
        BTreeSet::from(
            [
                "src/a/b/cache/",
                "src/a/b/cache/CACHEDIR.TAG",
                "src/target/",
                "src/target/CACHEDIR.TAG",
            ]
            .map(String::from)
        )
    );
    home.manager(&["verify", "code", "--source"]).success();
}

/// A repository with ignore files at several depths, a nested repository and a `.git`.
const GIT_TREE: &[(&str, &str)] = &[
    ("src/.git/HEAD", "ref: refs/heads/main\n"),
    ("src/.git/info/exclude", "# local\nsecret.txt\n"),
    ("src/.git/logs/HEAD.log", "log"),
    ("src/.git/objects/", ""),
    (
        "src/.gitignore",
        "*.log\nnode_modules/\n/dist\n.env\n# a comment\n\n",
    ),
    ("src/.env", "TOKEN=1"),
    ("src/a.log", "a"),
    ("src/main.rs", "fn main() {}"),
    ("src/secret.txt", "s"),
    ("src/dist/bundle.js", "js"),
    ("src/lib/dist/x.js", "js"),
    ("src/node_modules/pkg/index.js", "js"),
    ("src/lib/node_modules/pkg/index.js", "js"),
    ("src/sub/.gitignore", "!keep.log\n"),
    ("src/sub/keep.log", "k"),
    ("src/sub/other.log", "o"),
    ("src/sub/deep/keep.log", "k"),
    ("src/sub/deep/.ignore", "*.tmp\n!main.log\n"),
    ("src/sub/deep/main.log", "m"),
    ("src/sub/deep/x.tmp", "t"),
    ("src/vendor/lib/.git/HEAD", "ref: refs/heads/main\n"),
    ("src/vendor/lib/.gitignore", "*.o\n"),
    ("src/vendor/lib/x.log", "x"),
    ("src/vendor/lib/y.o", "y"),
    ("src/vendor/z.o", "z"),
];

/// What a backup of [`GIT_TREE`] with `gitignore` and `!.env` holds.
const GIT_KEPT: &[&str] = &[
    "src/",
    "src/.env",
    "src/.git/",
    "src/.git/HEAD",
    "src/.git/info/",
    "src/.git/info/exclude",
    "src/.git/logs/",
    "src/.git/logs/HEAD.log",
    "src/.git/objects/",
    "src/.gitignore",
    "src/lib/",
    "src/lib/dist/",
    "src/lib/dist/x.js",
    "src/main.rs",
    "src/sub/",
    "src/sub/.gitignore",
    "src/sub/deep/",
    "src/sub/deep/.ignore",
    "src/sub/deep/keep.log",
    "src/sub/deep/main.log",
    "src/sub/keep.log",
    "src/vendor/",
    "src/vendor/lib/",
    "src/vendor/lib/.git/",
    "src/vendor/lib/.git/HEAD",
    "src/vendor/lib/.gitignore",
    "src/vendor/lib/x.log",
    "src/vendor/z.o",
];

/// `--gitignore` follows ripgrep: nested `.gitignore` files with negations, `.ignore`
/// over `.gitignore`, `.git/info/exclude` at a repository's top, a nested repository
/// with rules of its own; `.git/` itself is always kept. An `--exclude` `!PATTERN`
/// takes back what a `.gitignore` leaves out.
#[test]
fn gitignore_files_are_honoured_as_ripgrep_does() {
    let home = TestHome::new();
    tree(&home, GIT_TREE);
    let watch = Watch::new(&home, &["src", "src/node_modules", "src/sub/deep"]);
    let names = back_up(
        &home,
        &["--gitignore", "--exclude", "!.env"],
        "src;03:00;code",
    );
    common::assert_same_lines(&names, GIT_KEPT, "the archive's listing");
    let opened = watch.opened();
    for never in [
        "src/a.log",
        "src/secret.txt",
        "src/node_modules",
        "src/node_modules/",
        "src/node_modules/pkg",
        "src/sub/deep/x.tmp",
    ] {
        assert!(!opened.contains(never), "{never} was opened: {opened:?}");
    }
    assert!(opened.contains("src/main.rs"), "{opened:?}");
    home.manager(&["verify", "code", "--source"]).success();
}

/// Outside a git repository, as with ripgrep, `.gitignore` files mean nothing and
/// `.ignore` files still count.
#[test]
fn outside_a_repository_only_ignore_files_count() {
    let home = TestHome::new();
    assert!(
        home.path()
            .ancestors()
            .all(|folder| !folder.join(".git").exists()),
        "the temporary home is inside a git repository"
    );
    tree(
        &home,
        &[
            ("src/.gitignore", "*.log\n"),
            ("src/.ignore", "*.tmp\n"),
            ("src/a.log", "a"),
            ("src/b.tmp", "b"),
        ],
    );
    let names = back_up(&home, &["--gitignore"], "src;03:00;code");
    common::assert_same_lines(
        &names,
        &["src/", "src/.gitignore", "src/.ignore", "src/a.log"],
        "the archive's listing",
    );
}

/// `verify --source` applies the schedule's excludes to the tree as it is now: what they
/// leave out is no difference, even an entry the archive holds; everything else is
/// still compared.
#[test]
fn verify_source_does_not_compare_what_the_excludes_leave_out() {
    let home = TestHome::new();
    tree(
        &home,
        &[
            ("src/.git/HEAD", "ref: refs/heads/main\n"),
            ("src/cache/data", "before"),
            ("src/sub/x.tmp", "before"),
            ("src/sub/y.txt", "before"),
            ("src/main.log", "before"),
        ],
    );
    let names = back_up(
        &home,
        &["--exclude-caches", "--gitignore", "--exclude", "*.log"],
        "src;03:00;code",
    );
    assert!(names.contains(&"src/cache/data".to_owned()), "{names:?}");
    assert!(names.contains(&"src/sub/x.tmp".to_owned()), "{names:?}");
    // Since the backup: cache/ became a cache, sub/ got a .gitignore, and what they
    // now leave out changed, as did a file left out from the start.
    home.write("src/cache/CACHEDIR.TAG", SIGNATURE);
    home.write("src/sub/.gitignore", "*.tmp\n");
    for file in ["src/cache/data", "src/sub/x.tmp", "src/main.log"] {
        home.write(file, "after, and longer");
    }
    let out = home.manager(&["verify", "code", "--source"]);
    out.success();
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr
            .contains("verified backups/code.tar (8 entries, same as its source)"),
        "{}",
        out.stderr
    );
    // What is kept is still compared; its mtime is kept, so that only the size differs
    // however the seconds fall.
    let y = home.path().join("src/sub/y.txt");
    let mtime = fs::metadata(&y).unwrap().modified().unwrap();
    home.write("src/sub/y.txt", "after, and longer");
    fs::File::options()
        .write(true)
        .open(&y)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let out = home.manager(&["verify", "code", "--source"]);
    assert_eq!(out.code(), Some(1), "{out:?}");
    // Its mtime moved too, if only by a few milliseconds: compared to the nanosecond.
    assert_eq!(
        out.stdout
            .replace("src/sub/y.txt: modification time differs\n", ""),
        "src/sub/y.txt: size differs\n"
    );
}

/// A pattern the matcher cannot read is refused when the schedule is made, naming it,
/// with the file untouched; written into the file by hand, it makes the line malformed.
#[test]
fn an_invalid_pattern_is_refused() {
    let home = TestHome::new();
    home.write("src/a.txt", "a");
    home.manager(&["create", "src;03:00;ok"]).success();
    let before = home.schedule_bytes();
    for (args, expected) in [
        (
            &["create", "--exclude", "src/{a,b", "src;04:00;x"][..],
            "exclude pattern \"src/{a,b\" is not a valid pattern: unclosed alternate group",
        ),
        (
            &["create", "src;04:00;x;exclude=[z-a]"][..],
            "exclude pattern \"[z-a]\" is not a valid pattern: invalid range",
        ),
        (
            &["create", "src;04:00;x;exclude-cache"][..],
            "option \"exclude-cache\" is not understood",
        ),
        (
            &["create", "src;04:00;x;gitignore=yes"][..],
            "option \"gitignore=yes\" is not understood",
        ),
    ] {
        let out = home.manager(args);
        let stderr = out.failure(1);
        assert!(stderr.contains(expected), "{stderr}");
        assert_eq!(home.schedule_bytes(), before);
    }
    home.write("backup_schedules.txt", "src;03:00;bad;exclude={a,b\n");
    let out = home.manager(&["run", "0"]);
    let stderr = out.failure(1);
    assert!(
        stderr.contains("exclude pattern \"{a,b\" is not a valid pattern"),
        "{stderr}"
    );
    assert!(!home.archive_path("bad.tar").exists());
}
