//! Processes as the tests look at them: who holds a lock, whether a pid lives, is
//! stopped, and its session, from `fcntl` and `/proc`.

use std::fs::{self, File};
use std::path::Path;

use nix::fcntl::{FcntlArg, fcntl};
use nix::libc;

/// The pid holding a POSIX write lock on `path` (`F_GETLK`), if any process does.
pub fn lock_holder(path: &Path) -> Option<i32> {
    let file = File::open(path).ok()?;
    // SAFETY: `flock` is a plain C struct of integers, for which all zeroes is valid.
    let mut query: libc::flock = unsafe { std::mem::zeroed() };
    query.l_type = libc::F_WRLCK as libc::c_short;
    query.l_whence = libc::SEEK_SET as libc::c_short;
    fcntl(&file, FcntlArg::F_GETLK(&mut query)).expect("querying a lock");
    (i32::from(query.l_type) != libc::F_UNLCK).then_some(query.l_pid)
}

/// Whether `pid` is a live process (a zombie is not).
pub fn is_running(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat_fields(&stat).first() != Some(&"Z"),
        Err(_) => false,
    }
}

/// Whether `pid` is stopped by a signal (SIGSTOP).
pub fn is_stopped(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat_fields(&stat).first() == Some(&"T"))
}

/// The session id of `pid`, from `/proc/PID/stat`.
pub fn session_of(pid: i32) -> i32 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // After the command name: state, ppid, pgrp, session.
    stat_fields(&stat)[3].parse().unwrap()
}

/// The fields of a `/proc/PID/stat` line after the command name, which may hold spaces.
fn stat_fields(stat: &str) -> Vec<&str> {
    let after_name = &stat[stat.rfind(')').expect("a stat line") + 1..];
    after_name.split_whitespace().collect()
}
