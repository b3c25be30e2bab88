//! Checking a whole vault, and the repairs that cannot lose data (`veilfs fsck`).
//!
//! [`check`] walks the backing directory with the key, directories in parallel, and looks at
//! every name, directory IV, long-name entry and sidecar, file header and symlink target. What
//! it finds is a [`Finding`]; with [`Options::repair`] it also does the safe fixes:
//!
//! - only IVs it can authenticate are acted on (format-v2.md, "fsck acts only on what it can
//!   authenticate"): the one a directory's path derives, an authenticated move record's, and in
//!   a v1 vault the one the directory's own `veilfs.diriv` holds (what the mount shows its names
//!   under). A missing, corrupt or replaced `veilfs.diriv` is written again with the derived IV
//!   when a name decrypts with it or the directory is empty; a sync tool's copy of the file is
//!   never adopted unless it holds the derived IV, so a planted IV moves no name;
//! - a directory rename a crash interrupted (an authenticated `veilfs.move`) is finished;
//! - conflict copies are renamed to the proper encryption of the name veilfs shows them under,
//!   and names a case-insensitive sync target re-cased get their canonical case back;
//! - names encrypted under an authenticated IV other than the directory's are re-encrypted
//!   under the directory's IV (the entries themselves are only renamed);
//! - a sync tool's copy of a sidecar replaces a missing or wrong sidecar when its contents hash
//!   to the entry's name (the only way the right contents can be known: the hash cannot be
//!   inverted), and is removed when it duplicates a good one;
//! - an orphaned sidecar (no entry, and no conflict copy that needs it) is removed once it has
//!   been on this disk longer than [`Options::orphan_grace`]: a sync tool may deliver a sidecar
//!   long before its entry (a large file still in transit), and removing it then would
//!   propagate to every device and leave the entry unreadable everywhere.
//!
//! - a file whose every byte is zero, header included (a power loss kept its size but none of its
//!   data: no key can read it) gets a fresh header, so that it reads as the zeros it holds
//!   instead of failing for ever.
//!
//! Nothing else is touched: undecodable names, other bad headers and bad symlinks are reported.
//!
//! The backing directory may hold anything a sync peer planted, so the walk goes through
//! [`Dir`] handles only: each directory is opened from its parent's handle, never through a
//! symlink, and nothing is opened that could block (a FIFO, a device). A file veilfs keeps for
//! itself (`veilfs.diriv`, a sidecar, a copy of one or of `veilfs.conf`) that is not a regular
//! file is reported for that entry alone, and its siblings are checked as usual.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use nix::fcntl::OFlag;
use serde::Serialize;

use crate::backing::{Dir, Entry, FileKind, RenameMode, Size};
use crate::config::{CONFIG_NAME, MAX_CONFIG_BYTES};
use crate::crypto::content::HEADER_LEN;
use crate::crypto::names::{DirIv, DIR_IV_LEN};
use crate::error::Error;
use crate::layout::conflict;
use crate::layout::diriv;
use crate::layout::file::FileContent;
use crate::layout::longname::{self, sidecar_name, SIDECAR_SUFFIX};
use crate::layout::MOVE_NAME;
use crate::layout::{EntryName, DIRIV_NAME};
use crate::vault::{BackingEntry, IvPolicy, ReservedCopy, Vault};

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
    /// `veilfs.move`: a directory rename a crash interrupted, or a record that does not fit.
    MoveRecord,
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
    /// A FIFO, socket or device node in the plaintext tree: legitimate (made through the mount),
    /// but no sync tool carries one, so other devices do not have it, and a local process may
    /// have planted it in place of a file. A note ([`Outcome::Note`]), not a problem.
    SpecialFile,
    /// Something that could not be read at all, or a file veilfs keeps for itself (the config, a
    /// sidecar) that is not a regular file: a FIFO, a socket, a device, a symlink or a directory
    /// planted under its name, which is never opened.
    Unreadable,
}

impl Problem {
    pub fn describe(self) -> &'static str {
        match self {
            Problem::UndecodableName => "undecodable name",
            Problem::DirIvMissing => "directory IV missing",
            Problem::DirIvCorrupt => "directory IV corrupt",
            Problem::DirIvCopy => "copy of a directory IV",
            Problem::MoveRecord => "interrupted directory rename",
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
            Problem::SpecialFile => "special file",
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
    /// Worth knowing, but nothing is wrong: the vault stays clean.
    Note,
}

/// An IV other than the directory's under which some of its names may be encrypted.
#[derive(Clone, Copy, Debug)]
struct OtherIv {
    iv: DirIv,
    /// Authenticated ([`Walk::dir_iv`]): names under it are re-encrypted under the directory's.
    trusted: bool,
    /// Where it was found, for messages.
    source: &'static str,
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
    /// Nothing is wrong (any more): every finding, if any, was repaired or is a note.
    pub fn is_clean(&self) -> bool {
        self.findings
            .iter()
            .all(|f| matches!(f.outcome, Outcome::Repaired | Outcome::Note))
    }

