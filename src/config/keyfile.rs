//! Key files: a second factor (or, in format v2, a device's only secret) read whole and hashed.

use std::io;
use std::path::Path;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::backing;

/// Longest key file accepted: every byte counts, and a key file is read whole before anything
/// else happens, so a device or a huge file given by mistake is refused at once.
pub const MAX_KEYFILE_BYTES: u64 = 1024 * 1024;

/// What a key file contributes: SHA-256 of its bytes, used as the Argon2id secret input (with a
/// password) or as the Argon2id password (a v2 `keyfile` slot). Wiped from memory when dropped.
pub struct KeyfileSecret(Zeroizing<[u8; 32]>);

impl KeyfileSecret {
    /// The secret of a key file whose whole contents are `bytes`.
    pub fn from_contents(bytes: &[u8]) -> KeyfileSecret {
        let mut secret = Zeroizing::new([0u8; 32]);
        secret.copy_from_slice(Sha256::digest(bytes).as_slice());
        KeyfileSecret(secret)
    }

    /// Reads a key file whole (any bytes, at most [`MAX_KEYFILE_BYTES`]). Symlinks are followed
    /// (the user named the file), but a FIFO, a device, a directory or a larger file is refused
    /// at once, without blocking, with an error naming the file. An empty key file is an error:
    /// it would add nothing.
    pub fn read(path: &Path) -> io::Result<KeyfileSecret> {
        let bytes = Zeroizing::new(backing::read_user_file(path, MAX_KEYFILE_BYTES)?);
        if bytes.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the key file is empty",
            ));
        }
        Ok(KeyfileSecret::from_contents(&bytes))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for KeyfileSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyfileSecret(..)")
    }
}
