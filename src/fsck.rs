//! Checking a whole vault, and the repairs that cannot lose data (`veilfs fsck`).
//!
//! [`check`] walks the backing directory with the key, directories in parallel, and looks at
//! every name, directory IV, long-name entry and sidecar, file header and symlink target. What
//! it finds is a [`Finding`]; with [`Options::repair`] it also does the safe fixes:
//!
//! - a missing or corrupt `veilfs.diriv` is written again when the IV is known for sure: the IV
//!   re-derived from the parent's IV and the directory's name (or taken from a sync tool's copy
//!   of the file) is used only if at least one name in the directory decrypts with it — a
//!   directory renamed since its creation has an IV that cannot be re-derived — or if the
//!   directory is empty, where writing the derived IV is exactly what re-creating it would do;
//! - conflict copies are renamed to the proper encryption of the name veilfs shows them under,
//!   and names a case-insensitive sync target re-cased get their canonical case back;
//! - names encrypted under a conflicting copy of `veilfs.diriv` are re-encrypted under the
//!   directory's IV (the entries themselves are only renamed);
//! - a sync tool's copy of a sidecar replaces a missing or wrong sidecar when its contents hash
//!   to the entry's name (the only way the right contents can be known: the hash cannot be
//!   inverted), and is removed when it duplicates a good one;
//! - an orphaned sidecar (no entry, and no conflict copy that needs it) is removed once it has
//!   been on this disk longer than [`Options::orphan_grace`]: a sync tool may deliver a sidecar
//!   long before its entry (a large file still in transit), and removing it then would
//!   propagate to every device and leave the entry unreadable everywhere.
//!
//! Nothing else is touched: undecodable names, truncated headers and bad symlinks are reported.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use crate::config::CONFIG_NAME;
use crate::crypto::content::HEADER_LEN;
use crate::crypto::names::{DirIv, DIR_IV_LEN};
use crate::error::Error;
use crate::layout::conflict;
use crate::layout::longname::{sidecar_name, SIDECAR_SUFFIX};
use crate::layout::{EntryName, DIRIV_NAME};
use crate::vault::{BackingEntry, ReservedCopy, Vault};

/// Names tried when checking that a directory IV fits its directory.
const VERIFY_NAMES: usize = 8;

/// How [`check`] runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// Do the safe repairs.
    pub repair: bool,
    /// An orphaned sidecar is removed only once it has been on this disk (its ctime) this long.
    pub orphan_grace: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            repair: false,
            orphan_grace: Duration::from_secs(24 * 3600),
        }
    }
}

/// What is wrong with one backing entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Problem {
    /// A name that neither decrypts nor is a copy of one that does.
    UndecodableName,
    /// A directory without `veilfs.diriv`.
    DirIvMissing,
    /// A `veilfs.diriv` of the wrong size, or one under which no name in the directory decrypts.
    DirIvCorrupt,
    /// A sync tool's copy of `veilfs.diriv`.
    DirIvCopy,
    /// A name encrypted under another IV than its directory's (from a conflicting IV file).
    NameUnderOtherIv,
    /// A long-name entry whose sidecar is missing.
    SidecarMissing,
    /// A long-name entry whose sidecar does not hold its name.
    SidecarMismatch,
    /// A sidecar whose entry does not exist.
    SidecarOrphan,
    /// A sync tool's copy of a sidecar.
    SidecarCopy,
    /// A backing file of 1 to 17 bytes: a cut-off header.
    HeaderTruncated,
    /// A file header of a version this veilfs does not know.
    HeaderVersion,
    /// A symlink whose target does not decrypt.
    SymlinkTarget,
    /// A sync tool's conflict copy of an entry.
    ConflictCopy,
    /// A name whose case a case-insensitive sync target changed.
    Recased,
    /// A sync tool's copy of `veilfs.conf`.
    ConfigCopy,
    /// Something that could not be read at all.
    Unreadable,
}

