//! The inode table: FUSE inode numbers (node IDs, and `st_ino`) are the backing files' own, so
//! hard links and `find -inum` behave and numbers stay the same across mounts; each node
//! remembers where it lives (parent inode and backing entry name), so renaming a directory moves
//! its whole subtree at once; the names and IVs inside it, which the rename re-encrypts, are
//! updated by [`InodeTable::apply_move`].
//!
//! A node ID must never stand for two files while the kernel holds it: each node the kernel
//! holds keeps its backing inode pinned ([`Pin`]) until the kernel forgets it, so the backing
//! file system cannot give the number to a new file meanwhile, and an open of the node reaches
//! that inode whatever became of its names (docs/design.md, "Node IDs"). Pins are file
//! descriptors: past [`InodeTable::new`]'s budget, or where there are none (macOS), a node goes
//! unpinned, and a number reused under it gets the next generation instead
//! ([`InodeTable::remember_new`]).

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::sync::Arc;

use crate::backing::Pin;
use crate::crypto::names::DirIv;
use crate::vault::MoveChanges;

pub const ROOT: u64 = 1;

/// One place an inode is linked: (parent inode, backing entry name).
pub type Location = (u64, OsString);

#[derive(Debug)]
struct Node {
    /// Every name the inode is known under; more than one only for hard links.
    locations: Vec<Location>,
    lookups: u64,
    /// A directory's IV, read or derived on first use; a rename changes the IVs of the whole
    /// moved subtree ([`InodeTable::apply_move`]).
    iv: Option<DirIv>,
    /// Told to the kernel with the inode number: raised when the number is reused while the
    /// kernel may still hold the old inode (see [`InodeTable::remember_new`]).
    generation: u64,
    /// Keeps the backing inode allocated while the kernel holds the node; `None` past the
    /// budget. Shared so that an open can use it without holding the table.
    pin: Option<Arc<Pin>>,
}

#[derive(Debug)]
pub struct InodeTable {
    /// The backing root's inode number, shown to the kernel as [`ROOT`].
    root_backing_ino: u64,
    nodes: HashMap<u64, Node>,
    /// Nodes holding a pin, and how many may.
    pinned: usize,
    pin_budget: usize,
}

impl InodeTable {
    /// `pin_budget`: how many backing inodes may be pinned at once (file descriptors the adapter
    /// may spend on them; the root's handle is the vault's own).
    pub fn new(root_backing_ino: u64, root_iv: DirIv, pin_budget: usize) -> Self {
        let root = Node {
            locations: Vec::new(),
            lookups: 1,
            iv: Some(root_iv),
            generation: 0,
            pin: None,
        };
        Self {
            root_backing_ino,
            nodes: HashMap::from([(ROOT, root)]),
            pinned: 0,
            pin_budget,
        }
    }

    /// Whether a new pin would be kept: the adapter asks before opening one.
    pub fn may_pin(&self) -> bool {
        self.pinned < self.pin_budget
    }

    /// The pin of `ino`, if it has one.
    pub fn pin(&self, ino: u64) -> Option<Arc<Pin>> {
        self.nodes.get(&ino)?.pin.clone()
    }

    /// How many nodes hold a pin.
    pub fn pinned(&self) -> usize {
        self.pinned
    }

    /// The FUSE inode number of a backing inode number.
    pub fn fuse_ino(&self, backing_ino: u64) -> u64 {
        if backing_ino == self.root_backing_ino {
            ROOT
        } else {
            backing_ino
        }
    }

    /// The backing inode number of a FUSE inode number.
    pub fn backing_ino(&self, ino: u64) -> u64 {
        if ino == ROOT {
            self.root_backing_ino
        } else {
            ino
        }
    }

    /// Where `ino` is: the first of its known locations. `None` for the root.
    pub fn location(&self, ino: u64) -> Option<&Location> {
        self.nodes.get(&ino)?.locations.first()
    }

    /// The backing entry names leading from the root to `ino`, through the first of each
    /// node's known locations; empty for the root.
    pub fn names_to(&self, ino: u64) -> Option<Vec<OsString>> {
        let mut names = Vec::new();
        let mut current = ino;
        while current != ROOT {
            let (parent, name) = self.location(current)?;
            names.push(name.clone());
            current = *parent;
            // A plaintext path of PATH_MAX bytes has at most 2048 components.
            if names.len() > 4096 {
                return None; // a cycle: never produced by rename, which the kernel serializes
            }
        }
        names.reverse();
        Some(names)
    }

