//! The entries of a directory whose IV is known: each name decrypted (its case given back where
//! a case-insensitive sync target changed it) and walked into, the files veilfs keeps for itself
//! sorted out, and the names that do not decrypt reported. Conflict copies and sidecars, whose
//! checks need every other entry first, are gathered for [`super::conflicts`] and
//! [`super::sidecars`].

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use super::iv::OtherIv;
use super::sidecars::SidecarCopy;
use super::{join_plain, not_a_file, Item, Problem, Walk};
use crate::backing::{Dir, FileKind, RenameMode};
use crate::config::CONFIG_NAME;
use crate::crypto::names::DirIv;
use crate::error::Error;
use crate::layout::{EntryName, DIRIV_NAME};
use crate::vault::{is_canonical_reserved, is_canonical_sidecar, BackingEntry, ReservedCopy};

/// A directory whose names can be read.
pub(super) struct Names<'d> {
    pub(super) dir: &'d Arc<Dir>,
    /// Its plaintext path, unknown below an undecodable name.
    pub(super) plain: &'d Option<PathBuf>,
    /// The IV its names are encrypted under.
    pub(super) iv: DirIv,
    /// Other IVs under which some of its names may be encrypted.
    pub(super) others: Vec<OtherIv>,
}

/// Entries of a directory whose checks need all of its other entries first.
#[derive(Default)]
struct Gathered {
    /// Plaintext names of the entries that decrypt: a conflict copy is shown under another.
    taken: HashSet<Vec<u8>>,
    /// Conflict copies: their backing name and the plaintext name of the entry they copy.
    copies: Vec<(String, Vec<u8>)>,
    sidecars: Vec<String>,
    sidecar_copies: Vec<SidecarCopy>,
    /// Long-name entries present, and those conflict copies need, by [`Walk::key`].
    long_entries: HashSet<String>,
}

