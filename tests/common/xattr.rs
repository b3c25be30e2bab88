//! Extended attributes through libc (std and nix have no wrapper): the one set every test uses.
//! Each acts on the path itself, a symlink not followed (`l*xattr`), but [`get_following`].

use std::ffi::{CString, OsStr};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The buffer every read of a value or a list uses: the largest value Linux allows.
const MAX: usize = 65536;

fn cstring(s: &OsStr) -> CString {
    CString::new(s.as_bytes()).expect("no NUL in test paths and xattr names")
}

/// `ret` of a call that returns a length, or the errno it set.
fn length(ret: isize) -> io::Result<usize> {
    usize::try_from(ret).map_err(|_| io::Error::last_os_error())
}

/// `lsetxattr(2)` with `flags` (0, `XATTR_CREATE` or `XATTR_REPLACE`).
pub fn set(path: &Path, name: &str, value: &[u8], flags: i32) -> io::Result<()> {
    let (path, name) = (cstring(path.as_os_str()), cstring(OsStr::new(name)));
    // SAFETY: NUL-terminated strings and a value buffer valid for its length, all outliving the
    // call.
    let ret = unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            flags,
        )
    };
    length(ret as isize).map(drop)
}

/// `lgetxattr(2)` of a value of any size.
pub fn get(path: &Path, name: &str) -> io::Result<Vec<u8>> {
    get_into(path, name, MAX)
}

/// `lgetxattr(2)` into a buffer of `size` bytes (`ERANGE` when the value is longer).
pub fn get_into(path: &Path, name: &str, size: usize) -> io::Result<Vec<u8>> {
    read_value(libc::lgetxattr, path, name, size)
}

/// The value read by `call` (`lgetxattr` or `getxattr`, whose arguments are the same) into a
/// buffer of `size` bytes.
fn read_value(
    call: unsafe extern "C" fn(
        *const libc::c_char,
        *const libc::c_char,
        *mut libc::c_void,
        libc::size_t,
    ) -> libc::ssize_t,
    path: &Path,
    name: &str,
    size: usize,
) -> io::Result<Vec<u8>> {
    let (path, name) = (cstring(path.as_os_str()), cstring(OsStr::new(name)));
    let mut buf = vec![0u8; size];
    // SAFETY: NUL-terminated strings; `buf` is valid for its length.
    let ret = unsafe {
        call(
            path.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    buf.truncate(length(ret)?);
    Ok(buf)
}

/// `lgetxattr(2)` with no buffer: the size of the value.
pub fn size(path: &Path, name: &str) -> io::Result<usize> {
    let (path, name) = (cstring(path.as_os_str()), cstring(OsStr::new(name)));
    // SAFETY: NUL-terminated strings; a null buffer of size 0 asks only for the size.
    length(unsafe { libc::lgetxattr(path.as_ptr(), name.as_ptr(), std::ptr::null_mut(), 0) })
}

/// `getxattr(2)`: like [`get`], but following a symlink.
pub fn get_following(path: &Path, name: &str) -> io::Result<Vec<u8>> {
    read_value(libc::getxattr, path, name, MAX)
}

/// `llistxattr(2)`: every name, whatever its namespace, sorted.
pub fn list(path: &Path) -> io::Result<Vec<Vec<u8>>> {
    let path = cstring(path.as_os_str());
    let mut buf = vec![0u8; MAX];
    // SAFETY: a NUL-terminated path; `buf` is valid for its length.
    let ret = unsafe { libc::llistxattr(path.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    let mut names: Vec<Vec<u8>> = buf[..length(ret)?]
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    names.sort();
    Ok(names)
}

/// The names in the `user.` namespace (the only one veilfs stores; a plain directory may carry
/// `security.` labels), sorted.
pub fn user_names(path: &Path) -> io::Result<Vec<String>> {
    Ok(list(path)?
        .into_iter()
        .filter(|n| n.starts_with(b"user."))
        .map(|n| String::from_utf8_lossy(&n).into_owned())
        .collect())
}

/// `lremovexattr(2)`.
pub fn remove(path: &Path, name: &str) -> io::Result<()> {
    let (path, name) = (cstring(path.as_os_str()), cstring(OsStr::new(name)));
    // SAFETY: NUL-terminated strings outliving the call.
    length(unsafe { libc::lremovexattr(path.as_ptr(), name.as_ptr()) } as isize).map(drop)
}
