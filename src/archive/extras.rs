//! A file's extended attributes and ACLs, as an archive keeps them ([`Extras`]): read
//! from the open file by the walk and by `verify --source`, and set back by `restore`.
//!
//! Every attribute this process may read is kept: `user.*`, and also `trusted.*` and
//! `security.*` (file capabilities, SELinux labels) as far as the kernel shows them.
//! ACLs are kept in GNU tar's text form rather than as their binary attributes, so that
//! `tar --acls -x` restores them, with names for named users and groups.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::io;
use std::os::fd::BorrowedFd;

use crate::tar::pax::BUDGET;
use crate::tar::{Extras, Header};
use crate::xattrs::{self, ACL_ACCESS, ACL_DEFAULT, acl};

/// The extended attributes and ACLs of the open file `fd`, sorted by name, and what
/// could not be kept of them (for a warning). An attribute removed since it was listed,
/// or one this process may not read, is not kept, and no warning is given for it.
pub fn read(fd: BorrowedFd<'_>) -> (Extras, Option<String>) {
    let mut extras = Extras::default();
    let mut trouble = Vec::new();
    let names = match xattrs::list(fd) {
        Ok(names) => names,
        Err(e) => {
            return (
                extras,
                Some(format!("cannot list its extended attributes ({e})")),
            );
        }
    };
    for name in names {
        let Ok(c_name) = CString::new(name.clone()) else {
            continue;
        };
        let Ok(value) = xattrs::get(fd, &c_name) else {
            continue;
        };
        let acl = match name.as_slice() {
            ACL_ACCESS => &mut extras.acl_access,
            ACL_DEFAULT => &mut extras.acl_default,
            _ => {
                extras.xattrs.push((name, value));
                continue;
            }
        };
        match acl::decode(&value).and_then(|entries| acl::to_text(&entries)) {
            Ok(text) => *acl = Some(text.into_bytes()),
            Err(e) => trouble.push(format!("{}: {e}", String::from_utf8_lossy(&name))),
        }
    }
    extras.xattrs.sort();
    // Within what every reader takes: the largest go first.
    while extras.record_bytes() > BUDGET {
        let largest = (0..extras.xattrs.len())
            .max_by_key(|&i| extras.xattrs[i].1.len())
            .expect("over the budget, so not empty");
        let (name, value) = extras.xattrs.remove(largest);
        trouble.push(format!(
            "{}: {} bytes, over what an archive entry keeps",
            String::from_utf8_lossy(&name),
            value.len()
        ));
    }
    let warning = (!trouble.is_empty()).then(|| {
        format!(
            "extended attributes left out of the archive: {}",
            trouble.join("; ")
        )
    });
    (extras, warning)
}

/// Refuses extended attributes no file can have: a name that is empty, holds a NUL byte
/// (it would be cut there, and set as another), or is longer than the kernel takes, and
/// ACLs with a NUL byte. What the kernel refuses else (a value too large for its file
/// system, say) is a warning of the restore.
pub fn check(header: &Header) -> Result<(), String> {
    let extras = &header.extras;
    for (name, _) in &extras.xattrs {
        if name.is_empty() || name.len() > xattrs::MAX_NAME || memchr::memchr(0, name).is_some() {
            return Err(format!(
                "has an extended attribute named {:?}, which no file can have",
                String::from_utf8_lossy(name)
            ));
        }
    }
    let acls = [&extras.acl_access, &extras.acl_default];
    if acls
        .into_iter()
        .flatten()
        .any(|text| memchr::memchr(0, text).is_some())
    {
        return Err("has an ACL with a NUL byte in it".to_owned());
    }
    Ok(())
}

/// What differs between archived extras and those of the live file, one phrase each.
pub fn differences(archived: &Extras, live: &Extras) -> Vec<String> {
    let mut found = Vec::new();
    // GNU tar also writes the ACLs as their binary attributes: the text is what counts.
    let map = |extras: &Extras| -> BTreeMap<Vec<u8>, Vec<u8>> {
        extras
            .xattrs
            .iter()
            .filter(|(name, _)| name != ACL_ACCESS && name != ACL_DEFAULT)
            .cloned()
            .collect()
    };
    let (a, b) = (map(archived), map(live));
    let differing: Vec<String> = a
        .keys()
        .chain(b.keys().filter(|name| !a.contains_key(*name)))
        .filter(|name| a.get(*name) != b.get(*name))
        .map(|name| String::from_utf8_lossy(name).into_owned())
        .collect();
    if !differing.is_empty() {
        found.push(format!(
            "extended attributes differ ({})",
            differing.join(", ")
        ));
    }
    for (which, archived, live) in [
        ("access", &archived.acl_access, &live.acl_access),
        ("default", &archived.acl_default, &live.acl_default),
    ] {
        let entries = |text: &Option<Vec<u8>>| text.as_deref().map(parse).transpose();
        match (entries(archived), entries(live)) {
            (Ok(a), Ok(b)) if a == b => {}
            (Err(e), _) => found.push(format!("its archived {which} ACL cannot be read: {e}")),
            _ => found.push(format!("{which} ACL differs")),
        }
    }
    found
}

