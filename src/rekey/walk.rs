//! The walk of a rotation, directory by directory: each directory's entries sorted into those
//! already under the new keys, those to convert (conflict copies under the names they are shown
//! under) and those left, its subdirectories walked into (a rename the old keys left unfinished
//! finished first), and the sidecars of old long names a crash left behind removed.

use std::collections::HashSet;
use std::io;

use super::{named, remove_planted, Rotation};
use crate::backing::{Dir, FileKind};
use crate::crypto::names::DirIv;
use crate::error::{Error, Result};
use crate::layout::lend::with_write_permission;
use crate::layout::longname;
use crate::layout::{conflict, diriv, moves, EntryName, REKEY_TMP_NAME};
use crate::vault::{is_canonical_reserved, BackingEntry, IvPolicy};

/// A directory on the walk's stack. Only its backing path is kept (in [`Rotation::path`]),
/// never an open handle: a tree 100,000 levels deep costs no descriptor per level.
pub(super) struct Frame {
    /// Its IV under the previous keys and under the new ones.
    pub(super) old: DirIv,
    pub(super) new: DirIv,
    /// Subdirectories still to walk.
    pub(super) subdirs: Vec<Subdir>,
    /// Every entry of its own is under the new keys: its `veilfs.diriv` may change.
    pub(super) complete: bool,
}

/// A subdirectory to walk into: its backing name now, and the plaintext names its IVs derive
/// from under the previous keys and under the new ones (they differ for a conflict copy).
pub(super) struct Subdir {
    entry: String,
    old_plain: Vec<u8>,
    new_plain: Vec<u8>,
}

impl Subdir {
    /// A directory whose plaintext name is the same under both keys (all but conflict copies).
    fn named(entry: String, plain: &[u8]) -> Self {
        Subdir {
            entry,
            old_plain: plain.to_vec(),
            new_plain: plain.to_vec(),
        }
    }
}

