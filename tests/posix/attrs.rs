//! Attributes: stat, chmod, chown, utimensat, truncate, statfs.

use std::fs::{self, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::sys::time::TimeSpec;

use crate::common::{io_res, TestVault};
use crate::harness::Pair;
use crate::ops::{
    lstat, mkdir, p, pattern, pwrite, read_file, stat, symlink, times, truncate, utimens,
    write_file,
};

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
