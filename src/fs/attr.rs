//! Plaintext attributes from backing metadata: the same inode, owner, mode and times, with
//! sizes translated (contents are length-preserving behind an 18-byte header; symlink targets
//! are decrypted).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{FileAttr, FileType, INodeNo};

use crate::backing::{FileKind, Stat};
use crate::crypto::content::plaintext_size;
use crate::crypto::names::symlink_target_len;

pub fn file_type(kind: FileKind) -> FileType {
    match kind {
        FileKind::File => FileType::RegularFile,
        FileKind::Dir => FileType::Directory,
        FileKind::Symlink => FileType::Symlink,
        FileKind::Fifo => FileType::NamedPipe,
        FileKind::Socket => FileType::Socket,
        FileKind::CharDevice => FileType::CharDevice,
        FileKind::BlockDevice => FileType::BlockDevice,
    }
}

fn time(secs: i64, nsecs: i64) -> SystemTime {
    let nanos = Duration::from_nanos(nsecs.clamp(0, 999_999_999) as u64);
    if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs as u64) + nanos
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()) + nanos
    }
}

/// Attributes of inode `ino` whose backing `fstat` is `stat`.
// The stat fields' integer types differ between Linux and macOS.
#[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
pub fn from_stat(ino: u64, stat: &Stat) -> FileAttr {
    let kind = file_type(FileKind::of(stat));
    let len = stat.st_size.max(0) as u64;
    let size = match kind {
        // A truncated header shows as an empty file; reading it reports the error.
        FileType::RegularFile => plaintext_size(len).unwrap_or(0),
        // From the backing target's length alone: no readlink, which would touch its atime.
        FileType::Symlink => symlink_target_len(len).unwrap_or(len),
        _ => len,
    };
    FileAttr {
        ino: INodeNo(ino),
        size,
        blocks: stat.st_blocks as u64,
        atime: time(stat.st_atime as i64, stat.st_atime_nsec as i64),
        mtime: time(stat.st_mtime as i64, stat.st_mtime_nsec as i64),
        ctime: time(stat.st_ctime as i64, stat.st_ctime_nsec as i64),
        crtime: UNIX_EPOCH,
        kind,
        perm: (stat.st_mode as u32 & 0o7777) as u16,
        nlink: stat.st_nlink as u32,
        uid: stat.st_uid,
        gid: stat.st_gid,
        rdev: stat.st_rdev as u32,
        blksize: 4096,
        flags: 0,
    }
}
