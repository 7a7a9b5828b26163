use std::ffi::CString;
use std::fs::{self, File};
use std::os::fd::AsFd;

use super::super::list::list;
use super::*;

/// A folder of `count` files `f000`..., each of a different size, and its listing.
fn folder(count: usize) -> (tempfile::TempDir, File, Listing) {
    let dir = tempfile::tempdir().unwrap();
    let mut names = Listing::new();
    for i in 0..count {
        let name = format!("f{i:03}");
        fs::write(dir.path().join(&name), vec![b'x'; i]).unwrap();
        names.push((CString::new(name).unwrap(), None));
    }
    let fd = File::open(dir.path()).unwrap();
    (dir, fd, names)
}

fn sizes(stats: &[Stat]) -> Vec<i64> {
    stats
        .iter()
        .map(|s| s.as_ref().map_or(-1, |s| s.st_size))
        .collect()
}

#[test]
fn both_threads_stat_a_large_folder_and_every_name_gets_its_own() {
    let (_dir, fd, names) = folder(300);
    let mut helper = Helper::new(Vec::new());
    let (back, stats) = helper.all(fd.as_fd(), names.clone());
    assert_eq!(back, names);
    assert_eq!(sizes(&stats), (0..300).collect::<Vec<i64>>());
}

#[test]
fn names_neither_thread_did_are_done_in_line() {
    let (_dir, fd, mut names) = folder(4);
    names.push((CString::new("gone").unwrap(), None));
    let mine = vec![(1, stat(fd.as_fd(), c"f001"))];
    let theirs = vec![(3, stat(fd.as_fd(), c"f003"))];
    let stats = merge(fd.as_fd(), &names, mine, theirs);
    assert_eq!(sizes(&stats), [0, 1, 2, 3, -1]);
    assert_eq!(stats[4].as_ref().err(), Some(&nix::errno::Errno::ENOENT));
}

#[test]
fn a_folder_listed_ahead_is_the_folder_as_listed_in_line() {
    let (dir, _fd, _) = folder(0);
    for i in 0..5 {
        fs::create_dir(dir.path().join(format!("d{i}"))).unwrap();
        fs::write(dir.path().join(format!("d{i}/f")), "f").unwrap();
    }
    let parent = File::open(dir.path()).unwrap();
    if !is_local(parent.as_fd()) {
        eprintln!("skipped: the temporary directory is not on a local file system");
        return;
    }
    let mut helper = Helper::new(Vec::new());
    let asked: Vec<Ahead> = (0..5)
        .map(|i| {
            let name = CString::new(format!("d{i}")).unwrap();
            helper.list_ahead(parent.as_fd(), &name).unwrap()
        })
        .collect();
    for ahead in asked {
        // The walk would take back one the thread has not begun: wait until it has.
        let started = Instant::now();
        while ahead.job.state.load(Ordering::Acquire) == QUEUED {
            assert!(started.elapsed() < Duration::from_secs(10), "never listed");
            std::thread::sleep(Duration::from_millis(1));
        }
        let (mut dir, listed) = helper.listed(ahead).expect("listed by the thread");
        let in_line = list(&mut dir, &[]);
        assert_eq!(listed.children, in_line.children);
        assert_eq!(
            listed.children,
            [(c"f".to_owned(), Some(nix::dir::Type::File))]
        );
    }
}
