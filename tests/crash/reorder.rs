//! Crash states that reorder metadata between fsync barriers (docs/reliability.md, "Metadata
//! reordering"): which of a log's metadata operations a crash may have left out while keeping
//! later ones, and which an fsync made durable.
//!
//! The model: a metadata operation (everything but write and fallocate) is *pending* until a
//! barrier makes it durable; pending operations reach the disk in any order, except that
//! operations on one entry, or on an entry and what is under it, keep their order (see
//! [`conflict`]). A barrier is an fsync:
//! - of a directory: the operations that changed its entries or its own inode;
//! - of a file: the operations that changed its inode, and under [`Rule::Linux`] also those that
//!   wrote its name or the name of a directory above it;
//!
//! and with each operation it makes durable, every earlier one that must precede it.
//!
//! From that, "omit one": for every pending operation, the state where it (with the later
//! operations that depend on it, which cannot persist without it on any filesystem) is lost
//! while later independent ones persist, at two crash points: just after the first later
//! operation that persists (an adjacent swap), and just before the barrier that would have made
//! it durable, or the end of the log (everything in between persisted). Unsynced data is lost in
//! these states (a reordering is a power loss); its variants are the prefix states' business.

use std::collections::BTreeSet;

use super::log::{Event, Op, RelPath};

/// What an fsync of a file makes durable besides its data and inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// ext4, xfs and btrfs in practice: also the entries that name it and the directories above
    /// it (ext4 and xfs commit their log up to the fsync; btrfs logs a new file's names and its
    /// new parents).
    Linux,
    /// POSIX: nothing more; a name is durable only after an fsync of its directory.
    Posix,
}

impl Rule {
    /// `CRASH_RULE=posix` selects [`Rule::Posix`]; the default is [`Rule::Linux`].
    pub fn from_env() -> Rule {
        match std::env::var("CRASH_RULE").as_deref() {
            Ok("posix") => Rule::Posix,
            _ => Rule::Linux,
        }
    }
}

/// One reordered state: the events before its crash, and the operations (event indices) it
/// keeps.
pub struct Reordered {
    pub events: usize,
    pub ops: Vec<usize>,
    /// The pending operation left out.
    pub dropped: usize,
    /// How many later operations went with it.
    pub dependents: usize,
    /// The crash is just before the barrier that would have made `dropped` durable (or at the
    /// end of the log), not just after the next operation that persisted.
    pub to_barrier: bool,
}

/// The entries an operation changes and those it needs, as backing paths.
struct Touch<'a> {
    written: Vec<&'a RelPath>,
    used: Vec<&'a RelPath>,
    data: bool,
}

fn touch(op: &Op) -> Option<Touch<'_>> {
    let (written, used) = match op {
        Op::Create { path, .. }
        | Op::Mkdir { path, .. }
        | Op::Mknod { path, .. }
        | Op::Symlink { path, .. }
        | Op::Unlink { path }
        | Op::Rmdir { path } => (vec![path], vec![]),
        Op::Link { from, to } => (vec![to], vec![from]),
        Op::Rename { from, to, .. } => (vec![from, to], vec![]),
        Op::Truncate {
            path: Some(path), ..
        }
        | Op::Write {
            path: Some(path), ..
        }
        | Op::Fallocate {
            path: Some(path), ..
        }
        | Op::Chmod { path, .. }
        | Op::Chown { path, .. }
        | Op::SetXattr { path, .. }
        | Op::RemoveXattr { path, .. } => (vec![], vec![path]),
        Op::Truncate { path: None, .. }
        | Op::Write { path: None, .. }
        | Op::Fallocate { path: None, .. }
        | Op::Fsync { .. }
        | Op::FsyncDir { .. } => return None,
    };
    Some(Touch {
        written,
        used,
        data: op.data_ino().is_some(),
    })
}

/// `outer` is a directory above `inner`.
fn above(outer: &RelPath, inner: &RelPath) -> bool {
    inner.len() > outer.len() && inner.starts_with(outer)
}