impl Problem {
    pub fn describe(self) -> &'static str {
        match self {
            Problem::UndecodableName => "undecodable name",
            Problem::DirIvMissing => "directory IV missing",
            Problem::DirIvCorrupt => "directory IV corrupt",
            Problem::DirIvCopy => "copy of a directory IV",
            Problem::NameUnderOtherIv => "name encrypted under another directory IV",
            Problem::SidecarMissing => "long-name sidecar missing",
            Problem::SidecarMismatch => "long-name sidecar does not match",
            Problem::SidecarOrphan => "orphaned long-name sidecar",
            Problem::SidecarCopy => "copy of a long-name sidecar",
            Problem::HeaderTruncated => "truncated file header",
            Problem::HeaderVersion => "unknown file header version",
            Problem::SymlinkTarget => "undecodable symlink target",
            Problem::ConflictCopy => "conflict copy",
            Problem::Recased => "name changed case",
            Problem::ConfigCopy => "copy of veilfs.conf",
            Problem::Unreadable => "unreadable",
        }
    }
}

/// What happened about a finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// No safe repair exists.
    Unrepairable,
    /// `--repair` would do this.
    Repairable,
    /// Done.
    Repaired,
    /// Tried and failed (the detail says why).
    RepairFailed,
}

/// One thing [`check`] found.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    pub problem: Problem,
    /// Backing path, relative to the vault root.
    pub backing: PathBuf,
    /// Plaintext path, relative to the vault root, when known.
    pub plain: Option<PathBuf>,
    /// Details for a person.
    pub detail: String,
    /// The safe repair, when there is one.
    pub repair: Option<String>,
    pub outcome: Outcome,
}

/// How many entries of each kind were checked.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Counts {
    pub dirs: u64,
    pub files: u64,
    pub symlinks: u64,
    pub other: u64,
    /// Sync tools' own files (`.stfolder`, ...), left alone.
    pub ignored: u64,
}

/// The result of [`check`].
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub checked: Counts,
    /// Sorted by backing path.
    pub findings: Vec<Finding>,
    pub seconds: f64,
}

impl Report {
    /// Nothing is wrong (any more): every finding, if any, was repaired.
    pub fn is_clean(&self) -> bool {
        self.findings.iter().all(|f| f.outcome == Outcome::Repaired)
    }

    pub fn repaired(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.outcome == Outcome::Repaired)
            .count()
    }
}

/// Checks the whole vault; `progress` is called with the number of entries of each directory
/// done.
pub fn check(vault: &Vault, options: &Options, progress: &(dyn Fn(u64) + Sync)) -> Report {
    let start = Instant::now();
    let walk = Walk {
        vault,
        options,
        progress,
        findings: Mutex::default(),
        dirs: AtomicU64::new(0),
        files: AtomicU64::new(0),
        symlinks: AtomicU64::new(0),
        other: AtomicU64::new(0),
        ignored: AtomicU64::new(0),
    };
    let root = DirTask {
        path: vault.root().to_path_buf(),
        plain: Some(PathBuf::new()),
        parent_iv: None,
    };
    rayon::scope(|scope| walk.dir(scope, root));
    let mut findings = walk.findings.into_inner().unwrap();
    findings.sort_by(|a, b| a.backing.cmp(&b.backing).then(a.detail.cmp(&b.detail)));
    Report {
        checked: Counts {
            dirs: walk.dirs.into_inner(),
            files: walk.files.into_inner(),
            symlinks: walk.symlinks.into_inner(),
            other: walk.other.into_inner(),
            ignored: walk.ignored.into_inner(),
        },
        findings,
        seconds: start.elapsed().as_secs_f64(),
    }
}

/// Counts the entries of the backing directory (for a progress bar's length), without the key.
pub fn count_entries(root: &Path) -> u64 {
    fn count(dir: &Path) -> u64 {
        let Ok(entries) = fs::read_dir(dir) else {
            return 0;
        };
        let mut n = 0;
        let mut subdirs = Vec::new();
        for entry in entries.flatten() {
            n += 1;
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                subdirs.push(entry.path());
            }
        }
        use rayon::prelude::*;
        n + subdirs.par_iter().map(|d| count(d)).sum::<u64>()
    }
    count(root)
}

