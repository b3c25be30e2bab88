//! Symlink targets and extended attributes (names and values), sealed with the name key of the
//! format.md test vectors (so its vectors, in the seed corpus, decrypt).
//!
//! - `decrypt_symlink`, `decrypt_xattr_name` and `decrypt_xattr_value` of anything never panic
//!   and fail only with `NameEncoding` or `NameAuth`; what they accept re-encrypts (with the
//!   nonce found in it) to exactly the input: no value has two encodings.
//! - Encrypting any target / xattr name / value and decrypting gives it back; a target longer
//!   than `SYMLINK_TARGET_MAX` is refused with `TargetTooLong`, a shorter one encrypts into at
//!   most 4095 bytes.
//!
//! Input: a split position (2 bytes, big-endian), then the payload; the first part is also used
//! as an xattr's (encrypted) name and the second as its value.
#![no_main]

use data_encoding::BASE64URL_NOPAD;
use libfuzzer_sys::fuzz_target;
use veilfs::crypto::keys::MasterKey;
use veilfs::crypto::names::{NameCipher, NameEncoding, SYMLINK_TARGET_MAX};
use veilfs::Error;

const NONCE: [u8; 16] = [0xe0; 16];

fn typed<T>(result: Result<T, Error>, what: &str) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(Error::NameEncoding(_) | Error::NameAuth) => None,
        Err(e) => panic!("{what} failed with {e:?}"),
    }
}

fn nonce_of(sealed: &[u8]) -> [u8; 16] {
    sealed[..16].try_into().unwrap()
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let payload = &data[2..];
    let split = usize::from(u16::from_be_bytes([data[0], data[1]])) % (payload.len() + 1);
    let (first, second) = payload.split_at(split);
    let keys = MasterKey::from_bytes(std::array::from_fn(|i| i as u8)).derive();
    let c = NameCipher::new(keys.name, NameEncoding::Base64Url);

    // Decoding what a backing directory may hold.
    if let Some(target) = typed(c.decrypt_symlink(payload), "decrypt_symlink") {
        let raw = BASE64URL_NOPAD
            .decode(payload)
            .expect("accepted text is base64url");
        let again = c
            .encrypt_symlink_with_nonce(&target, nonce_of(&raw))
            .expect("a decrypted target encrypts");
        assert_eq!(
            again.as_bytes(),
            payload,
            "symlink target with two encodings"
        );
    }
    if let Ok(text) = std::str::from_utf8(payload) {
        if let Some(name) = typed(c.decrypt_xattr_name(text), "decrypt_xattr_name") {
            assert_eq!(
                c.encrypt_xattr_name(&name),
                text,
                "xattr name with two encodings"
            );
        }
    }
    if let Ok(name) = std::str::from_utf8(first) {
        if let Some(value) = typed(c.decrypt_xattr_value(name, second), "decrypt_xattr_value") {
            let again = c.encrypt_xattr_value_with_nonce(name, &value, nonce_of(second));
            assert_eq!(again, second, "xattr value with two encodings");
        }
    }

    // Round trips.
    match c.encrypt_symlink_with_nonce(payload, NONCE) {
        Ok(sealed) => {
            assert!(payload.len() <= SYMLINK_TARGET_MAX && sealed.len() <= 4095);
            assert_eq!(c.decrypt_symlink(sealed.as_bytes()).unwrap(), payload);
        }
        Err(Error::TargetTooLong) => assert!(payload.len() > SYMLINK_TARGET_MAX),
        Err(e) => panic!("encrypt_symlink failed with {e:?}"),
    }
    let name = c.encrypt_xattr_name(first);
    assert_eq!(c.decrypt_xattr_name(&name).unwrap(), first);
    let sealed = c.encrypt_xattr_value_with_nonce(&name, second, NONCE);
    assert_eq!(c.decrypt_xattr_value(&name, &sealed).unwrap(), second);
});
