//! Deterministic name encryption with AES-256-SIV, directory IVs, and the SIV-sealed small values
//! (symlink targets, xattr names and values) of format v1 ("Names", "Symlinks", "Extended
//! attributes" in format.md).

use aes_siv::siv::Aes256Siv;
use aes_siv::KeyInit;
use data_encoding::{Encoding, BASE32_NOPAD, BASE64URL_NOPAD};
use serde::{Deserialize, Serialize};

use super::keys::{hmac_sha256, DirIvKey, NameKey};
use super::random_bytes;
use crate::error::{Error, Result};

/// Longest plaintext name the kernel hands us (NAME_MAX on Linux and macOS).
pub const NAME_MAX: usize = 255;
pub const DIR_IV_LEN: usize = 16;
/// Longest symlink target that still encrypts into a backing target of at most 4095 bytes.
pub const SYMLINK_TARGET_MAX: usize = 4095 * 6 / 8 - 2 * SIV_OVERHEAD;

const SIV_OVERHEAD: usize = 16;
const NONCE_LEN: usize = 16;
const AD_SYMLINK: &[u8] = b"veilfs v1 symlink";
const AD_XATTR_NAME: &[u8] = b"veilfs v1 xattr name";
const AD_XATTR_VALUE: &[u8] = b"veilfs v1 xattr value";

/// How encrypted names are written as backing file names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum NameEncoding {
    /// Unpadded URL-safe base64: shortest names, for case-sensitive storage (the default).
    #[value(name = "base64")]
    #[serde(rename = "base64url")]
    Base64Url,
    /// Unpadded lowercase base32: for case-insensitive sync targets.
    Base32,
}

impl NameEncoding {
    /// The name in configs and messages.
    pub fn name(self) -> &'static str {
        match self {
            NameEncoding::Base64Url => "base64url",
            NameEncoding::Base32 => "base32",
        }
    }

    fn encode(self, bytes: &[u8]) -> String {
        match self {
            NameEncoding::Base64Url => BASE64URL_NOPAD.encode(bytes),
            NameEncoding::Base32 => BASE32_NOPAD.encode(bytes).to_ascii_lowercase(),
        }
    }

    fn decode(self, text: &str) -> Result<Vec<u8>> {
        match self {
            NameEncoding::Base64Url => decode_with(&BASE64URL_NOPAD, text.as_bytes(), "base64url"),
            // Case-insensitive, so a vault whose names were upper-cased by a round trip still reads.
            NameEncoding::Base32 => decode_with(
                &BASE32_NOPAD,
                text.to_ascii_uppercase().as_bytes(),
                "base32",
            ),
        }
    }

    /// Whether `c` can occur in an encoded name; conflict-copy parsing relies on '.' and ' ' not.
    pub fn is_alphabet_char(self, c: char) -> bool {
        match self {
            NameEncoding::Base64Url => c.is_ascii_alphanumeric() || c == '-' || c == '_',
            NameEncoding::Base32 => c.is_ascii_alphabetic() || ('2'..='7').contains(&c),
        }
    }
}

fn decode_with(encoding: &Encoding, text: &[u8], what: &'static str) -> Result<Vec<u8>> {
    encoding.decode(text).map_err(|_| Error::NameEncoding(what))
}

/// A directory's 16-byte IV, the associated data of every name in it (`veilfs.diriv`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DirIv(pub [u8; DIR_IV_LEN]);

impl DirIv {
    /// IV of the backing root: the derivation below applied to an all-zero parent and the
    /// empty name, an input no real directory can have.
    pub fn root(key: &DirIvKey) -> DirIv {
        DirIv::derive(key, &DirIv([0; DIR_IV_LEN]), b"")
    }

    /// IV of a new directory `name` inside the directory with IV `parent`: deterministic, so two
    /// devices creating the same directory offline write identical `veilfs.diriv` files.
    pub fn derive(key: &DirIvKey, parent: &DirIv, name: &[u8]) -> DirIv {
        let mac = hmac_sha256(key.as_bytes(), &[&parent.0, name]);
        let mut iv = [0; DIR_IV_LEN];
        iv.copy_from_slice(&mac[..DIR_IV_LEN]);
        DirIv(iv)
    }
}

/// Refuses names no directory entry may have; the kernel never sends them, but tools built on
/// the core (encrypt-path, fsck) might.
pub fn validate_name(name: &[u8]) -> Result<()> {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0)
    {
        return Err(Error::InvalidName);
    }
    if name.len() > NAME_MAX {
        return Err(Error::NameTooLong);
    }
    Ok(())
}

/// Plaintext length of a symlink whose backing target is `backing_len` bytes long: unpadded
/// base64url of nonce, SIV tag and target, so `3 * len / 4 - 32` exactly.
pub fn symlink_target_len(backing_len: u64) -> Option<u64> {
    (backing_len * 3 / 4).checked_sub((NONCE_LEN + SIV_OVERHEAD) as u64)
}

