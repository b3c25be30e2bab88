//! Lending veilfs, as a directory's owner, the write and search permission on a directory its
//! owner may not write (`chmod -w`, Go's module cache) while it renames the directory's entries
//! (a move re-encrypting a subtree, a key rotation), so that the directory keeps its mode through
//! a crash too (format.md, "Lent permissions").
//!
//! The lend is recorded in the mode of the directory's IV file, durably, before the directory's
//! own mode changes, and the record goes only after the directory has its own mode back,
//! durably. A crash while lent thus leaves a directory with the record and every lent bit, and
//! the next pass through it (the move finished, the rotation run again) takes the lent bits away
//! before it does anything else. The IV file is the one file every directory has that veilfs may
//! change without writing the directory; its execute bits mean nothing and open no access.

use std::collections::HashMap;
use std::io;
use std::sync::Mutex;

use nix::fcntl::OFlag;
use nix::sys::stat::{fchmod, Mode};

use super::diriv::DIRIV_MODE;
use super::DIRIV_NAME;
use crate::backing::{mode_of, Dir, FileKind, Stat};
use crate::error::Result;

/// What a directory's owner needs to rename its entries: write and search.
const NEEDED: u32 = 0o300;
/// The IV file's bit recording a lent write permission (group execute).
const RECORD_WRITE: u32 = 0o010;
/// The IV file's bit recording a lent search permission (others' execute).
const RECORD_SEARCH: u32 = 0o001;

/// The bits of an IV file's mode that record lent permissions.
const RECORD_BITS: u32 = RECORD_WRITE | RECORD_SEARCH;

/// The record bits of an IV file whose `lstat` is `stat`: only a regular file records anything
/// (a symlink's mode, say, is not a record).
pub fn record_of(stat: &Stat) -> u32 {
    match FileKind::of(stat) {
        FileKind::File => mode_of(stat) & RECORD_BITS,
        _ => 0,
    }
}

/// The directory permissions the record bits of IV file mode `mode` say were lent.
fn lent_bits(mode: u32) -> u32 {
    let mut lent = 0;
    if mode & RECORD_WRITE != 0 {
        lent |= 0o200;
    }
    if mode & RECORD_SEARCH != 0 {
        lent |= 0o100;
    }
    lent
}

/// The IV file mode recording that directory permissions `lent` are lent.
fn record_bits(lent: u32) -> u32 {
    let mut bits = 0;
    if lent & 0o200 != 0 {
        bits |= RECORD_WRITE;
    }
    if lent & 0o100 != 0 {
        bits |= RECORD_SEARCH;
    }
    bits
}

/// The directory's own mode, given its current `mode` and the permissions its IV file records
/// as lent: a directory that still has every lent bit was lent them by a pass a crash
/// interrupted; one that lacks some had its mode given back (the record outlived it) or changed
/// since, and its mode is its own.
fn own_mode(mode: u32, lent: u32) -> u32 {
    if lent != 0 && mode & lent == lent {
        mode & !lent
    } else {
        mode
    }
}

/// The directories lent by this process, by device and inode number: a lend nested in another
/// of the same directory, or taken by another thread meanwhile, shares it, and the last to
/// finish gives the mode back.
static LENDS: Mutex<Option<HashMap<(libc::dev_t, libc::ino_t), Lend>>> = Mutex::new(None);

/// One directory's lend.
struct Lend {
    users: usize,
    /// The directory's own mode, which it gets back.
    own: u32,
    /// Whether the directory's mode is not its own now (lent, or left lent by a crash).
    changed: bool,
    /// Whether its IV file records a lend, to be removed once the mode is back.
    recorded: bool,
}

/// Runs `f`, which renames entries of `dir`, with `dir` writable and searchable by its owner,
/// which veilfs lends itself meanwhile when it owns the directory; a lend a crash left in `dir`
/// is taken back first.
pub fn with_write_permission<T>(dir: &Dir, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let stat = dir.stat_self()?;
    let key = (stat.st_dev, stat.st_ino);
    {
        let mut lends = LENDS.lock().unwrap_or_else(|e| e.into_inner());
        let lends = lends.get_or_insert_with(HashMap::new);
        match lends.get_mut(&key) {
            Some(lend) => lend.users += 1,
            None => {
                lends.insert(key, Lend::begin(dir, &stat)?);
            }
        }
    }
    let done = f();
    let mut lends = LENDS.lock().unwrap_or_else(|e| e.into_inner());
    let lends = lends.get_or_insert_with(HashMap::new);
    let lend = lends.get_mut(&key).expect("entered above");
    lend.users -= 1;
    if lend.users > 0 {
        return done;
    }
    let lend = lends.remove(&key).expect("looked at above");
    let ended = lend.end(dir);
    let value = done?;
    ended?;
    Ok(value)
}

