//! A plaintext tree as the rotation tests compare it: every entry by relative path, with its
//! mode, contents or target, user xattrs, and which hard links share an inode.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::xattr;

/// What a tree holds at one path.
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
        /// The first path (in sorted order) of the file's inode: hard links share it.
        link_group: PathBuf,
    },
    Symlink(PathBuf),
}

pub type Tree = BTreeMap<PathBuf, Node>;

/// Names the path an error is about: a crash check reports it rather than panicking.
fn at(path: &Path) -> impl FnOnce(io::Error) -> io::Error + '_ {
    move |e| io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

fn xattrs(path: &Path) -> io::Result<Vec<(String, Vec<u8>)>> {
    xattr::user_names(path)
        .map_err(at(path))?
        .into_iter()
        .map(|name| Ok((name.clone(), xattr::get(path, &name).map_err(at(path))?)))
        .collect()
}

/// Every entry under `root`, or the first one that could not be read.
pub fn try_snapshot(root: &Path) -> io::Result<Tree> {
    let mut paths = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).map_err(at(&dir))? {
            let path = entry.map_err(at(&dir))?.path();
            if fs::symlink_metadata(&path).map_err(at(&path))?.is_dir() {
                stack.push(path.clone());
            }
            paths.push(path);
        }
    }
    paths.sort();
    let mut groups: HashMap<u64, PathBuf> = HashMap::new();
    let mut tree = BTreeMap::new();
    for path in paths {
        let meta = fs::symlink_metadata(&path).map_err(at(&path))?;
        let relative = path.strip_prefix(root).unwrap().to_path_buf();
        let mode = meta.permissions().mode() & 0o7777;
        let node = if meta.is_dir() {
            Node::Dir {
                mode,
                xattrs: xattrs(&path)?,
            }
        } else if meta.file_type().is_symlink() {
            Node::Symlink(fs::read_link(&path).map_err(at(&path))?)
        } else {
            Node::File {
                mode,
                data: fs::read(&path).map_err(at(&path))?,
                xattrs: xattrs(&path)?,
                link_group: groups
                    .entry(meta.ino())
                    .or_insert_with(|| relative.clone())
                    .clone(),
            }
        };
        tree.insert(relative, node);
    }
    Ok(tree)
}

pub fn snapshot(root: &Path) -> Tree {
    try_snapshot(root).unwrap()
}

/// The paths where `got` differs from `expected`, each described briefly (never whole files).
pub fn differences(got: &Tree, expected: &Tree) -> Vec<String> {
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
    got.keys()
        .chain(expected.keys())
        .collect::<BTreeSet<_>>()
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
        .collect()
}

/// Fails with the paths that differ (at most ten), never the whole trees.
pub fn assert_same_tree(got: &Tree, expected: &Tree, what: &str) {
    let differing = differences(got, expected);
    assert!(
        differing.is_empty(),
        "{what}: {} paths differ:\n{}",
        differing.len(),
        differing[..differing.len().min(10)].join("\n")
    );
}

/// Every backing name (relative path, the vault's own `veilfs.*` files left out) and the 18-byte
/// header of every non-empty file: what a rotation must leave none of.
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
