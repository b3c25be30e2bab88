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

mod conflicts;
mod contents;
mod iv;
mod moves;
mod names;
mod report;
mod sidecars;

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::backing::{Dir, Entry, FileKind};
use crate::crypto::names::DirIv;
use crate::vault::Vault;
use names::Names;
use report::Tally;
pub use report::{Counts, Finding, Outcome, Problem, Report};

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

/// Checks the whole vault; `progress` is called with the number of entries of each directory
/// done.
pub fn check(vault: &Vault, options: &Options, progress: &(dyn Fn(u64) + Sync)) -> Report {
    let start = Instant::now();
    let walk = Walk {
        vault,
        options,
        progress,
        findings: Mutex::default(),
        tally: Tally::default(),
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
        checked: walk.tally.into_counts(),
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

impl Place {
    fn open(&self, vault: &Vault) -> io::Result<Dir> {
        match self {
            Place::Root => vault.root().try_clone(),
            Place::Child(parent, name) => parent.open_dir(name),
        }
    }

    fn path(&self, vault: &Vault) -> PathBuf {
        match self {
            Place::Root => vault.root_path().to_path_buf(),
            Place::Child(parent, name) => parent.display_path(name),
        }
    }
}

struct DirTask {
    place: Place,
    /// Its plaintext path, unknown below an undecodable name.
    plain: Option<PathBuf>,
    /// The parent's IV and the directory's plaintext name, to re-derive a lost IV; `None` for
    /// the root (whose IV comes from the key) and below undecodable names.
    parent_iv: Option<(DirIv, Vec<u8>)>,
}

/// One check of a whole vault, shared by the threads walking it.
struct Walk<'a> {
    vault: &'a Vault,
    options: &'a Options,
    progress: &'a (dyn Fn(u64) + Sync),
    findings: Mutex<Vec<Finding>>,
    tally: Tally,
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
    /// Checks the directory of `task` and, through `scope`, the tree below it.
    fn dir<'s>(&'s self, scope: &rayon::Scope<'s>, task: DirTask) {
        self.tally.add(FileKind::Dir);
        let dir = match task.place.open(self.vault) {
            Ok(dir) => Arc::new(dir),
            Err(e) => {
                let path = task.place.path(self.vault);
                self.report(
                    Problem::Unreadable,
                    &path,
                    task.plain,
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
        let Some((items, count)) = self.list(&dir, &task) else {
            return;
        };
        match self.dir_iv(&dir, &task, derived, moved_from, &items) {
            Some((iv, others)) => {
                let here = Names {
                    dir: &dir,
                    plain: &task.plain,
                    iv,
                    others,
                };
                self.entries(scope, &here, &items);
            }
            None => {
                // Names cannot be read; subdirectories still have IVs of their own.
                for item in items.iter().filter(|i| i.kind == FileKind::Dir) {
                    self.nameless_dir(scope, &dir, &item.name);
                }
            }
        }
        (self.progress)(count);
    }

    /// The entries of `dir`, sorted by name, and how many were listed; `None` when it cannot be
    /// read. Entries whose type cannot be known or whose name is not UTF-8 are reported here.
    fn list(&self, dir: &Dir, task: &DirTask) -> Option<(Vec<Item>, u64)> {
        let listing = match dir.entries() {
            Ok(listing) => listing,
            Err(e) => {
                self.report(
                    Problem::Unreadable,
                    dir.path(),
                    task.plain.clone(),
                    format!("reading it: {e}"),
                );
                return None;
            }
        };
        // Every entry listed counts, as in `count_entries`, so that a progress bar sized by it
        // ends full: names that are not UTF-8 are reported below, not left out.
        let count = listing.len() as u64;
        let mut items = Vec::new();
        for entry in listing {
            let kind = match kind_of(dir, &entry) {
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
        Some((items, count))
    }

    /// Checks entry `backing` of `here`, an entry of the plaintext tree whose name is encrypted
    /// for plaintext name `name`, walking into it if it is a directory.
    fn entry<'s>(
        &'s self,
        scope: &rayon::Scope<'s>,
        here: &Names,
        backing: String,
        kind: FileKind,
        plain: Option<PathBuf>,
        name: Vec<u8>,
    ) {
        if kind == FileKind::Dir {
            let child = DirTask {
                place: Place::Child(here.dir.clone(), backing),
                plain,
                parent_iv: Some((here.iv, name)),
            };
            scope.spawn(move |scope| self.dir(scope, child));
        } else {
            self.leaf(kind, here.dir, &backing, plain);
        }
    }

    /// Walks into subdirectory `name` of `dir`, whose plaintext name is unknown: its IV cannot be
    /// derived, but in a v1 vault its own IV file may let its names be read.
    fn nameless_dir<'s>(&'s self, scope: &rayon::Scope<'s>, dir: &Arc<Dir>, name: &str) {
        let child = DirTask {
            place: Place::Child(dir.clone(), name.to_owned()),
            plain: None,
            parent_iv: None,
        };
        scope.spawn(move |scope| self.dir(scope, child));
    }

    /// Counts and checks entry `name` of `dir`, which is not a directory.
    fn leaf(&self, kind: FileKind, dir: &Dir, name: &str, plain: Option<PathBuf>) {
        self.tally.add(kind);
        self.check_contents(kind, dir, name, plain);
    }

    /// `name` as it is compared with the other names of its directory: lower-cased in a vault
    /// whose names ignore case.
    fn key(&self, name: &str) -> String {
        if self.vault.ignores_case() {
            name.to_ascii_lowercase()
        } else {
            name.to_owned()
        }
    }
}
