//! The platform layer: every call that differs between Linux and macOS, and the only `unsafe`
//! in veilfs (extended attributes through libc, which nix does not wrap).

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

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

/// Runs `call` with a path that names entry `name` of directory `dir` (or `dir` itself) without
/// resolving anything a sync peer could have planted: on Linux the entry is opened `O_PATH |
/// O_NOFOLLOW` and reached through its `/proc/self/fd` link, which the kernel follows to that
/// very inode (a symlink's own inode, if the entry is one), so `call` must follow it.
#[cfg(target_os = "linux")]
fn at_entry<T>(
    dir: BorrowedFd<'_>,
    name: Option<&OsStr>,
    call: impl FnOnce(&CString) -> io::Result<T>,
) -> io::Result<T> {
    use nix::fcntl::OFlag;
    let opened = match name {
        Some(name) => Some(nix::fcntl::openat(
            dir,
            name,
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )?),
        None => None,
    };
    let fd = opened.as_ref().map_or(dir.as_raw_fd(), |fd| fd.as_raw_fd());
    call(&cstring(format!("/proc/self/fd/{fd}").as_bytes())?)
}

/// macOS has no `O_PATH`: the entry is opened itself (`O_SYMLINK` opens a symlink, not its
/// target) and the `f*xattr` calls take that descriptor, as `/proc/self/fd/N` would not exist.
#[cfg(target_os = "macos")]
fn at_entry_fd<T>(
    dir: BorrowedFd<'_>,
    name: Option<&OsStr>,
    call: impl FnOnce(i32) -> io::Result<T>,
) -> io::Result<T> {
    use std::os::fd::FromRawFd;
    let opened = match name {
        Some(name) => {
            let name = cstring(name.as_bytes())?;
            // SAFETY: a NUL-terminated name and a valid directory descriptor.
            let fd = unsafe {
                libc::openat(
                    dir.as_raw_fd(),
                    name.as_ptr(),
                    libc::O_RDONLY
                        | libc::O_NOFOLLOW
                        | libc::O_SYMLINK
                        | libc::O_NONBLOCK
                        | libc::O_CLOEXEC,
                )
            };
            check(fd as isize)?;
            // SAFETY: `fd` was just returned by openat and is owned by nobody else.
            Some(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
        }
        None => None,
    };
    call(opened.as_ref().map_or(dir.as_raw_fd(), |fd| fd.as_raw_fd()))
}

pub fn get_xattr_at(dir: BorrowedFd<'_>, name: Option<&OsStr>, attr: &str) -> io::Result<Vec<u8>> {
    let attr = cstring(attr.as_bytes())?;
    #[cfg(target_os = "linux")]
    return at_entry(dir, name, |path| {
        read_sized(|buf| {
            let (ptr, len) = (buf.as_mut_ptr().cast(), buf.len());
            // SAFETY: both strings are NUL-terminated CStrings that outlive the call; `ptr` is
            // valid for `len` writable bytes (a null pointer with len 0 asks for the size).
            unsafe { libc::getxattr(path.as_ptr(), attr.as_ptr(), ptr, len) as isize }
        })
    });
    #[cfg(target_os = "macos")]
    return at_entry_fd(dir, name, |fd| {
        read_sized(|buf| {
            let (ptr, len) = (buf.as_mut_ptr().cast(), buf.len());
            // SAFETY: as above, with an open descriptor; position 0.
            unsafe { libc::fgetxattr(fd, attr.as_ptr(), ptr, len, 0, 0) as isize }
        })
    });
}

pub fn set_xattr_at(
    dir: BorrowedFd<'_>,
    name: Option<&OsStr>,
    attr: &str,
    value: &[u8],
    flags: i32,
) -> io::Result<()> {
    let attr = cstring(attr.as_bytes())?;
    let (ptr, len) = (value.as_ptr().cast(), value.len());
    #[cfg(target_os = "linux")]
    return at_entry(dir, name, |path| {
        // SAFETY: NUL-terminated CStrings and a value pointer valid for `len` bytes, all
        // outliving the call.
        let ret = unsafe { libc::setxattr(path.as_ptr(), attr.as_ptr(), ptr, len, flags) };
        check(ret as isize).map(drop)
    });
    #[cfg(target_os = "macos")]
    return at_entry_fd(dir, name, |fd| {
        // SAFETY: as above, with an open descriptor; position 0.
        let ret = unsafe { libc::fsetxattr(fd, attr.as_ptr(), ptr, len, 0, flags) };
        check(ret as isize).map(drop)
    });
}

pub fn list_xattrs_at(dir: BorrowedFd<'_>, name: Option<&OsStr>) -> io::Result<Vec<OsString>> {
    #[cfg(target_os = "linux")]
    let list = at_entry(dir, name, |path| {
        read_sized(|buf| {
            let (ptr, len) = (buf.as_mut_ptr().cast(), buf.len());
            // SAFETY: NUL-terminated path; `ptr` valid for `len` writable bytes (null for size).
            unsafe { libc::listxattr(path.as_ptr(), ptr, len) as isize }
        })
    })?;
    #[cfg(target_os = "macos")]
    let list = at_entry_fd(dir, name, |fd| {
        read_sized(|buf| {
            let (ptr, len) = (buf.as_mut_ptr().cast(), buf.len());
            // SAFETY: an open descriptor; `ptr` valid for `len` writable bytes (null for size).
            unsafe { libc::flistxattr(fd, ptr, len, 0) as isize }
        })
    })?;
    Ok(list
        .split(|&b| b == 0)
        .filter(|name| !name.is_empty())
        .map(|name| OsString::from_vec(name.to_vec()))
        .collect())
}

pub fn remove_xattr_at(dir: BorrowedFd<'_>, name: Option<&OsStr>, attr: &str) -> io::Result<()> {
    let attr = cstring(attr.as_bytes())?;
    #[cfg(target_os = "linux")]
    return at_entry(dir, name, |path| {
        // SAFETY: NUL-terminated CStrings outliving the call.
        let ret = unsafe { libc::removexattr(path.as_ptr(), attr.as_ptr()) };
        check(ret as isize).map(drop)
    });
    #[cfg(target_os = "macos")]
    return at_entry_fd(dir, name, |fd| {
        // SAFETY: a NUL-terminated CString and an open descriptor.
        let ret = unsafe { libc::fremovexattr(fd, attr.as_ptr(), 0) };
        check(ret as isize).map(drop)
    });
}

/// `chmod` of entry `name` of `dir` without following a symlink: on Linux through the entry's
/// `O_PATH` handle (a symlink's mode cannot be changed: EOPNOTSUPP, as for
/// `fchmodat(AT_SYMLINK_NOFOLLOW)`), elsewhere with `AT_SYMLINK_NOFOLLOW`.
pub fn chmod_at_nofollow(dir: BorrowedFd<'_>, name: &OsStr, mode: u32) -> io::Result<()> {
    let mode = nix::sys::stat::Mode::from_bits_truncate(mode as libc::mode_t);
    #[cfg(target_os = "linux")]
    if let Some(done) = fchmodat2_nofollow(dir, name, mode) {
        return done;
    }
    #[cfg(target_os = "linux")]
    return at_entry(dir, Some(name), |path| {
        let stat = nix::sys::stat::stat(path.as_c_str())?;
        if stat.st_mode & libc::S_IFMT == libc::S_IFLNK {
            return Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP));
        }
        nix::sys::stat::fchmodat(
            nix::fcntl::AT_FDCWD,
            path.as_c_str(),
            mode,
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        )
        .map_err(io::Error::from)
    });
    #[cfg(not(target_os = "linux"))]
    nix::sys::stat::fchmodat(
        dir,
        name,
        mode,
        nix::sys::stat::FchmodatFlags::NoFollowSymlink,
    )
    .map_err(io::Error::from)
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