struct DirTask {
    path: PathBuf,
    /// Its plaintext path, unknown below an undecodable name.
    plain: Option<PathBuf>,
    /// The parent's IV and the directory's plaintext name, to re-derive a lost IV; `None` for
    /// the root (whose IV comes from the key) and below undecodable names.
    parent_iv: Option<(DirIv, Vec<u8>)>,
}

struct Walk<'a> {
    vault: &'a Vault,
    options: &'a Options,
    progress: &'a (dyn Fn(u64) + Sync),
    findings: Mutex<Vec<Finding>>,
    dirs: AtomicU64,
    files: AtomicU64,
    symlinks: AtomicU64,
    other: AtomicU64,
    ignored: AtomicU64,
}

/// One directory entry, as read.
struct Item {
    name: String,
    kind: fs::FileType,
}

fn join_plain(parent: &Option<PathBuf>, name: &[u8]) -> Option<PathBuf> {
    parent.as_ref().map(|p| p.join(OsStr::from_bytes(name)))
}

impl<'a> Walk<'a> {
    fn relative(&self, path: &Path) -> PathBuf {
        path.strip_prefix(self.vault.root())
            .unwrap_or(path)
            .to_path_buf()
    }

    fn report(
        &self,
        problem: Problem,
        path: &Path,
        plain: Option<PathBuf>,
        detail: impl Into<String>,
    ) {
        self.push(problem, path, plain, detail, None, Outcome::Unrepairable);
    }

    /// Reports a problem with a safe repair, doing it when repairing.
    fn repairable(
        &self,
        problem: Problem,
        path: &Path,
        plain: Option<PathBuf>,
        detail: impl Into<String>,
        repair: impl Into<String>,
        fix: impl FnOnce() -> crate::Result<()>,
    ) -> bool {
        let mut detail = detail.into();
        let outcome = if !self.options.repair {
            Outcome::Repairable
        } else {
            match fix() {
                Ok(()) => Outcome::Repaired,
                Err(e) => {
                    detail = format!("{detail}; repair failed: {e}");
                    Outcome::RepairFailed
                }
            }
        };
        let done = outcome == Outcome::Repaired;
        self.push(problem, path, plain, detail, Some(repair.into()), outcome);
        done
    }

    fn push(
        &self,
        problem: Problem,
        path: &Path,
        plain: Option<PathBuf>,
        detail: impl Into<String>,
        repair: Option<String>,
        outcome: Outcome,
    ) {
        let finding = Finding {
            problem,
            backing: self.relative(path),
            plain,
            detail: detail.into(),
            repair,
            outcome,
        };
        self.findings.lock().unwrap().push(finding);
    }

    fn dir<'s>(&'s self, scope: &rayon::Scope<'s>, task: DirTask) {
        self.dirs.fetch_add(1, Ordering::Relaxed);
        let path = &task.path;
        let mut items = Vec::new();
        match fs::read_dir(path) {
            Ok(entries) => {
                for entry in entries {
                    let entry = match entry {
                        Ok(entry) => entry,
                        Err(e) => {
                            self.report(
                                Problem::Unreadable,
                                path,
                                task.plain.clone(),
                                format!("reading it: {e}"),
                            );
                            break;
                        }
                    };
                    let kind = match entry.file_type() {
                        Ok(kind) => kind,
                        Err(e) => {
                            self.report(Problem::Unreadable, &entry.path(), None, e.to_string());
                            continue;
                        }
                    };
                    match entry.file_name().into_string() {
                        Ok(name) => items.push(Item { name, kind }),
                        Err(name) => {
                            self.report(
                                Problem::UndecodableName,
                                &path.join(name),
                                None,
                                "not UTF-8",
                            );
                        }
                    }
                }
            }
            Err(e) => {
                self.report(
                    Problem::Unreadable,
                    path,
                    task.plain.clone(),
                    format!("reading it: {e}"),
                );
                return;
            }
        }
        items.sort_by(|a, b| a.name.cmp(&b.name));
        let count = items.len() as u64;

