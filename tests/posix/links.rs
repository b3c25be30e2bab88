//! Symlinks, hard links, FIFOs and sockets.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::{FileExt, PermissionsExt};

use nix::fcntl::AT_FDCWD;
use nix::sys::stat::{mknod, Mode, SFlag};

use crate::common::io_res;
use crate::harness::Pair;
use crate::ops::{
    ino, link, list, lstat, mkdir, p, pattern, pwrite, read_file, readlink, rename, stat, symlink,
    truncate, unlink, write_file,
};

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
