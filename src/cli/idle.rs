//! `--idle`: unmount after a time without filesystem requests.
//!
//! [`Tracked`] wraps the filesystem and counts the requests that reach it (all but the kernel's
//! `forget`s, which come from cache eviction, not from a user); [`watch`] runs in its own thread
//! and, once the count has not moved for the idle time, unmounts with a plain umount(2) (or
//! `fusermount3 -u`). That fails with EBUSY while a file is open in the mount or a process has its
//! working directory there: then it tries again after another idle period. A successful unmount
//! ends the session, and the process exits as after `veilfs umount`.

use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

#[cfg(target_os = "macos")]
use fuser::ReplyXTimes;
use fuser::{
    AccessFlags, BsdFileFlags, CopyFileRangeFlags, FileHandle, Filesystem, INodeNo, IoctlFlags,
    KernelConfig, LockOwner, OpenFlags, PollEvents, PollFlags, PollNotifier, RenameFlags,
    ReplyAttr, ReplyBmap, ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty,
    ReplyEntry, ReplyIoctl, ReplyLock, ReplyLseek, ReplyOpen, ReplyPoll, ReplyStatfs, ReplyWrite,
    ReplyXattr, Request, TimeOrNow, WriteFlags,
};

use super::mount::find_mount;
use super::platform;

/// A filesystem whose requests are counted.
pub struct Tracked<F> {
    inner: F,
    requests: Arc<AtomicU64>,
}

impl<F: Filesystem> Tracked<F> {
    /// Wraps `inner`; `requests` counts the requests it is handed.
    pub fn new(inner: F, requests: Arc<AtomicU64>) -> Self {
        Tracked { inner, requests }
    }

    fn touch(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }
}

/// How often the watcher looks at the request count: a tenth of the idle time, between 0.1 and
/// 5 seconds.
fn tick(idle: Duration) -> Duration {
    (idle / 10).clamp(Duration::from_millis(100), Duration::from_secs(5))
}

/// Watches `requests` and unmounts `mountpoint` once it has not changed for `idle`; returns
/// after unmounting. `source` is the mount's source in the mount table (the backing directory):
/// only a mount with that source is unmounted, never whatever else is mounted there.
pub fn watch(requests: Arc<AtomicU64>, idle: Duration, mountpoint: PathBuf, source: String) {
    let tick = tick(idle);
    let mut seen = requests.load(Ordering::Relaxed);
    let mut quiet_since = Instant::now();
    loop {
        std::thread::sleep(tick);
        let now = requests.load(Ordering::Relaxed);
        if now != seen {
            seen = now;
            quiet_since = Instant::now();
            continue;
        }
        if quiet_since.elapsed() < idle {
            continue;
        }
        match unmount_if_ours(&mountpoint, &source) {
            Ok(true) => {
                tracing::info!(
                    "{} was idle for {}: unmounted",
                    mountpoint.display(),
                    format_duration(idle)
                );
                return;
            }
            Ok(false) => {
                tracing::info!(
                    "{} is no longer mounted by this process; stopping the idle timer",
                    mountpoint.display()
                );
                return;
            }
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                tracing::debug!(
                    "{} is idle but busy (open files or a working directory in it); trying again in {}",
                    mountpoint.display(),
                    format_duration(idle)
                );
            }
            Err(e) => tracing::warn!(
                "idle unmount of {} failed: {e}; trying again in {}",
                mountpoint.display(),
                format_duration(idle)
            ),
        }
        quiet_since = Instant::now();
    }
}

/// Unmounts `mountpoint` if the topmost mount there is a FUSE mount of `source`; `Ok(false)` if
/// it is not (somebody else unmounted it, or mounted something on top).
fn unmount_if_ours(mountpoint: &Path, source: &str) -> io::Result<bool> {
    match find_mount(mountpoint)? {
        Some(entry) if entry.fstype.starts_with("fuse") && entry.source == source => {}
        _ => return Ok(false),
    }
    platform::unmount(mountpoint)?;
    Ok(true)
}

