//! Crash-point enumeration (docs/reliability.md, "Crash consistency").
//!
//! A workload runs through veilfs mounted on the [`recorder`], which logs every change that
//! reaches the backing directory. [`states`] turns that log into the backing directories a crash
//! could leave: after every prefix of the log (every crash point), the state a killed process
//! leaves (every change made, the kernel keeps them) and the states a power loss may leave under
//! the model below; [`Checker`] rebuilds each from a snapshot taken before the workload and
//! checks it: fsck, fsck --repair when needed, a mount that reads every file, the files the
//! workload fsynced, and that repairing lost nothing.
//!
//! The power-loss model (bounded on purpose):
//! - metadata operations (create, mkdir, rename, link, unlink, chmod, truncate, ...) reach the
//!   disk in the order they were made: a prefix of them survives, as with ext4's journal;
//! - data written to a file survives only when an fsync of that file followed; writes not yet
//!   synced are lost (all of them, in every file), or all but the last file's are kept, or the
//!   last file keeps only its first, middle or all-but-last unsynced writes;
//! - a single write is never torn.

pub mod log;
pub mod recorder;
pub mod rotation;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::Duration;

use serde_json::Value;
use veilfs::backing::Dir;

use crate::common::{is_mounted, run, unmount_all, veilfs, xattr};
use log::{apply, Event, Mark, Op};

/// Which crash a state stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// The daemon (or `veilfs passwd`) killed: every change made so far is there.
    Process,
    /// Power lost: unsynced data lost in every file.
    PowerAll,
    /// Power lost: unsynced data lost in the last file written only.
    PowerLastFile,
    /// Power lost: the last file written keeps its first N unsynced writes, the others none.
    PowerPartial(usize),
}

/// One backing directory to check: the snapshot plus the log's operations `ops` (indices into
/// the events), for a crash after the first `point` operations.
pub struct CrashState {
    pub point: usize,
    /// Events before the crash (operations and the workload's marks).
    pub events: usize,
    pub kind: Kind,
    pub ops: Vec<usize>,
}

/// Every crash state of `events`, without duplicates (where nothing was unsynced, a power loss
/// leaves what a killed process does).
pub fn states(events: &[Event]) -> Vec<CrashState> {
    let mut states = Vec::new();
    let mut seen = HashSet::new();
    let mut point = 0;
    for end in 0..=events.len() {
        if end > 0 && !matches!(events[end - 1], Event::Op(_)) {
            continue;
        }
        if end > 0 {
            point += 1;
        }
        let ops: Vec<usize> = (0..end)
            .filter(|&i| matches!(events[i], Event::Op(_)))
            .collect();
        // Data operations not followed by an fsync of their file before the crash.
        let mut synced = HashSet::new();
        let mut unsynced = Vec::new();
        for &i in ops.iter().rev() {
            let Event::Op(op) = &events[i] else { continue };
            if let Op::Fsync { ino, .. } = op {
                synced.insert(*ino);
            }
            if let Some(ino) = op.data_ino() {
                if !synced.contains(&ino) {
                    unsynced.push((i, ino));
                }
            }
        }
        unsynced.reverse();
        let mut candidates = vec![(Kind::Process, Vec::new())];
        if let Some(&(_, last)) = unsynced.last() {
            candidates.push((Kind::PowerAll, unsynced.iter().map(|u| u.0).collect()));
            let of_last: Vec<usize> = unsynced
                .iter()
                .filter(|u| u.1 == last)
                .map(|u| u.0)
                .collect();
            candidates.push((Kind::PowerLastFile, of_last.clone()));
            let others: Vec<usize> = unsynced
                .iter()
                .filter(|u| u.1 != last)
                .map(|u| u.0)
                .collect();
            let m = of_last.len();
            for kept in [1, m / 2, m.saturating_sub(1)] {
                if kept == 0 || kept >= m {
                    continue;
                }
                let mut dropped = others.clone();
                dropped.extend_from_slice(&of_last[kept..]);
                candidates.push((Kind::PowerPartial(kept), dropped));
            }
        }
        for (kind, dropped) in candidates {
            let dropped: HashSet<usize> = dropped.into_iter().collect();
            let applied: Vec<usize> = ops
                .iter()
                .copied()
                .filter(|i| !dropped.contains(i))
                .collect();
            if seen.insert(applied.clone()) {
                states.push(CrashState {
                    point,
                    events: end,
                    kind,
                    ops: applied,
                });
            }
        }
    }
    states
}

