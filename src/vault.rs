//! An unlocked vault: the keys and features of one backing directory, and the name and path
//! operations every frontend (the mount, fsck, path translation) shares.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};

use crate::backing::{Dir, FileKind, RenameMode, SidecarCopies};
use crate::config::Features;
use crate::crypto::keys::{ContentKey, VaultKeys};
use crate::crypto::names::{DirIv, NameCipher, NameEncoding};
use crate::crypto::records::MoveRecord;
use crate::error::{Error, Result};
use crate::layout::conflict::{self, Candidate};
use crate::layout::longname::{self, BackingName, LONGNAME_PREFIX, SIDECAR_SUFFIX};
use crate::layout::{
    diriv, moves, strip_prefix_ignore_case, EntryName, DIRIV_NAME, DIRIV_TMP_NAME, MOVE_NAME,
    REKEY_LINKS_NAME, REKEY_TMP_NAME,
};

/// What one backing directory entry is: see [`Vault::classify_entry`].
#[derive(Debug)]
pub enum BackingEntry {
    /// An entry of the plaintext tree, with its plaintext name.
    Name(Vec<u8>),
    /// A sync tool's copy of an entry: `name` is the original's plaintext name, `of` the
    /// original's backing name (which may or may not still exist).
    ConflictCopy { name: Vec<u8>, of: String },
    /// `veilfs.conf`, `veilfs.diriv`, a sidecar, or another name veilfs reserves.
    Reserved,
    /// A sync tool's copy of a file veilfs reserves.
    ReservedCopy(ReservedCopy),
    /// A sync tool's own file (`.stfolder`, `.dropbox`, a transfer's temporary file).
    SyncTool,
    /// Neither an entry nor a copy of one that authenticates: hidden, reported by fsck.
    Undecodable(Error),
}

/// A sync tool's copy of a file veilfs reserves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReservedCopy {
    /// Of the sidecar of long-name entry `of`; `valid` when it holds that entry's encoded name.
    Sidecar { of: String, valid: bool },
    /// Of `veilfs.diriv`.
    DirIv,
    /// Of `veilfs.conf`.
    Conf,
}

/// A conflict copy as a directory listing shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConflictCopy {
    /// Its backing name, as the sync tool left it.
    pub backing: String,
    /// The plaintext name of the entry it is a copy of.
    pub original: Vec<u8>,
    /// The name veilfs shows it under: `stem (conflict N).ext`.
    pub shown: Vec<u8>,
}

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

