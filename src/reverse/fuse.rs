//! The reverse view served to the kernel: a read-only `fuser::Filesystem` over a [`View`].
//!
//! Node IDs (which fuser also gives as `st_ino`) are stable for the mount's life and need no
//! counter: a plaintext entry's is its inode number (the root's is 1), an entry on another
//! file system below PLAINDIR gets one in its own range from its device and inode, and the
//! entries the view makes up (`veilfs.conf`, `veilfs.diriv`, sidecars) one in a third range from
//! their directory's ID and name. The table below remembers, for each node the kernel holds,
//! where it is (its plaintext path) or what it holds (a made-up file's bytes), and forgets it
//! when the kernel does. Every call that would write answers EROFS (the kernel answers most of
//! them itself: the mount is `ro`).

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::hash::{Hash, Hasher};
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, InitFlags,
    KernelConfig, LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr,
    Request, TimeOrNow, WriteFlags,
};

use super::content::ViewFile;
use super::tree::Item;
use super::{inode_key, View};
use crate::backing::{mode_of, FileKind, Stat};
use crate::crypto::content::backing_size;
use crate::crypto::names::DirIv;
use crate::error::{Error, Result};
use crate::fs::{MountOptions, Mounted};
use crate::layout::longname::SIDECAR_MODE;

/// The root's node ID, as FUSE fixes it.
const ROOT: u64 = 1;
/// Node IDs of made-up entries have this bit set; those of entries on another file system than
/// PLAINDIR's have the next one (and not this one).
const MADE_UP: u64 = 1 << 63;
const FOREIGN: u64 = 1 << 62;
/// The mode of `veilfs.conf` and `veilfs.diriv`, as forward vaults write them.
const READ_ONLY_MODE: u32 = 0o400;
/// Largest read asked of the kernel.
const MAX_READAHEAD: u32 = 1 << 20;

/// What a node is.
#[derive(Debug)]
enum Node {
    /// A plaintext entry at `path` (names from PLAINDIR; empty for the root), with the IV of
    /// the view directory when it is a directory.
    Plain {
        path: Vec<OsString>,
        iv: Option<DirIv>,
    },
    /// An entry the view makes up: its bytes and mode.
    MadeUp { bytes: Arc<[u8]>, mode: u32 },
}

/// A node and how many lookups of it the kernel holds.
#[derive(Debug)]
struct Held {
    node: Node,
    lookups: u64,
}

/// An open view file (a plaintext one boxed: its cipher's key schedules are large).
enum Open {
    Plain(Box<ViewFile>),
    MadeUp(Arc<[u8]>),
}

/// An open view directory: its entries as the kernel gets them.
type Listing = Arc<Vec<(u64, FileType, OsString)>>;

/// The file system. See the module documentation.
pub struct ReverseFs {
    view: View,
    ttl: Duration,
    nodes: Mutex<HashMap<u64, Held>>,
    files: Mutex<HashMap<u64, Arc<Open>>>,
    dirs: Mutex<HashMap<u64, Listing>>,
    next_handle: AtomicU64,
    /// Requests served: `--idle` watches it.
    requests: Arc<AtomicU64>,
    /// Whether INIT asks for FUSE over io_uring, and what the kernel said.
    transport: crate::fs::transport::Negotiated,
}

impl ReverseFs {
    pub fn new(view: View) -> Self {
        let root = Held {
            node: Node::Plain {
                path: Vec::new(),
                iv: Some(view.root_iv()),
            },
            // Never forgotten.
            lookups: u64::MAX,
        };
        ReverseFs {
            view,
            ttl: crate::fs::TTL,
            nodes: Mutex::new(HashMap::from([(ROOT, root)])),
            files: Mutex::default(),
            dirs: Mutex::default(),
            next_handle: AtomicU64::new(1),
            requests: Arc::default(),
            transport: Default::default(),
        }
    }

    /// The count of requests served, for `--idle`.
    pub fn request_counter(&self) -> Arc<AtomicU64> {
        self.requests.clone()
    }

    fn count_request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// The node ID of the plaintext entry whose `lstat` is `stat`.
    // The stat fields' integer types differ between Linux and macOS.
    #[allow(clippy::unnecessary_cast)]
    fn plain_id(&self, stat: &Stat) -> u64 {
        let (dev, ino) = inode_key(stat);
        let root = self.view.root_stat();
        if (dev, ino) == inode_key(root) {
            ROOT
        } else if dev == root.st_dev as u64 && ino != ROOT && ino < FOREIGN {
            ino
        } else {
            FOREIGN | (hash_of(&(dev, ino)) & (FOREIGN - 1))
        }
    }

