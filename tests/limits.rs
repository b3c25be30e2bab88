//! Limits of a real mount that must be those of a local file system, not of the backing
//! directory behind it:
//!
//! - **Path length** ([`long_paths_work_like_a_local_directory`]): a plaintext path of 4,095
//!   bytes (PATH_MAX with its NUL), given relative to a directory handle so that the mount point's
//!   own path does not count, works for open(O_CREAT), mkdir, rmdir, unlink, rename, link,
//!   symlink, mknod, mkfifo, chmod, chown, lchown, truncate (and a few reads), compared
//!   errno-for-errno with a plain directory; the same path one byte longer (a doubled slash, so it
//!   names the same entry) gives ENAMETOOLONG on both. Done with 9-byte components (a tree 409
//!   directories deep, whose backing path is ~3.5 times longer than the plaintext one) and with
//!   255-byte components (every name a long name, stored under a hash with a sidecar). Each call
//!   starts from its own precondition, made through a handle on the deepest directory with a short
//!   name, so one failing call does not hide the others.
//! - **Full backing file system** ([`enospc_leaves_no_debris`]): on a small tmpfs out of blocks,
//!   or out of inodes, with 0 to 3 pages or inodes left, every kind of create (mkdir, create,
//!   symlink, mknod, mkfifo, link, rename; short and long names) either succeeds or fails with
//!   ENOSPC or EDQUOT, and once space is back: a failed create shows nothing in the mount, a
//!   successful one works, `veilfs fsck` finds nothing, and the backing directory holds exactly
//!   what it held before (no orphan sidecar, no directory with a missing or empty
//!   `veilfs.diriv`, no stray entry).
//!
//! Both tests collect every mismatch and fail at the end with the whole list.

mod common;

use std::collections::BTreeSet;
use std::ffi::{CStr, CString, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{
    assert_success, io_res, is_mounted, require_fuse, run, umount_or_detach, unmount_all, veilfs,
    Res, TestVault, PASSWORD,
};
use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, renameat, AtFlags, OFlag};
use nix::sys::stat::{
    fchmodat, fstatat, mkdirat, mknodat, utimensat, FchmodatFlags, FileStat, Mode, SFlag,
    UtimensatFlags,
};
use nix::sys::statvfs::statvfs;
use nix::sys::time::TimeSpec;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{
    fchdir, fchownat, fork, linkat, mkfifoat, symlinkat, truncate, unlinkat, ForkResult, Gid, Uid,
    UnlinkatFlags,
};

/// PATH_MAX on Linux, the terminating NUL included.
const PATH_MAX: usize = 4096;

/// The mtime `utimensat` sets, recognizable in a stat description.
const FIXED_MTIME: i64 = 1_000_000_000;

// ---------------------------------------------------------------------------------------------
// Path length

/// A directory tree `d0/d1/.../dN` whose entries `P` and `Q` in `dN` are named, from the top, by
/// relative paths of exactly `PATH_MAX - 1` bytes.
struct LongTree {
    dirs: Vec<Vec<u8>>,
    p: Vec<u8>,
    q: Vec<u8>,
}

impl LongTree {
    /// Components of `component_len` bytes; the last name takes what is left.
    fn new(component_len: usize) -> LongTree {
        let depth = (PATH_MAX - 2) / (component_len + 1);
        let last = PATH_MAX - 1 - depth * (component_len + 1);
        assert!((1..=255).contains(&last), "last name of {last} bytes");
        LongTree {
            dirs: (0..depth)
                .map(|i| vec![b'a' + (i % 26) as u8; component_len])
                .collect(),
            p: vec![b'p'; last],
            q: vec![b'q'; last],
        }
    }

    /// The path of the first `levels` directories.
    fn prefix(&self, levels: usize) -> Vec<u8> {
        self.dirs[..levels].join(&b'/')
    }

    /// The path of `name` in the deepest directory; with `doubled`, the last slash is doubled
    /// (the same entry, one byte longer).
    fn path(&self, name: &[u8], doubled: bool) -> CString {
        let mut path = self.prefix(self.dirs.len());
        path.extend_from_slice(if doubled { b"//" } else { b"/" });
        path.extend_from_slice(name);
        CString::new(path).unwrap()
    }
}

