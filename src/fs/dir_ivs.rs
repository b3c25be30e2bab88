//! Directory IVs as the adapter loads them: read or derived on first use, finishing a move a
//! crash interrupted; and the move record a directory rename starts with.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;

use crate::backing::Dir;
use crate::crypto::names::DirIv;
use crate::crypto::records::MoveRecord;
use crate::error::{Error, Result};
use crate::layout::{diriv, DIRIV_NAME, MOVE_NAME};
use crate::vault::{BackingEntry, IvPolicy};

use super::{errno, VeilFs};

impl VeilFs {
    /// The IV of directory `ino` (handle `dir`), not yet in the table: read or derived as the
    /// vault's [`IvPolicy`] says. A move record in it that authenticates and names the IV its
    /// path derives (a rename a crash interrupted) is finished first.
    pub(super) fn load_iv(&self, ino: u64, dir: &Dir) -> Result<DirIv> {
        let record = self.vault.read_move(dir).unwrap_or_else(|e| {
            self.warn_once(dir.display_path(MOVE_NAME), &e);
            None
        });
        if let Some(record) = record {
            let (parent_iv, name) = self.plain_location(ino)?;
            let path_iv = self.vault.new_dir_iv(&parent_iv, &name);
            if record.new == path_iv && !self.tidy {
                // A read-only mount writes nothing: it shows what has moved so far.
                let why = io::Error::other(
                    "a directory rename was interrupted: mount read-write or run fsck --repair \
                     to finish it",
                );
                self.warn_once(dir.display_path(MOVE_NAME), &why.into());
                return Ok(record.new);
            }
            if record.new == path_iv {
                return Ok(self.finish_interrupted_move(ino, dir, &record));
            }
            if self.tidy && self.vault.move_never_started(dir, &record, &path_iv) {
                // The crash came before the directory itself was renamed.
                self.vault.abandon_move(dir);
            } else {
                let why = io::Error::other("a move record for another path: ignored");
                self.warn_once(dir.display_path(MOVE_NAME), &why.into());
            }
        }
        match self.vault.iv_policy() {
            IvPolicy::Stored => diriv::read(dir).inspect_err(|e| {
                self.warn_once(dir.display_path(DIRIV_NAME), e);
            }),
            IvPolicy::Derived => {
                let (parent_iv, name) = self.plain_location(ino)?;
                Ok(self.vault.new_dir_iv(&parent_iv, &name))
            }
        }
    }

    /// Finishes the move `record` of directory `ino` that a crash interrupted; its IV is the
    /// record's new one whether or not that succeeds (what is left is finished next time).
    fn finish_interrupted_move(&self, ino: u64, dir: &Dir, record: &MoveRecord) -> DirIv {
        let _one = self.finishing.lock().unwrap();
        if let Some(iv) = self.inodes.lock().unwrap().iv(ino) {
            return iv; // another request finished it
        }
        match self.vault.finish_move(dir, record) {
            Ok(changes) => self.inodes.lock().unwrap().apply_move(&changes),
            Err(e) => self.warn_once(dir.display_path(MOVE_NAME), &e),
        }
        record.new
    }

    /// The IV of the parent of directory `ino` and the plaintext name the IV of `ino` derives
    /// from (a conflict copy's is its original's: the sync tool copied names encrypted for it).
    fn plain_location(&self, ino: u64) -> Result<(DirIv, Vec<u8>)> {
        let location = self.inodes.lock().unwrap().location(ino).cloned();
        let (parent, backing) = location.ok_or_else(|| errno(libc::ENOENT))?;
        let (parent_dir, parent_iv) = self.dir(parent)?;
        let backing = backing.to_str().ok_or(Error::NameEncoding("UTF-8"))?;
        match self.vault.classify_entry(&parent_dir, &parent_iv, backing) {
            BackingEntry::Name(name) | BackingEntry::ConflictCopy { name, .. } => {
                Ok((parent_iv, name))
            }
            BackingEntry::Undecodable(e) => Err(e),
            _ => Err(errno(libc::EIO)),
        }
    }

    /// Starts moving directory `moved` to plaintext `new_name` in `new_parent`: writes its move
    /// record; `None` when its IV does not change.
    pub(super) fn begin_move(
        &self,
        moved: u64,
        new_parent: u64,
        new_name: &OsStr,
    ) -> Result<Option<(Dir, MoveRecord)>> {
        // Loading its IV finishes an interrupted move of it first.
        let (dir, old) = self.dir(moved)?;
        let (_, new_parent_iv) = self.dir(new_parent)?;
        let new = self.vault.new_dir_iv(&new_parent_iv, new_name.as_bytes());
        if old == new {
            return Ok(None);
        }
        let record = self.vault.begin_move(&dir, old, new)?;
        Ok(Some((dir, record)))
    }
}