/// Encrypts and decrypts everything sealed with the name key.
#[derive(Clone, Debug)]
pub struct NameCipher {
    key: NameKey,
    encoding: NameEncoding,
}

impl NameCipher {
    pub fn new(key: NameKey, encoding: NameEncoding) -> Self {
        Self { key, encoding }
    }

    pub fn encoding(&self) -> NameEncoding {
        self.encoding
    }

    // `Siv` needs `&mut self`; a fresh instance per call costs two AES key schedules, cheaper
    // than a lock shared by every FUSE worker thread.
    fn siv(&self) -> Aes256Siv {
        Aes256Siv::new(self.key.as_bytes().into())
    }

    fn seal(&self, ad: &[&[u8]], plaintext: &[u8]) -> Vec<u8> {
        self.siv()
            .encrypt(ad, plaintext)
            .expect("SIV accepts any plaintext with at most 126 associated data items")
    }

    fn open(&self, ad: &[&[u8]], ciphertext: &[u8]) -> Result<Vec<u8>> {
        if ciphertext.len() < SIV_OVERHEAD {
            return Err(Error::NameAuth);
        }
        self.siv()
            .decrypt(ad, ciphertext)
            .map_err(|_| Error::NameAuth)
    }

    /// The encoded encryption of a plaintext name in the directory with IV `iv`.
    pub fn encrypt_name(&self, iv: &DirIv, name: &[u8]) -> Result<String> {
        validate_name(name)?;
        Ok(self.encoding.encode(&self.seal(&[&iv.0], name)))
    }

    /// The plaintext name of an encoded name; fails with a typed error for anything that is not
    /// the encryption of a valid name under this key and `iv`.
    pub fn decrypt_name(&self, iv: &DirIv, encoded: &str) -> Result<Vec<u8>> {
        let name = self.open(&[&iv.0], &self.encoding.decode(encoded)?)?;
        validate_name(&name).map_err(|_| Error::NameAuth)?;
        Ok(name)
    }

    /// Backing target of a symlink: base64url(nonce || SIV(ad = [label, nonce], target)).
    pub fn encrypt_symlink(&self, target: &[u8]) -> Result<String> {
        let mut nonce = [0; NONCE_LEN];
        random_bytes(&mut nonce);
        self.encrypt_symlink_with_nonce(target, nonce)
    }

    /// [`NameCipher::encrypt_symlink`] with a given nonce: for test vectors only.
    #[doc(hidden)]
    pub fn encrypt_symlink_with_nonce(
        &self,
        target: &[u8],
        nonce: [u8; NONCE_LEN],
    ) -> Result<String> {
        if target.len() > SYMLINK_TARGET_MAX {
            return Err(Error::TargetTooLong);
        }
        let mut sealed = nonce.to_vec();
        sealed.extend(self.seal(&[AD_SYMLINK, &nonce], target));
        Ok(BASE64URL_NOPAD.encode(&sealed))
    }

