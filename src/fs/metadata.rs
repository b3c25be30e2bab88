//! An inode's metadata: getattr, setattr (size, mode, owner, times), access and readlink, on its
//! open handle when there is one, else on its backing entry.

use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::SystemTime;

use fuser::{AccessFlags, FileAttr, FileHandle, TimeOrNow};

use nix::fcntl::OFlag;
use nix::sys::time::TimeSpec;

use crate::backing::{mode_of, FileKind, Stat};
use crate::error::Result;

use super::attr;
use super::handles::OpenFile;
use super::nodes::Located;
use super::{errno, sys, Caller, VeilFs};

pub(super) enum AttrTarget {
    Open(Arc<OpenFile>),
    Entry(Located),
}

impl AttrTarget {
    pub(super) fn stat(&self) -> Result<Stat> {
        match self {
            AttrTarget::Open(handle) => Ok(fstat(&handle.file)?),
            AttrTarget::Entry(located) => located.stat(),
        }
    }
}

pub(super) fn fstat(file: &File) -> io::Result<Stat> {
    nix::sys::stat::fstat(file).map_err(io::Error::from)
}

fn time_spec(t: Option<TimeOrNow>) -> TimeSpec {
    match t {
        None => TimeSpec::UTIME_OMIT,
        Some(TimeOrNow::Now) => TimeSpec::UTIME_NOW,
        Some(TimeOrNow::SpecificTime(t)) => match t.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(d) => TimeSpec::from_duration(d),
            // fuser 0.18 (src/time.rs) builds a pre-1970 time (sec, nsec) as EPOCH - (|sec| +
            // nsec) instead of EPOCH - |sec| + nsec; undo that to set what the caller asked for.
            Err(e) => TimeSpec::new(
                -(e.duration().as_secs() as i64),
                e.duration().subsec_nanos().into(),
            ),
        },
    }
}

impl VeilFs {
    /// Where attribute requests on `ino` go, with its attributes now: its handle `fh` if given,
    /// else its backing entry, else any open handle of it (an unlinked file that is still open
    /// has attributes too).
    fn attr_target(&self, ino: u64, fh: Option<FileHandle>) -> Result<(AttrTarget, Stat)> {
        let opened = |handle: Arc<OpenFile>| -> Result<(AttrTarget, Stat)> {
            let stat = fstat(&handle.file)?;
            Ok((AttrTarget::Open(handle), stat))
        };
        if let Some(handle) = fh.and_then(|fh| self.handle(fh).ok()) {
            return opened(handle);
        }
        let found = self
            .locate(ino)
            .and_then(|located| located.stat().map(|stat| (located, stat)));
        let error = match found {
            Ok((located, stat)) => return Ok((AttrTarget::Entry(located), stat)),
            Err(e) => e,
        };
        let open = self
            .files
            .lock()
            .unwrap()
            .values()
            .find(|h| h.ino == ino)
            .cloned();
        open.map_or(Err(error), opened)
    }

    pub(super) fn do_getattr(&self, ino: u64, fh: Option<FileHandle>) -> Result<FileAttr> {
        let stat = match self.attr_target(ino, fh) {
            Ok((_, stat)) => stat,
            // Unlinked (or renamed behind the mount) while the kernel holds it: the attributes
            // are still those of the inode the kernel means, as on a local file system.
            Err(e) => {
                let pin = self.inodes.lock().unwrap().pin(ino);
                pin.map_or(Err(e), |pin| Ok(pin.stat()?))?
            }
        };
        Ok(attr::from_stat(ino, &stat))
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn do_setattr(
        &self,
        ino: u64,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        fh: Option<FileHandle>,
        privileged: bool,
    ) -> Result<FileAttr> {
        let (target, _) = self.attr_target(ino, fh)?;
        if let Some(size) = size {
            let opened;
            let (content, file) = match &target {
                AttrTarget::Open(handle) => (handle.content.clone(), &handle.file),
                AttrTarget::Entry(located) => {
                    opened = located.open(OFlag::O_RDWR)?;
                    (self.content(ino, &opened)?, &opened)
                }
            };
            self.truncate(&content, file, size)?;
            // The kernel asks for this with FATTR_KILL_SUIDGID, which fuser 0.18 does not pass
            // on: a truncate by a caller without CAP_FSETID (not root) drops the bits, as on a
            // local filesystem, unless the same request sets the mode.
            if !privileged && mode.is_none() {
                drop_setid_bits(file)?;
            }
        }
        if let Some(mode) = mode {
            match &target {
                AttrTarget::Open(handle) => handle
                    .file
                    .set_permissions(fs::Permissions::from_mode(mode & 0o7777))?,
                AttrTarget::Entry(located) => located.chmod(mode & 0o7777)?,
            }
        }
        if uid.is_some() || gid.is_some() {
            match &target {
                AttrTarget::Open(handle) => std::os::unix::fs::fchown(&handle.file, uid, gid)?,
                AttrTarget::Entry(located) => located.chown(uid, gid)?,
            }
        }
        if atime.is_some() || mtime.is_some() {
            let (atime, mtime) = (time_spec(atime), time_spec(mtime));
            match &target {
                AttrTarget::Open(handle) => nix::sys::stat::futimens(&handle.file, &atime, &mtime)
                    .map_err(io::Error::from)?,
                AttrTarget::Entry(located) => located.set_times(&atime, &mtime)?,
            }
        }
        Ok(attr::from_stat(ino, &target.stat()?))
    }

    pub(super) fn do_access(&self, caller: Caller, ino: u64, mask: AccessFlags) -> Result<()> {
        let stat = self.locate(ino)?.stat()?;
        let wanted = (mask.bits() & 0o7) as u32;
        let mode = mode_of(&stat);
        let granted = if caller.uid == 0 {
            // Root may do anything, but execute only what someone may execute.
            let any_exec = mode & 0o111 != 0 || FileKind::of(&stat) == FileKind::Dir;
            0o6 | if any_exec { 0o1 } else { 0 }
        } else if caller.uid == stat.st_uid {
            (mode >> 6) & 0o7
        } else if caller.gid == stat.st_gid {
            (mode >> 3) & 0o7
        } else {
            mode & 0o7
        };
        if wanted & !granted != 0 {
            return Err(errno(libc::EACCES));
        }
        Ok(())
    }

    pub(super) fn do_readlink(&self, ino: u64) -> Result<Vec<u8>> {
        let located = self.locate_checked(ino)?;
        let backing = located.dir.readlink(located.entry_name(libc::EINVAL)?)?;
        self.vault.names().decrypt_symlink(backing.as_bytes())
    }
}

/// What a write by an unprivileged user does to a local file: setuid goes, and setgid where it
/// means "set group ID" (group-executable) rather than mandatory locking.
pub(super) fn drop_setid_bits(file: &File) -> io::Result<()> {
    let mode = mode_of(&fstat(file)?) & 0o7777;
    let mut kept = mode & !sys::S_ISUID;
    if mode & sys::S_IXGRP != 0 {
        kept &= !sys::S_ISGID;
    }
    if kept != mode {
        file.set_permissions(fs::Permissions::from_mode(kept))?;
    }
    Ok(())
}
