//! A recording passthrough filesystem for the crash-point tests: mounted as veilfs's backing
//! directory, it serves a real directory and logs, in the order it executes them, every request
//! that changes it, with the data needed to replay it ([`Op`]).
//!
//! One lock serializes all requests, so the log's order is the order in which the real
//! directory saw the changes. Attributes and entries are given to the kernel with a zero TTL, so
//! every access by veilfs reaches this filesystem, and inode numbers are our own (a backing
//! inode number reused after an unlink gets a new one, so the kernel never confuses two files).

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    AccessFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation,
    INodeNo, LockOwner, MountOption, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr,
    Request, TimeOrNow, WriteFlags,
};
use nix::fcntl::OFlag;
use nix::sys::stat::SFlag;
use nix::sys::time::TimeSpec;
use veilfs::backing::{Dir, FileKind, RenameMode, Stat};

use super::log::{Event, Log, Op, RelPath};

const TTL: Duration = Duration::ZERO;
const ROOT: u64 = 1;

/// The recorder's inode table: our inode numbers, the backing inode each stands for, and the
/// names (parent, name) by which each is reached; a hard-linked file has several.
#[derive(Default)]
struct Nodes {
    real: HashMap<u64, u64>,
    links: HashMap<u64, Vec<(u64, OsString)>>,
    children: HashMap<(u64, OsString), u64>,
    by_real: HashMap<u64, u64>,
    /// The numbers given to these backing inodes (see [`Recorder::with_inodes`]).
    fixed: HashMap<u64, u64>,
    next: u64,
}

impl Nodes {
    fn path(&self, ino: u64) -> io::Result<RelPath> {
        let mut names = Vec::new();
        let mut at = ino;
        while at != ROOT {
            let (parent, name) = self
                .links
                .get(&at)
                .and_then(|l| l.first())
                .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
            names.push(name.clone());
            at = *parent;
        }
        names.reverse();
        Ok(names)
    }

    /// Our inode for backing inode `real` reached as `name` in `parent`.
    fn register(&mut self, parent: u64, name: &OsStr, real: u64) -> u64 {
        let key = (parent, name.to_owned());
        if let Some(&ino) = self.children.get(&key) {
            if self.real.get(&ino) == Some(&real) {
                return ino;
            }
            self.forget_name(parent, name, false);
        }
        let ino = *self.by_real.entry(real).or_insert_with(|| {
            self.fixed.get(&real).copied().unwrap_or_else(|| {
                self.next += 1;
                self.next
            })
        });
        self.real.insert(ino, real);
        self.links.entry(ino).or_default().push(key.clone());
        self.children.insert(key, ino);
        ino
    }

    /// `name` in `parent` is gone; its inode keeps its number while it has other names,
    /// including names not looked up yet, which the backing inode has when `other_names`: a
    /// program that compares inode numbers of hard links (`veilfs rekey`) must see the same one
    /// under each, whatever the order it visits them in.
    fn forget_name(&mut self, parent: u64, name: &OsStr, other_names: bool) -> Option<u64> {
        let key = (parent, name.to_owned());
        let ino = self.children.remove(&key)?;
        let links = self.links.entry(ino).or_default();
        links.retain(|l| *l != key);
        if links.is_empty() && !other_names {
            if let Some(real) = self.real.get(&ino) {
                self.by_real.remove(real);
            }
        }
        Some(ino)
    }

    fn rename_name(&mut self, from: (u64, &OsStr), to: (u64, &OsStr)) {
        if let Some(ino) = self.children.remove(&(from.0, from.1.to_owned())) {
            let links = self.links.entry(ino).or_default();
            for link in links.iter_mut() {
                if *link == (from.0, from.1.to_owned()) {
                    *link = (to.0, to.1.to_owned());
                }
            }
            self.children.insert((to.0, to.1.to_owned()), ino);
        }
    }
}

struct State {
    nodes: Nodes,
    files: HashMap<u64, (u64, File)>,
    next_fh: u64,
}

