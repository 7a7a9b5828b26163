//! `exclude-from=FILE`: a file of patterns, one a line, as `tar -X`, restic's
//! `--exclude-file` and borg's `--exclude-from` read them.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::nofollow::{self, Access};

/// The largest exclude file read: a list of patterns, not a data file.
const MAX_EXCLUDE_FILE: u64 = 4 << 20;

/// The patterns of the exclude file at `path`: each line, with a final `\r` and white
/// space at its end dropped, except blank lines and those starting with `#`. Fails,
/// naming the file, when it cannot be read (missing, a link, not a regular file, too
/// large, not UTF-8) or a line is no valid pattern.
pub fn read_patterns(path: &Path) -> Result<Vec<String>> {
    let reading = || format!("reading exclude file {}", path.display());
    // A link is not followed: the file named on the line is the one read.
    let file = nofollow::open_file(path, Access::Read, 0).with_context(reading)?;
    let mut bytes = Vec::new();
    file.take(MAX_EXCLUDE_FILE + 1)
        .read_to_end(&mut bytes)
        .with_context(reading)?;
    if bytes.len() as u64 > MAX_EXCLUDE_FILE {
        bail!(
            "{}: it is larger than {} MiB",
            reading(),
            MAX_EXCLUDE_FILE >> 20
        );
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("{}: it is not valid UTF-8", reading()))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut patterns = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Err(e) = ignore::gitignore::GitignoreBuilder::new(".").add_line(None, line) {
            let why = match e {
                ignore::Error::Glob { err, .. } => err,
                other => other.to_string(),
            };
            bail!(
                "exclude file {} line {}: {line:?} is not a valid pattern: {why}",
                path.display(),
                number + 1
            );
        }
        patterns.push(line.to_owned());
    }
    Ok(patterns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_and_blank_lines_are_skipped_and_bad_lines_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("list");
        std::fs::write(&path, "# build output\n\n*.o\r\n/target/  \n!keep.o\n").unwrap();
        assert_eq!(
            read_patterns(&path).unwrap(),
            ["*.o", "/target/", "!keep.o"]
        );
        std::fs::write(&path, "ok\nsrc/{a,b\n").unwrap();
        let err = read_patterns(&path).unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
        let missing = read_patterns(&dir.path().join("none")).unwrap_err();
        assert!(format!("{missing:#}").contains("none"), "{missing:#}");
        std::os::unix::fs::symlink(&path, dir.path().join("link")).unwrap();
        let link = read_patterns(&dir.path().join("link")).unwrap_err();
        assert!(format!("{link:#}").contains("symbolic link"), "{link:#}");
    }
}
