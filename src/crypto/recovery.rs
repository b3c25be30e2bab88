//! Recovery keys: a secret written out once, for when the password is lost ("Recovery key" in
//! format.md).
//!
//! Format v1: the master key itself, 64 bytes, with a 4-byte checksum (the first 4 bytes of
//! SHA-256("veilfs recovery key" || key)): 109 characters. Format v2: the 32-byte secret of a
//! recovery unlock slot, *not* the master key, with the checksum SHA-256("veilfs recovery key
//! v2" || secret)[0..4]: 58 characters. Both are RFC 4648 base32 without padding, upper case, in
//! groups of 4 joined by '-'. Reading one back ignores case, whitespace and '-', and takes the
//! look-alikes '0', '1' and '8' for 'O', 'I' and 'B', so a key copied by hand from paper still
//! parses; a mistyped character is caught by the checksum (all but one in 2^32 mistakes). The
//! two lengths tell the two kinds apart.

use data_encoding::BASE32_NOPAD;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::keys::{
    ContactShare, MasterKey, RecoverySecret, CONTACT_SHARE_LEN, MASTER_KEY_LEN, RECOVERY_SECRET_LEN,
};
use crate::error::{Error, Result};

const CHECKSUM_LEN: usize = 4;
/// Characters per group in the written form.
pub const GROUP_LEN: usize = 4;

/// One kind of recovery key: what it holds and how its checksum is labelled.
struct Kind {
    label: &'static [u8],
    key_len: usize,
}

const V1: Kind = Kind {
    label: b"veilfs recovery key",
    key_len: MASTER_KEY_LEN,
};
const V2: Kind = Kind {
    label: b"veilfs recovery key v2",
    key_len: RECOVERY_SECRET_LEN,
};

const SHARE: Kind = Kind {
    label: b"veilfs recovery share v2",
    key_len: CONTACT_SHARE_LEN,
};

/// Base32 characters of a format v1 recovery key (5 bits each, the last one carrying 4).
pub const RECOVERY_KEY_CHARS: usize = V1.chars();
/// Base32 characters of a format v2 recovery key (the last one carrying 3 bits).
pub const RECOVERY_SECRET_CHARS: usize = V2.chars();

/// A recovery key as read: which kind it is tells which format of vault it can open.
#[derive(Debug)]
pub enum RecoveryKey {
    /// A format v1 key: the master key itself.
    MasterKey(MasterKey),
    /// A format v2 key: the secret of a recovery slot.
    Secret(RecoverySecret),
}

impl Kind {
    const fn chars(&self) -> usize {
        ((self.key_len + CHECKSUM_LEN) * 8).div_ceil(5)
    }

    fn checksum(&self, key: &[u8]) -> [u8; CHECKSUM_LEN] {
        let digest = Sha256::new()
            .chain_update(self.label)
            .chain_update(key)
            .finalize();
        let mut out = [0; CHECKSUM_LEN];
        out.copy_from_slice(&digest[..CHECKSUM_LEN]);
        out
    }

    fn format(&self, key: &[u8]) -> String {
        let mut raw = Zeroizing::new(Vec::with_capacity(self.key_len + CHECKSUM_LEN));
        raw.extend_from_slice(key);
        raw.extend_from_slice(&self.checksum(key));
        let encoded = Zeroizing::new(BASE32_NOPAD.encode(&raw[..]));
        let mut out = String::with_capacity(self.chars() + self.chars() / GROUP_LEN);
        for (i, c) in encoded.chars().enumerate() {
            if i > 0 && i % GROUP_LEN == 0 {
                out.push('-');
            }
            out.push(c);
        }
        out
    }

    /// The key bytes of `clean` (see [`clean`]), which has exactly [`Kind::chars`] characters.
    fn decode(&self, clean: &str) -> Result<Zeroizing<Vec<u8>>> {
        // The last character carries unused bits, which the decoder checks.
        let mut raw = Zeroizing::new(BASE32_NOPAD.decode(clean.as_bytes()).map_err(|_| {
            Error::RecoveryKeyFormat(
                "the last character is not possible in a recovery key: it is mistyped".into(),
            )
        })?);
        let checksum = raw.split_off(self.key_len);
        if self.checksum(&raw)[..] != checksum[..] {
            return Err(Error::RecoveryKeyFormat(
                "checksum does not match: a character is mistyped or two are swapped".into(),
            ));
        }
        Ok(raw)
    }
}

/// `text` without whitespace and '-', upper-cased, with look-alikes replaced; an error naming
/// the first character outside the alphabet.
fn clean(text: &str) -> Result<Zeroizing<String>> {
    let mut clean = Zeroizing::new(String::with_capacity(RECOVERY_KEY_CHARS));
    for (position, c) in text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .enumerate()
    {
        let c = match c.to_ascii_uppercase() {
            '0' => 'O',
            '1' => 'I',
            '8' => 'B',
            c @ ('A'..='Z' | '2'..='7') => c,
            c => {
                return Err(Error::RecoveryKeyFormat(format!(
                    "{c:?} (group {}, character {}) is not one of A-Z and 2-7",
                    position / GROUP_LEN + 1,
                    position % GROUP_LEN + 1
                )))
            }
        };
        clean.push(c);
    }
    Ok(clean)
}

