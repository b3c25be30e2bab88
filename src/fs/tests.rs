//! The operations driven directly, without a kernel: a [`VeilFs`] over a new vault in a
//! temporary directory.

use std::ffi::OsStr;

use fuser::{FileHandle, RenameFlags};

use super::inodes::ROOT;
use super::{sys, Caller, VeilFs};
use crate::config::Features;
use crate::crypto::keys::MasterKey;
use crate::vault::Vault;

/// The adapter over a new vault in a temporary directory, driven without a kernel.
fn unmounted() -> (tempfile::TempDir, VeilFs) {
    let tmp = tempfile::tempdir().unwrap();
    let vault = Vault::open(
        tmp.path(),
        &MasterKey::generate().derive(),
        &Features::default(),
    )
    .unwrap();
    vault.initialize_root().unwrap();
    (tmp, VeilFs::new(vault).unwrap())
}

/// The user running the tests, as a request from them would say.
fn me() -> Caller {
    Caller {
        uid: nix::unistd::geteuid().as_raw(),
        gid: nix::unistd::getegid().as_raw(),
    }
}

fn write_new(fs: &VeilFs, caller: Caller, name: &str, contents: &[u8]) -> u64 {
    write_new_in(fs, caller, ROOT, name, contents)
}

/// Creates file `name` in directory `parent` holding `contents`; its inode number.
fn write_new_in(fs: &VeilFs, caller: Caller, parent: u64, name: &str, contents: &[u8]) -> u64 {
    let (attr, fh) = fs
        .do_create(caller, parent, OsStr::new(name), 0o644, libc::O_RDWR)
        .unwrap();
    fs.do_write(FileHandle(fh), 0, contents, false).unwrap();
    fs.do_release(FileHandle(fh));
    attr.ino.0
}

/// The contents of file `name` in directory `parent`, through lookup, open and read.
fn read_back(fs: &VeilFs, parent: u64, name: &str) -> Vec<u8> {
    let ino = fs.do_lookup(parent, OsStr::new(name)).unwrap().ino.0;
    let fh = FileHandle(fs.do_open(ino, libc::O_RDONLY).unwrap());
    let read = fs.do_read(fh, 0, 1 << 16).unwrap();
    fs.do_release(fh);
    read
}

/// The names a listing of directory `ino` shows, "." and ".." included.
fn listed(fs: &VeilFs, ino: u64) -> Vec<String> {
    let fh = FileHandle(fs.do_opendir(ino).unwrap());
    let mut names = Vec::new();
    fs.do_readdir(fh, 0, |_, _, _, name| {
        names.push(name.to_string_lossy().into_owned());
        false
    })
    .unwrap();
    fs.do_releasedir(fh);
    names.sort();
    names
}

/// The errno an operation failed with.
fn errno_of<T: std::fmt::Debug>(result: crate::error::Result<T>) -> i32 {
    result.unwrap_err().errno()
}

/// Names in the backing directory `dir` that are long-name sidecars.
fn sidecars(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("veilfs.longname.") && name.ends_with(".name"))
        .collect()
}

/// The soak's wrong reads (a file only ever renamed into place read as 0 or 37 bytes): a
/// lookup answered with a file's number, then the file replaced and the number given by
/// the backing file system to a new file. The kernel handles replies in no fixed order, so
/// it could take that lookup's reply after the new file's (whose next generation it had
/// already accepted), and hold the old name under the number; an open of it then reached
/// the new file: empty, or half written. Now the looked-up inode stays pinned: its number
/// goes to no other file, and the open reaches the file the lookup found.
#[test]
fn a_lookup_answered_just_before_its_name_is_replaced_opens_the_file_it_found() {
    let (_tmp, fs) = unmounted();
    let me = me();
    write_new(&fs, me, "sealed", b"the old contents");
    let found = fs.do_lookup(ROOT, OsStr::new("sealed")).unwrap().ino.0;
    write_new(&fs, me, "tmp", b"the new contents");
    let no_flags = RenameFlags::empty();
    fs.do_rename(
        ROOT,
        OsStr::new("tmp"),
        ROOT,
        OsStr::new("sealed"),
        no_flags,
    )
    .unwrap();
    let reused = (0..300)
        .map(|i| format!("new{i}"))
        .find(|name| write_new(&fs, me, name, b"") == found);
    let fh = FileHandle(fs.do_open(found, libc::O_RDONLY).unwrap());
    let read = String::from_utf8_lossy(&fs.do_read(fh, 0, 100).unwrap()).into_owned();
    fs.do_release(fh);
    assert_eq!(read, "the old contents");
    assert_eq!(
        reused, None,
        "a new file got the number of the looked-up one"
    );
}

#[test]
fn a_file_written_reads_back_and_shows_its_size() {
    let (_tmp, fs) = unmounted();
    let ino = write_new(&fs, me(), "notes.txt", b"written through the operations");
    assert_eq!(
        read_back(&fs, ROOT, "notes.txt"),
        b"written through the operations"
    );
    assert_eq!(fs.do_getattr(ino, None).unwrap().size, 30);
    assert_eq!(
        fs.do_lookup(ROOT, OsStr::new("notes.txt")).unwrap().ino.0,
        ino
    );
}

