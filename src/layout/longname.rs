//! Names whose encoding is longer than the vault's threshold: stored as
//! `veilfs.longname.<base64url(SHA-256(encoded))>` plus a sidecar `<that>.name` holding the
//! encoded name.

use std::io;

use data_encoding::BASE64URL_NOPAD;
use sha2::{Digest, Sha256};

use crate::backing::{Dir, Size};
use crate::error::{Error, Result};

pub const LONGNAME_PREFIX: &str = "veilfs.longname.";
pub const SIDECAR_SUFFIX: &str = ".name";
/// The mode of every sidecar: its name never changes, but a stale one is replaced.
pub const SIDECAR_MODE: u32 = 0o644;
/// A sidecar holds one encoded name: at most 362 characters for a 255-byte name in base64url,
/// 436 in base32. Anything longer is not a sidecar and is not read.
pub const SIDECAR_MAX: u64 = 4096;

/// Where an encoded name lives in its backing directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackingName {
    /// The encoded name is the entry name.
    Short(String),
    /// The entry is `hashed`; its sidecar holds `encoded`.
    Long { hashed: String, encoded: String },
}

impl BackingName {
    pub fn new(encoded: String, longname_max: usize) -> Self {
        if encoded.len() <= longname_max {
            BackingName::Short(encoded)
        } else {
            BackingName::Long {
                hashed: hashed_name(&encoded),
                encoded,
            }
        }
    }

    /// The entry's name in the backing directory.
    pub fn entry(&self) -> &str {
        match self {
            BackingName::Short(name) => name,
            BackingName::Long { hashed, .. } => hashed,
        }
    }

    pub fn encoded(&self) -> &str {
        match self {
            BackingName::Short(name) => name,
            BackingName::Long { encoded, .. } => encoded,
        }
    }

    pub fn sidecar(&self) -> Option<String> {
        match self {
            BackingName::Short(_) => None,
            BackingName::Long { hashed, .. } => Some(sidecar_name(hashed)),
        }
    }

    /// Writes the sidecar of a long name into `dir` (before its entry is created, so an entry
    /// never exists without one), durably: its entry's creation or rename may reach the disk
    /// before the sidecar's contents would (ext4's delayed allocation), and an entry whose
    /// sidecar is empty has lost its name for good (the hash cannot be inverted). A sidecar that
    /// already holds this name is kept; a stale one of the same hash (or a planted file that is
    /// not a sidecar) is replaced. A write that fails (a full disk) leaves no sidecar behind.
    pub fn write_sidecar(&self, dir: &Dir) -> Result<()> {
        let BackingName::Long { hashed, encoded } = self else {
            return Ok(());
        };
        let name = sidecar_name(hashed);
        match dir.write_new(&name, encoded.as_bytes(), SIDECAR_MODE, true) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if read_sidecar(dir, hashed).is_ok_and(|found| found == *encoded) {
                    return Ok(());
                }
                dir.unlink(&name)?;
                dir.write_new(&name, encoded.as_bytes(), SIDECAR_MODE, true)?;
            }
            result => result?,
        }
        Ok(())
    }

    /// Removes the sidecar of a long name whose entry is gone (removed or renamed), once that
    /// is durable: were the sidecar's removal to reach the disk first, a crash could leave the
    /// entry without the sidecar that holds its name.
    pub fn remove_sidecar(&self, dir: &Dir) -> Result<()> {
        if let Some(sidecar) = self.sidecar() {
            dir.sync()?;
            dir.unlink_if_present(sidecar)?;
        }
        Ok(())
    }
}

pub fn hashed_name(encoded: &str) -> String {
    format!(
        "{LONGNAME_PREFIX}{}",
        BASE64URL_NOPAD.encode(&Sha256::digest(encoded.as_bytes()))
    )
}

pub fn sidecar_name(hashed: &str) -> String {
    format!("{hashed}{SIDECAR_SUFFIX}")
}