pub struct Recorder {
    root: Dir,
    state: Mutex<State>,
    log: Log,
}

fn errno(e: io::Error) -> Errno {
    Errno::from_i32(e.raw_os_error().unwrap_or(libc::EIO))
}

fn enoent() -> io::Error {
    io::Error::from_raw_os_error(libc::ENOENT)
}

fn file_type(stat: &Stat) -> FileType {
    match FileKind::of(stat) {
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
    UNIX_EPOCH + Duration::new(secs.max(0) as u64, nsecs.clamp(0, 999_999_999) as u32)
}

// The stat fields' integer types differ between platforms.
#[allow(clippy::unnecessary_cast)]
fn attr(ino: u64, stat: &Stat) -> FileAttr {
    FileAttr {
        ino: INodeNo(ino),
        size: stat.st_size as u64,
        blocks: stat.st_blocks as u64,
        atime: time(stat.st_atime, stat.st_atime_nsec),
        mtime: time(stat.st_mtime, stat.st_mtime_nsec),
        ctime: time(stat.st_ctime, stat.st_ctime_nsec),
        crtime: UNIX_EPOCH,
        kind: file_type(stat),
        perm: (stat.st_mode & 0o7777) as u16,
        nlink: stat.st_nlink as u32,
        uid: stat.st_uid,
        gid: stat.st_gid,
        rdev: stat.st_rdev as u32,
        blksize: 4096,
        flags: 0,
    }
}

fn timespec(t: Option<TimeOrNow>) -> TimeSpec {
    match t {
        None => TimeSpec::UTIME_OMIT,
        Some(TimeOrNow::Now) => TimeSpec::UTIME_NOW,
        Some(TimeOrNow::SpecificTime(t)) => {
            TimeSpec::from(t.duration_since(UNIX_EPOCH).unwrap_or_default())
        }
    }
}

fn rename_mode(flags: RenameFlags) -> Option<RenameMode> {
    if flags.is_empty() {
        Some(RenameMode::Replace)
    } else if flags == RenameFlags::RENAME_NOREPLACE {
        Some(RenameMode::NoReplace)
    } else if flags == RenameFlags::RENAME_EXCHANGE {
        Some(RenameMode::Exchange)
    } else {
        None
    }
}

fn xattr_name(name: &OsStr) -> io::Result<&str> {
    name.to_str()
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))
}

/// Replies to a getxattr/listxattr request: the size when asked for it, ERANGE when too small.
fn reply_sized(reply: ReplyXattr, size: u32, data: &[u8]) {
    if size == 0 {
        reply.size(data.len() as u32);
    } else if data.len() > size as usize {
        reply.error(Errno::from_i32(libc::ERANGE));
    } else {
        reply.data(data);
    }
}

impl Recorder {
    pub fn new(real: &Path, log: Log) -> io::Result<Recorder> {
        Self::with_inodes(real, log, HashMap::new())
    }

    /// A recorder that shows the backing inodes in `inodes` (by their number) under the numbers
    /// they map to, and numbers the others above those. Programs that remember inode numbers
    /// (`veilfs rekey`'s link journal) then see a copy of a backing directory as the original.
    pub fn with_inodes(real: &Path, log: Log, inodes: HashMap<u64, u64>) -> io::Result<Recorder> {
        Ok(Recorder {
            root: Dir::open_root(real)?,
            state: Mutex::new(State {
                nodes: Nodes {
                    next: inodes.values().copied().max().unwrap_or(0).max(ROOT),
                    fixed: inodes,
                    ..Nodes::default()
                },
                files: HashMap::new(),
                next_fh: 1,
            }),
            log,
        })
    }

    /// Mounts the recorder at `mountpoint`, serving the directory it was made for.
    pub fn mount(self, mountpoint: &Path) -> io::Result<fuser::BackgroundSession> {
        let mut config = fuser::Config::default();
        config.mount_options = vec![
            MountOption::FSName("crash-recorder".into()),
            MountOption::RW,
        ];
        config.n_threads = Some(1);
        fuser::Session::new(self, mountpoint, &config)?.spawn()
    }

