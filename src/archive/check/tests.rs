use super::*;

fn check(entries: &[(&str, Kind, &str)]) -> Result<Needs> {
    let mut checker = Checker::new(None, 4096, Vec::new());
    for &(name, kind, link) in entries {
        let mut header = Header::new(name.as_bytes().to_vec(), kind);
        header.link = link.as_bytes().to_vec();
        header.size = if kind == Kind::File { 10 } else { 0 };
        checker.entry(&header, None)?;
    }
    Ok(checker.needs())
}

fn refused(entries: &[(&str, Kind, &str)]) -> String {
    format!("{:#}", check(entries).unwrap_err())
}

#[test]
fn names_are_made_canonical_and_unsafe_ones_refused() {
    assert_eq!(canonical(b"./a//b/./c/").unwrap(), b"a/b/c");
    assert_eq!(canonical(b"./").unwrap(), b"");
    assert!(canonical(b"/etc").is_err());
    assert!(canonical(b"a/../../b").is_err());
    assert!(canonical(b"a\0b").is_err());
    for (name, made) in [
        (&b"a/b/c"[..], &b"a/b/c"[..]),
        (b"a/b//", b"a/b"),
        (b"a//b", b"a/b"),
        (b"a/.", b"a"),
        (b".", b""),
        (b"", b""),
        (b"...", b"..."),
        (b"a/..b/.c", b"a/..b/.c"),
    ] {
        assert_eq!(canonical(name).unwrap(), made, "{name:?}");
    }
    for name in [&b".."[..], b"a/..", b"../a", b"a/../b", b"a/\0"] {
        assert!(canonical(name).is_err(), "{name:?}");
    }
}

#[test]
fn conflicts_seen_from_the_archive_alone_are_refused() {
    use Kind::*;
    let under_link = refused(&[("l", Symlink, "/etc"), ("l/x", File, "")]);
    assert!(
        under_link.contains("a symbolic link stored earlier"),
        "{under_link}"
    );
    let folder_then_file = refused(&[("d", Dir, ""), ("d/x", File, ""), ("d", File, "")]);
    assert!(
        folder_then_file.contains("after a folder"),
        "{folder_then_file}"
    );
    let implicit_then_file = refused(&[("d/x", File, ""), ("d", Symlink, "y")]);
    assert!(
        implicit_then_file.contains("after a folder"),
        "{implicit_then_file}"
    );
    let under_file = refused(&[("f", File, ""), ("f/x", File, "")]);
    assert!(under_file.contains("holds as a file"), "{under_file}");
    let dangling = refused(&[("h", HardLink, "nowhere")]);
    assert!(dangling.contains("does not hold"), "{dangling}");
    let to_folder = refused(&[("d", Dir, ""), ("h", HardLink, "d")]);
    assert!(to_folder.contains("to a folder"), "{to_folder}");
    // What is fine: a link replaced by a folder, a file by a folder, links to files.
    check(&[
        ("l", Symlink, "x"),
        ("l", Dir, ""),
        ("l/x", File, ""),
        ("f", File, ""),
        ("f", Dir, ""),
        ("f/y", File, ""),
        ("h", HardLink, "l/x"),
        ("a/b/c/d", File, ""),
        ("a/b/e", File, ""),
        ("a/z", HardLink, "a/b/c/d"),
    ])
    .unwrap();
}

#[test]
fn needs_count_blocks_and_replaced_files_once() {
    use Kind::*;
    let needs = check(&[("d", Dir, ""), ("d/x", File, ""), ("d/x", File, "")]).unwrap();
    assert_eq!(
        needs,
        Needs {
            bytes: 2 * 4096,
            entries: 2
        }
    );
}

#[test]
fn a_deep_tree_is_checked_in_linear_time() {
    let mut name = String::new();
    let mut entries = Vec::new();
    for _ in 0..10_000 {
        name.push_str("d/");
        entries.push((name.clone(), Kind::Dir));
    }
    let started = std::time::Instant::now();
    let mut checker = Checker::new(None, 4096, Vec::new());
    for (name, kind) in &entries {
        let header = Header::new(name.as_bytes().to_vec(), *kind);
        checker.entry(&header, None).unwrap();
    }
    assert_eq!(checker.needs().entries, 10_000);
    assert!(started.elapsed().as_secs() < 5, "{:?}", started.elapsed());
}