    pub fn iv(&self, ino: u64) -> Option<DirIv> {
        self.nodes.get(&ino)?.iv
    }

    pub fn set_iv(&mut self, ino: u64, iv: DirIv) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.iv = Some(iv);
        }
    }

    /// Records one kernel lookup of `ino` under `location`; `pin`, taken of the entry before its
    /// number was read, is kept if the node has none yet (and the budget allows).
    pub fn remember(&mut self, ino: u64, location: Location, pin: Option<Pin>) {
        if ino == ROOT {
            return;
        }
        let node = self.nodes.entry(ino).or_insert(Node {
            locations: Vec::new(),
            lookups: 0,
            iv: None,
            generation: 0,
            pin: None,
        });
        node.lookups += 1;
        if node.pin.is_none() && self.pinned < self.pin_budget {
            if let Some(pin) = pin {
                node.pin = Some(Arc::new(pin));
                self.pinned += 1;
            }
        }
        if let Some(pos) = node.locations.iter().position(|l| *l == location) {
            // Most recent first: it is the name most likely still valid.
            node.locations.swap(0, pos);
        } else {
            // Found somewhere new: perhaps another directory that reuses a deleted one's inode
            // number (a sync tool replaced it), so its IV is read afresh.
            node.iv = None;
            node.locations.insert(0, location);
        }
    }

    /// Records the kernel's first lookup of `ino`, an entry veilfs has just created. A table
    /// that still knows `ino` means the kernel still holds an inode of that number whose
    /// backing entries are all gone and which was not pinned (past the budget): the backing
    /// file system gave the freed number to the new entry before the kernel forgot the old one
    /// (another thread's unlink or rmdir a moment ago, or a removed directory still open). Told
    /// the same generation, the kernel would take the new entry for that old inode, a removed
    /// directory, say, in which nothing can be created; told the next one, it drops the old
    /// inode as stale (and fails what still uses it with EIO: what pins are for). The old
    /// locations and IV go; the lookup count goes on adding up both, since the kernel forgets
    /// both.
    pub fn remember_new(&mut self, ino: u64, location: Location, pin: Option<Pin>) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.generation += 1;
            node.locations.clear();
            node.iv = None;
        }
        self.remember(ino, location, pin);
    }

    /// The generation of `ino` to tell the kernel with it.
    pub fn generation(&self, ino: u64) -> u64 {
        self.nodes.get(&ino).map_or(0, |node| node.generation)
    }

    pub fn forget(&mut self, ino: u64, count: u64) {
        if ino == ROOT {
            return;
        }
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.lookups = node.lookups.saturating_sub(count);
            if node.lookups == 0 {
                if node.pin.is_some() {
                    self.pinned -= 1;
                }
                self.nodes.remove(&ino);
            }
        }
    }

    /// `ino` is no longer linked at `parent`/`name`.
    pub fn unlink(&mut self, ino: u64, parent: u64, name: &OsStr) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.locations.retain(|(p, n)| !(*p == parent && n == name));
        }
    }

    /// `ino` moved from one location to another.
    pub fn moved(&mut self, ino: u64, from: (u64, &OsStr), to: Location) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.locations
                .retain(|(p, n)| !(*p == from.0 && n == from.1));
            node.locations.insert(0, to);
        }
    }
}