    /// The findings that are problems, not notes.
    pub fn problems(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.outcome != Outcome::Note)
            .count()
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
        place: Place::Root,
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
/// Subdirectories are opened from their parent's handle, never through a symlink; what cannot be
/// opened counts as one entry.
pub fn count_entries(root: &Dir) -> u64 {
    fn count(dir: &Dir) -> u64 {
        let Ok(entries) = dir.entries() else {
            return 0;
        };
        let subdirs: Vec<&Entry> = entries
            .iter()
            .filter(|entry| kind_of(dir, entry).is_ok_and(|kind| kind == FileKind::Dir))
            .collect();
        use rayon::prelude::*;
        entries.len() as u64
            + subdirs
                .par_iter()
                .map(|entry| dir.open_dir(&entry.name).map_or(0, |sub| count(&sub)))
                .sum::<u64>()
    }
    count(root)
}

/// The type of `entry` of `dir`: from the listing, or (where the filesystem does not say) from
/// `lstat`.
fn kind_of(dir: &Dir, entry: &Entry) -> io::Result<FileKind> {
    match entry.kind {
        Some(kind) => Ok(kind),
        None => dir.stat(&entry.name).map(|stat| FileKind::of(&stat)),
    }
}

/// Where a directory to check is.
enum Place {
    /// The vault root, whose handle the vault holds.
    Root,
    /// Entry `.1` of directory `.0`: opened only when its turn comes, so that a wide tree does
    /// not hold a handle for every directory waiting to be checked.
    Child(Arc<Dir>, String),
}

struct DirTask {
    place: Place,
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
    kind: FileKind,
}

fn join_plain(parent: &Option<PathBuf>, name: &[u8]) -> Option<PathBuf> {
    parent.as_ref().map(|p| p.join(OsStr::from_bytes(name)))
}

/// What a finding says of a file veilfs keeps for itself that is something else.
fn not_a_file(kind: FileKind) -> String {
    format!("{}, not a regular file: not read", kind.described())
}

impl<'a> Walk<'a> {
    fn relative(&self, path: &Path) -> PathBuf {
        path.strip_prefix(self.vault.root_path())
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
        let opened = match &task.place {
            Place::Root => self.vault.root().try_clone(),
            Place::Child(parent, name) => parent.open_dir(name),
        };
        let dir = match opened {
            Ok(dir) => Arc::new(dir),
            Err(e) => {
                let path = match &task.place {
                    Place::Root => self.vault.root_path().to_path_buf(),
                    Place::Child(parent, name) => parent.display_path(name),
                };
                self.report(
                    Problem::Unreadable,
                    &path,
                    task.plain.clone(),
                    format!("opening it: {e}"),
                );
                return;
            }
        };
        let derived = match &task.place {
            Place::Root => Some(self.vault.root_iv()),
            Place::Child(..) => task
                .parent_iv
                .as_ref()
                .map(|(parent, name)| self.vault.new_dir_iv(parent, name)),
        };
        let moved_from = self.interrupted_move(&dir, &task, derived);
        let listing = match dir.entries() {
            Ok(listing) => listing,
            Err(e) => {
                self.report(
                    Problem::Unreadable,
                    dir.path(),
                    task.plain.clone(),
                    format!("reading it: {e}"),
                );
                return;
            }
        };
        // Every entry listed counts, as in `count_entries`, so that a progress bar sized by it
        // ends full: names that are not UTF-8 are reported below, not left out.
        let count = listing.len() as u64;
        let mut items = Vec::new();
        for entry in listing {
            let kind = match kind_of(&dir, &entry) {
                Ok(kind) => kind,
                Err(e) => {
                    self.report(
                        Problem::Unreadable,
                        &dir.display_path(&entry.name),
                        None,
                        e.to_string(),
                    );
                    continue;
                }
            };
            match entry.name.into_string() {
                Ok(name) => items.push(Item { name, kind }),
                Err(name) => {
                    self.report(
                        Problem::UndecodableName,
                        &dir.display_path(name),
                        None,
                        "not UTF-8",
                    );
                }
            }
        }
        items.sort_by(|a, b| a.name.cmp(&b.name));

        match self.dir_iv(&dir, &task, derived, moved_from, &items) {
            Some((iv, other_ivs)) => self.entries(scope, &dir, &task, &iv, &other_ivs, &items),
            None => {
                // Names cannot be read; subdirectories still have IVs of their own.
                for item in items.iter().filter(|i| i.kind == FileKind::Dir) {
                    let child = DirTask {
                        place: Place::Child(dir.clone(), item.name.clone()),
                        plain: None,
                        parent_iv: None,
                    };
                    scope.spawn(move |scope| self.dir(scope, child));
                }
            }
        }
        (self.progress)(count);
    }