/// Whether two operations must reach the disk in the order they were made: one writes an entry
/// the other touches or one above it, or both change one inode's metadata (an inode is written
/// whole). A write and a chmod of one file do not depend on each other.
fn conflict(a: &Touch, b: &Touch) -> bool {
    fn tagged<'t, 'a>(t: &'t Touch<'a>) -> impl Iterator<Item = (&'a RelPath, bool)> + 't {
        let written = t.written.iter().map(|&p| (p, true));
        written.chain(t.used.iter().map(|&p| (p, false)))
    }
    let both_metadata = !a.data && !b.data;
    tagged(a).any(|(p, p_written)| {
        tagged(b).any(|(q, q_written)| {
            (p == q && (p_written || q_written || both_metadata))
                || (p_written && above(p, q))
                || (q_written && above(q, p))
        })
    })
}

/// Whether the barrier `barrier` makes the metadata operation `op` durable by itself.
fn makes_durable(barrier: &Op, op: &Touch, rule: Rule) -> bool {
    let parent = |p: &RelPath| p[..p.len().saturating_sub(1)].to_vec();
    // Linux: the name of what is synced, and of the directories above it.
    let own_name = |path: &RelPath| {
        rule == Rule::Linux && op.written.iter().any(|p| *p == path || above(p, path))
    };
    match barrier {
        Op::FsyncDir { path } => {
            op.written
                .iter()
                .any(|p| !p.is_empty() && parent(p) == *path)
                || op.used.contains(&path)
                || own_name(path)
        }
        Op::Fsync {
            path: Some(path), ..
        } => op.used.contains(&path) || own_name(path),
        _ => false,
    }
}

/// Whether veilfs made the operation just after a syncfs(2), which FUSE does not pass on, so
/// the recorder cannot log it: the removal of a directory move's record (`Vault::finish_move`)
/// and of the link journal at the end of a key rotation's walk. On a local disk syncfs makes
/// everything before it durable, so the model puts a barrier of all there. (A move record is
/// also removed, without syncfs, when the rename it was for failed: nothing was renamed, so
/// nothing is left to order.)
fn after_syncfs(op: &Op) -> bool {
    matches!(op, Op::Unlink { path } if path.last().is_some_and(|name| {
        name == veilfs::layout::MOVE_NAME || name == veilfs::layout::REKEY_LINKS_NAME
    }))
}

/// The reordered states of `events` under `rule`.
pub fn states(events: &[Event], rule: Rule) -> Vec<Reordered> {
    let ops: Vec<(usize, &Op)> = events
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match e {
            Event::Op(op) => Some((i, op)),
            Event::Mark(_) => None,
        })
        .collect();
    let touches: Vec<Option<Touch>> = ops.iter().map(|(_, op)| touch(op)).collect();
    let metadata = |n: usize| touches[n].as_ref().is_some_and(|t| !t.data);
    // For each operation (by position in `ops`), the earlier metadata operations it depends on.
    let depends: Vec<Vec<usize>> = (0..ops.len())
        .map(|n| match &touches[n] {
            None => Vec::new(),
            Some(t) => (0..n)
                .filter(|&m| metadata(m) && conflict(touches[m].as_ref().unwrap(), t))
                .collect(),
        })
        .collect();
    // The position of the barrier that makes each operation durable (data: an fsync of its
    // file; metadata: see `makes_durable`, with what must precede it).
    let mut durable_at: Vec<Option<usize>> = vec![None; ops.len()];
    for (b, (_, barrier)) in ops.iter().enumerate() {
        if after_syncfs(barrier) {
            for durable in durable_at[..b].iter_mut().filter(|d| d.is_none()) {
                *durable = Some(b);
            }
            continue;
        }
        if !matches!(barrier, Op::Fsync { .. } | Op::FsyncDir { .. }) {
            continue;
        }
        let mut newly: Vec<usize> = (0..b)
            .filter(|&n| durable_at[n].is_none())
            .filter(|&n| match &touches[n] {
                Some(t) if t.data => matches!(barrier, Op::Fsync { ino, .. }
                    if ops[n].1.data_ino() == Some(*ino)),
                Some(t) => makes_durable(barrier, t, rule),
                None => false,
            })
            .collect();
        while let Some(n) = newly.pop() {
            if durable_at[n].is_some() {
                continue;
            }
            durable_at[n] = Some(b);
            // An entry made durable needs what precedes it; a file's data or inode made durable
            // does not need its name (POSIX: it may be durable and unreachable).
            if touches[n].as_ref().is_some_and(|t| !t.written.is_empty()) {
                newly.extend(depends[n].iter().filter(|&&m| durable_at[m].is_none()));
            }
        }
    }
    // The operations that depend on each, directly.
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); ops.len()];
    for (n, before) in depends.iter().enumerate() {
        for &m in before {
            dependents[m].push(n);
        }
    }

    let mut states = Vec::new();
    for j in (0..ops.len()).filter(|&n| metadata(n)) {
        // The last crash point before the barrier that makes `j` durable: after the operation
        // before that barrier; or the end of the log.
        let last = durable_at[j].unwrap_or(ops.len());
        // What is lost with `j` up to there: everything that depends on it, transitively.
        let mut lost = BTreeSet::from([j]);
        let mut queue = vec![j];
        while let Some(m) = queue.pop() {
            for &n in &dependents[m] {
                if n < last && lost.insert(n) {
                    queue.push(n);
                }
            }
        }
        let Some(first_kept) = (j + 1..last).find(|&n| metadata(n) && !lost.contains(&n)) else {
            // Nothing later persists without `j`: a prefix state, not a reordering.
            continue;
        };
        for (end, to_barrier) in [(first_kept + 1, false), (last, true)] {
            if to_barrier && end == first_kept + 1 {
                continue;
            }
            let kept: Vec<usize> = (0..end)
                .filter(|&n| !lost.contains(&n))
                .filter(|&n| match &touches[n] {
                    Some(t) if t.data => durable_at[n].is_some_and(|b| b < end),
                    _ => true,
                })
                .map(|n| ops[n].0)
                .collect();
            states.push(Reordered {
                events: ops[end - 1].0 + 1,
                ops: kept,
                dropped: ops[j].0,
                dependents: lost.iter().filter(|&&n| n < end).count() - 1,
                to_barrier,
            });
        }
    }
    states
}
