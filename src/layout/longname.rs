//! Names whose encoding is longer than the vault's threshold: stored as
//! `veilfs.longname.<base64url(SHA-256(encoded))>` plus a sidecar `<that>.name` holding the
//! encoded name.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;

use data_encoding::BASE64URL_NOPAD;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

pub const LONGNAME_PREFIX: &str = "veilfs.longname.";
pub const SIDECAR_SUFFIX: &str = ".name";

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
    /// never exists without one). Replaces a stale sidecar of the same hash.
    pub fn write_sidecar(&self, dir: &Path) -> Result<()> {
        if let BackingName::Long { hashed, encoded } = self {
            let path = dir.join(sidecar_name(hashed));
            let mut file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(path)?;
            file.write_all(encoded.as_bytes())?;
        }
        Ok(())
    }

    /// Removes the sidecar of a long name whose entry is gone.
    pub fn remove_sidecar(&self, dir: &Path) -> Result<()> {
        if let Some(sidecar) = self.sidecar() {
            match fs::remove_file(dir.join(sidecar)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
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
pub fn read_sidecar(dir: &Path, hashed: &str) -> Result<String> {
    read_sidecar_file(&dir.join(sidecar_name(hashed)), hashed, false)
}

/// [`read_sidecar`] for a vault on a case-insensitive target (base32): the entry's and the
/// sidecar's names may have had their case changed, so the sidecar is also looked for as
/// `<ENTRY>.NAME`, `<entry>.name` and `<ENTRY>.NAME`, and the hash compared ignoring case. A
/// base64url SHA-256 folded to one case keeps more than 220 bits, so this matches nothing else.
pub fn read_sidecar_ignoring_case(dir: &Path, hashed: &str) -> Result<String> {
    let mut names = vec![
        sidecar_name(hashed),
        format!("{hashed}{}", SIDECAR_SUFFIX.to_ascii_uppercase()),
        sidecar_name(&hashed.to_ascii_lowercase()),
        sidecar_name(hashed).to_ascii_uppercase(),
    ];
    names.dedup();
    let mut last = Error::Sidecar(sidecar_name(hashed));
    for name in names {
        match read_sidecar_file(&dir.join(name), hashed, true) {
            Ok(encoded) => return Ok(encoded),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Reads a sidecar (or a sync tool's copy of one) at `path` and checks it belongs to `hashed`.
pub fn read_sidecar_file(path: &Path, hashed: &str, ignore_case: bool) -> Result<String> {
    let bad = || Error::Sidecar(sidecar_name(hashed));
    // Sidecars are at most a few hundred bytes; refuse to read something huge.
    let file = fs::File::open(path).map_err(|_| bad())?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(file, 4096), &mut bytes)
        .map_err(|_| bad())?;
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
        let dir = tempfile::tempdir().unwrap();
        let name = BackingName::new("x".repeat(300), 220);
        assert!(name.entry().starts_with(LONGNAME_PREFIX));
        assert!(name.entry().len() < 100);
        name.write_sidecar(dir.path()).unwrap();
        assert_eq!(
            read_sidecar(dir.path(), name.entry()).unwrap(),
            "x".repeat(300)
        );
        fs::write(dir.path().join(name.sidecar().unwrap()), "y").unwrap();
        assert!(matches!(
            read_sidecar(dir.path(), name.entry()),
            Err(Error::Sidecar(_))
        ));
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
