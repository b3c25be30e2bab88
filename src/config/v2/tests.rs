//! Tests of format 2 configs: round trips, unlocking through each slot, and edits refused.

use super::*;
use crate::config::keyfile::KeyfileSecret;
use crate::config::test_support::{master, CHEAP};
use crate::config::Config;
use crate::crypto::keys::{ContactShare, RecoverySecret};
use serde_json::Value;

fn recovery() -> RecoverySecret {
    RecoverySecret::from_bytes([9; 32])
}

fn keyfile() -> KeyfileSecret {
    KeyfileSecret::from_contents(b"a key file")
}

/// A vault with a password slot, a key-file slot and a recovery slot.
fn config() -> ConfigV2 {
    let master = master();
    let mut config = ConfigV2::with_vault_id(&master, Features::default(), [5; VAULT_ID_LEN]);
    config
        .add_slot(&master, "laptop", &Secret::Password(b"pw"), CHEAP)
        .unwrap();
    config
        .add_slot(&master, "nas", &Secret::Keyfile(&keyfile()), CHEAP)
        .unwrap();
    config
        .add_slot(
            &master,
            "recovery key",
            &Secret::Recovery(&recovery()),
            CHEAP,
        )
        .unwrap();
    config
}

fn parse(bytes: &[u8]) -> Result<ConfigV2> {
    match Config::from_json(bytes)? {
        Config::V2(config) => Ok(config),
        other => panic!("expected format 2, got {other:?}"),
    }
}

fn edited(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut value: Value = serde_json::from_slice(&config().to_json()).unwrap();
    edit(&mut value);
    serde_json::to_vec_pretty(&value).unwrap()
}

fn corrupt_reason(result: Result<ConfigV2>) -> String {
    match result {
        Err(Error::ConfigCorrupt(reason)) => reason,
        other => panic!("expected ConfigCorrupt, got {other:?}"),
    }
}

/// Every secret that opens `config()`, with the slot it opens.
fn unlock_all(config: &ConfigV2) -> Vec<Result<Unlocked>> {
    let keyfile = keyfile();
    let recovery = recovery();
    [
        Secret::Password(b"pw"),
        Secret::Keyfile(&keyfile),
        Secret::Recovery(&recovery),
    ]
    .iter()
    .map(|secret| config.unlock(secret, None))
    .collect()
}

#[test]
fn every_slot_opens_the_same_master_key_and_round_trips() {
    let config = config();
    let parsed = parse(&config.to_json()).unwrap();
    assert_eq!(parsed, config);
    for (index, unlocked) in unlock_all(&parsed).into_iter().enumerate() {
        let unlocked = unlocked.unwrap();
        assert_eq!(unlocked.master().as_bytes(), master().as_bytes());
        assert_eq!(unlocked.slot(), Some(index));
        let keys = master().derive_v2(&[5; VAULT_ID_LEN]);
        assert_eq!(unlocked.keys().name.as_bytes(), keys.name.as_bytes());
    }
}

#[test]
fn wrong_secrets_and_missing_kinds_are_told_apart() {
    let config = config();
    assert!(matches!(
        config.unlock(&Secret::Password(b"Pw"), None),
        Err(Error::WrongPassword)
    ));
    let other = RecoverySecret::from_bytes([8; 32]);
    assert!(matches!(
        config.unlock(&Secret::Recovery(&other), None),
        Err(Error::WrongRecoveryKey)
    ));
    assert!(matches!(
        config.unlock(&Secret::PasswordKeyfile(b"pw", &keyfile()), None),
        Err(Error::NoSuchSlot(_))
    ));
    // A slot named: only that one is tried.
    assert!(config
        .unlock(&Secret::Password(b"pw"), Some("laptop"))
        .is_ok());
    assert!(matches!(
        config.unlock(&Secret::Password(b"pw"), Some("nas")),
        Err(Error::NoSuchSlot(_))
    ));
}