impl Walk<'_> {
    /// Checks every entry of `here`, walking into its subdirectories.
    pub(super) fn entries<'s>(&'s self, scope: &rayon::Scope<'s>, here: &Names, items: &[Item]) {
        let mut gathered = Gathered {
            long_entries: items
                .iter()
                .filter_map(|item| match EntryName::classify(&item.name) {
                    EntryName::Long(hashed) => Some(self.key(hashed)),
                    _ => None,
                })
                .collect(),
            ..Gathered::default()
        };
        for item in items {
            self.sort_entry(scope, here, item, &mut gathered);
        }
        self.conflict_copies(scope, here, items, &gathered.taken, gathered.copies);
        self.sidecars(
            here.dir,
            gathered.sidecar_copies,
            gathered.sidecars,
            &gathered.long_entries,
        );
    }

    /// Checks `item` by what its name is, or keeps it in `gathered` for later.
    fn sort_entry<'s>(
        &'s self,
        scope: &rayon::Scope<'s>,
        here: &Names,
        item: &Item,
        gathered: &mut Gathered,
    ) {
        match self.vault.classify_entry(here.dir, &here.iv, &item.name) {
            BackingEntry::Name(name) => {
                self.named_entry(scope, here, item, &name);
                gathered.taken.insert(name);
            }
            BackingEntry::ConflictCopy { name, of } => {
                if EntryName::classify(&of) != EntryName::Short(&of) {
                    gathered.long_entries.insert(self.key(&of));
                }
                gathered.copies.push((item.name.clone(), name));
            }
            BackingEntry::Reserved => self.reserved(here.dir, item, &mut gathered.sidecars),
            BackingEntry::ReservedCopy(ReservedCopy::Sidecar { of, valid }) => {
                gathered.sidecar_copies.push(SidecarCopy {
                    name: item.name.clone(),
                    of,
                    valid,
                    kind: item.kind,
                });
            }
            BackingEntry::ReservedCopy(ReservedCopy::DirIv) => {} // checked with the IV
            BackingEntry::ReservedCopy(ReservedCopy::Conf) => self.config_copy(here.dir, item),
            BackingEntry::SyncTool => self.tally.add_ignored(),
            BackingEntry::Undecodable(error) => self.undecodable(scope, here, item, error),
        }
    }

    /// An entry whose name decrypts to `name`: its case given back if a sync target changed it,
    /// then checked.
    fn named_entry<'s>(&'s self, scope: &rayon::Scope<'s>, here: &Names, item: &Item, name: &[u8]) {
        let plain = join_plain(here.plain, name);
        let current = self
            .recased_name(here, item, name, &plain)
            .unwrap_or_else(|| item.name.clone());
        self.entry(scope, here, current, item.kind, plain, name.to_vec());
    }

    /// The canonical backing name of `item` (whose name decrypts to `name`), when a
    /// case-insensitive sync target changed its case and the repair gave it back.
    fn recased_name(
        &self,
        here: &Names,
        item: &Item,
        name: &[u8],
        plain: &Option<PathBuf>,
    ) -> Option<String> {
        if !self.vault.ignores_case() {
            return None;
        }
        let canonical = self.vault.backing_name(&here.iv, name).ok()?;
        if canonical.entry() == item.name {
            return None;
        }
        let fixed = self.repairable(
            Problem::Recased,
            &here.dir.display_path(&item.name),
            plain.clone(),
            format!("canonical name {}", canonical.entry()),
            "rename it to its canonical name",
            || {
                self.vault
                    .normalize_case(here.dir, &here.iv, &item.name, name)
                    .map(|_| ())
            },
        );
        fixed.then(|| canonical.entry().to_owned())
    }

    /// A name veilfs reserves: a sidecar kept in `sidecars` for the sidecar checks, a config or
    /// sidecar that is not a regular file reported, a re-cased config given its name back.
    fn reserved(&self, dir: &Dir, item: &Item, sidecars: &mut Vec<String>) {
        let path = dir.display_path(&item.name);
        if item.kind != FileKind::File
            && is_canonical_reserved(&item.name)
            && !item.name.eq_ignore_ascii_case(DIRIV_NAME)
        {
            // A config or a sidecar that is something else: never opened, never removed (a
            // directory may hold data). A sidecar's entry is reported on its own.
            self.report(Problem::Unreadable, &path, None, not_a_file(item.kind));
        } else if is_canonical_sidecar(&item.name) {
            sidecars.push(item.name.clone());
        } else if self.vault.ignores_case()
            && item.name.eq_ignore_ascii_case(CONFIG_NAME)
            && item.name != CONFIG_NAME
        {
            self.repairable(
                Problem::Recased,
                &path,
                None,
                "the config file was renamed",
                "rename it to veilfs.conf",
                || Ok(dir.rename(&item.name, dir, CONFIG_NAME, RenameMode::NoReplace)?),
            );
        }
    }

    /// An entry whose name does not decrypt under the directory's IV (`error`): one under
    /// another IV found is handled there; any other is reported, and what it holds is still
    /// checked.
    fn undecodable<'s>(
        &'s self,
        scope: &rayon::Scope<'s>,
        here: &Names,
        item: &Item,
        error: Error,
    ) {
        if self.under_other_iv(scope, here, item) {
            return;
        }
        self.report_undecodable(here.dir, item, &error);
        // Its contents still have names of their own.
        if item.kind == FileKind::Dir {
            self.nameless_dir(scope, here.dir, &item.name);
        } else {
            self.leaf(item.kind, here.dir, &item.name, None);
        }
    }

    /// Reports `item`, whose name cannot be decrypted (`error`): a long name whose sidecar is
    /// missing or wrong, or any other undecodable name.
    fn report_undecodable(&self, dir: &Dir, item: &Item, error: &Error) {
        let mut sidecar_kind = None;
        let problem = match (error, EntryName::classify(&item.name)) {
            (Error::Sidecar(sidecar), EntryName::Long(_)) => match dir.stat(sidecar) {
                Ok(stat) => {
                    sidecar_kind = Some(FileKind::of(&stat));
                    Problem::SidecarMismatch
                }
                Err(_) => Problem::SidecarMissing,
            },
            _ => Problem::UndecodableName,
        };
        let detail = match (problem, sidecar_kind) {
            (Problem::UndecodableName, _) => format!("{error}; hidden from the mount"),
            (_, Some(kind)) if kind != FileKind::File => format!(
                "its sidecar is {}, not a regular file, so its name cannot be known (a hash cannot be \
                 inverted); hidden from the mount",
                kind.described()
            ),
            _ => "its name cannot be known (a hash cannot be inverted); hidden from the mount"
                .to_owned(),
        };
        self.report(problem, &dir.display_path(&item.name), None, detail);
    }
}
