//! Attributes of the reverse view's entries, from what they are: a plaintext entry's own, with
//! its size as it is encrypted; a made-up entry's from PLAINDIR's owner and the reverse config's
//! mtime.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{FileAttr, FileType, INodeNo};

use crate::backing::{mode_of, FileKind, Stat};
use crate::crypto::content::backing_size;
use crate::reverse::View;

pub(super) fn file_type(kind: FileKind) -> FileType {
    match kind {
        FileKind::Dir => FileType::Directory,
        FileKind::Symlink => FileType::Symlink,
        // Nothing else is shown.
        _ => FileType::RegularFile,
    }
}

/// `secs` and `nanos` after the epoch (`secs` before it when negative); the epoch itself
/// for a time `SystemTime` cannot hold.
fn system_time(secs: i64, nanos: i64) -> SystemTime {
    let whole = Duration::from_secs(secs.unsigned_abs());
    let base = match secs >= 0 {
        true => UNIX_EPOCH.checked_add(whole),
        false => UNIX_EPOCH.checked_sub(whole),
    };
    base.unwrap_or(UNIX_EPOCH) + Duration::from_nanos(nanos.clamp(0, 999_999_999) as u64)
}

/// The view's attributes of the plaintext entry whose `lstat` is `stat`: its own, with a
/// regular file's size grown by the header and a symlink's that of its encrypted target.
// The stat fields' integer types differ between Linux and macOS.
#[allow(clippy::unnecessary_cast)]
pub(super) fn plain_attr(ino: u64, stat: &Stat) -> FileAttr {
    let kind = FileKind::of(stat);
    let len = stat.st_size.max(0) as u64;
    let size = match kind {
        FileKind::File => backing_size(len),
        // base64url of nonce, SIV tag and target.
        FileKind::Symlink => (4 * (32 + len)).div_ceil(3),
        _ => len,
    };
    FileAttr {
        ino: INodeNo(ino),
        size,
        blocks: size.div_ceil(512),
        atime: system_time(stat.st_atime as i64, stat.st_atime_nsec as i64),
        mtime: system_time(stat.st_mtime as i64, stat.st_mtime_nsec as i64),
        ctime: system_time(stat.st_ctime as i64, stat.st_ctime_nsec as i64),
        crtime: UNIX_EPOCH,
        kind: file_type(kind),
        perm: (mode_of(stat) & 0o7777) as u16,
        nlink: stat.st_nlink as u32,
        uid: stat.st_uid,
        gid: stat.st_gid,
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

/// Attributes of made-up entry `ino` of `view`: the owner of PLAINDIR, the reverse config's
/// mtime.
// The stat fields' integer types differ between Linux and macOS.
#[allow(clippy::unnecessary_cast)]
pub(super) fn made_up_attr(view: &View, ino: u64, size: u64, mode: u32) -> FileAttr {
    let config = &view.config().stat;
    let time = system_time(config.st_mtime as i64, config.st_mtime_nsec as i64);
    let root = view.root_stat();
    FileAttr {
        ino: INodeNo(ino),
        size,
        blocks: size.div_ceil(512),
        atime: time,
        mtime: time,
        ctime: time,
        crtime: UNIX_EPOCH,
        kind: FileType::RegularFile,
        perm: mode as u16,
        nlink: 1,
        uid: root.st_uid,
        gid: root.st_gid,
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}
