//! Files: open flags, reads and writes at offsets, holes, unlinked open files, fsync,
//! fallocate.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use nix::fcntl::FallocateFlags;
use nix::sys::time::TimeSpec;

use crate::common::{io_res, TestVault};
use crate::harness::Pair;
use crate::ops::{
    list, lstat, mkdir, p, pattern, pread, pwrite, read_file, st_of, symlink, unlink, write_file,
};

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
        let meta = fs::metadata(vault.backing_of("sparse")).unwrap();
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