fn wrong_length(found: usize, expected: usize, also: &str) -> Error {
    let hint = if found < expected { "missing" } else { "extra" };
    Error::RecoveryKeyFormat(format!(
        "it has {found} characters, expected {expected}{also} (some are {hint})"
    ))
}

/// The format v1 recovery key of `master`: upper-case base32 in groups of 4 joined by '-' (one
/// line; the CLI breaks it into several for writing down).
pub fn format_recovery_key(master: &MasterKey) -> String {
    V1.format(master.as_bytes())
}

/// The format v2 recovery key of a recovery slot's `secret`, written as
/// [`format_recovery_key`] writes v1's.
pub fn format_recovery_secret(secret: &RecoverySecret) -> String {
    V2.format(secret.as_bytes())
}

/// The master key written in a format v1 recovery key `text` (see the module documentation for
/// what is accepted).
///
/// Fails with [`Error::RecoveryKeyFormat`] naming what is wrong: a character outside the
/// alphabet, the wrong number of characters, or a checksum mismatch (a mistyped character).
/// A well-formed key of another vault parses; only unlocking tells it apart.
pub fn parse_recovery_key(text: &str) -> Result<MasterKey> {
    let clean = clean(text)?;
    if clean.len() != RECOVERY_KEY_CHARS {
        return Err(wrong_length(clean.len(), RECOVERY_KEY_CHARS, ""));
    }
    let raw = V1.decode(&clean)?;
    let mut key = Zeroizing::new([0u8; MASTER_KEY_LEN]);
    key.copy_from_slice(&raw);
    Ok(MasterKey::from_bytes(*key))
}

/// A recovery contact's share, written as a format v2 recovery key is (58 characters), with a
/// checksum of its own label so that a share is never taken for a recovery key.
pub fn format_contact_share(share: &ContactShare) -> String {
    SHARE.format(share.as_bytes())
}

/// The share written in `text` (as [`parse_recovery_key`] reads keys).
pub fn parse_contact_share(text: &str) -> Result<ContactShare> {
    let clean = clean(text)?;
    if clean.len() != SHARE.chars() {
        return Err(wrong_length(clean.len(), SHARE.chars(), ""));
    }
    let raw = SHARE.decode(&clean)?;
    let mut share = Zeroizing::new([0u8; CONTACT_SHARE_LEN]);
    share.copy_from_slice(&raw);
    Ok(ContactShare::from_bytes(*share))
}

