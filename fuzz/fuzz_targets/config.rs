//! `veilfs.conf`: `Config::from_json` on arbitrary bytes never panics; whatever it accepts
//! serializes with `to_json` into a file that parses back to the same config and serializes to
//! the same bytes; a config whose key derivations are all cheap (the test-vector and fixture
//! configs, 8 KiB and one pass) unlocks or fails with `WrongPassword`, with `NoSuchSlot` (format
//! 2 without a password slot) or `ConfigModified` (format 2, MAC mismatch), nothing else.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veilfs::config::{Config, KdfParams, Secret};
use veilfs::Error;

/// The passwords of the format.md config vector and of tests/fixtures/vault-v1.
const PASSWORDS: [&[u8]; 2] = [b"correct horse battery staple", b"veilfs fixture"];

fuzz_target!(|data: &[u8]| {
    let Ok(config) = Config::from_json(data) else {
        return;
    };
    let json = config.to_json();
    let again = Config::from_json(&json).expect("to_json's output parses");
    assert_eq!(again, config);
    assert_eq!(again.to_json(), json, "to_json is a fixed point");

    let cheap = |kdf: &KdfParams| u64::from(kdf.memory_kib) * u64::from(kdf.iterations) <= 64;
    let all_cheap = match &config {
        Config::V1(v1) => cheap(v1.kdf()),
        Config::V2(v2) => v2
            .slots()
            .iter()
            .all(|slot| slot.kdf().is_none_or(|kdf| cheap(&kdf.params))),
    };
    if all_cheap {
        for password in PASSWORDS {
            match config.unlock(&Secret::Password(password), None) {
                Ok(_)
                | Err(Error::WrongPassword | Error::NoSuchSlot(_) | Error::ConfigModified(_)) => {}
                Err(e) => panic!("unlock of an accepted config failed with {e:?}"),
            }
        }
    }
});