    pub fn decrypt_symlink(&self, backing_target: &[u8]) -> Result<Vec<u8>> {
        let sealed = decode_with(&BASE64URL_NOPAD, backing_target, "base64url")?;
        if sealed.len() < NONCE_LEN {
            return Err(Error::NameAuth);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        self.open(&[AD_SYMLINK, nonce], ciphertext)
    }

    /// Backing name of the xattr `user.<name>`: `user.` + base64url(SIV(ad = \[label\], name)).
    /// Deterministic, so getxattr finds it by name.
    pub fn encrypt_xattr_name(&self, name: &[u8]) -> String {
        BASE64URL_NOPAD.encode(&self.seal(&[AD_XATTR_NAME], name))
    }

    pub fn decrypt_xattr_name(&self, encoded: &str) -> Result<Vec<u8>> {
        self.open(
            &[AD_XATTR_NAME],
            &decode_with(&BASE64URL_NOPAD, encoded.as_bytes(), "base64url")?,
        )
    }

    /// Backing value of an xattr: nonce || SIV(ad = [label, nonce, encrypted name], value), so a
    /// value cannot be moved to another attribute unnoticed.
    pub fn encrypt_xattr_value(&self, encrypted_name: &str, value: &[u8]) -> Vec<u8> {
        let mut nonce = [0; NONCE_LEN];
        random_bytes(&mut nonce);
        self.encrypt_xattr_value_with_nonce(encrypted_name, value, nonce)
    }

    /// [`NameCipher::encrypt_xattr_value`] with a given nonce: for test vectors only.
    #[doc(hidden)]
    pub fn encrypt_xattr_value_with_nonce(
        &self,
        encrypted_name: &str,
        value: &[u8],
        nonce: [u8; NONCE_LEN],
    ) -> Vec<u8> {
        let mut sealed = nonce.to_vec();
        sealed.extend(self.seal(&[AD_XATTR_VALUE, &nonce, encrypted_name.as_bytes()], value));
        sealed
    }

    pub fn decrypt_xattr_value(&self, encrypted_name: &str, sealed: &[u8]) -> Result<Vec<u8>> {
        if sealed.len() < NONCE_LEN {
            return Err(Error::NameAuth);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        self.open(
            &[AD_XATTR_VALUE, nonce, encrypted_name.as_bytes()],
            ciphertext,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cipher(encoding: NameEncoding) -> NameCipher {
        NameCipher::new(NameKey::from_bytes([3; 64]), encoding)
    }

    const IV: DirIv = DirIv([9; 16]);

    fn valid_name() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(1u8..=255, 1..=NAME_MAX)
            .prop_filter("valid", |n| validate_name(n).is_ok())
    }

    proptest! {
        #[test]
        fn names_round_trip(name in valid_name(), b32 in any::<bool>()) {
            let c = cipher(if b32 { NameEncoding::Base32 } else { NameEncoding::Base64Url });
            let enc = c.encrypt_name(&IV, &name).unwrap();
            prop_assert!(enc.chars().all(|ch| c.encoding().is_alphabet_char(ch)));
            prop_assert_eq!(c.decrypt_name(&IV, &enc).unwrap(), name);
        }

        #[test]
        fn tampering_is_a_typed_error(name in valid_name(), pos in any::<prop::sample::Index>(), bit in 0u8..8) {
            let c = cipher(NameEncoding::Base64Url);
            let mut raw = BASE64URL_NOPAD.decode(c.encrypt_name(&IV, &name).unwrap().as_bytes()).unwrap();
            let i = pos.index(raw.len());
            raw[i] ^= 1 << bit;
            let flipped = BASE64URL_NOPAD.encode(&raw);
            prop_assert!(matches!(c.decrypt_name(&IV, &flipped), Err(Error::NameAuth)));
        }

        #[test]
        fn garbage_never_panics(text in "\\PC{0,300}") {
            let _ = cipher(NameEncoding::Base64Url).decrypt_name(&IV, &text);
            let _ = cipher(NameEncoding::Base32).decrypt_name(&IV, &text);
            let _ = cipher(NameEncoding::Base64Url).decrypt_symlink(text.as_bytes());
        }

        #[test]
        fn symlinks_round_trip(target in proptest::collection::vec(any::<u8>(), 1..=SYMLINK_TARGET_MAX)) {
            let c = cipher(NameEncoding::Base32);
            let enc = c.encrypt_symlink(&target).unwrap();
            prop_assert!(enc.len() <= 4095);
            prop_assert_eq!(symlink_target_len(enc.len() as u64), Some(target.len() as u64));
            prop_assert_eq!(c.decrypt_symlink(enc.as_bytes()).unwrap(), target);
        }
    }

    #[test]
    fn wrong_directory_iv_fails() {
        let c = cipher(NameEncoding::Base64Url);
        let enc = c.encrypt_name(&IV, b"report.txt").unwrap();
        assert!(matches!(
            c.decrypt_name(&DirIv([8; 16]), &enc),
            Err(Error::NameAuth)
        ));
    }

    #[test]
    fn invalid_names_are_refused() {
        let c = cipher(NameEncoding::Base64Url);
        for bad in [&b""[..], b".", b"..", b"a/b", b"a\0b"] {
            assert!(matches!(c.encrypt_name(&IV, bad), Err(Error::InvalidName)));
        }
        assert!(matches!(
            c.encrypt_name(&IV, &[b'x'; 256]),
            Err(Error::NameTooLong)
        ));
    }

    #[test]
    fn base32_decodes_any_case() {
        let c = cipher(NameEncoding::Base32);
        let enc = c.encrypt_name(&IV, b"Case Matters").unwrap();
        assert_eq!(
            c.decrypt_name(&IV, &enc.to_uppercase()).unwrap(),
            b"Case Matters"
        );
    }

    #[test]
    fn dir_ivs_are_deterministic_per_parent_and_name() {
        let key = DirIvKey::from_bytes([5; 32]);
        let root = DirIv::root(&key);
        assert_eq!(
            DirIv::derive(&key, &root, b"a"),
            DirIv::derive(&key, &root, b"a")
        );
        assert_ne!(
            DirIv::derive(&key, &root, b"a"),
            DirIv::derive(&key, &root, b"b")
        );
        assert_ne!(
            DirIv::derive(&key, &root, b"a"),
            DirIv::derive(&key, &IV, b"a")
        );
    }

    #[test]
    fn xattr_values_are_bound_to_their_name() {
        let c = cipher(NameEncoding::Base64Url);
        let a = c.encrypt_xattr_name(b"a");
        let b = c.encrypt_xattr_name(b"b");
        let sealed = c.encrypt_xattr_value(&a, b"value");
        assert_eq!(c.decrypt_xattr_name(&a).unwrap(), b"a");
        assert_eq!(c.decrypt_xattr_value(&a, &sealed).unwrap(), b"value");
        assert!(c.decrypt_xattr_value(&b, &sealed).is_err());
        assert_eq!(
            c.decrypt_xattr_value(&a, &c.encrypt_xattr_value(&a, b""))
                .unwrap(),
            b""
        );
    }
}