/// The mode a restore gives the entry `header`: its archived mode, with the permission
/// bits its access ACL sets after it (its mask for the group's bits: bsdtar archives the
/// group's own entry there).
pub fn restored_mode(header: &Header) -> u32 {
    let bits = header
        .extras
        .acl_access
        .as_deref()
        .and_then(|text| parse(text).ok())
        .and_then(|entries| acl::mode_bits(&entries));
    match bits {
        Some(bits) => header.mode & !0o777 | bits,
        None => header.mode,
    }
}

/// An ACL's text form as sorted entries.
fn parse(text: &[u8]) -> Result<Vec<acl::Entry>, String> {
    let text = std::str::from_utf8(text).map_err(|_| "an ACL that is not text".to_owned())?;
    let mut entries = acl::from_text(text).map_err(|e| e.to_string())?;
    entries.sort();
    Ok(entries)
}

/// Sets archived extras back on restored files, and gathers what could not be set into
/// a few warnings for the whole restore: a file system without extended attributes
/// would otherwise give one per file.
#[derive(Debug, Default)]
pub struct Setter {
    as_root: bool,
    /// Entries whose extras the file system refused to keep at all.
    unsupported: Noted,
    /// The last of them, not to count it twice.
    last_unsupported: Option<Box<[u8]>>,
    /// Attributes of the `security` and `trusted` namespaces, not set by a user.
    privileged: Noted,
    /// Attributes in no namespace Linux has (another system's, `com.apple.*`, or made up).
    foreign: Noted,
    /// Attributes or ACLs refused for another reason.
    failed: Noted,
}

/// A count of things, and the first few of them for a message.
#[derive(Debug, Default)]
struct Noted {
    count: u64,
    first: Vec<String>,
}

impl Noted {
    const SHOWN: usize = 3;

    fn note(&mut self, what: impl FnOnce() -> String) {
        self.count += 1;
        if self.first.len() < Self::SHOWN {
            self.first.push(what());
        }
    }

    fn shown(&self) -> String {
        let mut text = self.first.join(", ");
        if self.count > self.first.len() as u64 {
            text.push_str(&format!(
                " and {} more",
                self.count - self.first.len() as u64
            ));
        }
        text
    }
}

impl Setter {
    /// A setter for a restore run as root or not: a user's never sets `security.*` or
    /// `trusted.*` attributes, which would be refused or, worse, mean something.
    pub fn new(as_root: bool) -> Self {
        Setter {
            as_root,
            ..Setter::default()
        }
    }

    /// Sets the extended attributes of `extras`, but for ACLs, on the open file `fd`, the
    /// entry `name` of the archive: before its mode, which may take away the owner's
    /// right to set them.
    pub fn attributes(&mut self, fd: BorrowedFd<'_>, extras: &Extras, name: &[u8]) {
        for (attr, value) in &extras.xattrs {
            if attr == ACL_ACCESS || attr == ACL_DEFAULT {
                continue;
            }
            if !xattrs::is_linux_namespace(attr) {
                let attr = String::from_utf8_lossy(attr);
                self.foreign
                    .note(|| format!("{attr} on {}", String::from_utf8_lossy(name)));
                continue;
            }
            if xattrs::is_privileged(attr) && !self.as_root {
                let attr = String::from_utf8_lossy(attr);
                self.privileged
                    .note(|| format!("{attr} on {}", String::from_utf8_lossy(name)));
                continue;
            }
            self.set(fd, attr, value, name);
        }
    }

    /// Sets the ACLs of `extras` on the open file `fd`, the entry `name`: after its mode,
    /// as GNU tar does, so that the ACL's mask wins over the mode's group bits (bsdtar's
    /// archives give the group's own entry there). From their text form, or else from
    /// the binary attributes GNU tar writes too.
    pub fn acls(&mut self, fd: BorrowedFd<'_>, extras: &Extras, name: &[u8]) {
        for (attr, text) in [
            (ACL_ACCESS, &extras.acl_access),
            (ACL_DEFAULT, &extras.acl_default),
        ] {
            match text.as_deref().map(parse) {
                Some(Ok(entries)) => self.set(fd, attr, &acl::encode(&entries), name),
                Some(Err(e)) => self
                    .failed
                    .note(|| format!("{}: ACL not restored: {e}", String::from_utf8_lossy(name))),
                None => {
                    if let Some((_, value)) = extras.xattrs.iter().find(|(n, _)| n == attr) {
                        self.set(fd, attr, value, name);
                    }
                }
            }
        }
    }

