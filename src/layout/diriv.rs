//! Reading and writing `veilfs.diriv`, the 16-byte IV of a backing directory. All diriv I/O goes
//! through here.

use std::io;

use super::{lend, DIRIV_NAME, DIRIV_TMP_NAME};
use crate::backing::{Dir, RenameMode, Size};
use crate::crypto::names::{DirIv, DIR_IV_LEN};
use crate::error::{Error, Result};

/// The mode of every IV file: read-only, and writable by nobody, since it never changes. (While
/// its directory is lent a permission, execute bits record it: [`super::lend`].)
pub const DIRIV_MODE: u32 = 0o400;

/// Reads the IV of `dir`: a regular file of exactly 16 bytes; anything else (missing, a FIFO, a
/// symlink, another size) is [`Error::DirIv`] naming the file and what is wrong with it.
pub fn read(dir: &Dir) -> Result<DirIv> {
    match read_named(dir, DIRIV_NAME) {
        // Upper-cased by a case-insensitive sync target and brought back to a case-sensitive disk.
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            read_named(dir, &DIRIV_NAME.to_ascii_uppercase()).map_err(|_| e)
        }
        result => result,
    }
    .map_err(|e| Error::DirIv(dir.display_path(DIRIV_NAME), why(&e)))
}

/// The IV in file `name` of `dir` (`veilfs.diriv`, a sync tool's copy of it, or a re-cased one):
/// a regular file of exactly 16 bytes, checked before a byte is read.
pub fn read_named(dir: &Dir, name: &str) -> io::Result<DirIv> {
    let bytes = dir.read_small(name, Size::Exactly(DIR_IV_LEN as u64))?;
    let mut iv = [0; DIR_IV_LEN];
    iv.copy_from_slice(&bytes);
    Ok(DirIv(iv))
}

/// What is wrong with an IV file, for [`Error::DirIv`].
fn why(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "missing".into(),
        // The message of a wrong type or size names the path already: keep only what it says.
        io::ErrorKind::InvalidData => e
            .to_string()
            .rsplit_once(" is ")
            .map_or_else(|| e.to_string(), |(_, what)| what.to_owned()),
        _ => e.to_string(),
    }
}

/// Writes the IV of a directory that has just been created, read-only. Not fsynced: a diriv lost
/// in a crash is derived again by `fsck --repair`, since IVs are deterministic. A write that
/// fails (a full disk) leaves no file behind.
pub fn write(dir: &Dir, iv: &DirIv) -> Result<()> {
    dir.write_new(DIRIV_NAME, &iv.0, DIRIV_MODE, false)?;
    Ok(())
}

/// Writes the IV of `dir` atomically and durably, for a vault's root at `init` and for repairs:
/// see [`rewrite`], here over `veilfs.diriv` itself.
pub fn write_durable(dir: &Dir, iv: &DirIv) -> Result<()> {
    rewrite(dir, DIRIV_NAME, iv)
}

/// Writes the IV of `dir` in place of `existing`: `veilfs.diriv`, or an IV file whose name a
/// case-insensitive sync target re-cased, which then takes its own name back. Whatever is there
/// (a corrupt file, a FIFO or symlink a peer planted, nothing at all) is replaced atomically by
/// a temporary file fsynced and renamed over it, and the directory is fsynced: a crash leaves
/// the old file or the new one, never none or an empty one. A directory under that name is never
/// replaced: the write fails and leaves nothing behind.
pub fn rewrite(dir: &Dir, existing: &str, iv: &DirIv) -> Result<()> {
    put(dir, existing, iv, true)?;
    if existing != DIRIV_NAME {
        // Replace: on a case-insensitive disk both names are the same file, which this leaves.
        dir.rename(existing, dir, DIRIV_NAME, RenameMode::Replace)?;
    }
    dir.sync()?;
    Ok(())
}

