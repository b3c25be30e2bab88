//! Directory moves: a directory's IV follows its path, so a move re-encrypts the names of its
//! subtree, under a move record that lets a crash be finished (format-v2.md, "Unique directory
//! IVs").

use std::collections::HashSet;
use std::io;

use crate::backing::{Dir, FileKind, RenameMode};
use crate::crypto::names::DirIv;
use crate::crypto::records::MoveRecord;
use crate::error::{Error, Result};
use crate::layout::lend::with_write_permission;
use crate::layout::longname::{self};
use crate::layout::{diriv, moves, EntryName, MOVE_NAME};

use super::names::is_canonical_reserved;
use super::{IvPolicy, Vault};

/// What a directory move changed, for the mount's inode table: every entry renamed (backing
/// inode number of its directory, old and new backing name) and every directory's new IV.
#[derive(Debug, Default)]
pub struct MoveChanges {
    pub renamed: Vec<(u64, String, String)>,
    pub ivs: Vec<(u64, DirIv)>,
}

impl Vault {
    /// The move record in `dir`: `None` when there is none, an error when one is there that
    /// does not authenticate (planted, or from another vault).
    pub fn read_move(&self, dir: &Dir) -> Result<Option<MoveRecord>> {
        match moves::read(dir)? {
            None => Ok(None),
            Some(sealed) => MoveRecord::open(&self.keys.record, &self.root_iv().0, &sealed)
                .map(Some)
                .map_err(|_| {
                    Error::Io(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "{} does not authenticate: not written by this vault's key",
                            dir.display_path(MOVE_NAME).display()
                        ),
                    ))
                }),
        }
    }

    /// Starts moving directory `moved` from IV `old` to IV `new`: writes its move record,
    /// durably, before anything is renamed. Returns the record for [`Self::finish_move`].
    pub fn begin_move(&self, moved: &Dir, old: DirIv, new: DirIv) -> Result<MoveRecord> {
        let record = MoveRecord::new(old, new);
        moves::write(moved, &record.seal(&self.keys.record, &self.root_iv().0))?;
        Ok(record)
    }

    /// Whether move `record`, found in `dir` whose path derives `path_iv`, never got past its
    /// first step: the directory is still where it was (its IV is the record's old one), so
    /// nothing was renamed and the record can go.
    pub fn move_never_started(&self, dir: &Dir, record: &MoveRecord, path_iv: &DirIv) -> bool {
        record.old == *path_iv
            || self.iv_policy == IvPolicy::Stored && diriv::read(dir).ok() == Some(record.old)
    }

    /// Undoes [`Self::begin_move`] when the rename itself failed.
    pub fn abandon_move(&self, moved: &Dir) {
        if let Err(e) = moves::remove(moved) {
            tracing::error!(
                "cannot remove {}: {e}",
                moved.display_path(MOVE_NAME).display()
            );
        }
    }

    /// Finishes the move `record` of directory `dir` (already at its new place): every name of
    /// its subtree re-encrypted under the IVs of the new path, each directory's IV file
    /// replaced, then the record removed. Idempotent, so a crash anywhere is finished by running
    /// it again: a name that decrypts under the new IV is done, one under the old IV is renamed.
    pub fn finish_move(&self, dir: &Dir, record: &MoveRecord) -> Result<MoveChanges> {
        let mut changes = MoveChanges::default();
        self.reencrypt_tree(dir, record.old, record.new, &mut changes)?;
        // Every rename of the subtree durable before the record goes: one syncfs costs less
        // than an fsync per directory (a journal commit each).
        dir.sync_filesystem()?;
        moves::remove(dir)?;
        Ok(changes)
    }

    /// Re-encrypts the names of `dir` from IV `old` (or, in a v1 vault, the IV its file holds)
    /// to `new`, then those of its subdirectories, each from and to the IVs their names derive.
    fn reencrypt_tree(
        &self,
        dir: &Dir,
        old: DirIv,
        new: DirIv,
        changes: &mut MoveChanges,
    ) -> Result<()> {
        let ino = dir.stat_self()?.st_ino;
        with_write_permission(dir, || self.reencrypt_names(dir, ino, old, new, changes))
    }

    /// [`Self::reencrypt_tree`] of directory `dir` (inode number `ino`), once it may be written.
    fn reencrypt_names(
        &self,
        dir: &Dir,
        ino: u64,
        old: DirIv,
        new: DirIv,
        changes: &mut MoveChanges,
    ) -> Result<()> {
        let mut olds = vec![old];
        if self.iv_policy == IvPolicy::Stored {
            // A v1 directory renamed before IVs followed paths has an IV of its own.
            if let Ok(stored) = diriv::read(dir) {
                if stored != old && stored != new {
                    olds.push(stored);
                }
            }
        }
        changes.ivs.push((ino, new));
        // Entries to walk into: (backing name now, old IV of the directory, its plaintext name
        // then and now: a conflict copy is renamed to the name it is shown under).
        let mut subdirs: Vec<(String, DirIv, Vec<u8>, Vec<u8>)> = Vec::new();
        let mut taken = HashSet::new();
        let mut undecoded = Vec::new();
        for entry in dir.entries()? {
            let Ok(name) = entry.name.into_string() else {
                continue;
            };
            if EntryName::classify(&name) == EntryName::Reserved && is_canonical_reserved(&name) {
                continue; // sidecars move with their entries; IV files and records stay
            }
            let dir_entry = match entry.kind {
                Some(kind) => kind == FileKind::Dir,
                None => FileKind::of(&dir.stat(&name)?) == FileKind::Dir,
            };
            if let Ok(Some(plain)) = self.decrypt_entry(dir, &new, &name) {
                self.remove_old_sidecars(dir, &olds, &name, &plain)?;
                if dir_entry {
                    subdirs.push((name, old, plain.clone(), plain.clone()));
                }
                taken.insert(plain);
                continue;
            }
            let found = olds
                .iter()
                .find_map(|iv| Some((*iv, self.decrypt_entry(dir, iv, &name).ok()??)));
            let Some((from_iv, plain)) = found else {
                undecoded.push((name, dir_entry));
                continue;
            };
            if let Some(to) = self.move_entry(dir, ino, &name, &new, &plain, changes) {
                if dir_entry {
                    subdirs.push((to, from_iv, plain.clone(), plain.clone()));
                }
            }
            taken.insert(plain);
        }
        // Sync tools' copies of entries under an old IV: renamed to the names they are shown
        // under, as tidying does, since their own names stop authenticating with the old IV.
        for iv in &olds {
            let names = undecoded.iter().map(|(name, _)| name.as_str());
            for copy in self.conflict_copies(dir, iv, &taken, names) {
                let dir_entry = undecoded.iter().any(|(n, d)| *n == copy.backing && *d);
                if let Some(to) =
                    self.move_entry(dir, ino, &copy.backing, &new, &copy.shown, changes)
                {
                    if dir_entry {
                        subdirs.push((to, *iv, copy.original, copy.shown.clone()));
                    }
                }
                taken.insert(copy.shown);
            }
        }
        for (entry, from_iv, then, now) in subdirs {
            let sub = dir.open_dir(&entry)?;
            let (sub_old, sub_new) = (
                self.new_dir_iv(&from_iv, &then),
                self.new_dir_iv(&new, &now),
            );
            // A move of this subdirectory that a crash left unfinished goes first.
            if let Ok(Some(nested)) = self.read_move(&sub) {
                if nested.new == sub_old {
                    let done = self.finish_move(&sub, &nested)?;
                    changes.renamed.extend(done.renamed);
                    changes.ivs.extend(done.ivs);
                }
            }
            self.reencrypt_tree(&sub, sub_old, sub_new, changes)?;
        }
        if diriv::read(dir).ok() != Some(new) {
            diriv::replace(dir, &new, false)?;
        }
        Ok(())
    }

    /// A crash between the rename of long-name entry `name` (plaintext `plain`) and the removal
    /// of its old sidecar left that sidecar: it goes, unless an entry under the old name exists.
    fn remove_old_sidecars(
        &self,
        dir: &Dir,
        olds: &[DirIv],
        name: &str,
        plain: &[u8],
    ) -> Result<()> {
        if !matches!(EntryName::classify(name), EntryName::Long(_)) {
            return Ok(());
        }
        for old in olds {
            let before = self.backing_name(old, plain)?;
            if let Some(sidecar) = before.sidecar() {
                if before.entry() != name && !dir.exists(before.entry()) {
                    dir.unlink_if_present(sidecar)?;
                }
            }
        }
        Ok(())
    }

    /// [`Self::reencrypt_entry`], recorded in `changes` (`ino`: the inode number of `dir`);
    /// a name that cannot be renamed is logged and left for fsck to report.
    fn move_entry(
        &self,
        dir: &Dir,
        ino: u64,
        from: &str,
        iv: &DirIv,
        plain: &[u8],
        changes: &mut MoveChanges,
    ) -> Option<String> {
        match self.reencrypt_entry(dir, from, iv, plain) {
            Ok(to) => {
                changes.renamed.push((ino, from.to_owned(), to.clone()));
                Some(to)
            }
            Err(e) => {
                tracing::warn!(
                    "cannot re-encrypt {}: {e}",
                    dir.display_path(from).display()
                );
                None
            }
        }
    }

    /// Renames entry `from` of `dir` to the encryption of `plain` under `iv`, never replacing
    /// an entry; a long name's new sidecar is written first and its old one removed after.
    fn reencrypt_entry(&self, dir: &Dir, from: &str, iv: &DirIv, plain: &[u8]) -> Result<String> {
        let backing = self.backing_name(iv, plain)?;
        self.rename_into(dir, from, dir, &backing, RenameMode::NoReplace)?;
        if let EntryName::Long(hashed) = EntryName::classify(from) {
            // The rename durable first, as `BackingName::remove_sidecar` makes it.
            dir.sync()?;
            dir.unlink_if_present(longname::sidecar_name(hashed))?;
        }
        Ok(backing.entry().to_owned())
    }
}