impl Lend {
    /// Takes back what a crash left lent in `dir` (its `stat`), then lends what its owner lacks.
    fn begin(dir: &Dir, stat: &Stat) -> Result<Lend> {
        let mode = mode_of(stat) & 0o7777;
        if stat.st_uid != nix::unistd::geteuid().as_raw() {
            // Not ours to change: what the owner may do is what veilfs may.
            return Ok(Lend {
                users: 1,
                own: mode,
                changed: false,
                recorded: false,
            });
        }
        // No IV file to record it in (lost in a crash; fsck derives it again): the lend goes
        // unrecorded, as on a disk that loses the record.
        let (recorded, recordable) = match recorded_lend(dir) {
            Ok(lent) => (lent, true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => (0, false),
            Err(e) => return Err(e.into()),
        };
        let own = own_mode(mode, recorded);
        let lent = NEEDED & !own;
        if lent != 0 && lent != recorded && recordable {
            record_lend(dir, lent)?;
        }
        if own | lent != mode {
            dir.chmod_self(own | lent)?;
        }
        Ok(Lend {
            users: 1,
            own,
            changed: own != mode || lent != 0,
            recorded: recordable && (recorded != 0 || lent != 0),
        })
    }

    /// Gives `dir` its own mode back, durably, then removes the record.
    fn end(&self, dir: &Dir) -> Result<()> {
        if self.changed {
            dir.chmod_self(self.own)?;
            dir.sync()?;
        }
        if self.recorded {
            record_lend(dir, 0)?;
        }
        Ok(())
    }
}

/// The permissions the IV file of `dir` records as lent (none: 0).
fn recorded_lend(dir: &Dir) -> io::Result<u32> {
    Ok(lent_bits(record_of(&dir.stat(DIRIV_NAME)?)))
}

/// Records in the IV file of `dir`, durably, that permissions `lent` are lent (none: 0, the
/// record removed). Never follows a symlink nor blocks on a FIFO put in its place.
fn record_lend(dir: &Dir, lent: u32) -> io::Result<()> {
    let file = dir.open_file(DIRIV_NAME, OFlag::O_RDONLY, 0)?;
    fchmod(
        &file,
        Mode::from_bits_truncate((DIRIV_MODE | record_bits(lent)) as _),
    )?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::names::DirIv;
    use crate::layout::diriv;

    fn mode(dir: &Dir, name: Option<&str>) -> u32 {
        let stat = match name {
            Some(name) => dir.stat(name).unwrap(),
            None => dir.stat_self().unwrap(),
        };
        mode_of(&stat) & 0o7777
    }

    #[test]
    fn records_map_to_the_lent_bits_and_back() {
        for lent in [0, 0o100, 0o200, 0o300] {
            assert_eq!(lent_bits(DIRIV_MODE | record_bits(lent)), lent);
        }
        assert_eq!(lent_bits(DIRIV_MODE), 0);
        // A crash while lent: the lent bits go. A record the directory's mode does not match
        // (given back before the crash, or changed since): the mode is its own.
        assert_eq!(own_mode(0o755, 0o200), 0o555);
        assert_eq!(own_mode(0o755, 0o300), 0o455);
        assert_eq!(own_mode(0o555, 0o200), 0o555);
        assert_eq!(own_mode(0o655, 0o300), 0o655);
        assert_eq!(own_mode(0o755, 0), 0o755);
    }

    #[test]
    fn a_lend_is_recorded_while_it_lasts_and_a_crashed_one_is_taken_back() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Dir::open_root(tmp.path()).unwrap();
        root.mkdir("locked", 0o755).unwrap();
        let dir = root.open_dir("locked").unwrap();
        diriv::write(&dir, &DirIv([3; 16])).unwrap();
        dir.chmod_self(0o555).unwrap();

        with_write_permission(&dir, || {
            assert_eq!(mode(&dir, None), 0o755);
            assert_eq!(mode(&dir, Some(DIRIV_NAME)), DIRIV_MODE | RECORD_WRITE);
            // Nested: shared, and still lent after the inner one ends.
            with_write_permission(&dir, || Ok(()))?;
            assert_eq!(mode(&dir, None), 0o755);
            Ok(())
        })
        .unwrap();
        assert_eq!(mode(&dir, None), 0o555);
        assert_eq!(mode(&dir, Some(DIRIV_NAME)), DIRIV_MODE);

        // What a crash while lent leaves: the next lend gives the directory its own mode back.
        record_lend(&dir, 0o200).unwrap();
        dir.chmod_self(0o755).unwrap();
        with_write_permission(&dir, || Ok(())).unwrap();
        assert_eq!(mode(&dir, None), 0o555);
        assert_eq!(mode(&dir, Some(DIRIV_NAME)), DIRIV_MODE);

        // A record outliving the lend changes nothing but goes.
        record_lend(&dir, 0o200).unwrap();
        dir.chmod_self(0o555).unwrap();
        with_write_permission(&dir, || Ok(())).unwrap();
        assert_eq!(mode(&dir, None), 0o555);
        assert_eq!(mode(&dir, Some(DIRIV_NAME)), DIRIV_MODE);
        dir.chmod_self(0o755).unwrap();
    }
}
