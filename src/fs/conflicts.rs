//! Sync-conflict copies and re-cased names. The core recognises them (`Vault::conflict_copies`,
//! `Vault::find_recased`); the adapter only lists them, and finds them again on lookup.

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use fuser::FileAttr;

use crate::backing::{Dir, Entry};
use crate::crypto::names::DirIv;
use crate::error::{Error, Result};
use crate::layout::longname::BackingName;
use crate::vault::BackingEntry;

use super::attr;
use super::listing::{entry_kind, ListedEntry};
use super::{sys, VeilFs};

/// Names of one directory the kernel may look up that are not the canonical encryption of the
/// name: conflict copies shown under `stem (conflict N).ext` when they could not be renamed, and
/// entries whose backing names a case-insensitive sync target re-cased.
#[derive(Debug, Default)]
pub(super) struct DirAliases {
    /// Shown plaintext name -> backing entry name.
    pub(super) names: HashMap<OsString, String>,
    /// The directory was searched for re-cased names since it was last listed.
    pub(super) recased_searched: bool,
}

impl VeilFs {
    /// Whether the adapter may rename backing entries on its own: a conflict copy to the proper
    /// encryption of the name it is shown under, a re-cased name to its canonical case, so that
    /// the vault is clean afterwards (and, names being deterministic, two devices doing this
    /// rename produce the same result), and a directory rename a crash interrupted is finished
    /// when its directory is first used. Only for a read-write mount; off by default.
    pub fn tidy_backing(mut self, tidy: bool) -> Self {
        self.tidy = tidy;
        self
    }

    /// Called by `do_opendir` with the entries whose names did not decrypt: lists those that are
    /// conflict copies (renamed to their clean names when tidying, else remembered as aliases),
    /// and logs the others once.
    pub(super) fn list_conflict_copies(
        &self,
        ino: u64,
        dir: &Dir,
        iv: &DirIv,
        undecoded: Vec<(Entry, Error)>,
        entries: &mut Vec<ListedEntry>,
    ) {
        let mut aliases = DirAliases::default();
        if !undecoded.is_empty() {
            let taken: HashSet<Vec<u8>> = entries[2..]
                .iter()
                .map(|e| e.name.as_bytes().to_vec())
                .collect();
            let names = undecoded
                .iter()
                .filter_map(|(e, _)| e.name.to_str().map(str::to_owned))
                .collect::<Vec<_>>();
            let copies =
                self.vault
                    .conflict_copies(dir, iv, &taken, names.iter().map(String::as_str));
            for (entry, error) in &undecoded {
                let path = dir.display_path(&entry.name);
                let Some(copy) = copies
                    .iter()
                    .find(|c| entry.name.to_str() == Some(c.backing.as_str()))
                else {
                    self.warn_once(path, error);
                    continue;
                };
                let fuse_ino = self.inodes.lock().unwrap().fuse_ino(entry.ino);
                let mut backing = OsString::from(&copy.backing);
                let renamed = self.tidy && {
                    let was = (iv, copy.original.as_slice());
                    match self
                        .vault
                        .rename_entry(dir, iv, &copy.backing, &copy.shown, was)
                    {
                        Ok((to, changes)) => {
                            backing = to.entry().into();
                            let mut table = self.inodes.lock().unwrap();
                            table.apply_move(&changes);
                            table.moved(
                                fuse_ino,
                                (ino, OsStr::new(&copy.backing)),
                                (ino, to.entry().into()),
                            );
                            tracing::info!(
                                "renamed conflict copy {} to {}",
                                path.display(),
                                to.entry()
                            );
                            true
                        }
                        Err(e) => {
                            tracing::warn!("cannot rename conflict copy {}: {e}", path.display());
                            false
                        }
                    }
                };
                let shown = OsString::from(sys::os_str(&copy.shown));
                if !renamed {
                    aliases.names.insert(shown.clone(), copy.backing.clone());
                }
                let Ok(kind) = entry_kind(dir, entry) else {
                    continue; // gone since it was listed
                };
                let kind = attr::file_type(kind);
                entries.push(ListedEntry {
                    ino: fuse_ino,
                    kind,
                    name: shown,
                    backing,
                });
            }
        }
        let mut all = self.aliases.lock().unwrap();
        if aliases.names.is_empty() {
            all.remove(&ino); // the usual case: keep the map small
        } else {
            all.insert(ino, aliases);
        }
    }

    /// `do_lookup` of a name whose canonical backing entry does not exist: a conflict copy shown
    /// under that name, or (base32 vaults) the entry under a re-cased name. `None`: not found.
    pub(super) fn lookup_alias(
        &self,
        parent: u64,
        dir: &Dir,
        iv: &DirIv,
        name: &OsStr,
    ) -> Option<Result<FileAttr>> {
        let (known, searched) = {
            let aliases = self.aliases.lock().unwrap();
            let dir_aliases = aliases.get(&parent);
            (
                dir_aliases.and_then(|a| a.names.get(name)).cloned(),
                dir_aliases.is_some_and(|a| a.recased_searched),
            )
        };
        let entry = match known {
            Some(entry) => entry,
            // A conflict copy's name looked up before any listing of its directory showed it.
            None if crate::layout::conflict::is_conflict_name(name.as_bytes()) => {
                let copies = match self.vault.scan_conflict_copies(dir, iv) {
                    Ok(copies) => copies,
                    Err(e) => return Some(Err(e)),
                };
                let mut aliases = self.aliases.lock().unwrap();
                let dir_aliases = aliases.entry(parent).or_default();
                for copy in copies {
                    dir_aliases
                        .names
                        .insert(OsString::from(sys::os_str(&copy.shown)), copy.backing);
                }
                dir_aliases.names.get(name)?.clone()
            }
            None if self.vault.ignores_case() && !searched => {
                // Searched once per listing of the directory: creating many files in a directory
                // must not read it whole for every new name.
                let found = match self.vault.recased_entries(dir, iv) {
                    Ok(found) => found,
                    Err(e) => return Some(Err(e)),
                };
                let mut aliases = self.aliases.lock().unwrap();
                let dir_aliases = aliases.entry(parent).or_default();
                dir_aliases.recased_searched = true;
                for (plain, entry) in found {
                    dir_aliases
                        .names
                        .insert(OsString::from(sys::os_str(&plain)), entry);
                }
                dir_aliases.names.get(name)?.clone()
            }
            None => return None,
        };
        if self.tidy {
            let renamed = match self.vault.classify_entry(dir, iv, &entry) {
                BackingEntry::Name(plain) => self.vault.normalize_case(dir, iv, &entry, &plain),
                BackingEntry::ConflictCopy { name: original, .. } => self
                    .vault
                    .rename_entry(dir, iv, &entry, name.as_bytes(), (iv, &original))
                    .map(|(to, changes)| {
                        self.inodes.lock().unwrap().apply_move(&changes);
                        to
                    }),
                _ => Err(Error::NameAuth),
            };
            match renamed {
                Ok(to) => {
                    if let Some(a) = self.aliases.lock().unwrap().get_mut(&parent) {
                        a.names.remove(name);
                    }
                    return Some(self.looked_up(parent, dir, &to));
                }
                Err(e) => {
                    tracing::warn!("cannot rename {}: {e}", dir.display_path(&entry).display())
                }
            }
        }
        Some(self.looked_up(parent, dir, &BackingName::Short(entry)))
    }
}
