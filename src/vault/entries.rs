//! How entries come into a backing directory, and leave it again when a later step fails:
//! the sidecar protocol (docs/design.md, "No debris on failure"). Every create and rename into
//! a new name goes through here.

use std::io;

use crate::backing::{Dir, FileKind, RenameMode};
use crate::crypto::names::DirIv;
use crate::error::{Error, Result};
use crate::layout::longname::{BackingName, SIDECAR_SUFFIX};
use crate::layout::{diriv, EntryName, DIRIV_NAME};

use super::{MoveChanges, Vault};

impl Vault {
    /// Renames backing entry `from` of `dir` (IV `iv`) to the backing name of plaintext `to`,
    /// never replacing an existing entry; writes the new name's sidecar first when it is long.
    /// Cleans up a conflict copy or a re-cased name so the vault holds only canonical names.
    /// `was` is the IV `from` is encrypted under and the plaintext name the IVs of its contents
    /// derive from (a conflict copy's: its original's): a directory whose path so changes is
    /// moved as a rename through the mount moves it ([`Self::finish_move`]), and what that
    /// changed is returned.
    pub fn rename_entry(
        &self,
        dir: &Dir,
        iv: &DirIv,
        from: &str,
        to: &[u8],
        was: (&DirIv, &[u8]),
    ) -> Result<(BackingName, MoveChanges)> {
        let backing = self.backing_name(iv, to)?;
        let mut moved = None;
        if FileKind::of(&dir.stat(from)?) == FileKind::Dir {
            let sub = dir.open_dir(from)?;
            // A v1 directory whose IV file is missing cannot be moved: renamed as it is.
            if let Ok(old) = self.dir_iv(&sub, was.0, was.1) {
                let new = self.new_dir_iv(iv, to);
                if old != new {
                    let record = self.begin_move(&sub, old, new)?;
                    moved = Some((sub, record));
                }
            }
        }
        let renamed = self.rename_into(dir, from, dir, &backing, RenameMode::NoReplace);
        if let Err(e) = renamed {
            if let Some((sub, _)) = &moved {
                self.abandon_move(sub);
            }
            return Err(e);
        }
        let changes = match moved {
            Some((sub, record)) => self.finish_move(&sub, &record)?,
            None => MoveChanges::default(),
        };
        Ok((backing, changes))
    }

    /// The one way an entry comes into a backing directory: writes the sidecar of a long
    /// `backing` name, then runs `create` with the entry's name. If `create` fails, the
    /// directory is left as it was: the sidecar goes again unless the entry exists (it was
    /// there before, and the sidecar with it).
    pub fn create_entry<T>(
        &self,
        dir: &Dir,
        backing: &BackingName,
        create: impl FnOnce(&str) -> io::Result<T>,
    ) -> Result<T> {
        backing.write_sidecar(dir)?;
        create(backing.entry()).map_err(|e| {
            if !dir.exists(backing.entry()) {
                let _ = backing.remove_sidecar(dir);
            }
            e.into()
        })
    }

    /// [`Self::create_entry`], then `finish` with what `create` returned: the steps that make
    /// the entry what it should be (a directory's IV file, a file's contents, its owner). If
    /// `finish` fails, the entry and its sidecar go again ([`Self::remove_new_entry`]).
    pub fn create_entry_then<T, U>(
        &self,
        dir: &Dir,
        backing: &BackingName,
        create: impl FnOnce(&str) -> io::Result<T>,
        finish: impl FnOnce(&mut T) -> Result<U>,
    ) -> Result<(T, U)> {
        let mut made = self.create_entry(dir, backing, create)?;
        match finish(&mut made) {
            Ok(finished) => Ok((made, finished)),
            Err(e) => {
                self.remove_new_entry(dir, backing);
                Err(e)
            }
        }
    }

    /// Renames entry `from` of `from_dir` to `to` in `to_dir`: an entry coming in under a new
    /// name, so through [`Self::create_entry`] (`to`'s sidecar first, gone again if the rename
    /// fails). `from`'s own sidecar is the caller's to remove, once nothing needs it.
    pub fn rename_into(
        &self,
        from_dir: &Dir,
        from: &str,
        to_dir: &Dir,
        to: &BackingName,
        mode: RenameMode,
    ) -> Result<()> {
        self.create_entry(to_dir, to, |entry| {
            from_dir.rename(from, to_dir, entry, mode)
        })
    }

    /// Undoes [`Self::create_entry`] after a later step failed: removes the entry (a directory
    /// with its IV file) and its sidecar.
    pub fn remove_new_entry(&self, dir: &Dir, backing: &BackingName) {
        let removed = match dir.stat(backing.entry()).map(|s| FileKind::of(&s)) {
            Ok(FileKind::Dir) => dir
                .open_dir(backing.entry())
                .and_then(|sub| sub.unlink_if_present(DIRIV_NAME))
                .and_then(|()| dir.rmdir(backing.entry())),
            Ok(_) => dir.unlink(backing.entry()),
            Err(e) => Err(e),
        };
        if let Err(e) = removed
            .map_err(Error::from)
            .and_then(|()| backing.remove_sidecar(dir))
        {
            tracing::error!(
                "cannot remove {} after a failed create: {e}",
                dir.display_path(backing.entry()).display()
            );
        }
    }

