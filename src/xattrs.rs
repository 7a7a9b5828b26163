//! Extended attributes of an open file, read and set through its descriptor (never a
//! path, so no link is followed and the very file checked is the one read), and POSIX
//! ACLs between the kernel's binary form, the `system.posix_acl_*` attributes, and the
//! text form GNU tar stores (see [`acl`]).

pub mod acl;

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// The largest value the kernel keeps in one attribute (`XATTR_SIZE_MAX`).
pub const MAX_VALUE: usize = 64 * 1024;

/// The longest name the kernel takes (`XATTR_NAME_MAX`).
pub const MAX_NAME: usize = 255;

/// The longest list of names the kernel gives (`XATTR_LIST_MAX`).
const MAX_LIST: usize = 64 * 1024;

/// The attribute that holds a file's access ACL.
pub const ACL_ACCESS: &[u8] = b"system.posix_acl_access";

/// The attribute that holds a folder's default ACL, which what is made in it inherits.
pub const ACL_DEFAULT: &[u8] = b"system.posix_acl_default";

/// The names of the extended attributes of `fd` that this process may see; none where
/// the file system keeps none.
pub fn list(fd: BorrowedFd<'_>) -> io::Result<Vec<Vec<u8>>> {
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: flistxattr writes at most `buf.len()` bytes into `buf`; the descriptor
        // is open while borrowed.
        let n = unsafe { libc::flistxattr(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            buf.truncate(n as usize);
            break;
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ERANGE) if buf.len() < MAX_LIST => buf.resize(MAX_LIST, 0),
            Some(libc::ENOTSUP | libc::ENOSYS) => return Ok(Vec::new()),
            _ => return Err(e),
        }
    }
    Ok(buf
        .split(|&b| b == 0)
        .filter(|name| !name.is_empty())
        .map(<[u8]>::to_vec)
        .collect())
}

/// The value of the attribute `name` of `fd` (at most [`MAX_VALUE`] bytes).
pub fn get(fd: BorrowedFd<'_>, name: &CStr) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: fgetxattr writes at most `buf.len()` bytes into `buf` and reads the
        // NUL-terminated name; the descriptor is open while borrowed.
        let n = unsafe {
            libc::fgetxattr(
                fd.as_raw_fd(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if n >= 0 {
            buf.truncate(n as usize);
            return Ok(buf);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ERANGE) if buf.len() < MAX_VALUE => buf.resize(MAX_VALUE, 0),
            _ => return Err(e),
        }
    }
}

/// Sets the attribute `name` of `fd` to `value`, creating or replacing it.
pub fn set(fd: BorrowedFd<'_>, name: &CStr, value: &[u8]) -> io::Result<()> {
    // SAFETY: fsetxattr reads the NUL-terminated name and `value.len()` bytes of
    // `value`; the descriptor is open while borrowed.
    let n = unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if n == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether `name` is in a namespace only a privileged process may set: `security.*`
/// (file capabilities, SELinux labels) and `trusted.*`.
pub fn is_privileged(name: &[u8]) -> bool {
    name.starts_with(b"security.") || name.starts_with(b"trusted.")
}

/// Whether `name` is in one of the namespaces Linux keeps attributes in; a name in no
/// other (another system's, such as macOS's `com.apple.*`) is refused by every file system
/// with "not supported", which would else read as a file system that keeps none.
pub fn is_linux_namespace(name: &[u8]) -> bool {
    [&b"user."[..], b"security.", b"trusted.", b"system."]
        .iter()
        .any(|space| name.starts_with(space))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn attributes_are_set_listed_and_read_through_the_descriptor() {
        let dir = tempfile::tempdir().unwrap();
        let file = std::fs::File::create(dir.path().join("f")).unwrap();
        let fd = file.as_fd();
        match set(fd, c"user.test", b"\0value") {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => {
                eprintln!("note: the temporary folder keeps no user attributes; skipped");
                return;
            }
            Err(e) => panic!("{e}"),
        }
        let big = vec![7u8; 3000];
        set(fd, c"user.big", &big).unwrap();
        let mut names = list(fd).unwrap();
        names.sort();
        assert_eq!(names, [b"user.big".to_vec(), b"user.test".to_vec()]);
        assert_eq!(get(fd, c"user.test").unwrap(), b"\0value");
        assert_eq!(get(fd, c"user.big").unwrap(), big);
        assert!(is_privileged(b"security.capability"));
        assert!(!is_privileged(b"user.security"));
    }
}
