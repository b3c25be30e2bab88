//! The fuser glue, and the only file that knows fuser's request and reply types: each kernel
//! request is counted, run as the operation of the same name on [`VeilFs`], and its result
//! replied; the kernel's `init` is answered with the capabilities veilfs uses.

use std::ffi::OsStr;
use std::io;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use fuser::{
    AccessFlags, Errno, FileAttr, FileHandle, Filesystem, FopenFlags, Generation, INodeNo,
    InitFlags, KernelConfig, LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite,
    ReplyXattr, Request, TimeOrNow, WriteFlags,
};

use crate::error::{Error, Result};

use super::{sys, Caller, VeilFs};

/// Largest read and write requests asked of the kernel: fewer, larger requests amortize the
/// per-request cost of FUSE.
pub(super) const MAX_REQUEST: usize = 1 << 20;

impl From<&Request> for Caller {
    fn from(req: &Request) -> Self {
        Caller {
            uid: req.uid(),
            gid: req.gid(),
        }
    }
}

impl Filesystem for VeilFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> io::Result<()> {
        // The kernel lowers these to what it supports; an error just means "kept its value".
        let _ = config.set_max_write(MAX_REQUEST as u32);
        let _ = config.set_max_readahead(MAX_REQUEST as u32);
        // Listings with attributes: `ls -l` and friends then need no lookup per entry. AUTO
        // lets the kernel use plain readdir where attributes would go unused.
        // We clear setuid/setgid ourselves when the kernel flags a write (and the backing
        // filesystem does on chown); otherwise the kernel asks for security.capability before
        // every single write, a round trip each.
        let _ = config.add_capabilities(InitFlags::FUSE_HANDLE_KILLPRIV_V2);
        let _ = config
            .add_capabilities(InitFlags::FUSE_DO_READDIRPLUS | InitFlags::FUSE_READDIRPLUS_AUTO);
        // Writes reach the backing file before they are answered, so a `close(2)` has nothing
        // left to flush: NOFLUSH spares it the FLUSH round trip.
        self.open_flags = FopenFlags::FOPEN_NOFLUSH;
        // Decrypted pages may outlive an open (KEEP_CACHE) only where the kernel drops them
        // when it sees a file's size or mtime change (AUTO_INVAL_DATA): a sync tool rewriting
        // a backing file in place must show once the attributes expire (`ttl`).
        if config
            .add_capabilities(InitFlags::FUSE_AUTO_INVAL_DATA)
            .is_ok()
        {
            self.open_flags |= FopenFlags::FOPEN_KEEP_CACHE;
        }
        // Lookups and listings in one directory need not queue behind each other: the adapter
        // locks what it shares.
        let _ = config.add_capabilities(InitFlags::FUSE_PARALLEL_DIROPS);
        self.transport.offer(config);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let _tree = self.count_request();
        self.reply_entry(reply, self.do_lookup(parent.0, name));
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.inodes.lock().unwrap().forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        let _tree = self.count_request();
        reply_attr(reply, self.ttl, self.do_getattr(ino.0, fh));
    }

    fn setattr(
        &self,
        req: &Request,
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
        let _tree = self.count_request();
        reply_attr(
            reply,
            self.ttl,
            self.do_setattr(
                ino.0,
                mode,
                uid,
                gid,
                size,
                atime,
                mtime,
                fh,
                req.uid() == 0,
            ),
        );
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let _tree = self.count_request();
        match self.do_readlink(ino.0) {
            Ok(target) => reply.data(&target),
            Err(e) => reply.error(to_errno(e)),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let _tree = self.count_request();
        let mode = (mode & sys::S_IFMT) | (mode & !umask & 0o7777);
        self.reply_entry(reply, self.do_mknod(req.into(), parent.0, name, mode, rdev));
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let _tree = self.count_request();
        self.reply_entry(
            reply,
            self.do_mkdir(req.into(), parent.0, name, mode & !umask),
        );
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let _tree = self.count_request();
        reply_empty(reply, self.do_unlink(parent.0, name));
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let _tree = self.count_request();
        reply_empty(reply, self.do_rmdir(parent.0, name));
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let _tree = self.count_request();
        self.reply_entry(
            reply,
            self.do_symlink(req.into(), parent.0, link_name, target),
        );
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
        self.requests.fetch_add(1, Ordering::Relaxed);
        let _tree = self.tree.write().unwrap();
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
        let _tree = self.count_request();
        self.reply_entry(reply, self.do_link(ino.0, newparent.0, newname));
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let _tree = self.count_request();
        match self.do_open(ino.0, flags.0) {
            Ok(fh) => reply.opened(FileHandle(fh), self.open_flags),
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
        let _tree = self.count_request();
        match self.do_read(fh, offset, size) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(to_errno(e)),
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let _tree = self.count_request();
        let kill_privs = write_flags.contains(WriteFlags::FUSE_WRITE_KILL_SUIDGID);
        match self.do_write(fh, offset, data, kill_privs) {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(to_errno(e)),
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
        let _tree = self.count_request();
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
        let _tree = self.count_request();
        self.do_release(fh);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        let _tree = self.count_request();
        reply_empty(reply, self.do_fsync(fh, datasync));
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let _tree = self.count_request();
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
        let _tree = self.count_request();
        let listed = self.do_readdir(fh, offset, |offset, ino, kind, name| {
            reply.add(INodeNo(ino), offset, kind, name)
        });
        match listed {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(to_errno(e)),
        }
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let _tree = self.count_request();
        let listed = self.do_readdirplus(ino.0, fh, offset, |offset, name, attr| {
            reply.add(
                attr.ino,
                offset,
                name,
                &self.ttl,
                attr,
                self.generation(attr.ino),
            )
        });
        match listed {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(to_errno(e)),
        }
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        let _tree = self.count_request();
        self.do_releasedir(fh);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let _tree = self.count_request();
        reply_empty(reply, self.do_fsyncdir(ino.0));
    }

    // fsblkcnt_t is u64 on Linux but u32 on macOS.
    #[allow(clippy::useless_conversion)]
    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let _tree = self.count_request();
        match self.do_statfs() {
            Ok(s) => reply.statfs(
                u64::from(s.blocks()),
                u64::from(s.blocks_free()),
                u64::from(s.blocks_available()),
                u64::from(s.files()),
                u64::from(s.files_free()),
                s.block_size() as u32,
                crate::crypto::names::NAME_MAX as u32,
                s.fragment_size() as u32,
            ),
            Err(e) => reply.error(to_errno(e)),
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
        let _tree = self.count_request();
        reply_empty(reply, self.do_setxattr(ino.0, name, value, flags));
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let _tree = self.count_request();
        match self.do_getxattr(ino.0, name) {
            Ok(value) => reply_sized(reply, size, &value),
            Err(e) => reply.error(to_errno(e)),
        }
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let _tree = self.count_request();
        match self.do_listxattr(ino.0) {
            Ok(list) => reply_sized(reply, size, &list),
            Err(e) => reply.error(to_errno(e)),
        }
    }

    fn removexattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let _tree = self.count_request();
        reply_empty(reply, self.do_removexattr(ino.0, name));
    }

    fn access(&self, req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        let _tree = self.count_request();
        reply_empty(reply, self.do_access(req.into(), ino.0, mask));
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let _tree = self.count_request();
        match self.do_create(req.into(), parent.0, name, mode & !umask, flags) {
            Ok((attr, fh)) => reply.created(
                &self.ttl,
                &attr,
                self.generation(attr.ino),
                FileHandle(fh),
                self.open_flags,
            ),
            Err(e) => reply.error(to_errno(e)),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let _tree = self.count_request();
        reply_empty(reply, self.do_fallocate(fh, offset, length, mode));
    }
}

impl VeilFs {
    /// The generation to tell the kernel with inode `ino`.
    fn generation(&self, ino: INodeNo) -> Generation {
        Generation(self.inodes.lock().unwrap().generation(ino.0))
    }

    /// Replies with an entry valid for the cache time, or with the error's errno.
    fn reply_entry(&self, reply: ReplyEntry, result: Result<FileAttr>) {
        match result {
            Ok(attr) => reply.entry(&self.ttl, &attr, self.generation(attr.ino)),
            Err(e) => reply.error(to_errno(e)),
        }
    }
}

fn to_errno(e: Error) -> Errno {
    Errno::from_i32(e.errno())
}

/// Replies with attributes valid for `ttl`, or with the error's errno.
fn reply_attr(reply: ReplyAttr, ttl: Duration, result: Result<FileAttr>) {
    match result {
        Ok(attr) => reply.attr(&ttl, &attr),
        Err(e) => reply.error(to_errno(e)),
    }
}

/// Replies with success, or with the error's errno.
fn reply_empty(reply: ReplyEmpty, result: Result<()>) {
    match result {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(to_errno(e)),
    }
}

/// Replies to a getxattr/listxattr: the size when asked for it, ERANGE when it does not fit.
fn reply_sized(reply: ReplyXattr, size: u32, data: &[u8]) {
    if size == 0 {
        reply.size(data.len() as u32);
    } else if data.len() > size as usize {
        reply.error(Errno::ERANGE);
    } else {
        reply.data(data);
    }
}
