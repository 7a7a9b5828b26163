//! How an archive's entries are shown: `tar -tv`'s lines, and the same as JSON.

use chrono::{Local, TimeZone};
use serde::Serialize;

use crate::index::Entry;
use crate::tar::Kind;

/// One entry, as `files --json` and `find --json` give it.
#[derive(Debug, Clone, Serialize)]
pub struct FileInfo {
    /// Its name as stored (bytes that are not UTF-8 replaced).
    pub name: String,
    /// `file`, `dir`, `symlink`, `hardlink`, `char`, `block`, `fifo` or `other`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Permission bits, in octal.
    pub mode: String,
    /// Owner id.
    pub uid: u64,
    /// Group id.
    pub gid: u64,
    /// Owner name, as stored.
    pub user: String,
    /// Group name, as stored.
    pub group: String,
    /// Size once restored.
    pub size: u64,
    /// Modification time, in the current zone.
    pub mtime: String,
    /// A link's target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

impl FileInfo {
    /// What `entry` is, to show.
    pub fn of(entry: &Entry) -> Self {
        let kind = match entry.kind() {
            Kind::File => "file",
            Kind::Dir => "dir",
            Kind::Symlink => "symlink",
            Kind::HardLink => "hardlink",
            Kind::CharDevice => "char",
            Kind::BlockDevice => "block",
            Kind::Fifo => "fifo",
            Kind::Other(_) => "other",
        };
        FileInfo {
            name: String::from_utf8_lossy(&entry.name).into_owned(),
            kind,
            mode: format!("{:04o}", entry.mode & 0o7777),
            uid: entry.uid,
            gid: entry.gid,
            user: String::from_utf8_lossy(&entry.uname).into_owned(),
            group: String::from_utf8_lossy(&entry.gname).into_owned(),
            size: entry.size,
            mtime: local_time(entry.mtime).to_rfc3339(),
            link: (!entry.link.is_empty())
                .then(|| String::from_utf8_lossy(&entry.link).into_owned()),
        }
    }
}

/// The time `mtime` (seconds since the epoch) in the current zone.
pub fn local_time(mtime: i64) -> chrono::DateTime<Local> {
    Local
        .timestamp_opt(mtime, 0)
        .earliest()
        .unwrap_or_else(|| Local.timestamp_opt(0, 0).unwrap())
}

/// Makes `tar -tv`'s lines, which line up owner and size as GNU tar does: the column
/// widens, for good, when a line needs more room.
#[derive(Debug)]
pub struct TarLines {
    width: usize,
}

impl Default for TarLines {
    fn default() -> Self {
        // GNU tar's starting width of "owner/group size".
        TarLines { width: 19 }
    }
}

impl TarLines {
    /// The line of `entry`.
    pub fn line(&mut self, entry: &Entry) -> String {
        let kind = entry.kind();
        let letter = match kind {
            Kind::Dir => 'd',
            Kind::Symlink => 'l',
            Kind::HardLink => 'h',
            Kind::CharDevice => 'c',
            Kind::BlockDevice => 'b',
            Kind::Fifo => 'p',
            Kind::File | Kind::Other(_) => '-',
        };
        let owner = |name: &[u8], id: u64| {
            if name.is_empty() {
                id.to_string()
            } else {
                escape(name)
            }
        };
        let who = format!(
            "{}/{}",
            owner(&entry.uname, entry.uid),
            owner(&entry.gname, entry.gid)
        );
        let size = match kind {
            Kind::CharDevice | Kind::BlockDevice => {
                format!("{},{}", entry.device.0, entry.device.1)
            }
            _ => entry.size.to_string(),
        };
        self.width = self.width.max(who.len() + 1 + size.len());
        let pad = self.width - who.len();
        let mut name = escape(&entry.name);
        if kind == Kind::Dir {
            name.push('/');
        }
        let mut line = format!(
            "{letter}{} {who}{size:>pad$} {} {name}",
            mode_string(entry.mode),
            local_time(entry.mtime).format("%Y-%m-%d %H:%M")
        );
        match kind {
            Kind::Symlink => line.push_str(&format!(" -> {}", escape(&entry.link))),
            Kind::HardLink => line.push_str(&format!(" link to {}", escape(&entry.link))),
            _ => {}
        }
        line
    }
}

/// `rwxr-xr-x`, with setuid, setgid and sticky as `ls` shows them.
fn mode_string(mode: u32) -> String {
    let mut s = String::with_capacity(9);
    for (shift, special, set, unset) in [
        (6, 0o4000, 's', 'S'),
        (3, 0o2000, 's', 'S'),
        (0, 0o1000, 't', 'T'),
    ] {
        let bits = (mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(match (bits & 1 != 0, mode & special != 0) {
            (true, true) => set,
            (false, true) => unset,
            (true, false) => 'x',
            (false, false) => '-',
        });
    }
    s
}

/// A name as GNU tar shows it: bytes that are not printable as octal escapes.
pub fn escape(name: &[u8]) -> String {
    let text = String::from_utf8_lossy(name);
    if text
        .chars()
        .all(|c| !c.is_control() && c != '\\' && c != char::REPLACEMENT_CHARACTER)
    {
        return text.into_owned();
    }
    let mut out = String::new();
    for chunk in name.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                c if c.is_control() => {
                    let mut buf = [0u8; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        out.push_str(&format!("\\{b:03o}"));
                    }
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\{b:03o}"));
        }
    }
    out
}