    /// A move record in `dir` (a directory rename a crash interrupted): one that authenticates
    /// and names the IV the directory's path derives is finished by `--repair` (the walk then
    /// reads the directory as it is after); any other is reported and ignored. Returns the old
    /// IV of a move that is still unfinished.
    fn interrupted_move(&self, dir: &Dir, task: &DirTask, derived: Option<DirIv>) -> Option<DirIv> {
        let path = dir.display_path(MOVE_NAME);
        let record = match self.vault.read_move(dir) {
            Ok(record) => record?,
            // A regular file that is not a whole record that authenticates carries nothing
            // fsck could act on: the record of a rename a crash cut short before the rename
            // began (records are written and synced first), or something planted. Removing it
            // loses nothing; anything else there is left for the user.
            Err(e)
                if dir
                    .stat(MOVE_NAME)
                    .is_ok_and(|st| FileKind::of(&st) == FileKind::File) =>
            {
                self.repairable(
                    Problem::MoveRecord,
                    &path,
                    task.plain.clone(),
                    format!("{e} (written incompletely by a crash, or planted)"),
                    "remove it: it holds nothing that can be used",
                    || crate::layout::moves::remove(dir),
                );
                return None;
            }
            Err(e) => {
                self.report(
                    Problem::MoveRecord,
                    &path,
                    task.plain.clone(),
                    format!("{e}; ignored: remove it"),
                );
                return None;
            }
        };
        let never_started =
            derived.is_some_and(|d| self.vault.move_never_started(dir, &record, &d));
        if derived != Some(record.new) && never_started {
            self.repairable(
                Problem::MoveRecord,
                &path,
                task.plain.clone(),
                "a directory rename was interrupted before the directory moved (the record \
                 authenticates): nothing was renamed",
                "remove the record",
                || crate::layout::moves::remove(dir),
            );
            return None;
        }
        if derived != Some(record.new) {
            self.report(
                Problem::MoveRecord,
                &path,
                task.plain.clone(),
                "authenticates, but is the record of a rename to another path (copied here?); \
                 ignored: remove it",
            );
            return None;
        }
        let done = self.repairable(
            Problem::MoveRecord,
            &path,
            task.plain.clone(),
            "a directory rename was interrupted (the record authenticates)",
            "finish the rename: re-encrypt the names of the subtree under the IVs of its path",
            || self.vault.finish_move(dir, &record).map(|_| ()),
        );
        (!done).then_some(record.old)
    }

    /// The IV to read this directory's names with, and other IVs under which some of its names
    /// may be encrypted; `None` when it cannot be known. Reports and repairs the IV file.
    ///
    /// Only an IV fsck can authenticate is ever acted on: the one the directory's path derives,
    /// an authenticated move record's (`moved_from`), and in a v1 vault ([`IvPolicy::Stored`])
    /// the one its `veilfs.diriv` holds, which is what the mount shows this directory's names
    /// under. A sync tool's copy of the IV file (or anything planted under such a name) is
    /// never adopted: names under it are reported and left alone.
    fn dir_iv(
        &self,
        dir: &Dir,
        task: &DirTask,
        derived: Option<DirIv>,
        moved_from: Option<DirIv>,
        items: &[Item],
    ) -> Option<(DirIv, Vec<OtherIv>)> {
        let vault = self.vault;
        // Sync tools' copies of the IV file (and anything planted under such a name).
        let mut copies = Vec::new();
        for item in items {
            if !crate::vault::is_canonical_reserved(&item.name)
                && !item.name.eq_ignore_ascii_case(DIRIV_NAME)
                && conflict::candidates(&item.name, vault.names().encoding())
                    .contains(&conflict::Candidate::DirIv)
            {
                copies.push((item.name.clone(), read_iv(dir, item)));
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
                    vault.classify_entry(dir, iv, name),
                    BackingEntry::Name(_) | BackingEntry::ConflictCopy { .. }
                )
            })
        };
        let has_names = !samples.is_empty();