/// What a directory move changed, for the mount's inode table: every entry renamed (backing
/// inode number of its directory, old and new backing name) and every directory's new IV.
#[derive(Debug, Default)]
pub struct MoveChanges {
    pub renamed: Vec<(u64, String, String)>,
    pub ivs: Vec<(u64, DirIv)>,
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
        self.create_entry(dir, &backing, |to| {
            dir.rename(from, dir, to, RenameMode::NoReplace)
        })?;
        if let EntryName::Long(hashed) = EntryName::classify(from) {
            // The rename durable first, as `BackingName::remove_sidecar` makes it.
            dir.sync()?;
            dir.unlink_if_present(longname::sidecar_name(hashed))?;
        }
        Ok(backing.entry().to_owned())
    }

    /// Where plaintext `name` lives in the directory with IV `iv`.
    pub fn backing_name(&self, iv: &DirIv, name: &[u8]) -> Result<BackingName> {
        let encoded = self.names.encrypt_name(iv, name)?;
        Ok(BackingName::new(encoded, self.features.longname_max))
    }

    /// The plaintext name of backing entry `entry` in `dir` (IV `iv`); `None` for names veilfs
    /// reserves. Long names are checked against their sidecar.
    pub fn decrypt_entry(&self, dir: &Dir, iv: &DirIv, entry: &str) -> Result<Option<Vec<u8>>> {
        let encoded = match EntryName::classify(entry) {
            // A sync tool's copy of a long-name entry may look reserved
            // (`veilfs.longname (conflicted copy ...).<hash>`): it is not a name, but callers
            // should look at it as a conflict copy rather than skip it.
            EntryName::Reserved
                if !is_canonical_reserved(entry) && may_be_long_entry_copy(entry) =>
            {
                return Err(Error::NameAuth)
            }
            EntryName::Reserved => return Ok(None),
            EntryName::Short(encoded) => encoded.to_owned(),
            EntryName::Long(hashed) => self.read_sidecar(dir, hashed)?,
        };
        self.names.decrypt_name(iv, &encoded).map(Some)
    }

    /// Whether backing names may have had their case changed (a base32 vault, meant for
    /// case-insensitive sync targets): such names are matched ignoring case.
    pub fn ignores_case(&self) -> bool {
        self.names.encoding() == NameEncoding::Base32
    }

    /// The encoded name of long-name entry `hashed` in `dir`, from its sidecar; when that is
    /// missing or wrong, from a sync tool's copy of it that holds the right contents.
    pub fn read_sidecar(&self, dir: &Dir, hashed: &str) -> Result<String> {
        let first = if self.ignores_case() {
            longname::read_sidecar_ignoring_case(dir, hashed)
        } else {
            longname::read_sidecar(dir, hashed)
        };
        let error = match first {
            Ok(encoded) => return Ok(encoded),
            Err(e) => e,
        };
        let copies = dir.sidecar_copies(|| self.sidecar_copies(dir))?;
        for copy in copies.get(&self.entry_key(hashed)).into_iter().flatten() {
            if let Ok(encoded) = longname::read_sidecar_file(dir, copy, hashed, self.ignores_case())
            {
                return Ok(encoded);
            }
        }
        Err(error)
    }

    /// Names in `dir` that look like a sync tool's copy of a sidecar, by the entry each is of
    /// (its [`Self::entry_key`]).
    fn sidecar_copies(&self, dir: &Dir) -> io::Result<SidecarCopies> {
        let mut copies = SidecarCopies::new();
        for entry in dir.entries()? {
            let Ok(name) = entry.name.into_string() else {
                continue;
            };
            if strip_prefix_ignore_case(&name, LONGNAME_PREFIX.trim_end_matches('.')).is_none()
                || is_canonical_sidecar(&name)
            {
                continue;
            }
            for candidate in conflict::candidates(&name, self.names.encoding()) {
                if let Candidate::Sidecar(of) = candidate {
                    copies
                        .entry(self.entry_key(&of))
                        .or_default()
                        .push(name.clone());
                }
            }
        }
        Ok(copies)
    }

    /// Entry name `name` as [`Self::same_entry_name`] compares it: folded to lower case in a
    /// vault whose names may have been re-cased.
    fn entry_key(&self, name: &str) -> String {
        if self.ignores_case() {
            name.to_ascii_lowercase()
        } else {
            name.to_owned()
        }
    }

    fn same_entry_name(&self, a: &str, b: &str) -> bool {
        a == b || self.ignores_case() && a.eq_ignore_ascii_case(b)
    }

    /// What backing entry `entry` of `dir` (IV `iv`) is. A name that does not decrypt is tried
    /// as a sync tool's conflict copy ([`conflict::candidates`]); a candidate counts only if it
    /// authenticates, so the provider's text never makes an entry appear.
    pub fn classify_entry(&self, dir: &Dir, iv: &DirIv, entry: &str) -> BackingEntry {
        let error = match self.decrypt_entry(dir, iv, entry) {
            Ok(Some(name)) => return BackingEntry::Name(name),
            Ok(None) if is_canonical_reserved(entry) => return BackingEntry::Reserved,
            Ok(None) => None,
            Err(e) => Some(e),
        };
        if conflict::is_sync_tool_file(entry) {
            return BackingEntry::SyncTool;
        }
        let mut invalid_sidecar = None;
        for candidate in conflict::candidates(entry, self.names.encoding()) {
            match candidate {
                Candidate::Short(core) => {
                    if let Ok(name) = self.names.decrypt_name(iv, &core) {
                        return self.conflict_copy(iv, name);
                    }
                }
                Candidate::Long(hashed) => {
                    if self.same_entry_name(&hashed, entry) {
                        continue;
                    }
                    let decrypted = self
                        .read_sidecar(dir, &hashed)
                        .and_then(|encoded| self.names.decrypt_name(iv, &encoded));
                    if let Ok(name) = decrypted {
                        return self.conflict_copy(iv, name);
                    }
                }
                Candidate::Sidecar(of) => {
                    if longname::read_sidecar_file(dir, entry, &of, self.ignores_case()).is_ok() {
                        return BackingEntry::ReservedCopy(ReservedCopy::Sidecar {
                            of,
                            valid: true,
                        });
                    }
                    invalid_sidecar.get_or_insert(of);
                }
                Candidate::DirIv => return BackingEntry::ReservedCopy(ReservedCopy::DirIv),
                Candidate::Conf => return BackingEntry::ReservedCopy(ReservedCopy::Conf),
            }
        }
        if let Some(of) = invalid_sidecar {
            return BackingEntry::ReservedCopy(ReservedCopy::Sidecar { of, valid: false });
        }
        match error {
            Some(e) => BackingEntry::Undecodable(e),
            None => BackingEntry::Reserved,
        }
    }

    fn conflict_copy(&self, iv: &DirIv, name: Vec<u8>) -> BackingEntry {
        match self.backing_name(iv, &name) {
            Ok(of) => BackingEntry::ConflictCopy {
                of: of.entry().to_owned(),
                name,
            },
            Err(e) => BackingEntry::Undecodable(e),
        }
    }

    /// The conflict copies among `undecoded` (backing names in `dir` that did not decrypt),
    /// each with the name to show it under next to the plaintext names `taken` of the directory
    /// ([`conflict::name_copies`]: deterministic, so every device picks the same names).
    pub fn conflict_copies<'a>(
        &self,
        dir: &Dir,
        iv: &DirIv,
        taken: &HashSet<Vec<u8>>,
        undecoded: impl IntoIterator<Item = &'a str>,
    ) -> Vec<ConflictCopy> {
        let copies = undecoded
            .into_iter()
            .filter_map(|backing| match self.classify_entry(dir, iv, backing) {
                BackingEntry::ConflictCopy { name, .. } => Some((backing.to_owned(), name)),
                _ => None,
            })
            .collect();
        conflict::name_copies(taken, copies)
            .into_iter()
            .map(|(backing, original, shown)| ConflictCopy {
                backing,
                original,
                shown,
            })
            .collect()
    }

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
        let renamed = self.create_entry(dir, &backing, |entry| {
            dir.rename(from, dir, entry, RenameMode::NoReplace)
        });
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
        backing.write_sidecar(dir)?;
        match dir.rename(entry, dir, backing.entry(), RenameMode::NoReplace) {
            Ok(()) => {}
            // A case-insensitive file system: the target "exists" and is the entry itself.
            Err(e)
                if e.kind() == io::ErrorKind::AlreadyExists
                    && same_file(dir, entry, backing.entry()) =>
            {
                dir.rename(entry, dir, backing.entry(), RenameMode::Replace)?
            }
            Err(e) => return Err(e.into()),
        }
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

    /// In a vault whose names may have been re-cased ([`Vault::ignores_case`]): every entry of
    /// `dir` (IV `iv`) whose backing name is not its canonical one, as (plaintext name, backing
    /// name). Empty in other vaults.
    pub fn recased_entries(&self, dir: &Dir, iv: &DirIv) -> Result<Vec<(Vec<u8>, String)>> {
        let mut found = Vec::new();
        if !self.ignores_case() {
            return Ok(found);
        }
        for entry in dir.entries()? {
            let Ok(name) = entry.name.into_string() else {
                continue;
            };
            if name.bytes().all(|b| !b.is_ascii_uppercase()) && !name.starts_with(LONGNAME_PREFIX) {
                continue; // a lowercase short name is canonical
            }
            if let Ok(Some(plain)) = self.decrypt_entry(dir, iv, &name) {
                if self
                    .backing_name(iv, &plain)
                    .is_ok_and(|b| b.entry() != name)
                {
                    found.push((plain, name));
                }
            }
        }
        Ok(found)
    }

    /// In a vault whose names may have been re-cased ([`Vault::ignores_case`]): the name under
    /// which `backing` actually exists in `dir`, when it is not its canonical one.
    pub fn find_recased(&self, dir: &Dir, backing: &BackingName) -> Result<Option<String>> {
        if !self.ignores_case() {
            return Ok(None);
        }
        for entry in dir.entries()? {
            if let Some(name) = entry.name.to_str() {
                if name != backing.entry() && name.eq_ignore_ascii_case(backing.entry()) {
                    return Ok(Some(name.to_owned()));
                }
            }
        }
        Ok(None)
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
        let backing = self.backing_name(parent_iv, name)?;
        self.create_entry(parent, &backing, |entry| parent.mkdir(entry, 0o700))?;
        let filled = parent
            .open_dir(backing.entry())
            .map_err(Error::from)
            .and_then(|dir| {
                diriv::write(&dir, &self.new_dir_iv(parent_iv, name))?;
                // A setgid parent passed its setgid bit on, whatever the mode asked.
                let inherited =
                    crate::backing::mode_of(&dir.stat_self()?) & crate::fs::sys::S_ISGID;
                dir.chmod_self(mode | inherited)?;
                Ok(())
            });
        if let Err(e) = filled {
            self.remove_new_entry(parent, &backing);
            return Err(e);
        }
        Ok(backing)
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
        let file = self.create_entry(parent, &backing, |entry| {
            parent.open_file(entry, OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL, 0o644)
        })?;
        let mut content = crate::layout::file::FileContent::default();
        if let Err(e) = content.write(self.content_key(), &file, 0, contents) {
            self.remove_new_entry(parent, &backing);
            return Err(e);
        }
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

    /// The name the conflict copy `entry` of `dir` is shown under.
    fn shown_name(&self, dir: &Dir, iv: &DirIv, entry: &str) -> Result<Vec<u8>> {
        let copies = self.scan_conflict_copies(dir, iv)?;
        copies
            .into_iter()
            .find(|c| c.backing == entry)
            .map(|c| c.shown)
            .ok_or(Error::NameAuth)
    }

    /// Every conflict copy in `dir` (IV `iv`), named as a listing names them: reads and
    /// decrypts the whole directory.
    pub fn scan_conflict_copies(&self, dir: &Dir, iv: &DirIv) -> Result<Vec<ConflictCopy>> {
        let mut taken = HashSet::new();
        let mut undecoded = Vec::new();
        for item in dir.entries()? {
            let Ok(name) = item.name.into_string() else {
                continue;
            };
            match self.decrypt_entry(dir, iv, &name) {
                Ok(Some(plain)) => {
                    taken.insert(plain);
                }
                Ok(None) => {}
                Err(_) => undecoded.push(name),
            }
        }
        Ok(self.conflict_copies(dir, iv, &taken, undecoded.iter().map(String::as_str)))
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

/// Runs `f`, which renames entries of `dir`, with `dir` writable and searchable by its owner:
/// a directory its owner may not write (`chmod -w`, Go's module cache) still has its names
/// re-encrypted, the owner (veilfs) lending itself the permission meanwhile. (A crash then
/// leaves the directory writable by its owner; nothing else.)
pub(crate) fn with_write_permission<T>(dir: &Dir, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let stat = dir.stat_self()?;
    let mode = crate::backing::mode_of(&stat) & 0o7777;
    let lend = mode & 0o300 != 0o300 && stat.st_uid == nix::unistd::geteuid().as_raw();
    if lend {
        dir.chmod_self(mode | 0o300)?;
    }
    let done = f();
    if lend {
        dir.chmod_self(mode)?;
    }
    done
}

/// Whether `name` is one of the names veilfs itself writes (in any case): the config, a
/// directory IV, or a sidecar.
pub fn is_canonical_reserved(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower == crate::config::CONFIG_NAME
        || lower == crate::config::CONFIG_TMP_NAME
        || lower == DIRIV_NAME
        || lower == DIRIV_TMP_NAME
        || lower == MOVE_NAME
        || lower == REKEY_TMP_NAME
        || lower == REKEY_LINKS_NAME
        || is_canonical_sidecar(name)
}

fn may_be_long_entry_copy(name: &str) -> bool {
    // The encoding does not matter for names starting with "veilfs".
    conflict::candidates(name, NameEncoding::Base64Url)
        .iter()
        .any(|c| matches!(c, Candidate::Long(_)))
}

/// `veilfs.longname.<43 hash characters>.name`, in any case.
pub fn is_canonical_sidecar(name: &str) -> bool {
    let Some(rest) = strip_prefix_ignore_case(name, LONGNAME_PREFIX) else {
        return false;
    };
    if !crate::layout::ends_with_ignore_case(rest, SIDECAR_SUFFIX) {
        return false;
    }
    let hash = &rest[..rest.len() - SIDECAR_SUFFIX.len()];
    hash.len() == conflict::HASH_LEN
        && hash
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Whether entries `a` and `b` of `dir` are one inode (names differing in case on a
/// case-insensitive filesystem).
fn same_file(dir: &Dir, a: &str, b: &str) -> bool {
    match (dir.stat(a), dir.stat(b)) {
        (Ok(a), Ok(b)) => a.st_dev == b.st_dev && a.st_ino == b.st_ino,
        _ => false,
    }
}