/// `fchmodat2(dir, name, mode, AT_SYMLINK_NOFOLLOW)` (Linux 6.6): one system call where the
/// `/proc/self/fd` way takes three and a procfs lookup. `None` where the kernel lacks it.
#[cfg(target_os = "linux")]
fn fchmodat2_nofollow(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    mode: nix::sys::stat::Mode,
) -> Option<io::Result<()>> {
    use std::sync::atomic::{AtomicBool, Ordering};
    /// The same number on every architecture (system calls added since Linux 5.1 share one
    /// table); libc names it on a few only.
    const SYS_FCHMODAT2: libc::c_long = 452;
    static MISSING: AtomicBool = AtomicBool::new(false);
    if MISSING.load(Ordering::Relaxed) {
        return None;
    }
    let name = match cstring(name.as_bytes()) {
        Ok(name) => name,
        Err(e) => return Some(Err(e)),
    };
    // SAFETY: a valid directory descriptor and a NUL-terminated name, both outliving the call;
    // the other two arguments are plain integers.
    let ret = unsafe {
        libc::syscall(
            SYS_FCHMODAT2,
            dir.as_raw_fd(),
            name.as_ptr(),
            mode.bits() as libc::c_uint,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    match check(ret as isize) {
        Ok(_) => Some(Ok(())),
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
            MISSING.store(true, Ordering::Relaxed);
            None
        }
        Err(e) => Some(Err(e)),
    }
}

/// `mknodat(2)`: nix wraps it on Linux only; macOS has it in libc.
pub fn mknod_at(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    kind: nix::sys::stat::SFlag,
    mode: u32,
    rdev: u64,
) -> io::Result<()> {
    let perm = nix::sys::stat::Mode::from_bits_truncate(mode as libc::mode_t);
    #[cfg(target_os = "linux")]
    return nix::sys::stat::mknodat(dir, name, kind, perm, rdev as libc::dev_t)
        .map_err(io::Error::from);
    #[cfg(target_os = "macos")]
    {
        let name = cstring(name.as_bytes())?;
        // SAFETY: a NUL-terminated name and a valid directory descriptor, for the call only.
        let ret = unsafe {
            libc::mknodat(
                dir.as_raw_fd(),
                name.as_ptr(),
                kind.bits() | perm.bits(),
                rdev as libc::dev_t,
            )
        };
        check(ret as isize).map(drop)
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