    fn record(&self, op: Op) {
        self.log.lock().unwrap().push(Event::Op(op));
    }

    fn dir(&self, nodes: &Nodes, ino: u64) -> io::Result<Dir> {
        self.root.walk(&nodes.path(ino)?)
    }

    /// The directory holding inode `ino` (one of its names), and that name.
    fn parent_of(&self, nodes: &Nodes, ino: u64) -> io::Result<(Dir, OsString, RelPath)> {
        let path = nodes.path(ino)?;
        let (name, parent) = path.split_last().ok_or_else(enoent)?;
        Ok((self.root.walk(parent)?, name.clone(), path))
    }

    fn stat(&self, nodes: &Nodes, ino: u64) -> io::Result<Stat> {
        if ino == ROOT {
            return self.root.stat_self();
        }
        let (dir, name, _) = self.parent_of(nodes, ino)?;
        dir.stat(name)
    }

    /// The entry `name` in `parent`, registered in the inode table.
    fn entry(&self, nodes: &mut Nodes, parent: u64, name: &OsStr) -> io::Result<FileAttr> {
        let stat = self.dir(nodes, parent)?.stat(name)?;
        let ino = nodes.register(parent, name, stat.st_ino);
        Ok(attr(ino, &stat))
    }

    fn child_path(nodes: &Nodes, parent: u64, name: &OsStr) -> io::Result<RelPath> {
        let mut path = nodes.path(parent)?;
        path.push(name.to_owned());
        Ok(path)
    }

    /// The path of `ino` for the log: `None` for a file that has no name any more (writes to
    /// it cannot survive a crash).
    fn logged_path(nodes: &Nodes, ino: u64) -> Option<RelPath> {
        nodes.path(ino).ok()
    }

    #[allow(clippy::too_many_arguments)]
    fn do_setattr(
        &self,
        ino: u64,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        fh: Option<FileHandle>,
    ) -> io::Result<FileAttr> {
        let state = &mut *self.state.lock().unwrap();
        let nodes = &state.nodes;
        let path = Self::logged_path(nodes, ino);
        let target = if ino == ROOT {
            None
        } else {
            Some(self.parent_of(nodes, ino)?)
        };
        if let Some(mode) = mode {
            match &target {
                Some((dir, name, _)) => dir.chmod(name, mode & 0o7777)?,
                None => self.root.chmod_self(mode & 0o7777)?,
            }
            if let Some(path) = path.clone() {
                self.record(Op::Chmod {
                    path,
                    mode: mode & 0o7777,
                });
            }
        }
        if uid.is_some() || gid.is_some() {
            match &target {
                Some((dir, name, _)) => dir.chown(name, uid, gid)?,
                None => self.root.chown_self(uid, gid)?,
            }
            if let Some(path) = path.clone() {
                self.record(Op::Chown { path, uid, gid });
            }
        }
        if let Some(size) = size {
            let opened;
            let file = match fh.and_then(|fh| state.files.get(&fh.0)) {
                Some((_, file)) => file,
                None => {
                    let (dir, name, _) = target.as_ref().ok_or_else(enoent)?;
                    opened = dir.open_file(name, OFlag::O_WRONLY, 0)?;
                    &opened
                }
            };
            let old = file.metadata()?.len();
            file.set_len(size)?;
            // A truncate to the size the file has changes nothing on disk (ext4 does not even
            // update the on-disk size): logged, it would make the file's size durable in the
            // power-loss states even where the writes that gave it that size are lost.
            if old != size {
                self.record(Op::Truncate {
                    path: path.clone(),
                    size,
                });
            }
        }
        if atime.is_some() || mtime.is_some() {
            // Times are not logged: nothing the checks look at depends on them.
            match &target {
                Some((dir, name, _)) => dir.set_times(name, &timespec(atime), &timespec(mtime))?,
                None => self
                    .root
                    .set_times_self(&timespec(atime), &timespec(mtime))?,
            }
        }
        let stat = match fh.and_then(|fh| state.files.get(&fh.0)) {
            Some((_, file)) => nix::sys::stat::fstat(file)?,
            None => self.stat(nodes, ino)?,
        };
        Ok(attr(ino, &stat))
    }