#[test]
fn the_recovery_key_is_not_the_master_key() {
    let unlocked = config()
        .unlock(&Secret::Recovery(&recovery()), None)
        .unwrap();
    assert_ne!(&unlocked.master().as_bytes()[..32], recovery().as_bytes());
    assert_ne!(&unlocked.master().as_bytes()[32..], recovery().as_bytes());
}

/// Each edit that someone without the key can make, with every unlock path: refused as a
/// modified config (or, where it changes what the slot's key is derived from, as a wrong
/// secret for that slot only), never accepted.
#[test]
fn any_edit_is_refused_through_every_slot() {
    type Edit = Box<dyn Fn(&mut Value)>;
    let edits: Vec<(&str, Edit)> = vec![
        (
            "lower the KDF cost",
            Box::new(|v| v["slots"][0]["kdf"]["memory_kib"] = 16.into()),
        ),
        (
            "change the password slot to password+keyfile",
            Box::new(|v| v["slots"][0]["kind"] = "password+keyfile".into()),
        ),
        (
            "rename a slot",
            Box::new(|v| v["slots"][1]["label"] = "evil".into()),
        ),
        (
            "change a date",
            Box::new(|v| v["slots"][1]["created"] = "2020-01-01T00:00:00Z".into()),
        ),
        (
            "drop a slot",
            Box::new(|v| {
                v["slots"].as_array_mut().unwrap().remove(1);
            }),
        ),
        (
            "change the encoding",
            Box::new(|v| v["features"]["name_encoding"] = "base32".into()),
        ),
        (
            "change the creator",
            Box::new(|v| v["creator"] = "veilfs 9".into()),
        ),
        (
            "swap two slots",
            Box::new(|v| v["slots"].as_array_mut().unwrap().swap(0, 1)),
        ),
    ];
    for (what, edit) in edits {
        let forged = parse(&edited(edit)).unwrap();
        let results = unlock_all(&forged);
        assert!(
            results.iter().all(|r| r.is_err()),
            "{what}: some slot still unlocks"
        );
        assert!(
            results
                .iter()
                .any(|r| matches!(r, Err(Error::ConfigModified(_)))),
            "{what}: no slot reported the modification: {results:?}"
        );
    }
}

#[test]
fn a_wrapped_key_moved_to_another_slot_generation_or_vault_does_not_open() {
    // The generation is in every slot's associated data: no slot opens at all.
    let generation = edited(|v| v["generation"] = 2.into());
    assert!(unlock_all(&parse(&generation).unwrap())
        .iter()
        .all(|r| matches!(r, Err(Error::WrongPassword | Error::WrongRecoveryKey))));
    // The key-file slot's wrapped key in the password slot's place.
    let moved = edited(|v| v["slots"][0]["wrapped"] = v["slots"][1]["wrapped"].clone());
    assert!(matches!(
        parse(&moved)
            .unwrap()
            .unlock(&Secret::Password(b"pw"), None),
        Err(Error::WrongPassword)
    ));
    let other_vault = edited(|v| v["vault_id"] = "AAAAAAAAAAAAAAAAAAAAAA".into());
    assert!(unlock_all(&parse(&other_vault).unwrap())
        .iter()
        .all(|r| r.is_err()));
}

