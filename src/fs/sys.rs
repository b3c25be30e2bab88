//! The platform layer: every call that differs between Linux and macOS, and the only `unsafe`
//! in veilfs (extended attributes through libc, which nix does not wrap).

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

fn cstring(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn check(ret: isize) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

/// Calls `query(buf)` twice: for the size, then for the data (retrying if it grew in between).
fn read_sized(mut query: impl FnMut(&mut [u8]) -> isize) -> io::Result<Vec<u8>> {
    loop {
        let size = check(query(&mut []))?;
        let mut buf = vec![0; size];
        match check(query(&mut buf)) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(e) if e.raw_os_error() == Some(libc::ERANGE) => continue,
            Err(e) => return Err(e),
        }
    }
}

pub fn get_xattr(path: &Path, name: &str) -> io::Result<Vec<u8>> {
    let path = cstring(path.as_os_str().as_bytes())?;
    let name = cstring(name.as_bytes())?;
    read_sized(|buf| {
        let (ptr, len) = (buf.as_mut_ptr().cast(), buf.len());
        // SAFETY: both strings are NUL-terminated CStrings that outlive the call; `ptr` is valid
        // for `len` writable bytes (a null pointer with len 0 asks for the size).
        #[cfg(target_os = "linux")]
        let ret = unsafe { libc::lgetxattr(path.as_ptr(), name.as_ptr(), ptr, len) };
        // SAFETY: as above; position 0 and XATTR_NOFOLLOW are the lgetxattr equivalent.
        #[cfg(target_os = "macos")]
        let ret = unsafe {
            libc::getxattr(
                path.as_ptr(),
                name.as_ptr(),
                ptr,
                len,
                0,
                libc::XATTR_NOFOLLOW,
            )
        };
        ret as isize
    })
}

pub fn set_xattr(path: &Path, name: &str, value: &[u8], flags: i32) -> io::Result<()> {
    let path = cstring(path.as_os_str().as_bytes())?;
    let name = cstring(name.as_bytes())?;
    let (ptr, len) = (value.as_ptr().cast(), value.len());
    // SAFETY: NUL-terminated CStrings and a value pointer valid for `len` bytes, all outliving
    // the call.
    #[cfg(target_os = "linux")]
    let ret = unsafe { libc::lsetxattr(path.as_ptr(), name.as_ptr(), ptr, len, flags) };
    // SAFETY: as above.
    #[cfg(target_os = "macos")]
    let ret = unsafe {
        libc::setxattr(
            path.as_ptr(),
            name.as_ptr(),
            ptr,
            len,
            0,
            flags | libc::XATTR_NOFOLLOW,
        )
    };
    check(ret as isize).map(drop)
}

pub fn list_xattrs(path: &Path) -> io::Result<Vec<OsString>> {
    let path = cstring(path.as_os_str().as_bytes())?;
    let list = read_sized(|buf| {
        let (ptr, len) = (buf.as_mut_ptr().cast(), buf.len());
        // SAFETY: NUL-terminated path; `ptr` valid for `len` writable bytes (null for size).
        #[cfg(target_os = "linux")]
        let ret = unsafe { libc::llistxattr(path.as_ptr(), ptr, len) };
        // SAFETY: as above.
        #[cfg(target_os = "macos")]
        let ret = unsafe { libc::listxattr(path.as_ptr(), ptr, len, libc::XATTR_NOFOLLOW) };
        ret as isize
    })?;
    Ok(list
        .split(|&b| b == 0)
        .filter(|name| !name.is_empty())
        .map(|name| OsString::from_vec(name.to_vec()))
        .collect())
}

pub fn remove_xattr(path: &Path, name: &str) -> io::Result<()> {
    let path = cstring(path.as_os_str().as_bytes())?;
    let name = cstring(name.as_bytes())?;
    // SAFETY: NUL-terminated CStrings outliving the call.
    #[cfg(target_os = "linux")]
    let ret = unsafe { libc::lremovexattr(path.as_ptr(), name.as_ptr()) };
    // SAFETY: as above.
    #[cfg(target_os = "macos")]
    let ret = unsafe { libc::removexattr(path.as_ptr(), name.as_ptr(), libc::XATTR_NOFOLLOW) };
    check(ret as isize).map(drop)
}

/// The "no such attribute" errno: ENODATA on Linux, ENOATTR on macOS.
#[cfg(target_os = "linux")]
pub const ENOATTR: i32 = libc::ENODATA;
#[cfg(target_os = "macos")]
pub const ENOATTR: i32 = libc::ENOATTR;

/// Mode bits as `u32`, the type of `st_mode` everywhere (libc's `mode_t` is `u16` on macOS).
#[allow(clippy::unnecessary_cast)]
mod mode_bits {
    pub const S_ISUID: u32 = libc::S_ISUID as u32;
    pub const S_ISGID: u32 = libc::S_ISGID as u32;
    pub const S_IXGRP: u32 = libc::S_IXGRP as u32;
    pub const S_IFMT: u32 = libc::S_IFMT as u32;
}
pub use mode_bits::*;

/// How a rename treats an existing target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RenameMode {
    Replace,
    NoReplace,
    Exchange,
}

impl RenameMode {
    /// The mode the kernel's rename flags ask for; `None` for flags veilfs does not support.
    pub fn from_flags(flags: fuser::RenameFlags) -> Option<Self> {
        if flags.is_empty() {
            return Some(Self::Replace);
        }
        #[cfg(target_os = "linux")]
        {
            use fuser::RenameFlags as F;
            if flags == F::RENAME_EXCHANGE {
                return Some(Self::Exchange);
            }
            if flags == F::RENAME_NOREPLACE {
                return Some(Self::NoReplace);
            }
        }
        None
    }
}

pub fn rename(from: &Path, to: &Path, mode: RenameMode) -> io::Result<()> {
    if mode == RenameMode::Replace {
        return std::fs::rename(from, to);
    }
    #[cfg(target_os = "linux")]
    {
        use nix::fcntl::{renameat2, RenameFlags, AT_FDCWD};
        let flags = match mode {
            RenameMode::NoReplace => RenameFlags::RENAME_NOREPLACE,
            _ => RenameFlags::RENAME_EXCHANGE,
        };
        renameat2(AT_FDCWD, from, AT_FDCWD, to, flags).map_err(io::Error::from)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (from, to);
        Err(io::Error::from_raw_os_error(libc::EINVAL))
    }
}

/// What an fallocate `mode` asks for: `Some(keep_size)` for plain allocation, with or without
/// FALLOC_FL_KEEP_SIZE (Linux); `None` for modes veilfs does not support.
pub fn fallocate_keeps_size(mode: i32) -> Option<bool> {
    match mode {
        0 => Some(false),
        #[cfg(target_os = "linux")]
        libc::FALLOC_FL_KEEP_SIZE => Some(true),
        _ => None,
    }
}

/// Allocates backing space; `keep_size` leaves the file size alone.
pub fn fallocate(file: &std::fs::File, offset: u64, len: u64, keep_size: bool) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use nix::fcntl::FallocateFlags;
        let mode = if keep_size {
            FallocateFlags::FALLOC_FL_KEEP_SIZE
        } else {
            FallocateFlags::empty()
        };
        nix::fcntl::fallocate(file, mode, offset as libc::off_t, len as libc::off_t)
            .map_err(io::Error::from)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (file, offset, len, keep_size);
        Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP))
    }
}

pub fn os_str(bytes: &[u8]) -> &OsStr {
    OsStr::from_bytes(bytes)
}
