//! A directory rename a crash interrupted: the move record (`veilfs.move`) a directory may hold,
//! finished, removed or reported.

use super::{DirTask, Problem, Walk};
use crate::backing::{Dir, FileKind};
use crate::crypto::names::DirIv;
use crate::layout::MOVE_NAME;

impl Walk<'_> {
    /// A move record in `dir` (a directory rename a crash interrupted): one that authenticates
    /// and names the IV the directory's path derives is finished by `--repair` (the walk then
    /// reads the directory as it is after); any other is reported and ignored. Returns the old
    /// IV of a move that is still unfinished.
    pub(super) fn interrupted_move(
        &self,
        dir: &Dir,
        task: &DirTask,
        derived: Option<DirIv>,
    ) -> Option<DirIv> {
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
        if derived != Some(record.new) {
            if derived.is_some_and(|d| self.vault.move_never_started(dir, &record, &d)) {
                self.repairable(
                    Problem::MoveRecord,
                    &path,
                    task.plain.clone(),
                    "a directory rename was interrupted before the directory moved (the record \
                     authenticates): nothing was renamed",
                    "remove the record",
                    || crate::layout::moves::remove(dir),
                );
            } else {
                self.report(
                    Problem::MoveRecord,
                    &path,
                    task.plain.clone(),
                    "authenticates, but is the record of a rename to another path (copied \
                     here?); ignored: remove it",
                );
            }
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
}
