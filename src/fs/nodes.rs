//! Where an inode is in the backing directory: walking to a directory from the root handle,
//! locating an entry by its parent and backing name (checked to be the inode the kernel means),
//! and remembering (pinning) what a lookup found.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::Ordering;

use fuser::FileAttr;

use nix::fcntl::OFlag;
use nix::sys::time::TimeSpec;

use crate::backing::{Dir, Pin, Stat};
use crate::crypto::names::DirIv;
use crate::error::{Error, Result};
use crate::layout::longname::BackingName;

use super::attr;
use super::inodes::{InodeTable, Location, ROOT};
use super::{errno, VeilFs};

/// Where an inode is in the backing directory: the handle of its parent and its entry name, or
/// for the root, the root's own handle and no name.
pub(super) struct Located {
    pub(super) dir: Dir,
    pub(super) name: Option<OsString>,
    /// The backing inode the entry must still be: a sync tool may have replaced it since.
    pub(super) backing_ino: u64,
}

impl Located {
    /// `lstat` of the entry; ESTALE when the name now holds another inode, so that the kernel
    /// looks the name up afresh (and finds what the sync tool put there).
    pub(super) fn stat(&self) -> Result<Stat> {
        let stat = match &self.name {
            Some(name) => self.dir.stat(name)?,
            None => self.dir.stat_self()?,
        };
        self.check(&stat)?;
        Ok(stat)
    }

    pub(super) fn check(&self, stat: &Stat) -> Result<()> {
        if stat.st_ino != self.backing_ino {
            return Err(errno(libc::ESTALE));
        }
        Ok(())
    }

    pub(super) fn name(&self) -> Option<&OsStr> {
        self.name.as_deref()
    }

    /// The entry's name, for calls that cannot apply to the root.
    pub(super) fn entry_name(&self, root_errno: i32) -> Result<&OsStr> {
        self.name().ok_or_else(|| errno(root_errno))
    }

    /// Opens the entry as a regular file (never following a symlink, never blocking).
    pub(super) fn open(&self, flags: OFlag) -> Result<File> {
        let (file, stat) = self
            .dir
            .open_file_stat(self.entry_name(libc::EISDIR)?, flags, 0)?;
        self.check(&stat)?;
        Ok(file)
    }

    pub(super) fn chmod(&self, mode: u32) -> io::Result<()> {
        match self.name() {
            Some(name) => self.dir.chmod(name, mode),
            None => self.dir.chmod_self(mode),
        }
    }

    pub(super) fn chown(&self, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
        match self.name() {
            Some(name) => self.dir.chown(name, uid, gid),
            None => self.dir.chown_self(uid, gid),
        }
    }

    pub(super) fn set_times(&self, atime: &TimeSpec, mtime: &TimeSpec) -> io::Result<()> {
        match self.name() {
            Some(name) => self.dir.set_times(name, atime, mtime),
            None => self.dir.set_times_self(atime, mtime),
        }
    }
}

impl VeilFs {
    /// must still be the inode the kernel means: otherwise ESTALE, and the kernel looks again.
    pub(super) fn open_dir(&self, ino: u64) -> Result<Dir> {
        let dir = self.walk_to(ino)?;
        if ino != ROOT && dir.stat_self()?.st_ino != ino {
            return Err(errno(libc::ESTALE));
        }
        Ok(dir)
    }

    /// [`Self::open_dir`] without its check: for the parent of an entry whose own inode number
    /// is checked instead ([`Located`]), which says as much.
    pub(super) fn walk_to(&self, ino: u64) -> Result<Dir> {
        let root = self.vault.root();
        if ino == ROOT {
            return Ok(root.try_clone()?);
        }
        let names = self.inodes.lock().unwrap().names_to(ino);
        let names = names.ok_or_else(|| errno(libc::ENOENT))?;
        root.walk(&names).map_err(|e| self.walk_failed(&names, e))
    }

    /// A walk that met a symlink (ELOOP) or a file (ENOTDIR) where a directory was: someone
    /// replaced a backing directory. Never followed; the request fails with EIO and the backing
    /// path is logged once.
    fn walk_failed(&self, names: &[OsString], e: io::Error) -> Error {
        let path = || {
            let mut path = self.vault.root_path().to_path_buf();
            path.extend(names);
            path
        };
        match e.raw_os_error() {
            Some(libc::ELOOP | libc::ENOTDIR) => {
                let why = io::Error::other(
                    "a directory on the way was replaced by a symlink or a file; not followed",
                );
                self.warn_once(path(), &why.into());
                errno(libc::EIO)
            }
            Some(libc::EACCES) => {
                self.warn_once(path(), &Error::from(e));
                errno(libc::EACCES)
            }
            _ => e.into(),
        }
    }

