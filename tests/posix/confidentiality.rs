//! No plaintext reaches the backing directory: names, contents, symlink targets, xattrs, the
//! daemon's command line; repeating plaintext does not repeat in the ciphertext.

use std::collections::BTreeSet;
use std::fs::{self, OpenOptions};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileExt, FileTypeExt};

use nix::sys::stat::Mode;

use crate::backing::{contains, walk};
use crate::common::{xattr, TestVault};
use crate::ops::{getxattr, mkdir, setxattr};

#[test]
fn backing_dir_holds_no_plaintext() {
    let vault = TestVault::new();
    let mnt = vault.mount_path();
    let marker = "Zq7MARKERplainXw";
    let long_name = format!("{marker}-long-{}", "L".repeat(200));
    fs::create_dir(mnt.join(format!("dir-{marker}"))).unwrap();
    let content = format!("{marker} file content {marker}\n").repeat(500);
    fs::write(
        mnt.join(format!("dir-{marker}/file-{marker}.txt")),
        &content,
    )
    .unwrap();
    fs::write(mnt.join(format!("dir-{marker}/{long_name}")), &content).unwrap();
    // Content that repeats within and across blocks (an ECB-like leak would show it).
    fs::write(mnt.join("blocks"), marker.repeat(4096)).unwrap();
    // Small and unaligned writes.
    let small = mnt.join(format!("small-{marker}"));
    fs::write(&small, marker).unwrap();
    let f = OpenOptions::new().write(true).open(&small).unwrap();
    f.write_all_at(marker.as_bytes(), 4090).unwrap();
    drop(f);
    std::os::unix::fs::symlink(
        format!("/target/{marker}/x"),
        mnt.join(format!("link-{marker}")),
    )
    .unwrap();
    std::os::unix::fs::symlink(format!("rel-{marker}"), mnt.join("link2")).unwrap();
    setxattr(
        mnt,
        "blocks",
        &format!("user.{marker}"),
        format!("value-{marker}").as_bytes(),
        0,
    )
    .unwrap();
    setxattr(
        mnt,
        format!("dir-{marker}"),
        "user.plain",
        format!("value-{marker}").as_bytes(),
        0,
    )
    .unwrap();
    mkdir(mnt, format!("dir-{marker}/{long_name}-dir")).unwrap();
    nix::unistd::mkfifo(
        &mnt.join(format!("fifo-{marker}")),
        Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    fs::rename(mnt.join("blocks"), mnt.join(format!("renamed-{marker}"))).unwrap();

    let needles = [
        marker.as_bytes().to_vec(),
        marker.to_lowercase().into_bytes(),
        b"MARKERplain".to_vec(),
    ];
    let mut leaks = Vec::new();
    let mut paths = Vec::new();
    walk(vault.backing_path(), &mut paths);
    assert!(
        paths.len() >= 10,
        "backing dir has only {} entries",
        paths.len()
    );
    for path in &paths {
        let name = path.file_name().unwrap().as_bytes().to_vec();
        let meta = fs::symlink_metadata(path).unwrap();
        let mut blobs = vec![("name", name)];
        if meta.is_file() {
            blobs.push(("content", fs::read(path).unwrap()));
        }
        if meta.file_type().is_symlink() {
            blobs.push((
                "symlink target",
                fs::read_link(path).unwrap().into_os_string().into_vec(),
            ));
        }
        if !meta.file_type().is_symlink() && !meta.file_type().is_fifo() {
            for xname in xattr::list(path).unwrap_or_default() {
                let xname = String::from_utf8_lossy(&xname).into_owned();
                let value = xattr::get(path, &xname).unwrap_or_default();
                blobs.push(("xattr name", xname.into_bytes()));
                blobs.push(("xattr value", value));
            }
        }
        for (what, blob) in blobs {
            for needle in &needles {
                if contains(&blob, needle) {
                    leaks.push(format!(
                        "{} {what} contains {:?}",
                        path.display(),
                        String::from_utf8_lossy(needle)
                    ));
                }
            }
        }
    }
    // Also nothing in the mount process's command line or the backing dir's listing as text.
    let daemons = vault.daemon_pids();
    assert!(!daemons.is_empty(), "no daemon process found");
    for pid in daemons {
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        for needle in &needles {
            assert!(
                !contains(&cmdline, needle),
                "the daemon's command line shows {:?}: {:?}",
                String::from_utf8_lossy(needle),
                String::from_utf8_lossy(&cmdline)
            );
        }
    }
    let listing = format!("{paths:?}");
    assert!(!listing.contains(marker), "backing paths show the marker");
    assert!(
        leaks.is_empty(),
        "plaintext in the backing dir:\n  {}",
        leaks.join("\n  ")
    );
    // And the mount still shows it all.
    assert_eq!(
        fs::read_to_string(mnt.join(format!("dir-{marker}/file-{marker}.txt"))).unwrap(),
        content
    );
    assert_eq!(
        getxattr(mnt, format!("renamed-{marker}"), &format!("user.{marker}")).unwrap(),
        format!("value-{marker}").as_bytes()
    );

    // Repeating plaintext does not repeat in the ciphertext: no 16-byte AES block of the
    // backing file of a file that repeats a 16-byte pattern occurs twice.
    let blocks = fs::read(vault.backing_of(format!("renamed-{marker}"))).unwrap();
    assert_eq!(
        blocks.len(),
        18 + 16 * 4096,
        "backing size of a 64 KiB file"
    );
    let mut seen = BTreeSet::new();
    for chunk in blocks[18..].chunks(16) {
        assert!(seen.insert(chunk), "a 16-byte ciphertext block repeats");
    }
    // Two files with the same content differ in the backing dir (one file ID each), and so do
    // the same bytes written twice to one file.
    fs::write(mnt.join("twin1"), &content).unwrap();
    fs::write(mnt.join("twin2"), &content).unwrap();
    let (a, b) = (
        fs::read(vault.backing_of("twin1")).unwrap(),
        fs::read(vault.backing_of("twin2")).unwrap(),
    );
    assert_eq!(a.len(), b.len());
    assert_ne!(a[..18], b[..18], "two files share a header (file ID)");
    assert!(
        a[18..]
            .chunks(16)
            .zip(b[18..].chunks(16))
            .all(|(x, y)| x != y),
        "two files share ciphertext"
    );
}
