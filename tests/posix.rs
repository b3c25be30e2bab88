//! POSIX behaviour of a real mount, operation by operation, compared with the same operation on a
//! plain directory: results and errnos must be the same. Also: no plaintext reaches the backing
//! directory, a remount keeps everything, and changes made to the backing directory behind the
//! mount's back neither break listings nor crash the daemon.
//!
//! Each test collects every mismatch (with the line that found it) and fails at the end with the
//! whole list, so one run shows all the differences of an area.

mod common;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{CString, OsStr, OsString};
use std::fmt::Debug;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{io_res, wait_for, Res, TestVault};
use nix::errno::Errno;
use nix::fcntl::{renameat2, FallocateFlags, RenameFlags, AT_FDCWD};
use nix::sys::stat::{mknod, utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::AccessFlags;

/// A mounted vault and a plain directory that every operation is run against.
struct Pair {
    vault: TestVault,
    plain: tempfile::TempDir,
    failures: RefCell<Vec<String>>,
}

impl Pair {
    fn new() -> Pair {
        Pair::mounted_with(&[])
    }

    /// A pair whose vault is mounted with `extra` options.
    fn mounted_with(extra: &[&str]) -> Pair {
        let vault = TestVault::unmounted();
        vault.mount_with(extra);
        Pair {
            vault,
            plain: tempfile::Builder::new()
                .prefix("veilfs-plain-")
                .tempdir()
                .unwrap(),
            failures: RefCell::default(),
        }
    }

    fn mnt(&self) -> &Path {
        self.vault.mount_path()
    }

    fn plain(&self) -> &Path {
        self.plain.path()
    }

    /// Runs `op` against both roots; records a mismatch.
    #[track_caller]
    fn both<T: PartialEq + Debug>(&self, what: &str, op: impl Fn(&Path) -> Res<T>) {
        let got = op(self.mnt());
        let expected = op(self.plain());
        if got != expected {
            self.fail(format!("{what}: {}", mismatch(&got, &expected)));
        }
    }

    /// Like [`Pair::both`], for operations expected to succeed on the plain directory.
    #[track_caller]
    fn ok<T: PartialEq + Debug>(&self, what: &str, op: impl Fn(&Path) -> Res<T>) -> Option<T> {
        let expected = op(self.plain());
        assert!(
            expected.is_ok(),
            "{what} failed on the plain directory: {expected:?}"
        );
        let got = op(self.mnt());
        if got != expected {
            self.fail(format!("{what}: {}", mismatch(&got, &expected)));
        }
        got.ok()
    }

    #[track_caller]
    fn check(&self, condition: bool, message: impl FnOnce() -> String) {
        if !condition {
            self.fail(message());
        }
    }

    #[track_caller]
    fn fail(&self, message: String) {
        let at = std::panic::Location::caller();
        self.failures
            .borrow_mut()
            .push(format!("line {}: {message}", at.line()));
    }

    /// Fails the test with every recorded mismatch.
    fn finish(self) {
        let failures = self.failures.take();
        drop(self);
        assert!(
            failures.is_empty(),
            "{} mismatch(es):\n  {}",
            failures.len(),
            failures.join("\n  ")
        );
    }
}

/// "mount gave X, plain dir gave Y", shortened around the first difference for long values.
fn mismatch<T: Debug>(got: &T, expected: &T) -> String {
    let (got, expected) = (format!("{got:?}"), format!("{expected:?}"));
    const KEEP: usize = 200;
    if got.len() <= KEEP && expected.len() <= KEEP {
        return format!("mount gave {got}, plain dir gave {expected}");
    }
    let first = got
        .bytes()
        .zip(expected.bytes())
        .take_while(|(a, b)| a == b)
        .count();
    let window = |s: &str| {
        let mut start = first.saturating_sub(60).min(s.len());
        while !s.is_char_boundary(start) {
            start -= 1;
        }
        let mut end = (first + 100).min(s.len());
        while !s.is_char_boundary(end) {
            end += 1;
        }
        format!("...{}... ({} chars)", &s[start..end], s.len())
    };
    format!(
        "differ at char {first}: mount gave {}, plain dir gave {}",
        window(&got),
        window(&expected)
    )
}

// ---- Operations, each relative to a root and returning Res ----

fn p(root: &Path, rel: impl AsRef<Path>) -> PathBuf {
    root.join(rel)
}

fn write_file(root: &Path, rel: impl AsRef<Path>, data: &[u8]) -> Res<()> {
    io_res(fs::write(p(root, rel), data))
}

fn read_file(root: &Path, rel: impl AsRef<Path>) -> Res<Vec<u8>> {
    io_res(fs::read(p(root, rel)))
}

fn pwrite(root: &Path, rel: impl AsRef<Path>, offset: u64, data: &[u8]) -> Res<()> {
    let file = io_res(OpenOptions::new().write(true).open(p(root, rel)))?;
    io_res(file.write_all_at(data, offset))
}

fn pread(root: &Path, rel: impl AsRef<Path>, offset: u64, len: usize) -> Res<Vec<u8>> {
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

fn mkdir(root: &Path, rel: impl AsRef<Path>) -> Res<()> {
    io_res(fs::create_dir(p(root, rel)))
}

fn rmdir(root: &Path, rel: impl AsRef<Path>) -> Res<()> {
    io_res(fs::remove_dir(p(root, rel)))
}

fn unlink(root: &Path, rel: impl AsRef<Path>) -> Res<()> {
    io_res(fs::remove_file(p(root, rel)))
}

fn rename(root: &Path, from: impl AsRef<Path>, to: impl AsRef<Path>) -> Res<()> {
    io_res(fs::rename(p(root, from), p(root, to)))
}

fn rename2(
    root: &Path,
    from: impl AsRef<Path>,
    to: impl AsRef<Path>,
    flags: RenameFlags,
) -> Res<()> {
    renameat2(AT_FDCWD, &p(root, from), AT_FDCWD, &p(root, to), flags)
}

fn link(root: &Path, from: impl AsRef<Path>, to: impl AsRef<Path>) -> Res<()> {
    io_res(fs::hard_link(p(root, from), p(root, to)))
}

fn symlink(root: &Path, target: impl AsRef<Path>, rel: impl AsRef<Path>) -> Res<()> {
    io_res(std::os::unix::fs::symlink(target, p(root, rel)))
}

fn readlink(root: &Path, rel: impl AsRef<Path>) -> Res<PathBuf> {
    io_res(fs::read_link(p(root, rel)))
}

fn truncate(root: &Path, rel: impl AsRef<Path>, size: u64) -> Res<()> {
    let file = io_res(OpenOptions::new().write(true).open(p(root, rel)))?;
    io_res(file.set_len(size))
}

/// What may be compared between the two roots of one `lstat`.
#[derive(Debug, PartialEq, Eq, Clone)]
struct St {
    kind: &'static str,
    mode: u32,
    /// Not for directories: their sizes are the filesystem's business.
    size: Option<u64>,
    nlink: u64,
    uid: u32,
    gid: u32,
}

fn kind_of(ft: fs::FileType) -> &'static str {
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

fn st_of(meta: &fs::Metadata) -> St {
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

fn lstat(root: &Path, rel: impl AsRef<Path>) -> Res<St> {
    io_res(fs::symlink_metadata(p(root, rel))).map(|m| st_of(&m))
}

fn stat(root: &Path, rel: impl AsRef<Path>) -> Res<St> {
    io_res(fs::metadata(p(root, rel))).map(|m| st_of(&m))
}

fn ino(root: &Path, rel: impl AsRef<Path>) -> Res<u64> {
    io_res(fs::symlink_metadata(p(root, rel))).map(|m| m.ino())
}

/// Sorted names and kinds of a directory (readdir's d_type).
fn list(root: &Path, rel: impl AsRef<Path>) -> Res<Vec<(OsString, &'static str)>> {
    let mut names = Vec::new();
    for entry in io_res(fs::read_dir(p(root, rel)))? {
        let entry = io_res(entry)?;
        names.push((entry.file_name(), kind_of(io_res(entry.file_type())?)));
    }
    names.sort();
    Ok(names)
}

fn times(root: &Path, rel: impl AsRef<Path>) -> Res<((i64, i64), (i64, i64))> {
    let m = io_res(fs::symlink_metadata(p(root, rel)))?;
    Ok(((m.atime(), m.atime_nsec()), (m.mtime(), m.mtime_nsec())))
}

fn utimens(root: &Path, rel: impl AsRef<Path>, atime: TimeSpec, mtime: TimeSpec) -> Res<()> {
    utimensat(
        AT_FDCWD,
        &p(root, rel),
        &atime,
        &mtime,
        UtimensatFlags::NoFollowSymlink,
    )
}

/// A byte pattern that differs at every position of a 4 KiB block and between seeds.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u32)
                .wrapping_mul(31)
                .wrapping_add(seed as u32 * 7 + (i as u32 >> 8)) as u8
        })
        .collect()
}

// ---- Extended attributes through libc (nix has no wrapper) ----

fn cpath(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).unwrap()
}

fn cname(name: &str) -> CString {
    CString::new(name).unwrap()
}

fn check_len(ret: isize) -> Res<usize> {
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(ret as usize)
    }
}

fn setxattr(root: &Path, rel: impl AsRef<Path>, name: &str, value: &[u8], flags: i32) -> Res<()> {
    let (path, name) = (cpath(&p(root, rel)), cname(name));
    // SAFETY: NUL-terminated strings and a value buffer valid for its length, all outliving the call.
    let ret = unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            flags,
        )
    };
    check_len(ret as isize).map(drop)
}

/// `lgetxattr` into a buffer of `size` bytes (0 asks for the size): the value, or its size.
fn getxattr_sized(root: &Path, rel: impl AsRef<Path>, name: &str, size: usize) -> Res<Vec<u8>> {
    let (path, name) = (cpath(&p(root, rel)), cname(name));
    let mut buf = vec![0u8; size];
    let ptr = if size == 0 {
        std::ptr::null_mut()
    } else {
        buf.as_mut_ptr().cast()
    };
    // SAFETY: NUL-terminated strings; `ptr` is null with size 0 or valid for `size` bytes.
    let ret = unsafe { libc::lgetxattr(path.as_ptr(), name.as_ptr(), ptr, size) };
    let n = check_len(ret)?;
    if size == 0 {
        return Ok(n.to_string().into_bytes());
    }
    buf.truncate(n);
    Ok(buf)
}

fn getxattr(root: &Path, rel: impl AsRef<Path>, name: &str) -> Res<Vec<u8>> {
    getxattr_sized(root, rel, name, 65536)
}

