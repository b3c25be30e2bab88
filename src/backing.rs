//! The backing directory, reached only through directory handles.
//!
//! The backing directory is in the hands of the party veilfs protects against, so every
//! operation on it goes through a [`Dir`]: an open handle of one backing directory plus a single
//! entry name, never a path string resolved by the kernel from the top. The vault root is opened
//! once ([`Dir::open_root`]) and held: replacing CIPHERDIR by a symlink afterwards changes
//! nothing. Deeper directories are reached with [`Dir::walk`], which refuses symlinks and `..`
//! at every step (`openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS`
//! on Linux; one `O_NOFOLLOW` `openat` per component where that is missing), and which is not
//! limited by PATH_MAX: encrypted names are ~3.5 times longer than plaintext ones, so the
//! backing path of a legal plaintext path can be far longer than the kernel resolves at once.
//!
//! Nothing here blocks on what a sync peer planted: files are opened with `O_NONBLOCK` and
//! `O_NOFOLLOW` and checked with `fstat` to be regular files ([`Dir::open_file`]), and the files
//! veilfs keeps for itself are size-checked before a byte is read ([`Dir::read_small`]).
//! docs/design.md ("Backing access") says why it is built this way.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use nix::fcntl::{AtFlags, OFlag, F_GETFL, F_SETFL};
use nix::sys::stat::{FileStat, Mode, SFlag};

use crate::fs::sys;

/// What `fstat` says of a backing file.
pub type Stat = FileStat;

/// Longest relative path handed to the kernel in one `openat2` (PATH_MAX is 4096 with its NUL).
#[cfg(target_os = "linux")]
const WALK_CHUNK: usize = 3072;

/// An open handle of one backing directory.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    /// Where the directory was when it was opened: for messages only, never resolved.
    path: PathBuf,
    /// Sync tools' copies of long-name sidecars found in this directory, by the entry they are
    /// copies of: see [`Dir::sidecar_copies`].
    sidecar_copies: OnceLock<SidecarCopies>,
}

/// Names of sync tools' copies of sidecars, by the (normalized) name of the long-name entry
/// each is a copy of the sidecar of.
pub type SidecarCopies = HashMap<String, Vec<String>>;

/// One entry of a backing directory, as `readdir` gives it.
#[derive(Clone, Debug)]
pub struct Entry {
    pub name: OsString,
    pub ino: u64,
    /// `None` where the backing filesystem does not say (then [`Dir::stat`] does).
    pub kind: Option<FileKind>,
}

/// The type of a backing file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
}

impl FileKind {
    pub fn of(stat: &Stat) -> Self {
        match SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits()) {
            SFlag::S_IFDIR => FileKind::Dir,
            SFlag::S_IFLNK => FileKind::Symlink,
            SFlag::S_IFIFO => FileKind::Fifo,
            SFlag::S_IFSOCK => FileKind::Socket,
            SFlag::S_IFCHR => FileKind::CharDevice,
            SFlag::S_IFBLK => FileKind::BlockDevice,
            _ => FileKind::File,
        }
    }

    fn from_dirent(kind: nix::dir::Type) -> Self {
        use nix::dir::Type;
        match kind {
            Type::Directory => FileKind::Dir,
            Type::Symlink => FileKind::Symlink,
            Type::Fifo => FileKind::Fifo,
            Type::Socket => FileKind::Socket,
            Type::CharacterDevice => FileKind::CharDevice,
            Type::BlockDevice => FileKind::BlockDevice,
            Type::File => FileKind::File,
        }
    }

    /// How a message names it: "a FIFO", "a directory".
    pub fn described(self) -> &'static str {
        match self {
            FileKind::File => "a regular file",
            FileKind::Dir => "a directory",
            FileKind::Symlink => "a symbolic link",
            FileKind::Fifo => "a FIFO",
            FileKind::Socket => "a socket",
            FileKind::CharDevice => "a character device",
            FileKind::BlockDevice => "a block device",
        }
    }
}

/// The mode bits of `stat` as `u32` (`st_mode` is `u16` on macOS).
#[allow(clippy::unnecessary_cast)]
pub fn mode_of(stat: &Stat) -> u32 {
    stat.st_mode as u32
}

/// How large a file veilfs keeps for itself may be.
#[derive(Clone, Copy, Debug)]
pub enum Size {
    Exactly(u64),
    AtMost(u64),
}

/// How an existing target is treated by [`Dir::rename`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RenameMode {
    Replace,
    NoReplace,
    Exchange,
}

/// The error for a backing entry of the wrong type: never read, never followed.
pub fn wrong_type(path: &Path, kind: FileKind, wanted: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{} is {}, not {wanted}", path.display(), kind.described()),
    )
}

fn invalid_component() -> io::Error {
    io::Error::from_raw_os_error(libc::EINVAL)
}

