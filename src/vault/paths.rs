//! Plaintext paths to backing paths and back, for the CLI's path commands: every step opened
//! below the root, never through a symlink.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::backing::Dir;
use crate::crypto::names::DirIv;
use crate::error::{Error, Result};

use super::{BackingEntry, Vault};

impl Vault {
    /// The backing directory at plaintext path `plain` (relative to the mount root), with its
    /// IV: every step opened below the root, never through a symlink.
    pub fn open_plain_dir(&self, plain: &Path) -> Result<(Dir, DirIv)> {
        let mut dir = self.root.try_clone()?;
        let mut iv = self.root_iv();
        for component in plain.components() {
            let name = match component {
                std::path::Component::Normal(name) => name,
                std::path::Component::RootDir | std::path::Component::CurDir => continue,
                _ => return Err(Error::InvalidName),
            };
            let entry = self.existing_backing_name(&dir, &iv, name)?;
            dir = dir.open_dir(entry)?;
            iv = self.dir_iv(&dir, &iv, name.as_encoded_bytes())?;
        }
        Ok((dir, iv))
    }

    /// The backing entry name of plaintext `name` in `dir` (IV `iv`): in a vault whose names a
    /// sync target may have re-cased, an existing entry is given under the name it has.
    fn existing_backing_name(&self, dir: &Dir, iv: &DirIv, name: &OsStr) -> Result<String> {
        let entry = self.backing_name(iv, name.as_encoded_bytes())?;
        Ok(match self.find_recased(dir, &entry) {
            Ok(Some(recased)) if !dir.exists(entry.entry()) => recased,
            _ => entry.entry().to_owned(),
        })
    }

    /// The backing path of a plaintext path relative to the mount root. The directories on the
    /// way must exist (their IVs are read); the last component need not. In a vault whose names
    /// a sync target may have re-cased, an existing entry is given under the name it has.
    pub fn encrypt_path(&self, plain: &Path) -> Result<PathBuf> {
        let parent = plain.parent().unwrap_or(Path::new(""));
        let (dir, iv) = self.open_plain_dir(parent)?;
        let mut backing = dir.path().to_path_buf();
        if let Some(name) = plain.file_name() {
            backing.push(self.existing_backing_name(&dir, &iv, name)?);
        }
        Ok(backing)
    }

    /// The plaintext path (relative to the mount root) of a backing path, given relative to the
    /// vault root or as an absolute path inside it. The entries must exist. A conflict copy is
    /// given under the name the mount shows it under.
    pub fn decrypt_path(&self, backing: &Path) -> Result<PathBuf> {
        use std::path::Component;
        let relative = if backing.is_absolute() {
            let root = std::fs::canonicalize(self.root.path())?;
            let parent = backing.parent().map(std::fs::canonicalize).transpose()?;
            let absolute = match (parent, backing.file_name()) {
                (Some(parent), Some(name)) => parent.join(name),
                _ => backing.to_path_buf(),
            };
            absolute
                .strip_prefix(&root)
                .map(Path::to_path_buf)
                .map_err(|_| {
                    Error::Io(std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        format!(
                            "{} is not inside the vault {}",
                            backing.display(),
                            self.root.path().display()
                        ),
                    ))
                })?
        } else {
            backing.to_path_buf()
        };
        let mut dir = self.root.try_clone()?;
        let mut iv = self.root_iv();
        let mut plain = PathBuf::new();
        let mut components = relative.components().peekable();
        while let Some(component) = components.next() {
            let entry = match component {
                Component::CurDir => continue,
                Component::Normal(entry) => entry.to_str().ok_or(Error::NameEncoding("UTF-8"))?,
                _ => return Err(Error::InvalidName),
            };
            dir.stat(entry)?;
            let not_an_entry = |what: &str| {
                Error::Io(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("{entry} is {what}, not an entry of the plaintext tree"),
                ))
            };
            let name = match self.classify_entry(&dir, &iv, entry) {
                BackingEntry::Name(name) => name,
                BackingEntry::ConflictCopy { .. } => self.shown_name(&dir, &iv, entry)?,
                BackingEntry::Reserved | BackingEntry::ReservedCopy(_) => {
                    return Err(not_an_entry("a file veilfs keeps"))
                }
                BackingEntry::SyncTool => return Err(not_an_entry("a sync tool's file")),
                BackingEntry::Undecodable(e) => return Err(e),
            };
            plain.push(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&name));
            if components.peek().is_some() {
                dir = dir.open_dir(entry)?;
                iv = self.dir_iv(&dir, &iv, &name)?;
            }
        }
        Ok(plain)
    }
}
