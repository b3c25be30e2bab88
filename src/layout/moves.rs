//! Reading and writing `veilfs.move`, the sealed record of a directory rename in progress
//! ([`crate::crypto::records::MoveRecord`]; format-v2.md, "Unique directory IVs"). It lives in
//! the moved directory, so it travels with it.

use std::io;

use super::MOVE_NAME;
use crate::backing::{Dir, Size};
use crate::crypto::records::MOVE_RECORD_LEN;
use crate::error::Result;

/// Read-only, like an IV file: only veilfs writes one, once.
const MOVE_MODE: u32 = 0o400;

/// The sealed record in `dir`, `None` when there is none. A file of another size or type is an
/// error naming it (never opened if not a regular file).
pub fn read(dir: &Dir) -> Result<Option<Vec<u8>>> {
    match dir.read_small(MOVE_NAME, Size::Exactly(MOVE_RECORD_LEN as u64)) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Writes `sealed` into `dir`, durably, before the first name of the move changes. Fails if a
/// record is already there: one move at a time per directory.
pub fn write(dir: &Dir, sealed: &[u8]) -> Result<()> {
    dir.write_new(MOVE_NAME, sealed, MOVE_MODE, true)?;
    dir.sync()?;
    Ok(())
}

/// Removes the record of `dir`, durably: the last step of a move, after every name is durable.
pub fn remove(dir: &Dir) -> Result<()> {
    dir.unlink_if_present(MOVE_NAME)?;
    dir.sync()?;
    Ok(())
}