/// The files the workload fsynced before the first `events` events, and not changed since: id
/// → (the plaintext paths one of which holds it, its contents).
pub fn expectations(events: &[Event]) -> BTreeMap<String, (Vec<PathBuf>, Vec<u8>)> {
    let mut expected = BTreeMap::new();
    for event in events {
        match event {
            Event::Mark(Mark::Expect {
                id,
                paths,
                contents,
            }) => {
                expected.insert(id.clone(), (paths.clone(), contents.clone()));
            }
            Event::Mark(Mark::Forget { id }) => {
                expected.remove(id);
            }
            Event::Op(_) => {}
        }
    }
    expected
}

/// Copies the tree at `from` to `to` (which must not exist): directories, files with their
/// modes, symlinks, user xattrs, and hard links as hard links (a vault's backing directory
/// has them).
pub fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    copy_tree_linked(from, to, &mut HashMap::new())
}

/// [`copy_tree`], with `copied` the first copy of each inode met so far.
fn copy_tree_linked(from: &Path, to: &Path, copied: &mut HashMap<u64, PathBuf>) -> io::Result<()> {
    fs::create_dir(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        let target = to.join(entry.file_name());
        if meta.is_dir() {
            copy_tree_linked(&entry.path(), &target, copied)?;
        } else if meta.file_type().is_symlink() {
            symlink(fs::read_link(entry.path())?, &target)?;
        } else if meta.is_file() {
            if let Some(first) = copied.get(&meta.ino()) {
                fs::hard_link(first, &target)?;
                continue;
            }
            fs::copy(entry.path(), &target)?;
            copy_xattrs(&entry.path(), &target)?;
            if meta.nlink() > 1 {
                copied.insert(meta.ino(), target);
            }
        }
    }
    copy_xattrs(from, to)?;
    let mode = fs::metadata(from)?.permissions().mode();
    fs::set_permissions(to, fs::Permissions::from_mode(mode))
}

fn copy_xattrs(from: &Path, to: &Path) -> io::Result<()> {
    for name in xattr::user_names(from)? {
        xattr::set(to, &name, &xattr::get(from, &name)?, 0)?;
    }
    Ok(())
}

/// Builds the backing directory of `state` at `to`: the snapshot, then its operations. Returns
/// [`inode_map`] of the copy to the snapshot.
pub fn build(
    snapshot: &Path,
    events: &[Event],
    state: &CrashState,
    to: &Path,
) -> io::Result<HashMap<u64, u64>> {
    copy_tree(snapshot, to)?;
    let inodes = inode_map(to, snapshot)?;
    let root = Dir::open_root(to)?;
    for &i in &state.ops {
        if let Event::Op(op) = &events[i] {
            apply(&root, op)
                .map_err(|e| io::Error::other(format!("replaying {}: {e}", op.describe())))?;
        }
    }
    Ok(inodes)
}

/// The inode number of every entry under `of` (a copy of `like`) to that of the same path
/// under `like`: a copy has new inodes, and [`recorder::Recorder::with_inodes`] shows it with
/// the original's.
pub fn inode_map(of: &Path, like: &Path) -> io::Result<HashMap<u64, u64>> {
    let mut map = HashMap::new();
    for entry in fs::read_dir(of)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        let same = like.join(entry.file_name());
        map.insert(meta.ino(), fs::symlink_metadata(&same)?.ino());
        if meta.is_dir() {
            map.extend(inode_map(&entry.path(), &same)?);
        }
    }
    Ok(map)
}

