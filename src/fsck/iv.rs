//! Which IV a directory's names are read under, and its IV files checked against it.
//!
//! Only an IV fsck can authenticate is ever acted on: the one the directory's path derives, an
//! authenticated move record's, and in a v1 vault ([`IvPolicy::Stored`]) the one its
//! `veilfs.diriv` holds, which is what the mount shows this directory's names under. A sync
//! tool's copy of the IV file (or anything planted under such a name) is never adopted: names
//! under it are reported and left alone.

use std::io;
use std::path::PathBuf;

use super::{not_a_file, DirTask, Item, Problem, Walk};
use crate::backing::{Dir, FileKind};
use crate::crypto::names::DirIv;
use crate::error::Error;
use crate::layout::{conflict, diriv, DIRIV_NAME};
use crate::vault::{is_canonical_reserved, BackingEntry, IvPolicy};

/// Names tried when checking that a directory IV fits its directory.
const VERIFY_NAMES: usize = 8;

/// An IV other than the directory's under which some of its names may be encrypted.
#[derive(Clone, Copy, Debug)]
pub(super) struct OtherIv {
    pub(super) iv: DirIv,
    /// Authenticated: names under it are re-encrypted under the directory's.
    pub(super) trusted: bool,
    /// Where it was found, for messages.
    pub(super) source: &'static str,
}

/// What a directory's IV file holds.
enum StoredIv {
    /// There is no file named `veilfs.diriv`, in any case.
    Missing,
    /// There is one, but it holds no IV: what is wrong with it (its size, its type).
    Unusable(String),
    /// The IV it holds.
    Holds(DirIv),
}

/// A directory's IV file: under its own name if it has it, else re-cased.
struct IvFile<'i> {
    item: Option<&'i Item>,
    stored: StoredIv,
}

impl<'i> IvFile<'i> {
    fn find(dir: &Dir, items: &'i [Item]) -> Self {
        let item = items.iter().find(|i| i.name == DIRIV_NAME).or_else(|| {
            items
                .iter()
                .find(|i| i.name.eq_ignore_ascii_case(DIRIV_NAME))
        });
        let stored = match item.map(|item| read_iv(dir, item)) {
            None => StoredIv::Missing,
            Some(Err(why)) => StoredIv::Unusable(why),
            Some(Ok(iv)) => StoredIv::Holds(iv),
        };
        Self { item, stored }
    }

    /// Its name; `veilfs.diriv` when there is none.
    fn name(&self) -> &str {
        self.item.map_or(DIRIV_NAME, |item| &item.name)
    }

    /// Where findings about it are: the file, or the directory when there is none.
    fn path(&self, dir: &Dir) -> PathBuf {
        self.item.map_or_else(
            || dir.path().to_path_buf(),
            |item| dir.display_path(&item.name),
        )
    }

    /// What a finding says of it when its IV is not used: what is wrong with it, or for one
    /// that holds an IV, that there is nothing to check it against.
    fn problem(&self) -> (Problem, &str) {
        match &self.stored {
            StoredIv::Missing => (Problem::DirIvMissing, "no veilfs.diriv"),
            StoredIv::Unusable(why) => (Problem::DirIvCorrupt, why),
            StoredIv::Holds(_) => (Problem::DirIvCorrupt, "its IV file cannot be checked"),
        }
    }
}

/// A directory whose IV is being decided.
struct IvCheck<'a> {
    dir: &'a Dir,
    plain: &'a Option<PathBuf>,
    file: IvFile<'a>,
    /// A few names to try IVs on: an IV fits when one of them decrypts with it (or is a conflict
    /// copy of one that does).
    samples: Vec<&'a str>,
    /// The IV the directory's path derives; `None` below an undecodable name.
    derived: Option<DirIv>,
    /// The old IV of an authenticated rename of the directory still unfinished.
    moved_from: Option<DirIv>,
}