/// What a call under test gets: the top of the tree and the two long paths.
struct Call<'a> {
    top: BorrowedFd<'a>,
    p: &'a CStr,
    q: &'a CStr,
}

/// What exists at `P` before a call, made with a short name in the deepest directory.
#[derive(Clone, Copy, Debug)]
enum Pre {
    Nothing,
    File,
    Dir,
    Symlink,
}

type CallFn = fn(&Call) -> Res<String>;

/// Every call compared: its name, what `P` is before it, and the call itself.
fn path_calls() -> Vec<(&'static str, Pre, CallFn)> {
    vec![
        ("open(P, O_CREAT|O_EXCL)", Pre::Nothing, |c| {
            let fd = openat(
                c.top,
                c.p,
                OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o644),
            )?;
            io_res(File::from(fd).write_all(b"written"))?;
            Ok(String::new())
        }),
        ("open(P, O_RDONLY) + read", Pre::File, |c| {
            let fd = openat(
                c.top,
                c.p,
                OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?;
            let mut text = String::new();
            io_res(File::from(fd).read_to_string(&mut text))?;
            Ok(text)
        }),
        ("stat(P)", Pre::File, |c| {
            Ok(describe(&fstatat(c.top, c.p, AtFlags::empty())?))
        }),
        ("mkdir(P)", Pre::Nothing, |c| {
            mkdirat(c.top, c.p, Mode::from_bits_truncate(0o755)).map(|()| String::new())
        }),
        ("rmdir(P)", Pre::Dir, |c| {
            unlinkat(c.top, c.p, UnlinkatFlags::RemoveDir).map(|()| String::new())
        }),
        ("unlink(P)", Pre::File, |c| {
            unlinkat(c.top, c.p, UnlinkatFlags::NoRemoveDir).map(|()| String::new())
        }),
        ("rename(P, Q)", Pre::File, |c| {
            renameat(c.top, c.p, c.top, c.q).map(|()| String::new())
        }),
        ("rename(P, Q) of a directory", Pre::Dir, |c| {
            renameat(c.top, c.p, c.top, c.q).map(|()| String::new())
        }),
        ("link(P, Q)", Pre::File, |c| {
            linkat(c.top, c.p, c.top, c.q, AtFlags::empty()).map(|()| String::new())
        }),
        ("symlink(\"target\", P)", Pre::Nothing, |c| {
            symlinkat("target", c.top, c.p).map(|()| String::new())
        }),
        ("readlink(P)", Pre::Symlink, |c| {
            readlinkat(c.top, c.p).map(|t| t.to_string_lossy().into_owned())
        }),
        ("mknod(P, S_IFREG)", Pre::Nothing, |c| {
            mknodat(
                c.top,
                c.p,
                SFlag::S_IFREG,
                Mode::from_bits_truncate(0o644),
                0,
            )
            .map(|()| String::new())
        }),
        ("mkfifo(P)", Pre::Nothing, |c| {
            mkfifoat(c.top, c.p, Mode::from_bits_truncate(0o644)).map(|()| String::new())
        }),
        ("chmod(P, 0600)", Pre::File, |c| {
            fchmodat(
                c.top,
                c.p,
                Mode::from_bits_truncate(0o600),
                FchmodatFlags::FollowSymlink,
            )
            .map(|()| String::new())
        }),
        ("chown(P, 1234:1234)", Pre::File, |c| {
            fchownat(
                c.top,
                c.p,
                Some(Uid::from_raw(1234)),
                Some(Gid::from_raw(1234)),
                AtFlags::empty(),
            )
            .map(|()| String::new())
        }),
        ("lchown(P, 4321:4321)", Pre::Symlink, |c| {
            fchownat(
                c.top,
                c.p,
                Some(Uid::from_raw(4321)),
                Some(Gid::from_raw(4321)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map(|()| String::new())
        }),
        ("truncate(P, 3)", Pre::File, |c| {
            truncate_at(c.top, c.p, 3).map(|()| String::new())
        }),
        ("open(P, O_WRONLY) + ftruncate(2)", Pre::File, |c| {
            let fd = openat(
                c.top,
                c.p,
                OFlag::O_WRONLY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?;
            nix::unistd::ftruncate(&fd, 2).map(|()| String::new())
        }),
        ("utimensat(P)", Pre::File, |c| {
            let time = TimeSpec::new(FIXED_MTIME, 0);
            utimensat(c.top, c.p, &time, &time, UtimensatFlags::FollowSymlink)
                .map(|()| String::new())
        }),
    ]
}

/// `truncate(2)` of `path` relative to `dir`: the call takes no directory handle, so a child
/// process changes to `dir` first (the test's own working directory stays as it is).
fn truncate_at(dir: BorrowedFd, path: &CStr, len: i64) -> Res<()> {
    // SAFETY: the child only calls fchdir, truncate and _exit, none of which allocates or takes
    // a lock another thread could hold.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            let code = match fchdir(dir).and_then(|()| truncate(path, len)) {
                Ok(()) => 0,
                Err(errno) => errno as i32,
            };
            // SAFETY: ends the child without running the parent's destructors.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => match waitpid(child, None).expect("waitpid") {
            WaitStatus::Exited(_, 0) => Ok(()),
            WaitStatus::Exited(_, code) => Err(Errno::from_raw(code)),
            other => panic!("the truncate child ended with {other:?}"),
        },
    }
}

