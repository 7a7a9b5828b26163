//! Archives and folders as a test compares them: a tar archive's entries and names,
//! a file's mode, a folder's names, and age keys to seal with.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The entries of a tar archive: name to (kind, contents, link target).
pub fn archive_entries(path: &Path) -> BTreeMap<String, Entry> {
    let mut archive = tar::Archive::new(File::open(path).unwrap());
    let mut entries = BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        // GNU tar names folders with a trailing '/'; the kind says what an entry is.
        let full = entry.path().unwrap().to_string_lossy().into_owned();
        let name = full.trim_end_matches('/').to_owned();
        let kind = entry.header().entry_type();
        let link = entry
            .link_name()
            .unwrap()
            .map(|l| l.to_string_lossy().into_owned());
        let mut contents = Vec::new();
        entry.read_to_end(&mut contents).unwrap();
        let previous = entries.insert(
            name.clone(),
            Entry {
                kind,
                contents,
                link,
            },
        );
        assert!(previous.is_none(), "{name} twice in {}", path.display());
    }
    entries
}

/// One entry of an archive.
#[derive(Debug)]
pub struct Entry {
    pub kind: tar::EntryType,
    pub contents: Vec<u8>,
    pub link: Option<String>,
}

/// The permission bits of `path`.
pub fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// A new age identity `name` in `dir`, made by `age-keygen`: its file and its public key.
pub fn age_key(dir: &Path, name: &str) -> (PathBuf, String) {
    let identity = dir.join(name);
    let out = Command::new("age-keygen")
        .arg("-o")
        .arg(&identity)
        .output()
        .expect("running age-keygen");
    assert!(out.status.success(), "{out:?}");
    let text = fs::read_to_string(&identity).unwrap();
    let public = text
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap()
        .to_owned();
    (identity, public)
}

/// The member names of an archive, as GNU tar's `tar -tf` lists them.
pub fn tar_list(archive: &Path) -> Vec<String> {
    let out = Command::new("tar")
        .arg("-tf")
        .arg(archive)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The names in a folder, sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}