    fn set(&mut self, fd: BorrowedFd<'_>, attr: &[u8], value: &[u8], name: &[u8]) {
        let shown = || String::from_utf8_lossy(name).into_owned();
        // The check refused names with a NUL before anything was written.
        let Ok(c_attr) = CString::new(attr) else {
            return;
        };
        match xattrs::set(fd, &c_attr, value) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => {
                // Once an entry.
                if self.last_unsupported.as_deref() != Some(name) {
                    self.last_unsupported = Some(name.into());
                    let attr = String::from_utf8_lossy(attr);
                    self.unsupported.note(|| format!("{}: {attr}", shown()));
                }
            }
            Err(e) => self.failed.note(|| {
                format!(
                    "{}: {} not set ({})",
                    shown(),
                    String::from_utf8_lossy(attr),
                    why(&e)
                )
            }),
        }
    }

    /// The warnings for what could not be set, if anything.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.unsupported.count > 0 {
            warnings.push(format!(
                "extended attributes or ACLs of {} entr{} not restored: the file system \
                 restored to does not keep them ({})",
                self.unsupported.count,
                if self.unsupported.count == 1 {
                    "y"
                } else {
                    "ies"
                },
                self.unsupported.shown()
            ));
        }
        if self.privileged.count > 0 {
            warnings.push(format!(
                "{} extended attribute{} of the security and trusted namespaces not restored: \
                 only root sets them ({})",
                self.privileged.count,
                if self.privileged.count == 1 { "" } else { "s" },
                self.privileged.shown()
            ));
        }
        if self.foreign.count > 0 {
            warnings.push(format!(
                "{} extended attribute{} not restored: {} in no namespace Linux has \
                 (user, security, trusted, system) ({})",
                self.foreign.count,
                if self.foreign.count == 1 { "" } else { "s" },
                if self.foreign.count == 1 {
                    "its name is"
                } else {
                    "their names are"
                },
                self.foreign.shown()
            ));
        }
        if self.failed.count > 0 {
            warnings.push(format!(
                "extended attributes or ACLs not restored: {}",
                self.failed.shown()
            ));
        }
        warnings
    }
}

fn why(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => nix::errno::Errno::from_raw(n).desc().to_owned(),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    fn a_user_never_sets_security_or_trusted_attributes() {
        let dir = tempfile::tempdir().unwrap();
        let file = std::fs::File::create(dir.path().join("f")).unwrap();
        let extras = Extras {
            xattrs: vec![
                (b"security.capability".to_vec(), vec![1, 0, 0, 2]),
                (b"trusted.note".to_vec(), b"x".to_vec()),
            ],
            ..Extras::default()
        };
        let mut setter = Setter::new(false);
        setter.attributes(file.as_fd(), &extras, b"src/f");
        assert_eq!(
            setter.warnings(),
            [
                "2 extended attributes of the security and trusted namespaces not restored: only \
              root sets them (security.capability on src/f, trusted.note on src/f)"
            ]
        );
        let names = xattrs::list(file.as_fd()).unwrap();
        assert!(!names.iter().any(|n| xattrs::is_privileged(n)), "{names:?}");
    }

    #[test]
    fn acls_are_read_as_text_and_set_back_from_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = std::fs::File::create(dir.path().join("f")).unwrap();
        let text = b"user::rw-\nuser:65534:r--\ngroup::r--\nmask::r--\nother::---\n".to_vec();
        let extras = Extras {
            acl_access: Some(text),
            xattrs: vec![(b"user.a".to_vec(), b"1".to_vec())],
            ..Extras::default()
        };
        let mut setter = Setter::new(false);
        setter.attributes(file.as_fd(), &extras, b"f");
        setter.acls(file.as_fd(), &extras, b"f");
        if setter.unsupported.count > 0 {
            eprintln!("note: the temporary folder keeps no attributes or ACLs; skipped");
            return;
        }
        assert_eq!(setter.warnings(), Vec::<String>::new());
        let (back, trouble) = read(file.as_fd());
        assert_eq!(trouble, None);
        assert_eq!(differences(&extras, &back), Vec::<String>::new());
        let mode = nix::sys::stat::fstat(&file).unwrap().st_mode & 0o777;
        assert_eq!(mode, 0o640, "the ACL sets the mode's bits");
    }
}
