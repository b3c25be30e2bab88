//! Backing names: plaintext names encrypted to entry names (long ones hashed, with a sidecar)
//! and back, and what each backing entry is: a name, a sync tool's conflict copy of one, a file
//! veilfs reserves, or something undecodable.

use std::collections::HashSet;
use std::io;

use crate::backing::{Dir, SidecarCopies};
use crate::crypto::names::{DirIv, NameEncoding};
use crate::error::{Error, Result};
use crate::layout::conflict::{self, Candidate};
use crate::layout::longname::{self, BackingName, LONGNAME_PREFIX, SIDECAR_SUFFIX};
use crate::layout::{
    strip_prefix_ignore_case, EntryName, DIRIV_NAME, DIRIV_TMP_NAME, MOVE_NAME, REKEY_LINKS_NAME,
    REKEY_TMP_NAME,
};

use super::Vault;

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

impl Vault {
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

    /// The name the conflict copy `entry` of `dir` is shown under.
    pub(super) fn shown_name(&self, dir: &Dir, iv: &DirIv, entry: &str) -> Result<Vec<u8>> {
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