        // The IV file itself; under its own name if it has it, else re-cased.
        let stored_file = items.iter().find(|i| i.name == DIRIV_NAME).or_else(|| {
            items
                .iter()
                .find(|i| i.name.eq_ignore_ascii_case(DIRIV_NAME))
        });
        let stored = stored_file.map(|f| read_iv(dir, f));
        let at =
            stored_file.map_or_else(|| dir.path().to_path_buf(), |f| dir.display_path(&f.name));
        let existing = stored_file.map(|f| f.name.as_str());
        let mut others = Vec::new();
        // What is wrong with the IV file, when it is not a usable one.
        let unusable = match &stored {
            Some(Ok(_)) => None,
            Some(Err(why)) => Some((Problem::DirIvCorrupt, why.clone())),
            None => Some((Problem::DirIvMissing, "no veilfs.diriv".to_owned())),
        };
        let write_derived = |problem: Problem, detail: String, iv: DirIv| {
            self.repairable(
                problem,
                &at,
                task.plain.clone(),
                detail,
                "write veilfs.diriv with the IV its path derives",
                || write_iv(dir, existing, &iv),
            );
        };
        let policy = vault.iv_policy();
        let chosen = match (derived, &stored) {
            // Below an undecodable name, in a v1 vault: the file is all there is.
            (None, Some(Ok(s))) if policy == IvPolicy::Stored => *s,
            (None, _) => {
                let (problem, what) = unusable.unwrap_or((
                    Problem::DirIvCorrupt,
                    "its IV file cannot be checked".to_owned(),
                ));
                self.report(
                    problem,
                    &at,
                    task.plain.clone(),
                    format!(
                        "{what}; the directory's own name is undecodable (reported), so its IV \
                         cannot be derived: its names cannot be read"
                    ),
                );
                return None;
            }
            (Some(d), Some(Ok(s))) if policy == IvPolicy::Derived => {
                if *s != d {
                    if !fits(s) || moved_from == Some(*s) {
                        write_derived(
                            Problem::DirIvCorrupt,
                            "does not match the IV its path derives; no name decrypts with it"
                                .to_owned(),
                            d,
                        );
                    } else {
                        self.report(
                            Problem::DirIvCorrupt,
                            &at,
                            task.plain.clone(),
                            "does not match the IV its path derives, and some names decrypt with \
                             it: they were not encrypted for this directory (planted, or moved by \
                             someone without the key), so they stay hidden and are listed one by \
                             one; fsck --repair rewrites this file once none are left",
                        );
                        others.push(OtherIv {
                            iv: *s,
                            trusted: false,
                            source: "veilfs.diriv",
                        });
                    }
                }
                d
            }
            (Some(d), Some(Ok(s))) => {
                if *s != d && has_names && fits(&d) {
                    // Names of this path hidden by a replaced IV file: they come back, and the
                    // names a v1 mount showed under the replaced IV stay, under the right one.
                    write_derived(
                        Problem::DirIvCorrupt,
                        "differs from the IV its path derives, under which names decrypt: they \
                         were hidden"
                            .to_owned(),
                        d,
                    );
                    if fits(s) {
                        others.push(OtherIv {
                            iv: *s,
                            trusted: true,
                            source: "the replaced veilfs.diriv",
                        });
                    }
                    d
                } else {
                    *s
                }
            }
            (Some(d), _) => {
                let (problem, why) = unusable.expect("a usable IV file is matched above");
                if !has_names || fits(&d) || policy == IvPolicy::Derived {
                    write_derived(problem, why, d);
                    d
                } else {
                    self.report(
                        problem,
                        &at,
                        task.plain.clone(),
                        format!(
                            "{why}; no name in the directory decrypts with the IV its path \
                             derives (a directory renamed by an older veilfs): its names cannot \
                             be read. Restore veilfs.diriv from another device or a backup"
                        ),
                    );
                    return None;
                }
            }
        };
        if let Some(old) = moved_from.filter(|old| *old != chosen) {
            others.push(OtherIv {
                iv: old,
                trusted: true,
                source: "an interrupted rename",
            });
        }
        // Recased IV file (a case-insensitive sync target, back on a case-sensitive disk).
        if let Some(file) = stored_file
            .filter(|f| f.name != DIRIV_NAME && matches!(&stored, Some(Ok(iv)) if *iv == chosen))
        {
            self.repairable(
                Problem::Recased,
                &dir.display_path(&file.name),
                task.plain.clone(),
                "the directory IV file was renamed",
                "rename it to veilfs.diriv",
                || Ok(dir.rename(&file.name, dir, DIRIV_NAME, RenameMode::NoReplace)?),
            );
        }
        // Copies: redundant ones go. A copy holding the IV the path derives is authenticated by
        // the path; any other is not (anyone can plant a file named like a copy, holding the IV
        // of another directory whose names would then be moved here).
        for (name, iv) in &copies {
            let copy = dir.display_path(name);
            match iv {
                Ok(iv) if *iv == chosen => {
                    self.repairable(
                        Problem::DirIvCopy,
                        &copy,
                        task.plain.clone(),
                        "same IV as veilfs.diriv",
                        "remove it",
                        || Ok(dir.unlink(name)?),
                    );
                }
                Ok(iv) => {
                    let trusted = derived == Some(*iv);
                    others.push(OtherIv {
                        iv: *iv,
                        trusted,
                        source: "a copy of veilfs.diriv",
                    });
                    let detail = if trusted {
                        "holds the IV this directory's path derives; names under it are re-encrypted \
                         under the directory's IV; remove this file once none are left"
                    } else {
                        "holds an IV that is not this directory's: names under it are reported and \
                         never re-encrypted (it may have been planted); remove this file once you \
                         have looked at them"
                    };
                    self.report(Problem::DirIvCopy, &copy, task.plain.clone(), detail);
                }
                Err(why) => self.report(Problem::DirIvCopy, &copy, task.plain.clone(), why.clone()),
            }
        }
        Some((chosen, others))
    }

