//! An unlocked vault: the keys and features of one backing directory, and the name and path
//! operations every frontend (the mount, fsck, path translation) shares: `names` (backing
//! names and what each entry is), `entries` (how entries are created and rolled back),
//! `dir_moves` (directory moves re-encrypting a subtree) and `paths` (plaintext paths).

mod dir_moves;
mod entries;
mod names;
mod paths;

use std::path::Path;

use crate::backing::Dir;
use crate::config::Features;
use crate::crypto::keys::{ContentKey, VaultKeys};
use crate::crypto::names::{DirIv, NameCipher};
use crate::error::{Error, Result};
use crate::layout::{diriv, DIRIV_NAME};

pub use dir_moves::MoveChanges;
pub use names::{
    is_canonical_reserved, is_canonical_sidecar, BackingEntry, ConflictCopy, ReservedCopy,
};

/// Where a directory's IV comes from (format-v2.md, "Unique directory IVs").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IvPolicy {
    /// Format v1: the IV is what the directory's `veilfs.diriv` holds.
    #[default]
    Stored,
    /// Format v2: the IV is the derivation of the directory's plaintext path; `veilfs.diriv` is
    /// only a check value, so a file planted under that name steers nothing.
    Derived,
}

#[derive(Debug)]
pub struct Vault {
    /// The backing root, held open for the vault's life: see [`crate::backing`].
    root: Dir,
    keys: VaultKeys,
    names: NameCipher,
    features: Features,
    iv_policy: IvPolicy,
}

impl Vault {
    /// The vault whose backing root is `root` (opened with [`Dir::open_root`]), with the keys
    /// an unlock gave ([`crate::config::Unlocked::keys`]), reading directory IVs as format v1
    /// does ([`IvPolicy::Stored`]).
    pub fn new(root: Dir, keys: &VaultKeys, features: &Features) -> Self {
        Self::with_iv_policy(root, keys, features, IvPolicy::Stored)
    }

    /// [`Vault::new`] with directory IVs coming from `iv_policy`.
    pub fn with_iv_policy(
        root: Dir,
        keys: &VaultKeys,
        features: &Features,
        iv_policy: IvPolicy,
    ) -> Self {
        let keys = keys.clone();
        let names = NameCipher::new(keys.name.clone(), features.name_encoding);
        Self {
            root,
            keys,
            names,
            features: features.clone(),
            iv_policy,
        }
    }

    /// [`Vault::new`] for the backing directory at `root`, which is opened here and held.
    pub fn open(root: &Path, keys: &VaultKeys, features: &Features) -> Result<Self> {
        Ok(Self::new(Dir::open_root(root)?, keys, features))
    }

    /// Writes the root's `veilfs.diriv` into a new vault.
    pub fn initialize_root(&self) -> Result<()> {
        diriv::write_durable(&self.root, &self.root_iv())
    }

    /// The handle of the backing root.
    pub fn root(&self) -> &Dir {
        &self.root
    }

    /// Where the backing root was when it was opened: for messages.
    pub fn root_path(&self) -> &Path {
        self.root.path()
    }

    pub fn features(&self) -> &Features {
        &self.features
    }

    pub fn names(&self) -> &NameCipher {
        &self.names
    }

    pub fn content_key(&self) -> &ContentKey {
        &self.keys.content
    }

    /// The key of the records veilfs writes about its own unfinished work.
    pub(crate) fn record_key(&self) -> &crate::crypto::keys::RecordKey {
        &self.keys.record
    }

    pub fn root_iv(&self) -> DirIv {
        DirIv::root(&self.keys.diriv)
    }

    /// The IV a new directory `name` in the directory with IV `parent` gets.
    pub fn new_dir_iv(&self, parent: &DirIv, name: &[u8]) -> DirIv {
        DirIv::derive(&self.keys.diriv, parent, name)
    }

    pub fn iv_policy(&self) -> IvPolicy {
        self.iv_policy
    }

    /// The IV of backing directory `dir`, plaintext `name` in the directory with IV `parent`:
    /// its `veilfs.diriv` or its derivation, as the [`IvPolicy`] says.
    pub fn dir_iv(&self, dir: &Dir, parent: &DirIv, name: &[u8]) -> Result<DirIv> {
        match self.iv_policy {
            IvPolicy::Stored => diriv::read(dir),
            IvPolicy::Derived => Ok(self.new_dir_iv(parent, name)),
        }
    }
}

impl Vault {
    /// Whether these keys belong to this backing directory: the root's `veilfs.diriv` must be
    /// the root IV the keys derive. A config swapped in from another vault (which may well open
    /// with the same password) fails here, before anything is written or repaired:
    /// [`Error::ForeignConfig`]. When the root IV file cannot be read, the root's entries decide:
    /// if some look like encrypted names and none decrypts, the keys are foreign.
    pub fn check_binding(&self) -> Result<()> {
        let root_iv = self.root_iv();
        let iv_file = self.root.display_path(DIRIV_NAME);
        match diriv::read(&self.root) {
            Ok(iv) if iv == root_iv => return Ok(()),
            Ok(_) => {
                return Err(Error::ForeignConfig(format!(
                    "{} was made with other keys (the config is another vault's, or was \
                     replaced)",
                    iv_file.display()
                )))
            }
            Err(_) => {}
        }
        let mut undecodable = 0usize;
        for item in self.root.entries()? {
            let Some(name) = item.name.to_str() else {
                continue;
            };
            match self.classify_entry(&self.root, &root_iv, name) {
                BackingEntry::Name(_) | BackingEntry::ConflictCopy { .. } => return Ok(()),
                BackingEntry::Undecodable(_) => undecodable += 1,
                _ => {}
            }
        }
        if undecodable == 0 {
            return Ok(());
        }
        Err(Error::ForeignConfig(format!(
            "{} is missing or unreadable, and none of the {undecodable} entries of {} decrypts \
             with this config's keys",
            iv_file.display(),
            self.root.path().display()
        )))
    }
}
