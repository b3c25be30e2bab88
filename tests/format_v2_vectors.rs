//! The format 2 test vectors of `docs/format.md` ("Test vectors, format 2"), recomputed through
//! the crate's public API. `tests/vectors/check_format_v2.py` recomputes the same values from the
//! prose with Python's `cryptography` alone, sharing no code with this crate (scripts/test runs
//! it).
//!
//! The blocks: ```` ```vector v2 ```` (lines `name = value`, as the format 1 blocks) and
//! ```` ```json veilfs.conf v2 ````, a whole config. To print the values after a deliberate
//! format change: `VEILFS_PRINT_VECTORS=1 cargo test --test format_v2_vectors -- --nocapture`.

use std::collections::BTreeMap;

use data_encoding::{BASE64URL_NOPAD, HEXLOWER};
use sha2::{Digest, Sha256};
use veilfs::config::{Config, ConfigV2, Features, KdfParams, Secret, CREATOR};
use veilfs::crypto::keys::{ContactShare, MasterKey, RecoverySecret, VAULT_ID_LEN};
use veilfs::crypto::names::DirIv;
use veilfs::crypto::recovery::{format_recovery_secret, parse_any_recovery_key, RecoveryKey};

const FORMAT_MD: &str = include_str!("../docs/format.md");
const PASSWORD: &[u8] = b"correct horse battery staple";
const CREATED: &str = "2026-12-02T00:00:00Z";

/// Bytes `start, start + 1, ...`.
fn seq<const N: usize>(start: u8) -> [u8; N] {
    std::array::from_fn(|i| start.wrapping_add(i as u8))
}

fn master() -> MasterKey {
    MasterKey::from_bytes(seq(0x00))
}

fn vault_id() -> [u8; VAULT_ID_LEN] {
    seq(0x40)
}

fn recovery() -> RecoverySecret {
    RecoverySecret::from_bytes(seq(0x60))
}

/// The config of the vectors, as this build writes it.
fn config() -> ConfigV2 {
    let master = master();
    let mut config = ConfigV2::with_vault_id(&master, Features::default(), vault_id());
    let kdf = KdfParams {
        memory_kib: 8,
        iterations: 1,
        parallelism: 1,
    };
    config
        .add_slot_fixed(
            &master,
            "password",
            &Secret::Password(PASSWORD),
            kdf,
            seq(0x50),
            seq(0x80),
            CREATED,
        )
        .unwrap();
    config
        .add_slot_fixed(
            &master,
            "recovery key",
            &Secret::Recovery(&recovery()),
            kdf,
            seq(0x58),
            [0; 32],
            CREATED,
        )
        .unwrap();
    config
}

fn hex(bytes: &[u8]) -> String {
    HEXLOWER.encode(bytes)
}

/// The contact slot's wrapping key of the vectors.
fn contact_wrap_key() -> zeroize::Zeroizing<[u8; 64]> {
    let kdf = KdfParams {
        memory_kib: 8,
        iterations: 1,
        parallelism: 1,
    };
    // Argon2id of the passphrase, as the slot derives it (through a password slot's KEK code
    // path would hide what is checked: the crate's argon2, directly).
    let mut half = [0u8; 32];
    argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(kdf.memory_kib, kdf.iterations, kdf.parallelism, Some(32)).unwrap(),
    )
    .hash_password_into(PASSWORD, &seq::<32>(0x80), &mut half)
    .unwrap();
    veilfs::config::v2::contact_wrap_key(
        &ContactShare::from_bytes(seq(0xa0)),
        &half,
        &vault_id(),
        &seq(0x50),
    )
}

/// `from_master` of the config that rotating the vector config (generation 1, so the new one
/// is generation 2) to the vector master key writes, when the previous master key is
/// `c0 c1 ... ff`.
fn rotation_from_master() -> String {
    let previous = MasterKey::from_bytes(seq(0xc0));
    let rotated = config().rotated(&previous, &master()).unwrap();
    assert_eq!(rotated.generation(), 2);
    assert_eq!(rotated.rotating_from(), Some(2));
    let unwrapped = rotated.previous_master(&master()).unwrap().unwrap();
    assert_eq!(unwrapped.as_bytes(), previous.as_bytes());
    let json: serde_json::Value = serde_json::from_slice(&rotated.to_json()).unwrap();
    let wrapped = json["rotation"]["from_master"].as_str().unwrap();
    hex(&BASE64URL_NOPAD.decode(wrapped.as_bytes()).unwrap())
}

