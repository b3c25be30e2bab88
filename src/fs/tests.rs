//! The operations driven directly, without a kernel: a [`VeilFs`] over a new vault in a
//! temporary directory.

use std::ffi::OsStr;

use fuser::{FileHandle, RenameFlags};

use super::inodes::ROOT;
use super::{Caller, VeilFs};
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

fn write_new(fs: &VeilFs, caller: Caller, name: &str, contents: &[u8]) -> u64 {
    let (attr, fh) = fs
        .do_create(caller, ROOT, OsStr::new(name), 0o644, libc::O_RDWR)
        .unwrap();
    fs.do_write(FileHandle(fh), 0, contents, false).unwrap();
    fs.do_release(FileHandle(fh));
    attr.ino.0
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
    let me = Caller {
        uid: nix::unistd::geteuid().as_raw(),
        gid: nix::unistd::getegid().as_raw(),
    };
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
