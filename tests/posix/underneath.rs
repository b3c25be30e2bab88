//! Changes made to the backing directory behind the mount's back (as sync tools make them):
//! listings skip what is foreign or corrupt, deleted and replaced files read as they are now,
//! and the daemon never crashes.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::backing::{daemon_alive, new_backing_entry, rewrite_in_place};
use crate::common::{cp_a, io_res, wait_for, Res, TestVault};
use crate::ops::pattern;

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
    let backing = vault.backing_of("d");
    let alpha = vault.backing_of("d/alpha");
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

/// A vault mounted with `--cache-ttl 0` (the kernel asks the daemon on every access: no
/// waiting out a cache time), holding `a` (9,000 bytes) and `b` (20,000): the vault, and the
/// backing files of `a` and `b`.
fn vault_with_a_and_b() -> (TestVault, PathBuf, PathBuf) {
    let vault = TestVault::unmounted();
    vault.mount_with(&["--cache-ttl", "0"]);
    let (mnt, root) = (vault.mount_path(), vault.backing_path());
    let a = new_backing_entry(root, || fs::write(mnt.join("a"), pattern(9000, 1)).unwrap());
    let b = new_backing_entry(root, || {
        fs::write(mnt.join("b"), pattern(20_000, 2)).unwrap()
    });
    (vault, a, b)
}

#[test]
fn backing_file_replaced_behind_the_mounts_back() {
    let (vault, a, b) = vault_with_a_and_b();
    let mnt = vault.mount_path();
    let root = vault.backing_path().to_path_buf();
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
    let (vault, a, b) = vault_with_a_and_b();
    let mnt = vault.mount_path();
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
    let (vault, a, b) = vault_with_a_and_b();
    let mnt = vault.mount_path();
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
        cp_a(&saved, &b);
        reused = fs::metadata(&b).unwrap().ino() == a_ino;
        if reused {
            break;
        }
        fs::remove_dir_all(&b).unwrap();
    }
    if !reused {
        cp_a(&saved, &b);
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
