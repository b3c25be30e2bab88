//! The log the recorder writes, and its replay into a plain directory.

use std::ffi::OsString;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use nix::fcntl::OFlag;
use nix::sys::stat::{Mode, SFlag};
use veilfs::backing::{Dir, RenameMode};

/// A backing path, relative to the backing directory, as its names.
pub type RelPath = Vec<OsString>;

/// One change the backing directory saw, with what is needed to repeat it. Data operations carry
/// the recorder's inode number, so that an fsync covers the writes to that file whatever its
/// name was; their path is `None` for a file that had no name left (an unlinked, open file).
#[derive(Clone, Debug)]
pub enum Op {
    Create {
        path: RelPath,
        mode: u32,
    },
    Mkdir {
        path: RelPath,
        mode: u32,
    },
    Mknod {
        path: RelPath,
        kind: u32,
        mode: u32,
        rdev: u64,
    },
    Symlink {
        path: RelPath,
        target: OsString,
    },
    Link {
        from: RelPath,
        to: RelPath,
    },
    Unlink {
        path: RelPath,
    },
    Rmdir {
        path: RelPath,
    },
    Rename {
        from: RelPath,
        to: RelPath,
        exchange: bool,
    },
    Write {
        path: Option<RelPath>,
        ino: u64,
        offset: u64,
        data: Vec<u8>,
    },
    Truncate {
        path: Option<RelPath>,
        size: u64,
    },
    Fallocate {
        path: Option<RelPath>,
        ino: u64,
        offset: u64,
        len: u64,
        keep_size: bool,
    },
    Chmod {
        path: RelPath,
        mode: u32,
    },
    Chown {
        path: RelPath,
        uid: Option<u32>,
        gid: Option<u32>,
    },
    SetXattr {
        path: RelPath,
        name: String,
        value: Vec<u8>,
    },
    RemoveXattr {
        path: RelPath,
        name: String,
    },
    Fsync {
        path: Option<RelPath>,
        ino: u64,
    },
    FsyncDir {
        path: RelPath,
    },
}

/// What the workload promises from some point on: a plaintext file it fsynced, by id.
#[derive(Clone, Debug)]
pub enum Mark {
    /// From here, one of `paths` (plaintext, relative to the mount) holds `contents`.
    Expect {
        id: String,
        paths: Vec<PathBuf>,
        contents: Vec<u8>,
    },
    /// The workload is about to change the file: no promise any more.
    Forget { id: String },
}

#[derive(Clone, Debug)]
pub enum Event {
    Op(Op),
    Mark(Mark),
}

pub type Log = Arc<Mutex<Vec<Event>>>;

fn show(path: &[OsString]) -> String {
    let mut shown = String::new();
    for name in path {
        shown.push('/');
        let name = name.to_string_lossy();
        // Backing names are long: enough of each to tell them apart.
        if name.len() > 24 {
            shown.push_str(&name[..name.char_indices().nth(20).map_or(name.len(), |(i, _)| i)]);
            shown.push('…');
        } else {
            shown.push_str(&name);
        }
    }
    if shown.is_empty() {
        shown.push('/');
    }
    shown
}

fn show_opt(path: &Option<RelPath>) -> String {
    path.as_deref()
        .map_or_else(|| "(unlinked)".to_owned(), show)
}

impl Op {
    /// The inode whose data this operation changes, for operations an fsync makes durable.
    pub fn data_ino(&self) -> Option<u64> {
        match self {
            Op::Write { ino, .. } | Op::Fallocate { ino, .. } => Some(*ino),
            _ => None,
        }
    }

    /// One line for a report.
    pub fn describe(&self) -> String {
        match self {
            Op::Create { path, mode } => format!("create {} {mode:o}", show(path)),
            Op::Mkdir { path, mode } => format!("mkdir {} {mode:o}", show(path)),
            Op::Mknod { path, .. } => format!("mknod {}", show(path)),
            Op::Symlink { path, .. } => format!("symlink {}", show(path)),
            Op::Link { from, to } => format!("link {} {}", show(from), show(to)),
            Op::Unlink { path } => format!("unlink {}", show(path)),
            Op::Rmdir { path } => format!("rmdir {}", show(path)),
            Op::Rename { from, to, exchange } => format!(
                "rename{} {} {}",
                if *exchange { "(exchange)" } else { "" },
                show(from),
                show(to)
            ),
            Op::Write {
                path, offset, data, ..
            } => format!("write {} @{offset} +{}", show_opt(path), data.len()),
            Op::Truncate { path, size, .. } => format!("truncate {} {size}", show_opt(path)),
            Op::Fallocate {
                path, offset, len, ..
            } => format!("fallocate {} @{offset} +{len}", show_opt(path)),
            Op::Chmod { path, mode } => format!("chmod {} {mode:o}", show(path)),
            Op::Chown { path, .. } => format!("chown {}", show(path)),
            Op::SetXattr { path, name, .. } => format!("setxattr {} {name}", show(path)),
            Op::RemoveXattr { path, name } => format!("removexattr {} {name}", show(path)),
            Op::Fsync { path, .. } => format!("fsync {}", show_opt(path)),
            Op::FsyncDir { path } => format!("fsyncdir {}", show(path)),
        }
    }
}

