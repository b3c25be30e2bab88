//! The library's only `unsafe`: the two system calls that neither nix nor rustix wraps, each
//! a thin safe function over one call, and ([`uring`]) the memory FUSE over io_uring shares with
//! the kernel (the lint setup in lib.rs allows `unsafe` here alone). The binary's one `unsafe` is
//! the `fork` in src/cli/mount/daemon.rs, with its own `SAFETY` note.

#[cfg(target_os = "linux")]
pub mod uring;

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `ret` of a call that returns -1 and sets errno on failure.
fn check(ret: libc::c_long) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `fchmodat2(dir, name, mode, flags)` (Linux 6.6; ENOSYS before): libc names its number on a
/// few architectures only, rustix not at all.
#[cfg(target_os = "linux")]
pub fn fchmodat2(
    dir: BorrowedFd<'_>,
    name: &std::ffi::CStr,
    mode: libc::c_uint,
    flags: i32,
) -> io::Result<()> {
    /// The same number on every architecture (system calls added since Linux 5.1 share one
    /// table).
    const SYS_FCHMODAT2: libc::c_long = 452;
    // SAFETY: a valid directory descriptor and a NUL-terminated name, both borrowed for the
    // call; the other two arguments are plain integers.
    let ret = unsafe { libc::syscall(SYS_FCHMODAT2, dir.as_raw_fd(), name.as_ptr(), mode, flags) };
    check(ret)
}

/// `mknodat(dir, name, mode, rdev)` on macOS, where rustix and nix do not offer it.
#[cfg(target_os = "macos")]
pub fn mknodat(
    dir: BorrowedFd<'_>,
    name: &std::ffi::OsStr,
    mode: libc::mode_t,
    rdev: libc::dev_t,
) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let name = std::ffi::CString::new(name.as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: a valid directory descriptor and a NUL-terminated name, both borrowed for the
    // call; the other two arguments are plain integers.
    let ret = unsafe { libc::mknodat(dir.as_raw_fd(), name.as_ptr(), mode, rdev) };
    check(ret.into())
}
