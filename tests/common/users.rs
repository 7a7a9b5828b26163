//! Running as someone other than root, and folders outside any home, for the tests of
//! what a user may and may not do.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;

/// The user restores run as when the tests run as root, who ignores modes: `nobody`.
pub const UNPRIVILEGED: u32 = 65534;

/// How to run a program as a user other than root: nothing to add when the tests already
/// run as one, else `setpriv` or `runuser` in front of it; `None` when neither works here.
pub fn unprivileged_prefix() -> Option<Vec<String>> {
    if !nix::unistd::Uid::effective().is_root() {
        return Some(Vec::new());
    }
    let id = UNPRIVILEGED.to_string();
    let candidates = [
        vec![
            "setpriv".to_owned(),
            format!("--reuid={id}"),
            format!("--regid={id}"),
            "--clear-groups".to_owned(),
        ],
        vec![
            "runuser".to_owned(),
            "-u".to_owned(),
            "nobody".to_owned(),
            "--".to_owned(),
        ],
    ];
    candidates.into_iter().find(|prefix| {
        Command::new(&prefix[0])
            .args(&prefix[1..])
            .args(["sh", "-c", &format!("test \"$(id -u)\" = {id}")])
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// A folder of mode `mode` outside any home, where every folder above it is trusted (in
/// the build's temporary folder), with the guard that removes it.
pub fn outside_folder(mode: u32) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let folder = dir.path().join("outside");
    fs::create_dir(&folder).unwrap();
    fs::set_permissions(&folder, fs::Permissions::from_mode(mode)).unwrap();
    (dir, fs::canonicalize(folder).unwrap())
}
