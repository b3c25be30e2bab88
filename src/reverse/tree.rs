//! The view's directories: which entries a view directory holds (its plaintext directory's
//! entries under their encrypted names, their long-name sidecars, `veilfs.diriv`, and at the
//! root `veilfs.conf`), which plaintext entry a view name stands for, and the translation of
//! whole paths for `encrypt-path` and `decrypt-path`.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::{derive, REVERSE_CONFIG_NAME};
use super::{inode_key, path_bytes, shown_path, without_atime, Version, View};
use crate::backing::{Dir, FileKind, Stat};
use crate::config::CONFIG_NAME;
use crate::crypto::names::{DirIv, SYMLINK_TARGET_MAX};
use crate::error::{Error, Result};
use crate::layout::longname::{BackingName, SIDECAR_SUFFIX};
use crate::layout::{EntryName, DIRIV_NAME};

/// The plaintext names of the entries of one directory whose encrypted names are long, by the
/// name of their view entry (`veilfs.longname.<hash>`), with the encoded name.
pub type LongNames = HashMap<String, (OsString, String)>;

/// What a view name stands for.
#[derive(Clone, Debug)]
pub enum Item {
    /// `veilfs.conf`, at the root: the reverse config's bytes.
    Config,
    /// `veilfs.diriv`: the directory's IV.
    DirIv,
    /// The `.name` sidecar of a long-named entry, holding its encoded name.
    Sidecar(String),
    /// A plaintext entry, shown under its encrypted name.
    Plain { name: OsString, stat: Stat },
}

/// One entry of a view directory.
#[derive(Clone, Debug)]
pub struct Listed {
    pub name: String,
    pub item: Item,
}

impl View {
    /// The entries of the view directory of plaintext directory `dir` (at `path`, IV `iv`).
    pub fn list(&self, dir: &Dir, path: &[OsString], iv: &DirIv) -> Result<Vec<Listed>> {
        let mut listed = vec![Listed {
            name: DIRIV_NAME.to_owned(),
            item: Item::DirIv,
        }];
        if path.is_empty() {
            listed.push(Listed {
                name: CONFIG_NAME.to_owned(),
                item: Item::Config,
            });
        }
        for (name, stat) in self.shown_entries(dir, path)? {
            let backing = self.backing_name(iv, &name)?;
            if let BackingName::Long { hashed, encoded } = &backing {
                listed.push(Listed {
                    name: format!("{hashed}{SIDECAR_SUFFIX}"),
                    item: Item::Sidecar(encoded.clone()),
                });
            }
            listed.push(Listed {
                name: backing.entry().to_owned(),
                item: Item::Plain { name, stat },
            });
        }
        Ok(listed)
    }

    /// What view name `view_name` in the view directory of `dir` (at `path`, IV `iv`) stands
    /// for; `None` if nothing.
    pub fn find(
        &self,
        dir: &Dir,
        path: &[OsString],
        iv: &DirIv,
        view_name: &OsStr,
    ) -> Result<Option<Item>> {
        let Some(view_name) = view_name.to_str() else {
            return Ok(None);
        };
        let name = match EntryName::classify(view_name) {
            _ if view_name == DIRIV_NAME => return Ok(Some(Item::DirIv)),
            _ if view_name == CONFIG_NAME && path.is_empty() => return Ok(Some(Item::Config)),
            EntryName::Long(hashed) => match self.long_names(dir, path, iv)?.get(hashed) {
                Some((name, _)) => name.clone(),
                None => return Ok(None),
            },
            EntryName::Reserved => {
                let Some(hashed) = view_name.strip_suffix(SIDECAR_SUFFIX) else {
                    return Ok(None);
                };
                return Ok(self
                    .long_names(dir, path, iv)?
                    .get(hashed)
                    .map(|(_, encoded)| Item::Sidecar(encoded.clone())));
            }
            EntryName::Short(encoded) => {
                // Only the exact spelling the listing gives: a long name has no short alias.
                match self.names.decrypt_name(iv, encoded) {
                    Ok(name) if encoded.len() <= self.longname_max => OsString::from_vec(name),
                    _ => return Ok(None),
                }
            }
        };
        let stat = match dir.stat(&name) {
            Ok(stat) => stat,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        Ok(self
            .is_shown(path, &name, &stat)
            .then_some(Item::Plain { name, stat }))
    }

    /// Where plaintext `name` is shown in the directory with IV `iv`.
    fn backing_name(&self, iv: &DirIv, name: &OsStr) -> Result<BackingName> {
        let encoded = self.names.encrypt_name(iv, name.as_encoded_bytes())?;
        Ok(BackingName::new(encoded, self.longname_max))
    }

    /// The plaintext entries of `dir` (at `path`) that the view shows, with their `lstat`.
    /// The directory is read with `O_NOATIME` where permitted, so listing it leaves its access
    /// time alone.
    fn shown_entries(&self, dir: &Dir, path: &[OsString]) -> Result<Vec<(OsString, Stat)>> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let mut listing = without_atime(flags, |flags| {
            Ok(nix::dir::Dir::openat(
                dir.as_fd(),
                ".",
                flags,
                Mode::empty(),
            )?)
        })?;
        let mut shown = Vec::new();
        for entry in listing.iter() {
            let entry = entry.map_err(io::Error::from)?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let name = OsStr::from_bytes(name).to_owned();
            let stat = match dir.stat(&name) {
                Ok(stat) => stat,
                // Removed since the listing began.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            if self.is_shown(path, &name, &stat) {
                shown.push((name, stat));
            }
        }
        Ok(shown)
    }

