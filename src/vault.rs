//! An unlocked vault: the keys and features of one backing directory, and the name and path
//! operations every frontend (the mount, fsck, path translation) shares.

use std::fs;
use std::path::{Path, PathBuf};

use crate::config::Features;
use crate::crypto::keys::{ContentKey, MasterKey, VaultKeys};
use crate::crypto::names::{DirIv, NameCipher};
use crate::error::Result;
use crate::layout::longname::{self, BackingName};
use crate::layout::{diriv, EntryName};

#[derive(Debug)]
pub struct Vault {
    root: PathBuf,
    keys: VaultKeys,
    names: NameCipher,
    features: Features,
}

impl Vault {
    pub fn new(root: &Path, master: &MasterKey, features: &Features) -> Self {
        let keys = master.derive();
        let names = NameCipher::new(keys.name.clone(), features.name_encoding);
        Self { root: root.to_path_buf(), keys, names, features: features.clone() }
    }

    /// Writes the root's `veilfs.diriv` into a new vault.
    pub fn initialize_root(&self) -> Result<()> {
        diriv::write(&self.root, &self.root_iv())
    }

    pub fn root(&self) -> &Path {
        &self.root
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

    pub fn root_iv(&self) -> DirIv {
        DirIv::root(&self.keys.diriv)
    }

    /// The IV a new directory `name` in the directory with IV `parent` gets.
    pub fn new_dir_iv(&self, parent: &DirIv, name: &[u8]) -> DirIv {
        DirIv::derive(&self.keys.diriv, parent, name)
    }

    /// Where plaintext `name` lives in the directory with IV `iv`.
    pub fn backing_name(&self, iv: &DirIv, name: &[u8]) -> Result<BackingName> {
        let encoded = self.names.encrypt_name(iv, name)?;
        Ok(BackingName::new(encoded, self.features.longname_max))
    }

    /// The plaintext name of backing entry `entry` in `dir` (IV `iv`); `None` for names veilfs
    /// reserves. Long names are checked against their sidecar.
    pub fn decrypt_entry(&self, dir: &Path, iv: &DirIv, entry: &str) -> Result<Option<Vec<u8>>> {
        let encoded = match EntryName::classify(entry) {
            EntryName::Reserved => return Ok(None),
            EntryName::Short(encoded) => encoded.to_owned(),
            EntryName::Long(hashed) => longname::read_sidecar(dir, hashed)?,
        };
        self.names.decrypt_name(iv, &encoded).map(Some)
    }

    /// Creates backing directory `name` in `parent` (IV `parent_iv`) with its IV file.
    pub fn create_dir(&self, parent: &Path, parent_iv: &DirIv, name: &[u8], mode: u32) -> Result<PathBuf> {
        use std::os::unix::fs::DirBuilderExt;
        let backing = self.backing_name(parent_iv, name)?;
        backing.write_sidecar(parent)?;
        let path = parent.join(backing.entry());
        if let Err(e) = fs::DirBuilder::new().mode(mode).create(&path) {
            if e.kind() != std::io::ErrorKind::AlreadyExists {
                backing.remove_sidecar(parent)?;
            }
            return Err(e.into());
        }
        if let Err(e) = diriv::write(&path, &self.new_dir_iv(parent_iv, name)) {
            let _ = fs::remove_dir(&path);
            let _ = backing.remove_sidecar(parent);
            return Err(e);
        }
        Ok(path)
    }

    /// The backing path of a plaintext path relative to the mount root.
    pub fn encrypt_path(&self, plain: &Path) -> Result<PathBuf> {
        let mut backing = self.root.clone();
        let mut iv = self.root_iv();
        let mut components = plain.components().peekable();
        while let Some(component) = components.next() {
            let name = component.as_os_str().as_encoded_bytes();
            if matches!(component, std::path::Component::RootDir | std::path::Component::CurDir) {
                continue;
            }
            backing.push(self.backing_name(&iv, name)?.entry());
            if components.peek().is_some() {
                iv = diriv::read(&backing)?;
            }
        }
        Ok(backing)
    }
}