/// Every vector, computed.
fn computed() -> BTreeMap<&'static str, String> {
    let keys = master().derive_v2(&vault_id());
    let json = String::from_utf8(config().to_json()).unwrap();
    let mac = serde_json::from_str::<serde_json::Value>(&json).unwrap()["mac"]
        .as_str()
        .unwrap()
        .to_owned();
    BTreeMap::from([
        ("v2_master_key", hex(master().as_bytes())),
        ("v2_vault_id", hex(&vault_id())),
        ("v2_name_key", hex(keys.name.as_bytes())),
        ("v2_content_key", hex(keys.content.as_bytes())),
        ("v2_diriv_key", hex(keys.diriv.as_bytes())),
        ("v2_record_key", hex(keys.record.as_bytes())),
        (
            "v2_config_mac_key",
            hex(&master().config_mac_key(&vault_id())[..]),
        ),
        ("v2_root_iv", hex(&DirIv::root(&keys.diriv).0)),
        ("v2_recovery_secret", hex(recovery().as_bytes())),
        (
            "v2_recovery_key",
            format!("\"{}\"", format_recovery_secret(&recovery())),
        ),
        (
            "v2_mac",
            hex(&BASE64URL_NOPAD.decode(mac.as_bytes()).unwrap()),
        ),
        ("v2_config_sha256", hex(&Sha256::digest(json.as_bytes()))),
        ("v2_contact_wrap_key", hex(&contact_wrap_key()[..])),
        (
            "v2_rotation_wrap_key",
            hex(&master().rotation_wrap_key(&vault_id())[..]),
        ),
        ("v2_rotation_from_master", rotation_from_master()),
    ])
}

/// The `vector v2` lines and the `json veilfs.conf v2` block of format.md.
fn documented() -> (BTreeMap<String, String>, String) {
    let mut vectors = BTreeMap::new();
    let mut config = None;
    let mut lines = FORMAT_MD.lines();
    while let Some(line) = lines.next() {
        let Some(info) = line.strip_prefix("```") else {
            continue;
        };
        let body: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
        match info.trim() {
            "vector v2" => {
                for l in body
                    .iter()
                    .map(|l| l.trim())
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                {
                    let (name, value) = l.split_once(" = ").expect("`name = value`");
                    assert!(
                        vectors.insert(name.to_owned(), value.to_owned()).is_none(),
                        "{name} twice"
                    );
                }
            }
            "json veilfs.conf v2" => {
                assert!(config.is_none(), "one `json veilfs.conf v2` block");
                config = Some(body.iter().map(|l| format!("{l}\n")).collect());
            }
            _ => {}
        }
    }
    (vectors, config.expect("a `json veilfs.conf v2` block"))
}

#[test]
fn format_2_vectors_match_the_implementation() {
    let computed = computed();
    if std::env::var_os("VEILFS_PRINT_VECTORS").is_some() {
        println!("```vector v2");
        for (name, value) in &computed {
            println!("{name} = {value}");
        }
        println!(
            "```\n\n```json veilfs.conf v2\n{}```",
            String::from_utf8(config().to_json()).unwrap()
        );
    }
    let (vectors, documented) = documented();
    assert_eq!(
        vectors.keys().collect::<Vec<_>>(),
        computed.keys().collect::<Vec<_>>(),
        "the format 2 vectors of format.md"
    );
    for (name, value) in &computed {
        assert_eq!(&vectors[*name], value, "vector {name}");
    }

    // The documented config: it parses, writes itself back byte for byte, and opens with the
    // password and with the recovery key, to the master key of the vectors.
    let fresh = String::from_utf8(config().to_json()).unwrap();
    if documented.contains(&format!("\"creator\": \"{CREATOR}\"")) {
        assert_eq!(fresh, documented, "ConfigV2 writes the documented config");
    }
    let parsed = Config::from_json(documented.as_bytes()).unwrap();
    assert_eq!(String::from_utf8(parsed.to_json()).unwrap(), documented);
    let by_password = parsed.unlock(&Secret::Password(PASSWORD), None).unwrap();
    assert_eq!(by_password.master().as_bytes(), master().as_bytes());
    let text = vectors["v2_recovery_key"].trim_matches('"');
    let RecoveryKey::Secret(secret) = parse_any_recovery_key(text).unwrap() else {
        panic!("a format 2 recovery key")
    };
    let by_recovery = parsed.unlock(&Secret::Recovery(&secret), None).unwrap();
    assert_eq!(by_recovery.master().as_bytes(), master().as_bytes());
}
