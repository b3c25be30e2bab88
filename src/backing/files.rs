//! Regular files of the backing directory: opened without following a symlink or blocking on
//! a FIFO or device, checked to be regular files, created with an exact mode, and read whole
//! only after a size check; inodes pinned; files the user names (key and password files) read
//! the same careful way.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, F_GETFL, F_SETFL};
use nix::sys::stat::Mode;

use super::{check_component, wrong_type, Dir, FileKind, Size, Stat};

impl Dir {
    /// Opens regular file `name`: never follows a symlink, never blocks on a FIFO or a device,
    /// and refuses anything that is not a regular file. `flags` may ask for writing and
    /// creation (`O_CREAT`, `O_EXCL`); `mode` is the new file's exact mode, whatever the umask.
    pub fn open_file(&self, name: impl AsRef<OsStr>, flags: OFlag, mode: u32) -> io::Result<File> {
        Ok(self.open_file_stat(name, flags, mode)?.0)
    }

    /// [`Self::open_file`], with the `fstat` of the file it opened (taken for the type check, so
    /// a caller that needs it does not ask again).
    pub fn open_file_stat(
        &self,
        name: impl AsRef<OsStr>,
        flags: OFlag,
        mode: u32,
    ) -> io::Result<(File, Stat)> {
        let (file, stat, nonblocking) = self.open_regular(name.as_ref(), flags, mode)?;
        if nonblocking {
            blocking(&file)?;
        }
        Ok((file, stat))
    }

    /// A [`Pin`] of entry `name` (never following a symlink: a symlink's own inode), with the
    /// `fstat` of the inode pinned. Only where the platform has `O_PATH` (Linux); elsewhere
    /// EOPNOTSUPP, and the caller does without.
    pub fn pin(&self, name: impl AsRef<OsStr>) -> io::Result<(Pin, Stat)> {
        let name = check_component(name.as_ref())?;
        #[cfg(target_os = "linux")]
        {
            let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            let fd = nix::fcntl::openat(&self.fd, name, flags, Mode::empty())?;
            let stat = nix::sys::stat::fstat(&fd)?;
            Ok((Pin(fd), stat))
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = name;
            Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP))
        }
    }

    /// [`Self::open_file`], leaving `O_NONBLOCK` on if it was needed for the open (returned as
    /// true): an exclusive create cannot open a FIFO, anything else is opened non-blocking.
    fn open_regular(
        &self,
        name: &OsStr,
        flags: OFlag,
        mode: u32,
    ) -> io::Result<(File, Stat, bool)> {
        let name = check_component(name)?;
        let nonblocking = !flags.contains(OFlag::O_CREAT | OFlag::O_EXCL);
        let mut flags = flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        if nonblocking {
            flags |= OFlag::O_NONBLOCK;
        }
        let fd = nix::fcntl::openat(&self.fd, name, flags, Mode::from_bits_truncate(mode as _))?;
        let (file, stat) = regular(fd, || self.display_path(name))?;
        Ok((file, stat, nonblocking))
    }

    /// Creates file `name`, which must not exist, with exactly `mode` and `contents`; removes it
    /// again if it cannot be written whole. `durable`: fsynced before returning.
    pub fn write_new(
        &self,
        name: impl AsRef<OsStr>,
        contents: &[u8],
        mode: u32,
        durable: bool,
    ) -> io::Result<()> {
        let name = name.as_ref();
        let mut file =
            self.open_file(name, OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL, mode)?;
        let written = (|| {
            // Created under the daemon's umask: the mode is set exactly.
            nix::sys::stat::fchmod(&file, Mode::from_bits_truncate(mode as _))?;
            file.write_all(contents)?;
            if durable {
                file.sync_all()?;
            }
            Ok::<_, io::Error>(())
        })();
        if let Err(e) = written {
            drop(file);
            let _ = self.unlink(name);
            return Err(e);
        }
        Ok(())
    }

    /// Reads file `name`, a file veilfs keeps for itself (a directory IV, a sidecar, the
    /// config), after checking that it is a regular file of an acceptable size: a FIFO, a
    /// device, a symlink or a huge file is an error naming it, and nothing blocks.
    pub fn read_small(&self, name: impl AsRef<OsStr>, size: Size) -> io::Result<Vec<u8>> {
        let name = name.as_ref();
        let (file, _, _) = self.open_regular(name, OFlag::O_RDONLY, 0)?;
        read_checked(file, &self.display_path(name), size)
    }
}