/// Type, permissions, owner, and (but for directories, whose sizes differ between file systems)
/// size and link count; whether the mtime is [`FIXED_MTIME`].
fn describe(st: &FileStat) -> String {
    let kind = match st.st_mode & libc::S_IFMT {
        libc::S_IFREG => "file",
        libc::S_IFDIR => "dir",
        libc::S_IFLNK => "symlink",
        libc::S_IFIFO => "fifo",
        _ => "other",
    };
    let mut text = format!(
        "{kind} {:o} {}:{}",
        st.st_mode & 0o7777,
        st.st_uid,
        st.st_gid
    );
    if kind != "dir" {
        text.push_str(&format!(" size {} nlink {}", st.st_size, st.st_nlink));
    }
    if st.st_mtime == FIXED_MTIME {
        text.push_str(" mtime fixed");
    }
    text
}

/// One side of the comparison: the top of the tree (an open root) and the deepest directory.
struct Side {
    name: &'static str,
    root: OwnedFd,
    deepest: Option<OwnedFd>,
}

impl Side {
    fn open(name: &'static str, root: &Path) -> Side {
        let root = openat(
            nix::fcntl::AT_FDCWD,
            root,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .unwrap_or_else(|e| panic!("opening {}: {e}", root.display()));
        Side {
            name,
            root,
            deepest: None,
        }
    }

    /// Makes the tree one directory at a time, each relative to its parent's handle (short
    /// paths only); the first error and the level it happened at.
    fn build(&mut self, tree: &LongTree) -> Result<(), (usize, &'static str, Errno)> {
        let mut parent: Option<OwnedFd> = None;
        for (level, name) in tree.dirs.iter().enumerate() {
            let at = parent.as_ref().map_or(self.root.as_fd(), |fd| fd.as_fd());
            mkdirat(at, name.as_slice(), Mode::from_bits_truncate(0o755))
                .map_err(|e| (level, "mkdir", e))?;
            let fd = openat(
                at,
                name.as_slice(),
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| (level, "open", e))?;
            parent = Some(fd);
        }
        self.deepest = parent;
        Ok(())
    }

    fn deepest(&self) -> BorrowedFd<'_> {
        self.deepest.as_ref().expect("the tree is built").as_fd()
    }

