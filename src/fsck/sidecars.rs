//! Long-name sidecars in a directory once its entries are known: sync tools' copies of a
//! sidecar (restoring a missing or wrong one when they hold the right name, removed when
//! redundant) and orphans, removed only once a grace period has passed.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use super::{not_a_file, Problem, Walk};
use crate::backing::{Dir, FileKind, RenameMode};
use crate::layout::longname::{self, sidecar_name, SIDECAR_SUFFIX};

/// A sync tool's copy of a sidecar.
pub(super) struct SidecarCopy {
    /// Its backing name.
    pub(super) name: String,
    /// The long-name entry whose sidecar it is a copy of.
    pub(super) of: String,
    /// It holds that entry's encoded name.
    pub(super) valid: bool,
    pub(super) kind: FileKind,
}

impl Walk<'_> {
    /// Checks the sidecars of `dir` and sync tools' copies of them, given its long-name entries
    /// (and those its conflict copies need), by [`Walk::key`]. Copies go first: they may restore
    /// a sidecar.
    pub(super) fn sidecars(
        &self,
        dir: &Dir,
        copies: Vec<SidecarCopy>,
        sidecars: Vec<String>,
        long_entries: &HashSet<String>,
    ) {
        let mut restored: HashSet<String> = HashSet::new();
        for copy in copies {
            self.sidecar_copy(dir, copy, long_entries, &mut restored);
        }
        for name in sidecars {
            let entry = &name[..name.len() - SIDECAR_SUFFIX.len()];
            if !long_entries.contains(&self.key(entry)) {
                self.orphan(dir, &name, Problem::SidecarOrphan);
            }
        }
    }

    /// A copy of a sidecar: removed when the sidecar is good or was restored from another copy
    /// (`restored`, by entry), renamed over a missing or wrong sidecar of an entry there is,
    /// else an orphan.
    fn sidecar_copy(
        &self,
        dir: &Dir,
        copy: SidecarCopy,
        long_entries: &HashSet<String>,
        restored: &mut HashSet<String>,
    ) {
        let SidecarCopy {
            name,
            of,
            valid,
            kind,
        } = copy;
        let copy_path = dir.display_path(&name);
        let canonical = sidecar_name(&of);
        if !valid {
            let detail = if kind == FileKind::File {
                format!("does not hold the name of {of}")
            } else {
                not_a_file(kind)
            };
            self.report(Problem::SidecarCopy, &copy_path, None, detail);
            return;
        }
        let ignore_case = self.vault.ignores_case();
        let canonical_good = longname::read_sidecar_file(dir, &canonical, &of, ignore_case).is_ok();
        if canonical_good || restored.contains(&self.key(&of)) {
            self.repairable(
                Problem::SidecarCopy,
                &copy_path,
                None,
                "duplicates the sidecar",
                "remove it",
                || Ok(dir.unlink(&name)?),
            );
        } else if long_entries.contains(&self.key(&of)) {
            let what = match dir.stat(&canonical).map(|stat| FileKind::of(&stat)) {
                Ok(FileKind::File) => "the sidecar is wrong".to_owned(),
                Ok(kind) => format!("the sidecar is {}", kind.described()),
                Err(_) => "the sidecar is missing".to_owned(),
            };
            let done = self.repairable(
                Problem::SidecarCopy,
                &copy_path,
                None,
                format!("{what}; this copy holds the right name"),
                "rename it over the sidecar",
                || Ok(dir.rename(&name, dir, &canonical, RenameMode::Replace)?),
            );
            if done {
                restored.insert(self.key(&of));
            }
        } else {
            self.orphan(dir, &name, Problem::SidecarCopy);
        }
    }

    /// An unused sidecar (or copy of one) `name` of `dir`: removed once older than the grace.
    fn orphan(&self, dir: &Dir, name: &str, problem: Problem) {
        let path = dir.display_path(name);
        let age = dir
            .stat(name)
            .ok()
            .and_then(|stat| {
                SystemTime::UNIX_EPOCH.checked_add(Duration::new(stat.st_ctime.max(0) as u64, 0))
            })
            .and_then(|ctime| SystemTime::now().duration_since(ctime).ok())
            .unwrap_or_default();
        if age >= self.options.orphan_grace {
            self.repairable(
                problem,
                &path,
                None,
                "no entry uses it",
                "remove it",
                || Ok(dir.unlink(name)?),
            );
        } else {
            let detail = format!(
                "no entry uses it, but it arrived {} min ago: its entry may still be syncing, so it is left alone",
                age.as_secs() / 60
            );
            self.report(problem, &path, None, detail);
        }
    }
}