fn listxattr(root: &Path, rel: impl AsRef<Path>) -> Res<Vec<String>> {
    let path = cpath(&p(root, rel));
    let mut buf = vec![0u8; 65536];
    // SAFETY: NUL-terminated path; `buf` is valid for its length.
    let ret = unsafe { libc::llistxattr(path.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    let n = check_len(ret)?;
    let mut names: Vec<String> = buf[..n]
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty())
        .map(|n| String::from_utf8_lossy(n).into_owned())
        // Only user.* names are ours; a plain directory may carry security.* labels.
        .filter(|n| n.starts_with("user."))
        .collect();
    names.sort();
    Ok(names)
}

fn removexattr(root: &Path, rel: impl AsRef<Path>, name: &str) -> Res<()> {
    let (path, name) = (cpath(&p(root, rel)), cname(name));
    // SAFETY: NUL-terminated strings outliving the call.
    let ret = unsafe { libc::lremovexattr(path.as_ptr(), name.as_ptr()) };
    check_len(ret as isize).map(drop)
}

// ---- Backing-directory helpers ----

/// The backing path of mount entry `rel`: backing and plaintext inode numbers are the same.
fn backing_of(vault: &TestVault, rel: impl AsRef<Path>) -> PathBuf {
    let wanted = fs::symlink_metadata(vault.mount_path().join(rel.as_ref()))
        .unwrap()
        .ino();
    let mut stack = vec![vault.backing_path().to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.ino() == wanted {
                return entry.path();
            }
            if meta.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    panic!(
        "no backing entry with the inode of {}",
        rel.as_ref().display()
    );
}

fn sorted_backing_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Every path under `dir`, depth first, without following symlinks.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        out.push(path.clone());
        if fs::symlink_metadata(&path).unwrap().is_dir() {
            walk(&path, out);
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

// =====================================================================================
// Attributes
// =====================================================================================

#[test]
fn stat_chmod_chown() {
    let t = Pair::new();
    t.ok("write f", |r| write_file(r, "f", b"hello"));
    t.ok("mkdir d", |r| mkdir(r, "d"));
    t.ok("mkdir d/sub", |r| mkdir(r, "d/sub"));
    t.ok("write d/g", |r| write_file(r, "d/g", &pattern(5000, 1)));
    t.both("lstat f", |r| lstat(r, "f"));
    t.both("lstat d (nlink counts subdirectories)", |r| lstat(r, "d"));
    t.both("lstat d/g", |r| lstat(r, "d/g"));
    t.both("lstat missing", |r| lstat(r, "missing"));
    t.both("lstat through a file", |r| lstat(r, "f/x"));
    t.both("lstat missing/x", |r| lstat(r, "missing/x"));
    t.both("lstat root nlink", |r| lstat(r, "").map(|s| s.nlink));

    for mode in [0o600, 0o644, 0o755, 0o000, 0o4755, 0o2750, 0o1777, 0o7777] {
        t.ok(&format!("chmod f {mode:o}"), |r| {
            io_res(fs::set_permissions(
                p(r, "f"),
                fs::Permissions::from_mode(mode),
            ))
        });
        t.both(&format!("lstat f after chmod {mode:o}"), |r| lstat(r, "f"));
    }
    t.ok("chmod d 1777", |r| {
        io_res(fs::set_permissions(
            p(r, "d"),
            fs::Permissions::from_mode(0o1777),
        ))
    });
    t.both("lstat d after chmod", |r| lstat(r, "d"));
    t.both("chmod missing", |r| {
        io_res(fs::set_permissions(
            p(r, "nope"),
            fs::Permissions::from_mode(0o644),
        ))
    });

    // As root: any owner. chown clears setuid and setgid on both sides, and keeps the sticky bit.
    t.ok("chown f", |r| {
        io_res(std::os::unix::fs::chown(p(r, "f"), Some(1234), Some(5678)))
    });
    t.both("lstat f after chown", |r| lstat(r, "f"));
    t.ok("chown f uid only", |r| {
        io_res(std::os::unix::fs::chown(p(r, "f"), Some(4321), None))
    });
    t.both("lstat f after chown uid", |r| lstat(r, "f"));
    t.ok("chown f gid only", |r| {
        io_res(std::os::unix::fs::chown(p(r, "f"), None, Some(8765)))
    });
    t.both("lstat f after chown gid", |r| lstat(r, "f"));
    t.ok("chown d", |r| {
        io_res(std::os::unix::fs::chown(p(r, "d"), Some(1), Some(2)))
    });
    t.both("lstat d after chown", |r| lstat(r, "d"));
    t.ok("symlink l", |r| symlink(r, "f", "l"));
    t.ok("lchown l", |r| {
        io_res(std::os::unix::fs::lchown(p(r, "l"), Some(77), Some(88)))
    });
    t.both("lstat l after lchown", |r| lstat(r, "l"));
    t.both("stat f through l (not changed by lchown)", |r| stat(r, "l"));

    // A new file belongs to the caller (root), whatever the mount process is.
    t.ok("create n", |r| write_file(r, "d/n", b""));
    t.both("owner of a new file", |r| lstat(r, "d/n"));
    t.finish();
}

#[test]
fn utimensat_now_and_omit() {
    // No attribute cache: every lstat below reaches the daemon (no waiting out a TTL).
    let t = Pair::mounted_with(&["--cache-ttl", "0"]);
    t.ok("write f", |r| write_file(r, "f", b"data"));
    t.ok("mkdir d", |r| mkdir(r, "d"));
    t.ok("symlink l", |r| symlink(r, "f", "l"));

    let a = TimeSpec::new(1_000_000_000, 123_456_789);
    let m = TimeSpec::new(1_200_000_000, 987_654_321);
    for rel in ["f", "d", "l"] {
        t.ok(&format!("utimensat {rel} explicit"), |r| {
            utimens(r, rel, a, m)
        });
        t.both(&format!("times of {rel} after explicit"), |r| times(r, rel));
        // Omit atime, set mtime.
        let m2 = TimeSpec::new(1_300_000_000, 5);
        t.ok(&format!("utimensat {rel} omit/explicit"), |r| {
            utimens(r, rel, TimeSpec::UTIME_OMIT, m2)
        });
        t.both(&format!("times of {rel} after UTIME_OMIT atime"), |r| {
            times(r, rel)
        });
        // Set atime, omit mtime.
        let a2 = TimeSpec::new(900_000_000, 0);
        t.ok(&format!("utimensat {rel} explicit/omit"), |r| {
            utimens(r, rel, a2, TimeSpec::UTIME_OMIT)
        });
        t.both(&format!("times of {rel} after UTIME_OMIT mtime"), |r| {
            times(r, rel)
        });
        // Negative times (before 1970).
        let neg = TimeSpec::new(-1_000_000, 250_000_000);
        t.ok(&format!("utimensat {rel} pre-1970"), |r| {
            utimens(r, rel, neg, neg)
        });
        t.both(&format!("times of {rel} pre-1970"), |r| times(r, rel));
        // Both omitted: nothing changes.
        t.ok(&format!("utimensat {rel} omit/omit"), |r| {
            utimens(r, rel, TimeSpec::UTIME_OMIT, TimeSpec::UTIME_OMIT)
        });
        t.both(&format!("times of {rel} after omit/omit"), |r| {
            times(r, rel)
        });
    }

    // UTIME_NOW: close to the clock (cannot compare two roots to the nanosecond).
    for rel in ["f", "d", "l"] {
        let before = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let m = TimeSpec::new(1_100_000_000, 0);
        t.ok(&format!("utimensat {rel} now/explicit"), |r| {
            utimens(r, rel, TimeSpec::UTIME_NOW, m)
        });
        let after = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        match times(t.mnt(), rel) {
            Ok(((asec, _), mtime)) => {
                t.check((before - 1..=after + 1).contains(&asec), || {
                    format!("{rel}: atime {asec} after UTIME_NOW is not within [{before}, {after}]")
                });
                t.check(mtime == (1_100_000_000, 0), || {
                    format!("{rel}: mtime {mtime:?} after explicit")
                });
            }
            Err(e) => t.fail(format!("{rel}: lstat after UTIME_NOW: {e}")),
        }
        t.ok(&format!("utimensat {rel} omit/now"), |r| {
            utimens(r, rel, TimeSpec::UTIME_OMIT, TimeSpec::UTIME_NOW)
        });
        let after = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        match times(t.mnt(), rel) {
            Ok((_, (msec, _))) => t.check((before - 1..=after + 1).contains(&msec), || {
                format!("{rel}: mtime {msec} after UTIME_NOW is not within [{before}, {after}]")
            }),
            Err(e) => t.fail(format!("{rel}: lstat after UTIME_NOW: {e}")),
        }
    }
    t.both("utimensat missing", |r| {
        utimens(r, "missing", TimeSpec::UTIME_NOW, TimeSpec::UTIME_NOW)
    });

    // Looking at a symlink (in the daemon: no attribute cache) does not touch its times.
    t.ok("explicit times on l", |r| utimens(r, "l", a, m));
    t.both("lstat l through the daemon", |r| lstat(r, "l"));
    t.both("times of l after lstat", |r| times(r, "l"));

    // Writing updates mtime.
    t.ok("explicit old mtime", |r| utimens(r, "f", a, m));
    t.ok("write f", |r| pwrite(r, "f", 2, b"xx"));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    if let Ok((_, (msec, _))) = times(t.mnt(), "f") {
        t.check(msec >= now - 2, || {
            format!("mtime {msec} not updated by a write (now {now})")
        });
    }
    t.finish();
}

#[test]
fn truncate_down_and_up_mid_block() {
    let t = Pair::new();
    t.ok("write f", |r| write_file(r, "f", &pattern(4101, 3)));
    for size in [
        10, 9000, 4096, 4097, 0, 1, 8192, 8191, 12_345, 4095, 100_000, 5,
    ] {
        t.ok(&format!("truncate f to {size}"), |r| truncate(r, "f", size));
        t.both(&format!("stat f after truncate {size}"), |r| lstat(r, "f"));
        t.both(&format!("content after truncate {size}"), |r| {
            read_file(r, "f")
        });
    }
    // Through an open handle (ftruncate) interleaved with writes through the same handle.
    t.ok("write g", |r| write_file(r, "g", &pattern(4101, 4)));
    t.both("ftruncate sequence", |r| {
        let f = io_res(OpenOptions::new().read(true).write(true).open(p(r, "g")))?;
        io_res(f.set_len(10))?;
        io_res(f.write_all_at(b"abc", 4094))?;
        io_res(f.set_len(9000))?;
        io_res(f.write_all_at(b"tail", 8998))?;
        io_res(f.set_len(4096))?;
        let mut out = Vec::new();
        io_res((&f).read_to_end(&mut out))?;
        Ok((io_res(f.metadata())?.len(), out))
    });
    t.both("content g", |r| read_file(r, "g"));
    // truncate(2) by path.
    t.ok("write h", |r| write_file(r, "h", &pattern(20_000, 5)));
    t.ok("truncate(2) h", |r| nix::unistd::truncate(&p(r, "h"), 4101));
    t.both("content h", |r| read_file(r, "h"));
    t.both("truncate(2) a directory", |r| {
        nix::unistd::truncate(&p(r, ""), 0)
    });
    t.both("truncate(2) missing", |r| {
        nix::unistd::truncate(&p(r, "missing"), 0)
    });
    t.finish();
}

// =====================================================================================
// Directories
// =====================================================================================

#[test]
fn readdir_mkdir_rmdir_unlink() {
    let t = Pair::new();
    t.both("empty root", |r| list(r, ""));
    t.ok("mkdir a", |r| mkdir(r, "a"));
    t.both("mkdir a again", |r| mkdir(r, "a"));
    t.both("mkdir in missing", |r| mkdir(r, "missing/x"));
    t.ok("mkdir a/b", |r| mkdir(r, "a/b"));
    t.ok("write a/f", |r| write_file(r, "a/f", b"1"));
    t.ok("fifo a/p", |r| {
        mknod(
            &p(r, "a/p"),
            SFlag::S_IFIFO,
            Mode::from_bits_truncate(0o644),
            0,
        )
    });
    t.ok("symlink a/l", |r| symlink(r, "f", "a/l"));
    for i in 0..150 {
        t.ok("write many", |r| {
            write_file(r, format!("a/b/file{i:03}"), &[i as u8])
        });
    }
    t.both("list a", |r| list(r, "a"));
    t.both("list a/b (150 entries)", |r| list(r, "a/b"));
    t.both("list a file", |r| list(r, "a/f"));
    t.both("list missing", |r| list(r, "missing"));
    t.both("nlink of a", |r| lstat(r, "a").map(|s| s.nlink));

    // `..` and `.` through the mount.
    t.both("stat a/b/..", |r| stat(r, "a/b/..").map(|s| s.nlink));
    t.both("same inode a/b/.. and a", |r| {
        Ok(ino(r, "a/b/..")? == ino(r, "a")?)
    });

    t.both("rmdir non-empty", |r| rmdir(r, "a"));
    t.both("rmdir a file", |r| rmdir(r, "a/f"));
    t.both("rmdir a fifo", |r| rmdir(r, "a/p"));
    t.both("rmdir a symlink", |r| rmdir(r, "a/l"));
    t.both("rmdir missing", |r| rmdir(r, "a/zz"));
    t.both("rmdir through a file", |r| rmdir(r, "a/f/x"));
    t.both("unlink a directory", |r| unlink(r, "a/b"));
    t.both("unlink missing", |r| unlink(r, "a/zz"));
    t.ok("unlink fifo", |r| unlink(r, "a/p"));
    t.ok("unlink symlink", |r| unlink(r, "a/l"));
    t.both("f survives its symlink", |r| read_file(r, "a/f"));
    for i in 0..150 {
        t.ok("unlink many", |r| unlink(r, format!("a/b/file{i:03}")));
    }
    t.both("list emptied a/b", |r| list(r, "a/b"));
    t.ok("rmdir a/b", |r| rmdir(r, "a/b"));
    t.both("nlink of a after rmdir", |r| lstat(r, "a").map(|s| s.nlink));
    t.both("stat removed a/b", |r| lstat(r, "a/b"));
    t.both("list a", |r| list(r, "a"));
    t.ok("unlink a/f", |r| unlink(r, "a/f"));
    t.ok("rmdir a", |r| rmdir(r, "a"));
    t.both("list root at the end", |r| list(r, ""));
    t.check(
        sorted_backing_names(t.vault.backing_path()) == ["veilfs.conf", "veilfs.diriv"],
        || {
            format!(
                "backing root after deleting everything: {:?}",
                sorted_backing_names(t.vault.backing_path())
            )
        },
    );

    // A directory removed while a process is inside it.
    t.ok("mkdir c", |r| mkdir(r, "c"));
    t.both("rmdir an open directory, then list it", |r| {
        let dir = io_res(File::open(p(r, "c")))?;
        rmdir(r, "c")?;
        let created = write_file(r, "c/new", b"x");
        drop(dir);
        Ok(created)
    });
    t.finish();
}

#[test]
fn rename_cases() {
    let t = Pair::new();
    t.ok("mkdir a", |r| mkdir(r, "a"));
    t.ok("mkdir b", |r| mkdir(r, "b"));
    t.ok("write a/f", |r| write_file(r, "a/f", b"content of f"));
    t.ok("write b/g", |r| write_file(r, "b/g", b"content of g"));

    t.ok("rename across directories", |r| rename(r, "a/f", "b/f"));
    t.both("old name gone", |r| lstat(r, "a/f"));
    t.both("new name content", |r| read_file(r, "b/f"));
    t.ok("rename over an existing file", |r| rename(r, "b/f", "b/g"));
    t.both("replaced content", |r| read_file(r, "b/g"));
    t.both("list b", |r| list(r, "b"));
    t.ok("rename onto itself", |r| rename(r, "b/g", "b/g"));
    t.both("still there", |r| read_file(r, "b/g"));
    t.both("rename missing", |r| rename(r, "b/missing", "b/x"));
    t.both("rename into a missing directory", |r| {
        rename(r, "b/g", "zz/g")
    });

    // Directories.
    t.ok("mkdir a/empty", |r| mkdir(r, "a/empty"));
    t.ok("mkdir a/full", |r| mkdir(r, "a/full"));
    t.ok("write a/full/x", |r| write_file(r, "a/full/x", b"x"));
    t.ok("mkdir b/d", |r| mkdir(r, "b/d"));
    t.ok("write b/d/inner", |r| write_file(r, "b/d/inner", b"inner"));
    t.both("rename dir over a non-empty dir", |r| {
        rename(r, "b/d", "a/full")
    });
    t.both("rename file over a dir", |r| rename(r, "b/g", "a/empty"));
    t.both("rename dir over a file", |r| rename(r, "b/d", "b/g"));
    t.both("rename dir into its own subdirectory", |r| {
        rename(r, "b", "b/d/b")
    });
    t.ok("rename dir over an empty dir", |r| {
        rename(r, "b/d", "a/empty")
    });
    t.both("moved dir's child", |r| read_file(r, "a/empty/inner"));
    t.both("list a", |r| list(r, "a"));
    t.both("list b", |r| list(r, "b"));
    t.both("nlink a", |r| lstat(r, "a").map(|s| s.nlink));
    t.both("nlink b", |r| lstat(r, "b").map(|s| s.nlink));
    t.ok(
        "write a/empty/new (in a replaced-then-moved directory)",
        |r| write_file(r, "a/empty/new", b"n"),
    );
    t.both("list a/empty", |r| list(r, "a/empty"));

    // Rename a directory with a deep subtree, then use the subtree through the new path.
    t.ok("mkdir a/empty/s1", |r| mkdir(r, "a/empty/s1"));
    t.ok("mkdir a/empty/s1/s2", |r| mkdir(r, "a/empty/s1/s2"));
    t.ok("write deep", |r| {
        write_file(r, "a/empty/s1/s2/deep", b"deep")
    });
    t.ok("rename the subtree", |r| rename(r, "a/empty", "b/moved"));
    t.both("deep through the new path", |r| {
        read_file(r, "b/moved/s1/s2/deep")
    });
    t.both("deep through the old path", |r| {
        read_file(r, "a/empty/s1/s2/deep")
    });
    t.ok("write through the new path", |r| {
        write_file(r, "b/moved/s1/s2/new", b"new")
    });
    t.both("list deep", |r| list(r, "b/moved/s1/s2"));

    // renameat2 flags.
    t.ok("write b/x", |r| write_file(r, "b/x", b"xxxx"));
    t.ok("write b/y", |r| write_file(r, "b/y", b"yy"));
    t.both("RENAME_NOREPLACE over an existing file", |r| {
        rename2(r, "b/x", "b/y", RenameFlags::RENAME_NOREPLACE)
    });
    t.both("RENAME_NOREPLACE over a dir", |r| {
        rename2(r, "b/x", "b/moved", RenameFlags::RENAME_NOREPLACE)
    });
    t.ok("RENAME_NOREPLACE to a free name", |r| {
        rename2(r, "b/x", "b/z", RenameFlags::RENAME_NOREPLACE)
    });
    t.both("list b after NOREPLACE", |r| list(r, "b"));
    t.ok("RENAME_EXCHANGE two files", |r| {
        rename2(r, "b/z", "b/y", RenameFlags::RENAME_EXCHANGE)
    });
    t.both("exchanged y", |r| read_file(r, "b/y"));
    t.both("exchanged z", |r| read_file(r, "b/z"));
    t.ok("RENAME_EXCHANGE file and dir across directories", |r| {
        rename2(r, "b/y", "a/full", RenameFlags::RENAME_EXCHANGE)
    });
    t.both("a/full is now the file", |r| read_file(r, "a/full"));
    t.both("b/y is now the dir", |r| list(r, "b/y"));
    t.both("b/y/x content", |r| read_file(r, "b/y/x"));
    t.ok("write into exchanged dir", |r| {
        write_file(r, "b/y/x2", b"2")
    });
    t.both("list b/y", |r| list(r, "b/y"));
    t.both("nlink a after exchange", |r| lstat(r, "a").map(|s| s.nlink));
    t.both("nlink b after exchange", |r| lstat(r, "b").map(|s| s.nlink));
    t.both("RENAME_EXCHANGE with a missing target", |r| {
        rename2(r, "b/z", "b/missing", RenameFlags::RENAME_EXCHANGE)
    });
    t.both("RENAME_EXCHANGE|NOREPLACE", |r| {
        rename2(
            r,
            "b/z",
            "b/y",
            RenameFlags::RENAME_EXCHANGE | RenameFlags::RENAME_NOREPLACE,
        )
    });

    // Two names of one inode: rename(2) does nothing.
    t.ok("link b/z b/z2", |r| link(r, "b/z", "b/z2"));
    t.ok("rename a link onto its other name", |r| {
        rename(r, "b/z", "b/z2")
    });
    t.both("both names remain", |r| list(r, "b"));
    t.both("nlink", |r| lstat(r, "b/z").map(|s| s.nlink));

    // An open file survives the rename of its name and of its directory.
    t.both("write through a file renamed while open", |r| {
        let f = io_res(
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(p(r, "a/open")),
        )?;
        rename(r, "a/open", "b/renamed")?;
        rename(r, "b", "c")?;
        io_res(f.write_all_at(b"written after rename", 0))?;
        drop(f);
        read_file(r, "c/renamed")
    });
    t.both("final tree a", |r| list(r, "a"));
    t.both("final tree c", |r| list(r, "c"));
    t.finish();
}

// =====================================================================================
// Files: open flags, I/O, sync, allocation
// =====================================================================================

#[test]
fn open_flags() {
    let t = Pair::new();
    t.ok("write f", |r| write_file(r, "f", &pattern(9000, 1)));
    t.ok("O_TRUNC", |r| {
        io_res(
            OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(p(r, "f")),
        )
        .map(drop)
    });
    t.both("after O_TRUNC", |r| lstat(r, "f"));
    t.ok("write f", |r| write_file(r, "f", &pattern(9000, 1)));
    t.ok("O_RDONLY|O_TRUNC", |r| {
        io_res(
            OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_TRUNC)
                .open(p(r, "f")),
        )
        .map(drop)
    });
    t.both("after O_RDONLY|O_TRUNC", |r| read_file(r, "f"));
    t.ok("write f", |r| write_file(r, "f", b"start"));
    for chunk in [&b"-one"[..], &pattern(5000, 2)[..], b"-two"] {
        t.ok("O_APPEND write", |r| {
            let mut f = io_res(OpenOptions::new().append(true).open(p(r, "f")))?;
            io_res(f.write_all(chunk))
        });
    }
    t.both("content after appends", |r| read_file(r, "f"));
    t.both("O_APPEND ignores the seek position", |r| {
        let mut f = io_res(OpenOptions::new().read(true).append(true).open(p(r, "f")))?;
        io_res(f.seek(SeekFrom::Start(0)))?;
        io_res(f.write_all(b"END"))?;
        io_res(f.stream_position())
    });
    t.both("content after O_APPEND with seek", |r| read_file(r, "f"));
    t.both("O_APPEND|O_CREAT on a new file, twice", |r| {
        for _ in 0..2 {
            let mut f = io_res(
                OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(p(r, "new")),
            )?;
            io_res(f.write_all(b"line\n"))?;
        }
        read_file(r, "new")
    });
    t.both("O_CREAT|O_EXCL on an existing file", |r| {
        io_res(
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(p(r, "f")),
        )
        .map(drop)
    });
    t.both("O_CREAT|O_EXCL on a symlink", |r| {
        symlink(r, "nowhere", "dangling")?;
        io_res(
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(p(r, "dangling")),
        )
        .map(drop)
    });
    t.ok("O_CREAT|O_EXCL on a new name", |r| {
        io_res(
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o640)
                .open(p(r, "excl")),
        )
        .map(drop)
    });
    t.both("mode of excl", |r| lstat(r, "excl"));
    t.both("O_CREAT without O_EXCL on an existing file keeps it", |r| {
        io_res(
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(p(r, "f")),
        )?;
        read_file(r, "f")
    });
    t.both("open a missing file", |r| {
        io_res(File::open(p(r, "missing"))).map(drop)
    });
    t.both("open a directory for writing", |r| {
        io_res(OpenOptions::new().write(true).open(p(r, ""))).map(drop)
    });
    t.both("O_DIRECTORY on a file", |r| {
        io_res(
            OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_DIRECTORY)
                .open(p(r, "f")),
        )
        .map(drop)
    });
    t.both("O_NOFOLLOW on a symlink", |r| {
        symlink(r, "f", "lf")?;
        io_res(
            OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(p(r, "lf")),
        )
        .map(drop)
    });
    t.both("read through a write-only fd", |r| {
        let mut f = io_res(OpenOptions::new().write(true).open(p(r, "f")))?;
        let mut buf = [0; 4];
        io_res(f.read(&mut buf))
    });
    t.both("write through a read-only fd", |r| {
        let mut f = io_res(File::open(p(r, "f")))?;
        io_res(f.write(b"x"))
    });
    // Creation modes honour the umask-free mode given (the test process' umask applies alike).
    t.ok("create with mode 0o604", |r| {
        io_res(
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o604)
                .open(p(r, "m")),
        )
        .map(drop)
    });
    t.both("mode of m", |r| lstat(r, "m"));
    t.finish();
}