#[test]
fn loader_bounds_come_before_any_key_derivation() {
    let huge = edited(|v| v["slots"][0]["kdf"]["memory_kib"] = (64u64 << 20).into());
    let reason = corrupt_reason(parse(&huge));
    assert!(
        reason.contains("65536 MiB") && reason.contains("laptop"),
        "{reason}"
    );
    let lanes = edited(|v| v["slots"][0]["kdf"]["parallelism"] = 17.into());
    assert!(corrupt_reason(parse(&lanes)).contains("parallelism"));
    let no_slots = edited(|v| v["slots"] = Value::Array(vec![]));
    assert!(corrupt_reason(parse(&no_slots)).contains("0 unlock slots"));
    let many = edited(|v| {
        let slot = v["slots"][0].clone();
        v["slots"] = Value::Array(vec![slot; MAX_SLOTS + 1]);
    });
    assert!(corrupt_reason(parse(&many)).contains("33 unlock slots"));
    let twins = edited(|v| v["slots"][1]["label"] = "laptop".into());
    assert!(corrupt_reason(parse(&twins)).contains("same ID or label"));
    let recovery_kdf = edited(|v| v["slots"][2]["kdf"] = v["slots"][0]["kdf"].clone());
    assert!(corrupt_reason(parse(&recovery_kdf)).contains("takes no kdf"));
    let no_kdf = edited(|v| drop(v["slots"][0].as_object_mut().unwrap().remove("kdf")));
    assert!(corrupt_reason(parse(&no_kdf)).contains("needs kdf"));
    let label = edited(|v| v["slots"][0]["label"] = "a\nb".into());
    assert!(corrupt_reason(parse(&label)).contains("one line"));
    let date = edited(|v| v["slots"][0]["created"] = "yesterday".into());
    assert!(corrupt_reason(parse(&date)).contains("created"));
    let generation = edited(|v| v["generation"] = 0.into());
    assert!(corrupt_reason(parse(&generation)).contains("generation"));
}

/// A rotation member planted, edited or taken out by someone without the key: the MAC
/// covers it, so every unlock refuses the config, and a bad one is refused at load.
#[test]
fn the_rotation_member_is_authenticated() {
    let master = master();
    let previous = MasterKey::from_bytes([9; MASTER_KEY_LEN]);
    let mut rotating = config().rotated(&previous, &master).unwrap();
    rotating
        .add_slot(&master, "laptop", &Secret::Password(b"pw"), CHEAP)
        .unwrap();
    let json: Value = serde_json::from_slice(&rotating.to_json()).unwrap();
    let loaded = parse(&rotating.to_json()).unwrap();
    let unlocked = loaded.unlock(&Secret::Password(b"pw"), None).unwrap();
    assert_eq!(
        loaded
            .previous_master(unlocked.master())
            .unwrap()
            .unwrap()
            .as_bytes(),
        previous.as_bytes()
    );

    let retouch = |edit: &dyn Fn(&mut Value)| {
        let mut value = json.clone();
        edit(&mut value);
        parse(&serde_json::to_vec_pretty(&value).unwrap())
    };
    // Taken out, or its format changed: the MAC no longer matches.
    for edit in [
        &(|v: &mut Value| drop(v.as_object_mut().unwrap().remove("rotation")))
            as &dyn Fn(&mut Value),
        &|v: &mut Value| v["rotation"]["from_format"] = 1.into(),
    ] {
        let forged = retouch(edit).unwrap();
        assert!(matches!(
            forged.unlock(&Secret::Password(b"pw"), None),
            Err(Error::ConfigModified(_))
        ));
    }
    // Planted into a config that had none.
    let mut planted: Value = serde_json::from_slice(&config().to_json()).unwrap();
    planted["rotation"] = json["rotation"].clone();
    let planted = parse(&serde_json::to_vec_pretty(&planted).unwrap()).unwrap();
    assert!(matches!(
        planted.unlock(&Secret::Password(b"pw"), None),
        Err(Error::ConfigModified(_))
    ));
    // Refused at load: a format that is not 1 or 2, a wrapped key of the wrong length.
    let format = retouch(&|v| v["rotation"]["from_format"] = 9.into());
    assert!(corrupt_reason(format).contains("format 9"));
    let short = retouch(&|v| v["rotation"]["from_master"] = "AAAA".into());
    assert!(corrupt_reason(short).contains("from_master"));
}

