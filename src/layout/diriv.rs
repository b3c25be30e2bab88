//! Reading and writing `veilfs.diriv`, the 16-byte IV of a backing directory.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::DIRIV_NAME;
use crate::crypto::names::{DirIv, DIR_IV_LEN};
use crate::error::{Error, Result};

pub fn read(dir: &Path) -> Result<DirIv> {
    let path = dir.join(DIRIV_NAME);
    let mut iv = [0; DIR_IV_LEN];
    // Upper-cased by a case-insensitive sync target and brought back to a case-sensitive disk.
    let mut file = File::open(&path)
        .or_else(|_| File::open(dir.join(DIRIV_NAME.to_ascii_uppercase())))
        .map_err(|_| Error::DirIv(path.clone()))?;
    let mut extra = [0; 1];
    if file.read_exact(&mut iv).is_err() || file.read(&mut extra).map_or(true, |n| n != 0) {
        return Err(Error::DirIv(path));
    }
    Ok(DirIv(iv))
}

/// Writes the IV of a directory that has just been created. Not fsynced: a diriv lost in a crash
/// is derived again by `fsck --repair`, since IVs are deterministic.
pub fn write(dir: &Path, iv: &DirIv) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o400)
        .open(dir.join(DIRIV_NAME))?;
    file.write_all(&iv.0)?;
    Ok(())
}

/// Makes a directory's IV file durable. Needed before the directory is renamed: after that,
/// fsck could no longer re-derive a lost IV from the directory's (new) name.
pub fn sync(dir: &Path) -> Result<()> {
    File::open(dir.join(DIRIV_NAME))?.sync_all()?;
    File::open(dir)?.sync_all()?;
    Ok(())
}
