//! Plaintext attributes from backing metadata: the same inode, owner, mode and times, with
//! sizes translated (contents are length-preserving behind an 18-byte header; symlink targets
//! are decrypted).

use std::fs::Metadata;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{FileAttr, FileType, INodeNo};

use crate::crypto::content::plaintext_size;
use crate::crypto::names::symlink_target_len;

pub fn file_type(ft: std::fs::FileType) -> FileType {
    if ft.is_dir() {
        FileType::Directory
    } else if ft.is_symlink() {
        FileType::Symlink
    } else if ft.is_fifo() {
        FileType::NamedPipe
    } else if ft.is_socket() {
        FileType::Socket
    } else if ft.is_char_device() {
        FileType::CharDevice
    } else if ft.is_block_device() {
        FileType::BlockDevice
    } else {
        FileType::RegularFile
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

/// Attributes of inode `ino` whose backing metadata is `meta`.
pub fn from_metadata(ino: u64, meta: &Metadata) -> FileAttr {
    let kind = file_type(meta.file_type());
    let size = match kind {
        // A truncated header shows as an empty file; reading it reports the error.
        FileType::RegularFile => plaintext_size(meta.len()).unwrap_or(0),
        // From the backing target's length alone: no readlink, which would touch its atime.
        FileType::Symlink => symlink_target_len(meta.len()).unwrap_or(meta.len()),
        _ => meta.len(),
    };
    FileAttr {
        ino: INodeNo(ino),
        size,
        blocks: meta.blocks(),
        atime: time(meta.atime(), meta.atime_nsec()),
        mtime: time(meta.mtime(), meta.mtime_nsec()),
        ctime: time(meta.ctime(), meta.ctime_nsec()),
        crtime: UNIX_EPOCH,
        kind,
        perm: (meta.mode() & 0o7777) as u16,
        nlink: meta.nlink() as u32,
        uid: meta.uid(),
        gid: meta.gid(),
        rdev: meta.rdev() as u32,
        blksize: 4096,
        flags: 0,
    }
}