#[test]
fn read_write_at_offsets_and_holes() {
    let t = Pair::new();
    t.ok("create f", |r| write_file(r, "f", b""));
    let writes: &[(u64, usize)] = &[
        (0, 1),
        (1, 4094),
        (4095, 2),
        (4096, 4096),
        (8191, 1),
        (12_288 + 17, 5000),
        (3, 100_000),
        (1 << 20, 4096),
        ((1 << 20) + 4095, 3),
        (200_000, 1),
    ];
    for (i, &(offset, len)) in writes.iter().enumerate() {
        let data = pattern(len, i as u8 + 10);
        t.ok(&format!("pwrite {len} at {offset}"), |r| {
            pwrite(r, "f", offset, &data)
        });
        t.both(&format!("size after pwrite {len} at {offset}"), |r| {
            lstat(r, "f")
        });
    }
    t.both("whole content", |r| read_file(r, "f"));
    for (offset, len) in [
        (0, 10),
        (4090, 12),
        (4096, 1),
        (8000, 9000),
        (1 << 20, 10_000),
        ((1 << 20) + 4098, 100),
        (5 << 20, 10),
    ] {
        t.both(&format!("pread {len} at {offset}"), |r| {
            pread(r, "f", offset, len)
        });
    }

    // Writes past EOF leave holes that read as zeros.
    t.ok("write g", |r| write_file(r, "g", b"0123456789"));
    t.ok("pwrite past EOF", |r| pwrite(r, "g", 100_000, b"tail"));
    t.both("g size", |r| lstat(r, "g"));
    match pread(t.mnt(), "g", 10, 99_990) {
        Ok(hole) => t.check(hole.len() == 99_990 && hole.iter().all(|&b| b == 0), || {
            format!("hole of {} bytes is not all zeros", hole.len())
        }),
        Err(e) => t.fail(format!("reading the hole: {e}")),
    }
    t.both("g content", |r| read_file(r, "g"));
    // Then fill part of the hole mid-block.
    t.ok("write into the hole", |r| pwrite(r, "g", 50_001, b"middle"));
    t.both("g content after filling", |r| read_file(r, "g"));
    // A file that is one big hole.
    t.ok("sparse file", |r| {
        let f = io_res(File::create(p(r, "sparse")))?;
        io_res(f.set_len(3 << 20))
    });
    t.both("sparse content", |r| read_file(r, "sparse"));
    t.ok("write in the middle of the sparse file", |r| {
        pwrite(r, "sparse", (1 << 20) + 5, b"x")
    });
    t.both("sparse content after a write", |r| read_file(r, "sparse"));

    // Sequential reads and writes with odd buffer sizes through one fd.
    t.both("sequential odd-sized I/O", |r| {
        let mut f = io_res(
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(p(r, "seq")),
        )?;
        for i in 0..50 {
            io_res(f.write_all(&pattern(997 + i * 13, i as u8)))?;
        }
        io_res(f.seek(SeekFrom::Start(1234)))?;
        let mut buf = vec![0; 7777];
        io_res(f.read_exact(&mut buf))?;
        let end = io_res(f.seek(SeekFrom::End(0)))?;
        Ok((end, buf))
    });
    t.both("seq content", |r| read_file(r, "seq"));
    t.finish();
}

#[test]
fn unlinked_open_file_stays_usable() {
    let t = Pair::new();
    t.ok("write f", |r| write_file(r, "f", &pattern(10_000, 7)));
    let open = |r: &Path| {
        OpenOptions::new()
            .read(true)
            .write(true)
            .open(p(r, "f"))
            .unwrap()
    };
    let (fm, fp) = (open(t.mnt()), open(t.plain()));
    t.ok("unlink f", |r| unlink(r, "f"));
    let fd = |r: &Path| if r == t.mnt() { &fm } else { &fp };
    t.both("name gone", |r| lstat(r, "f"));
    t.both("pwrite after unlink", |r| {
        io_res(fd(r).write_all_at(b"after unlink", 4090))
    });
    t.both("fstat after unlink (size, nlink)", |r| {
        io_res(fd(r).metadata()).map(|m| (m.len(), m.nlink()))
    });
    t.both("ftruncate after unlink", |r| io_res(fd(r).set_len(5000)));
    t.both("fchmod after unlink", |r| {
        io_res(fd(r).set_permissions(fs::Permissions::from_mode(0o600)))
    });
    t.both("futimens after unlink", |r| {
        nix::sys::stat::futimens(fd(r), &TimeSpec::new(5, 0), &TimeSpec::new(6, 0))
    });
    t.both("fstat after all that", |r| {
        io_res(fd(r).metadata()).map(|m| st_of(&m))
    });
    t.both("pread after unlink", |r| {
        let mut buf = vec![0; 6000];
        let n = io_res(fd(r).read_at(&mut buf, 0))?;
        buf.truncate(n);
        Ok(buf)
    });
    drop((fm, fp));
    t.both("list root", |r| list(r, ""));
    t.finish();
}

