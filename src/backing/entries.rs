//! Changing the entries of a backing directory by name: creating, removing, renaming and
//! linking them, symlinks and special files, owner, mode and times, never through a symlink.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::AsFd;

use nix::fcntl::AtFlags;
use nix::sys::stat::{Mode, SFlag};

use super::{check_component, Dir, RenameMode};
use crate::fs::sys;

impl Dir {
    pub fn mkdir(&self, name: impl AsRef<OsStr>, mode: u32) -> io::Result<()> {
        let name = check_component(name.as_ref())?;
        Ok(nix::sys::stat::mkdirat(
            &self.fd,
            name,
            Mode::from_bits_truncate(mode as _),
        )?)
    }

    /// Removes non-directory `name`.
    pub fn unlink(&self, name: impl AsRef<OsStr>) -> io::Result<()> {
        let name = check_component(name.as_ref())?;
        Ok(nix::unistd::unlinkat(
            &self.fd,
            name,
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        )?)
    }

    /// Removes [`Self::unlink`]'s target if it is there; a missing one is no error.
    pub fn unlink_if_present(&self, name: impl AsRef<OsStr>) -> io::Result<()> {
        match self.unlink(name) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            result => result,
        }
    }

    /// Removes empty directory `name`.
    pub fn rmdir(&self, name: impl AsRef<OsStr>) -> io::Result<()> {
        let name = check_component(name.as_ref())?;
        Ok(nix::unistd::unlinkat(
            &self.fd,
            name,
            nix::unistd::UnlinkatFlags::RemoveDir,
        )?)
    }

    /// Renames entry `from` of this directory to `to` in `to_dir`.
    pub fn rename(
        &self,
        from: impl AsRef<OsStr>,
        to_dir: &Dir,
        to: impl AsRef<OsStr>,
        mode: RenameMode,
    ) -> io::Result<()> {
        let from = check_component(from.as_ref())?;
        let to = check_component(to.as_ref())?;
        if mode == RenameMode::Replace {
            return Ok(nix::fcntl::renameat(&self.fd, from, &to_dir.fd, to)?);
        }
        #[cfg(target_os = "linux")]
        {
            use nix::fcntl::RenameFlags;
            let flags = match mode {
                RenameMode::NoReplace => RenameFlags::RENAME_NOREPLACE,
                _ => RenameFlags::RENAME_EXCHANGE,
            };
            Ok(nix::fcntl::renameat2(
                &self.fd, from, &to_dir.fd, to, flags,
            )?)
        }
        #[cfg(not(target_os = "linux"))]
        {
            if mode == RenameMode::Exchange {
                return Err(io::Error::from_raw_os_error(libc::EINVAL));
            }
            // Not atomic: good enough where renameat2 does not exist (macOS has renameatx_np).
            if to_dir.exists(to) {
                return Err(io::Error::from_raw_os_error(libc::EEXIST));
            }
            Ok(nix::fcntl::renameat(&self.fd, from, &to_dir.fd, to)?)
        }
    }

    /// Makes `to` in `to_dir` a hard link of entry `from` here (never following a symlink).
    pub fn link(
        &self,
        from: impl AsRef<OsStr>,
        to_dir: &Dir,
        to: impl AsRef<OsStr>,
    ) -> io::Result<()> {
        let from = check_component(from.as_ref())?;
        let to = check_component(to.as_ref())?;
        Ok(nix::unistd::linkat(
            &self.fd,
            from,
            &to_dir.fd,
            to,
            AtFlags::empty(),
        )?)
    }

    pub fn symlink(&self, target: impl AsRef<OsStr>, name: impl AsRef<OsStr>) -> io::Result<()> {
        let name = check_component(name.as_ref())?;
        Ok(nix::unistd::symlinkat(target.as_ref(), &self.fd, name)?)
    }

    pub fn readlink(&self, name: impl AsRef<OsStr>) -> io::Result<OsString> {
        let name = check_component(name.as_ref())?;
        Ok(nix::fcntl::readlinkat(&self.fd, name)?)
    }

    /// Creates a FIFO, socket or device node `name`.
    pub fn mknod(
        &self,
        name: impl AsRef<OsStr>,
        kind: SFlag,
        mode: u32,
        rdev: u64,
    ) -> io::Result<()> {
        let name = check_component(name.as_ref())?;
        sys::mknod_at(self.fd.as_fd(), name, kind, mode, rdev)
    }

    /// `lchown` of entry `name`.
    pub fn chown(
        &self,
        name: impl AsRef<OsStr>,
        uid: Option<u32>,
        gid: Option<u32>,
    ) -> io::Result<()> {
        let name = check_component(name.as_ref())?;
        Ok(nix::unistd::fchownat(
            &self.fd,
            name,
            uid.map(nix::unistd::Uid::from_raw),
            gid.map(nix::unistd::Gid::from_raw),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )?)
    }

    /// `chmod` of entry `name`, never through a symlink (a symlink's own mode cannot be
    /// changed on Linux: EOPNOTSUPP, as `fchmodat(AT_SYMLINK_NOFOLLOW)` says there).
    pub fn chmod(&self, name: impl AsRef<OsStr>, mode: u32) -> io::Result<()> {
        let name = check_component(name.as_ref())?;
        sys::chmod_at_nofollow(self.fd.as_fd(), name, mode)
    }

    /// `fchmod` of this directory itself.
    pub fn chmod_self(&self, mode: u32) -> io::Result<()> {
        Ok(nix::sys::stat::fchmod(
            &self.fd,
            Mode::from_bits_truncate(mode as _),
        )?)
    }

    /// `fchown` of this directory itself.
    pub fn chown_self(&self, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
        Ok(nix::unistd::fchown(
            &self.fd,
            uid.map(nix::unistd::Uid::from_raw),
            gid.map(nix::unistd::Gid::from_raw),
        )?)
    }

    /// `futimens` of this directory itself.
    pub fn set_times_self(
        &self,
        atime: &nix::sys::time::TimeSpec,
        mtime: &nix::sys::time::TimeSpec,
    ) -> io::Result<()> {
        Ok(nix::sys::stat::futimens(&self.fd, atime, mtime)?)
    }

    /// `utimensat` of entry `name`, never through a symlink.
    pub fn set_times(
        &self,
        name: impl AsRef<OsStr>,
        atime: &nix::sys::time::TimeSpec,
        mtime: &nix::sys::time::TimeSpec,
    ) -> io::Result<()> {
        let name = check_component(name.as_ref())?;
        Ok(nix::sys::stat::utimensat(
            &self.fd,
            name,
            atime,
            mtime,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )?)
    }
}