#[test]
fn one_spelling_only() {
    let text = String::from_utf8(config().to_json()).unwrap();
    // A duplicate member, before or after the real one.
    let duplicate = text.replacen(
        "\"generation\": 1,",
        "\"generation\": 1,\n  \"generation\": 1,",
        1,
    );
    assert!(corrupt_reason(parse(duplicate.as_bytes())).contains("duplicate field"));
    let nested = text.replacen(
        "\"iterations\": 1,",
        "\"iterations\": 1, \"iterations\": 1,",
        1,
    );
    assert!(corrupt_reason(parse(nested.as_bytes())).contains("duplicate field"));
    let unknown = edited(|v| v["slots"][0]["pepper"] = "x".into());
    assert!(corrupt_reason(parse(&unknown)).contains("unknown field"));
    let unknown_top = edited(|v| v["pepper"] = Value::Null);
    assert!(corrupt_reason(parse(&unknown_top)).contains("unknown field"));
    let null_rotation = edited(|v| v["rotation"] = Value::Null);
    assert!(corrupt_reason(parse(&null_rotation)).contains("one way"));
    let null_kdf = edited(|v| v["slots"][2]["kdf"] = Value::Null);
    assert!(corrupt_reason(parse(&null_kdf)).contains("one way"));
    let features_as_array = edited(|v| v["features"] = serde_json::json!(["base64url", 200]));
    assert!(corrupt_reason(parse(&features_as_array)).contains("one way"));
}

#[test]
fn a_contact_slot_needs_both_halves_and_its_contact_is_authenticated() {
    let master = master();
    let mut config = config();
    let contact = age::x25519::Identity::generate();
    let recipient = contact.to_public().to_string();
    let share = ContactShare::generate();
    config
        .add_contact_slot(&master, "alice", &recipient, &share, b"passphrase", CHEAP)
        .unwrap();
    let parsed = parse(&config.to_json()).unwrap();
    let opened = parsed
        .unlock(&Secret::Contact(&share, b"passphrase"), None)
        .unwrap();
    assert_eq!(opened.master().as_bytes(), master.as_bytes());
    assert!(matches!(
        parsed.unlock(&Secret::Contact(&share, b"guess"), None),
        Err(Error::WrongPassword)
    ));
    let other = ContactShare::generate();
    assert!(matches!(
        parsed.unlock(&Secret::Contact(&other, b"passphrase"), None),
        Err(Error::WrongPassword)
    ));
    // The recipient is covered by the MAC: a provider cannot redirect future requests.
    let mut value: Value = serde_json::from_slice(&parsed.to_json()).unwrap();
    let stranger = age::x25519::Identity::generate().to_public().to_string();
    value["slots"][3]["contact"]["recipient"] = stranger.into();
    let forged = parse(&serde_json::to_vec(&value).unwrap()).unwrap();
    assert!(matches!(
        forged.unlock(&Secret::Password(b"pw"), None),
        Err(Error::ConfigModified(_))
    ));
    let without = edited(|v| v["slots"][0]["contact"] = value["slots"][3]["contact"].clone());
    assert!(corrupt_reason(parse(&without)).contains("takes no contact"));
}

#[test]
fn slots_are_added_replaced_and_removed_with_the_key() {
    let master = master();
    let mut config = config();
    let err = config
        .add_slot(&master, "laptop", &Secret::Password(b"x"), CHEAP)
        .unwrap_err();
    assert!(err.contains("already"), "{err}");
    let weak = KdfParams {
        memory_kib: 4,
        ..CHEAP
    };
    assert!(config
        .add_slot(&master, "weak", &Secret::Password(b"x"), weak)
        .is_err());
    config
        .replace_slot(&master, 0, &Secret::Password(b"new"), CHEAP)
        .unwrap();
    assert_eq!(config.slots()[0].label(), "laptop");
    assert!(config.unlock(&Secret::Password(b"pw"), None).is_err());
    assert!(config.unlock(&Secret::Password(b"new"), None).is_ok());
    let removed = config.remove_slot(&master, 1).unwrap();
    assert_eq!(removed.label(), "nas");
    assert!(matches!(
        config.unlock(&Secret::Keyfile(&keyfile()), None),
        Err(Error::NoSuchSlot(_))
    ));
    config.remove_slot(&master, 0).unwrap();
    let err = config.remove_slot(&master, 0).unwrap_err();
    assert!(err.contains("last"), "{err}");
    // Every change re-sealed the config: it still opens, and parses back.
    let parsed = parse(&config.to_json()).unwrap();
    assert!(parsed.unlock(&Secret::Recovery(&recovery()), None).is_ok());
}