        let is_root = path == self.vault.root();
        let iv = self.dir_iv(path, &task, is_root, &items);
        match iv {
            Some((iv, other_ivs)) => self.entries(scope, &task, &iv, &other_ivs, &items),
            None => {
                // Names cannot be read; subdirectories still have IVs of their own.
                for item in items.iter().filter(|i| i.kind.is_dir()) {
                    let child = DirTask {
                        path: path.join(&item.name),
                        plain: None,
                        parent_iv: None,
                    };
                    scope.spawn(move |scope| self.dir(scope, child));
                }
            }
        }
        (self.progress)(count);
    }

    /// The IV to read this directory's names with, and other IVs found in copies of its IV
    /// file; `None` when it cannot be known. Reports and repairs the IV file.
    fn dir_iv(
        &self,
        path: &Path,
        task: &DirTask,
        is_root: bool,
        items: &[Item],
    ) -> Option<(DirIv, Vec<DirIv>)> {
        let vault = self.vault;
        let derived = if is_root {
            Some(vault.root_iv())
        } else {
            task.parent_iv
                .as_ref()
                .map(|(parent, name)| vault.new_dir_iv(parent, name))
        };
        // Sync tools' copies of the IV file.
        let mut copies = Vec::new();
        for item in items {
            if item.kind.is_file()
                && !item.name.eq_ignore_ascii_case(DIRIV_NAME)
                && conflict::candidates(&item.name, vault.names().encoding())
                    .contains(&conflict::Candidate::DirIv)
            {
                copies.push((item.name.clone(), read_iv_file(&path.join(&item.name))));
            }
        }
        // A few names to try IVs on: an IV fits when one of them decrypts with it (or is a
        // conflict copy of one that does).
        let samples: Vec<&str> = items
            .iter()
            .map(|item| item.name.as_str())
            .filter(|name| {
                !crate::vault::is_canonical_reserved(name) && !conflict::is_sync_tool_file(name)
            })
            .filter(|name| !copies.iter().any(|(copy, _)| copy == name))
            .take(VERIFY_NAMES * 4)
            .collect();
        let fits = |iv: &DirIv| {
            samples.iter().any(|name| {
                matches!(
                    vault.classify_entry(path, iv, name),
                    BackingEntry::Name(_) | BackingEntry::ConflictCopy { .. }
                )
            })
        };
        let has_names = !samples.is_empty();

        let stored_file = items
            .iter()
            .find(|i| i.name.eq_ignore_ascii_case(DIRIV_NAME));
        let stored = stored_file.map(|f| read_iv_file(&path.join(&f.name)));
        let copy_ivs: Vec<(String, DirIv)> = copies
            .iter()
            .filter_map(|(name, iv)| iv.map(|iv| (name.clone(), iv)))
            .collect();

        // A stored IV of the right size is kept unless another one fits where it does not.
        let better = |stored: &DirIv| {
            derived.is_some_and(|d| d != *stored && fits(&d))
                || copy_ivs.iter().any(|(_, c)| c != stored && fits(c))
        };
        let from_stored =
            matches!(stored, Some(Some(iv)) if !has_names || fits(&iv) || !better(&iv));
        let chosen = match stored {
            Some(Some(iv)) if from_stored => Some(iv),
            _ => {
                let problem = match stored {
                    None => Problem::DirIvMissing,
                    Some(None) => Problem::DirIvCorrupt,
                    Some(Some(_)) => Problem::DirIvCorrupt,
                };
                let what = match stored {
                    None => "no veilfs.diriv".to_owned(),
                    Some(None) => "veilfs.diriv is not 16 bytes".to_owned(),
                    Some(Some(_)) => {
                        "no name in the directory decrypts with its veilfs.diriv".to_owned()
                    }
                };
                let mut found = None;
                if let Some(iv) = derived.filter(|iv| fits(iv)) {
                    found = Some((
                        iv,
                        "the IV re-derived from the parent's IV and the directory's name"
                            .to_owned(),
                    ));
                }
                if found.is_none() {
                    if let Some((name, iv)) = copy_ivs.iter().find(|(_, iv)| fits(iv)) {
                        found = Some((*iv, format!("the IV in the sync tool's copy {name}")));
                    }
                }
                if found.is_none() && !has_names {
                    if let Some(iv) = derived {
                        found = Some((iv, "the re-derived IV (the directory is empty: the same as re-creating it)".to_owned()));
                    }
                }
                match found {
                    Some((iv, source)) => {
                        let detail = format!("{what}; names decrypt with {source}");
                        let file = stored_file.map(|f| path.join(&f.name));
                        self.repairable(
                            problem,
                            path,
                            task.plain.clone(),
                            detail,
                            "write veilfs.diriv",
                            || write_iv_file(path, file.as_deref(), &iv),
                        );
                        Some(iv)
                    }
                    None => {
                        let why = if derived.is_none() {
                            "the parent's IV or the directory's name is unknown"
                        } else {
                            "no name in the directory decrypts with the re-derived IV (the directory was probably renamed) \
                             nor with any copy"
                        };
                        self.report(
                            problem,
                            path,
                            task.plain.clone(),
                            format!("{what}; {why}: its names cannot be read"),
                        );
                        None
                    }
                }
            }
        }?;
        // Recased IV file (a case-insensitive sync target, back on a case-sensitive disk).
        if let Some(file) = stored_file.filter(|f| from_stored && f.name != DIRIV_NAME) {
            let from = path.join(&file.name);
            self.repairable(
                Problem::Recased,
                &from,
                task.plain.clone(),
                "the directory IV file was renamed",
                "rename it to veilfs.diriv",
                || {
                    Ok(crate::vault::rename_no_replace(
                        &from,
                        &path.join(DIRIV_NAME),
                    )?)
                },
            );
        }
        // Copies: redundant ones go; a different IV is kept while names use it.
        let other_ivs: Vec<DirIv> = copy_ivs
            .iter()
            .map(|(_, iv)| *iv)
            .filter(|iv| *iv != chosen)
            .collect();
        for (name, iv) in &copies {
            let copy = path.join(name);
            match iv {
                Some(iv) if *iv == chosen => {
                    self.repairable(Problem::DirIvCopy, &copy, task.plain.clone(), "same IV as veilfs.diriv", "remove it", || {
                        Ok(fs::remove_file(&copy)?)
                    });
                }
                Some(_) => self.report(
                    Problem::DirIvCopy,
                    &copy,
                    task.plain.clone(),
                    "holds a different IV; names encrypted under it are reported (and re-encrypted by --repair) \
                     separately; remove this file once none are left",
                ),
                None => self.report(Problem::DirIvCopy, &copy, task.plain.clone(), "not 16 bytes"),
            }
        }
        Some((chosen, other_ivs))
    }

    fn entries<'s>(
        &'s self,
        scope: &rayon::Scope<'s>,
        task: &DirTask,
        iv: &DirIv,
        other_ivs: &[DirIv],
        items: &[Item],
    ) {
        let vault = self.vault;
        let path = &task.path;
        let ignore_case = vault.ignores_case();
        let key = |name: &str| {
            if ignore_case {
                name.to_ascii_lowercase()
            } else {
                name.to_owned()
            }
        };
        let mut taken: HashSet<Vec<u8>> = HashSet::new();
        let mut copies = Vec::new();
        let mut sidecars = Vec::new();
        let mut sidecar_copies = Vec::new();
        // Long-name entries present, and those conflict copies need (by entry name).
        let mut long_entries: HashSet<String> = HashSet::new();
        let mut kinds: HashMap<&str, fs::FileType> = HashMap::new();
        for item in items {
            kinds.insert(&item.name, item.kind);
            if let EntryName::Long(hashed) = EntryName::classify(&item.name) {
                long_entries.insert(key(hashed));
            }
        }
        for item in items {
            let entry_path = path.join(&item.name);
            match vault.classify_entry(path, iv, &item.name) {
                BackingEntry::Name(name) => {
                    let plain = join_plain(&task.plain, &name);
                    let mut current = item.name.clone();
                    if ignore_case {
                        if let Ok(canonical) = vault.backing_name(iv, &name) {
                            if canonical.entry() != item.name {
                                let fixed = self.repairable(
                                    Problem::Recased,
                                    &entry_path,
                                    plain.clone(),
                                    format!("canonical name {}", canonical.entry()),
                                    "rename it to its canonical name",
                                    || {
                                        vault
                                            .normalize_case(path, iv, &item.name, &name)
                                            .map(|_| ())
                                    },
                                );
                                if fixed {
                                    current = canonical.entry().to_owned();
                                }
                            }
                        }
                    }
                    self.entry(
                        scope,
                        path.join(&current),
                        item.kind,
                        plain,
                        Some((*iv, name.clone())),
                    );
                    taken.insert(name);
                }
                BackingEntry::ConflictCopy { name, of } => {
                    if EntryName::classify(&of) != EntryName::Short(&of) {
                        long_entries.insert(key(&of));
                    }
                    copies.push((item.name.clone(), name));
                }
                BackingEntry::Reserved => {
                    if crate::vault::is_canonical_sidecar(&item.name) {
                        sidecars.push(item.name.clone());
                    } else if ignore_case
                        && item.name.eq_ignore_ascii_case(CONFIG_NAME)
                        && item.name != CONFIG_NAME
                    {
                        self.repairable(
                            Problem::Recased,
                            &entry_path,
                            None,
                            "the config file was renamed",
                            "rename it to veilfs.conf",
                            || {
                                Ok(crate::vault::rename_no_replace(
                                    &entry_path,
                                    &path.join(CONFIG_NAME),
                                )?)
                            },
                        );
                    }
                }
                BackingEntry::ReservedCopy(ReservedCopy::Sidecar { of, valid }) => {
                    sidecar_copies.push((item.name.clone(), of, valid));
                }
                BackingEntry::ReservedCopy(ReservedCopy::DirIv) => {} // handled with the IV
                BackingEntry::ReservedCopy(ReservedCopy::Conf) => self.config_copy(&entry_path),
                BackingEntry::SyncTool => {
                    self.ignored.fetch_add(1, Ordering::Relaxed);
                }
                BackingEntry::Undecodable(error) => {
                    self.undecodable(scope, task, iv, other_ivs, item, error);
                }
            }
        }

        // Conflict copies: shown under names veilfs picks; --repair makes those their names.
        for copy in conflict::name_copies(&taken, copies) {
            let (backing, original, shown) = copy;
            let from = path.join(&backing);
            let plain = join_plain(&task.plain, &shown);
            let original_plain =
                join_plain(&task.plain, &original).map(|p| p.display().to_string());
            let mut current = from.clone();
            let detail = format!(
                "a sync tool's copy of {}, shown as {}",
                original_plain.unwrap_or_else(|| String::from_utf8_lossy(&original).into_owned()),
                String::from_utf8_lossy(&shown)
            );
            self.repairable(
                Problem::ConflictCopy,
                &from,
                plain.clone(),
                detail,
                "rename it to the name it is shown under",
                || {
                    let to = vault.rename_entry(path, iv, &backing, &shown)?;
                    current = path.join(to.entry());
                    Ok(())
                },
            );
            let kind = kinds[backing.as_str()];
            self.entry(scope, current, kind, plain, Some((*iv, shown)));
        }

        // Sidecars: copies first (they may restore a sidecar), then orphans.
        let mut restored: HashSet<String> = HashSet::new();
        for (name, of, valid) in sidecar_copies {
            let copy_path = path.join(&name);
            let canonical = path.join(sidecar_name(&of));
            if !valid {
                self.report(
                    Problem::SidecarCopy,
                    &copy_path,
                    None,
                    format!("does not hold the name of {of}"),
                );
                continue;
            }
            let canonical_good =
                crate::layout::longname::read_sidecar_file(&canonical, &of, ignore_case).is_ok();
            if canonical_good || restored.contains(&key(&of)) {
                self.repairable(
                    Problem::SidecarCopy,
                    &copy_path,
                    None,
                    "duplicates the sidecar",
                    "remove it",
                    || Ok(fs::remove_file(&copy_path)?),
                );
            } else if long_entries.contains(&key(&of)) {
                let what = if canonical.exists() {
                    "the sidecar is wrong"
                } else {
                    "the sidecar is missing"
                };
                let done = self.repairable(
                    Problem::SidecarCopy,
                    &copy_path,
                    None,
                    format!("{what}; this copy holds the right name"),
                    "rename it over the sidecar",
                    || Ok(fs::rename(&copy_path, &canonical)?),
                );
                if done {
                    restored.insert(key(&of));
                }
            } else {
                self.orphan(&copy_path, Problem::SidecarCopy);
            }
        }
        for name in sidecars {
            let entry = &name[..name.len() - SIDECAR_SUFFIX.len()];
            if !long_entries.contains(&key(entry)) {
                self.orphan(&path.join(&name), Problem::SidecarOrphan);
            }
        }
    }

    fn orphan(&self, path: &Path, problem: Problem) {
        let age = fs::symlink_metadata(path)
            .ok()
            .and_then(|m| {
                SystemTime::UNIX_EPOCH.checked_add(Duration::new(m.ctime().max(0) as u64, 0))
            })
            .and_then(|ctime| SystemTime::now().duration_since(ctime).ok())
            .unwrap_or_default();
        if age >= self.options.orphan_grace {
            self.repairable(problem, path, None, "no entry uses it", "remove it", || {
                Ok(fs::remove_file(path)?)
            });
        } else {
            let detail = format!(
                "no entry uses it, but it arrived {} min ago: its entry may still be syncing, so it is left alone",
                age.as_secs() / 60
            );
            self.report(problem, path, None, detail);
        }
    }

    fn config_copy(&self, path: &Path) {
        let same = match (
            fs::read(path),
            fs::read(self.vault.root().join(CONFIG_NAME)),
        ) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        if same {
            self.repairable(
                Problem::ConfigCopy,
                path,
                None,
                "identical to veilfs.conf",
                "remove it",
                || Ok(fs::remove_file(path)?),
            );
        } else {
            self.report(
                Problem::ConfigCopy,
                path,
                None,
                "differs from veilfs.conf (a password changed on two devices?); keep the one whose password you know",
            );
        }
    }

    fn undecodable<'s>(
        &'s self,
        scope: &rayon::Scope<'s>,
        task: &DirTask,
        iv: &DirIv,
        other_ivs: &[DirIv],
        item: &Item,
        error: Error,
    ) {
        let vault = self.vault;
        let path = &task.path;
        let entry_path = path.join(&item.name);
        // Encrypted under a conflicting copy of the IV file?
        for other in other_ivs {
            if let Ok(Some(name)) = vault.decrypt_entry(path, other, &item.name) {
                let plain = join_plain(&task.plain, &name);
                let mut current = entry_path.clone();
                self.repairable(
                    Problem::NameUnderOtherIv,
                    &entry_path,
                    plain.clone(),
                    "encrypted under the IV of a conflicting copy of veilfs.diriv",
                    "re-encrypt its name under the directory's IV",
                    || {
                        let to = vault.rename_entry(path, iv, &item.name, &name)?;
                        current = path.join(to.entry());
                        Ok(())
                    },
                );
                self.entry(scope, current, item.kind, plain, Some((*iv, name)));
                return;
            }
        }
        let problem = match (&error, EntryName::classify(&item.name)) {
            (Error::Sidecar(sidecar), EntryName::Long(_)) => {
                if path.join(sidecar).exists() {
                    Problem::SidecarMismatch
                } else {
                    Problem::SidecarMissing
                }
            }
            _ => Problem::UndecodableName,
        };
        let detail = match problem {
            Problem::UndecodableName => format!("{error}; hidden from the mount"),
            _ => "its name cannot be known (a hash cannot be inverted); hidden from the mount"
                .to_owned(),
        };
        self.report(problem, &entry_path, None, detail);
        // Its contents still have names of their own.
        if item.kind.is_dir() {
            let child = DirTask {
                path: entry_path,
                plain: None,
                parent_iv: None,
            };
            scope.spawn(move |scope| self.dir(scope, child));
        } else {
            self.count(item.kind, &path.join(&item.name), None);
        }
    }

    /// Checks one entry of the plaintext tree (contents, target) and walks into directories.
    fn entry<'s>(
        &'s self,
        scope: &rayon::Scope<'s>,
        path: PathBuf,
        kind: fs::FileType,
        plain: Option<PathBuf>,
        parent: Option<(DirIv, Vec<u8>)>,
    ) {
        if kind.is_dir() {
            let child = DirTask {
                path,
                plain,
                parent_iv: parent,
            };
            scope.spawn(move |scope| self.dir(scope, child));
        } else {
            self.count(kind, &path, plain);
        }
    }

    fn count(&self, kind: fs::FileType, path: &Path, plain: Option<PathBuf>) {
        if kind.is_file() {
            self.files.fetch_add(1, Ordering::Relaxed);
            self.check_file(path, plain);
        } else if kind.is_symlink() {
            self.symlinks.fetch_add(1, Ordering::Relaxed);
            self.check_symlink(path, plain);
        } else if !kind.is_dir() {
            self.other.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn check_file(&self, path: &Path, plain: Option<PathBuf>) {
        let result = (|| -> std::io::Result<Option<(Problem, String)>> {
            let mut file = File::open(path)?;
            let size = file.metadata()?.len();
            if size == 0 {
                return Ok(None);
            }
            if size < HEADER_LEN {
                return Ok(Some((
                    Problem::HeaderTruncated,
                    format!("{size} bytes: a header alone is {HEADER_LEN}"),
                )));
            }
            let mut version = [0; 2];
            file.read_exact(&mut version)?;
            let version = u16::from_be_bytes(version);
            Ok((version != 1).then(|| (Problem::HeaderVersion, format!("version {version}"))))
        })();
        match result {
            Ok(None) => {}
            Ok(Some((problem, detail))) => self.report(problem, path, plain, detail),
            Err(e) => self.report(Problem::Unreadable, path, plain, e.to_string()),
        }
    }

    fn check_symlink(&self, path: &Path, plain: Option<PathBuf>) {
        match fs::read_link(path) {
            Ok(target) => {
                if let Err(e) = self
                    .vault
                    .names()
                    .decrypt_symlink(target.as_os_str().as_bytes())
                {
                    self.report(Problem::SymlinkTarget, path, plain, e.to_string());
                }
            }
            Err(e) => self.report(Problem::Unreadable, path, plain, e.to_string()),
        }
    }
}

/// The IV in a file, if it holds exactly 16 bytes.
fn read_iv_file(path: &Path) -> Option<DirIv> {
    let bytes = fs::read(path).ok()?;
    let iv: [u8; DIR_IV_LEN] = bytes.try_into().ok()?;
    Some(DirIv(iv))
}

/// Writes `veilfs.diriv`, replacing `existing` (a corrupt IV file) atomically when there is one.
fn write_iv_file(dir: &Path, existing: Option<&Path>, iv: &DirIv) -> crate::Result<()> {
    let tmp = dir.join(format!("{DIRIV_NAME}.tmp"));
    let _ = fs::remove_file(&tmp);
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o400)
            .open(&tmp)?;
        file.write_all(&iv.0)?;
        file.sync_all()?;
    }
    if let Some(existing) = existing.filter(|e| e.file_name() != Some(OsStr::new(DIRIV_NAME))) {
        fs::remove_file(existing)?;
    }
    fs::rename(&tmp, dir.join(DIRIV_NAME))?;
    File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iv_files_of_the_wrong_size_are_not_ivs() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a"), [1; 15]).unwrap();
        fs::write(dir.path().join("b"), [1; 16]).unwrap();
        assert_eq!(read_iv_file(&dir.path().join("a")), None);
        assert_eq!(read_iv_file(&dir.path().join("b")), Some(DirIv([1; 16])));
    }

    #[test]
    fn a_corrupt_iv_file_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(DIRIV_NAME), [1; 3]).unwrap();
        write_iv_file(
            dir.path(),
            Some(&dir.path().join(DIRIV_NAME)),
            &DirIv([7; 16]),
        )
        .unwrap();
        assert_eq!(fs::read(dir.path().join(DIRIV_NAME)).unwrap(), [7; 16]);
        let upper = tempfile::tempdir().unwrap();
        fs::write(upper.path().join("VEILFS.DIRIV"), [1; 3]).unwrap();
        write_iv_file(
            upper.path(),
            Some(&upper.path().join("VEILFS.DIRIV")),
            &DirIv([7; 16]),
        )
        .unwrap();
        assert!(!upper.path().join("VEILFS.DIRIV").exists());
    }
}
