//! What fsck reports: the kinds of problem, a finding and its outcome, the counts of entries
//! checked and the report of a whole run; and how the walk records a finding, doing its repair
//! when repairing or leaving it planned (`--plan`) otherwise.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use super::Walk;
use crate::backing::FileKind;

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

/// One thing [`super::check`] found.
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

/// The result of [`super::check`].
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

/// [`Counts`] as the walk's threads add to them.
#[derive(Default)]
pub(super) struct Tally {
    dirs: AtomicU64,
    files: AtomicU64,
    symlinks: AtomicU64,
    other: AtomicU64,
    ignored: AtomicU64,
}

impl Tally {
    /// Counts one entry of `kind`.
    pub(super) fn add(&self, kind: FileKind) {
        let counter = match kind {
            FileKind::Dir => &self.dirs,
            FileKind::File => &self.files,
            FileKind::Symlink => &self.symlinks,
            _ => &self.other,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one sync tool's file.
    pub(super) fn add_ignored(&self) {
        self.ignored.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn into_counts(self) -> Counts {
        Counts {
            dirs: self.dirs.into_inner(),
            files: self.files.into_inner(),
            symlinks: self.symlinks.into_inner(),
            other: self.other.into_inner(),
            ignored: self.ignored.into_inner(),
        }
    }
}

impl Walk<'_> {
    /// Records a problem that no safe repair fixes.
    pub(super) fn report(
        &self,
        problem: Problem,
        path: &Path,
        plain: Option<PathBuf>,
        detail: impl Into<String>,
    ) {
        self.push(problem, path, plain, detail, None, Outcome::Unrepairable);
    }

    /// Records something worth knowing that is not a problem.
    pub(super) fn note(
        &self,
        problem: Problem,
        path: &Path,
        plain: Option<PathBuf>,
        detail: impl Into<String>,
    ) {
        self.push(problem, path, plain, detail, None, Outcome::Note);
    }

    /// Records a problem with a safe repair, doing it when repairing; returns whether it was
    /// done.
    pub(super) fn repairable(
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
            backing: path
                .strip_prefix(self.vault.root_path())
                .unwrap_or(path)
                .to_path_buf(),
            plain,
            detail: detail.into(),
            repair,
            outcome,
        };
        self.findings.lock().unwrap().push(finding);
    }
}