    /// Whether plaintext entry `name` of the directory at `path` is in the view: a regular file,
    /// directory or symlink, not the reverse config, not excluded.
    fn is_shown(&self, path: &[OsString], name: &OsStr, stat: &Stat) -> bool {
        let full = || shown_path(path).join(name);
        let kind = FileKind::of(stat);
        match kind {
            FileKind::File | FileKind::Dir | FileKind::Symlink => {}
            other => {
                tracing::debug!(
                    "{} is {}: not in the view",
                    full().display(),
                    other.described()
                );
                return false;
            }
        }
        if inode_key(stat) == inode_key(&self.config.stat)
            || (path.is_empty() && name == REVERSE_CONFIG_NAME)
        {
            return false;
        }
        if kind == FileKind::Symlink && stat.st_size as u64 > SYMLINK_TARGET_MAX as u64 {
            tracing::warn!(
                "{}: the symlink's target is longer than the {SYMLINK_TARGET_MAX} bytes a vault \
                 can hold; not in the view",
                full().display()
            );
            return false;
        }
        !self.exclusions.excludes(&full(), kind == FileKind::Dir)
    }

    /// The long-named entries of `dir`, listed again whenever the directory changed.
    fn long_names(&self, dir: &Dir, path: &[OsString], iv: &DirIv) -> Result<LongNames> {
        let stat = dir.stat_self()?;
        let (key, version) = (inode_key(&stat), Version::of(&stat));
        if let Some((seen, names)) = self.long_names.lock().unwrap().get(&key) {
            if *seen == version {
                return Ok(names.clone());
            }
        }
        let mut names = LongNames::new();
        for (name, _) in self.shown_entries(dir, path)? {
            if let BackingName::Long { hashed, encoded } = self.backing_name(iv, &name)? {
                names.insert(hashed, (name, encoded));
            }
        }
        self.long_names
            .lock()
            .unwrap()
            .insert(key, (version, names.clone()));
        Ok(names)
    }

    /// The view's target of the symlink at `path` (its name last) in `dir`: the plaintext
    /// target encrypted with the nonce its path and target derive.
    pub fn symlink_target(&self, dir: &Dir, path: &[OsString]) -> Result<String> {
        let name = path.last().ok_or(Error::InvalidName)?;
        let target = dir.readlink(name)?;
        let nonce = derive::symlink_nonce(&self.reverse_key, &path_bytes(path), target.as_bytes());
        self.names
            .encrypt_symlink_with_nonce(target.as_bytes(), nonce)
    }

    /// The view path (relative to the view's root) of a plaintext path relative to PLAINDIR.
    /// Nothing need exist: names and IVs depend on the path alone.
    pub fn encrypt_path(&self, plain: &Path) -> Result<PathBuf> {
        let mut iv = self.root_iv();
        let mut out = PathBuf::new();
        for name in normal_components(plain)? {
            out.push(self.backing_name(&iv, name)?.entry());
            iv = self.dir_iv(&iv, name);
        }
        Ok(out)
    }

