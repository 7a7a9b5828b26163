//! Writing one schedule's tar archive: aside, then renamed into place.

use std::fs::{self, Metadata};
use std::io::{BufWriter, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result};

use crate::atomic_file::AtomicFile;

/// Archives are private to their owner, whatever the umask says.
const ARCHIVE_MODE: u32 = 0o600;

/// Large writes keep the number of syscalls down on trees of small files.
const WRITE_BUFFER: usize = 1 << 20;

/// What a finished archive holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Entries written (files, folders, links).
    pub entries: u64,
    /// Size of the archive in bytes.
    pub bytes: u64,
    /// Things left out, each a sentence naming the path (sockets, devices...).
    pub warnings: Vec<String>,
}

/// A request to archive `source` into `target`.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The source as the schedule wrote it; entries are named after it.
    pub written: &'a str,
    /// Where the source is on disk (the written path resolved against the home).
    pub source: &'a Path,
    /// The archive's final path.
    pub target: &'a Path,
    /// What never to archive, wherever it is met in the tree: the backups folder, so that
    /// a backup of `.` does not contain its own archive or the ones before it, and the
    /// service's pid file, which the service must never open twice (closing any
    /// descriptor of a file drops the process's POSIX lock on it).
    pub exclude: &'a [&'a Path],
}

/// Writes the archive. On any error the previous archive at `target` is left as it was
/// and no temporary file remains.
pub fn create(request: &Request<'_>) -> Result<Summary> {
    let source = request.source;
    let meta = fs::symlink_metadata(source)
        .with_context(|| format!("reading source {}", source.display()))?;
    // Compared by identity, so that any path to them (`.`, `..`, an absolute path) is
    // recognised; what does not exist cannot be met.
    let exclude: Vec<(u64, u64)> = request
        .exclude
        .iter()
        .filter_map(|path| fs::metadata(path).ok())
        .map(|m| (m.dev(), m.ino()))
        .collect();

    let mut out = AtomicFile::create(request.target, ARCHIVE_MODE)?;
    let mut summary = write_tar(
        out.file(),
        source,
        &entry_name(request.written),
        &meta,
        exclude,
    )
    .with_context(|| format!("writing archive {}", request.target.display()))?;
    summary.bytes = out
        .file()
        .metadata()
        .with_context(|| format!("reading the size of {}", request.target.display()))?
        .len();
    out.commit()?;
    Ok(summary)
}

fn write_tar(
    file: &mut fs::File,
    source: &Path,
    name: &Path,
    meta: &Metadata,
    exclude: Vec<(u64, u64)>,
) -> Result<Summary> {
    let mut builder = tar::Builder::new(BufWriter::with_capacity(WRITE_BUFFER, file));
    // Store links as links: following one could leave the source tree, or loop.
    builder.follow_symlinks(false);
    let mut walk = Walk {
        builder,
        exclude,
        summary: Summary::default(),
    };
    walk.entry(source, name, meta)?;
    let mut writer = walk
        .builder
        .into_inner()
        .context("writing the end of the archive")?;
    writer.flush().context("flushing the archive")?;
    Ok(walk.summary)
}

/// The name entries take: the path as written, without a leading `/` or `./`, with `..`
/// folded, as GNU tar names members. `.` names nothing: its children go at the top.
pub fn entry_name(written: &str) -> PathBuf {
    let mut name = PathBuf::new();
    for component in Path::new(written).components() {
        match component {
            Component::Normal(part) => name.push(part),
            Component::ParentDir => {
                name.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    name
}

struct Walk<W: Write> {
    builder: tar::Builder<W>,
    exclude: Vec<(u64, u64)>,
    summary: Summary,
}

impl<W: Write> Walk<W> {
    fn entry(&mut self, path: &Path, name: &Path, meta: &Metadata) -> Result<()> {
        if self.exclude.contains(&(meta.dev(), meta.ino())) {
            return Ok(());
        }
        let kind = meta.file_type();
        if kind.is_dir() {
            if !name.as_os_str().is_empty() {
                self.append(path, name)?;
            }
            self.children(path, name)
        } else if kind.is_file() || kind.is_symlink() {
            self.append(path, name)
        } else {
            self.summary.warnings.push(format!(
                "skipped {}: not a regular file, folder or link",
                path.display()
            ));
            Ok(())
        }
    }

    fn children(&mut self, dir: &Path, name: &Path) -> Result<()> {
        let mut children = fs::read_dir(dir)
            .and_then(|entries| entries.collect::<Result<Vec<_>, _>>())
            .with_context(|| format!("listing {}", dir.display()))?;
        // Sorted, so that one tree always gives the same archive.
        children.sort_by_key(|entry| entry.file_name());
        for child in children {
            let path = child.path();
            let meta = fs::symlink_metadata(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            self.entry(&path, &name.join(child.file_name()), &meta)?;
        }
        Ok(())
    }

    fn append(&mut self, path: &Path, name: &Path) -> Result<()> {
        self.builder
            .append_path_with_name(path, name)
            .with_context(|| format!("archiving {}", path.display()))?;
        self.summary.entries += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_named_as_tar_names_members() {
        assert_eq!(entry_name("test"), PathBuf::from("test"));
        assert_eq!(entry_name("/etc/hosts"), PathBuf::from("etc/hosts"));
        assert_eq!(entry_name("./a/b/"), PathBuf::from("a/b"));
        assert_eq!(entry_name("../sibling"), PathBuf::from("sibling"));
        assert_eq!(entry_name("a/../b"), PathBuf::from("b"));
        assert_eq!(entry_name("."), PathBuf::new());
        assert_eq!(entry_name("/"), PathBuf::new());
    }

    #[test]
    fn excluded_folders_and_files_are_left_out_wherever_they_are_met() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("backups")).unwrap();
        fs::write(root.join("backups/old.tar"), "old").unwrap();
        fs::write(root.join(".pid"), "1").unwrap();
        fs::write(root.join("kept.txt"), "kept").unwrap();
        let target = root.join("backups/new.tar");
        create(&Request {
            written: ".",
            source: root,
            target: &target,
            exclude: &[&root.join("backups"), &root.join(".pid")],
        })
        .unwrap();
        let mut archive = tar::Archive::new(fs::File::open(&target).unwrap());
        let names: Vec<PathBuf> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().into_owned())
            .collect();
        assert_eq!(names, [PathBuf::from("kept.txt")]);
    }
}
