//! What a backing file is ([`FileKind`], from `fstat` or a listing) and the options of the
//! operations on one: how large a file veilfs keeps for itself may be, how a rename treats its
//! target, and the error for an entry of the wrong type.

use std::io;
use std::path::Path;

use nix::sys::stat::{FileStat, SFlag};

/// What `fstat` says of a backing file.
pub type Stat = FileStat;

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

    pub(super) fn from_dirent(kind: nix::dir::Type) -> Self {
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

/// How an existing target is treated by [`Dir::rename`](super::Dir::rename).
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