#[test]
fn fsync_and_fsyncdir() {
    let t = Pair::new();
    t.ok("mkdir d", |r| mkdir(r, "d"));
    t.ok("fsync a file", |r| {
        let mut f = io_res(File::create(p(r, "d/f")))?;
        io_res(f.write_all(b"synced"))?;
        io_res(f.sync_all())?;
        io_res(f.sync_data())
    });
    t.ok("fsync a read-only fd", |r| {
        io_res(File::open(p(r, "d/f")).and_then(|f| f.sync_all()))
    });
    t.ok("fsyncdir", |r| {
        io_res(File::open(p(r, "d")).and_then(|f| f.sync_all()))
    });
    t.ok("fdatasync a dir", |r| {
        io_res(File::open(p(r, "d")).and_then(|f| f.sync_data()))
    });
    t.ok("fsyncdir root", |r| {
        io_res(File::open(p(r, "")).and_then(|f| f.sync_all()))
    });
    t.both("content", |r| read_file(r, "d/f"));
    t.finish();
}

#[test]
fn fallocate_extends_with_zeros() {
    let t = Pair::new();
    t.ok("write f", |r| write_file(r, "f", &pattern(50, 1)));
    let falloc = |r: &Path, flags: FallocateFlags, offset: i64, len: i64| {
        let f = io_res(OpenOptions::new().read(true).write(true).open(p(r, "f")))?;
        nix::fcntl::fallocate(&f, flags, offset, len)
    };
    t.ok("fallocate mode 0 past EOF", |r| {
        falloc(r, FallocateFlags::empty(), 100, 10_000)
    });
    t.both("size after fallocate", |r| lstat(r, "f"));
    t.both("content after fallocate", |r| read_file(r, "f"));
    t.ok("fallocate inside the file", |r| {
        falloc(r, FallocateFlags::empty(), 10, 20)
    });
    t.both("content after fallocate inside", |r| read_file(r, "f"));
    t.ok("fallocate KEEP_SIZE past EOF", |r| {
        falloc(r, FallocateFlags::FALLOC_FL_KEEP_SIZE, 20_000, 5000)
    });
    t.both("size after KEEP_SIZE", |r| lstat(r, "f"));
    t.ok("write after KEEP_SIZE", |r| pwrite(r, "f", 10_100, b"more"));
    t.both("content after a write following KEEP_SIZE", |r| {
        read_file(r, "f")
    });
    t.ok("fallocate mode 0 mid-block past EOF", |r| {
        falloc(r, FallocateFlags::empty(), 12_000, 1)
    });
    t.both("content after mid-block fallocate", |r| read_file(r, "f"));
    t.both("fallocate len 0", |r| {
        falloc(r, FallocateFlags::empty(), 0, 0)
    });
    t.both("fallocate on a read-only fd", |r| {
        let f = io_res(File::open(p(r, "f")))?;
        nix::fcntl::fallocate(&f, FallocateFlags::empty(), 0, 10)
    });
    t.finish();
}

#[test]
fn access_checks() {
    let t = Pair::new();
    t.ok("write f", |r| write_file(r, "f", b"x"));
    t.ok("mkdir d", |r| mkdir(r, "d"));
    let flags = [
        ("F_OK", AccessFlags::F_OK),
        ("R_OK", AccessFlags::R_OK),
        ("W_OK", AccessFlags::W_OK),
        ("X_OK", AccessFlags::X_OK),
        (
            "R_OK|W_OK|X_OK",
            AccessFlags::R_OK | AccessFlags::W_OK | AccessFlags::X_OK,
        ),
    ];
    for mode in [0o644, 0o000, 0o100, 0o001, 0o755, 0o600] {
        t.ok(&format!("chmod f {mode:o}"), |r| {
            io_res(fs::set_permissions(
                p(r, "f"),
                fs::Permissions::from_mode(mode),
            ))
        });
        t.ok(&format!("chmod d {mode:o}"), |r| {
            io_res(fs::set_permissions(
                p(r, "d"),
                fs::Permissions::from_mode(mode),
            ))
        });
        for (name, flag) in flags {
            t.both(&format!("access(f mode {mode:o}, {name})"), |r| {
                nix::unistd::access(&p(r, "f"), flag)
            });
            t.both(&format!("access(d mode {mode:o}, {name})"), |r| {
                nix::unistd::access(&p(r, "d"), flag)
            });
        }
    }
    t.both("access missing", |r| {
        nix::unistd::access(&p(r, "missing"), AccessFlags::F_OK)
    });
    t.finish();
}

// =====================================================================================
// Symlinks, hard links, special files
// =====================================================================================

#[test]
fn symlinks() {
    let t = Pair::new();
    t.ok("mkdir d", |r| mkdir(r, "d"));
    t.ok("write d/f", |r| write_file(r, "d/f", b"target content"));
    let long_target: String = (0..1000)
        .map(|i| {
            if i % 50 == 49 {
                '/'
            } else {
                (b'a' + (i % 26) as u8) as char
            }
        })
        .collect();
    let longest_posix: String = "t".repeat(3000);
    let targets: Vec<(&str, String)> = vec![
        ("rel", "f".into()),
        ("up", "../d/f".into()),
        ("abs", "/etc/hostname-veilfs-nonexistent".into()),
        ("dotdot", "..".into()),
        ("unicode", "ziel/ünïcödé ☃".into()),
        ("spaces", "a target with spaces\nand a newline".into()),
        ("long", long_target),
        ("longer", longest_posix),
    ];
    for (name, target) in &targets {
        let rel = format!("d/{name}");
        t.ok(&format!("symlink {name}"), |r| symlink(r, target, &rel));
        t.both(&format!("readlink {name}"), |r| readlink(r, &rel));
        t.both(&format!("lstat {name} (size = target length)"), |r| {
            lstat(r, &rel)
        });
    }
    t.both("follow a relative link", |r| read_file(r, "d/rel"));
    t.both("follow a ../ link", |r| read_file(r, "d/up"));
    t.both("stat a dangling link", |r| stat(r, "d/abs"));
    t.both("readlink of a file", |r| readlink(r, "d/f"));
    t.both("readlink of a dir", |r| readlink(r, "d"));
    t.both("symlink over an existing name", |r| symlink(r, "x", "d/f"));
    t.both("empty symlink target", |r| symlink(r, "", "d/empty"));
    t.both("list d", |r| list(r, "d"));
    t.ok("rename a symlink", |r| rename(r, "d/long", "long-moved"));
    t.both("readlink after rename", |r| readlink(r, "long-moved"));
    t.ok("hard link to a symlink", |r| {
        nix::unistd::linkat(
            AT_FDCWD,
            &p(r, "d/rel"),
            AT_FDCWD,
            &p(r, "d/rel2"),
            nix::fcntl::AtFlags::empty(),
        )
    });
    t.both("readlink via the second name", |r| readlink(r, "d/rel2"));
    t.both("nlink of a linked symlink", |r| lstat(r, "d/rel"));
    t.both("symlink loop", |r| {
        symlink(r, "loop2", "loop1")?;
        symlink(r, "loop1", "loop2")?;
        read_file(r, "loop1")
    });
    t.both("a symlinked directory", |r| {
        symlink(r, "d", "dlink")?;
        list(r, "dlink")
    });
    t.both("create through a symlinked directory", |r| {
        write_file(r, "dlink/via", b"via")?;
        read_file(r, "d/via")
    });
    for (name, _) in &targets {
        t.ok(&format!("unlink symlink {name}"), |r| {
            let rel = if *name == "long" {
                "long-moved".to_string()
            } else {
                format!("d/{name}")
            };
            unlink(r, rel)
        });
    }
    t.both("d/f survives", |r| read_file(r, "d/f"));
    t.finish();
}

#[test]
fn hard_links() {
    let t = Pair::new();
    t.ok("mkdir a", |r| mkdir(r, "a"));
    t.ok("mkdir b", |r| mkdir(r, "b"));
    t.ok("write a/f", |r| write_file(r, "a/f", &pattern(6000, 9)));
    t.ok("link a/f b/g", |r| link(r, "a/f", "b/g"));
    t.both("nlink via f", |r| lstat(r, "a/f"));
    t.both("nlink via g", |r| lstat(r, "b/g"));
    t.both(
        "same inode number",
        |r| Ok(ino(r, "a/f")? == ino(r, "b/g")?),
    );
    t.both("content via g", |r| read_file(r, "b/g"));
    t.ok("write via g", |r| pwrite(r, "b/g", 4094, b"shared write"));
    t.both("visible via f", |r| read_file(r, "a/f"));
    t.both("size via f", |r| lstat(r, "a/f"));
    t.ok("truncate via f", |r| truncate(r, "a/f", 4100));
    t.both("size via g after truncate via f", |r| lstat(r, "b/g"));
    t.ok("chmod via f", |r| {
        io_res(fs::set_permissions(
            p(r, "a/f"),
            fs::Permissions::from_mode(0o600),
        ))
    });
    t.both("mode via g", |r| lstat(r, "b/g"));
    // Open handles on both names at once.
    t.both("interleaved writes through both names", |r| {
        let f = io_res(OpenOptions::new().read(true).write(true).open(p(r, "a/f")))?;
        let g = io_res(OpenOptions::new().read(true).write(true).open(p(r, "b/g")))?;
        io_res(f.write_all_at(b"F-F-F", 10))?;
        io_res(g.write_all_at(b"G-G-G", 12))?;
        io_res(f.write_all_at(b"tail via f", 8190))?;
        let mut buf = vec![0; 9000];
        let n = io_res(g.read_at(&mut buf, 0))?;
        buf.truncate(n);
        Ok(buf)
    });
    t.ok("third link", |r| link(r, "b/g", "a/h"));
    t.both("nlink 3", |r| lstat(r, "a/h"));
    t.both("link over an existing name", |r| link(r, "a/f", "b/g"));
    t.both("link of a missing file", |r| link(r, "a/missing", "a/x"));
    t.both("link of a directory", |r| link(r, "a", "b/a"));
    t.both("link into a missing directory", |r| link(r, "a/f", "zz/f"));
    t.ok("unlink a/f", |r| unlink(r, "a/f"));
    t.both("g keeps the content", |r| read_file(r, "b/g"));
    t.both("nlink after unlink", |r| lstat(r, "b/g"));
    t.ok("rename one link", |r| rename(r, "a/h", "b/h"));
    t.both("nlink after rename", |r| lstat(r, "b/h"));
    t.both("same inode after rename", |r| {
        Ok(ino(r, "b/h")? == ino(r, "b/g")?)
    });
    t.ok("unlink b/g", |r| unlink(r, "b/g"));
    t.both("last name", |r| read_file(r, "b/h"));
    t.both("nlink 1", |r| lstat(r, "b/h"));
    t.both("list a", |r| list(r, "a"));
    t.both("list b", |r| list(r, "b"));
    t.finish();
}

#[test]
fn fifos_and_sockets() {
    let t = Pair::new();
    t.ok("mknod fifo", |r| {
        mknod(
            &p(r, "fifo"),
            SFlag::S_IFIFO,
            Mode::from_bits_truncate(0o640),
            0,
        )
    });
    t.ok("mknod socket", |r| {
        mknod(
            &p(r, "sock"),
            SFlag::S_IFSOCK,
            Mode::from_bits_truncate(0o600),
            0,
        )
    });
    t.ok("mknod regular", |r| {
        mknod(
            &p(r, "reg"),
            SFlag::S_IFREG,
            Mode::from_bits_truncate(0o600),
            0,
        )
    });
    t.ok("mkfifo", |r| {
        nix::unistd::mkfifo(&p(r, "fifo2"), Mode::from_bits_truncate(0o600))
    });
    for name in ["fifo", "sock", "reg", "fifo2"] {
        t.both(&format!("lstat {name}"), |r| lstat(r, name));
    }
    t.both("mknod over an existing name", |r| {
        mknod(
            &p(r, "fifo"),
            SFlag::S_IFIFO,
            Mode::from_bits_truncate(0o600),
            0,
        )
    });
    t.both("list", |r| list(r, ""));
    // A fifo in the mount works as a fifo.
    let fifo = t.mnt().join("fifo");
    let writer = std::thread::spawn(move || fs::write(fifo, b"through the fifo"));
    let got = fs::read(t.mnt().join("fifo"));
    let written = writer.join().unwrap();
    t.check(
        matches!(&got, Ok(b) if b == b"through the fifo") && written.is_ok(),
        || format!("fifo round trip: read {got:?}, write {written:?}"),
    );
    // A unix socket bound in the mount.
    t.ok("bind a unix socket", |r| {
        let listener = io_res(std::os::unix::net::UnixListener::bind(p(r, "bound")))?;
        drop(listener);
        lstat(r, "bound")
    });
    t.ok("rename a fifo", |r| rename(r, "fifo", "fifo-moved"));
    t.both("lstat moved fifo", |r| lstat(r, "fifo-moved"));
    t.ok("link a fifo", |r| link(r, "fifo-moved", "fifo-link"));
    t.both("nlink of a linked fifo", |r| lstat(r, "fifo-link"));
    for name in ["fifo-moved", "fifo-link", "sock", "reg", "fifo2", "bound"] {
        t.ok(&format!("unlink {name}"), |r| unlink(r, name));
    }
    t.both("list at the end", |r| list(r, ""));
    t.finish();
}