/// What a plaintext entry holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    Dir,
    File(Vec<u8>),
    Symlink(PathBuf),
    Other,
}

/// Every entry under `root` (a mount), and the entries that could not be read with why.
pub fn read_tree(root: &Path) -> (BTreeMap<PathBuf, Node>, Vec<String>) {
    let mut tree = BTreeMap::new();
    let mut errors = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(dir) = pending.pop() {
        let entries = match fs::read_dir(root.join(&dir)) {
            Ok(entries) => entries,
            Err(e) => {
                errors.push(format!("cannot list /{}: {e}", dir.display()));
                continue;
            }
        };
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    errors.push(format!("cannot list /{}: {e}", dir.display()));
                    break;
                }
            };
            let rel = dir.join(entry.file_name());
            let full = root.join(&rel);
            let node = match fs::symlink_metadata(&full) {
                Err(e) => Err(e),
                Ok(meta) if meta.is_dir() => {
                    pending.push(rel.clone());
                    Ok(Node::Dir)
                }
                Ok(meta) if meta.is_file() => fs::read(&full).map(Node::File),
                Ok(meta) if meta.file_type().is_symlink() => {
                    fs::read_link(&full).map(Node::Symlink)
                }
                Ok(_) => Ok(Node::Other),
            };
            match node {
                Ok(node) => {
                    tree.insert(rel, node);
                }
                Err(e) => errors.push(format!("cannot read /{}: {e}", rel.display())),
            }
        }
    }
    (tree, errors)
}

/// fsck findings that are not a problem left behind: a sidecar written just before the crash
/// for an entry never created is kept for a day (a sync tool may deliver the entry later).
const TOLERATED: &[&str] = &["sidecar_orphan"];

/// The result of checking one state; `T` is the plaintext tree it showed.
pub struct Verdict<T = BTreeMap<PathBuf, Node>> {
    pub failures: Vec<String>,
    /// fsck found problems and --repair repaired (some of) them.
    pub repaired: bool,
    /// The fsck problems that remain but are [`TOLERATED`].
    pub tolerated: Vec<String>,
    pub tree: T,
}

impl<T: Default> Default for Verdict<T> {
    fn default() -> Self {
        Verdict {
            failures: Vec::new(),
            repaired: false,
            tolerated: Vec::new(),
            tree: T::default(),
        }
    }
}

/// Checks backing directories with the veilfs binary.
pub struct Checker {
    /// Password files to try, in order (a crash during `veilfs passwd` leaves the old or the
    /// new password).
    pub passfiles: Vec<PathBuf>,
    pub mountpoint: PathBuf,
}

