//! The recovery key parser: `parse_recovery_key` of any text never panics and fails only with
//! `RecoveryKeyFormat`; a key it accepts is written by `format_recovery_key` as exactly the
//! input once the documented slack is taken out (case, whitespace, '-', and the look-alikes
//! 0/1/8 for O/I/B): no key has two spellings beyond those. Any 64 bytes format into a key that
//! parses back to them, also retyped sloppily.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veilfs::crypto::keys::MasterKey;
use veilfs::crypto::recovery::{format_recovery_key, parse_recovery_key};
use veilfs::Error;

fn normalized(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_uppercase() {
            '0' => 'O',
            '1' => 'I',
            '8' => 'B',
            c => c,
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        match parse_recovery_key(text) {
            Ok(key) => assert_eq!(
                format_recovery_key(&key).replace('-', ""),
                normalized(text),
                "a recovery key with two spellings"
            ),
            Err(Error::RecoveryKeyFormat(_)) => {}
            Err(e) => panic!("parse_recovery_key failed with {e:?}"),
        }
    }
    if data.len() >= 64 {
        let master = MasterKey::from_bytes(data[..64].try_into().unwrap());
        let text = format_recovery_key(&master);
        assert_eq!(
            parse_recovery_key(&text).unwrap().as_bytes(),
            master.as_bytes()
        );
        let sloppy = text
            .to_lowercase()
            .replace('o', "0")
            .replace('i', "1")
            .replace('b', "8")
            .replace('-', " \n ");
        assert_eq!(
            parse_recovery_key(&sloppy).unwrap().as_bytes(),
            master.as_bytes()
        );
    }
});