#[test]
fn statfs_reports_sane_values() {
    let vault = TestVault::new();
    let s = nix::sys::statvfs::statvfs(vault.mount_path()).expect("statvfs of the mount");
    assert_eq!(s.name_max(), 255, "f_namemax");
    assert!(s.blocks() > 0, "f_blocks is 0");
    assert!(s.block_size() > 0, "f_bsize is 0");
    assert!(
        s.blocks_free() <= s.blocks() && s.blocks_available() <= s.blocks(),
        "free > total"
    );
    assert!(s.files() > 0, "f_files is 0");
    let backing = nix::sys::statvfs::statvfs(vault.backing_path()).unwrap();
    assert_eq!(
        s.blocks() as u128 * s.fragment_size() as u128,
        backing.blocks() as u128 * backing.fragment_size() as u128,
        "total size differs from the backing filesystem's"
    );
    // statfs(2) too (df uses it).
    let s2 = nix::sys::statfs::statfs(vault.mount_path()).expect("statfs of the mount");
    assert_eq!(s2.maximum_name_length(), 255);
}

#[test]
fn user_xattrs() {
    let t = Pair::new();
    t.ok("write f", |r| write_file(r, "f", b"x"));
    t.ok("mkdir d", |r| mkdir(r, "d"));
    t.ok("symlink l", |r| symlink(r, "f", "l"));
    for rel in ["f", "d"] {
        t.both(&format!("{rel}: list empty"), |r| listxattr(r, rel));
        t.ok(&format!("{rel}: set user.one"), |r| {
            setxattr(r, rel, "user.one", b"value one", 0)
        });
        t.ok(&format!("{rel}: set user.empty"), |r| {
            setxattr(r, rel, "user.empty", b"", 0)
        });
        t.ok(&format!("{rel}: set a binary value"), |r| {
            setxattr(r, rel, "user.bin", &[0, 1, 2, 255, 0], 0)
        });
        t.ok(&format!("{rel}: set a 1000-byte value"), |r| {
            setxattr(r, rel, "user.big", &pattern(1000, 3), 0)
        });
        t.ok(&format!("{rel}: set a unicode name"), |r| {
            setxattr(r, rel, "user.ünï cødé", b"u", 0)
        });
        t.both(&format!("{rel}: get user.one"), |r| {
            getxattr(r, rel, "user.one")
        });
        t.both(&format!("{rel}: get user.empty"), |r| {
            getxattr(r, rel, "user.empty")
        });
        t.both(&format!("{rel}: get user.bin"), |r| {
            getxattr(r, rel, "user.bin")
        });
        t.both(&format!("{rel}: get user.big"), |r| {
            getxattr(r, rel, "user.big")
        });
        t.both(&format!("{rel}: get unicode"), |r| {
            getxattr(r, rel, "user.ünï cødé")
        });
        t.both(&format!("{rel}: size of user.big"), |r| {
            getxattr_sized(r, rel, "user.big", 0)
        });
        t.both(&format!("{rel}: too small a buffer"), |r| {
            getxattr_sized(r, rel, "user.big", 10)
        });
        t.both(&format!("{rel}: list"), |r| listxattr(r, rel));
        t.both(&format!("{rel}: get missing"), |r| {
            getxattr(r, rel, "user.missing")
        });
        t.both(&format!("{rel}: XATTR_CREATE on an existing name"), |r| {
            setxattr(r, rel, "user.one", b"new", libc::XATTR_CREATE)
        });
        t.both(&format!("{rel}: XATTR_REPLACE on a missing name"), |r| {
            setxattr(r, rel, "user.missing", b"new", libc::XATTR_REPLACE)
        });
        t.ok(&format!("{rel}: XATTR_REPLACE"), |r| {
            setxattr(r, rel, "user.one", b"replaced", libc::XATTR_REPLACE)
        });
        t.both(&format!("{rel}: get replaced"), |r| {
            getxattr(r, rel, "user.one")
        });
        t.ok(&format!("{rel}: overwrite"), |r| {
            setxattr(r, rel, "user.one", b"overwritten, longer", 0)
        });
        t.both(&format!("{rel}: get overwritten"), |r| {
            getxattr(r, rel, "user.one")
        });
        t.ok(&format!("{rel}: remove"), |r| {
            removexattr(r, rel, "user.one")
        });
        t.both(&format!("{rel}: remove missing"), |r| {
            removexattr(r, rel, "user.one")
        });
        t.both(&format!("{rel}: get removed"), |r| {
            getxattr(r, rel, "user.one")
        });
        t.both(&format!("{rel}: list after remove"), |r| listxattr(r, rel));
    }
    // user.* on a symlink is refused by Linux (EPERM).
    t.both("set user.* on a symlink", |r| {
        setxattr(r, "l", "user.x", b"1", 0)
    });
    t.both("get user.* of a missing file", |r| {
        getxattr(r, "missing", "user.x")
    });
    t.both("get user.* through a symlink (follows)", |r| {
        io_res(xattr_follow(&p(r, "l"), "user.empty"))
    });
    // Xattrs follow the inode across rename and link.
    t.ok("rename f", |r| rename(r, "f", "f2"));
    t.both("xattr after rename", |r| getxattr(r, "f2", "user.bin"));
    t.ok("link f2", |r| link(r, "f2", "f3"));
    t.both("xattr via a hard link", |r| getxattr(r, "f3", "user.big"));

    // Namespaces other than user.* are refused on the mount.
    for name in ["trusted.foo", "security.foo", "system.foo"] {
        let got = setxattr(t.mnt(), "f2", name, b"v", 0);
        t.check(got == Err(Errno::EOPNOTSUPP), || {
            format!("setxattr {name}: expected EOPNOTSUPP, got {got:?}")
        });
    }
    // Reading them says "not supported" too, which `ls -l` and `cp -a` remember per device.
    for name in [
        "trusted.foo",
        "security.selinux",
        "security.capability",
        "system.posix_acl_access",
        "system.posix_acl_default",
    ] {
        for rel in ["f2", "."] {
            let got = getxattr(t.mnt(), rel, name);
            t.check(got == Err(Errno::EOPNOTSUPP), || {
                format!("getxattr {rel} {name}: expected EOPNOTSUPP, got {got:?}")
            });
        }
    }
    t.finish();
}

