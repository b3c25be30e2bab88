//! rename(2), with RENAME_EXCHANGE and RENAME_NOREPLACE: a moved directory's IV follows its
//! path, so its subtree is re-encrypted under a move record.

use std::ffi::OsStr;

use fuser::RenameFlags;

use crate::backing::{Dir, FileKind, RenameMode, Stat};
use crate::crypto::records::MoveRecord;
use crate::error::Result;
use crate::layout::longname::BackingName;
use crate::layout::MOVE_NAME;

use super::{errno, VeilFs};

impl VeilFs {
    pub(super) fn do_rename(
        &self,
        parent: u64,
        name: &OsStr,
        new_parent: u64,
        new_name: &OsStr,
        flags: RenameFlags,
    ) -> Result<()> {
        let mode = rename_mode(flags).ok_or_else(|| errno(libc::EINVAL))?;
        let (from_dir, _, from) = self.entry(parent, name)?;
        let (to_dir, _, to) = self.entry(new_parent, new_name)?;
        let from_stat = from_dir.stat(from.entry())?;
        let to_stat = to_dir.stat(to.entry()).ok();
        let is_dir = |stat: &Stat| FileKind::of(stat) == FileKind::Dir;
        if to_stat
            .as_ref()
            .is_some_and(|s| s.st_ino == from_stat.st_ino)
        {
            return Ok(()); // two names of one inode: rename(2) does nothing
        }
        // A directory's IV follows its path (format-v2.md, "Unique directory IVs"): each moved
        // directory gets a move record before anything is renamed, and its subtree is
        // re-encrypted after.
        let mut moves = Vec::new();
        let from_ino = self.inodes.lock().unwrap().fuse_ino(from_stat.st_ino);
        if is_dir(&from_stat) {
            moves.extend(self.begin_move(from_ino, new_parent, new_name)?);
        }
        if mode == RenameMode::Exchange && to_stat.as_ref().is_some_and(is_dir) {
            let to_ino = self
                .inodes
                .lock()
                .unwrap()
                .fuse_ino(to_stat.as_ref().unwrap().st_ino);
            match self.begin_move(to_ino, parent, name) {
                Ok(record) => moves.extend(record),
                Err(e) => {
                    self.abandon_moves(&moves);
                    return Err(e);
                }
            }
        }
        let renamed = self.rename_entries(
            (parent, &from_dir, &from, &from_stat),
            (new_parent, &to_dir, &to, to_stat),
            mode,
        );
        if renamed.is_err() {
            self.abandon_moves(&moves);
            return renamed;
        }
        for (dir, record) in &moves {
            match self.vault.finish_move(dir, record) {
                Ok(changes) => self.inodes.lock().unwrap().apply_move(&changes),
                // The record stays: the next request that loads the directory's IV finishes it.
                Err(e) => self.warn_once(dir.display_path(MOVE_NAME), &e),
            }
        }
        Ok(())
    }

    fn abandon_moves(&self, moves: &[(Dir, MoveRecord)]) {
        for (dir, _) in moves {
            self.vault.abandon_move(dir);
        }
    }

    /// The backing part of [`Self::do_rename`]: renames the entry and updates the inode table.
    fn rename_entries(
        &self,
        (parent, from_dir, from, from_stat): (u64, &Dir, &BackingName, &Stat),
        (new_parent, to_dir, to, to_stat): (u64, &Dir, &BackingName, Option<Stat>),
        mode: RenameMode,
    ) -> Result<()> {
        let is_dir = |stat: &Stat| FileKind::of(stat) == FileKind::Dir;
        if mode == RenameMode::Exchange {
            // Names stay where they are, so their sidecars do too; only the inodes swap.
            let to_stat = to_stat.ok_or_else(|| errno(libc::ENOENT))?;
            from_dir.rename(from.entry(), to_dir, to.entry(), mode)?;
            let mut table = self.inodes.lock().unwrap();
            let (a, b) = (
                table.fuse_ino(from_stat.st_ino),
                table.fuse_ino(to_stat.st_ino),
            );
            table.moved(
                a,
                (parent, OsStr::new(from.entry())),
                (new_parent, to.entry().into()),
            );
            table.moved(
                b,
                (new_parent, OsStr::new(to.entry())),
                (parent, from.entry().into()),
            );
            return Ok(());
        }
        // A directory may replace an empty one, which in the backing dir still holds its IV.
        let replaced = match &to_stat {
            Some(s) if mode == RenameMode::Replace && is_dir(s) && is_dir(from_stat) => {
                Some(Self::empty_dir_for_removal(to_dir, to.entry())?)
            }
            _ => None,
        };
        let renamed = self
            .vault
            .rename_into(from_dir, from.entry(), to_dir, to, mode);
        if let Err(e) = renamed {
            if let Some((emptied, iv)) = replaced {
                Self::restore_diriv(&emptied, &iv);
            }
            return Err(e);
        }
        if from.sidecar().is_some() && (parent != new_parent || from.entry() != to.entry()) {
            from.remove_sidecar(from_dir)?;
        }
        let mut table = self.inodes.lock().unwrap();
        if let Some(s) = to_stat {
            let replaced = table.fuse_ino(s.st_ino);
            table.unlink(replaced, new_parent, OsStr::new(to.entry()));
        }
        let moved = table.fuse_ino(from_stat.st_ino);
        table.moved(
            moved,
            (parent, OsStr::new(from.entry())),
            (new_parent, to.entry().into()),
        );
        Ok(())
    }
}

/// The mode the kernel's rename flags ask for; `None` for flags veilfs does not support.
fn rename_mode(flags: RenameFlags) -> Option<RenameMode> {
    if flags.is_empty() {
        return Some(RenameMode::Replace);
    }
    #[cfg(target_os = "linux")]
    {
        if flags == RenameFlags::RENAME_EXCHANGE {
            return Some(RenameMode::Exchange);
        }
        if flags == RenameFlags::RENAME_NOREPLACE {
            return Some(RenameMode::NoReplace);
        }
    }
    None
}