#[test]
fn directories_list_their_entries_and_are_removed_only_when_empty() {
    let (_tmp, fs) = unmounted();
    let dir = fs
        .do_mkdir(me(), ROOT, OsStr::new("docs"), 0o755)
        .unwrap()
        .ino
        .0;
    write_new_in(&fs, me(), dir, "inside", b"x");
    assert_eq!(listed(&fs, ROOT), [".", "..", "docs"]);
    assert_eq!(listed(&fs, dir), [".", "..", "inside"]);
    assert_eq!(
        errno_of(fs.do_rmdir(ROOT, OsStr::new("docs"))),
        libc::ENOTEMPTY
    );
    assert_eq!(
        errno_of(fs.do_rmdir(dir, OsStr::new("inside"))),
        libc::ENOTDIR
    );
    fs.do_unlink(dir, OsStr::new("inside")).unwrap();
    fs.do_rmdir(ROOT, OsStr::new("docs")).unwrap();
    assert_eq!(listed(&fs, ROOT), [".", ".."]);
    assert_eq!(
        errno_of(fs.do_lookup(ROOT, OsStr::new("docs"))),
        libc::ENOENT
    );
}

#[test]
fn missing_and_existing_names_give_enoent_and_eexist() {
    let (_tmp, fs) = unmounted();
    let missing = OsStr::new("missing");
    assert_eq!(errno_of(fs.do_lookup(ROOT, missing)), libc::ENOENT);
    assert_eq!(errno_of(fs.do_unlink(ROOT, missing)), libc::ENOENT);
    assert_eq!(errno_of(fs.do_rmdir(ROOT, missing)), libc::ENOENT);
    let no_flags = RenameFlags::empty();
    let renamed = fs.do_rename(ROOT, missing, ROOT, OsStr::new("b"), no_flags);
    assert_eq!(errno_of(renamed), libc::ENOENT);

    fs.do_mkdir(me(), ROOT, OsStr::new("d"), 0o755).unwrap();
    let again = fs.do_mkdir(me(), ROOT, OsStr::new("d"), 0o755);
    assert_eq!(errno_of(again), libc::EEXIST);
    write_new(&fs, me(), "f", b"");
    let exclusive = fs.do_create(me(), ROOT, OsStr::new("f"), 0o644, libc::O_EXCL);
    assert_eq!(errno_of(exclusive), libc::EEXIST);
}

#[test]
fn a_rename_moves_a_file_between_directories_and_refuses_a_full_target() {
    let (_tmp, fs) = unmounted();
    let a = fs
        .do_mkdir(me(), ROOT, OsStr::new("a"), 0o755)
        .unwrap()
        .ino
        .0;
    let b = fs
        .do_mkdir(me(), ROOT, OsStr::new("b"), 0o755)
        .unwrap()
        .ino
        .0;
    write_new_in(&fs, me(), a, "moving", b"contents");
    let no_flags = RenameFlags::empty();
    fs.do_rename(a, OsStr::new("moving"), b, OsStr::new("moved"), no_flags)
        .unwrap();
    assert_eq!(
        errno_of(fs.do_lookup(a, OsStr::new("moving"))),
        libc::ENOENT
    );
    assert_eq!(read_back(&fs, b, "moved"), b"contents");

    // A directory may replace an empty directory only.
    let renamed = fs.do_rename(ROOT, OsStr::new("a"), ROOT, OsStr::new("b"), no_flags);
    assert_eq!(errno_of(renamed), libc::ENOTEMPTY);
    fs.do_unlink(b, OsStr::new("moved")).unwrap();
    fs.do_rename(ROOT, OsStr::new("a"), ROOT, OsStr::new("b"), no_flags)
        .unwrap();
    assert_eq!(listed(&fs, ROOT), [".", "..", "b"]);
}

#[test]
fn user_xattrs_round_trip_and_others_are_not_supported() {
    let (_tmp, fs) = unmounted();
    let ino = write_new(&fs, me(), "tagged", b"");
    let color = OsStr::new("user.color");
    fs.do_setxattr(ino, color, b"blue", 0).unwrap();
    assert_eq!(fs.do_getxattr(ino, color).unwrap(), b"blue");
    assert_eq!(fs.do_listxattr(ino).unwrap(), b"user.color\0");
    fs.do_removexattr(ino, color).unwrap();
    assert_eq!(errno_of(fs.do_getxattr(ino, color)), sys::ENOATTR);
    assert_eq!(fs.do_listxattr(ino).unwrap(), b"");
    let trusted = fs.do_getxattr(ino, OsStr::new("trusted.x"));
    assert_eq!(errno_of(trusted), libc::EOPNOTSUPP);
}

#[test]
fn a_long_name_gets_a_sidecar_that_goes_with_its_entry_or_with_a_failed_create() {
    let (tmp, fs) = unmounted();
    let long = "l".repeat(200);
    write_new(&fs, me(), &long, b"long-named");
    assert_eq!(sidecars(tmp.path()).len(), 1);
    assert_eq!(read_back(&fs, ROOT, &long), b"long-named");
    assert_eq!(listed(&fs, ROOT), [".", "..", long.as_str()]);
    fs.do_unlink(ROOT, OsStr::new(&long)).unwrap();
    assert_eq!(sidecars(tmp.path()), Vec::<String>::new());

    // mknod(2) makes no directories: the create fails after the sidecar was written.
    let mode = libc::S_IFDIR | 0o755;
    let failed = fs.do_mknod(me(), ROOT, OsStr::new(&"m".repeat(200)), mode, 0);
    assert_eq!(errno_of(failed), libc::EPERM);
    assert_eq!(sidecars(tmp.path()), Vec::<String>::new());
    assert_eq!(listed(&fs, ROOT), [".", ".."]);
}
