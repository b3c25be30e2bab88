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

mod entries;
mod files;
mod kind;
mod walk;
mod xattr;

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::Mode;

pub use files::{read_user_file, Pin};
pub use kind::{mode_of, wrong_type, FileKind, RenameMode, Size, Stat};
pub use xattr::set_file_xattr;

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
