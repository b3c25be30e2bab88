//! A remount keeps everything observable about a tree.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fmt::Debug;
use std::fs::{self, OpenOptions};
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::sys::stat::Mode;

use crate::backing::walk;
use crate::common::TestVault;
use crate::names::name_of_len;
use crate::ops::{getxattr, kind_of, listxattr, pattern, setxattr};

/// Everything observable about a tree, for comparing it before and after a remount.
#[derive(Debug, PartialEq)]
enum Node {
    Dir {
        mode: u32,
        xattrs: BTreeMap<String, Vec<u8>>,
    },
    File {
        mode: u32,
        nlink: u64,
        content: Vec<u8>,
        xattrs: BTreeMap<String, Vec<u8>>,
    },
    Symlink {
        target: PathBuf,
    },
    Other {
        kind: &'static str,
        mode: u32,
    },
}

fn manifest(root: &Path) -> BTreeMap<PathBuf, Node> {
    let mut paths = Vec::new();
    walk(root, &mut paths);
    let mut out = BTreeMap::new();
    for path in paths {
        let meta = fs::symlink_metadata(&path).unwrap();
        let rel = path.strip_prefix(root).unwrap().to_path_buf();
        let xattrs = || {
            listxattr(root, &rel)
                .unwrap()
                .into_iter()
                .map(|n| {
                    let v = getxattr(root, &rel, &n).unwrap();
                    (n, v)
                })
                .collect()
        };
        let node = match kind_of(meta.file_type()) {
            "dir" => Node::Dir {
                mode: meta.mode() & 0o7777,
                xattrs: xattrs(),
            },
            "file" => Node::File {
                mode: meta.mode() & 0o7777,
                nlink: meta.nlink(),
                content: fs::read(&path).unwrap(),
                xattrs: xattrs(),
            },
            "symlink" => Node::Symlink {
                target: fs::read_link(&path).unwrap(),
            },
            kind => Node::Other {
                kind,
                mode: meta.mode() & 0o7777,
            },
        };
        out.insert(rel, node);
    }
    out
}

fn build_sample_tree(root: &Path) {
    fs::create_dir_all(root.join("a/b/c")).unwrap();
    fs::create_dir(root.join(name_of_len(230, 1))).unwrap();
    for i in 0..40usize {
        let dir = match i % 4 {
            0 => root.to_path_buf(),
            1 => root.join("a"),
            2 => root.join("a/b/c"),
            _ => root.join(name_of_len(230, 1)),
        };
        let name = if i % 5 == 0 {
            name_of_len(150 + i * 2, i as u8)
        } else {
            OsString::from(format!("file {i} ☃"))
        };
        fs::write(dir.join(&name), pattern(i * 997 % 20_000, i as u8)).unwrap();
    }
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(root.join("a/sparse"))
        .unwrap();
    f.write_all_at(b"end", 1 << 20).unwrap();
    fs::set_permissions(root.join("a/sparse"), fs::Permissions::from_mode(0o751)).unwrap();
    fs::hard_link(root.join("a/sparse"), root.join("a/b/sparse-link")).unwrap();
    std::os::unix::fs::symlink("../sparse", root.join("a/b/link")).unwrap();
    std::os::unix::fs::symlink("/abs/target", root.join("abs-link")).unwrap();
    nix::unistd::mkfifo(&root.join("a/fifo"), Mode::from_bits_truncate(0o640)).unwrap();
    setxattr(root, "a/sparse", "user.k", b"v", 0).unwrap();
    setxattr(root, "a/b", "user.dir", b"dir value", 0).unwrap();
}

#[test]
fn remount_keeps_everything() {
    let vault = TestVault::new();
    let plain = tempfile::tempdir().unwrap();
    build_sample_tree(vault.mount_path());
    build_sample_tree(plain.path());
    let before = manifest(vault.mount_path());
    assert_eq!(
        before,
        manifest(plain.path()),
        "the mount's tree differs from the plain one"
    );
    vault.remount();
    let after = manifest(vault.mount_path());
    let differences: Vec<String> = before
        .keys()
        .chain(after.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|k| before.get(*k) != after.get(*k))
        .map(|k| {
            format!(
                "{}: before {:?}, after {:?}",
                k.display(),
                before.get(k).map(short),
                after.get(k).map(short)
            )
        })
        .collect();
    assert!(
        differences.is_empty(),
        "changed by a remount:\n  {}",
        differences.join("\n  ")
    );
    // And it is still writable.
    fs::write(vault.mount_path().join("a/after-remount"), b"ok").unwrap();
    assert_eq!(
        fs::read(vault.mount_path().join("a/after-remount")).unwrap(),
        b"ok"
    );
}

fn short(node: &Node) -> String {
    match node {
        Node::File {
            mode,
            nlink,
            content,
            xattrs,
        } => {
            format!(
                "file mode {mode:o} nlink {nlink} {} bytes xattrs {:?}",
                content.len(),
                xattrs.keys()
            )
        }
        other => format!("{other:?}"),
    }
}
