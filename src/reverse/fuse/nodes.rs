//! The reverse view's node IDs and the table of nodes the kernel holds, with lookup and forget.
//!
//! Node IDs (which fuser also gives as `st_ino`) are stable for the mount's life and need no
//! counter: a plaintext entry's is its inode number (the root's is 1), an entry on another
//! file system below PLAINDIR gets one in its own range from its device and inode, and the
//! entries the view makes up (`veilfs.conf`, `veilfs.diriv`, sidecars) one in a third range from
//! their directory's ID and name. The table remembers, for each node the kernel holds, where it
//! is (its plaintext path) or what it holds (a made-up file's bytes), and forgets it when the
//! kernel does.

use std::collections::hash_map::DefaultHasher;
use std::ffi::{OsStr, OsString};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use fuser::FileAttr;

use super::attr::{made_up_attr, plain_attr};
use super::ReverseFs;
use crate::backing::{FileKind, Stat};
use crate::crypto::names::DirIv;
use crate::error::Result;
use crate::fs::errno;
use crate::layout::longname::SIDECAR_MODE;
use crate::reverse::inode_key;
use crate::reverse::tree::Item;

/// The root's node ID, as FUSE fixes it.
pub(super) const ROOT: u64 = 1;
/// Node IDs of made-up entries have this bit set; those of entries on another file system than
/// PLAINDIR's have the next one (and not this one).
const MADE_UP: u64 = 1 << 63;
const FOREIGN: u64 = 1 << 62;
/// The mode of `veilfs.conf` and `veilfs.diriv`, as forward vaults write them.
const READ_ONLY_MODE: u32 = 0o400;

/// What a node is.
#[derive(Debug)]
pub(super) enum Node {
    /// A plaintext entry at `path` (names from PLAINDIR; empty for the root), with the IV of
    /// the view directory when it is a directory.
    Plain {
        path: Vec<OsString>,
        iv: Option<DirIv>,
    },
    /// An entry the view makes up: its bytes and mode.
    MadeUp { bytes: Arc<[u8]>, mode: u32 },
}

/// A node and how many lookups of it the kernel holds.
#[derive(Debug)]
pub(super) struct Held {
    pub(super) node: Node,
    pub(super) lookups: u64,
}

impl Held {
    /// The root of the view at `iv`: held for the mount's life.
    pub(super) fn root(iv: DirIv) -> Self {
        Held {
            node: Node::Plain {
                path: Vec::new(),
                iv: Some(iv),
            },
            // Never forgotten.
            lookups: u64::MAX,
        }
    }
}

impl ReverseFs {
    /// The node ID of the plaintext entry whose `lstat` is `stat`.
    // The stat fields' integer types differ between Linux and macOS.
    #[allow(clippy::unnecessary_cast)]
    pub(super) fn plain_id(&self, stat: &Stat) -> u64 {
        let (dev, ino) = inode_key(stat);
        let root = self.view.root_stat();
        if (dev, ino) == inode_key(root) {
            ROOT
        } else if dev == root.st_dev as u64 && ino != ROOT && ino < FOREIGN {
            ino
        } else {
            FOREIGN | (hash_of(&(dev, ino)) & (FOREIGN - 1))
        }
    }

    /// What node `ino` is: its plaintext path and IV, or its bytes.
    pub(super) fn node(&self, ino: u64) -> Result<(Vec<OsString>, Option<DirIv>)> {
        match self.nodes.lock().unwrap().get(&ino).map(|held| &held.node) {
            Some(Node::Plain { path, iv }) => Ok((path.clone(), *iv)),
            Some(Node::MadeUp { .. }) => Err(errno(libc::ENOTDIR)),
            None => Err(errno(libc::ESTALE)),
        }
    }

    /// The `lstat` of the plaintext entry at `path`, checked to be node `ino`.
    fn plain_stat(&self, ino: u64, path: &[OsString]) -> Result<Stat> {
        let stat = match path.split_last() {
            None => self.view.root().stat_self()?,
            Some((name, parent)) => self.view.open_dir(parent)?.stat(name)?,
        };
        if self.plain_id(&stat) != ino {
            return Err(errno(libc::ESTALE));
        }
        Ok(stat)
    }

