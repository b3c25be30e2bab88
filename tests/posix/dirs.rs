//! Directories: readdir, mkdir, rmdir, unlink, and every kind of rename.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;

use nix::fcntl::RenameFlags;
use nix::sys::stat::{mknod, Mode, SFlag};

use crate::common::io_res;
use crate::common::sorted_names;
use crate::harness::Pair;
use crate::ops::{
    ino, link, list, lstat, mkdir, p, read_file, rename, rename2, rmdir, stat, symlink, unlink,
    write_file,
};

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
        sorted_names(t.vault.backing_path()) == ["veilfs.conf", "veilfs.diriv"],
        || {
            format!(
                "backing root after deleting everything: {:?}",
                sorted_names(t.vault.backing_path())
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
