//! Reverse mode's deterministic choices (format.md, "Reverse mode"): the file ID of a plaintext
//! file and the nonce of a symlink, where a forward writer draws random bytes. Each is
//! `HMAC(reverse key, ...)[0..16]` over inputs that stay the same while the plaintext does, so
//! an unchanged tree gives the same view on every mount and every machine.

use crate::crypto::content::FILE_ID_LEN;
use crate::crypto::keys::{hmac_sha256, ReverseKey};

/// A plaintext file's modification time, as `stat` gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Mtime {
    pub secs: i64,
    pub nanos: u32,
}

impl Mtime {
    fn to_bytes(self) -> [u8; 12] {
        let mut out = [0; 12];
        out[..8].copy_from_slice(&self.secs.to_be_bytes());
        out[8..].copy_from_slice(&self.nanos.to_be_bytes());
        out
    }
}

/// `HMAC(key, parts...)[0..16]`.
fn truncated_mac(key: &ReverseKey, parts: &[&[u8]]) -> [u8; FILE_ID_LEN] {
    let mac = hmac_sha256(key.as_bytes(), parts);
    let mut out = [0; FILE_ID_LEN];
    out.copy_from_slice(&mac[..FILE_ID_LEN]);
    out
}

/// The ID of a file of at least 16 bytes with one link: its path (names from the view's root
/// joined by `/`; no name holds NUL, so the 0x00 after it ends it), size and mtime.
pub fn file_id(key: &ReverseKey, path: &[u8], size: u64, mtime: Mtime) -> [u8; FILE_ID_LEN] {
    truncated_mac(
        key,
        &[b"file", path, &[0], &size.to_be_bytes(), &mtime.to_bytes()],
    )
}

/// The ID of a hard-linked file of at least 16 bytes: the same through every name, so from its
/// contents' SHA-256 instead of a path.
pub fn linked_file_id(
    key: &ReverseKey,
    contents_sha256: &[u8; 32],
    size: u64,
    mtime: Mtime,
) -> [u8; FILE_ID_LEN] {
    truncated_mac(
        key,
        &[
            b"linked file",
            contents_sha256,
            &size.to_be_bytes(),
            &mtime.to_bytes(),
        ],
    )
}

/// The ID of a file of 1..15 bytes, whose keystream must never encrypt two contents: it covers
/// the contents themselves, and the path when the file has one link (`path` is `None` for a
/// hard-linked one).
pub fn short_file_id(key: &ReverseKey, path: Option<&[u8]>, contents: &[u8]) -> [u8; FILE_ID_LEN] {
    match path {
        Some(path) => truncated_mac(key, &[b"short file", path, &[0], contents]),
        None => truncated_mac(key, &[b"linked short file", contents]),
    }
}

/// The nonce of the symlink at `path` pointing to `target`.
pub fn symlink_nonce(key: &ReverseKey, path: &[u8], target: &[u8]) -> [u8; 16] {
    truncated_mac(key, &[b"symlink", path, &[0], target])
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    // Expected values computed from format.md's formulas with Python's hmac module.
    fn key() -> ReverseKey {
        let mut bytes = [0; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = 0x20 + i as u8;
        }
        ReverseKey::from_bytes(bytes)
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    const MTIME: Mtime = Mtime {
        secs: 1_700_000_000,
        nanos: 123_456_789,
    };

    #[test]
    fn file_ids_follow_the_format() {
        assert_eq!(
            hex(&file_id(&key(), b"docs/report.txt", 5000, MTIME)),
            "69df6491baff2431a278e6919ec6cd32"
        );
        let hash: [u8; 32] = Sha256::digest(b"linked contents").into();
        assert_eq!(
            hex(&linked_file_id(&key(), &hash, 5000, MTIME)),
            "69cf1a0b9dbbadfcf1f2dc665575b762"
        );
        assert_eq!(
            hex(&short_file_id(&key(), Some(b"a/b"), b"hello")),
            "3a34a763fdb726fd5f1c3b4d514c47ed"
        );
        assert_eq!(
            hex(&short_file_id(&key(), None, b"hello")),
            "4cf4e09220eb5cc2d5ac4dc5285957b4"
        );
        let before_1970 = Mtime { secs: -5, nanos: 0 };
        assert_eq!(
            hex(&file_id(&key(), b"x", 16, before_1970)),
            "be457a79a35941ef4ec47cbc78051a2a"
        );
    }

    #[test]
    fn symlink_nonces_follow_the_format() {
        assert_eq!(
            hex(&symlink_nonce(&key(), b"a/link", b"../target")),
            "789aa164f38612b22a605b750d04aabe"
        );
    }

    #[test]
    fn every_input_counts() {
        let base = file_id(&key(), b"a", 100, MTIME);
        assert_ne!(base, file_id(&key(), b"b", 100, MTIME));
        assert_ne!(base, file_id(&key(), b"a", 101, MTIME));
        let later = Mtime {
            nanos: MTIME.nanos + 1,
            ..MTIME
        };
        assert_ne!(base, file_id(&key(), b"a", 100, later));
        assert_ne!(
            short_file_id(&key(), Some(b"a"), b"x"),
            short_file_id(&key(), Some(b"a"), b"y")
        );
    }
}
