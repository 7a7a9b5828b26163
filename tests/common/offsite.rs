//! For the tests of off-box mirrors: a tree read whole, and the manager run with the
//! example hook's rclone remote.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use super::{Output, TestHome};

/// The tree under `root`: each file's path and contents.
pub fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut found = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                let rel = path.strip_prefix(root).unwrap().display().to_string();
                found.insert(rel, fs::read(&path).unwrap());
            }
        }
    }
    found
}

/// Runs `backup_manager ARGS` in `home` with the rclone remote `offsite` at `remote`.
pub fn manager(home: &TestHome, remote: &Path, args: &[&str]) -> Output {
    home.manager_env(
        &[
            ("RCLONE_CONFIG_OFFSITE_TYPE", "local"),
            (
                "BACKUP_RCLONE_DEST",
                &format!("offsite:{}", remote.display()),
            ),
        ],
        args,
    )
}