    fn do_create(
        &self,
        parent: u64,
        name: &OsStr,
        mode: u32,
        flags: i32,
    ) -> io::Result<(FileAttr, u64)> {
        let state = &mut *self.state.lock().unwrap();
        let dir = self.dir(&state.nodes, parent)?;
        let existed = dir.exists(name);
        let flags = OFlag::from_bits_truncate(flags);
        let open = OFlag::O_CREAT
            | OFlag::O_CLOEXEC
            | (flags & (OFlag::O_EXCL | OFlag::O_TRUNC | OFlag::O_ACCMODE | OFlag::O_NONBLOCK));
        let file = dir.open_file(name, open, mode)?;
        let path = Self::child_path(&state.nodes, parent, name)?;
        let stat = nix::sys::stat::fstat(&file)?;
        let ino = state.nodes.register(parent, name, stat.st_ino);
        if !existed {
            // Created under the test process's umask: the mode is set exactly, as replay does.
            nix::sys::stat::fchmod(&file, nix::sys::stat::Mode::from_bits_truncate(mode as _))?;
            self.record(Op::Create { path, mode });
        } else if flags.contains(OFlag::O_TRUNC) {
            self.record(Op::Truncate {
                path: Some(path),
                size: 0,
            });
        }
        let fh = state.next_fh;
        state.next_fh += 1;
        let stat = nix::sys::stat::fstat(&file)?;
        state.files.insert(fh, (ino, file));
        Ok((attr(ino, &stat), fh))
    }

    fn do_open(&self, ino: u64, flags: i32) -> io::Result<u64> {
        let state = &mut *self.state.lock().unwrap();
        let (dir, name, path) = self.parent_of(&state.nodes, ino)?;
        let flags = OFlag::from_bits_truncate(flags);
        // No O_APPEND: the kernel gives every write its offset, and pwrite on an O_APPEND file
        // would append instead.
        let open =
            OFlag::O_CLOEXEC | (flags & (OFlag::O_TRUNC | OFlag::O_ACCMODE | OFlag::O_NONBLOCK));
        let file = dir.open_file(&name, open, 0)?;
        if flags.contains(OFlag::O_TRUNC) && (flags & OFlag::O_ACCMODE) != OFlag::O_RDONLY {
            self.record(Op::Truncate {
                path: Some(path),
                size: 0,
            });
        }
        let fh = state.next_fh;
        state.next_fh += 1;
        state.files.insert(fh, (ino, file));
        Ok(fh)
    }

    fn do_mknod(
        &self,
        parent: u64,
        name: &OsStr,
        mode: u32,
        rdev: u32,
        kind: SFlag,
    ) -> io::Result<FileAttr> {
        let state = &mut *self.state.lock().unwrap();
        let dir = self.dir(&state.nodes, parent)?;
        let path = Self::child_path(&state.nodes, parent, name)?;
        if kind == SFlag::S_IFDIR {
            dir.mkdir(name, mode)?;
            // mkdir(2) applies this process's umask: the mode is set exactly, as replay does.
            dir.chmod(name, mode)?;
            self.record(Op::Mkdir { path, mode });
        } else {
            dir.mknod(name, kind, mode, rdev.into())?;
            dir.chmod(name, mode)?;
            self.record(Op::Mknod {
                path,
                kind: kind.bits(),
                mode,
                rdev: rdev.into(),
            });
        }
        self.entry(&mut state.nodes, parent, name)
    }

    fn do_remove(&self, parent: u64, name: &OsStr, is_dir: bool) -> io::Result<()> {
        let state = &mut *self.state.lock().unwrap();
        let dir = self.dir(&state.nodes, parent)?;
        let path = Self::child_path(&state.nodes, parent, name)?;
        // Registered first, so that the inode table knows which inode loses a name.
        let links = self
            .entry(&mut state.nodes, parent, name)
            .map_or(1, |attr| attr.nlink);
        if is_dir {
            dir.rmdir(name)?;
            self.record(Op::Rmdir { path });
        } else {
            dir.unlink(name)?;
            self.record(Op::Unlink { path });
        }
        state.nodes.forget_name(parent, name, !is_dir && links > 1);
        Ok(())
    }