/// The directory holding `path` inside `root`, and the entry's name.
fn parent<'a>(root: &Dir, path: &'a [OsString]) -> io::Result<(Dir, &'a OsString)> {
    let (name, dirs) = path
        .split_last()
        .ok_or_else(|| io::Error::other("an operation on the root itself"))?;
    Ok((root.walk(dirs)?, name))
}

fn open_file(root: &Dir, path: &[OsString]) -> io::Result<std::fs::File> {
    let (dir, name) = parent(root, path)?;
    dir.open_file(name, OFlag::O_WRONLY | OFlag::O_CLOEXEC, 0)
}

/// Repeats `op` in the directory `root`.
pub fn apply(root: &Dir, op: &Op) -> io::Result<()> {
    match op {
        Op::Create { path, mode } => {
            let (dir, name) = parent(root, path)?;
            let file = dir.open_file(
                name,
                OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
                *mode,
            )?;
            nix::sys::stat::fchmod(&file, Mode::from_bits_truncate(*mode as _))?;
        }
        Op::Mkdir { path, mode } => {
            let (dir, name) = parent(root, path)?;
            dir.mkdir(name, *mode)?;
            dir.chmod(name, *mode)?;
        }
        Op::Mknod {
            path,
            kind,
            mode,
            rdev,
        } => {
            let (dir, name) = parent(root, path)?;
            dir.mknod(name, SFlag::from_bits_truncate(*kind as _), *mode, *rdev)?;
            dir.chmod(name, *mode)?;
        }
        Op::Symlink { path, target } => {
            let (dir, name) = parent(root, path)?;
            dir.symlink(target, name)?;
        }
        Op::Link { from, to } => {
            let (from_dir, from_name) = parent(root, from)?;
            let (to_dir, to_name) = parent(root, to)?;
            from_dir.link(from_name, &to_dir, to_name)?;
        }
        Op::Unlink { path } => {
            let (dir, name) = parent(root, path)?;
            dir.unlink(name)?;
        }
        Op::Rmdir { path } => {
            let (dir, name) = parent(root, path)?;
            dir.rmdir(name)?;
        }
        Op::Rename { from, to, exchange } => {
            let (from_dir, from_name) = parent(root, from)?;
            let (to_dir, to_name) = parent(root, to)?;
            let mode = if *exchange {
                RenameMode::Exchange
            } else {
                RenameMode::Replace
            };
            from_dir.rename(from_name, &to_dir, to_name, mode)?;
        }
        Op::Write {
            path: Some(path),
            offset,
            data,
            ..
        } => open_file(root, path)?.write_all_at(data, *offset)?,
        Op::Truncate {
            path: Some(path),
            size,
            ..
        } => open_file(root, path)?.set_len(*size)?,
        Op::Fallocate {
            path: Some(path),
            offset,
            len,
            keep_size,
            ..
        } => veilfs::fs::sys::fallocate(&open_file(root, path)?, *offset, *len, *keep_size)?,
        Op::Chmod { path, mode } => match path.is_empty() {
            true => root.chmod_self(*mode)?,
            false => {
                let (dir, name) = parent(root, path)?;
                dir.chmod(name, *mode)?;
            }
        },
        Op::Chown { path, uid, gid } => match path.is_empty() {
            true => root.chown_self(*uid, *gid)?,
            false => {
                let (dir, name) = parent(root, path)?;
                dir.chown(name, *uid, *gid)?;
            }
        },
        Op::SetXattr { path, name, value } => match path.split_last() {
            None => root.set_xattr(None, name, value, 0)?,
            Some((entry, dirs)) => root.walk(dirs)?.set_xattr(Some(entry), name, value, 0)?,
        },
        Op::RemoveXattr { path, name } => match path.split_last() {
            None => root.remove_xattr(None, name)?,
            Some((entry, dirs)) => root.walk(dirs)?.remove_xattr(Some(entry), name)?,
        },
        // Data of a file without a name, and barriers: nothing to repeat.
        Op::Write { path: None, .. }
        | Op::Truncate { path: None, .. }
        | Op::Fallocate { path: None, .. }
        | Op::Fsync { .. }
        | Op::FsyncDir { .. } => {}
    }
    Ok(())
}
