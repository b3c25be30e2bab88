//! What sync conflicts leave in a directory: conflict copies of entries (renamed by `--repair`
//! to the names the mount shows them under), names encrypted under a conflicting copy of the IV
//! file (re-encrypted only when that IV is authenticated), and copies of `veilfs.conf`.

use std::collections::{HashMap, HashSet};

use super::{join_plain, not_a_file, Item, Names, Problem, Walk};
use crate::backing::{Dir, FileKind, Size};
use crate::config::{CONFIG_NAME, MAX_CONFIG_BYTES};
use crate::layout::conflict;

impl Walk<'_> {
    /// Conflict `copies` of entries of `here` (backing name, plaintext name of the original):
    /// shown under names veilfs picks, not among those `taken`; --repair makes those their
    /// names. Then checked as entries.
    pub(super) fn conflict_copies<'s>(
        &'s self,
        scope: &rayon::Scope<'s>,
        here: &Names,
        items: &[Item],
        taken: &HashSet<Vec<u8>>,
        copies: Vec<(String, Vec<u8>)>,
    ) {
        let vault = self.vault;
        let kinds: HashMap<&str, FileKind> = items
            .iter()
            .map(|item| (item.name.as_str(), item.kind))
            .collect();
        for (backing, original, shown) in conflict::name_copies(taken, copies) {
            let from = here.dir.display_path(&backing);
            let plain = join_plain(here.plain, &shown);
            let original_plain = join_plain(here.plain, &original).map(|p| p.display().to_string());
            let mut current = backing.clone();
            let detail = format!(
                "a sync tool's copy of {}, shown as {}",
                original_plain.unwrap_or_else(|| String::from_utf8_lossy(&original).into_owned()),
                String::from_utf8_lossy(&shown)
            );
            let renamed = self.repairable(
                Problem::ConflictCopy,
                &from,
                plain.clone(),
                detail,
                "rename it to the name it is shown under",
                || {
                    let (to, _) = vault.rename_entry(
                        here.dir,
                        &here.iv,
                        &backing,
                        &shown,
                        (&here.iv, &original),
                    )?;
                    current = to.entry().to_owned();
                    Ok(())
                },
            );
            let kind = kinds[backing.as_str()];
            // A directory's IVs derive from the name its contents were encrypted for.
            let named = if renamed { shown } else { original };
            self.entry(scope, here, current, kind, plain, named);
        }
    }

    /// Tries `item`, whose name does not decrypt under the IV of `here`, under the other IVs
    /// found for it (a conflicting IV file): re-encrypted under the directory's IV when that IV
    /// is authenticated, reported otherwise. Returns whether one of them decrypts it.
    pub(super) fn under_other_iv<'s>(
        &'s self,
        scope: &rayon::Scope<'s>,
        here: &Names,
        item: &Item,
    ) -> bool {
        let vault = self.vault;
        let entry_path = here.dir.display_path(&item.name);
        for other in &here.others {
            let Ok(Some(name)) = vault.decrypt_entry(here.dir, &other.iv, &item.name) else {
                continue;
            };
            let plain = join_plain(here.plain, &name);
            if !other.trusted {
                self.report(
                    Problem::NameUnderOtherIv,
                    &entry_path,
                    plain,
                    format!(
                        "encrypted under the IV of {}, which is not this directory's: it was not \
                         encrypted for this directory (planted, or moved here by someone without \
                         the key), so it is never re-encrypted; hidden from the mount. If it is \
                         yours, copy it from a device that still shows it; otherwise remove this \
                         backing entry",
                        other.source
                    ),
                );
                return true;
            }
            let mut current = item.name.clone();
            self.repairable(
                Problem::NameUnderOtherIv,
                &entry_path,
                plain.clone(),
                format!("encrypted under the IV of {}", other.source),
                "re-encrypt its name under the directory's IV",
                || {
                    let (to, _) = vault.rename_entry(
                        here.dir,
                        &here.iv,
                        &item.name,
                        &name,
                        (&other.iv, &name),
                    )?;
                    current = to.entry().to_owned();
                    Ok(())
                },
            );
            self.entry(scope, here, current, item.kind, plain, name);
            return true;
        }
        false
    }

    /// A sync tool's copy of `veilfs.conf`: removed when it is the same file.
    pub(super) fn config_copy(&self, dir: &Dir, item: &Item) {
        let path = dir.display_path(&item.name);
        if item.kind != FileKind::File {
            self.report(Problem::ConfigCopy, &path, None, not_a_file(item.kind));
            return;
        }
        let copy = dir.read_small(&item.name, Size::AtMost(MAX_CONFIG_BYTES));
        let config = self
            .vault
            .root()
            .read_small(CONFIG_NAME, Size::AtMost(MAX_CONFIG_BYTES));
        match (copy, config) {
            (Ok(a), Ok(b)) if a == b => {
                self.repairable(
                    Problem::ConfigCopy,
                    &path,
                    None,
                    "identical to veilfs.conf",
                    "remove it",
                    || Ok(dir.unlink(&item.name)?),
                );
            }
            (Ok(_), Ok(_)) => self.report(
                Problem::ConfigCopy,
                &path,
                None,
                "differs from veilfs.conf (a password changed on two devices?); keep the one whose password you know",
            ),
            (Err(e), _) => self.report(
                Problem::ConfigCopy,
                &path,
                None,
                format!("cannot be read: {e}"),
            ),
            (_, Err(e)) => self.report(
                Problem::ConfigCopy,
                &path,
                None,
                format!("cannot be compared with veilfs.conf: {e}"),
            ),
        }
    }
}