/// Parses a duration: a number and a unit (`s`, `m`, `h`, `d`; seconds without one), or several
/// (`1h30m`). Zero is refused.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "invalid duration '{text}': expected a number and a unit, like 30s, 10m, 1h or 1h30m"
        )
    };
    let text_trimmed = text.trim();
    if text_trimmed.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    let mut rest = text_trimmed;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let seconds = match &rest[..unit_len] {
            "" | "s" | "sec" => 1,
            "m" | "min" => 60,
            "h" => 3600,
            "d" => 86400,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        let part = number.checked_mul(seconds).ok_or_else(bad)?;
        total = total
            .checked_add(Duration::from_secs(part))
            .ok_or_else(bad)?;
    }
    if total.is_zero() {
        return Err(format!(
            "invalid duration '{text}': it must be longer than zero"
        ));
    }
    Ok(total)
}

/// `90s` as `1m30s`.
pub fn format_duration(duration: Duration) -> String {
    let mut secs = duration.as_secs();
    if secs == 0 {
        return format!("{}ms", duration.as_millis());
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

// Every request but `forget` (and `batch_forget`, whose default calls `forget`) counts as use.
// `init` and `destroy` come from mounting and unmounting, not from a user.
#[allow(clippy::too_many_arguments)]
impl<F: Filesystem> Filesystem for Tracked<F> {
    fn init(&mut self, req: &Request, config: &mut KernelConfig) -> io::Result<()> {
        self.inner.init(req, config)
    }

    fn destroy(&mut self) {
        self.inner.destroy()
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        self.touch();
        self.inner.lookup(req, parent, name, reply)
    }

    fn forget(&self, req: &Request, ino: INodeNo, nlookup: u64) {
        self.inner.forget(req, ino, nlookup)
    }

    fn getattr(&self, req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        self.touch();
        self.inner.getattr(req, ino, fh, reply)
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
        ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        crtime: Option<SystemTime>,
        chgtime: Option<SystemTime>,
        bkuptime: Option<SystemTime>,
        flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        self.touch();
        self.inner.setattr(
            req, ino, mode, uid, gid, size, atime, mtime, ctime, fh, crtime, chgtime, bkuptime,
            flags, reply,
        )
    }

    fn readlink(&self, req: &Request, ino: INodeNo, reply: ReplyData) {
        self.touch();
        self.inner.readlink(req, ino, reply)
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
        self.touch();
        self.inner
            .mknod(req, parent, name, mode, umask, rdev, reply)
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
        self.touch();
        self.inner.mkdir(req, parent, name, mode, umask, reply)
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.touch();
        self.inner.unlink(req, parent, name, reply)
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.touch();
        self.inner.rmdir(req, parent, name, reply)
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        self.touch();
        self.inner.symlink(req, parent, link_name, target, reply)
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        self.touch();
        self.inner
            .rename(req, parent, name, newparent, newname, flags, reply)
    }

    fn link(
        &self,
        req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        self.touch();
        self.inner.link(req, ino, newparent, newname, reply)
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        self.touch();
        self.inner.open(req, ino, flags, reply)
    }

    fn read(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        flags: OpenFlags,
        lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        self.touch();
        self.inner
            .read(req, ino, fh, offset, size, flags, lock_owner, reply)
    }

    fn write(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        write_flags: WriteFlags,
        flags: OpenFlags,
        lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        self.touch();
        self.inner.write(
            req,
            ino,
            fh,
            offset,
            data,
            write_flags,
            flags,
            lock_owner,
            reply,
        )
    }

    fn flush(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        self.touch();
        self.inner.flush(req, ino, fh, lock_owner, reply)
    }

    fn release(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        flags: OpenFlags,
        lock_owner: Option<LockOwner>,
        flush: bool,
        reply: ReplyEmpty,
    ) {
        self.touch();
        self.inner
            .release(req, ino, fh, flags, lock_owner, flush, reply)
    }

    fn fsync(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.touch();
        self.inner.fsync(req, ino, fh, datasync, reply)
    }

    fn opendir(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        self.touch();
        self.inner.opendir(req, ino, flags, reply)
    }

    fn readdir(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        reply: ReplyDirectory,
    ) {
        self.touch();
        self.inner.readdir(req, ino, fh, offset, reply)
    }

    fn readdirplus(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        reply: ReplyDirectoryPlus,
    ) {
        self.touch();
        self.inner.readdirplus(req, ino, fh, offset, reply)
    }

    fn releasedir(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.touch();
        self.inner.releasedir(req, ino, fh, flags, reply)
    }

    fn fsyncdir(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.touch();
        self.inner.fsyncdir(req, ino, fh, datasync, reply)
    }

    fn statfs(&self, req: &Request, ino: INodeNo, reply: ReplyStatfs) {
        self.touch();
        self.inner.statfs(req, ino, reply)
    }

    fn setxattr(
        &self,
        req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        position: u32,
        reply: ReplyEmpty,
    ) {
        self.touch();
        self.inner
            .setxattr(req, ino, name, value, flags, position, reply)
    }

    fn getxattr(&self, req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        self.touch();
        self.inner.getxattr(req, ino, name, size, reply)
    }

    fn listxattr(&self, req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        self.touch();
        self.inner.listxattr(req, ino, size, reply)
    }

    fn removexattr(&self, req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.touch();
        self.inner.removexattr(req, ino, name, reply)
    }

    fn access(&self, req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        self.touch();
        self.inner.access(req, ino, mask, reply)
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
        self.touch();
        self.inner
            .create(req, parent, name, mode, umask, flags, reply)
    }

    fn getlk(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        lock_owner: LockOwner,
        start: u64,
        end: u64,
        typ: i32,
        pid: u32,
        reply: ReplyLock,
    ) {
        self.touch();
        self.inner
            .getlk(req, ino, fh, lock_owner, start, end, typ, pid, reply)
    }

    fn setlk(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        lock_owner: LockOwner,
        start: u64,
        end: u64,
        typ: i32,
        pid: u32,
        sleep: bool,
        reply: ReplyEmpty,
    ) {
        self.touch();
        self.inner
            .setlk(req, ino, fh, lock_owner, start, end, typ, pid, sleep, reply)
    }

    fn bmap(&self, req: &Request, ino: INodeNo, blocksize: u32, idx: u64, reply: ReplyBmap) {
        self.touch();
        self.inner.bmap(req, ino, blocksize, idx, reply)
    }

    fn ioctl(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        flags: IoctlFlags,
        cmd: u32,
        in_data: &[u8],
        out_size: u32,
        reply: ReplyIoctl,
    ) {
        self.touch();
        self.inner
            .ioctl(req, ino, fh, flags, cmd, in_data, out_size, reply)
    }

    fn poll(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        ph: PollNotifier,
        events: PollEvents,
        flags: PollFlags,
        reply: ReplyPoll,
    ) {
        self.touch();
        self.inner.poll(req, ino, fh, ph, events, flags, reply)
    }

    fn fallocate(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        self.touch();
        self.inner
            .fallocate(req, ino, fh, offset, length, mode, reply)
    }

    fn lseek(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: i64,
        whence: i32,
        reply: ReplyLseek,
    ) {
        self.touch();
        self.inner.lseek(req, ino, fh, offset, whence, reply)
    }

    fn copy_file_range(
        &self,
        req: &Request,
        ino_in: INodeNo,
        fh_in: FileHandle,
        offset_in: u64,
        ino_out: INodeNo,
        fh_out: FileHandle,
        offset_out: u64,
        len: u64,
        flags: CopyFileRangeFlags,
        reply: ReplyWrite,
    ) {
        self.touch();
        self.inner.copy_file_range(
            req, ino_in, fh_in, offset_in, ino_out, fh_out, offset_out, len, flags, reply,
        )
    }

    #[cfg(target_os = "macos")]
    fn setvolname(&self, req: &Request, name: &OsStr, reply: ReplyEmpty) {
        self.touch();
        self.inner.setvolname(req, name, reply)
    }

    #[cfg(target_os = "macos")]
    fn exchange(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        options: u64,
        reply: ReplyEmpty,
    ) {
        self.touch();
        self.inner
            .exchange(req, parent, name, newparent, newname, options, reply)
    }

    #[cfg(target_os = "macos")]
    fn getxtimes(&self, req: &Request, ino: INodeNo, reply: ReplyXTimes) {
        self.touch();
        self.inner.getxtimes(req, ino, reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86400)));
        assert_eq!(parse_duration(" 5min "), Ok(Duration::from_secs(300)));
        for bad in [
            "",
            "s",
            "10x",
            "-1s",
            "1.5h",
            "0s",
            "0",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_format() {
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_secs(600)), "10m");
        assert_eq!(format_duration(Duration::from_secs(2)), "2s");
        assert_eq!(format_duration(Duration::from_millis(300)), "300ms");
    }

    #[test]
    fn the_tick_is_a_tenth_within_bounds() {
        assert_eq!(tick(Duration::from_secs(2)), Duration::from_millis(200));
        assert_eq!(tick(Duration::from_millis(500)), Duration::from_millis(100));
        assert_eq!(tick(Duration::from_secs(3600)), Duration::from_secs(5));
    }
}