impl InodeTable {
    /// What a directory move re-encrypted: every known location under a renamed backing name
    /// gets the new name, every known directory of the subtree its new IV.
    pub fn apply_move(&mut self, changes: &MoveChanges) {
        let renamed: HashMap<(u64, &OsStr), &str> = changes
            .renamed
            .iter()
            .map(|(dir, from, to)| {
                (
                    (self.fuse_ino(*dir), OsStr::new(from.as_str())),
                    to.as_str(),
                )
            })
            .collect();
        if !renamed.is_empty() {
            for node in self.nodes.values_mut() {
                for (parent, name) in &mut node.locations {
                    if let Some(to) = renamed.get(&(*parent, name.as_os_str())) {
                        *name = OsString::from(to);
                    }
                }
            }
        }
        for (dir, iv) in &changes.ivs {
            let ino = self.fuse_ino(*dir);
            self.set_iv(ino, *iv);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renaming_a_directory_moves_its_subtree() {
        let mut table = InodeTable::new(2, DirIv([0; 16]), 0);
        table.remember(10, (ROOT, "dir".into()), None);
        table.remember(11, (10, "file".into()), None);
        assert_eq!(table.names_to(11).unwrap(), ["dir", "file"]);
        table.moved(10, (ROOT, OsStr::new("dir")), (ROOT, "renamed".into()));
        assert_eq!(table.names_to(11).unwrap(), ["renamed", "file"]);
    }

    #[test]
    fn a_move_renames_the_subtree_and_changes_its_ivs() {
        let mut table = InodeTable::new(2, DirIv([0; 16]), 0);
        table.remember(10, (ROOT, "dir".into()), None);
        table.remember(11, (10, "sub".into()), None);
        table.remember(12, (11, "file".into()), None);
        table.set_iv(10, DirIv([1; 16]));
        table.set_iv(11, DirIv([2; 16]));
        table.moved(10, (ROOT, OsStr::new("dir")), (ROOT, "moved".into()));
        table.apply_move(&MoveChanges {
            renamed: vec![
                (10, "sub".into(), "sub2".into()),
                (11, "file".into(), "file2".into()),
            ],
            ivs: vec![(10, DirIv([3; 16])), (11, DirIv([4; 16]))],
        });
        assert_eq!(table.names_to(12).unwrap(), ["moved", "sub2", "file2"]);
        assert_eq!(table.iv(10), Some(DirIv([3; 16])));
        assert_eq!(table.iv(11), Some(DirIv([4; 16])));
    }

    #[test]
    fn a_number_reused_while_the_kernel_holds_it_gets_the_next_generation() {
        let mut table = InodeTable::new(2, DirIv([0; 16]), 0);
        table.remember(40, (ROOT, "removed".into()), None);
        table.set_iv(40, DirIv([1; 16]));
        table.remember_new(40, (ROOT, "new".into()), None);
        assert_eq!(table.generation(40), 1);
        assert_eq!(table.names_to(40).unwrap(), ["new"]);
        assert_eq!(table.iv(40), None);
        // Forgotten by the kernel under both generations: gone, and a new entry starts again.
        table.forget(40, 2);
        table.remember_new(40, (ROOT, "again".into()), None);
        assert_eq!(table.generation(40), 0);
        // A lookup of a known entry keeps its generation.
        table.remember(41, (ROOT, "f".into()), None);
        table.remember(41, (ROOT, "f".into()), None);
        assert_eq!(table.generation(41), 0);
    }

    #[test]
    fn an_inode_found_at_a_new_location_forgets_its_iv() {
        let mut table = InodeTable::new(2, DirIv([0; 16]), 0);
        table.remember(30, (ROOT, "old".into()), None);
        table.set_iv(30, DirIv([1; 16]));
        table.remember(30, (ROOT, "old".into()), None);
        assert_eq!(table.iv(30), Some(DirIv([1; 16])));
        table.remember(30, (ROOT, "new".into()), None);
        assert_eq!(table.iv(30), None);
    }

    #[test]
    fn hard_links_survive_unlinking_one_name() {
        let mut table = InodeTable::new(2, DirIv([0; 16]), 0);
        table.remember(20, (ROOT, "a".into()), None);
        table.remember(20, (ROOT, "b".into()), None);
        table.unlink(20, ROOT, OsStr::new("b"));
        assert_eq!(table.names_to(20).unwrap(), ["a"]);
        table.forget(20, 2);
        assert_eq!(table.names_to(20), None);
    }

    #[test]
    fn a_node_keeps_one_pin_within_the_budget_until_forgotten() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = crate::backing::Dir::open_root(tmp.path()).unwrap();
        for name in ["a", "b", "c"] {
            std::fs::write(tmp.path().join(name), b"").unwrap();
        }
        let pin = |name| Some(dir.pin(name).unwrap().0);
        let mut table = InodeTable::new(2, DirIv([0; 16]), 2);
        table.remember(10, (ROOT, "a".into()), pin("a"));
        let first = table.pin(10).unwrap();
        // A second lookup's pin is not kept: the node has one.
        table.remember(10, (ROOT, "a".into()), pin("a"));
        assert!(Arc::ptr_eq(&first, &table.pin(10).unwrap()));
        assert_eq!(table.pinned(), 1);
        table.remember(11, (ROOT, "b".into()), pin("b"));
        assert!(!table.may_pin());
        // Past the budget: remembered, unpinned.
        table.remember(12, (ROOT, "c".into()), pin("c"));
        assert!(table.pin(12).is_none());
        assert_eq!(table.pinned(), 2);
        table.forget(10, 1);
        assert_eq!(table.pinned(), 2);
        table.forget(10, 1);
        assert_eq!(table.pinned(), 1);
        assert!(table.may_pin());
    }
}