    fn do_rename(
        &self,
        parent: u64,
        name: &OsStr,
        newparent: u64,
        newname: &OsStr,
        flags: RenameFlags,
    ) -> io::Result<()> {
        let mode = rename_mode(flags).ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
        let state = &mut *self.state.lock().unwrap();
        let nodes = &mut state.nodes;
        let from_dir = self.dir(nodes, parent)?;
        let to_dir = self.dir(nodes, newparent)?;
        let from = Self::child_path(nodes, parent, name)?;
        let to = Self::child_path(nodes, newparent, newname)?;
        let _ = self.entry(nodes, parent, name);
        // A file replaced by the rename may keep other names (a directory's count is not names).
        let replaced_links = self.entry(nodes, newparent, newname).map_or(1, |attr| {
            if attr.kind == FileType::Directory {
                1
            } else {
                attr.nlink
            }
        });
        from_dir.rename(name, &to_dir, newname, mode)?;
        self.record(Op::Rename {
            from,
            to,
            exchange: mode == RenameMode::Exchange,
        });
        if mode == RenameMode::Exchange {
            let placeholder = OsStr::from_bytes(b"/exchange");
            nodes.rename_name((newparent, newname), (newparent, placeholder));
            nodes.rename_name((parent, name), (newparent, newname));
            nodes.rename_name((newparent, placeholder), (parent, name));
        } else {
            nodes.forget_name(newparent, newname, replaced_links > 1);
            nodes.rename_name((parent, name), (newparent, newname));
        }
        Ok(())
    }

    fn do_link(&self, ino: u64, newparent: u64, newname: &OsStr) -> io::Result<FileAttr> {
        let state = &mut *self.state.lock().unwrap();
        let (from_dir, name, from) = self.parent_of(&state.nodes, ino)?;
        let to_dir = self.dir(&state.nodes, newparent)?;
        let to = Self::child_path(&state.nodes, newparent, newname)?;
        from_dir.link(&name, &to_dir, newname)?;
        self.record(Op::Link { from, to });
        self.entry(&mut state.nodes, newparent, newname)
    }

    fn do_symlink(&self, parent: u64, name: &OsStr, target: &Path) -> io::Result<FileAttr> {
        let state = &mut *self.state.lock().unwrap();
        let dir = self.dir(&state.nodes, parent)?;
        let path = Self::child_path(&state.nodes, parent, name)?;
        dir.symlink(target, name)?;
        self.record(Op::Symlink {
            path,
            target: target.as_os_str().to_owned(),
        });
        self.entry(&mut state.nodes, parent, name)
    }

    fn do_write(&self, ino: u64, fh: u64, offset: u64, data: &[u8]) -> io::Result<()> {
        let state = self.state.lock().unwrap();
        let (_, file) = state.files.get(&fh).ok_or_else(enoent)?;
        file.write_all_at(data, offset)?;
        self.record(Op::Write {
            path: Self::logged_path(&state.nodes, ino),
            ino,
            offset,
            data: data.to_vec(),
        });
        Ok(())
    }

    fn do_read(&self, fh: u64, offset: u64, size: u32) -> io::Result<Vec<u8>> {
        let state = self.state.lock().unwrap();
        let (_, file) = state.files.get(&fh).ok_or_else(enoent)?;
        let mut data = vec![0; size as usize];
        let mut done = 0;
        while done < data.len() {
            let n = file.read_at(&mut data[done..], offset + done as u64)?;
            if n == 0 {
                break;
            }
            done += n;
        }
        data.truncate(done);
        Ok(data)
    }