/// Gives back its name to `recased`, an IV file whose name a case-insensitive sync target
/// re-cased (its contents are right). Never replaces a `veilfs.diriv`.
pub fn restore_name(dir: &Dir, recased: &str) -> Result<()> {
    dir.rename(recased, dir, DIRIV_NAME, RenameMode::NoReplace)?;
    Ok(())
}

/// Replaces the IV of `dir` with `iv` atomically (a temporary file renamed over the old one), for
/// a directory whose path changed: a crash leaves the old IV file or the new one, never none.
/// Unless `durable`, the new file's contents are not fsynced before the rename, and a power
/// loss may leave it empty: the caller syncs the directory once all of its names are done.
pub fn replace(dir: &Dir, iv: &DirIv, durable: bool) -> Result<()> {
    put(dir, DIRIV_NAME, iv, durable)
}

/// Writes `iv` into a temporary file (`durable`: fsynced) and renames it over `target`. A rename
/// that fails removes the temporary file again. A lend the old file records (a directory's IV
/// replaced while lent: [`super::lend`]) is recorded in the new one.
fn put(dir: &Dir, target: &str, iv: &DirIv, durable: bool) -> Result<()> {
    let record = dir.stat(target).map_or(0, |stat| lend::record_of(&stat));
    dir.unlink_if_present(DIRIV_TMP_NAME)?;
    dir.write_new(DIRIV_TMP_NAME, &iv.0, DIRIV_MODE | record, durable)?;
    if let Err(e) = dir.rename(DIRIV_TMP_NAME, dir, target, RenameMode::Replace) {
        let _ = dir.unlink(DIRIV_TMP_NAME);
        return Err(e.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::stat::Mode;

    #[test]
    fn a_corrupt_or_planted_iv_file_is_rewritten_but_never_a_directory() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(DIRIV_NAME), [1; 3]).unwrap();
        let dir = Dir::open_root(tmp.path()).unwrap();
        rewrite(&dir, DIRIV_NAME, &DirIv([7; 16])).unwrap();
        assert_eq!(read(&dir).unwrap(), DirIv([7; 16]));
        assert!(!dir.exists(DIRIV_TMP_NAME));

        let upper = tempfile::tempdir().unwrap();
        std::fs::write(upper.path().join("VEILFS.DIRIV"), [1; 3]).unwrap();
        let dir = Dir::open_root(upper.path()).unwrap();
        rewrite(&dir, "VEILFS.DIRIV", &DirIv([7; 16])).unwrap();
        assert!(!dir.exists("VEILFS.DIRIV"));
        assert_eq!(read(&dir).unwrap(), DirIv([7; 16]));

        // A FIFO in its place goes; a directory stays, and the write fails.
        let planted = tempfile::tempdir().unwrap();
        nix::unistd::mkfifo(
            &planted.path().join(DIRIV_NAME),
            Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        let dir = Dir::open_root(planted.path()).unwrap();
        write_durable(&dir, &DirIv([7; 16])).unwrap();
        assert_eq!(read(&dir).unwrap(), DirIv([7; 16]));
        let planted = tempfile::tempdir().unwrap();
        std::fs::create_dir(planted.path().join(DIRIV_NAME)).unwrap();
        std::fs::write(planted.path().join(DIRIV_NAME).join("data"), b"kept").unwrap();
        let dir = Dir::open_root(planted.path()).unwrap();
        assert!(write_durable(&dir, &DirIv([7; 16])).is_err());
        assert_eq!(
            std::fs::read(planted.path().join(DIRIV_NAME).join("data")).unwrap(),
            b"kept"
        );
        assert!(!dir.exists(DIRIV_TMP_NAME));
    }

    #[test]
    fn a_missing_iv_file_is_written_read_only() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open_root(tmp.path()).unwrap();
        write_durable(&dir, &DirIv([3; 16])).unwrap();
        assert_eq!(read(&dir).unwrap(), DirIv([3; 16]));
        let mode = crate::backing::mode_of(&dir.stat(DIRIV_NAME).unwrap());
        assert_eq!(mode & 0o7777, DIRIV_MODE);
    }
}