/// Reads the encoded name of long-name entry `hashed` in `dir`, checking it matches the hash.
pub fn read_sidecar(dir: &Dir, hashed: &str) -> Result<String> {
    read_sidecar_file(dir, &sidecar_name(hashed), hashed, false)
}

/// [`read_sidecar`] for a vault on a case-insensitive target (base32): the entry's and the
/// sidecar's names may have had their case changed, so the sidecar is also looked for as
/// `<ENTRY>.NAME`, `<entry>.name` and `<ENTRY>.NAME`, and the hash compared ignoring case. A
/// base64url SHA-256 folded to one case keeps more than 220 bits, so this matches nothing else.
pub fn read_sidecar_ignoring_case(dir: &Dir, hashed: &str) -> Result<String> {
    let mut names = vec![
        sidecar_name(hashed),
        format!("{hashed}{}", SIDECAR_SUFFIX.to_ascii_uppercase()),
        sidecar_name(&hashed.to_ascii_lowercase()),
        sidecar_name(hashed).to_ascii_uppercase(),
    ];
    names.dedup();
    let mut last = Error::Sidecar(sidecar_name(hashed));
    for name in names {
        match read_sidecar_file(dir, &name, hashed, true) {
            Ok(encoded) => return Ok(encoded),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Reads sidecar `name` of `dir` (or a sync tool's copy of one) and checks it belongs to
/// `hashed`. Only a regular file of at most [`SIDECAR_MAX`] bytes is read: a FIFO, a symlink or
/// a huge file planted under a sidecar's name is refused without blocking.
pub fn read_sidecar_file(dir: &Dir, name: &str, hashed: &str, ignore_case: bool) -> Result<String> {
    let bad = || Error::Sidecar(sidecar_name(hashed));
    let bytes = dir
        .read_small(name, Size::AtMost(SIDECAR_MAX))
        .map_err(|e| match e.kind() {
            io::ErrorKind::InvalidData => {
                tracing::warn!("not reading sidecar: {e}");
                bad()
            }
            _ => bad(),
        })?;
    let encoded = String::from_utf8(bytes).map_err(|_| bad())?;
    if !hash_matches(hashed, &encoded, ignore_case) {
        return Err(bad());
    }
    Ok(encoded)
}

/// Whether long-name entry `hashed` is the hash of `encoded`.
pub fn hash_matches(hashed: &str, encoded: &str, ignore_case: bool) -> bool {
    let expected = hashed_name(encoded);
    if ignore_case {
        expected.eq_ignore_ascii_case(hashed)
    } else {
        expected == hashed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_round_trip_through_their_sidecar() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open_root(tmp.path()).unwrap();
        let name = BackingName::new("x".repeat(300), 220);
        assert!(name.entry().starts_with(LONGNAME_PREFIX));
        assert!(name.entry().len() < 100);
        name.write_sidecar(&dir).unwrap();
        assert_eq!(read_sidecar(&dir, name.entry()).unwrap(), "x".repeat(300));
        let sidecar = tmp.path().join(name.sidecar().unwrap());
        std::fs::set_permissions(
            &sidecar,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        std::fs::write(&sidecar, "y").unwrap();
        assert!(matches!(
            read_sidecar(&dir, name.entry()),
            Err(Error::Sidecar(_))
        ));
        // A stale sidecar is replaced, with the fixed mode.
        name.write_sidecar(&dir).unwrap();
        assert_eq!(read_sidecar(&dir, name.entry()).unwrap(), "x".repeat(300));
        assert_eq!(
            dir.stat(name.sidecar().unwrap()).unwrap().st_mode & 0o7777,
            SIDECAR_MODE
        );
    }

    #[test]
    fn threshold_is_inclusive() {
        assert_eq!(
            BackingName::new("a".repeat(220), 220),
            BackingName::Short("a".repeat(220))
        );
        assert!(matches!(
            BackingName::new("a".repeat(221), 220),
            BackingName::Long { .. }
        ));
    }
}