impl Walk<'_> {
    /// The IV to read this directory's names with, and other IVs under which some of its names
    /// may be encrypted; `None` when it cannot be known. Reports and repairs the IV file and
    /// sync tools' copies of it.
    pub(super) fn dir_iv(
        &self,
        dir: &Dir,
        task: &DirTask,
        derived: Option<DirIv>,
        moved_from: Option<DirIv>,
        items: &[Item],
    ) -> Option<(DirIv, Vec<OtherIv>)> {
        let copies = self.iv_copies(dir, items);
        let samples = items
            .iter()
            .map(|item| item.name.as_str())
            .filter(|name| !is_canonical_reserved(name) && !conflict::is_sync_tool_file(name))
            .filter(|name| !copies.iter().any(|(copy, _)| copy == name))
            .take(VERIFY_NAMES * 4)
            .collect();
        let check = IvCheck {
            dir,
            plain: &task.plain,
            file: IvFile::find(dir, items),
            samples,
            derived,
            moved_from,
        };
        let (chosen, stored_other) = self.choose_iv(&check)?;
        let mut others: Vec<OtherIv> = stored_other.into_iter().collect();
        if let Some(old) = moved_from.filter(|old| *old != chosen) {
            others.push(OtherIv {
                iv: old,
                trusted: true,
                source: "an interrupted rename",
            });
        }
        self.recased_iv_file(&check, chosen);
        others.extend(self.check_iv_copies(&check, copies, chosen));
        Some((chosen, others))
    }

    /// Sync tools' copies of the IV file in `items` (and anything planted under such a name),
    /// with what each holds.
    fn iv_copies(&self, dir: &Dir, items: &[Item]) -> Vec<(String, Result<DirIv, String>)> {
        let encoding = self.vault.names().encoding();
        items
            .iter()
            .filter(|item| {
                !is_canonical_reserved(&item.name)
                    && !item.name.eq_ignore_ascii_case(DIRIV_NAME)
                    && conflict::candidates(&item.name, encoding)
                        .contains(&conflict::Candidate::DirIv)
            })
            .map(|item| (item.name.clone(), read_iv(dir, item)))
            .collect()
    }

    /// Whether some name of the directory decrypts under `iv`.
    fn fits(&self, check: &IvCheck, iv: &DirIv) -> bool {
        check.samples.iter().any(|name| {
            matches!(
                self.vault.classify_entry(check.dir, iv, name),
                BackingEntry::Name(_) | BackingEntry::ConflictCopy { .. }
            )
        })
    }

    /// The IV to read the directory's names with, and the one its IV file holds when some of
    /// them may be under that other IV; `None` when no IV can be known.
    fn choose_iv(&self, check: &IvCheck) -> Option<(DirIv, Option<OtherIv>)> {
        let policy = self.vault.iv_policy();
        match (check.derived, &check.file.stored) {
            // Below an undecodable name, in a v1 vault: the file is all there is.
            (None, StoredIv::Holds(stored)) if policy == IvPolicy::Stored => Some((*stored, None)),
            (None, _) => {
                let (problem, what) = check.file.problem();
                self.report(
                    problem,
                    &check.file.path(check.dir),
                    check.plain.clone(),
                    format!(
                        "{what}; the directory's own name is undecodable (reported), so its IV \
                         cannot be derived: its names cannot be read"
                    ),
                );
                None
            }
            (Some(derived), StoredIv::Holds(stored)) if policy == IvPolicy::Derived => {
                Some((derived, self.stored_not_derived(check, *stored, derived)))
            }
            (Some(derived), StoredIv::Holds(stored)) => {
                Some(self.stored_or_derived(check, *stored, derived))
            }
            (Some(derived), _) => self.iv_file_lost(check, derived).map(|iv| (iv, None)),
        }
    }

    /// A v2 vault's IV file that holds `stored`: rewritten with the `derived` IV unless some
    /// names decrypt under it (they were not encrypted for this directory, so they stay hidden:
    /// the IV is returned as an untrusted other one).
    fn stored_not_derived(
        &self,
        check: &IvCheck,
        stored: DirIv,
        derived: DirIv,
    ) -> Option<OtherIv> {
        if stored == derived {
            return None;
        }
        if !self.fits(check, &stored) || check.moved_from == Some(stored) {
            self.write_derived(
                check,
                Problem::DirIvCorrupt,
                "does not match the IV its path derives; no name decrypts with it",
                derived,
            );
            return None;
        }
        self.report(
            Problem::DirIvCorrupt,
            &check.file.path(check.dir),
            check.plain.clone(),
            "does not match the IV its path derives, and some names decrypt with it: they were \
             not encrypted for this directory (planted, or moved by someone without the key), so \
             they stay hidden and are listed one by one; fsck --repair rewrites this file once \
             none are left",
        );
        Some(OtherIv {
            iv: stored,
            trusted: false,
            source: "veilfs.diriv",
        })
    }

    /// A v1 vault's IV file that holds `stored`, which the mount shows the names under: kept,
    /// unless names decrypt under the `derived` IV, which it then hid.
    fn stored_or_derived(
        &self,
        check: &IvCheck,
        stored: DirIv,
        derived: DirIv,
    ) -> (DirIv, Option<OtherIv>) {
        if stored == derived || !self.fits(check, &derived) {
            return (stored, None);
        }
        // Names of this path hidden by a replaced IV file: they come back, and the names a v1
        // mount showed under the replaced IV stay, under the right one.
        self.write_derived(
            check,
            Problem::DirIvCorrupt,
            "differs from the IV its path derives, under which names decrypt: they were hidden",
            derived,
        );
        let other = self.fits(check, &stored).then_some(OtherIv {
            iv: stored,
            trusted: true,
            source: "the replaced veilfs.diriv",
        });
        (derived, other)
    }

    /// An IV file missing or holding no IV: written again with the `derived` IV when the
    /// directory is empty, a name decrypts with it or the vault derives its IVs; otherwise the
    /// names cannot be read.
    fn iv_file_lost(&self, check: &IvCheck, derived: DirIv) -> Option<DirIv> {
        let (problem, why) = check.file.problem();
        if check.samples.is_empty()
            || self.fits(check, &derived)
            || self.vault.iv_policy() == IvPolicy::Derived
        {
            self.write_derived(check, problem, why, derived);
            return Some(derived);
        }
        self.report(
            problem,
            &check.file.path(check.dir),
            check.plain.clone(),
            format!(
                "{why}; no name in the directory decrypts with the IV its path derives (a \
                 directory renamed by an older veilfs): its names cannot be read. Restore \
                 veilfs.diriv from another device or a backup"
            ),
        );
        None
    }

    /// Reports the IV file, repaired by writing the `derived` IV in its place.
    fn write_derived(&self, check: &IvCheck, problem: Problem, detail: &str, derived: DirIv) {
        self.repairable(
            problem,
            &check.file.path(check.dir),
            check.plain.clone(),
            detail,
            "write veilfs.diriv with the IV its path derives",
            || diriv::rewrite(check.dir, check.file.name(), &derived),
        );
    }

    /// An IV file holding the `chosen` IV whose name a case-insensitive sync target changed,
    /// back on a case-sensitive disk.
    fn recased_iv_file(&self, check: &IvCheck, chosen: DirIv) {
        let Some(item) = check.file.item else { return };
        if item.name == DIRIV_NAME
            || !matches!(check.file.stored, StoredIv::Holds(iv) if iv == chosen)
        {
            return;
        }
        self.repairable(
            Problem::Recased,
            &check.dir.display_path(&item.name),
            check.plain.clone(),
            "the directory IV file was renamed",
            "rename it to veilfs.diriv",
            || diriv::restore_name(check.dir, &item.name),
        );
    }

    /// Sync tools' `copies` of the IV file: redundant ones go. A copy holding the IV the path
    /// derives is authenticated by the path; any other is not (anyone can plant a file named
    /// like a copy, holding the IV of another directory whose names would then be moved here).
    /// Returns the IVs of the other copies.
    fn check_iv_copies(
        &self,
        check: &IvCheck,
        copies: Vec<(String, Result<DirIv, String>)>,
        chosen: DirIv,
    ) -> Vec<OtherIv> {
        let mut others = Vec::new();
        for (name, iv) in copies {
            let copy = check.dir.display_path(&name);
            let plain = check.plain.clone();
            match iv {
                Ok(iv) if iv == chosen => {
                    self.repairable(
                        Problem::DirIvCopy,
                        &copy,
                        plain,
                        "same IV as veilfs.diriv",
                        "remove it",
                        || Ok(check.dir.unlink(&name)?),
                    );
                }
                Ok(iv) => {
                    let trusted = check.derived == Some(iv);
                    others.push(OtherIv {
                        iv,
                        trusted,
                        source: "a copy of veilfs.diriv",
                    });
                    let detail = if trusted {
                        "holds the IV this directory's path derives; names under it are \
                         re-encrypted under the directory's IV; remove this file once none are \
                         left"
                    } else {
                        "holds an IV that is not this directory's: names under it are reported \
                         and never re-encrypted (it may have been planted); remove this file \
                         once you have looked at them"
                    };
                    self.report(Problem::DirIvCopy, &copy, plain, detail);
                }
                Err(why) => self.report(Problem::DirIvCopy, &copy, plain, why),
            }
        }
        others
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
    diriv::read_named(dir, &item.name).map_err(|e| match e.kind() {
        io::ErrorKind::InvalidData => format!("not {} bytes", crate::crypto::names::DIR_IV_LEN),
        _ => e.to_string(),
    })
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
}