    /// What node `ino` is: its plaintext path and IV, or its bytes.
    fn node(&self, ino: u64) -> Result<(Vec<OsString>, Option<DirIv>)> {
        match self.nodes.lock().unwrap().get(&ino).map(|held| &held.node) {
            Some(Node::Plain { path, iv }) => Ok((path.clone(), *iv)),
            Some(Node::MadeUp { .. }) => Err(errno(libc::ENOTDIR)),
            None => Err(errno(libc::ESTALE)),
        }
    }

    /// The `lstat` of the plaintext entry at `path`, checked to be node `ino`.
    fn plain_stat(&self, ino: u64, path: &[OsString]) -> Result<Stat> {
        let stat = match path.split_last() {
            None => self.view.root().stat_self()?,
            Some((name, parent)) => self.view.open_dir(parent)?.stat(name)?,
        };
        if self.plain_id(&stat) != ino {
            return Err(errno(libc::ESTALE));
        }
        Ok(stat)
    }

    fn attr(&self, ino: u64) -> Result<FileAttr> {
        let made_up = match self.nodes.lock().unwrap().get(&ino).map(|held| &held.node) {
            Some(Node::MadeUp { bytes, mode }) => Some((bytes.len(), *mode)),
            Some(Node::Plain { .. }) => None,
            None => return Err(errno(libc::ESTALE)),
        };
        match made_up {
            Some((len, mode)) => Ok(self.made_up_attr(ino, len as u64, mode)),
            None => {
                let (path, _) = self.node(ino)?;
                Ok(plain_attr(ino, &self.plain_stat(ino, &path)?))
            }
        }
    }