    fn do_fsync(&self, ino: u64, fh: u64, datasync: bool) -> io::Result<()> {
        let state = self.state.lock().unwrap();
        let (_, file) = state.files.get(&fh).ok_or_else(enoent)?;
        if datasync {
            file.sync_data()?;
        } else {
            file.sync_all()?;
        }
        self.record(Op::Fsync {
            path: Self::logged_path(&state.nodes, ino),
            ino,
        });
        Ok(())
    }

    fn do_fsyncdir(&self, ino: u64) -> io::Result<()> {
        let state = self.state.lock().unwrap();
        let dir = self.dir(&state.nodes, ino)?;
        dir.sync()?;
        self.record(Op::FsyncDir {
            path: state.nodes.path(ino)?,
        });
        Ok(())
    }

    fn do_fallocate(&self, ino: u64, fh: u64, offset: u64, len: u64, mode: i32) -> io::Result<()> {
        let keep_size = veilfs::fs::sys::fallocate_keeps_size(mode)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EOPNOTSUPP))?;
        let state = self.state.lock().unwrap();
        let (_, file) = state.files.get(&fh).ok_or_else(enoent)?;
        veilfs::fs::sys::fallocate(file, offset, len, keep_size)?;
        self.record(Op::Fallocate {
            path: Self::logged_path(&state.nodes, ino),
            ino,
            offset,
            len,
            keep_size,
        });
        Ok(())
    }

    /// The directory holding `ino` and its name there, or `None` for the root.
    fn xattr_target(&self, nodes: &Nodes, ino: u64) -> io::Result<(Dir, Option<OsString>)> {
        if ino == ROOT {
            return Ok((self.root.try_clone()?, None));
        }
        let (dir, name, _) = self.parent_of(nodes, ino)?;
        Ok((dir, Some(name)))
    }

    fn do_setxattr(&self, ino: u64, attr: &OsStr, value: &[u8], flags: i32) -> io::Result<()> {
        let attr = xattr_name(attr)?;
        let state = self.state.lock().unwrap();
        let (dir, name) = self.xattr_target(&state.nodes, ino)?;
        dir.set_xattr(name.as_deref(), attr, value, flags)?;
        self.record(Op::SetXattr {
            path: state.nodes.path(ino)?,
            name: attr.to_owned(),
            value: value.to_vec(),
        });
        Ok(())
    }

    fn do_removexattr(&self, ino: u64, attr: &OsStr) -> io::Result<()> {
        let attr = xattr_name(attr)?;
        let state = self.state.lock().unwrap();
        let (dir, name) = self.xattr_target(&state.nodes, ino)?;
        dir.remove_xattr(name.as_deref(), attr)?;
        self.record(Op::RemoveXattr {
            path: state.nodes.path(ino)?,
            name: attr.to_owned(),
        });
        Ok(())
    }

    fn do_readdir(&self, ino: u64) -> io::Result<Vec<(u64, FileType, OsString)>> {
        let state = &mut *self.state.lock().unwrap();
        let dir = self.dir(&state.nodes, ino)?;
        let mut list = vec![
            (ino, FileType::Directory, OsString::from(".")),
            (ino, FileType::Directory, OsString::from("..")),
        ];
        for entry in dir.entries()? {
            let Ok(stat) = dir.stat(&entry.name) else {
                continue;
            };
            let child = state.nodes.register(ino, &entry.name, stat.st_ino);
            list.push((child, file_type(&stat), entry.name));
        }
        Ok(list)
    }
}

fn reply_entry(reply: ReplyEntry, result: io::Result<FileAttr>) {
    match result {
        Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
        Err(e) => reply.error(errno(e)),
    }
}

fn reply_empty(reply: ReplyEmpty, result: io::Result<()>) {
    match result {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(errno(e)),
    }
}