    fn entries<'s>(
        &'s self,
        scope: &rayon::Scope<'s>,
        dir: &Arc<Dir>,
        task: &DirTask,
        iv: &DirIv,
        other_ivs: &[OtherIv],
        items: &[Item],
    ) {
        let vault = self.vault;
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
        let mut kinds: HashMap<&str, FileKind> = HashMap::new();
        for item in items {
            kinds.insert(&item.name, item.kind);
            if let EntryName::Long(hashed) = EntryName::classify(&item.name) {
                long_entries.insert(key(hashed));
            }
        }
        for item in items {
            let entry_path = dir.display_path(&item.name);
            match vault.classify_entry(dir, iv, &item.name) {
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
                                    || vault.normalize_case(dir, iv, &item.name, &name).map(|_| ()),
                                );
                                if fixed {
                                    current = canonical.entry().to_owned();
                                }
                            }
                        }
                    }
                    self.entry(
                        scope,
                        dir,
                        current,
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
                    if item.kind != FileKind::File
                        && crate::vault::is_canonical_reserved(&item.name)
                        && !item.name.eq_ignore_ascii_case(DIRIV_NAME)
                    {
                        // A config or a sidecar that is something else: never opened, never
                        // removed (a directory may hold data). A sidecar's entry is reported
                        // on its own.
                        self.report(
                            Problem::Unreadable,
                            &entry_path,
                            None,
                            not_a_file(item.kind),
                        );
                    } else if crate::vault::is_canonical_sidecar(&item.name) {
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
                                Ok(dir.rename(
                                    &item.name,
                                    dir,
                                    CONFIG_NAME,
                                    RenameMode::NoReplace,
                                )?)
                            },
                        );
                    }
                }
                BackingEntry::ReservedCopy(ReservedCopy::Sidecar { of, valid }) => {
                    sidecar_copies.push((item.name.clone(), of, valid, item.kind));
                }
                BackingEntry::ReservedCopy(ReservedCopy::DirIv) => {} // handled with the IV
                BackingEntry::ReservedCopy(ReservedCopy::Conf) => self.config_copy(dir, item),
                BackingEntry::SyncTool => {
                    self.ignored.fetch_add(1, Ordering::Relaxed);
                }
                BackingEntry::Undecodable(error) => {
                    self.undecodable(scope, dir, task, iv, other_ivs, item, error);
                }
            }
        }

        // Conflict copies: shown under names veilfs picks; --repair makes those their names.
        for copy in conflict::name_copies(&taken, copies) {
            let (backing, original, shown) = copy;
            let from = dir.display_path(&backing);
            let plain = join_plain(&task.plain, &shown);
            let original_plain =
                join_plain(&task.plain, &original).map(|p| p.display().to_string());
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
                    let (to, _) = vault.rename_entry(dir, iv, &backing, &shown, (iv, &original))?;
                    current = to.entry().to_owned();
                    Ok(())
                },
            );
            let kind = kinds[backing.as_str()];
            // A directory's IVs derive from the name its contents were encrypted for.
            let named = if renamed { shown } else { original };
            self.entry(scope, dir, current, kind, plain, Some((*iv, named)));
        }

        // Sidecars: copies first (they may restore a sidecar), then orphans.
        let mut restored: HashSet<String> = HashSet::new();
        for (name, of, valid, kind) in sidecar_copies {
            let copy_path = dir.display_path(&name);
            let canonical = sidecar_name(&of);
            if !valid {
                let detail = if kind == FileKind::File {
                    format!("does not hold the name of {of}")
                } else {
                    not_a_file(kind)
                };
                self.report(Problem::SidecarCopy, &copy_path, None, detail);
                continue;
            }
            let canonical_good =
                longname::read_sidecar_file(dir, &canonical, &of, ignore_case).is_ok();
            if canonical_good || restored.contains(&key(&of)) {
                self.repairable(
                    Problem::SidecarCopy,
                    &copy_path,
                    None,
                    "duplicates the sidecar",
                    "remove it",
                    || Ok(dir.unlink(&name)?),
                );
            } else if long_entries.contains(&key(&of)) {
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
                    restored.insert(key(&of));
                }
            } else {
                self.orphan(dir, &name, Problem::SidecarCopy);
            }
        }
        for name in sidecars {
            let entry = &name[..name.len() - SIDECAR_SUFFIX.len()];
            if !long_entries.contains(&key(entry)) {
                self.orphan(dir, &name, Problem::SidecarOrphan);
            }
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

    /// A sync tool's copy of `veilfs.conf`: removed when it is the same file.
    fn config_copy(&self, dir: &Dir, item: &Item) {
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

    #[allow(clippy::too_many_arguments)]
    fn undecodable<'s>(
        &'s self,
        scope: &rayon::Scope<'s>,
        dir: &Arc<Dir>,
        task: &DirTask,
        iv: &DirIv,
        other_ivs: &[OtherIv],
        item: &Item,
        error: Error,
    ) {
        let vault = self.vault;
        let entry_path = dir.display_path(&item.name);
        // Encrypted under a conflicting copy of the IV file?
        for other in other_ivs {
            if let Ok(Some(name)) = vault.decrypt_entry(dir, &other.iv, &item.name) {
                let plain = join_plain(&task.plain, &name);
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
                    return;
                }
                let mut current = item.name.clone();
                self.repairable(
                    Problem::NameUnderOtherIv,
                    &entry_path,
                    plain.clone(),
                    format!("encrypted under the IV of {}", other.source),
                    "re-encrypt its name under the directory's IV",
                    || {
                        let (to, _) =
                            vault.rename_entry(dir, iv, &item.name, &name, (&other.iv, &name))?;
                        current = to.entry().to_owned();
                        Ok(())
                    },
                );
                self.entry(scope, dir, current, item.kind, plain, Some((*iv, name)));
                return;
            }
        }
        let mut sidecar_kind = None;
        let problem = match (&error, EntryName::classify(&item.name)) {
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
        self.report(problem, &entry_path, None, detail);
        // Its contents still have names of their own.
        if item.kind == FileKind::Dir {
            let child = DirTask {
                place: Place::Child(dir.clone(), item.name.clone()),
                plain: None,
                parent_iv: None,
            };
            scope.spawn(move |scope| self.dir(scope, child));
        } else {
            self.count(item.kind, dir, &item.name, None);
        }
    }

    /// Checks entry `name` of `dir`, an entry of the plaintext tree (contents, target), and
    /// walks into directories.
    fn entry<'s>(
        &'s self,
        scope: &rayon::Scope<'s>,
        dir: &Arc<Dir>,
        name: String,
        kind: FileKind,
        plain: Option<PathBuf>,
        parent: Option<(DirIv, Vec<u8>)>,
    ) {
        if kind == FileKind::Dir {
            let child = DirTask {
                place: Place::Child(dir.clone(), name),
                plain,
                parent_iv: parent,
            };
            scope.spawn(move |scope| self.dir(scope, child));
        } else {
            self.count(kind, dir, &name, plain);
        }
    }

    fn count(&self, kind: FileKind, dir: &Dir, name: &str, plain: Option<PathBuf>) {
        match kind {
            FileKind::File => {
                self.files.fetch_add(1, Ordering::Relaxed);
                self.check_file(dir, name, plain);
            }
            FileKind::Symlink => {
                self.symlinks.fetch_add(1, Ordering::Relaxed);
                self.check_symlink(dir, name, plain);
            }
            FileKind::Dir => {}
            _ => {
                self.other.fetch_add(1, Ordering::Relaxed);
                // Never opened. Named, since sync tools skip such entries: a FIFO or socket
                // here came from this machine, by the mount or by someone else.
                self.push(
                    Problem::SpecialFile,
                    &dir.display_path(name),
                    plain,
                    format!(
                        "{}: sync tools do not carry one, so it is on this device only",
                        kind.described()
                    ),
                    None,
                    Outcome::Note,
                );
            }
        }
    }

    fn check_file(&self, dir: &Dir, name: &str, plain: Option<PathBuf>) {
        let result = (|| -> io::Result<Option<(Problem, String, bool)>> {
            // Never blocks: had a FIFO taken the file's place since the listing, this fails.
            let mut file = dir.open_file(name, OFlag::O_RDONLY, 0)?;
            let size = file.metadata()?.len();
            if size == 0 {
                return Ok(None);
            }
            if size < HEADER_LEN {
                return Ok(Some((
                    Problem::HeaderTruncated,
                    format!("{size} bytes: a header alone is {HEADER_LEN}"),
                    false,
                )));
            }
            let mut version = [0; 2];
            file.read_exact(&mut version)?;
            let version = u16::from_be_bytes(version);
            if version == 1 {
                return Ok(None);
            }
            // A file whose every byte is zero is one whose data never reached the disk while its
            // size did (a power loss before it was synced): nothing of it can be read, and a
            // fresh header makes it read as the zeros it holds instead of failing for ever.
            let lost = version == 0 && is_all_zero(&mut file)?;
            Ok(Some((
                Problem::HeaderVersion,
                format!("version {version}"),
                lost,
            )))
        })();
        let path = dir.display_path(name);
        match result {
            Ok(None) => {}
            Ok(Some((problem, detail, false))) => self.report(problem, &path, plain, detail),
            Ok(Some((problem, _, true))) => {
                self.repairable(
                    problem,
                    &path,
                    plain,
                    "every byte is zero, its header included: its contents never reached the \
                     disk (a crash before it was synced)",
                    "give it a new header, so that it reads as zeros of its size",
                    || self.reheader_zeroed_file(dir, name),
                );
            }
            Err(e) => self.report(Problem::Unreadable, &path, plain, e.to_string()),
        }
    }

    /// Gives the all-zero file `name` of `dir` a fresh header and encrypted zeros of its
    /// plaintext size (a hole, or a short sector of zeros), durably.
    fn reheader_zeroed_file(&self, dir: &Dir, name: &str) -> crate::Result<()> {
        let file = dir.open_file(name, OFlag::O_RDWR, 0)?;
        if !is_all_zero(&mut &file)? {
            return Err(Error::Io(io::Error::other(
                "it changed since it was checked",
            )));
        }
        let size = FileContent::size(&file)?;
        file.set_len(0)?;
        let key = self.vault.content_key();
        FileContent::load(&file, key)?.truncate(key, &file, size)?;
        file.sync_all()?;
        Ok(())
    }

    fn check_symlink(&self, dir: &Dir, name: &str, plain: Option<PathBuf>) {
        let path = dir.display_path(name);
        match dir.readlink(name) {
            Ok(target) => {
                if let Err(e) = self.vault.names().decrypt_symlink(target.as_bytes()) {
                    self.report(Problem::SymlinkTarget, &path, plain, e.to_string());
                }
            }
            Err(e) => self.report(Problem::Unreadable, &path, plain, e.to_string()),
        }
    }
}