    /// Attributes of a made-up entry: the owner of PLAINDIR, the reverse config's mtime.
    // The stat fields' integer types differ between Linux and macOS.
    #[allow(clippy::unnecessary_cast)]
    fn made_up_attr(&self, ino: u64, size: u64, mode: u32) -> FileAttr {
        let config = &self.view.config().stat;
        let time = system_time(config.st_mtime as i64, config.st_mtime_nsec as i64);
        let root = self.view.root_stat();
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

    /// The node a view item in directory `parent` (at `path`, IV `iv`) is, under view name
    /// `name`: its ID and what it is.
    fn item_node(
        &self,
        parent: u64,
        path: &[OsString],
        iv: &DirIv,
        name: &OsStr,
        item: Item,
    ) -> (u64, Node, Option<Stat>) {
        let made_up = |bytes: &[u8], mode: u32| {
            let node = Node::MadeUp {
                bytes: Arc::from(bytes),
                mode,
            };
            (made_up_id(parent, name), node, None)
        };
        match item {
            Item::Config => made_up(&self.view.config().bytes, READ_ONLY_MODE),
            Item::DirIv => made_up(&iv.0, READ_ONLY_MODE),
            Item::Sidecar(encoded) => made_up(encoded.as_bytes(), SIDECAR_MODE),
            Item::Plain { name, stat } => {
                let is_dir = FileKind::of(&stat) == FileKind::Dir;
                let node = Node::Plain {
                    iv: is_dir.then(|| self.view.dir_iv(iv, &name)),
                    path: path.iter().cloned().chain([name]).collect(),
                };
                (self.plain_id(&stat), node, Some(stat))
            }
        }
    }

    fn do_lookup(&self, parent: u64, name: &OsStr) -> Result<FileAttr> {
        let (path, iv) = self.node(parent)?;
        let iv = iv.ok_or_else(|| errno(libc::ENOTDIR))?;
        let dir = self.view.open_dir(&path)?;
        let item = self
            .view
            .find(&dir, &path, &iv, name)?
            .ok_or_else(|| errno(libc::ENOENT))?;
        let (ino, node, stat) = self.item_node(parent, &path, &iv, name, item);
        let attr = match (&node, &stat) {
            (_, Some(stat)) => plain_attr(ino, stat),
            (Node::MadeUp { bytes, mode }, None) => {
                self.made_up_attr(ino, bytes.len() as u64, *mode)
            }
            (Node::Plain { .. }, None) => unreachable!("plain nodes come with their stat"),
        };
        let mut nodes = self.nodes.lock().unwrap();
        match nodes.get_mut(&ino) {
            // The newest name of the node: a hard link reads the same through any of them.
            Some(held) if ino != ROOT => {
                held.node = node;
                held.lookups = held.lookups.saturating_add(1);
            }
            Some(_) => {}
            None => {
                nodes.insert(ino, Held { node, lookups: 1 });
            }
        }
        Ok(attr)
    }

    fn do_getattr(&self, ino: u64, fh: Option<FileHandle>) -> Result<FileAttr> {
        if let Some(fh) = fh {
            if let Some(Open::Plain(file)) = self.files.lock().unwrap().get(&fh.0).map(|f| &**f) {
                // The size the handle serves, whatever the file became since.
                let mut attr = self.attr(ino)?;
                attr.size = file.size();
                return Ok(attr);
            }
        }
        self.attr(ino)
    }

    fn do_open(&self, ino: u64, flags: i32) -> Result<u64> {
        if flags & libc::O_ACCMODE != libc::O_RDONLY || flags & libc::O_TRUNC != 0 {
            return Err(errno(libc::EROFS));
        }
        let made_up = match self.nodes.lock().unwrap().get(&ino).map(|held| &held.node) {
            Some(Node::MadeUp { bytes, .. }) => Some(bytes.clone()),
            Some(Node::Plain { .. }) => None,
            None => return Err(errno(libc::ESTALE)),
        };
        let open = match made_up {
            Some(bytes) => Open::MadeUp(bytes),
            None => {
                let (path, iv) = self.node(ino)?;
                if iv.is_some() {
                    return Err(errno(libc::EISDIR));
                }
                let (_, parent) = path.split_last().ok_or_else(|| errno(libc::EISDIR))?;
                let dir = self.view.open_dir(parent)?;
                let (file, stat) = self.view.open_file(&dir, &path)?;
                if self.plain_id(&stat) != ino {
                    return Err(errno(libc::ESTALE));
                }
                Open::Plain(Box::new(file))
            }
        };
        let fh = self.next_handle.fetch_add(1, Ordering::Relaxed);
        self.files.lock().unwrap().insert(fh, Arc::new(open));
        Ok(fh)
    }

    fn do_read(&self, fh: u64, offset: u64, size: u32) -> Result<Vec<u8>> {
        let open = self
            .files
            .lock()
            .unwrap()
            .get(&fh)
            .cloned()
            .ok_or_else(|| errno(libc::EBADF))?;
        match &*open {
            Open::Plain(file) => file.read(offset, size as usize),
            Open::MadeUp(bytes) => {
                let start = (offset as usize).min(bytes.len());
                let end = start.saturating_add(size as usize).min(bytes.len());
                Ok(bytes[start..end].to_vec())
            }
        }
    }

    fn do_readlink(&self, ino: u64) -> Result<Vec<u8>> {
        let (path, _) = self.node(ino)?;
        let (_, parent) = path.split_last().ok_or_else(|| errno(libc::EINVAL))?;
        let dir = self.view.open_dir(parent)?;
        Ok(self.view.symlink_target(&dir, &path)?.into_bytes())
    }

    fn do_opendir(&self, ino: u64) -> Result<u64> {
        let (path, iv) = self.node(ino)?;
        let iv = iv.ok_or_else(|| errno(libc::ENOTDIR))?;
        let dir = self.view.open_dir(&path)?;
        let mut entries = vec![
            (ino, FileType::Directory, OsString::from(".")),
            (ROOT, FileType::Directory, OsString::from("..")),
        ];
        for listed in self.view.list(&dir, &path, &iv)? {
            let name = OsString::from(listed.name);
            let (id, kind) = match &listed.item {
                Item::Plain { stat, .. } => (self.plain_id(stat), file_type(FileKind::of(stat))),
                _ => (made_up_id(ino, &name), FileType::RegularFile),
            };
            entries.push((id, kind, name));
        }
        let fh = self.next_handle.fetch_add(1, Ordering::Relaxed);
        self.dirs.lock().unwrap().insert(fh, Arc::new(entries));
        Ok(fh)
    }
}

fn errno(code: i32) -> Error {
    Error::Io(io::Error::from_raw_os_error(code))
}

fn to_errno(e: Error) -> Errno {
    Errno::from_i32(e.errno())
}

fn hash_of(value: &impl Hash) -> u64 {
    // SipHash with fixed keys: the same for the mount's life (and for every mount of this build).
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

/// The node ID of the made-up entry `name` of directory `parent`.
fn made_up_id(parent: u64, name: &OsStr) -> u64 {
    MADE_UP | (hash_of(&(parent, name)) & (MADE_UP - 1))
}

fn file_type(kind: FileKind) -> FileType {
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
fn plain_attr(ino: u64, stat: &Stat) -> FileAttr {
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

/// Mounts `fs` read-only at `mountpoint`; the caller runs the returned session. A reverse view
/// is always read-only, whatever `options.read_only` says.
pub fn mount(
    fs: ReverseFs,
    mountpoint: &Path,
    options: &MountOptions,
) -> io::Result<Mounted<ReverseFs>> {
    let config = crate::fs::session_config(&MountOptions {
        read_only: true,
        ..options.clone()
    });
    Mounted::new(
        |transport| ReverseFs {
            ttl: options.cache_ttl,
            transport,
            ..fs
        },
        mountpoint,
        options,
        &config,
    )
}

fn reply_entry(reply: ReplyEntry, ttl: Duration, result: Result<FileAttr>) {
    match result {
        Ok(attr) => reply.entry(&ttl, &attr, Generation(0)),
        Err(e) => reply.error(to_errno(e)),
    }
}

impl Filesystem for ReverseFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> io::Result<()> {
        // The kernel lowers these to what it supports; an error just means "kept its value".
        let _ = config.set_max_readahead(MAX_READAHEAD);
        let _ = config.add_capabilities(InitFlags::FUSE_PARALLEL_DIROPS);
        self.transport.offer(config);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        self.count_request();
        reply_entry(reply, self.ttl, self.do_lookup(parent.0, name));
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        let mut nodes = self.nodes.lock().unwrap();
        if let Some(held) = nodes.get_mut(&ino.0) {
            held.lookups = held.lookups.saturating_sub(nlookup);
            if held.lookups == 0 && ino.0 != ROOT {
                nodes.remove(&ino.0);
            }
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        self.count_request();
        match self.do_getattr(ino.0, fh) {
            Ok(attr) => reply.attr(&self.ttl, &attr),
            Err(e) => reply.error(to_errno(e)),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        self.count_request();
        match self.do_readlink(ino.0) {
            Ok(target) => reply.data(&target),
            Err(e) => reply.error(to_errno(e)),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        self.count_request();
        match self.do_open(ino.0, flags.0) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(to_errno(e)),
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
        self.count_request();
        match self.do_read(fh.0, offset, size) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(to_errno(e)),
        }
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
        self.files.lock().unwrap().remove(&fh.0);
        reply.ok();
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        self.count_request();
        match self.do_opendir(ino.0) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(to_errno(e)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        self.count_request();
        let Some(listing) = self.dirs.lock().unwrap().get(&fh.0).cloned() else {
            return reply.error(Errno::EBADF);
        };
        for (index, (ino, kind, name)) in listing.iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(*ino), index as u64 + 1, *kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.dirs.lock().unwrap().remove(&fh.0);
        reply.ok();
    }

    // fsblkcnt_t is u64 on Linux but u32 on macOS.
    #[allow(clippy::useless_conversion)]
    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        self.count_request();
        match self.view.root().statvfs() {
            Ok(s) => reply.statfs(
                u64::from(s.blocks()),
                0,
                0,
                u64::from(s.files()),
                0,
                s.block_size() as u32,
                crate::crypto::names::NAME_MAX as u32,
                s.fragment_size() as u32,
            ),
            Err(e) => reply.error(to_errno(e.into())),
        }
    }

    fn getxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _size: u32,
        reply: ReplyXattr,
    ) {
        // Extended attributes are not part of the view (format.md, "Reverse mode").
        reply.error(Errno::NO_XATTR);
    }

    fn listxattr(&self, _req: &Request, _ino: INodeNo, size: u32, reply: ReplyXattr) {
        match size {
            0 => reply.size(0),
            _ => reply.data(&[]),
        }
    }

    // Every call that would write: the kernel refuses most of them itself (the mount is `ro`).

    fn setattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        _size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        reply.error(Errno::EROFS);
    }

    fn mknod(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn mkdir(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn unlink(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EROFS);
    }

    fn rmdir(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EROFS);
    }

    fn symlink(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _link_name: &OsStr,
        _target: &Path,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn rename(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _newparent: INodeNo,
        _newname: &OsStr,
        _flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EROFS);
    }

    fn link(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _newparent: INodeNo,
        _newname: &OsStr,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        _data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        reply.error(Errno::EROFS);
    }

    fn create(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        reply.error(Errno::EROFS);
    }

    fn setxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _value: &[u8],
        _flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EROFS);
    }

    fn removexattr(&self, _req: &Request, _ino: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EROFS);
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        _length: u64,
        _mode: i32,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EROFS);
    }
}