    /// Where inode `ino` is: its parent's handle and its backing name.
    pub(super) fn locate(&self, ino: u64) -> Result<Located> {
        let (location, backing_ino) = {
            let table = self.inodes.lock().unwrap();
            (table.location(ino).cloned(), table.backing_ino(ino))
        };
        match location {
            _ if ino == ROOT => Ok(Located {
                dir: self.open_dir(ROOT)?,
                name: None,
                backing_ino,
            }),
            Some((parent, name)) => Ok(Located {
                dir: self.walk_to(parent)?,
                name: Some(name),
                backing_ino,
            }),
            None => Err(errno(libc::ENOENT)),
        }
    }

    /// [`Self::locate`], having checked that the entry is still the inode the kernel means.
    pub(super) fn locate_checked(&self, ino: u64) -> Result<Located> {
        let located = self.locate(ino)?;
        located.stat()?;
        Ok(located)
    }

    /// Backing handle and IV of directory `ino`.
    pub(super) fn dir(&self, ino: u64) -> Result<(Dir, DirIv)> {
        let dir = self.open_dir(ino)?;
        let known = self.inodes.lock().unwrap().iv(ino);
        let iv = match known {
            Some(iv) => iv,
            None => {
                let iv = self.load_iv(ino, &dir)?;
                self.inodes.lock().unwrap().set_iv(ino, iv);
                iv
            }
        };
        Ok((dir, iv))
    }

    /// Backing directory, its IV, and the backing name of `name` in directory `parent`.
    pub(super) fn entry(&self, parent: u64, name: &OsStr) -> Result<(Dir, DirIv, BackingName)> {
        let (dir, iv) = self.dir(parent)?;
        let backing = self.vault.backing_name(&iv, name.as_bytes())?;
        Ok((dir, iv, backing))
    }

    /// Attributes of a backing entry the kernel now holds a reference to.
    pub(super) fn looked_up(
        &self,
        parent: u64,
        dir: &Dir,
        backing: &BackingName,
    ) -> Result<FileAttr> {
        self.remembered(parent, dir, backing, InodeTable::remember)
    }

    /// [`Self::looked_up`] for an entry just created (see [`InodeTable::remember_new`]).
    pub(super) fn created(
        &self,
        parent: u64,
        dir: &Dir,
        backing: &BackingName,
    ) -> Result<FileAttr> {
        self.remembered(parent, dir, backing, InodeTable::remember_new)
    }

    pub(super) fn remembered(
        &self,
        parent: u64,
        dir: &Dir,
        backing: &BackingName,
        remember: fn(&mut InodeTable, u64, Location, Option<Pin>),
    ) -> Result<FileAttr> {
        let (pin, stat) = self.pin_entry(dir, OsStr::new(backing.entry()))?;
        let mut table = self.inodes.lock().unwrap();
        let ino = table.fuse_ino(stat.st_ino);
        remember(&mut table, ino, (parent, backing.entry().into()), pin);
        drop(table);
        Ok(attr::from_stat(ino, &stat))
    }

    /// Entry `name` of `dir` pinned, with the `fstat` of what was pinned: the number told to
    /// the kernel is then that of an inode that stays allocated until the kernel forgets it,
    /// even if the name is replaced a moment later. Past the pin budget (or where pins do not
    /// exist) its `lstat` alone, and the node goes unpinned ([`InodeTable`]).
    pub(super) fn pin_entry(&self, dir: &Dir, name: &OsStr) -> io::Result<(Option<Pin>, Stat)> {
        if self.inodes.lock().unwrap().may_pin() {
            match dir.pin(name) {
                Ok((pin, stat)) => return Ok((Some(pin), stat)),
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                    self.warn_unpinned(&e)
                }
                Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {}
                Err(e) => return Err(e),
            }
        } else {
            self.warn_unpinned(&io::Error::other("the pin budget is spent"));
        }
        Ok((None, dir.stat(name)?))
    }

    fn warn_unpinned(&self, why: &io::Error) {
        if !self.unpinned_warned.swap(true, Ordering::Relaxed) {
            let pinned = self.inodes.lock().unwrap().pinned();
            tracing::warn!(
                "cannot pin more backing inodes ({pinned} pinned: {why}); files replaced while \
                 the kernel holds them may now give EIO (raise the open file limit)"
            );
        }
    }
}

/// How many backing inodes the adapter may pin: three quarters of the open file limit (which
/// `veilfs mount` raises to the hard limit), the rest left for open files, directory handles of
/// requests in flight and the FUSE channels.
pub(super) fn pin_budget() -> usize {
    use nix::sys::resource::{getrlimit, Resource};
    let soft = getrlimit(Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| soft);
    let soft = usize::try_from(soft).unwrap_or(usize::MAX);
    soft - soft / 4
}