/// Whether every byte from `file`'s position on is zero.
fn is_all_zero(file: &mut impl Read) -> io::Result<bool> {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        match file.read(&mut buffer)? {
            0 => return Ok(true),
            n if buffer[..n].iter().any(|&b| b != 0) => return Ok(false),
            _ => {}
        }
    }
}

/// The IV in file `item` of `dir` (its `veilfs.diriv`, re-cased or not, or a sync tool's copy
/// of it), or what is wrong with the file. Only a regular file of exactly 16 bytes is read:
/// anything else planted under such a name is never opened.
fn read_iv(dir: &Dir, item: &Item) -> Result<DirIv, String> {
    if item.kind != FileKind::File {
        return Err(not_a_file(item.kind));
    }
    if item.name == DIRIV_NAME {
        return diriv::read(dir).map_err(|e| match e {
            Error::DirIv(_, why) => why,
            e => e.to_string(),
        });
    }
    match dir.read_small(&item.name, Size::Exactly(DIR_IV_LEN as u64)) {
        Ok(bytes) => {
            let iv: [u8; DIR_IV_LEN] = bytes.try_into().map_err(|_| "not 16 bytes".to_owned())?;
            Ok(DirIv(iv))
        }
        Err(e) if e.kind() == io::ErrorKind::InvalidData => Err(format!("not {DIR_IV_LEN} bytes")),
        Err(e) => Err(e.to_string()),
    }
}