/// A recovery key of either format, told apart by its length: [`RECOVERY_SECRET_CHARS`] for
/// format v2, [`RECOVERY_KEY_CHARS`] for v1. Errors as [`parse_recovery_key`]'s.
pub fn parse_any_recovery_key(text: &str) -> Result<RecoveryKey> {
    let clean = clean(text)?;
    if clean.len() == RECOVERY_KEY_CHARS {
        return parse_recovery_key(&clean).map(RecoveryKey::MasterKey);
    }
    if clean.len() != RECOVERY_SECRET_CHARS {
        return Err(wrong_length(
            clean.len(),
            RECOVERY_SECRET_CHARS,
            &format!(" ({RECOVERY_KEY_CHARS} for a vault of format 1)"),
        ));
    }
    let raw = V2.decode(&clean)?;
    let mut secret = Zeroizing::new([0u8; RECOVERY_SECRET_LEN]);
    secret.copy_from_slice(&raw);
    Ok(RecoveryKey::Secret(RecoverySecret::from_bytes(*secret)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

    fn key(byte: u8) -> MasterKey {
        MasterKey::from_bytes([byte; 64])
    }

    fn message(result: Result<MasterKey>) -> String {
        match result {
            Err(Error::RecoveryKeyFormat(msg)) => msg,
            other => panic!("expected a RecoveryKeyFormat error, got {other:?}"),
        }
    }

    #[test]
    fn shape_of_the_written_key() {
        let text = format_recovery_key(&key(0x5a));
        let groups: Vec<&str> = text.split('-').collect();
        assert_eq!(RECOVERY_KEY_CHARS, 109);
        assert_eq!(groups.len(), 28);
        assert!(groups[..27].iter().all(|g| g.len() == 4));
        assert_eq!(groups[27].len(), 1);
        assert!(text
            .chars()
            .all(|c| c == '-' || ALPHABET.contains(&(c as u8))));
    }

    #[test]
    fn known_vector() {
        // All-zero key: 64 zero bytes are 102 'A's and then 2 bits of the checksum.
        let text = format_recovery_key(&MasterKey::from_bytes([0; 64]));
        let digest = Sha256::digest([V1.label, &[0u8; 64][..]].concat());
        let mut raw = vec![0u8; 64];
        raw.extend_from_slice(&digest[..4]);
        assert_eq!(text.replace('-', ""), BASE32_NOPAD.encode(&raw));
        assert!(text.starts_with("AAAA-AAAA-"));
    }

    #[test]
    fn sloppy_input_parses() {
        let master = key(0x11);
        let text = format_recovery_key(&master);
        let sloppy: String = text
            .replace('-', " ")
            .to_lowercase()
            .replace('o', "0")
            .replace('i', "1")
            .replace('b', "8");
        let sloppy = format!("  \n{}\r\n\t", sloppy.replacen(' ', "\n", 3));
        assert_eq!(
            parse_recovery_key(&sloppy).unwrap().as_bytes(),
            master.as_bytes()
        );
    }

    #[test]
    fn errors_name_the_problem() {
        let text = format_recovery_key(&key(3));
        assert!(message(parse_recovery_key("")).contains("0 characters, expected 109"));
        assert!(message(parse_recovery_key(&text[..text.len() - 1])).contains("missing"));
        assert!(message(parse_recovery_key(&format!("{text}A"))).contains("extra"));
        assert!(message(parse_recovery_key(&text.replacen('-', "-9", 1)))
            .contains("'9' (group 2, character 1)"));
        assert!(
            message(parse_recovery_key(&text.replacen('-', "-é", 1))).contains("not one of A-Z")
        );
        let mut swapped: Vec<char> = text.chars().collect();
        let (a, b) = (0..swapped.len() - 1)
            .map(|i| (i, i + 1))
            .find(|&(i, j)| swapped[i] != swapped[j] && swapped[i] != '-' && swapped[j] != '-')
            .unwrap();
        swapped.swap(a, b);
        let swapped: String = swapped.into_iter().collect();
        assert!(message(parse_recovery_key(&swapped)).contains("mistyped"));
    }

    #[test]
    fn v2_keys_are_58_characters_and_tell_themselves_apart() {
        let secret = RecoverySecret::from_bytes([0x42; RECOVERY_SECRET_LEN]);
        let text = format_recovery_secret(&secret);
        assert_eq!(RECOVERY_SECRET_CHARS, 58);
        assert_eq!(text.replace('-', "").len(), 58);
        match parse_any_recovery_key(&text.to_lowercase()).unwrap() {
            RecoveryKey::Secret(parsed) => assert_eq!(parsed.as_bytes(), secret.as_bytes()),
            other => panic!("{other:?}"),
        }
        let v1 = format_recovery_key(&key(9));
        assert!(matches!(
            parse_any_recovery_key(&v1).unwrap(),
            RecoveryKey::MasterKey(m) if m.as_bytes() == key(9).as_bytes()
        ));
        // A v2 key is not a v1 key, and the message says what each needs.
        assert!(message(parse_recovery_key(&text)).contains("expected 109"));
        let err = parse_any_recovery_key("ABCD").unwrap_err().to_string();
        assert!(
            err.contains("expected 58 (109 for a vault of format 1)"),
            "{err}"
        );
        // The checksum is v2's own: a v1-labelled checksum does not pass.
        let mut chars: Vec<u8> = text.replace('-', "").into_bytes();
        chars[10] = if chars[10] == b'A' { b'B' } else { b'A' };
        assert!(parse_any_recovery_key(std::str::from_utf8(&chars).unwrap()).is_err());
    }

    proptest! {
        #[test]
        fn round_trip(bytes in proptest::array::uniform32(any::<u8>()), more in proptest::array::uniform32(any::<u8>())) {
            let mut raw = [0u8; 64];
            raw[..32].copy_from_slice(&bytes);
            raw[32..].copy_from_slice(&more);
            let master = MasterKey::from_bytes(raw);
            let parsed = parse_recovery_key(&format_recovery_key(&master)).unwrap();
            prop_assert_eq!(parsed.as_bytes(), master.as_bytes());
        }

        #[test]
        fn any_single_character_change_is_caught(
            seed in any::<u8>(),
            pos in any::<prop::sample::Index>(),
            replacement in any::<prop::sample::Index>(),
        ) {
            let master = MasterKey::from_bytes(std::array::from_fn(|i| seed.wrapping_mul(31).wrapping_add(i as u8)));
            let mut chars: Vec<u8> = format_recovery_key(&master).replace('-', "").into_bytes();
            let i = pos.index(chars.len());
            let others: Vec<u8> = ALPHABET.iter().copied().filter(|&c| c != chars[i]).collect();
            chars[i] = others[replacement.index(others.len())];
            let changed = String::from_utf8(chars).unwrap();
            let msg = message(parse_recovery_key(&changed));
            prop_assert!(msg.contains("mistyped"), "{}", msg);
        }

        #[test]
        fn garbage_never_panics(text in "\\PC{0,200}") {
            let _ = parse_recovery_key(&text);
        }
    }
}
