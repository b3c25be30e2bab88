//! The operations the tests compare, each relative to a root (the mount or the plain directory)
//! and returning its errno on failure.

use std::ffi::OsString;
use std::fmt::Debug;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{renameat2, RenameFlags, AT_FDCWD};
use nix::sys::stat::{utimensat, UtimensatFlags};
use nix::sys::time::TimeSpec;

use crate::common::{io_res, xattr, Res};

pub fn p(root: &Path, rel: impl AsRef<Path>) -> PathBuf {
    root.join(rel)
}

pub fn write_file(root: &Path, rel: impl AsRef<Path>, data: &[u8]) -> Res<()> {
    io_res(fs::write(p(root, rel), data))
}

pub fn read_file(root: &Path, rel: impl AsRef<Path>) -> Res<Vec<u8>> {
    io_res(fs::read(p(root, rel)))
}

pub fn pwrite(root: &Path, rel: impl AsRef<Path>, offset: u64, data: &[u8]) -> Res<()> {
    let file = io_res(OpenOptions::new().write(true).open(p(root, rel)))?;
    io_res(file.write_all_at(data, offset))
}

pub fn pread(root: &Path, rel: impl AsRef<Path>, offset: u64, len: usize) -> Res<Vec<u8>> {
    let file = io_res(File::open(p(root, rel)))?;
    let mut buf = vec![0; len];
    let mut done = 0;
    while done < len {
        match io_res(file.read_at(&mut buf[done..], offset + done as u64))? {
            0 => break,
            n => done += n,
        }
    }
    buf.truncate(done);
    Ok(buf)
}

pub fn mkdir(root: &Path, rel: impl AsRef<Path>) -> Res<()> {
    io_res(fs::create_dir(p(root, rel)))
}

pub fn rmdir(root: &Path, rel: impl AsRef<Path>) -> Res<()> {
    io_res(fs::remove_dir(p(root, rel)))
}

pub fn unlink(root: &Path, rel: impl AsRef<Path>) -> Res<()> {
    io_res(fs::remove_file(p(root, rel)))
}

pub fn rename(root: &Path, from: impl AsRef<Path>, to: impl AsRef<Path>) -> Res<()> {
    io_res(fs::rename(p(root, from), p(root, to)))
}

pub fn rename2(
    root: &Path,
    from: impl AsRef<Path>,
    to: impl AsRef<Path>,
    flags: RenameFlags,
) -> Res<()> {
    renameat2(AT_FDCWD, &p(root, from), AT_FDCWD, &p(root, to), flags)
}

pub fn link(root: &Path, from: impl AsRef<Path>, to: impl AsRef<Path>) -> Res<()> {
    io_res(fs::hard_link(p(root, from), p(root, to)))
}

pub fn symlink(root: &Path, target: impl AsRef<Path>, rel: impl AsRef<Path>) -> Res<()> {
    io_res(std::os::unix::fs::symlink(target, p(root, rel)))
}

pub fn readlink(root: &Path, rel: impl AsRef<Path>) -> Res<PathBuf> {
    io_res(fs::read_link(p(root, rel)))
}

pub fn truncate(root: &Path, rel: impl AsRef<Path>, size: u64) -> Res<()> {
    let file = io_res(OpenOptions::new().write(true).open(p(root, rel)))?;
    io_res(file.set_len(size))
}

/// What may be compared between the two roots of one `lstat`.
#[derive(Debug, PartialEq, Eq, Clone)]
pub struct St {
    pub kind: &'static str,
    pub mode: u32,
    /// Not for directories: their sizes are the filesystem's business.
    pub size: Option<u64>,
    pub nlink: u64,
    pub uid: u32,
    pub gid: u32,
}

pub fn kind_of(ft: fs::FileType) -> &'static str {
    if ft.is_dir() {
        "dir"
    } else if ft.is_symlink() {
        "symlink"
    } else if ft.is_file() {
        "file"
    } else if ft.is_fifo() {
        "fifo"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_char_device() {
        "chardev"
    } else {
        "blockdev"
    }
}

pub fn st_of(meta: &fs::Metadata) -> St {
    let kind = kind_of(meta.file_type());
    St {
        kind,
        mode: meta.mode() & 0o7777,
        size: (kind != "dir").then(|| meta.size()),
        nlink: meta.nlink(),
        uid: meta.uid(),
        gid: meta.gid(),
    }
}

pub fn lstat(root: &Path, rel: impl AsRef<Path>) -> Res<St> {
    io_res(fs::symlink_metadata(p(root, rel))).map(|m| st_of(&m))
}

pub fn stat(root: &Path, rel: impl AsRef<Path>) -> Res<St> {
    io_res(fs::metadata(p(root, rel))).map(|m| st_of(&m))
}

pub fn ino(root: &Path, rel: impl AsRef<Path>) -> Res<u64> {
    io_res(fs::symlink_metadata(p(root, rel))).map(|m| m.ino())
}

/// Sorted names and kinds of a directory (readdir's d_type).
pub fn list(root: &Path, rel: impl AsRef<Path>) -> Res<Vec<(OsString, &'static str)>> {
    let mut names = Vec::new();
    for entry in io_res(fs::read_dir(p(root, rel)))? {
        let entry = io_res(entry)?;
        names.push((entry.file_name(), kind_of(io_res(entry.file_type())?)));
    }
    names.sort();
    Ok(names)
}

pub fn times(root: &Path, rel: impl AsRef<Path>) -> Res<((i64, i64), (i64, i64))> {
    let m = io_res(fs::symlink_metadata(p(root, rel)))?;
    Ok(((m.atime(), m.atime_nsec()), (m.mtime(), m.mtime_nsec())))
}

pub fn utimens(root: &Path, rel: impl AsRef<Path>, atime: TimeSpec, mtime: TimeSpec) -> Res<()> {
    utimensat(
        AT_FDCWD,
        &p(root, rel),
        &atime,
        &mtime,
        UtimensatFlags::NoFollowSymlink,
    )
}

/// A byte pattern that differs at every position of a 4 KiB block and between seeds.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u32)
                .wrapping_mul(31)
                .wrapping_add(seed as u32 * 7 + (i as u32 >> 8)) as u8
        })
        .collect()
}

/// `lsetxattr` with `flags`.
pub fn setxattr(
    root: &Path,
    rel: impl AsRef<Path>,
    name: &str,
    value: &[u8],
    flags: i32,
) -> Res<()> {
    io_res(xattr::set(&p(root, rel), name, value, flags))
}

/// `lgetxattr` of a value of any size.
pub fn getxattr(root: &Path, rel: impl AsRef<Path>, name: &str) -> Res<Vec<u8>> {
    io_res(xattr::get(&p(root, rel), name))
}

/// The sorted `user.` names (a plain directory may carry `security.` labels too).
pub fn listxattr(root: &Path, rel: impl AsRef<Path>) -> Res<Vec<String>> {
    io_res(xattr::user_names(&p(root, rel)))
}