/// fsck's exit status and its JSON report.
fn fsck(passfile: &Path, dir: &Path, repair: bool) -> (Option<i32>, Option<Value>, String) {
    let mut cmd = veilfs();
    cmd.args(["fsck", "--json", "--passfile"]).arg(passfile);
    if repair {
        cmd.arg("--repair");
    }
    let output = run(cmd.arg(dir));
    let json = serde_json::from_slice(&output.stdout).ok();
    (
        output.status.code(),
        json,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The problems (not notes, not repaired) in a fsck JSON report, as (problem, one line).
fn problems(report: &Value) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for finding in report["findings"].as_array().into_iter().flatten() {
        let outcome = finding["outcome"].as_str().unwrap_or("");
        if outcome == "note" || outcome == "repaired" {
            continue;
        }
        let problem = finding["problem"].as_str().unwrap_or("?").to_owned();
        let line = format!(
            "{problem} at {} ({}): {}",
            finding["plain"].as_str().unwrap_or("?"),
            finding["backing"].as_str().unwrap_or("?"),
            finding["detail"].as_str().unwrap_or("")
        );
        found.push((problem, line));
    }
    found
}

impl Checker {
    fn mount(&self, passfile: &Path, dir: &Path, read_only: bool) -> Result<(), String> {
        let mut cmd = veilfs();
        cmd.arg("mount").arg("--passfile").arg(passfile);
        if read_only {
            cmd.args(["-o", "ro"]);
        }
        let output = run(cmd.arg(dir).arg(&self.mountpoint));
        if output.status.success() && is_mounted(&self.mountpoint) {
            Ok(())
        } else {
            Err(format!(
                "mount failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    }

    fn unmount(&self) {
        for _ in 0..50 {
            let output = run(veilfs().arg("umount").arg(&self.mountpoint));
            if output.status.code() != Some(10) {
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
        unmount_all(&self.mountpoint);
    }

    /// The plaintext tree of `dir` through a mount (read-only if asked), or why not.
    fn tree(
        &self,
        passfile: &Path,
        dir: &Path,
        read_only: bool,
        failures: &mut Vec<String>,
    ) -> Option<BTreeMap<PathBuf, Node>> {
        if let Err(e) = self.mount(passfile, dir, read_only) {
            failures.push(e);
            return None;
        }
        let (tree, errors) = read_tree(&self.mountpoint);
        self.unmount();
        failures.extend(errors);
        Some(tree)
    }

    /// Checks the backing directory `dir` against the workload's promises `expected`.
    pub fn check(
        &self,
        dir: &Path,
        expected: &BTreeMap<String, (Vec<PathBuf>, Vec<u8>)>,
    ) -> Verdict {
        let mut verdict = Verdict::default();
        let failures = &mut verdict.failures;
        // The password that opens it: veilfs exits 6 for a wrong one.
        let mut found = None;
        for passfile in &self.passfiles {
            let (code, json, stderr) = fsck(passfile, dir, false);
            if code != Some(6) {
                found = Some((passfile, code, json, stderr));
                break;
            }
        }
        let Some((passfile, code, json, stderr)) = found else {
            failures.push("no password opens the vault (fsck exits 6 for each)".into());
            return verdict;
        };
        let mut before_repair = None;
        match (code, json) {
            (Some(0), _) => {}
            (Some(11), Some(_)) => {
                // What the vault shows before any repair: repairing must not lose it. (What
                // cannot be read before the repair is what fsck is there for.)
                before_repair = self.tree(passfile, dir, true, &mut Vec::new());
                let (code, json, stderr) = fsck(passfile, dir, true);
                verdict.repaired = true;
                let Some(report) = json else {
                    failures.push(format!("fsck --repair: exit {code:?}, no report: {stderr}"));
                    return verdict;
                };
                let left = problems(&report);
                // The exit status says whether problems remain (docs: 0 or 11).
                let expected_code = if left.is_empty() { 0 } else { 11 };
                if code != Some(expected_code) {
                    failures.push(format!(
                        "fsck --repair: exit {code:?} with {} problems left: {stderr}",
                        left.len()
                    ));
                }
                let left_lines: Vec<String> = left.iter().map(|(_, line)| line.clone()).collect();
                for (problem, line) in left {
                    if TOLERATED.contains(&problem.as_str()) {
                        verdict.tolerated.push(line);
                    } else {
                        failures.push(format!("fsck --repair left: {line}"));
                    }
                }
                // What it says it repaired must stay repaired: a second look finds nothing it
                // did not already report as left.
                let (_, json, _) = fsck(passfile, dir, false);
                for (_, line) in json.as_ref().map(problems).unwrap_or_default() {
                    if !left_lines.contains(&line) {
                        failures.push(format!("fsck after --repair finds again: {line}"));
                    }
                }
            }
            (code, _) => {
                failures.push(format!("fsck: exit {code:?}: {}", stderr.trim()));
                return verdict;
            }
        }
        let Some(tree) = self.tree(passfile, dir, false, failures) else {
            return verdict;
        };
        for (id, (paths, contents)) in expected {
            let intact = paths
                .iter()
                .any(|p| tree.get(p) == Some(&Node::File(contents.clone())));
            if !intact {
                let found: Vec<String> = paths
                    .iter()
                    .map(|p| match tree.get(p) {
                        None => format!("{}: missing", p.display()),
                        Some(Node::File(c)) => {
                            format!("{}: {} bytes, differ", p.display(), c.len())
                        }
                        Some(other) => format!("{}: {other:?}", p.display()),
                    })
                    .collect();
                failures.push(format!(
                    "fsynced file {id} not intact: {}",
                    found.join("; ")
                ));
            }
        }
        if let Some(before) = before_repair {
            for (path, node) in &before {
                if tree.get(path) != Some(node) {
                    failures.push(format!(
                        "fsck --repair lost /{} (readable before the repair)",
                        path.display()
                    ));
                }
            }
        }
        verdict.tree = tree;
        verdict
    }
}

/// The counts a run reports.
#[derive(Default, Debug)]
pub struct Summary {
    pub crash_points: usize,
    pub states: usize,
    pub by_kind: BTreeMap<String, usize>,
    pub repaired: usize,
    pub tolerated: usize,
    /// States that failed at least one check.
    pub failed: usize,
    /// Failure message → the states that showed it, as "point N (kind) after OPERATION".
    pub failures: BTreeMap<String, Vec<String>>,
}

/// Checks every crash state of `events` with `check` (given the state's backing directory, the
/// events before its crash and its [`inode_map`] to the snapshot), with `snapshot` the backing
/// directory before them; `work` is scratch space. `progress` is told after each state. Also
/// returns the verdict's tree of the last crash point's process state: the replay of the whole
/// log.
pub fn check_all<T>(
    snapshot: &Path,
    events: &[Event],
    mut check: impl FnMut(&Path, &[Event], HashMap<u64, u64>) -> Verdict<T>,
    work: &Path,
    mut progress: impl FnMut(usize, usize),
) -> (Summary, Option<T>) {
    let all = states(events);
    let mut summary = Summary {
        crash_points: all.iter().map(|s| s.point).max().map_or(0, |p| p + 1),
        states: all.len(),
        ..Summary::default()
    };
    let mut final_tree = None;
    let last_point = summary.crash_points.saturating_sub(1);
    for (n, state) in all.iter().enumerate() {
        *summary.by_kind.entry(kind_name(state.kind)).or_default() += 1;
        let dir = work.join(format!("state-{n}"));
        let last_op = state
            .events
            .checked_sub(1)
            .map_or("(none)".to_owned(), |i| match &events[i] {
                Event::Op(op) => op.describe(),
                Event::Mark(_) => unreachable!("a crash point follows an operation"),
            });
        let place = format!("point {} ({:?}) after {last_op}", state.point, state.kind);
        match build(snapshot, events, state, &dir) {
            Err(e) => {
                summary.failed += 1;
                summary
                    .failures
                    .entry(format!("cannot build the state: {e}"))
                    .or_default()
                    .push(place);
            }
            Ok(inodes) => {
                let verdict = check(&dir, &events[..state.events], inodes);
                summary.repaired += usize::from(verdict.repaired);
                summary.tolerated += usize::from(!verdict.tolerated.is_empty());
                summary.failed += usize::from(!verdict.failures.is_empty());
                for failure in verdict.failures {
                    summary
                        .failures
                        .entry(failure)
                        .or_default()
                        .push(place.clone());
                }
                if state.point == last_point && state.kind == Kind::Process {
                    final_tree = Some(verdict.tree);
                }
            }
        }
        let _ = fs::remove_dir_all(&dir);
        progress(n + 1, all.len());
    }
    (summary, final_tree)
}

fn kind_name(kind: Kind) -> String {
    match kind {
        Kind::Process => "process".into(),
        Kind::PowerAll => "power, unsynced data lost".into(),
        Kind::PowerLastFile => "power, last file's unsynced data lost".into(),
        Kind::PowerPartial(_) => "power, last file's unsynced data partly kept".into(),
    }
}

/// Runs `cmd`, panicking with its output unless it succeeded.
pub fn must(cmd: &mut Command, what: &str) {
    let output = run(cmd);
    crate::common::assert_success(&output, what);
}