    /// Makes `pre` at `P`, through the deepest directory's handle.
    fn prepare(&self, tree: &LongTree, pre: Pre) -> Res<()> {
        let at = self.deepest();
        let p = tree.p.as_slice();
        match pre {
            Pre::Nothing => Ok(()),
            Pre::File => {
                let fd = openat(
                    at,
                    p,
                    OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o644),
                )?;
                io_res(File::from(fd).write_all(b"contents"))
            }
            Pre::Dir => mkdirat(at, p, Mode::from_bits_truncate(0o755)),
            Pre::Symlink => symlinkat("target", at, p),
        }
    }

    /// What `P` and `Q` are, seen through the deepest directory's handle.
    fn state(&self, tree: &LongTree) -> String {
        [&tree.p, &tree.q]
            .iter()
            .zip(["P", "Q"])
            .map(|(name, label)| {
                let what = match fstatat(
                    self.deepest(),
                    name.as_slice(),
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                ) {
                    Ok(st) => describe(&st),
                    Err(Errno::ENOENT) => "absent".to_string(),
                    Err(e) => format!("stat gives {e}"),
                };
                format!("{label}: {what}")
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Removes `P` and `Q`, whatever they are.
    fn clear(&self, tree: &LongTree) -> Res<()> {
        for name in [&tree.p, &tree.q] {
            match unlinkat(self.deepest(), name.as_slice(), UnlinkatFlags::NoRemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(Errno::EISDIR) => {
                    unlinkat(self.deepest(), name.as_slice(), UnlinkatFlags::RemoveDir)?
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Runs every call of [`path_calls`] on `tree` in the mount and in the plain directory, at
/// 4,095 bytes (must succeed on the plain directory) and at 4,096 (must give ENAMETOOLONG).
fn compare_long_paths(mount: &Path, plain: &Path, tree: &LongTree, failures: &mut Vec<String>) {
    let label = format!("{}-byte components", tree.dirs[0].len());
    let mut veil = Side::open("mount", mount);
    let mut local = Side::open("plain dir", plain);
    if let Err((level, what, e)) = local.build(tree) {
        panic!("{label}: {what} of level {level} failed on the plain directory: {e}");
    }
    if let Err((level, what, e)) = veil.build(tree) {
        failures.push(format!(
            "{label}: building the tree in the mount, {what} of directory level {level} \
             (of {}; a plaintext path of {} bytes) gave {e}; nothing else was tried",
            tree.dirs.len(),
            tree.prefix(level + 1).len()
        ));
        return;
    }

    let short = (tree.path(&tree.p, false), tree.path(&tree.q, false));
    let long = (tree.path(&tree.p, true), tree.path(&tree.q, true));
    assert_eq!(short.0.as_bytes().len(), PATH_MAX - 1);
    assert_eq!(long.0.as_bytes().len(), PATH_MAX);

    for (bytes, (p, q)) in [(PATH_MAX - 1, &short), (PATH_MAX, &long)] {
        for (what, pre, call) in path_calls() {
            let mut results = Vec::new();
            for side in [&local, &veil] {
                if let Err(e) = side.prepare(tree, pre) {
                    failures.push(format!(
                        "{label}, {bytes} bytes, {what}: making {pre:?} at P (short name) in the {} gave {e}",
                        side.name
                    ));
                }
                let result = call(&Call {
                    top: side.root.as_fd(),
                    p,
                    q,
                });
                let state = side.state(tree);
                if let Err(e) = side.clear(tree) {
                    failures.push(format!(
                        "{label}, {bytes} bytes, {what}: removing P and Q (short names) in the {} gave {e}",
                        side.name
                    ));
                }
                results.push((result, state));
            }
            let (expected, got) = (&results[0], &results[1]);
            if bytes < PATH_MAX {
                assert!(
                    expected.0.is_ok(),
                    "{label}: {what} at {bytes} bytes failed on the plain directory: {:?}",
                    expected.0
                );
            } else {
                assert_eq!(
                    expected.0,
                    Err(Errno::ENAMETOOLONG),
                    "{label}: {what} at {bytes} bytes on the plain directory"
                );
            }
            if got != expected {
                failures.push(format!(
                    "{label}, {bytes} bytes, {what}: mount gave {:?} (then {}), plain dir gave {:?} (then {})",
                    got.0, got.1, expected.0, expected.1
                ));
            }
        }
    }

    // Take the tree down from the bottom, each directory by its path from the top (from 4,089
    // bytes down): rmdir at every length.
    veil.deepest = None;
    local.deepest = None;
    let mut teardown = Vec::new();
    for levels in (1..=tree.dirs.len()).rev() {
        let path = tree.prefix(levels);
        let expected = unlinkat(&local.root, path.as_slice(), UnlinkatFlags::RemoveDir);
        assert_eq!(expected, Ok(()), "{label}: rmdir on the plain directory");
        let got = unlinkat(&veil.root, path.as_slice(), UnlinkatFlags::RemoveDir);
        if got != expected {
            teardown.push(format!("{} bytes: {got:?}", path.len()));
        }
    }
    if !teardown.is_empty() {
        failures.push(format!(
            "{label}: rmdir of the tree by paths from the top, deepest first: {} of {} differ \
             from the plain dir's Ok(()), first {}",
            teardown.len(),
            tree.dirs.len(),
            teardown[..teardown.len().min(3)].join(", ")
        ));
    }
}

#[test]
fn long_paths_work_like_a_local_directory() {
    let vault = TestVault::new();
    let plain = tempfile::Builder::new()
        .prefix("veilfs-plain-")
        .tempdir()
        .unwrap();
    let mut failures = Vec::new();
    for component_len in [9, 255] {
        compare_long_paths(
            vault.mount_path(),
            plain.path(),
            &LongTree::new(component_len),
            &mut failures,
        );
    }
    drop(vault);
    assert!(
        failures.is_empty(),
        "{} mismatch(es):\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}

// ---------------------------------------------------------------------------------------------
// A full backing file system

/// A vault whose backing directory is on a tmpfs of its own (next to a `filler` directory),
/// mounted with `--cache-ttl 0` so that every lookup asks the daemon. Dropping it unmounts the
/// vault, then the tmpfs, even when the test panicked.
struct TmpfsVault {
    dir: tempfile::TempDir,
    tmpfs: PathBuf,
    backing: PathBuf,
    filler: PathBuf,
    mountpoint: PathBuf,
    passfile: PathBuf,
}

impl TmpfsVault {
    fn new(tmpfs_options: &str) -> TmpfsVault {
        require_fuse();
        let dir = tempfile::Builder::new()
            .prefix("veilfs-limits-")
            .tempdir()
            .unwrap();
        let root = fs::canonicalize(dir.path()).unwrap();
        let vault = TmpfsVault {
            dir,
            tmpfs: root.join("tmpfs"),
            backing: root.join("tmpfs/vault"),
            filler: root.join("tmpfs/filler"),
            mountpoint: root.join("mnt"),
            passfile: root.join("passfile"),
        };
        fs::create_dir(&vault.tmpfs).unwrap();
        fs::create_dir(&vault.mountpoint).unwrap();
        fs::write(&vault.passfile, format!("{PASSWORD}\n")).unwrap();
        let output = run(Command::new("mount")
            .args(["-t", "tmpfs", "-o", tmpfs_options, "tmpfs"])
            .arg(&vault.tmpfs));
        assert_success(&output, "mount -t tmpfs");
        fs::create_dir(&vault.backing).unwrap();
        fs::create_dir(&vault.filler).unwrap();
        let output = run(veilfs()
            .args(["init", "--kdf-memory", "1", "--kdf-iterations", "1"])
            .arg("--passfile")
            .arg(&vault.passfile)
            .arg(&vault.backing));
        assert_success(&output, "veilfs init");
        let output = run(veilfs()
            .args(["mount", "--cache-ttl", "0", "--passfile"])
            .arg(&vault.passfile)
            .arg(&vault.backing)
            .arg(&vault.mountpoint));
        assert_success(&output, "veilfs mount");
        assert!(is_mounted(&vault.mountpoint));
        vault
    }

    fn mnt(&self, name: &OsString) -> PathBuf {
        self.mountpoint.join(name)
    }

    /// Fills the tmpfs up to ENOSPC, then frees `slack` pages or inodes.
    fn fill(&self, resource: Resource, slack: u64) {
        match resource {
            Resource::Blocks => {
                let path = self.filler.join("blocks");
                let mut file = File::create(&path).unwrap();
                let page = [0x55u8; 4096];
                loop {
                    // One page per write: a write either gets its page or fails whole.
                    match file.write(&page) {
                        Ok(4096) => {}
                        Ok(n) => panic!("short write of {n} bytes to the filler"),
                        Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                        Err(e) => panic!("filling {}: {e}", path.display()),
                    }
                }
                let len = file.metadata().unwrap().len();
                file.set_len(len.saturating_sub(slack * 4096)).unwrap();
            }
            Resource::Inodes => {
                let mut made = Vec::new();
                loop {
                    let path = self.filler.join(format!("i{}", made.len()));
                    match File::create(&path) {
                        Ok(_) => made.push(path),
                        Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                        Err(e) => panic!("filling {}: {e}", path.display()),
                    }
                }
                for path in made.iter().rev().take(slack as usize) {
                    fs::remove_file(path).unwrap();
                }
            }
        }
    }

    /// Free pages and inodes of the tmpfs, for messages.
    fn free(&self) -> String {
        let st = statvfs(&self.tmpfs).unwrap();
        format!(
            "{} pages and {} inodes free",
            st.blocks_available(),
            st.files_available()
        )
    }

    fn unfill(&self) {
        for entry in fs::read_dir(&self.filler).unwrap() {
            fs::remove_file(entry.unwrap().path()).unwrap();
        }
    }

    /// `veilfs fsck CIPHERDIR`: None when it exited 0, else what it said.
    fn fsck(&self) -> Option<String> {
        let output = run(veilfs()
            .arg("fsck")
            .arg("--passfile")
            .arg(&self.passfile)
            .arg(&self.backing));
        if output.status.success() {
            None
        } else {
            Some(format!(
                "{}: {}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout).trim(),
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    }

    /// Every entry of the backing directory, recursively, with its type and size.
    fn backing_tree(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        walk(&self.backing, Path::new(""), &mut out);
        out
    }
}

fn walk(dir: &Path, rel: &Path, out: &mut BTreeSet<String>) {
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        let rel = rel.join(entry.file_name());
        let kind = meta.file_type();
        let what = if kind.is_dir() {
            "dir".to_string()
        } else if kind.is_file() {
            format!("file of {} bytes", meta.len())
        } else if kind.is_symlink() {
            "symlink".to_string()
        } else if kind.is_fifo() {
            "fifo".to_string()
        } else {
            "other".to_string()
        };
        out.insert(format!("{} ({what})", rel.display()));
        if kind.is_dir() {
            walk(&entry.path(), &rel, out);
        }
    }
}

impl Drop for TmpfsVault {
    fn drop(&mut self) {
        unmount_all(&self.mountpoint);
        for _ in 0..4 {
            if !is_mounted(&self.tmpfs) {
                break;
            }
            umount_or_detach(&self.tmpfs);
        }
        if is_mounted(&self.mountpoint) || is_mounted(&self.tmpfs) {
            // Leave the directory rather than delete through a mount.
            eprintln!(
                "TmpfsVault: still mounted; leaving {}",
                self.dir.path().display()
            );
            let dir = std::mem::replace(&mut self.dir, tempfile::TempDir::new().unwrap());
            let _ = dir.keep();
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Resource {
    Blocks,
    Inodes,
}

/// What a create makes, to check that a successful one works.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Made {
    Dir,
    File,
    Symlink,
    Fifo,
    /// A hard link to `base`, or `base2` renamed.
    Base,
}

type CreateFn = fn(&TmpfsVault, &OsString) -> Res<()>;

/// Every kind of create, each making `name` in the mount root.
fn creates() -> Vec<(&'static str, Made, CreateFn)> {
    vec![
        ("mkdir", Made::Dir, |v, name| {
            io_res(fs::create_dir(v.mnt(name)))
        }),
        ("create", Made::File, |v, name| {
            io_res(
                OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(v.mnt(name)),
            )
            .map(drop)
        }),
        ("symlink", Made::Symlink, |v, name| {
            io_res(std::os::unix::fs::symlink(
                "a target that is longer than a short symlink's few bytes",
                v.mnt(name),
            ))
        }),
        ("mknod S_IFREG", Made::File, |v, name| {
            nix::sys::stat::mknod(
                &v.mnt(name),
                SFlag::S_IFREG,
                Mode::from_bits_truncate(0o644),
                0,
            )
        }),
        ("mkfifo", Made::Fifo, |v, name| {
            nix::unistd::mkfifo(&v.mnt(name), Mode::from_bits_truncate(0o644))
        }),
        ("link", Made::Base, |v, name| {
            io_res(fs::hard_link(v.mountpoint.join("base"), v.mnt(name)))
        }),
        ("rename", Made::Base, |v, name| {
            io_res(fs::rename(v.mountpoint.join("base2"), v.mnt(name)))
        }),
    ]
}

/// One scenario: `resource` exhausted but for `slack` units; every create with a short and a
/// long (250-byte) name. Returns the mismatches.
fn full_backing(resource: Resource, tmpfs_options: &str, slacks: &[u64]) -> Vec<String> {
    let v = TmpfsVault::new(tmpfs_options);
    let mut failures = Vec::new();
    fs::write(v.mountpoint.join("base"), b"base").unwrap();
    fs::write(v.mountpoint.join("base2"), b"base").unwrap();
    let baseline = v.backing_tree();
    let listing = |failures: &mut Vec<String>, context: &str| -> BTreeSet<OsString> {
        let mut names = BTreeSet::new();
        match fs::read_dir(&v.mountpoint) {
            Ok(entries) => {
                for entry in entries {
                    match entry {
                        Ok(entry) => {
                            names.insert(entry.file_name());
                        }
                        Err(e) => failures.push(format!("{context}: readdir of the mount: {e}")),
                    }
                }
            }
            Err(e) => failures.push(format!("{context}: opening the mount root: {e}")),
        }
        names
    };
    let base_names: BTreeSet<OsString> = ["base", "base2"].iter().map(OsString::from).collect();
    assert_eq!(listing(&mut failures, "setup"), base_names);

    let mut round = 0;
    for &slack in slacks {
        for (what, made, create) in creates() {
            for long in [false, true] {
                round += 1;
                let prefix = format!("r{round}-");
                let name = OsString::from_vec(if long {
                    let mut name = prefix.into_bytes();
                    name.resize(250, b'L');
                    name
                } else {
                    format!("{prefix}{what}").replace(' ', "-").into_bytes()
                });
                let context = format!(
                    "{resource:?} full, {slack} left: {what} of a {} name",
                    if long { "250-byte" } else { "short" }
                );

                v.fill(resource, slack);
                let free = v.free();
                let result = create(&v, &name);
                v.unfill();
                eprintln!("{context} ({free}): {result:?}");
                if let Err(e) = result {
                    if e != Errno::ENOSPC && e != Errno::EDQUOT {
                        failures.push(format!("{context} ({free}) gave {e}, not ENOSPC"));
                    }
                }

                // What the mount shows.
                let shown = listing(&mut failures, &context);
                let mut expected = base_names.clone();
                if result.is_ok() {
                    expected.insert(name.clone());
                    if what == "rename" {
                        expected.remove(&OsString::from("base2"));
                    }
                }
                if shown != expected {
                    failures.push(format!(
                        "{context} ({result:?}): the mount lists {} entries {:?}, expected {:?}",
                        shown.len(),
                        shown.iter().map(short).collect::<Vec<_>>(),
                        expected.iter().map(short).collect::<Vec<_>>()
                    ));
                }
                for listed in &shown {
                    if let Err(e) = fs::symlink_metadata(v.mnt(listed)) {
                        failures.push(format!(
                            "{context} ({result:?}): {} is listed but lstat gives {e}",
                            short(listed)
                        ));
                    }
                }
                match (result, fs::symlink_metadata(v.mnt(&name))) {
                    (Ok(()), Ok(_)) => {
                        if let Err(e) = use_it(&v, &name, made) {
                            failures
                                .push(format!("{context} succeeded, but using it then fails: {e}"));
                        }
                    }
                    (Ok(()), Err(e)) => {
                        failures.push(format!("{context} succeeded, but lstat then gives {e}"))
                    }
                    (Err(_), Ok(meta)) => failures.push(format!(
                        "{context} failed, but a {:?} of that name then exists",
                        meta.file_type()
                    )),
                    (Err(_), Err(e)) if e.kind() == io::ErrorKind::NotFound => {}
                    (Err(_), Err(e)) => failures.push(format!(
                        "{context} failed, and lstat of the name then gives {e}, not ENOENT"
                    )),
                }

                // What fsck finds, with whatever succeeded still there.
                if let Some(report) = v.fsck() {
                    failures.push(format!("{context} ({result:?}): veilfs fsck: {report}"));
                }

                // Undo what succeeded, through the mount.
                if result.is_ok() {
                    let undone = match made {
                        Made::Dir => fs::remove_dir_all(v.mnt(&name)),
                        _ if what == "rename" => {
                            fs::rename(v.mnt(&name), v.mountpoint.join("base2"))
                        }
                        _ => fs::remove_file(v.mnt(&name)),
                    };
                    if let Err(e) = undone {
                        failures.push(format!("{context}: undoing it through the mount: {e}"));
                    }
                }

                // The backing directory must hold exactly what it held before.
                let now = v.backing_tree();
                if now != baseline {
                    let extra: Vec<_> = now.difference(&baseline).collect();
                    let missing: Vec<_> = baseline.difference(&now).collect();
                    failures.push(format!(
                        "{context} ({result:?}): debris in the backing directory: \
                         extra {extra:?}, missing {missing:?}"
                    ));
                    // Clear it, so that the next round starts clean.
                    for line in extra {
                        let name = line.split(['/', ' ']).next().unwrap();
                        let path = v.backing.join(name);
                        if path.is_dir() {
                            let _ = fs::remove_dir_all(&path);
                        } else {
                            let _ = fs::remove_file(&path);
                        }
                    }
                }
            }
        }
    }
    failures
}

/// A successful create must give a working entry (space is back when this runs).
fn use_it(v: &TmpfsVault, name: &OsString, made: Made) -> io::Result<()> {
    let path = v.mnt(name);
    match made {
        Made::Dir => {
            fs::write(path.join("inside"), b"x")?;
            let inside: Vec<_> = fs::read_dir(&path)?.collect::<io::Result<_>>()?;
            if inside.len() != 1 {
                return Err(io::Error::other(format!("{} entries inside", inside.len())));
            }
        }
        Made::File => {
            fs::write(&path, b"x")?;
            if fs::read(&path)? != b"x" {
                return Err(io::Error::other("reads back differently"));
            }
        }
        Made::Symlink => {
            fs::read_link(&path)?;
        }
        Made::Fifo => {
            if !fs::symlink_metadata(&path)?.file_type().is_fifo() {
                return Err(io::Error::other("not a FIFO"));
            }
        }
        Made::Base => {
            if fs::read(&path)? != b"base" {
                return Err(io::Error::other("reads back differently"));
            }
        }
    }
    Ok(())
}

/// A name for messages: long ones shortened.
fn short(name: &OsString) -> String {
    let bytes = name.as_bytes();
    if bytes.len() > 24 {
        format!(
            "{}...({} bytes)",
            String::from_utf8_lossy(&bytes[..12]),
            bytes.len()
        )
    } else {
        String::from_utf8_lossy(bytes).into_owned()
    }
}

#[test]
fn enospc_leaves_no_debris() {
    let mut failures = full_backing(Resource::Blocks, "size=2m", &[0, 1, 2, 3]);
    failures.extend(full_backing(
        Resource::Inodes,
        "size=2m,nr_inodes=64",
        &[0, 1, 2, 3],
    ));
    assert!(
        failures.is_empty(),
        "{} problem(s):\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}
