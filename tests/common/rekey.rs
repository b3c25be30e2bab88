//! What the tests of `veilfs rekey` share (tests/rekey.rs, tests/rekey_hostile.rs): a tree
//! as a comparison sees it, and the commands.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use super::{lgetxattr, lsetxattr, run, user_xattrs, veilfs, TestVault};

pub const NEW_PASSWORD: &str = "a new password after the leak";

/// What a tree holds at one path, as the comparison sees it.
#[derive(Debug, PartialEq, Eq)]
pub enum Node {
    Dir {
        mode: u32,
        xattrs: Vec<(String, Vec<u8>)>,
    },
    File {
        mode: u32,
        data: Vec<u8>,
        xattrs: Vec<(String, Vec<u8>)>,
        link_group: PathBuf,
    },
    Symlink(PathBuf),
}

pub fn xattrs(path: &Path) -> Vec<(String, Vec<u8>)> {
    user_xattrs(path)
        .unwrap()
        .into_iter()
        .map(|name| {
            let value = lgetxattr(path, &name).unwrap();
            (name, value)
        })
        .collect()
}

pub fn setxattr(path: &Path, name: &str, value: &str) {
    lsetxattr(path, name, value.as_bytes()).unwrap();
}

/// Every entry under `root` by relative path; hard links share their group (the first path of
/// their inode, in sorted order).
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, Node> {
    let mut paths = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if fs::symlink_metadata(&path).unwrap().is_dir() {
                stack.push(path.clone());
            }
            paths.push(path);
        }
    }
    paths.sort();
    let mut groups: HashMap<u64, PathBuf> = HashMap::new();
    let mut tree = BTreeMap::new();
    for path in paths {
        let meta = fs::symlink_metadata(&path).unwrap();
        let relative = path.strip_prefix(root).unwrap().to_path_buf();
        let mode = meta.permissions().mode() & 0o7777;
        let node = if meta.is_dir() {
            Node::Dir {
                mode,
                xattrs: xattrs(&path),
            }
        } else if meta.file_type().is_symlink() {
            Node::Symlink(fs::read_link(&path).unwrap())
        } else {
            Node::File {
                mode,
                data: fs::read(&path).unwrap(),
                xattrs: xattrs(&path),
                link_group: groups
                    .entry(meta.ino())
                    .or_insert_with(|| relative.clone())
                    .clone(),
            }
        };
        tree.insert(relative, node);
    }
    tree
}

/// Fails with the paths that differ (at most ten, described briefly), never the whole trees.
pub fn assert_same_tree(
    got: &BTreeMap<PathBuf, Node>,
    expected: &BTreeMap<PathBuf, Node>,
    what: &str,
) {
    let brief = |node: Option<&Node>| match node {
        None => "absent".to_owned(),
        Some(Node::Dir { mode, xattrs }) => format!("dir {mode:o} xattrs {xattrs:?}"),
        Some(Node::Symlink(target)) => format!("symlink to {}", target.display()),
        Some(Node::File {
            mode,
            data,
            xattrs,
            link_group,
        }) => format!(
            "file {mode:o}, {} bytes ({} non-zero), xattrs {xattrs:?}, links with {}",
            data.len(),
            data.iter().filter(|&&b| b != 0).count(),
            link_group.display()
        ),
    };
    let differing: Vec<String> = got
        .keys()
        .chain(expected.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|path| got.get(*path) != expected.get(*path))
        .map(|path| {
            format!(
                "{}: got {}, expected {}",
                path.display(),
                brief(got.get(path)),
                brief(expected.get(path))
            )
        })
        .collect();
    assert!(
        differing.is_empty(),
        "{what}: {} paths differ:\n{}",
        differing.len(),
        differing[..differing.len().min(10)].join("\n")
    );
}

pub fn write_passfile(dir: &Path, name: &str, password: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, format!("{password}\n")).unwrap();
    path
}

pub fn config_text(vault: &TestVault) -> String {
    fs::read_to_string(vault.backing_path().join("veilfs.conf")).unwrap()
}

/// Every backing name (relative path) and the 18-byte header of every non-empty file.
pub fn backing_state(root: &Path) -> (HashSet<PathBuf>, HashSet<Vec<u8>>) {
    let (mut names, mut headers) = (HashSet::new(), HashSet::new());
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !name.starts_with("veilfs.") {
                names.insert(path.strip_prefix(root).unwrap().to_path_buf());
            }
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() && meta.len() >= 18 && !name.starts_with("veilfs.") {
                headers.insert(fs::read(&path).unwrap()[..18].to_vec());
            }
        }
    }
    (names, headers)
}

pub fn rekey(vault: &TestVault, passfile: &Path, new: &Path) -> Command {
    let mut cmd = veilfs();
    cmd.arg("rekey")
        .arg("--passfile")
        .arg(passfile)
        .arg("--new-passfile")
        .arg(new)
        .arg(vault.backing_path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

pub fn mount_with_password(vault: &TestVault, passfile: &Path) -> Output {
    run(veilfs()
        .arg("mount")
        .arg("--passfile")
        .arg(passfile)
        .arg(vault.backing_path())
        .arg(vault.mount_path()))
}