impl Rotation<'_> {
    /// Removes the sidecars of `dir` whose long-name entry is gone and whose name is under the
    /// old keys (IV `old`): a crash after a converted entry's old name went, before its
    /// sidecar did, leaves one, which no walk would otherwise visit (it is reserved).
    pub(super) fn remove_old_sidecars(&self, dir: &Dir, old: &DirIv) -> Result<()> {
        let entries = dir.entries().map_err(|e| named(dir.path(), e.into()))?;
        for entry in entries {
            let Some(hashed) = entry
                .name
                .to_str()
                .and_then(|name| name.strip_suffix(longname::SIDECAR_SUFFIX))
                .filter(|hashed| hashed.starts_with(longname::LONGNAME_PREFIX))
            else {
                continue;
            };
            match dir.stat(hashed) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                _ => continue,
            }
            let old_name = longname::read_sidecar(dir, hashed)
                .is_ok_and(|encoded| self.from.names().decrypt_name(old, &encoded).is_ok());
            if old_name {
                with_write_permission(dir, || Ok(dir.unlink_if_present(&entry.name)?))?;
            }
        }
        Ok(())
    }

    /// The directory being converted, opened from the root by its backing path.
    pub(super) fn current(&self) -> Result<Dir> {
        self.to
            .root()
            .walk(&self.path)
            .map_err(|e| named(&self.to.root().display_path(self.path.join("/")), e.into()))
    }

    /// Converts the entries of `dir` (IV `old` under the previous keys, `new` under the new
    /// ones); returns its frame, with the subdirectories to walk.
    pub(super) fn enter(&mut self, dir: &Dir, old: DirIv, new: DirIv) -> Result<Frame> {
        with_write_permission(dir, || self.convert_entries(dir, old, new))
    }

    /// Walks into `sub` of the current directory (IVs `parent_old` and `parent_new`): a move
    /// left unfinished is finished and its xattrs converted, then its entries. `None` when it
    /// cannot be walked into (reported).
    pub(super) fn descend(
        &mut self,
        parent_old: DirIv,
        parent_new: DirIv,
        sub: Subdir,
    ) -> Result<Option<Frame>> {
        let parent = self.current()?;
        let opened = with_write_permission(&parent, || {
            let dir = parent.open_dir(&sub.entry)?;
            let Some(old) = self.old_dir_iv(&dir, &parent_old, &sub.old_plain) else {
                return Ok(None);
            };
            self.finish_old_move(&dir, old)?;
            self.convert_xattrs(&dir, None)?;
            Ok(Some((dir, old)))
        });
        let (dir, old) = match opened {
            Ok(Some(opened)) => opened,
            Ok(None) => {
                self.leave(
                    &parent,
                    &sub.entry,
                    "its veilfs.diriv is missing or unreadable",
                );
                return Ok(None);
            }
            Err(e) => {
                self.failed(&parent, &sub.entry, e, &mut true)?;
                return Ok(None);
            }
        };
        let new = self.to.new_dir_iv(&parent_new, &sub.new_plain);
        self.path.push(sub.entry);
        self.enter(&dir, old, new).map(Some)
    }

    fn convert_entries(&mut self, dir: &Dir, old: DirIv, new: DirIv) -> Result<Frame> {
        let mut frame = Frame {
            old,
            new,
            subdirs: Vec::new(),
            complete: true,
        };
        if let Err(e) = remove_planted(dir, REKEY_TMP_NAME) {
            // Its files cannot be converted without that name: the rest of the tree is.
            self.failed(dir, REKEY_TMP_NAME, e.into(), &mut frame.complete)?;
            return Ok(frame);
        }
        let mut taken = HashSet::new();
        let mut undecoded = Vec::new();
        let entries = dir.entries().map_err(|e| named(dir.path(), e.into()))?;
        for entry in entries {
            self.report.walked += 1;
            (self.progress)(&self.report);
            let Ok(name) = entry.name.into_string() else {
                self.leave(dir, "(a name that is not UTF-8)", "it is not a veilfs name");
                continue;
            };
            if EntryName::classify(&name) == EntryName::Reserved && is_canonical_reserved(&name)
                || conflict::is_sync_tool_file(&name)
            {
                continue;
            }
            let kind = match entry
                .kind
                .map_or_else(|| dir.stat(&name).map(|s| FileKind::of(&s)), Ok)
            {
                Ok(kind) => kind,
                Err(e) => {
                    self.failed(dir, &name, e.into(), &mut frame.complete)?;
                    continue;
                }
            };
            if let Ok(Some(plain)) = self.to.decrypt_entry(dir, &new, &name) {
                self.report.already += 1;
                if kind == FileKind::Dir {
                    frame.subdirs.push(Subdir::named(name, &plain));
                }
                taken.insert(plain);
                continue;
            }
            match self.from.decrypt_entry(dir, &old, &name) {
                Ok(Some(plain)) => {
                    if let Some(to) =
                        self.convert(dir, &name, kind, &new, &plain, &mut frame.complete)?
                    {
                        if kind == FileKind::Dir {
                            frame.subdirs.push(Subdir::named(to, &plain));
                        }
                    }
                    taken.insert(plain);
                }
                _ => undecoded.push((name, kind)),
            }
        }
        // Sync tools' copies of entries under the old keys get the names they are shown under,
        // as tidying does: their own names cannot be re-encrypted.
        let copies = self.from.conflict_copies(
            dir,
            &old,
            &taken,
            undecoded.iter().map(|(name, _)| name.as_str()),
        );
        let mut copied = HashSet::new();
        for copy in copies {
            let Some(&(_, kind)) = undecoded.iter().find(|(name, _)| *name == copy.backing) else {
                continue;
            };
            if let Some(to) = self.convert(
                dir,
                &copy.backing,
                kind,
                &new,
                &copy.shown,
                &mut frame.complete,
            )? {
                if kind == FileKind::Dir {
                    frame.subdirs.push(Subdir {
                        entry: to,
                        old_plain: copy.original,
                        new_plain: copy.shown,
                    });
                }
            }
            copied.insert(copy.backing);
        }
        for (name, kind) in undecoded {
            if copied.contains(&name) {
                continue;
            }
            // A sync tool's copy of an entry already under the new keys is one to show, not to
            // convert (a directory's contents are under its original's IV); anything else
            // decrypts under neither key.
            match self.to.classify_entry(dir, &new, &name) {
                BackingEntry::ConflictCopy { name: plain, .. } => {
                    self.report.already += 1;
                    if kind == FileKind::Dir {
                        frame.subdirs.push(Subdir::named(name, &plain));
                    }
                }
                _ => self.leave(dir, &name, "its name decrypts under neither key"),
            }
        }
        Ok(frame)
    }

    /// The IV the entries of directory `sub` (plaintext `plain` in a directory of old IV
    /// `parent`) are encrypted under with the old keys: its `veilfs.diriv` in format 1 (which
    /// holds the new IV once the directory is done), its derivation in format 2.
    fn old_dir_iv(&self, sub: &Dir, parent: &DirIv, plain: &[u8]) -> Option<DirIv> {
        match self.from.iv_policy() {
            IvPolicy::Stored => diriv::read(sub).ok(),
            IvPolicy::Derived => Some(self.from.new_dir_iv(parent, plain)),
        }
    }

    /// A directory move under the old keys that a crash left unfinished is finished first
    /// (with the old keys), as the mount would have: its names are then all under `old`.
    fn finish_old_move(&mut self, sub: &Dir, old: DirIv) -> Result<()> {
        match self.from.read_move(sub) {
            Ok(Some(record)) if record.new == old => {
                self.from.finish_move(sub, &record)?;
            }
            Ok(Some(record)) if self.from.move_never_started(sub, &record, &old) => {
                moves::remove(sub)?;
            }
            Ok(Some(_)) => self.leave(sub, "veilfs.move", "a move record that fits no IV"),
            Ok(None) => {}
            // Planted, or another vault's: the mount ignores it too.
            Err(e) => tracing::warn!("{e}"),
        }
        Ok(())
    }

    /// Converts entry `from` of `dir` (a `kind`) to plaintext name `plain` under IV `new`;
    /// returns its new backing name, or `None` (reported; `complete` cleared when it is still
    /// under the previous key) when it could not be converted.
    fn convert(
        &mut self,
        dir: &Dir,
        from: &str,
        kind: FileKind,
        new: &DirIv,
        plain: &[u8],
        complete: &mut bool,
    ) -> Result<Option<String>> {
        let converted = self.to.backing_name(new, plain).and_then(|backing| {
            match kind {
                FileKind::File => self.convert_file(dir, from, &backing)?,
                FileKind::Symlink => self.convert_symlink(dir, from, &backing)?,
                _ => self.rename_in_place(dir, from, &backing)?,
            }
            if let EntryName::Long(hashed) = EntryName::classify(from) {
                // The old name gone for good before its sidecar goes: else a power loss may
                // leave the old entry without the sidecar that holds its name.
                dir.sync()?;
                dir.unlink_if_present(longname::sidecar_name(hashed))?;
            }
            Ok(backing.entry().to_owned())
        });
        match converted {
            Ok(to) => {
                match kind {
                    FileKind::File => self.report.files += 1,
                    FileKind::Symlink => self.report.symlinks += 1,
                    FileKind::Dir => {}
                    _ => self.report.others += 1,
                }
                Ok(Some(to))
            }
            // Renamed without replacing, a directory or special file finds its new name taken
            // only by a twin: the same name in another case, which a case-insensitive sync
            // target makes in a base32 vault, and which the mount shows as one entry. It is
            // left, as fsck reports it: holding the rotation up would let anyone who can
            // rename a file keep the vault shut.
            Err(Error::Io(e))
                if e.kind() == io::ErrorKind::AlreadyExists
                    && !matches!(kind, FileKind::File | FileKind::Symlink) =>
            {
                self.leave(
                    dir,
                    from,
                    "its new name is taken (by a twin in another case?)",
                );
                Ok(None)
            }
            Err(e) => {
                self.failed(dir, from, e, complete)?;
                Ok(None)
            }
        }
    }
}