    /// Renames an entry whose backing name had its case changed (`entry`, plaintext `name`) back
    /// to its canonical name, and removes its sidecar's re-cased name.
    pub fn normalize_case(
        &self,
        dir: &Dir,
        iv: &DirIv,
        entry: &str,
        name: &[u8],
    ) -> Result<BackingName> {
        let backing = self.backing_name(iv, name)?;
        if backing.entry() == entry {
            return Ok(backing);
        }
        let old_sidecars = match EntryName::classify(entry) {
            EntryName::Long(hashed) => vec![
                format!("{hashed}{SIDECAR_SUFFIX}"),
                format!("{hashed}{}", SIDECAR_SUFFIX.to_ascii_uppercase()),
            ],
            _ => Vec::new(),
        };
        self.create_entry(dir, &backing, |to| {
            match dir.rename(entry, dir, to, RenameMode::NoReplace) {
                // A case-insensitive file system: the target "exists" and is the entry itself.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && same_file(dir, entry, to) => {
                    dir.rename(entry, dir, to, RenameMode::Replace)
                }
                renamed => renamed,
            }
        })?;
        // On a case-sensitive disk the old-cased sidecar is a file of its own; on a
        // case-insensitive one it is the canonical sidecar itself, which stays.
        if let Some(canonical) = backing.sidecar() {
            for old in old_sidecars {
                if old != canonical && !same_file(dir, &old, &canonical) {
                    let _ = dir.unlink(old);
                }
            }
        }
        Ok(backing)
    }

    /// Creates backing directory `name` in `parent` (IV `parent_iv`) with its IV file and then
    /// `mode` (so that a mode without write permission does not keep the IV file out). On any
    /// failure, a full disk included, nothing of it is left.
    pub fn create_dir(
        &self,
        parent: &Dir,
        parent_iv: &DirIv,
        name: &[u8],
        mode: u32,
    ) -> Result<BackingName> {
        let (backing, ()) = self.create_dir_then(parent, parent_iv, name, mode, |_| Ok(()))?;
        Ok(backing)
    }

    /// [`Self::create_dir`], then `finish` with the new directory's backing name; if that
    /// fails, the directory goes again, as when its own steps fail.
    pub fn create_dir_then<U>(
        &self,
        parent: &Dir,
        parent_iv: &DirIv,
        name: &[u8],
        mode: u32,
        finish: impl FnOnce(&BackingName) -> Result<U>,
    ) -> Result<(BackingName, U)> {
        let backing = self.backing_name(parent_iv, name)?;
        let fill = |(): &mut ()| {
            let dir = parent.open_dir(backing.entry())?;
            diriv::write(&dir, &self.new_dir_iv(parent_iv, name))?;
            // A setgid parent passed its setgid bit on, whatever the mode asked.
            let inherited = crate::backing::mode_of(&dir.stat_self()?) & crate::fs::sys::S_ISGID;
            dir.chmod_self(mode | inherited)?;
            drop(dir);
            finish(&backing)
        };
        let ((), finished) =
            self.create_entry_then(parent, &backing, |entry| parent.mkdir(entry, 0o700), fill)?;
        Ok((backing, finished))
    }

    /// Creates regular file `name` in `parent` (IV `parent_iv`) holding `contents`: what the
    /// mount does for `create` and `write`, for tools and tests that fill a vault without one.
    pub fn create_file(
        &self,
        parent: &Dir,
        parent_iv: &DirIv,
        name: &[u8],
        contents: &[u8],
    ) -> Result<BackingName> {
        use nix::fcntl::OFlag;
        let backing = self.backing_name(parent_iv, name)?;
        let create = |entry: &str| {
            parent.open_file(entry, OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL, 0o644)
        };
        let fill = |file: &mut std::fs::File| {
            let mut content = crate::layout::file::FileContent::default();
            content.write(self.content_key(), file, 0, contents)
        };
        self.create_entry_then(parent, &backing, create, fill)?;
        Ok(backing)
    }

    /// Creates symlink `name` to `target` in `parent` (IV `parent_iv`).
    pub fn create_symlink(
        &self,
        parent: &Dir,
        parent_iv: &DirIv,
        name: &[u8],
        target: &[u8],
    ) -> Result<BackingName> {
        let backing = self.backing_name(parent_iv, name)?;
        let encrypted = self.names.encrypt_symlink(target)?;
        self.create_entry(parent, &backing, |entry| parent.symlink(&encrypted, entry))?;
        Ok(backing)
    }
}

/// Whether entries `a` and `b` of `dir` are one inode (names differing in case on a
/// case-insensitive filesystem).
fn same_file(dir: &Dir, a: &str, b: &str) -> bool {
    match (dir.stat(a), dir.stat(b)) {
        (Ok(a), Ok(b)) => a.st_dev == b.st_dev && a.st_ino == b.st_ino,
        _ => false,
    }
}
