//! The platform layer: every call that differs between Linux and macOS. Extended attributes go
//! through rustix; the two calls nothing safe wraps (`fchmodat2`, macOS's `mknodat`) through
//! `fs::ffi`, the library's only `unsafe`.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use rustix::fs::XattrFlags;

#[cfg(target_os = "linux")]
fn cstring(bytes: &[u8]) -> io::Result<std::ffi::CString> {
    std::ffi::CString::new(bytes).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// Reads a value whose size may change between the asking and the reading: `size` asks how
/// large it is, `read` reads it into a buffer that large; asked again if it grew meanwhile.
fn read_sized(
    size: impl Fn() -> rustix::io::Result<usize>,
    read: impl Fn(&mut [u8]) -> rustix::io::Result<usize>,
) -> io::Result<Vec<u8>> {
    loop {
        let mut buf = vec![0; size()?];
        match read(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(e) if e == rustix::io::Errno::RANGE => continue,
            Err(e) => return Err(e.into()),
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
    call: impl FnOnce(&std::ffi::CString) -> io::Result<T>,
) -> io::Result<T> {
    use nix::fcntl::OFlag;
    use std::os::fd::AsRawFd;
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
    call: impl FnOnce(BorrowedFd<'_>) -> io::Result<T>,
) -> io::Result<T> {
    use rustix::fs::{Mode, OFlags};
    use std::os::fd::AsFd;
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::SYMLINK | OFlags::NONBLOCK;
    let opened = match name {
        Some(name) => Some(rustix::fs::openat(
            dir,
            name,
            flags | OFlags::CLOEXEC,
            Mode::empty(),
        )?),
        None => None,
    };
    call(opened.as_ref().map_or(dir, |fd| fd.as_fd()))
}

pub fn get_xattr_at(dir: BorrowedFd<'_>, name: Option<&OsStr>, attr: &str) -> io::Result<Vec<u8>> {
    #[cfg(target_os = "linux")]
    return at_entry(dir, name, |path| {
        read_sized(
            || rustix::fs::getxattr_query(path, attr),
            |buf| rustix::fs::getxattr(path, attr, buf),
        )
    });
    #[cfg(target_os = "macos")]
    return at_entry_fd(dir, name, |fd| {
        read_sized(
            || rustix::fs::fgetxattr_query(fd, attr),
            |buf| rustix::fs::fgetxattr(fd, attr, buf),
        )
    });
}

pub fn set_xattr_at(
    dir: BorrowedFd<'_>,
    name: Option<&OsStr>,
    attr: &str,
    value: &[u8],
    flags: i32,
) -> io::Result<()> {
    // XATTR_CREATE and XATTR_REPLACE, as the kernel passed them; others are the kernel's to refuse.
    let flags = XattrFlags::from_bits_retain(flags as u32);
    #[cfg(target_os = "linux")]
    return at_entry(dir, name, |path| {
        Ok(rustix::fs::setxattr(path, attr, value, flags)?)
    });
    #[cfg(target_os = "macos")]
    return at_entry_fd(dir, name, |fd| {
        Ok(rustix::fs::fsetxattr(fd, attr, value, flags)?)
    });
}

pub fn list_xattrs_at(dir: BorrowedFd<'_>, name: Option<&OsStr>) -> io::Result<Vec<OsString>> {
    #[cfg(target_os = "linux")]
    let list = at_entry(dir, name, |path| {
        read_sized(
            || rustix::fs::listxattr_query(path),
            |buf| rustix::fs::listxattr(path, buf),
        )
    })?;
    #[cfg(target_os = "macos")]
    let list = at_entry_fd(dir, name, |fd| {
        read_sized(
            || rustix::fs::flistxattr_query(fd),
            |buf| rustix::fs::flistxattr(fd, buf),
        )
    })?;
    Ok(list
        .split(|&b| b == 0)
        .filter(|name| !name.is_empty())
        .map(|name| OsString::from_vec(name.to_vec()))
        .collect())
}

pub fn remove_xattr_at(dir: BorrowedFd<'_>, name: Option<&OsStr>, attr: &str) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    return at_entry(dir, name, |path| Ok(rustix::fs::removexattr(path, attr)?));
    #[cfg(target_os = "macos")]
    return at_entry_fd(dir, name, |fd| Ok(rustix::fs::fremovexattr(fd, attr)?));
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
    static MISSING: AtomicBool = AtomicBool::new(false);
    if MISSING.load(Ordering::Relaxed) {
        return None;
    }
    let name = match cstring(name.as_bytes()) {
        Ok(name) => name,
        Err(e) => return Some(Err(e)),
    };
    let done = super::ffi::fchmodat2(dir, &name, mode.bits(), libc::AT_SYMLINK_NOFOLLOW);
    match done {
        Ok(()) => Some(Ok(())),
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
            MISSING.store(true, Ordering::Relaxed);
            None
        }
        Err(e) => Some(Err(e)),
    }
}

/// `mknodat(2)`: nix wraps it on Linux only; macOS has it in libc (`fs::ffi::mknodat`).
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
    return super::ffi::mknodat(dir, name, kind.bits() | perm.bits(), rdev as libc::dev_t);
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
