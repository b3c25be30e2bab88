//! Names: every length from 1 to 255 bytes (long names are stored with sidecars) in every
//! operation, and unusual characters.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

use nix::fcntl::RenameFlags;
use nix::sys::stat::{mknod, Mode, SFlag};

use crate::common::io_res;
use crate::common::sorted_names;
use crate::harness::Pair;
use crate::ops::{
    link, list, lstat, mkdir, p, pattern, read_file, readlink, rename, rename2, rmdir, symlink,
    unlink, write_file,
};

/// A name of `len` bytes that differs from other lengths' names in its first byte.
pub fn name_of_len(len: usize, tag: u8) -> OsString {
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
            let backing = t.vault.backing_of(dir);
            let left = sorted_names(&backing);
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
    let left = sorted_names(&t.vault.backing_of("n"));
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
    let left = sorted_names(&t.vault.backing_of("d"));
    t.check(left == ["veilfs.diriv"], || {
        format!("backing dir of d at the end holds {left:?}")
    });
    t.finish();
}
