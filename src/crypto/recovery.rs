//! The recovery key: the master key written out once at init, for when the password is lost
//! ("Recovery key" in format.md).
//!
//! 64 key bytes and a 4-byte checksum (the first 4 bytes of SHA-256("veilfs recovery key" ||
//! key)), in RFC 4648 base32 without padding: 109 upper-case characters, in groups of 4 joined by
//! '-'. Reading it back ignores case, whitespace and '-', and takes the look-alikes '0', '1' and
//! '8' for 'O', 'I' and 'B', so a key copied by hand from paper still parses; a mistyped
//! character is caught by the checksum (all but one in 2^32 mistakes).

use data_encoding::BASE32_NOPAD;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::keys::{MasterKey, MASTER_KEY_LEN};
use crate::error::{Error, Result};

const CHECKSUM_LABEL: &[u8] = b"veilfs recovery key";
const CHECKSUM_LEN: usize = 4;
const RAW_LEN: usize = MASTER_KEY_LEN + CHECKSUM_LEN;
/// Base32 characters of a recovery key (5 bits each, the last one carrying 4).
pub const RECOVERY_KEY_CHARS: usize = (RAW_LEN * 8).div_ceil(5);
/// Characters per group in the written form.
pub const GROUP_LEN: usize = 4;

fn checksum(key: &[u8; MASTER_KEY_LEN]) -> [u8; CHECKSUM_LEN] {
    let mut hash = Sha256::new();
    hash.update(CHECKSUM_LABEL);
    hash.update(key);
    let digest = hash.finalize();
    let mut out = [0; CHECKSUM_LEN];
    out.copy_from_slice(&digest[..CHECKSUM_LEN]);
    out
}

/// The recovery key of `master`: upper-case base32 in groups of 4 joined by '-' (one line; the
/// CLI breaks it into several for writing down).
pub fn format_recovery_key(master: &MasterKey) -> String {
    let mut raw = Zeroizing::new([0u8; RAW_LEN]);
    raw[..MASTER_KEY_LEN].copy_from_slice(master.as_bytes());
    raw[MASTER_KEY_LEN..].copy_from_slice(&checksum(master.as_bytes()));
    let encoded = Zeroizing::new(BASE32_NOPAD.encode(&raw[..]));
    let mut out = String::with_capacity(RECOVERY_KEY_CHARS + RECOVERY_KEY_CHARS / GROUP_LEN);
    for (i, c) in encoded.chars().enumerate() {
        if i > 0 && i % GROUP_LEN == 0 {
            out.push('-');
        }
        out.push(c);
    }
    out
}

/// The master key written in `text` (see the module documentation for what is accepted).
///
/// Fails with [`Error::RecoveryKeyFormat`] naming what is wrong: a character outside the
/// alphabet, the wrong number of characters, or a checksum mismatch (a mistyped character).
/// A well-formed key of another vault parses; only unlocking tells it apart.
pub fn parse_recovery_key(text: &str) -> Result<MasterKey> {
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
    if clean.len() != RECOVERY_KEY_CHARS {
        let hint = if clean.len() < RECOVERY_KEY_CHARS {
            "missing"
        } else {
            "extra"
        };
        return Err(Error::RecoveryKeyFormat(format!(
            "it has {} characters, expected {RECOVERY_KEY_CHARS} (some are {hint})",
            clean.len()
        )));
    }
    // The last character carries 4 bits and one unused bit, which the decoder checks.
    let raw = Zeroizing::new(BASE32_NOPAD.decode(clean.as_bytes()).map_err(|_| {
        Error::RecoveryKeyFormat(
            "the last character is not possible in a recovery key: it is mistyped".into(),
        )
    })?);
    let mut key = Zeroizing::new([0u8; MASTER_KEY_LEN]);
    key.copy_from_slice(&raw[..MASTER_KEY_LEN]);
    if checksum(&key)[..] != raw[MASTER_KEY_LEN..] {
        return Err(Error::RecoveryKeyFormat(
            "checksum does not match: a character is mistyped or two are swapped".into(),
        ));
    }
    Ok(MasterKey::from_bytes(*key))
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
        let digest = Sha256::digest([CHECKSUM_LABEL, &[0u8; 64][..]].concat());
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
