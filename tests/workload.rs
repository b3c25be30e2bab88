//! A real workload on a real mount: a source tree (the Rust crate sources in the local cargo
//! registry, tarred up on the fly, plus a few links and special modes) is untarred into the
//! mount and into a plain directory, and compared with `diff -r` and a `find -printf` listing
//! of modes, sizes, times, link counts and symlink targets; then `cp -a` within the mount,
//! `find -inum` for a hard-linked file, and `rm -rf` of both trees, which must leave nothing
//! behind in the backing directory.
//!
//! `VEILFS_WORKLOAD_MB` sets how many megabytes of sources to use (default 20).

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::{run_with_timeout, sorted_names, TestVault};

const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// Runs a tool, panicking with its output unless it exits 0; returns its stdout.
fn sh(what: &str, cmd: &mut Command) -> String {
    let started = Instant::now();
    let out = run_with_timeout(cmd, TIMEOUT);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout (first 3000 bytes): {}\nstderr (first 3000 bytes): {}",
        out.status,
        &stdout[..stdout.len().min(3000)],
        String::from_utf8_lossy(&out.stderr[..out.stderr.len().min(3000)])
    );
    eprintln!("workload: {what}: {:?}", started.elapsed());
    stdout
}

/// The cargo registry's source directory (`~/.cargo/registry/src/<index>/`).
fn registry_sources() -> PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is not set")).join(".cargo")
        });
    let src = home.join("registry/src");
    let mut indexes: Vec<PathBuf> = fs::read_dir(&src)
        .unwrap_or_else(|e| panic!("no cargo registry sources at {}: {e}", src.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    indexes.sort();
    indexes
        .into_iter()
        .next()
        .expect("an index directory in the cargo registry")
}

fn tree_size(path: &Path) -> u64 {
    let meta = fs::symlink_metadata(path).unwrap();
    if meta.is_dir() {
        fs::read_dir(path)
            .unwrap()
            .map(|e| tree_size(&e.unwrap().path()))
            .sum()
    } else {
        meta.len()
    }
}

/// Crate directories in name order, up to `budget` bytes in all.
fn pick_crates(index: &Path, budget: u64) -> Vec<String> {
    let names = sorted_names(index);
    let mut picked = Vec::new();
    let mut total = 0;
    for name in names {
        let size = tree_size(&index.join(&name));
        if total + size > budget && !picked.is_empty() {
            continue;
        }
        total += size;
        picked.push(name);
    }
    eprintln!("workload: {} crates, {} bytes", picked.len(), total);
    picked
}

/// Things crate sources rarely have: hard links, symlinks, odd modes, empty dirs, holes.
fn make_extras(dir: &Path) {
    let extras = dir.join("veilfs-extras");
    fs::create_dir_all(extras.join("empty/deeper")).unwrap();
    fs::create_dir_all(extras.join("links")).unwrap();
    fs::write(
        extras.join("links/original.txt"),
        "hard-linked content\n".repeat(500),
    )
    .unwrap();
    fs::hard_link(
        extras.join("links/original.txt"),
        extras.join("hardlink.txt"),
    )
    .unwrap();
    fs::hard_link(
        extras.join("links/original.txt"),
        extras.join("links/second hardlink.txt"),
    )
    .unwrap();
    std::os::unix::fs::symlink("original.txt", extras.join("links/relative-symlink")).unwrap();
    std::os::unix::fs::symlink("/usr/share/doc", extras.join("absolute-symlink")).unwrap();
    std::os::unix::fs::symlink("does/not/exist", extras.join("dangling")).unwrap();
    let script = extras.join("script.sh");
    fs::write(&script, "#!/bin/sh\necho hello\n").unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let private = extras.join("private");
    fs::write(&private, "secret\n").unwrap();
    fs::set_permissions(&private, fs::Permissions::from_mode(0o600)).unwrap();
    let long = extras.join("n".repeat(240));
    fs::write(&long, "long name\n").unwrap();
    let sparse = fs::File::create(extras.join("sparse.bin")).unwrap();
    sparse.set_len(3 * 1024 * 1024 + 17).unwrap();
    drop(sparse);
    fs::write(
        extras.join("unaligned.bin"),
        (0..100_003u32)
            .map(|i| (i * 7 % 251) as u8)
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    fs::write(extras.join("empty-file"), b"").unwrap();
    fs::write(extras.join("name with spaces and ünïcode ☃"), b"x").unwrap();
}

/// `find DIR -printf` of everything diff -r does not look at: type, mode, size, mtime, link
/// count, owner, symlink target; sorted.
fn listing(dir: &Path) -> Vec<String> {
    let out = sh(
        &format!("find {} -printf", dir.display()),
        Command::new("find")
            .arg(dir)
            .arg("-mindepth")
            .arg("1")
            .arg("-printf")
            .arg("%P|%y|%m|%s|%T@|%n|%U:%G|%l\\0"),
    );
    let mut lines: Vec<String> = out
        .split('\0')
        .filter(|l| !l.is_empty())
        .map(|l| {
            // Directory sizes are the filesystem's business.
            let mut fields: Vec<&str> = l.split('|').collect();
            if fields[1] == "d" {
                fields[3] = "-";
            }
            fields.join("|")
        })
        .collect();
    lines.sort();
    lines
}

fn assert_same_listing(what: &str, got: &[String], expected: &[String]) {
    if got == expected {
        return;
    }
    let only_got: Vec<&String> = got
        .iter()
        .filter(|l| !expected.contains(l))
        .take(20)
        .collect();
    let only_expected: Vec<&String> = expected
        .iter()
        .filter(|l| !got.contains(l))
        .take(20)
        .collect();
    panic!(
        "{what}: listings differ ({} vs {} entries)\nonly in the mount:\n  {}\nonly in the plain dir:\n  {}",
        got.len(),
        expected.len(),
        only_got.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n  "),
        only_expected.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n  ")
    );
}

#[test]
fn untar_diff_copy_and_remove_a_source_tree() {
    let started = Instant::now();
    let vault = TestVault::new();
    let scratch = vault.scratch().to_path_buf();
    let mnt = vault.mount_path().to_path_buf();
    let budget = std::env::var("VEILFS_WORKLOAD_MB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(20)
        << 20;

    // The tarball: crate sources plus the extras.
    let index = registry_sources();
    let crates = pick_crates(&index, budget);
    make_extras(&scratch);
    let tarball = scratch.join("sources.tar");
    sh(
        "tar -cf (building the tarball)",
        Command::new("tar")
            .arg("-cf")
            .arg(&tarball)
            .arg("-C")
            .arg(&index)
            .args(&crates)
            .arg("-C")
            .arg(&scratch)
            .arg("veilfs-extras"),
    );
    eprintln!(
        "workload: tarball of {} bytes",
        fs::metadata(&tarball).unwrap().len()
    );

    // Untar into a plain directory and into the mount.
    let plain = scratch.join("plain");
    fs::create_dir(&plain).unwrap();
    sh(
        "tar -xf into the plain dir",
        Command::new("tar")
            .arg("-xf")
            .arg(&tarball)
            .arg("-C")
            .arg(&plain),
    );
    let tree = mnt.join("tree");
    fs::create_dir(&tree).unwrap();
    sh(
        "tar -xf into the mount",
        Command::new("tar")
            .arg("-xf")
            .arg(&tarball)
            .arg("-C")
            .arg(&tree),
    );

    sh(
        "diff -r plain mount",
        Command::new("diff")
            .arg("-r")
            .arg("--no-dereference")
            .arg(&plain)
            .arg(&tree),
    );
    let expected = listing(&plain);
    assert!(
        expected.len() > 500,
        "only {} entries in the tree",
        expected.len()
    );
    assert_same_listing("after untar", &listing(&tree), &expected);

    // Hard links: both names are one inode, found by find -inum.
    let original = tree.join("veilfs-extras/links/original.txt");
    let ino = fs::metadata(&original).unwrap().ino();
    assert_eq!(fs::metadata(&original).unwrap().nlink(), 3);
    let found = sh(
        "find -inum",
        Command::new("find")
            .arg(&tree)
            .arg("-inum")
            .arg(ino.to_string()),
    );
    let mut found: Vec<&str> = found.lines().collect();
    found.sort();
    let mut wanted: Vec<String> = [
        "hardlink.txt",
        "links/original.txt",
        "links/second hardlink.txt",
    ]
    .iter()
    .map(|n| tree.join("veilfs-extras").join(n).display().to_string())
    .collect();
    wanted.sort();
    assert_eq!(found, wanted, "find -inum {ino}");

    // The same tree read back through tar.
    let retar = sh(
        "tar -cf - from the mount | listing",
        Command::new("sh").arg("-c").arg(format!(
            "tar -cf - -C '{}' . | tar -tvf - | wc -l",
            tree.display()
        )),
    );
    let retar_entries: usize = retar.trim().parse().unwrap();
    assert_eq!(
        retar_entries,
        expected.len() + 1,
        "entries tar sees in the mount (with ./)"
    );

    // cp -a within the mount.
    let copy = mnt.join("copy");
    sh(
        "cp -a within the mount",
        Command::new("cp").arg("-a").arg(&tree).arg(&copy),
    );
    sh(
        "diff -r plain copy",
        Command::new("diff")
            .arg("-r")
            .arg("--no-dereference")
            .arg(&plain)
            .arg(&copy),
    );
    assert_same_listing("after cp -a", &listing(&copy), &expected);
    let copy_ino = fs::metadata(copy.join("veilfs-extras/links/original.txt"))
        .unwrap()
        .ino();
    assert_ne!(copy_ino, ino, "cp -a made a hard link across trees");
    let found = sh(
        "find -inum in the copy",
        Command::new("find")
            .arg(&mnt)
            .arg("-inum")
            .arg(copy_ino.to_string()),
    );
    assert_eq!(found.lines().count(), 3, "cp -a keeps hard links: {found}");

    // A remount keeps it all.
    vault.remount();
    sh(
        "diff -r plain mount after remount",
        Command::new("diff")
            .arg("-r")
            .arg("--no-dereference")
            .arg(&plain)
            .arg(&tree),
    );
    assert_same_listing("after remount", &listing(&tree), &expected);

    // rm -rf of both trees leaves only the vault's own files behind.
    sh("rm -rf copy", Command::new("rm").arg("-rf").arg(&copy));
    sh("rm -rf tree", Command::new("rm").arg("-rf").arg(&tree));
    let left: Vec<String> = fs::read_dir(&mnt)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.is_empty(), "left in the mount after rm -rf: {left:?}");
    assert_eq!(
        sorted_names(vault.backing_path()),
        ["veilfs.conf", "veilfs.diriv"],
        "left in the backing dir after rm -rf"
    );
    eprintln!("workload: total {:?}", started.elapsed());
}