    /// The node a view item in directory `parent` (at `path`, IV `iv`) is, under view name
    /// `name`: its ID and what it is.
    fn item_node(
        &self,
        parent: u64,
        path: &[OsString],
        iv: &DirIv,
        name: &OsStr,
        item: Item,
    ) -> (u64, Node, Option<Stat>) {
        let made_up = |bytes: &[u8], mode: u32| {
            let node = Node::MadeUp {
                bytes: Arc::from(bytes),
                mode,
            };
            (made_up_id(parent, name), node, None)
        };
        match item {
            Item::Config => made_up(&self.view.config().bytes, READ_ONLY_MODE),
            Item::DirIv => made_up(&iv.0, READ_ONLY_MODE),
            Item::Sidecar(encoded) => made_up(encoded.as_bytes(), SIDECAR_MODE),
            Item::Plain { name, stat } => {
                let is_dir = FileKind::of(&stat) == FileKind::Dir;
                let node = Node::Plain {
                    iv: is_dir.then(|| self.view.dir_iv(iv, &name)),
                    path: path.iter().cloned().chain([name]).collect(),
                };
                (self.plain_id(&stat), node, Some(stat))
            }
        }
    }

    /// The attributes of node `ino`, as it is now.
    pub(super) fn attr(&self, ino: u64) -> Result<FileAttr> {
        let made_up = match self.nodes.lock().unwrap().get(&ino).map(|held| &held.node) {
            Some(Node::MadeUp { bytes, mode }) => Some((bytes.len(), *mode)),
            Some(Node::Plain { .. }) => None,
            None => return Err(errno(libc::ESTALE)),
        };
        match made_up {
            Some((len, mode)) => Ok(made_up_attr(&self.view, ino, len as u64, mode)),
            None => {
                let (path, _) = self.node(ino)?;
                Ok(plain_attr(ino, &self.plain_stat(ino, &path)?))
            }
        }
    }

    pub(super) fn do_lookup(&self, parent: u64, name: &OsStr) -> Result<FileAttr> {
        let (path, iv) = self.node(parent)?;
        let iv = iv.ok_or_else(|| errno(libc::ENOTDIR))?;
        let dir = self.view.open_dir(&path)?;
        let item = self
            .view
            .find(&dir, &path, &iv, name)?
            .ok_or_else(|| errno(libc::ENOENT))?;
        let (ino, node, stat) = self.item_node(parent, &path, &iv, name, item);
        let attr = match (&node, &stat) {
            (_, Some(stat)) => plain_attr(ino, stat),
            (Node::MadeUp { bytes, mode }, None) => {
                made_up_attr(&self.view, ino, bytes.len() as u64, *mode)
            }
            (Node::Plain { .. }, None) => unreachable!("plain nodes come with their stat"),
        };
        let mut nodes = self.nodes.lock().unwrap();
        match nodes.get_mut(&ino) {
            // The newest name of the node: a hard link reads the same through any of them.
            Some(held) if ino != ROOT => {
                held.node = node;
                held.lookups = held.lookups.saturating_add(1);
            }
            Some(_) => {}
            None => {
                nodes.insert(ino, Held { node, lookups: 1 });
            }
        }
        Ok(attr)
    }

    /// The kernel drops `nlookup` of its lookups of node `ino`: the node is forgotten with the
    /// last one (never the root).
    pub(super) fn do_forget(&self, ino: u64, nlookup: u64) {
        let mut nodes = self.nodes.lock().unwrap();
        if let Some(held) = nodes.get_mut(&ino) {
            held.lookups = held.lookups.saturating_sub(nlookup);
            if held.lookups == 0 && ino != ROOT {
                nodes.remove(&ino);
            }
        }
    }
}

fn hash_of(value: &impl Hash) -> u64 {
    // SipHash with fixed keys: the same for the mount's life (and for every mount of this build).
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

/// The node ID of the made-up entry `name` of directory `parent`.
pub(super) fn made_up_id(parent: u64, name: &OsStr) -> u64 {
    MADE_UP | (hash_of(&(parent, name)) & (MADE_UP - 1))
}