/// `getxattr(2)` (following symlinks), for one check.
fn xattr_follow(path: &Path, name: &str) -> io::Result<Vec<u8>> {
    let (path, name) = (cpath(path), cname(name));
    let mut buf = vec![0u8; 4096];
    // SAFETY: NUL-terminated strings; `buf` valid for its length.
    let ret = unsafe {
        libc::getxattr(
            path.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(ret as usize);
    Ok(buf)
}

// =====================================================================================
// Names
// =====================================================================================

/// A name of `len` bytes that differs from other lengths' names in its first byte.
fn name_of_len(len: usize, tag: u8) -> OsString {
    let mut bytes = vec![b'a' + tag % 26];
    bytes.extend((1..len).map(|i| b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJ_-."[i % 49]));
    OsString::from_vec(bytes)
}

#[test]
fn long_and_short_names_in_every_operation() {
    let t = Pair::new();
    t.ok("mkdir n", |r| mkdir(r, "n"));
    t.ok("mkdir m", |r| mkdir(r, "m"));
    let lengths = [1usize, 143, 144, 175, 176, 220, 255];
    for (i, &len) in lengths.iter().enumerate() {
        let name = Path::new("n").join(name_of_len(len, i as u8));
        let other = Path::new("m").join(name_of_len(len, i as u8 + 7));
        let short = Path::new("n").join("short");
        let what = |op: &str| format!("{op} ({len}-byte name)");
        t.ok(&what("create"), |r| {
            write_file(r, &name, &pattern(100 + len, i as u8))
        });
        t.both(&what("stat"), |r| lstat(r, &name));
        t.both(&what("read"), |r| read_file(r, &name));
        t.both(&what("readdir"), |r| list(r, "n"));
        t.both(&what("create again with O_EXCL"), |r| {
            io_res(
                OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(p(r, &name)),
            )
            .map(drop)
        });
        t.ok(&what("rename long -> short"), |r| rename(r, &name, &short));
        t.both(&what("readdir after rename to short"), |r| list(r, "n"));
        t.ok(&what("rename short -> long"), |r| rename(r, &short, &name));
        t.ok(&what("rename across directories, long -> long"), |r| {
            rename(r, &name, &other)
        });
        t.both(&what("readdir m"), |r| list(r, "m"));
        t.ok(&what("rename back"), |r| rename(r, &other, &name));
        t.ok(&what("create short"), |r| write_file(r, &short, b"short"));
        t.ok(&what("rename short over long"), |r| {
            rename(r, &short, &name)
        });
        t.both(&what("content after rename over"), |r| read_file(r, &name));
        t.ok(&what("create short again"), |r| {
            write_file(r, &short, b"short 2")
        });
        t.ok(&what("rename long over short"), |r| {
            rename(r, &name, &short)
        });
        t.ok(&what("rename it back"), |r| rename(r, &short, &name));
        t.ok(&what("link"), |r| link(r, &name, &other));
        t.both(&what("nlink"), |r| lstat(r, &other));
        t.ok(&what("RENAME_EXCHANGE"), |r| {
            write_file(r, &short, b"exchange")?;
            rename2(r, &short, &name, RenameFlags::RENAME_EXCHANGE)
        });
        t.both(&what("content after exchange"), |r| read_file(r, &name));
        t.ok(&what("unlink exchanged"), |r| unlink(r, &name));
        t.ok(&what("unlink short"), |r| unlink(r, &short));
        t.ok(&what("unlink link"), |r| unlink(r, &other));
        t.ok(&what("symlink"), |r| symlink(r, name_of_len(len, 3), &name));
        t.both(&what("readlink"), |r| readlink(r, &name));
        t.ok(&what("unlink symlink"), |r| unlink(r, &name));
        t.ok(&what("mkdir"), |r| mkdir(r, &name));
        t.ok(&what("create inside"), |r| {
            write_file(r, name.join(name_of_len(len, 5)), b"inner")
        });
        t.both(&what("readdir inside"), |r| list(r, &name));
        t.both(&what("rmdir non-empty"), |r| rmdir(r, &name));
        t.ok(&what("rename dir"), |r| rename(r, &name, &other));
        t.both(&what("read inside moved dir"), |r| {
            read_file(r, other.join(name_of_len(len, 5)))
        });
        t.ok(&what("unlink inside"), |r| {
            unlink(r, other.join(name_of_len(len, 5)))
        });
        t.ok(&what("rmdir"), |r| rmdir(r, &other));
        t.ok(&what("mknod fifo"), |r| {
            mknod(
                &p(r, &name),
                SFlag::S_IFIFO,
                Mode::from_bits_truncate(0o600),
                0,
            )
        });
        t.both(&what("lstat fifo"), |r| lstat(r, &name));
        t.ok(&what("unlink fifo"), |r| unlink(r, &name));
        t.both(&what("readdir n empty"), |r| list(r, "n"));
        t.both(&what("readdir m empty"), |r| list(r, "m"));
        for dir in ["n", "m"] {
            let backing = backing_of(&t.vault, dir);
            let left = sorted_backing_names(&backing);
            t.check(left == ["veilfs.diriv"], || {
                format!("{len}-byte names: backing dir of {dir} after deleting everything holds {left:?}")
            });
        }
    }
    // All lengths side by side in one directory.
    for (i, &len) in lengths.iter().enumerate() {
        t.ok("create side by side", |r| {
            write_file(
                r,
                Path::new("n").join(name_of_len(len, i as u8)),
                &[i as u8],
            )
        });
    }
    t.both("readdir of all lengths", |r| list(r, "n"));
    for (i, &len) in lengths.iter().enumerate() {
        t.both("stat side by side", |r| {
            lstat(r, Path::new("n").join(name_of_len(len, i as u8)))
        });
        t.ok("unlink side by side", |r| {
            unlink(r, Path::new("n").join(name_of_len(len, i as u8)))
        });
    }
    let left = sorted_backing_names(&backing_of(&t.vault, "n"));
    t.check(left == ["veilfs.diriv"], || {
        format!("backing dir of n at the end holds {left:?}")
    });

    // 256 bytes: too long everywhere.
    let too_long = Path::new("n").join(name_of_len(256, 0));
    t.ok("write n/f", |r| write_file(r, "n/f", b"f"));
    t.both("create 256", |r| write_file(r, &too_long, b"x"));
    t.both("stat 256", |r| lstat(r, &too_long));
    t.both("mkdir 256", |r| mkdir(r, &too_long));
    t.both("symlink 256", |r| symlink(r, "f", &too_long));
    t.both("link 256", |r| link(r, "n/f", &too_long));
    t.both("rename to 256", |r| rename(r, "n/f", &too_long));
    t.both("mknod 256", |r| {
        mknod(
            &p(r, &too_long),
            SFlag::S_IFIFO,
            Mode::from_bits_truncate(0o600),
            0,
        )
    });
    t.both("unlink 256", |r| unlink(r, &too_long));
    t.both("readdir after 256", |r| list(r, "n"));
    t.finish();
}

#[test]
fn unusual_characters_in_names() {
    let t = Pair::new();
    t.ok("mkdir d", |r| mkdir(r, "d"));
    let names: Vec<OsString> = [
        &b"with space"[..],
        b" leading space",
        b"trailing space ",
        "üñíçødé ☃ ñame".as_bytes(),
        "日本語のファイル名".as_bytes(),
        b"line\nbreak",
        b"tab\there",
        b"\n",
        b"-dash",
        b"#hash%percent&amp;",
        b"...",
        b".hidden",
        b"back\\slash",
        b"quote\"'`",
        b"\xff\xfe not utf-8 \x80",
        b"\x01\x02\x7f",
        b"veilfs.diriv",
        b"veilfs.conf",
        b"veilfs.longname.abc",
        b"CaSe",
        b"case",
        "🦀".repeat(62).as_bytes(),
    ]
    .iter()
    .map(|b| OsString::from_vec(b.to_vec()))
    .collect();
    for (i, name) in names.iter().enumerate() {
        let path = Path::new("d").join(name);
        let what = |op: &str| format!("{op} {name:?}");
        t.ok(&what("create"), |r| {
            write_file(r, &path, &pattern(10 + i, i as u8))
        });
        t.both(&what("stat"), |r| lstat(r, &path));
        t.both(&what("read"), |r| read_file(r, &path));
    }
    t.both("readdir", |r| list(r, "d"));
    for name in &names {
        let path = Path::new("d").join(name);
        let mut renamed = name.clone();
        renamed.push(" (2)");
        let renamed = Path::new("d").join(renamed);
        t.ok(&format!("rename {name:?}"), |r| rename(r, &path, &renamed));
        t.ok(&format!("link {name:?}"), |r| link(r, &renamed, &path));
        t.ok(&format!("mkdir-in-dir {name:?}"), |r| {
            mkdir(r, Path::new("d").join("sub").join(name)).or_else(|_| {
                mkdir(r, Path::new("d").join("sub"))?;
                mkdir(r, Path::new("d").join("sub").join(name))
            })
        });
        t.ok(&format!("symlink {name:?}"), |r| {
            symlink(r, name, Path::new("d").join("sub").join(name).join("link"))
        });
        t.both(&format!("readlink {name:?}"), |r| {
            readlink(r, Path::new("d").join("sub").join(name).join("link"))
        });
    }
    t.both("readdir after renames", |r| list(r, "d"));
    t.both("readdir sub", |r| list(r, "d/sub"));
    for name in &names {
        let mut renamed = name.clone();
        renamed.push(" (2)");
        t.ok("unlink", |r| unlink(r, Path::new("d").join(name)));
        t.ok("unlink renamed", |r| {
            unlink(r, Path::new("d").join(&renamed))
        });
        t.ok("unlink link", |r| {
            unlink(r, Path::new("d").join("sub").join(name).join("link"))
        });
        t.ok("rmdir", |r| rmdir(r, Path::new("d").join("sub").join(name)));
    }
    t.ok("rmdir sub", |r| rmdir(r, "d/sub"));
    t.both("readdir at the end", |r| list(r, "d"));
    let left = sorted_backing_names(&backing_of(&t.vault, "d"));
    t.check(left == ["veilfs.diriv"], || {
        format!("backing dir of d at the end holds {left:?}")
    });
    t.finish();
}

// =====================================================================================
// Confidentiality, persistence, and changes underneath
// =====================================================================================

#[test]
fn backing_dir_holds_no_plaintext() {
    let vault = TestVault::new();
    let mnt = vault.mount_path();
    let marker = "Zq7MARKERplainXw";
    let long_name = format!("{marker}-long-{}", "L".repeat(200));
    fs::create_dir(mnt.join(format!("dir-{marker}"))).unwrap();
    let content = format!("{marker} file content {marker}\n").repeat(500);
    fs::write(
        mnt.join(format!("dir-{marker}/file-{marker}.txt")),
        &content,
    )
    .unwrap();
    fs::write(mnt.join(format!("dir-{marker}/{long_name}")), &content).unwrap();
    // Content that repeats within and across blocks (an ECB-like leak would show it).
    fs::write(mnt.join("blocks"), marker.repeat(4096)).unwrap();
    // Small and unaligned writes.
    let small = mnt.join(format!("small-{marker}"));
    fs::write(&small, marker).unwrap();
    let f = OpenOptions::new().write(true).open(&small).unwrap();
    f.write_all_at(marker.as_bytes(), 4090).unwrap();
    drop(f);
    std::os::unix::fs::symlink(
        format!("/target/{marker}/x"),
        mnt.join(format!("link-{marker}")),
    )
    .unwrap();
    std::os::unix::fs::symlink(format!("rel-{marker}"), mnt.join("link2")).unwrap();
    setxattr(
        mnt,
        "blocks",
        &format!("user.{marker}"),
        format!("value-{marker}").as_bytes(),
        0,
    )
    .unwrap();
    setxattr(
        mnt,
        format!("dir-{marker}"),
        "user.plain",
        format!("value-{marker}").as_bytes(),
        0,
    )
    .unwrap();
    mkdir(mnt, format!("dir-{marker}/{long_name}-dir")).unwrap();
    nix::unistd::mkfifo(
        &mnt.join(format!("fifo-{marker}")),
        Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    fs::rename(mnt.join("blocks"), mnt.join(format!("renamed-{marker}"))).unwrap();

    let needles = [
        marker.as_bytes().to_vec(),
        marker.to_lowercase().into_bytes(),
        b"MARKERplain".to_vec(),
    ];
    let mut leaks = Vec::new();
    let mut paths = Vec::new();
    walk(vault.backing_path(), &mut paths);
    assert!(
        paths.len() >= 10,
        "backing dir has only {} entries",
        paths.len()
    );
    for path in &paths {
        let name = path.file_name().unwrap().as_bytes().to_vec();
        let meta = fs::symlink_metadata(path).unwrap();
        let mut blobs = vec![("name", name)];
        if meta.is_file() {
            blobs.push(("content", fs::read(path).unwrap()));
        }
        if meta.file_type().is_symlink() {
            blobs.push((
                "symlink target",
                fs::read_link(path).unwrap().into_os_string().into_vec(),
            ));
        }
        if !meta.file_type().is_symlink() && !meta.file_type().is_fifo() {
            let backing_root = Path::new("/");
            for xname in listxattr_all(path) {
                let value = getxattr(backing_root, path, &xname).unwrap_or_default();
                blobs.push(("xattr name", xname.into_bytes()));
                blobs.push(("xattr value", value));
            }
        }
        for (what, blob) in blobs {
            for needle in &needles {
                if contains(&blob, needle) {
                    leaks.push(format!(
                        "{} {what} contains {:?}",
                        path.display(),
                        String::from_utf8_lossy(needle)
                    ));
                }
            }
        }
    }
    // Also nothing in the mount process's command line or the backing dir's listing as text.
    let daemons = vault.daemon_pids();
    assert!(!daemons.is_empty(), "no daemon process found");
    for pid in daemons {
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        for needle in &needles {
            assert!(
                !contains(&cmdline, needle),
                "the daemon's command line shows {:?}: {:?}",
                String::from_utf8_lossy(needle),
                String::from_utf8_lossy(&cmdline)
            );
        }
    }
    let listing = format!("{paths:?}");
    assert!(!listing.contains(marker), "backing paths show the marker");
    assert!(
        leaks.is_empty(),
        "plaintext in the backing dir:\n  {}",
        leaks.join("\n  ")
    );
    // And the mount still shows it all.
    assert_eq!(
        fs::read_to_string(mnt.join(format!("dir-{marker}/file-{marker}.txt"))).unwrap(),
        content
    );
    assert_eq!(
        getxattr(mnt, format!("renamed-{marker}"), &format!("user.{marker}")).unwrap(),
        format!("value-{marker}").as_bytes()
    );

    // Repeating plaintext does not repeat in the ciphertext: no 16-byte AES block of the
    // backing file of a file that repeats a 16-byte pattern occurs twice.
    let blocks = fs::read(backing_of(&vault, format!("renamed-{marker}"))).unwrap();
    assert_eq!(
        blocks.len(),
        18 + 16 * 4096,
        "backing size of a 64 KiB file"
    );
    let mut seen = BTreeSet::new();
    for chunk in blocks[18..].chunks(16) {
        assert!(seen.insert(chunk), "a 16-byte ciphertext block repeats");
    }
    // Two files with the same content differ in the backing dir (one file ID each), and so do
    // the same bytes written twice to one file.
    fs::write(mnt.join("twin1"), &content).unwrap();
    fs::write(mnt.join("twin2"), &content).unwrap();
    let (a, b) = (
        fs::read(backing_of(&vault, "twin1")).unwrap(),
        fs::read(backing_of(&vault, "twin2")).unwrap(),
    );
    assert_eq!(a.len(), b.len());
    assert_ne!(a[..18], b[..18], "two files share a header (file ID)");
    assert!(
        a[18..]
            .chunks(16)
            .zip(b[18..].chunks(16))
            .all(|(x, y)| x != y),
        "two files share ciphertext"
    );
}

fn listxattr_all(path: &Path) -> Vec<String> {
    let c = cpath(path);
    let mut buf = vec![0u8; 65536];
    // SAFETY: NUL-terminated path; `buf` valid for its length.
    let ret = unsafe { libc::llistxattr(c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if ret < 0 {
        return Vec::new();
    }
    buf[..ret as usize]
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty())
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect()
}

/// Everything observable about a tree, for comparing it before and after a remount.
#[derive(Debug, PartialEq)]
enum Node {
    Dir {
        mode: u32,
        xattrs: BTreeMap<String, Vec<u8>>,
    },
    File {
        mode: u32,
        nlink: u64,
        content: Vec<u8>,
        xattrs: BTreeMap<String, Vec<u8>>,
    },
    Symlink {
        target: PathBuf,
    },
    Other {
        kind: &'static str,
        mode: u32,
    },
}

fn manifest(root: &Path) -> BTreeMap<PathBuf, Node> {
    let mut paths = Vec::new();
    walk(root, &mut paths);
    let mut out = BTreeMap::new();
    for path in paths {
        let meta = fs::symlink_metadata(&path).unwrap();
        let rel = path.strip_prefix(root).unwrap().to_path_buf();
        let xattrs = || {
            listxattr(root, &rel)
                .unwrap()
                .into_iter()
                .map(|n| {
                    let v = getxattr(root, &rel, &n).unwrap();
                    (n, v)
                })
                .collect()
        };
        let node = match kind_of(meta.file_type()) {
            "dir" => Node::Dir {
                mode: meta.mode() & 0o7777,
                xattrs: xattrs(),
            },
            "file" => Node::File {
                mode: meta.mode() & 0o7777,
                nlink: meta.nlink(),
                content: fs::read(&path).unwrap(),
                xattrs: xattrs(),
            },
            "symlink" => Node::Symlink {
                target: fs::read_link(&path).unwrap(),
            },
            kind => Node::Other {
                kind,
                mode: meta.mode() & 0o7777,
            },
        };
        out.insert(rel, node);
    }
    out
}

fn build_sample_tree(root: &Path) {
    fs::create_dir_all(root.join("a/b/c")).unwrap();
    fs::create_dir(root.join(name_of_len(230, 1))).unwrap();
    for i in 0..40usize {
        let dir = match i % 4 {
            0 => root.to_path_buf(),
            1 => root.join("a"),
            2 => root.join("a/b/c"),
            _ => root.join(name_of_len(230, 1)),
        };
        let name = if i % 5 == 0 {
            name_of_len(150 + i * 2, i as u8)
        } else {
            OsString::from(format!("file {i} ☃"))
        };
        fs::write(dir.join(&name), pattern(i * 997 % 20_000, i as u8)).unwrap();
    }
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(root.join("a/sparse"))
        .unwrap();
    f.write_all_at(b"end", 1 << 20).unwrap();
    fs::set_permissions(root.join("a/sparse"), fs::Permissions::from_mode(0o751)).unwrap();
    fs::hard_link(root.join("a/sparse"), root.join("a/b/sparse-link")).unwrap();
    std::os::unix::fs::symlink("../sparse", root.join("a/b/link")).unwrap();
    std::os::unix::fs::symlink("/abs/target", root.join("abs-link")).unwrap();
    nix::unistd::mkfifo(&root.join("a/fifo"), Mode::from_bits_truncate(0o640)).unwrap();
    setxattr(root, "a/sparse", "user.k", b"v", 0).unwrap();
    setxattr(root, "a/b", "user.dir", b"dir value", 0).unwrap();
}

#[test]
fn remount_keeps_everything() {
    let vault = TestVault::new();
    let plain = tempfile::tempdir().unwrap();
    build_sample_tree(vault.mount_path());
    build_sample_tree(plain.path());
    let before = manifest(vault.mount_path());
    assert_eq!(
        before,
        manifest(plain.path()),
        "the mount's tree differs from the plain one"
    );
    vault.remount();
    let after = manifest(vault.mount_path());
    let differences: Vec<String> = before
        .keys()
        .chain(after.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|k| before.get(*k) != after.get(*k))
        .map(|k| {
            format!(
                "{}: before {:?}, after {:?}",
                k.display(),
                before.get(k).map(short),
                after.get(k).map(short)
            )
        })
        .collect();
    assert!(
        differences.is_empty(),
        "changed by a remount:\n  {}",
        differences.join("\n  ")
    );
    // And it is still writable.
    fs::write(vault.mount_path().join("a/after-remount"), b"ok").unwrap();
    assert_eq!(
        fs::read(vault.mount_path().join("a/after-remount")).unwrap(),
        b"ok"
    );
}

fn short(node: &Node) -> String {
    match node {
        Node::File {
            mode,
            nlink,
            content,
            xattrs,
        } => {
            format!(
                "file mode {mode:o} nlink {nlink} {} bytes xattrs {:?}",
                content.len(),
                xattrs.keys()
            )
        }
        other => format!("{other:?}"),
    }
}

/// The one backing entry that appears in `dir` while `create` runs.
fn new_backing_entry(dir: &Path, create: impl FnOnce()) -> PathBuf {
    let before: BTreeSet<OsString> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    create();
    let added: Vec<OsString> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| !before.contains(n))
        .collect();
    assert_eq!(
        added.len(),
        1,
        "expected one new backing entry, got {added:?}"
    );
    dir.join(&added[0])
}

/// Overwrites backing file `target` with the bytes of `source` without replacing it (same
/// inode), as a sync tool writing in place does.
fn rewrite_in_place(target: &Path, source: &Path) {
    OpenOptions::new()
        .write(true)
        .open(target)
        .unwrap()
        .write_all_at(&fs::read(source).unwrap(), 0)
        .unwrap();
}

fn daemon_alive(vault: &TestVault) -> bool {
    !vault.daemon_pids().is_empty() && fs::metadata(vault.mount_path()).is_ok()
}

#[test]
fn foreign_and_corrupt_backing_entries_are_skipped() {
    let vault = TestVault::new();
    let mnt = vault.mount_path();
    fs::create_dir(mnt.join("d")).unwrap();
    let healthy = ["alpha", "beta", "gamma", &"long".repeat(60)].map(String::from);
    for name in &healthy {
        fs::write(mnt.join("d").join(name), name.as_bytes()).unwrap();
    }
    fs::create_dir(mnt.join("d/subdir")).unwrap();
    let backing = backing_of(&vault, "d");
    let alpha = backing_of(&vault, "d/alpha");
    let alpha_name = alpha.file_name().unwrap().to_str().unwrap().to_string();

    // Foreign entries a sync tool or a user might drop there.
    fs::create_dir(backing.join(".stfolder")).unwrap();
    fs::write(backing.join("foo.txt"), b"foreign").unwrap();
    fs::write(
        backing.join("Ab3dEfGhIjKlMnOpQrStUvWxYz0123456789-_Ab"),
        b"random 40",
    )
    .unwrap();
    fs::write(backing.join(".syncthing.alpha.tmp"), b"tmp").unwrap();
    fs::write(
        backing.join("veilfs.longname.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        b"no sidecar",
    )
    .unwrap();
    // A plausible encoded name that fails authentication: one character of a real one changed.
    let mut corrupt = alpha_name.clone().into_bytes();
    let last = corrupt.len() - 1;
    corrupt[last] = if corrupt[last] == b'A' { b'B' } else { b'A' };
    fs::write(backing.join(OsStr::from_bytes(&corrupt)), b"corrupt").unwrap();
    // A sync conflict copy of a real entry.
    fs::write(
        backing.join(format!(
            "{alpha_name}.sync-conflict-20240101-120000-ABCDEFG"
        )),
        b"conflict",
    )
    .unwrap();

    let mut expected: Vec<String> = healthy.to_vec();
    expected.push("subdir".into());
    expected.sort();
    let listed: Result<Vec<String>, _> = fs::read_dir(mnt.join("d")).and_then(|it| {
        it.map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect()
    });
    let listed = listed.expect("listing a directory with foreign entries must not fail");
    for name in &expected {
        assert!(
            listed.contains(name),
            "healthy entry {name:?} missing from the listing {listed:?}"
        );
    }
    let ls = std::process::Command::new("ls")
        .arg("-la")
        .arg(mnt.join("d"))
        .output()
        .unwrap();
    assert!(
        ls.status.success(),
        "ls -la failed: {}",
        String::from_utf8_lossy(&ls.stderr)
    );
    for name in &healthy {
        assert_eq!(
            fs::read(mnt.join("d").join(name)).unwrap(),
            name.as_bytes(),
            "reading {name}"
        );
    }
    // Foreign entries are not shown under garbage names. The sync conflict copy of alpha may
    // be shown, as "alpha (conflict N)".
    let extra: Vec<&String> = listed
        .iter()
        .filter(|n| !expected.contains(n) && !n.starts_with("alpha (conflict "))
        .collect();
    assert!(
        extra.is_empty(),
        "foreign backing entries shown in the mount: {extra:?}"
    );
    // Deleting every healthy entry works with the foreign ones still there; rmdir then fails
    // with ENOTEMPTY (the foreign files are real) rather than deleting them.
    for name in &healthy {
        fs::remove_file(mnt.join("d").join(name)).unwrap();
    }
    fs::remove_dir(mnt.join("d/subdir")).unwrap();
    let rmdir = fs::remove_dir(mnt.join("d"));
    assert_eq!(
        rmdir.as_ref().map_err(|e| e.raw_os_error()),
        Err(Some(libc::ENOTEMPTY)),
        "rmdir of a directory whose backing dir holds foreign files"
    );
    assert!(
        backing.join("foo.txt").exists(),
        "a foreign file was deleted"
    );
    assert!(daemon_alive(&vault));
}

#[test]
fn backing_file_deleted_behind_the_mounts_back() {
    let vault = TestVault::new();
    let mnt = vault.mount_path();
    let root = vault.backing_path().to_path_buf();
    let victim = new_backing_entry(&root, || {
        fs::write(mnt.join("victim"), pattern(10_000, 1)).unwrap()
    });
    let dir_victim = new_backing_entry(&root, || fs::create_dir(mnt.join("dirvictim")).unwrap());
    fs::write(mnt.join("dirvictim/inner"), b"inner").unwrap();
    fs::write(mnt.join("survivor"), b"survivor").unwrap();
    let open = File::open(mnt.join("victim")).unwrap();
    let mut first = vec![0; 100];
    open.read_exact_at(&mut first, 0).unwrap();
    fs::metadata(mnt.join("victim")).unwrap();

    fs::remove_file(&victim).unwrap();
    fs::remove_dir_all(&dir_victim).unwrap();
    let gone = wait_for(Duration::from_secs(5), || {
        fs::symlink_metadata(mnt.join("victim"))
            .err()
            .and_then(|e| e.raw_os_error())
            == Some(libc::ENOENT)
    });
    assert!(
        gone,
        "stat of a deleted backing file: {:?} after 5 s",
        fs::symlink_metadata(mnt.join("victim"))
    );
    let gone = wait_for(Duration::from_secs(5), || {
        fs::symlink_metadata(mnt.join("dirvictim/inner"))
            .err()
            .and_then(|e| e.raw_os_error())
            == Some(libc::ENOENT)
    });
    assert!(
        gone,
        "stat inside a deleted backing dir: {:?}",
        fs::symlink_metadata(mnt.join("dirvictim/inner"))
    );
    // The open handle still reads the whole file, as an open file removed on a local file
    // system does (the daemon holds the backing file open), and the daemon lives on.
    let mut buf = vec![0; 10_000];
    open.read_exact_at(&mut buf, 0)
        .expect("reading an open handle of a deleted backing file");
    assert!(
        buf == pattern(10_000, 1),
        "an open handle of a deleted backing file read other bytes"
    );
    let _ = open.metadata();
    drop(open);
    assert!(daemon_alive(&vault), "the daemon died");
    assert_eq!(fs::read(mnt.join("survivor")).unwrap(), b"survivor");
    let mut names: Vec<_> = fs::read_dir(mnt)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["survivor"]);
    // The name can be reused.
    fs::write(mnt.join("victim"), b"new").unwrap();
    assert_eq!(fs::read(mnt.join("victim")).unwrap(), b"new");
    fs::create_dir(mnt.join("dirvictim")).unwrap();
    fs::write(mnt.join("dirvictim/inner"), b"again").unwrap();
    assert_eq!(fs::read(mnt.join("dirvictim/inner")).unwrap(), b"again");
}

/// Reads `name` through the mount until it gives `expected` or 5 s pass; the last result.
fn read_until(mnt: &Path, name: &str, expected: &Res<Vec<u8>>) -> Res<Vec<u8>> {
    let mut last = io_res(fs::read(mnt.join(name)));
    wait_for(Duration::from_secs(5), || {
        last = io_res(fs::read(mnt.join(name)));
        last == *expected
    });
    last
}

#[test]
fn backing_file_replaced_behind_the_mounts_back() {
    // `--cache-ttl 0`: the kernel asks the daemon on every access (no waiting out a cache time).
    let vault = TestVault::unmounted();
    vault.mount_with(&["--cache-ttl", "0"]);
    let mnt = vault.mount_path();
    let root = vault.backing_path().to_path_buf();
    let a = new_backing_entry(&root, || {
        fs::write(mnt.join("a"), pattern(9000, 1)).unwrap()
    });
    let b = new_backing_entry(&root, || {
        fs::write(mnt.join("b"), pattern(20_000, 2)).unwrap()
    });
    let c = new_backing_entry(&root, || {
        fs::write(mnt.join("c"), pattern(5000, 3)).unwrap()
    });
    assert_eq!(fs::read(mnt.join("a")).unwrap(), pattern(9000, 1));

    // Replace a's bytes with b's (in place, same inode) and c's with garbage (new inode). The
    // header carries the file's key: a's backing file now holds b, and a reads as b did.
    fs::write(&a, fs::read(&b).unwrap()).unwrap();
    let tmp = root.join("tmp-replace");
    fs::write(&tmp, b"xyz").unwrap();
    fs::rename(&tmp, &c).unwrap();
    let b_content = Ok(pattern(20_000, 2));
    assert_eq!(
        read_until(mnt, "a", &b_content),
        b_content,
        "a file replaced in place by another's bytes"
    );
    // Shorter than a header: EIO, not garbage or an empty file.
    let eio = Err(nix::errno::Errno::EIO);
    assert_eq!(
        read_until(mnt, "c", &eio),
        eio,
        "a file replaced by garbage"
    );
    let _ = fs::metadata(mnt.join("c"));
    assert!(daemon_alive(&vault), "the daemon died");
    assert_eq!(
        fs::read(mnt.join("b")).unwrap(),
        pattern(20_000, 2),
        "an untouched sibling changed"
    );
    // A truncated header.
    fs::write(&b, b"short").unwrap();
    assert_eq!(read_until(mnt, "b", &eio), eio, "a truncated header");
    assert!(daemon_alive(&vault), "the daemon died");
    // Writing to a damaged file does not crash either, and the mount still works.
    let _ = fs::write(mnt.join("b"), b"rewrite");
    fs::write(mnt.join("fresh"), b"fresh").unwrap();
    assert_eq!(fs::read(mnt.join("fresh")).unwrap(), b"fresh");
    assert!(daemon_alive(&vault), "the daemon died");
}

/// A file replaced in place (same backing inode, another file's bytes) while it is open through
/// the mount: reading the open handle must give the new content or EIO, never the new
/// ciphertext decrypted under the key of the header veilfs cached when it was opened.
#[test]
fn an_open_handle_of_a_file_replaced_in_place_reads_the_new_content_or_eio() {
    let vault = TestVault::unmounted();
    vault.mount_with(&["--cache-ttl", "0"]);
    let mnt = vault.mount_path();
    let root = vault.backing_path().to_path_buf();
    let a = new_backing_entry(&root, || {
        fs::write(mnt.join("a"), pattern(9000, 1)).unwrap()
    });
    let b = new_backing_entry(&root, || {
        fs::write(mnt.join("b"), pattern(20_000, 2)).unwrap()
    });
    let open_a = File::open(mnt.join("a")).unwrap();
    let mut first = vec![0; 9000];
    open_a.read_exact_at(&mut first, 0).unwrap();
    assert_eq!(first, pattern(9000, 1));
    fs::write(&a, fs::read(&b).unwrap()).unwrap();
    let mut buf = vec![0; 30_000];
    match open_a.read_at(&mut buf, 0) {
        Ok(n) => assert!(
            buf[..n] == pattern(20_000, 2)[..n],
            "read {n} bytes through the open handle that are not b's: {:?}...",
            &buf[..16.min(n)]
        ),
        Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}"),
    }
    assert!(daemon_alive(&vault), "the daemon died");
}

/// The same for a write through the open handle: it goes into the file as it is now, under its
/// new header, and the rest of that file stays readable (a write under the old header's key
/// would turn the new file's sector to garbage).
#[test]
fn a_write_through_an_open_handle_of_a_file_replaced_in_place_keeps_the_new_file_readable() {
    let vault = TestVault::unmounted();
    vault.mount_with(&["--cache-ttl", "0"]);
    let mnt = vault.mount_path();
    let root = vault.backing_path().to_path_buf();
    let a = new_backing_entry(&root, || {
        fs::write(mnt.join("a"), pattern(9000, 1)).unwrap()
    });
    let b = new_backing_entry(&root, || {
        fs::write(mnt.join("b"), pattern(20_000, 2)).unwrap()
    });
    let open_a = OpenOptions::new().write(true).open(mnt.join("a")).unwrap();
    open_a.write_all_at(b"first", 0).unwrap();
    fs::write(&a, fs::read(&b).unwrap()).unwrap();
    open_a.write_all_at(b"after", 100).unwrap();
    drop(open_a);
    let mut expected = pattern(20_000, 2);
    expected[100..105].copy_from_slice(b"after");
    let got = fs::read(mnt.join("a")).unwrap();
    assert!(
        got == expected,
        "the file written through the old handle reads wrong"
    );
    assert!(daemon_alive(&vault), "the daemon died");
}

#[test]
fn stat_after_external_rename_in_backing_dir() {
    // A sync tool renames a backing entry (e.g. applying a remote rename): the old name
    // disappears from the mount within the TTL and the new one is served.
    let vault = TestVault::new();
    let mnt = vault.mount_path();
    let root = vault.backing_path().to_path_buf();
    let a = new_backing_entry(&root, || fs::write(mnt.join("a"), b"A").unwrap());
    let b = new_backing_entry(&root, || fs::write(mnt.join("b"), b"B").unwrap());
    fs::metadata(mnt.join("a")).unwrap();
    fs::rename(&a, &b).unwrap();
    let ok = wait_for(Duration::from_secs(5), || {
        fs::metadata(mnt.join("a")).is_err() && fs::read(mnt.join("b")).is_ok_and(|v| v == b"A")
    });
    assert!(
        ok,
        "after an external rename: a {:?}, b {:?}",
        fs::metadata(mnt.join("a")),
        fs::read(mnt.join("b"))
    );
    let started = Instant::now();
    assert!(daemon_alive(&vault));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn sync_style_replacement_shows_the_new_content() {
    // A sync tool applies a remote change: the new backing file (valid, from another copy of
    // the vault) is written to a temporary name and renamed over the old one, or rewritten in
    // place. With no handle open, the mount serves the new content within the cache time.
    let vault = TestVault::new();
    let mnt = vault.mount_path();
    let root = vault.backing_path().to_path_buf();
    let old = new_backing_entry(&root, || {
        fs::write(mnt.join("renamed-over"), pattern(9000, 1)).unwrap()
    });
    let in_place = new_backing_entry(&root, || {
        fs::write(mnt.join("in-place"), pattern(7000, 4)).unwrap()
    });
    // Same size as the new content: only the mtime tells the kernel its cached pages are stale.
    let same_size = new_backing_entry(&root, || {
        fs::write(mnt.join("same-size"), pattern(20_000, 3)).unwrap()
    });
    let source = new_backing_entry(&root, || {
        fs::write(mnt.join("source"), pattern(20_000, 2)).unwrap()
    });
    assert_eq!(
        fs::read(mnt.join("renamed-over")).unwrap(),
        pattern(9000, 1)
    );
    assert_eq!(fs::read(mnt.join("in-place")).unwrap(), pattern(7000, 4));
    assert_eq!(fs::read(mnt.join("same-size")).unwrap(), pattern(20_000, 3));

    let tmp = root.join(".syncthing.tmp");
    fs::copy(&source, &tmp).unwrap();
    fs::rename(&tmp, &old).unwrap();
    fs::write(&in_place, fs::read(&source).unwrap()).unwrap();
    rewrite_in_place(&same_size, &source);

    let expected = pattern(20_000, 2);
    let mut last = (None, None, false);
    let ok = wait_for(Duration::from_secs(5), || {
        let a = fs::read(mnt.join("renamed-over")).ok();
        let b = fs::read(mnt.join("in-place")).ok();
        let c = fs::read(mnt.join("same-size")).ok();
        let done = [&a, &b, &c].iter().all(|v| v.as_ref() == Some(&expected));
        last = (
            a.map(|v| v.len()),
            b.map(|v| v.len()),
            c == Some(expected.clone()),
        );
        done
    });
    assert!(
        ok,
        "after 5 s the mount still serves old content (lengths renamed-over, in-place; \
         same-size up to date: {last:?})"
    );
    assert!(daemon_alive(&vault));
}

#[test]
fn cache_ttl_zero_shows_changes_beside_the_mount_at_once() {
    // With --cache-ttl 0 the kernel asks on every access: a backing file rewritten in place
    // (same size, so only its mtime tells) reads new at once, where the default waits out 1 s.
    let vault = TestVault::unmounted();
    vault.mount_with(&["--cache-ttl", "0"]);
    let mnt = vault.mount_path();
    let root = vault.backing_path().to_path_buf();
    let target = new_backing_entry(&root, || {
        fs::write(mnt.join("target"), pattern(20_000, 3)).unwrap()
    });
    let source = new_backing_entry(&root, || {
        fs::write(mnt.join("source"), pattern(20_000, 2)).unwrap()
    });
    // Read without fstat(2) (which fs::read does, and which sends the kernel to ask whenever
    // an atime update has made its attributes stale): only the cache time decides.
    let read = || {
        let mut data = vec![0; 20_000];
        File::open(mnt.join("target"))
            .unwrap()
            .read_exact(&mut data)
            .unwrap();
        data
    };
    assert_eq!(read(), pattern(20_000, 3));
    // A later mtime than the one the kernel saw, whatever the timestamp granularity.
    std::thread::sleep(Duration::from_millis(50));
    rewrite_in_place(&target, &source);
    assert_eq!(read(), pattern(20_000, 2));
    assert!(daemon_alive(&vault));
}

#[test]
fn directory_replaced_behind_the_mounts_back_with_a_reused_inode() {
    // A sync tool deletes directory A and creates directory B (from a remote copy); the
    // backing filesystem gives B the inode number A had, while the kernel still holds A (an
    // open descriptor, a shell's working directory). B's entries must still decrypt with B's
    // own IV, not a cached one of A.
    let vault = TestVault::new();
    let mnt = vault.mount_path();
    let root = vault.backing_path().to_path_buf();
    let a = new_backing_entry(&root, || fs::create_dir(mnt.join("A")).unwrap());
    fs::write(mnt.join("A/f1"), b"one").unwrap();
    let b = new_backing_entry(&root, || fs::create_dir(mnt.join("B")).unwrap());
    fs::write(mnt.join("B/f2"), b"two").unwrap();
    let held = File::open(mnt.join("A")).unwrap();
    let a_ino = fs::metadata(&a).unwrap().ino();

    // Move B's backing dir out, delete A's, and bring B back as a new directory.
    let saved = vault.scratch().join("B-saved");
    fs::rename(&b, &saved).unwrap();
    fs::remove_dir_all(&a).unwrap();
    // The backing filesystem usually hands out the freed inode number again; retry a few
    // times when it does not.
    let mut reused = false;
    for _ in 0..20 {
        let status = std::process::Command::new("cp")
            .arg("-a")
            .arg(&saved)
            .arg(&b)
            .status()
            .unwrap();
        assert!(status.success());
        reused = fs::metadata(&b).unwrap().ino() == a_ino;
        if reused {
            break;
        }
        fs::remove_dir_all(&b).unwrap();
    }
    if !reused {
        let status = std::process::Command::new("cp")
            .arg("-a")
            .arg(&saved)
            .arg(&b)
            .status()
            .unwrap();
        assert!(status.success());
    }
    eprintln!("B reused A's inode number: {reused}");
    // The kernel looks B up again once its 1 s cache time has passed: poll with a deadline.
    let mut last = None;
    let ok = wait_for(Duration::from_secs(5), || {
        let listing: Option<Vec<OsString>> = fs::read_dir(mnt.join("B"))
            .ok()
            .map(|it| it.map(|e| e.unwrap().file_name()).collect());
        let content = fs::read(mnt.join("B/f2")).ok();
        let done = listing.as_deref() == Some(&[OsString::from("f2")][..])
            && content.as_deref() == Some(b"two");
        last = Some((listing, content));
        done
    });
    let mut failures = Vec::new();
    if !ok {
        failures.push(format!(
            "B (backing inode reused from A: {reused}) after 5 s: listing and content of f2 {last:?}"
        ));
    }
    // Creating in B while A is still held, then remounting: the new entry must have been
    // named with B's real IV.
    fs::write(mnt.join("B/new"), b"new").unwrap();
    drop(held);
    vault.remount();
    let mut names: Vec<OsString> = fs::read_dir(mnt.join("B"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    if names != ["f2", "new"] {
        failures.push(format!(
            "B after writing B/new and a remount lists {names:?}, expected [\"f2\", \"new\"]"
        ));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A write or a truncate by a user without CAP_FSETID clears setuid (and setgid on a
/// group-executable file), as on a local filesystem: the adapter does it when the kernel flags
/// the write, and on any truncate by a caller other than root.
#[test]
fn a_write_or_truncate_by_another_user_clears_setuid_and_setgid() {
    let vault = TestVault::unmounted();
    // No attribute cache: the mode read back is the daemon's, not one cached before the write.
    vault.mount_with(&["-o", "allow_other", "--cache-ttl", "0"]);
    let plain = tempfile::tempdir().unwrap();
    for (what, command) in [
        ("write", "echo more >> '{}'"),
        ("truncate", "truncate -s 1 '{}'"),
    ] {
        let mut modes = Vec::new();
        for dir in [vault.mount_path(), plain.path()] {
            // The user `nobody` must reach the file through every parent.
            for parent in dir.ancestors().take(2) {
                fs::set_permissions(parent, fs::Permissions::from_mode(0o755)).unwrap();
            }
            let file = dir.join(format!("setid-{what}"));
            fs::write(&file, b"xyz").unwrap();
            std::os::unix::fs::chown(&file, Some(65534), Some(65534)).unwrap();
            fs::set_permissions(&file, fs::Permissions::from_mode(0o6775)).unwrap();
            let status = std::process::Command::new("setpriv")
                .args([
                    "--reuid=65534",
                    "--regid=65534",
                    "--clear-groups",
                    "sh",
                    "-c",
                ])
                .arg(command.replace("{}", &file.display().to_string()))
                .status()
                .unwrap();
            assert!(status.success(), "{what} as nobody in {}", dir.display());
            modes.push(fs::metadata(&file).unwrap().mode() & 0o7777);
        }
        assert_eq!(modes[0], modes[1], "{what}: mount vs plain directory");
        assert_eq!(modes[1], 0o775, "{what}");
    }
}

/// Holes stay holes: writing 4 KiB at 1 GiB into an empty file through the mount, or extending
/// it by truncate, allocates only the sectors written (the format leaves a gap's sectors
/// unwritten), and the gap reads as zeros, before and after a remount.
#[test]
fn holes_stay_sparse_through_the_mount() {
    const GIB: u64 = 1 << 30;
    // What a header, one written 4 KiB sector and ext4's extent blocks may take: far below the
    // gigabyte an allocated gap would.
    const ALLOWED: u64 = 256 * 1024;
    let vault = TestVault::new();
    let mnt = vault.mount_path();
    let path = mnt.join("sparse");
    let data = pattern(4096, 9);
    let file = File::create(&path).unwrap();
    file.write_all_at(&data, GIB).unwrap();
    file.sync_all().unwrap();
    drop(file);
    let allocated = |what: &str| {
        let meta = fs::metadata(backing_of(&vault, "sparse")).unwrap();
        assert!(
            meta.blocks() * 512 <= ALLOWED,
            "{what}: the backing file of {} bytes has {} bytes allocated",
            meta.len(),
            meta.blocks() * 512
        );
    };
    assert_eq!(fs::metadata(&path).unwrap().len(), GIB + 4096);
    allocated("after a write at 1 GiB");
    let check = |what: &str| {
        let file = File::open(&path).unwrap();
        let mut buf = vec![0xff; 4096];
        for offset in [0, 4096 * 1000 + 17, GIB / 2, GIB - 4096] {
            file.read_exact_at(&mut buf, offset).unwrap();
            assert!(
                buf.iter().all(|&b| b == 0),
                "{what}: the hole at {offset} is not zeros"
            );
        }
        file.read_exact_at(&mut buf, GIB).unwrap();
        assert!(buf == data, "{what}: the data at 1 GiB changed");
    };
    check("written");
    vault.remount();
    check("after a remount");
    // Extending by truncate leaves a hole as well.
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(2 * GIB)
        .unwrap();
    assert_eq!(fs::metadata(&path).unwrap().len(), 2 * GIB);
    allocated("after truncating to 2 GiB");
    check("after truncating to 2 GiB");
}

/// `allow_other` lets other users in with the kernel checking the permission bits, as on a
/// local file system: what the user `nobody` may and may not do is the same as in a plain
/// directory. Without it, the mount is closed to every other user, whatever its modes.
#[test]
fn allow_other_checks_permissions_as_a_plain_directory_does() {
    let vault = TestVault::unmounted();
    vault.mount_with(&["-o", "allow_other", "--cache-ttl", "0"]);
    let plain = tempfile::tempdir().unwrap();
    // Each step as nobody: its exit status, 0 or 1.
    let script = "cd \"$1\" || exit 9
        for step in 'cat private' 'cat public' 'echo more >> public' 'rm public' \
                    'touch closed/new' 'touch open/new' 'ls closed' 'mkdir closed/d' \
                    'mv open/new open/moved' 'chmod 777 public'; do
            if sh -c \"$step\" >/dev/null 2>&1; then echo \"$step: ok\"; else echo \"$step: refused\"; fi
        done";
    let as_nobody = |dir: &Path| {
        let output = std::process::Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "sh",
                "-c",
                script,
                "sh",
            ])
            .arg(dir)
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8(output.stdout).unwrap(),
        )
    };
    let mut results = Vec::new();
    for dir in [vault.mount_path(), plain.path()] {
        for parent in dir.ancestors().take(2) {
            fs::set_permissions(parent, fs::Permissions::from_mode(0o755)).unwrap();
        }
        fs::write(dir.join("private"), b"secret").unwrap();
        fs::set_permissions(dir.join("private"), fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(dir.join("public"), b"open").unwrap();
        fs::set_permissions(dir.join("public"), fs::Permissions::from_mode(0o644)).unwrap();
        for (name, mode) in [("closed", 0o755), ("open", 0o777)] {
            fs::create_dir(dir.join(name)).unwrap();
            fs::set_permissions(dir.join(name), fs::Permissions::from_mode(mode)).unwrap();
        }
        results.push(as_nobody(dir));
    }
    assert_eq!(
        results[0], results[1],
        "mount (left) vs plain directory (right)"
    );
    assert_eq!(
        results[1].1,
        "cat private: refused\ncat public: ok\necho more >> public: refused\nrm public: refused\n\
         touch closed/new: refused\ntouch open/new: ok\nls closed: ok\nmkdir closed/d: refused\n\
         mv open/new open/moved: ok\nchmod 777 public: refused\n"
    );
    assert_eq!(
        fs::read(vault.mount_path().join("public")).unwrap(),
        b"open"
    );

    // Without allow_other the kernel lets no other user in, whatever the modes say.
    vault.unmount();
    vault.mount_with(&[]);
    let closed = as_nobody(vault.mount_path());
    assert_eq!(
        closed,
        (Some(9), String::new()),
        "nobody got in without allow_other"
    );
}
