//! Names, in both encodings (base64url and base32), with the name key and directory IV of the
//! format.md test vectors (so its vectors, in the seed corpus, decrypt).
//!
//! - `decrypt_name` of any text never panics; what it accepts is a valid name whose encryption
//!   is that text (ignoring ASCII case in base32, which is read in any case on purpose): no name
//!   has two encodings.
//! - `encrypt_name` of any valid name decrypts to it, in the encoding's alphabet; an invalid one
//!   is refused with `InvalidName` or `NameTooLong`.
//! - The encryption with one character replaced, one added or one removed decrypts to the same
//!   name (only a change of case in base32) or fails with a typed error.
//!
//! Input: a flags byte (bit 0: base32), 2 bytes of edit position, 1 edit byte, then the payload:
//! the text decrypted and the name encrypted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veilfs::crypto::keys::MasterKey;
use veilfs::crypto::names::{validate_name, DirIv, NameCipher, NameEncoding};
use veilfs::Error;

fn cipher(encoding: NameEncoding) -> NameCipher {
    let keys = MasterKey::from_bytes(std::array::from_fn(|i| i as u8)).derive();
    NameCipher::new(keys.name, encoding)
}

const IV: DirIv = DirIv([
    0xd0, 0xd1, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf,
]);

/// Whether two encodings are the same one: exactly, or in base32 ignoring ASCII case.
fn same_encoding(encoding: NameEncoding, a: &str, b: &str) -> bool {
    match encoding {
        NameEncoding::Base64Url => a == b,
        NameEncoding::Base32 => a.eq_ignore_ascii_case(b),
    }
}

fn check_decrypt(c: &NameCipher, text: &str) -> Option<Vec<u8>> {
    match c.decrypt_name(&IV, text) {
        Ok(name) => {
            assert!(validate_name(&name).is_ok(), "decrypted an invalid name");
            let again = c
                .encrypt_name(&IV, &name)
                .expect("a decrypted name encrypts");
            assert!(
                same_encoding(c.encoding(), &again, text),
                "{text:?} decrypts to {name:?}, whose encryption is {again:?}"
            );
            Some(name)
        }
        Err(Error::NameEncoding(_) | Error::NameAuth) => None,
        Err(e) => panic!("decrypt_name failed with {e:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let encoding = if data[0] & 1 == 0 {
        NameEncoding::Base64Url
    } else {
        NameEncoding::Base32
    };
    let edit_at = usize::from(u16::from_be_bytes([data[1], data[2]]));
    let edit_byte = data[3];
    let payload = &data[4..];
    let c = cipher(encoding);

    if let Ok(text) = std::str::from_utf8(payload) {
        check_decrypt(&c, text);
    }

    let encoded = match c.encrypt_name(&IV, payload) {
        Ok(encoded) => encoded,
        Err(Error::InvalidName | Error::NameTooLong) => {
            assert!(validate_name(payload).is_err());
            return;
        }
        Err(e) => panic!("encrypt_name failed with {e:?}"),
    };
    assert!(encoded.chars().all(|ch| encoding.is_alphabet_char(ch)));
    assert_eq!(check_decrypt(&c, &encoded).as_deref(), Some(payload));

    // One character replaced, inserted or removed.
    let at = edit_at % encoded.len();
    let ch = char::from(edit_byte);
    let mut replaced = encoded.clone();
    replaced.replace_range(at..at + 1, ch.encode_utf8(&mut [0; 4]));
    let mut inserted = encoded.clone();
    inserted.insert(at, ch);
    let mut removed = encoded.clone();
    removed.remove(at);
    for edited in [replaced, inserted, removed] {
        if let Some(name) = check_decrypt(&c, &edited) {
            assert_eq!(name, payload);
        }
    }
});
