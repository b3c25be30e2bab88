//! Reading and writing `veilfs.diriv`, the 16-byte IV of a backing directory. All diriv I/O goes
//! through here.

use std::io;

use super::{DIRIV_NAME, DIRIV_TMP_NAME};
use crate::backing::{Dir, Size};
use crate::crypto::names::{DirIv, DIR_IV_LEN};
use crate::error::{Error, Result};

/// The mode of every IV file: read-only, and writable by nobody, since it never changes.
pub const DIRIV_MODE: u32 = 0o400;

/// Reads the IV of `dir`: a regular file of exactly 16 bytes; anything else (missing, a FIFO, a
/// symlink, another size) is [`Error::DirIv`] naming the file and what is wrong with it.
pub fn read(dir: &Dir) -> Result<DirIv> {
    let bytes = match dir.read_small(DIRIV_NAME, Size::Exactly(DIR_IV_LEN as u64)) {
        // Upper-cased by a case-insensitive sync target and brought back to a case-sensitive disk.
        Err(e) if e.kind() == io::ErrorKind::NotFound => dir
            .read_small(
                DIRIV_NAME.to_ascii_uppercase(),
                Size::Exactly(DIR_IV_LEN as u64),
            )
            .map_err(|_| e),
        result => result,
    };
    let bytes = bytes.map_err(|e| Error::DirIv(dir.display_path(DIRIV_NAME), why(&e)))?;
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

/// [`write`], made durable before returning: for repairs.
pub fn write_durable(dir: &Dir, iv: &DirIv) -> Result<()> {
    dir.write_new(DIRIV_NAME, &iv.0, DIRIV_MODE, true)?;
    dir.sync()?;
    Ok(())
}

/// Replaces the IV of `dir` with `iv` atomically (a temporary file renamed over the old one), for
/// a directory whose path changed: a crash leaves the old IV file or the new one, never none.
/// Unless `durable`, the new file's contents are not fsynced before the rename, and a power
/// loss may leave it empty: the caller syncs the directory once all of its names are done.
pub fn replace(dir: &Dir, iv: &DirIv, durable: bool) -> Result<()> {
    dir.unlink_if_present(DIRIV_TMP_NAME)?;
    dir.write_new(DIRIV_TMP_NAME, &iv.0, DIRIV_MODE, durable)?;
    dir.rename(
        DIRIV_TMP_NAME,
        dir,
        DIRIV_NAME,
        crate::backing::RenameMode::Replace,
    )?;
    Ok(())
}
