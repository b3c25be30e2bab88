//! Looking at and changing the backing directory beside a mount: which backing entry is which,
//! and the changes a sync tool makes.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::common::TestVault;

/// Every path under `dir`, depth first, without following symlinks.
pub fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        out.push(path.clone());
        if fs::symlink_metadata(&path).unwrap().is_dir() {
            walk(&path, out);
        }
    }
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The one backing entry that appears in `dir` while `create` runs.
pub fn new_backing_entry(dir: &Path, create: impl FnOnce()) -> PathBuf {
    let before: BTreeSet<OsString> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    create();
    let added: Vec<OsString> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| !before.contains(n))
        .collect();
    assert_eq!(
        added.len(),
        1,
        "expected one new backing entry, got {added:?}"
    );
    dir.join(&added[0])
}

/// Overwrites backing file `target` with the bytes of `source` without replacing it (same
/// inode), as a sync tool writing in place does.
pub fn rewrite_in_place(target: &Path, source: &Path) {
    OpenOptions::new()
        .write(true)
        .open(target)
        .unwrap()
        .write_all_at(&fs::read(source).unwrap(), 0)
        .unwrap();
}

pub fn daemon_alive(vault: &TestVault) -> bool {
    !vault.daemon_pids().is_empty() && fs::metadata(vault.mount_path()).is_ok()
}
