//! Reaching a directory below another: one entry name per step, never through a symlink or
//! `..`, and not limited by PATH_MAX (`openat2` with `RESOLVE_BENEATH` where the kernel has it,
//! one `O_NOFOLLOW` `openat` per step elsewhere).

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::OnceLock;

use nix::sys::stat::Mode;

use super::{check_component, dir_flags, Dir};

/// Longest relative path handed to the kernel in one `openat2` (PATH_MAX is 4096 with its NUL).
#[cfg(target_os = "linux")]
const WALK_CHUNK: usize = 3072;

impl Dir {
    /// Opens the directory `names` leads to, one entry name per step, below this one. No step
    /// may be a symlink, `.` or `..`; the number of steps is not limited by PATH_MAX.
    pub fn walk<S: AsRef<OsStr>>(&self, names: &[S]) -> io::Result<Dir> {
        let mut path = self.path.clone();
        for name in names {
            path.push(check_component(name.as_ref())?);
        }
        let mut current: Option<OwnedFd> = None;
        let mut rest = names;
        while !rest.is_empty() {
            let at = current.as_ref().map_or(self.fd.as_fd(), |fd| fd.as_fd());
            let (fd, taken) = open_beneath(at, rest)?;
            current = Some(fd);
            rest = &rest[taken..];
        }
        let fd = match current {
            Some(fd) => fd,
            None => self.fd.try_clone()?,
        };
        Ok(Dir {
            fd,
            path,
            sidecar_copies: OnceLock::new(),
        })
    }
}

/// Opens, below `at`, as many of `names` as fit in one call; returns the handle and how many
/// names it took. Every step refuses symlinks and anything that is not a directory.
fn open_beneath<S: AsRef<OsStr>>(at: BorrowedFd<'_>, names: &[S]) -> io::Result<(OwnedFd, usize)> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::ffi::OsStrExt;
        use std::sync::atomic::{AtomicBool, Ordering};
        /// Cleared when the kernel has no openat2 (before Linux 5.6): one step per call then.
        static OPENAT2: AtomicBool = AtomicBool::new(true);
        if names.len() > 1 && OPENAT2.load(Ordering::Relaxed) {
            let mut path = Vec::with_capacity(WALK_CHUNK);
            let mut taken = 0;
            for name in names {
                let name = name.as_ref().as_bytes();
                if taken > 0 && path.len() + 1 + name.len() > WALK_CHUNK {
                    break;
                }
                if taken > 0 {
                    path.push(b'/');
                }
                path.extend_from_slice(name);
                taken += 1;
            }
            use nix::fcntl::{OpenHow, ResolveFlag};
            let how = OpenHow::new().flags(dir_flags()).resolve(
                ResolveFlag::RESOLVE_BENEATH
                    | ResolveFlag::RESOLVE_NO_SYMLINKS
                    | ResolveFlag::RESOLVE_NO_MAGICLINKS,
            );
            match nix::fcntl::openat2(at, OsStr::from_bytes(&path), how) {
                Ok(fd) => return Ok((fd, taken)),
                Err(nix::errno::Errno::ENOSYS) => OPENAT2.store(false, Ordering::Relaxed),
                // Interrupted by a concurrent rename somewhere on the system: retry per step.
                Err(nix::errno::Errno::EAGAIN) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    let name = names[0].as_ref();
    let fd = nix::fcntl::openat(at, name, dir_flags(), Mode::empty())?;
    Ok((fd, 1))
}