/// Whether `name` is one entry name: not empty, not `.` or `..`, no `/` or NUL.
fn is_single_component(name: &OsStr) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes != b"."
        && bytes != b".."
        && !bytes.contains(&b'/')
        && !bytes.contains(&0)
}

fn check_component(name: &OsStr) -> io::Result<&OsStr> {
    if is_single_component(name) {
        Ok(name)
    } else {
        Err(invalid_component())
    }
}

/// Flags every directory handle is opened with: reading (listings, fsync) never follows a
/// symlink, never blocks, and is not inherited by children.
fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK
}

impl Dir {
    /// Opens the vault root (CIPHERDIR): the one path string veilfs resolves, given by the user.
    pub fn open_root(path: &Path) -> io::Result<Dir> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
            Mode::empty(),
        )?;
        Ok(Dir {
            fd,
            path: path.to_path_buf(),
            sidecar_copies: OnceLock::new(),
        })
    }

    /// Where this directory was when it was opened, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The backing path of `name` in this directory, for messages.
    pub fn display_path(&self, name: impl AsRef<OsStr>) -> PathBuf {
        self.path.join(name.as_ref())
    }

    pub fn try_clone(&self) -> io::Result<Dir> {
        Ok(Dir {
            fd: self.fd.try_clone()?,
            path: self.path.clone(),
            sidecar_copies: OnceLock::new(),
        })
    }

    /// Opens subdirectory `name`; a symlink or anything but a directory is refused.
    pub fn open_dir(&self, name: impl AsRef<OsStr>) -> io::Result<Dir> {
        self.walk(&[name])
    }

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

    /// The sync tools' copies of sidecars in this directory, found by `scan` the first time
    /// they are asked for through this handle and remembered for its life (one request of the
    /// mount, one directory of an fsck; [`Self::try_clone`] starts afresh). Every entry whose
    /// sidecar is missing looks for such a copy: scanning the directory each time made a
    /// listing of n planted sidecar-less entries cost n full scans (minutes for a few thousand
    /// empty files, which anyone who can write to the backing directory can plant), and the
    /// copies are kept by entry so that looking one up does not go through all of them.
    pub fn sidecar_copies(
        &self,
        scan: impl FnOnce() -> io::Result<SidecarCopies>,
    ) -> io::Result<&SidecarCopies> {
        if let Some(copies) = self.sidecar_copies.get() {
            return Ok(copies);
        }
        let copies = scan()?;
        Ok(self.sidecar_copies.get_or_init(|| copies))
    }

    /// `fstat` of this directory.
    pub fn stat_self(&self) -> io::Result<Stat> {
        Ok(nix::sys::stat::fstat(&self.fd)?)
    }

    /// `lstat` of entry `name`.
    pub fn stat(&self, name: impl AsRef<OsStr>) -> io::Result<Stat> {
        let name = check_component(name.as_ref())?;
        Ok(nix::sys::stat::fstatat(
            &self.fd,
            name,
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )?)
    }

    /// Whether entry `name` exists (as anything, a dangling symlink included).
    pub fn exists(&self, name: impl AsRef<OsStr>) -> bool {
        self.stat(name).is_ok()
    }

    /// The entries of this directory, without `.` and `..`.
    pub fn entries(&self) -> io::Result<Vec<Entry>> {
        let mut listing = nix::dir::Dir::openat(&self.fd, ".", dir_flags(), Mode::empty())?;
        let mut entries = Vec::new();
        for entry in listing.iter() {
            let entry = entry?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            entries.push(Entry {
                name: OsStr::from_bytes(name).to_owned(),
                ino: entry.ino(),
                kind: entry.file_type().map(FileKind::from_dirent),
            });
        }
        Ok(entries)
    }

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

    /// The extended attribute `attr` of entry `name` (or of this directory, for `None`).
    pub fn get_xattr(&self, name: Option<&OsStr>, attr: &str) -> io::Result<Vec<u8>> {
        sys::get_xattr_at(
            self.fd.as_fd(),
            name.map(check_component).transpose()?,
            attr,
        )
    }

    pub fn set_xattr(
        &self,
        name: Option<&OsStr>,
        attr: &str,
        value: &[u8],
        flags: i32,
    ) -> io::Result<()> {
        sys::set_xattr_at(
            self.fd.as_fd(),
            name.map(check_component).transpose()?,
            attr,
            value,
            flags,
        )
    }

    pub fn list_xattrs(&self, name: Option<&OsStr>) -> io::Result<Vec<OsString>> {
        sys::list_xattrs_at(self.fd.as_fd(), name.map(check_component).transpose()?)
    }

    pub fn remove_xattr(&self, name: Option<&OsStr>, attr: &str) -> io::Result<()> {
        sys::remove_xattr_at(
            self.fd.as_fd(),
            name.map(check_component).transpose()?,
            attr,
        )
    }

    /// Makes this directory's entries durable.
    pub fn sync(&self) -> io::Result<()> {
        Ok(nix::unistd::fsync(&self.fd)?)
    }

    /// Makes durable everything written to the filesystem this directory is on (`syncfs`): one
    /// journal commit, where work that touched many directories would otherwise fsync each.
    /// Without `syncfs` (macOS), `sync(2)`.
    pub fn sync_filesystem(&self) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        {
            Ok(nix::unistd::syncfs(&self.fd)?)
        }
        #[cfg(not(target_os = "linux"))]
        {
            nix::unistd::sync();
            Ok(())
        }
    }

    /// Space and inodes of the filesystem this directory is on.
    pub fn statvfs(&self) -> io::Result<nix::sys::statvfs::Statvfs> {
        Ok(nix::sys::statvfs::fstatvfs(&self.fd)?)
    }

    /// Takes an exclusive `flock` on this directory without waiting: `Ok(false)` when another
    /// open handle holds it. The lock belongs to this handle's open file description, so it
    /// lasts while this handle (or a copy inherited through `fork`) is open.
    pub fn try_lock(&self) -> io::Result<bool> {
        // A duplicate shares the open file description, so the lock outlives it.
        match File::from(self.fd.try_clone()?).try_lock() {
            Ok(()) => Ok(true),
            Err(std::fs::TryLockError::WouldBlock) => Ok(false),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }

    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    pub fn as_raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
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

/// Sets extended attribute `attr` of the open file `file`.
pub fn set_file_xattr(file: &File, attr: &str, value: &[u8]) -> io::Result<()> {
    sys::set_xattr_at(file.as_fd(), None, attr, value, 0)
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

/// Opens, below `at`, as many of `names` as fit in one call; returns the handle and how many
/// names it took. Every step refuses symlinks and anything that is not a directory.
fn open_beneath<S: AsRef<OsStr>>(at: BorrowedFd<'_>, names: &[S]) -> io::Result<(OwnedFd, usize)> {
    #[cfg(target_os = "linux")]
    {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn walk_refuses_symlinks_and_dot_dot() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("a/b")).unwrap();
        symlink(tmp.path().join("a"), tmp.path().join("link")).unwrap();
        let root = Dir::open_root(tmp.path()).unwrap();
        assert!(root.walk(&["a", "b"]).is_ok());
        assert!(root.walk(&["link"]).is_err());
        assert!(root.walk(&["link", "b"]).is_err());
        assert!(root.walk(&["a", ".."]).is_err());
        assert!(root.walk(&["a/b"]).is_err());
    }

    #[test]
    fn walk_goes_deeper_than_path_max() {
        let tmp = tempfile::tempdir().unwrap();
        let name = "d".repeat(200);
        let names = vec![name.as_str(); 40]; // 8,040 bytes of path
        let root = Dir::open_root(tmp.path()).unwrap();
        let mut dir = root.try_clone().unwrap();
        for n in &names {
            dir.mkdir(n, 0o700).unwrap();
            dir = dir.open_dir(n).unwrap();
        }
        dir.write_new("f", b"deep", 0o600, false).unwrap();
        let deep = root.walk(&names).unwrap();
        assert_eq!(deep.read_small("f", Size::AtMost(10)).unwrap(), b"deep");
    }

    #[test]
    fn special_files_are_refused_without_blocking() {
        let tmp = tempfile::tempdir().unwrap();
        nix::unistd::mkfifo(&tmp.path().join("fifo"), Mode::from_bits_truncate(0o600)).unwrap();
        symlink("/etc/hostname", tmp.path().join("link")).unwrap();
        std::fs::write(tmp.path().join("big"), [0; 100]).unwrap();
        let root = Dir::open_root(tmp.path()).unwrap();
        let fifo = root.read_small("fifo", Size::AtMost(10)).unwrap_err();
        assert!(fifo.to_string().contains("is a FIFO"), "{fifo}");
        assert!(root.read_small("link", Size::AtMost(100)).is_err());
        assert!(root.read_small("big", Size::AtMost(10)).is_err());
        assert!(root.read_small("big", Size::Exactly(16)).is_err());
        assert_eq!(
            root.read_small("big", Size::Exactly(100)).unwrap().len(),
            100
        );
        assert!(read_user_file(&tmp.path().join("fifo"), 10).is_err());
        assert!(read_user_file(Path::new("/dev/zero"), 10).is_err());
    }

    #[test]
    fn new_files_get_exactly_their_mode() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Dir::open_root(tmp.path()).unwrap();
        let old = nix::sys::stat::umask(Mode::empty());
        root.write_new("iv", b"x", 0o400, true).unwrap();
        nix::sys::stat::umask(old);
        assert_eq!(root.stat("iv").unwrap().st_mode & 0o7777, 0o400);
        assert!(root.write_new("iv", b"y", 0o400, false).is_err());
    }
}