impl Filesystem for Recorder {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let state = &mut *self.state.lock().unwrap();
        reply_entry(reply, self.entry(&mut state.nodes, parent.0, name));
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        let state = self.state.lock().unwrap();
        let stat = match fh.and_then(|fh| state.files.get(&fh.0)) {
            Some((_, file)) => nix::sys::stat::fstat(file).map_err(io::Error::from),
            None => self.stat(&state.nodes, ino.0),
        };
        match stat {
            Ok(stat) => reply.attr(&TTL, &attr(ino.0, &stat)),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        match self.do_setattr(ino.0, mode, uid, gid, size, atime, mtime, fh) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let state = self.state.lock().unwrap();
        match self
            .parent_of(&state.nodes, ino.0)
            .and_then(|(dir, name, _)| dir.readlink(name))
        {
            Ok(target) => reply.data(target.as_bytes()),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn mknod(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let kind = SFlag::from_bits_truncate(mode & libc::S_IFMT);
        let perm = mode & !umask & 0o7777;
        reply_entry(reply, self.do_mknod(parent.0, name, perm, rdev, kind));
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let perm = mode & !umask & 0o7777;
        reply_entry(
            reply,
            self.do_mknod(parent.0, name, perm, 0, SFlag::S_IFDIR),
        );
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        reply_empty(reply, self.do_remove(parent.0, name, false));
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        reply_empty(reply, self.do_remove(parent.0, name, true));
    }

    fn symlink(
        &self,
        _req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        reply_entry(reply, self.do_symlink(parent.0, link_name, target));
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        reply_empty(
            reply,
            self.do_rename(parent.0, name, newparent.0, newname, flags),
        );
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        reply_entry(reply, self.do_link(ino.0, newparent.0, newname));
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        match self.do_open(ino.0, flags.0) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.do_read(fh.0, offset, size) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.do_write(ino.0, fh.0, offset, data) {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.state.lock().unwrap().files.remove(&fh.0);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        reply_empty(reply, self.do_fsync(ino.0, fh.0, datasync));
    }

    fn opendir(&self, _req: &Request, _ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        reply.opened(FileHandle(0), FopenFlags::empty());
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        match self.do_readdir(ino.0) {
            Ok(list) => {
                for (index, (child, kind, name)) in list.iter().enumerate().skip(offset as usize) {
                    if reply.add(INodeNo(*child), index as u64 + 1, *kind, name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(errno(e)),
        }
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        reply_empty(reply, self.do_fsyncdir(ino.0));
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        match self.root.statvfs() {
            Ok(s) => reply.statfs(
                s.blocks(),
                s.blocks_free(),
                s.blocks_available(),
                s.files(),
                s.files_free(),
                s.block_size() as u32,
                s.name_max() as u32,
                s.fragment_size() as u32,
            ),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn setxattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        reply_empty(reply, self.do_setxattr(ino.0, name, value, flags));
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let state = self.state.lock().unwrap();
        let value = xattr_name(name).and_then(|attr| {
            let (dir, entry) = self.xattr_target(&state.nodes, ino.0)?;
            dir.get_xattr(entry.as_deref(), attr)
        });
        match value {
            Ok(value) => reply_sized(reply, size, &value),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let state = self.state.lock().unwrap();
        let list = self
            .xattr_target(&state.nodes, ino.0)
            .and_then(|(dir, entry)| dir.list_xattrs(entry.as_deref()));
        match list {
            Ok(names) => {
                let mut data = Vec::new();
                for name in names {
                    data.extend_from_slice(name.as_bytes());
                    data.push(0);
                }
                reply_sized(reply, size, &data);
            }
            Err(e) => reply.error(errno(e)),
        }
    }

    fn removexattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        reply_empty(reply, self.do_removexattr(ino.0, name));
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: AccessFlags, reply: ReplyEmpty) {
        reply.ok();
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        match self.do_create(parent.0, name, mode & !umask & 0o7777, flags) {
            Ok((attr, fh)) => reply.created(
                &TTL,
                &attr,
                Generation(0),
                FileHandle(fh),
                FopenFlags::empty(),
            ),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        reply_empty(reply, self.do_fallocate(ino.0, fh.0, offset, length, mode));
    }
}

/// Shared by the recorder and the workload (which adds its expectations in between).
pub fn new_log() -> Log {
    Arc::new(Mutex::new(Vec::new()))
}