/// Writes `veilfs.diriv` into `dir`, in place of `existing` (a corrupt or re-cased IV file, or
/// something planted under its name) when there is one. A directory in its place is not removed:
/// the repair fails instead.
fn write_iv(dir: &Dir, existing: Option<&str>, iv: &DirIv) -> crate::Result<()> {
    if let Some(existing) = existing {
        dir.unlink(existing)?;
    }
    diriv::write_durable(dir, iv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::stat::Mode;

    fn item(dir: &Dir, name: &str) -> Item {
        Item {
            name: name.to_owned(),
            kind: FileKind::of(&dir.stat(name).unwrap()),
        }
    }

    #[test]
    fn iv_files_of_the_wrong_size_or_type_are_not_ivs() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("a"), [1; 15]).unwrap();
        std::fs::write(tmp.path().join("b"), [1; 16]).unwrap();
        std::fs::write(tmp.path().join(DIRIV_NAME), [2; 16]).unwrap();
        nix::unistd::mkfifo(&tmp.path().join("fifo"), Mode::from_bits_truncate(0o600)).unwrap();
        std::os::unix::fs::symlink(tmp.path().join("b"), tmp.path().join("link")).unwrap();
        let dir = Dir::open_root(tmp.path()).unwrap();
        assert!(read_iv(&dir, &item(&dir, "a")).is_err());
        assert_eq!(read_iv(&dir, &item(&dir, "b")), Ok(DirIv([1; 16])));
        assert_eq!(read_iv(&dir, &item(&dir, DIRIV_NAME)), Ok(DirIv([2; 16])));
        let fifo = read_iv(&dir, &item(&dir, "fifo")).unwrap_err();
        assert!(fifo.contains("a FIFO"), "{fifo}");
        let link = read_iv(&dir, &item(&dir, "link")).unwrap_err();
        assert!(link.contains("a symbolic link"), "{link}");
    }

    #[test]
    fn a_corrupt_iv_file_is_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(DIRIV_NAME), [1; 3]).unwrap();
        let dir = Dir::open_root(tmp.path()).unwrap();
        write_iv(&dir, Some(DIRIV_NAME), &DirIv([7; 16])).unwrap();
        assert_eq!(diriv::read(&dir).unwrap(), DirIv([7; 16]));

        let upper = tempfile::tempdir().unwrap();
        std::fs::write(upper.path().join("VEILFS.DIRIV"), [1; 3]).unwrap();
        let dir = Dir::open_root(upper.path()).unwrap();
        write_iv(&dir, Some("VEILFS.DIRIV"), &DirIv([7; 16])).unwrap();
        assert!(!dir.exists("VEILFS.DIRIV"));
        assert_eq!(diriv::read(&dir).unwrap(), DirIv([7; 16]));

        // A FIFO in its place goes; a directory stays, and the repair fails.
        let planted = tempfile::tempdir().unwrap();
        nix::unistd::mkfifo(
            &planted.path().join(DIRIV_NAME),
            Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        let dir = Dir::open_root(planted.path()).unwrap();
        write_iv(&dir, Some(DIRIV_NAME), &DirIv([7; 16])).unwrap();
        assert_eq!(diriv::read(&dir).unwrap(), DirIv([7; 16]));
        let planted = tempfile::tempdir().unwrap();
        std::fs::create_dir(planted.path().join(DIRIV_NAME)).unwrap();
        std::fs::write(planted.path().join(DIRIV_NAME).join("data"), b"kept").unwrap();
        let dir = Dir::open_root(planted.path()).unwrap();
        assert!(write_iv(&dir, Some(DIRIV_NAME), &DirIv([7; 16])).is_err());
        assert_eq!(
            std::fs::read(planted.path().join(DIRIV_NAME).join("data")).unwrap(),
            b"kept"
        );
    }
}