/// `fd` as a [`File`] with its `fstat`, if it is a regular file; else the error names `path()`.
fn regular(fd: OwnedFd, path: impl FnOnce() -> PathBuf) -> io::Result<(File, Stat)> {
    let stat = nix::sys::stat::fstat(&fd)?;
    let kind = FileKind::of(&stat);
    if kind != FileKind::File {
        return Err(wrong_type(&path(), kind, "a regular file"));
    }
    Ok((File::from(fd), stat))
}

/// Clears the `O_NONBLOCK` a file was opened with: it was for the open alone (a FIFO planted in
/// the backing directory must not block it); the file is then read and written as any other.
fn blocking(file: &File) -> io::Result<()> {
    let open_flags = OFlag::from_bits_truncate(nix::fcntl::fcntl(file, F_GETFL)?);
    nix::fcntl::fcntl(file, F_SETFL(open_flags - OFlag::O_NONBLOCK))?;
    Ok(())
}

/// An `O_PATH` handle of one backing inode: it opens nothing (no read or write access, no
/// effect on the file), but while it exists the inode stays allocated, even once every name of
/// it is gone, so the backing file system cannot give its number to a new file. The FUSE
/// adapter holds one for each inode the kernel holds (docs/design.md, "Node IDs").
#[derive(Debug)]
pub struct Pin(OwnedFd);

impl Pin {
    /// `fstat` of the pinned inode, whatever became of its names.
    pub fn stat(&self) -> io::Result<Stat> {
        Ok(nix::sys::stat::fstat(&self.0)?)
    }

    /// Opens the pinned inode as a regular file with `flags` (an access mode, and `O_SYNC` or
    /// the like), as [`Dir::open_file`] would have opened its entry: through its `/proc/self/fd`
    /// link, which leads to that very inode and resolves no name a sync peer could have
    /// changed; whatever is not a regular file (a symlink gives ELOOP) is refused.
    pub fn open_file(&self, flags: OFlag) -> io::Result<File> {
        let link = format!("/proc/self/fd/{}", self.0.as_raw_fd());
        let flags = flags | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
        let fd = nix::fcntl::open(link.as_str(), flags, Mode::empty())?;
        let (file, _) = regular(fd, || PathBuf::from(&link))?;
        blocking(&file)?;
        Ok(file)
    }
}

/// Reads a file chosen by the user (a key file, a password file, a config given by path):
/// symlinks are followed, as the user asked for that path, but a FIFO, a device or a directory
/// is refused without blocking, and so is a file larger than `max` bytes.
pub fn read_user_file(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags_nonblocking()
        .open(path)?;
    let stat = nix::sys::stat::fstat(&file)?;
    let kind = FileKind::of(&stat);
    if kind != FileKind::File {
        return Err(wrong_type(path, kind, "a regular file"));
    }
    read_checked(file, path, Size::AtMost(max))
}

trait NonBlocking {
    fn custom_flags_nonblocking(&mut self) -> &mut Self;
}

impl NonBlocking for std::fs::OpenOptions {
    fn custom_flags_nonblocking(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
    }
}

/// Reads all of an opened regular `file`, refusing it unless its size fits `size`.
fn read_checked(file: File, path: &Path, size: Size) -> io::Result<Vec<u8>> {
    let len = file.metadata()?.len();
    let max = match size {
        Size::Exactly(n) if len != n => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is {len} bytes long, not {n}", path.display()),
            ))
        }
        Size::Exactly(n) | Size::AtMost(n) => n,
    };
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is {len} bytes long, more than {max}", path.display()),
        ));
    }
    // The size may change under us: read no more than the limit allows either way.
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max || matches!(size, Size::Exactly(n) if bytes.len() as u64 != n) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} changed size while it was read", path.display()),
        ));
    }
    Ok(bytes)
}