    /// The plaintext path (relative to PLAINDIR) of a view path relative to the view's root.
    /// The plaintext entries must exist (a long name is found among its directory's entries).
    pub fn decrypt_path(&self, view: &Path) -> Result<PathBuf> {
        let mut iv = self.root_iv();
        let mut path: Vec<OsString> = Vec::new();
        let mut dir = self.root.try_clone()?;
        let mut components = normal_components(view)?.peekable();
        while let Some(view_name) = components.next() {
            let not_found = || {
                Error::Io(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{} is not in the view", view_name.to_string_lossy()),
                ))
            };
            let item = self
                .find(&dir, &path, &iv, view_name)?
                .ok_or_else(not_found)?;
            let Item::Plain { name, stat } = item else {
                return Err(Error::Io(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{} is veilfs's own file", view_name.to_string_lossy()),
                )));
            };
            if components.peek().is_some() {
                if FileKind::of(&stat) != FileKind::Dir {
                    return Err(Error::Io(io::Error::from_raw_os_error(libc::ENOTDIR)));
                }
                dir = dir.open_dir(&name)?;
                iv = self.dir_iv(&iv, &name);
            }
            path.push(name);
        }
        Ok(shown_path(&path))
    }
}

/// The names of a relative path; `.` is skipped, `..` and absolute paths refused.
fn normal_components(path: &Path) -> Result<impl Iterator<Item = &OsStr>> {
    let mut names = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(name) => names.push(name),
            Component::CurDir => {}
            _ => return Err(Error::InvalidName),
        }
    }
    Ok(names.into_iter())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::reverse::exclude::Exclusions;
    use crate::reverse::tests::view;

    #[test]
    fn every_listed_name_is_found_and_translates_back() {
        let dir = tempfile::tempdir().unwrap();
        let long = "n".repeat(200);
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join(&long), b"x").unwrap();
        std::fs::write(dir.path().join("sub/short"), b"y").unwrap();
        nix::unistd::mkfifo(&dir.path().join("fifo"), Mode::from_bits_truncate(0o600)).unwrap();
        std::fs::write(dir.path().join(REVERSE_CONFIG_NAME), b"{}").unwrap();
        let view = view(dir.path(), Exclusions::none());
        let root = view.root().try_clone().unwrap();
        let listed = view.list(&root, &[], &view.root_iv()).unwrap();
        let names: Vec<&str> = listed.iter().map(|l| l.name.as_str()).collect();
        // veilfs.diriv, veilfs.conf, sub, the long name and its sidecar; no FIFO, no config.
        assert_eq!(names.len(), 5, "{names:?}");
        assert_eq!(
            names.iter().filter(|n| n.ends_with(SIDECAR_SUFFIX)).count(),
            1
        );
        for entry in &listed {
            let found = view
                .find(&root, &[], &view.root_iv(), OsStr::new(&entry.name))
                .unwrap()
                .unwrap_or_else(|| panic!("{} not found", entry.name));
            assert_eq!(format!("{found:?}"), format!("{:?}", entry.item));
        }
        for plain in [Path::new(&long), Path::new("sub/short"), Path::new("sub")] {
            let encrypted = view.encrypt_path(plain).unwrap();
            assert_eq!(view.decrypt_path(&encrypted).unwrap(), plain);
        }
        assert!(view
            .find(
                &root,
                &[],
                &view.root_iv(),
                OsStr::new("veilfs.longname.nothing")
            )
            .unwrap()
            .is_none());
    }

    #[test]
    fn excluded_entries_are_neither_listed_nor_found() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.tmp"), b"x").unwrap();
        std::fs::write(dir.path().join("b.txt"), b"y").unwrap();
        let patterns = ["*.tmp".to_owned()];
        let exclusions = Exclusions::new(dir.path(), &patterns, &[]).unwrap();
        let view = view(dir.path(), exclusions);
        let root = view.root().try_clone().unwrap();
        let listed = view.list(&root, &[], &view.root_iv()).unwrap();
        assert_eq!(listed.len(), 3, "{listed:?}");
        let hidden = view.encrypt_path(Path::new("a.tmp")).unwrap();
        assert!(view
            .find(&root, &[], &view.root_iv(), hidden.as_os_str())
            .unwrap()
            .is_none());
    }
}
