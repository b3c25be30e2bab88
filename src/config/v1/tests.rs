//! Tests of format 1 configs: round trips, unlocking, the file I/O every format shares
//! (driven with format 1), and edits refused.

use super::*;
use crate::config::test_support::{master, CHEAP};
use crate::config::{Config, CONFIG_NAME, CONFIG_TMP_NAME, MAX_CONFIG_BYTES, MAX_KEYFILE_BYTES};
use serde_json::Value;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

// The file I/O is format-independent (`Config`); these tests drive it with format 1.
impl ConfigV1 {
    fn save(&self, dir: &Path) -> Result<()> {
        Config::V1(self.clone()).save(dir)
    }

    fn load(dir: &Path) -> Result<ConfigV1> {
        Config::load(dir).map(v1_of)
    }
}

fn v1_of(config: Config) -> ConfigV1 {
    match config {
        Config::V1(config) => config,
        other => panic!("expected a format 1 config, got {other:?}"),
    }
}

fn parse_v1(bytes: &[u8]) -> Result<ConfigV1> {
    Config::from_json(bytes).map(v1_of)
}

type Edit = Box<dyn Fn(&mut Value)>;
/// What a special file is called in messages, and how to make one.
type Maker<'a> = (&'static str, Box<dyn Fn() + 'a>);

fn config() -> ConfigV1 {
    ConfigV1::create_with_salt(
        &master(),
        b"password",
        CHEAP,
        Features::default(),
        [2; SALT_LEN],
    )
}

fn json_value(config: &ConfigV1) -> Value {
    serde_json::from_slice(&config.to_json()).unwrap()
}

/// Applies `edit` to the config's JSON, optionally recomputing the checksum the way a
/// deliberate forger would.
fn edited(edit: impl FnOnce(&mut Value), recompute_checksum: bool) -> Vec<u8> {
    let mut value = json_value(&config());
    edit(&mut value);
    if recompute_checksum {
        let mut json: ConfigJson = serde_json::from_value(value).unwrap();
        json.checksum = checksum_hex(&json);
        return serde_json::to_vec_pretty(&json).unwrap();
    }
    serde_json::to_vec_pretty(&value).unwrap()
}

fn corrupt_reason(result: Result<ConfigV1>) -> String {
    match result {
        Err(Error::ConfigCorrupt(reason)) => reason,
        other => panic!("expected ConfigCorrupt, got {other:?}"),
    }
}

#[test]
fn create_save_load_unlock_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let config = config();
    config.save(dir.path()).unwrap();
    let loaded = ConfigV1::load(dir.path()).unwrap();
    assert_eq!(loaded, config);
    assert_eq!(loaded.format(), 1);
    assert_eq!(loaded.creator(), CREATOR);
    assert_eq!(loaded.kdf(), &CHEAP);
    assert_eq!(loaded.salt(), &[2; SALT_LEN]);
    assert_eq!(loaded.features(), &Features::default());
    assert_eq!(
        loaded.unlock(b"password").unwrap().as_bytes(),
        master().as_bytes()
    );
    assert!(matches!(
        loaded.unlock(b"Password"),
        Err(Error::WrongPassword)
    ));
    assert!(matches!(loaded.unlock(b""), Err(Error::WrongPassword)));
}

#[test]
fn file_layout_matches_the_format() {
    let text = String::from_utf8(config().to_json()).unwrap();
    assert!(text.ends_with("}\n"));
    let keys: Vec<&str> = [
        "\"format\"",
        "\"creator\"",
        "\"kdf\"",
        "\"algorithm\"",
        "\"version\"",
        "\"memory_kib\"",
        "\"iterations\"",
        "\"parallelism\"",
        "\"salt\"",
        "\"features\"",
        "\"name_encoding\"",
        "\"longname_max\"",
        "\"wrapped_master_key\"",
        "\"checksum\"",
    ]
    .to_vec();
    let positions: Vec<usize> = keys.iter().map(|k| text.find(k).unwrap()).collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "fields out of order:\n{text}"
    );
    let value = json_value(&config());
    assert_eq!(value["kdf"]["algorithm"], "argon2id");
    assert_eq!(value["kdf"]["version"], 19);
    assert_eq!(value["features"]["name_encoding"], "base64url");
    assert_eq!(value["kdf"]["salt"].as_str().unwrap().len(), 43);
    assert_eq!(value["wrapped_master_key"].as_str().unwrap().len(), 107);
    assert_eq!(value["checksum"].as_str().unwrap().len(), 64);
}

#[test]
fn creation_is_deterministic_given_the_salt_and_salted_otherwise() {
    assert_eq!(config().to_json(), config().to_json());
    let a = ConfigV1::create(&master(), b"password", CHEAP, Features::default());
    let b = ConfigV1::create(&master(), b"password", CHEAP, Features::default());
    assert_ne!(a.salt(), b.salt());
    assert_ne!(a.to_json(), b.to_json());
    assert_eq!(
        b.unlock(b"password").unwrap().as_bytes(),
        master().as_bytes()
    );
}

#[test]
fn known_answer_vector() {
    // Pins the format: the wrapping (Argon2id + SIV with the header as associated data) and
    // the checksum. A change here breaks every existing vault. Cross-checked with an independent
    // implementation (Python cryptography 48: Argon2id and AESSIV from OpenSSL, hashlib).
    let config = ConfigV1::wrap(
        "veilfs 0.1.0".into(),
        &master(),
        b"password",
        None,
        CHEAP,
        Features {
            name_encoding: NameEncoding::Base64Url,
            longname_max: 220,
        },
        [2; 32],
    );
    let value = json_value(&config);
    assert_eq!(
        value["kdf"]["salt"],
        "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI"
    );
    assert_eq!(value["wrapped_master_key"], KAT_WRAPPED);
    assert_eq!(value["checksum"], KAT_CHECKSUM);
    // The associated data is the compact JSON of the fields before the wrapped key.
    let header = String::from_utf8(config.header()).unwrap();
    assert_eq!(
        header,
        format!(
            "{{\"format\":1,\"creator\":\"veilfs 0.1.0\",\"kdf\":{{\"algorithm\":\"argon2id\",\"version\":19,\
             \"memory_kib\":8,\"iterations\":1,\"parallelism\":1,\
             \"salt\":\"AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI\"}},\
             \"features\":{{\"name_encoding\":\"base64url\",\"longname_max\":220}}}}"
        )
    );
}

const KAT_WRAPPED: &str =
    "tKm6mPczBCDO7icT54h61Ua68eRmOQkcXWP3ask_jU3gx42cTkgGQ4RR2i507Eo6mrGDuAlXv0YQP894ekXgi1FVwEBIGccC7LgmqWSSFPI";
const KAT_CHECKSUM: &str = "4a8da2772a5054f0e1001f05718c39007ca8e383bf21aea5f315a604cc9da0c6";

const KAT_KEYFILE_CONTENTS: &[u8] = b"veilfs test key file\n";
const KAT_KEYFILE_SECRET: &str = "4856d26f430ad4bd1991d86dac1ec8a24a1df0ac469d7b177c1335448eb784d2";
const KAT_KEYFILE_WRAPPED: &str =
    "i4eVfcT-4MeXMQaBBgzjwO6tcR0nh1b6o-x-qS4FqRiSpmE_syorOvg8GrCnC717mNk27R77xMXun2LHb-UNAynynhucODFSyipeDZpDaZI";
const KAT_KEYFILE_CHECKSUM: &str =
    "7fb7c5c560d04bce81c42d0b3ce23413ea4a2c9aead52e0f20fb509931f0e269";

fn keyfile() -> KeyfileSecret {
    KeyfileSecret::from_contents(KAT_KEYFILE_CONTENTS)
}

fn keyfile_config() -> ConfigV1 {
    ConfigV1::create_with_salt_and_keyfile(
        &master(),
        b"password",
        Some(&keyfile()),
        CHEAP,
        Features::default(),
        [2; SALT_LEN],
    )
}

#[test]
fn known_answer_vector_with_a_keyfile() {
    // Cross-checked with Python cryptography 48 (Argon2id with `secret=`, AESSIV, hashlib).
    assert_eq!(HEXLOWER.encode(keyfile().as_bytes()), KAT_KEYFILE_SECRET);
    let config = ConfigV1::wrap(
        "veilfs 0.1.0".into(),
        &master(),
        b"password",
        Some(&keyfile()),
        CHEAP,
        Features {
            name_encoding: NameEncoding::Base64Url,
            longname_max: 220,
        },
        [2; 32],
    );
    let value = json_value(&config);
    assert_eq!(value["features"]["keyfile"], true);
    assert_eq!(value["wrapped_master_key"], KAT_KEYFILE_WRAPPED);
    assert_eq!(value["checksum"], KAT_KEYFILE_CHECKSUM);
    let header = String::from_utf8(config.header()).unwrap();
    assert!(
        header.ends_with(
            "\"features\":{\"name_encoding\":\"base64url\",\"longname_max\":220,\"keyfile\":true}}"
        ),
        "{header}"
    );
}

#[test]
fn configs_without_a_keyfile_do_not_mention_it() {
    let text = String::from_utf8(config().to_json()).unwrap();
    assert!(!text.contains("keyfile"), "{text}");
    assert!(!config().requires_keyfile());
}

#[test]
fn keyfile_vault_needs_both_factors() {
    let dir = tempfile::tempdir().unwrap();
    keyfile_config().save(dir.path()).unwrap();
    let loaded = ConfigV1::load(dir.path()).unwrap();
    assert!(loaded.requires_keyfile());
    assert_eq!(loaded, keyfile_config());
    let key = loaded
        .unlock_with_keyfile(b"password", Some(&keyfile()))
        .unwrap();
    assert_eq!(key.as_bytes(), master().as_bytes());
    // The password alone, the key file with a wrong password, and another key file fail.
    assert!(matches!(
        loaded.unlock(b"password"),
        Err(Error::WrongPassword)
    ));
    assert!(matches!(
        loaded.unlock_with_keyfile(b"wrong", Some(&keyfile())),
        Err(Error::WrongPassword)
    ));
    let other = KeyfileSecret::from_contents(b"veilfs test key file");
    assert!(matches!(
        loaded.unlock_with_keyfile(b"password", Some(&other)),
        Err(Error::WrongPassword)
    ));
    // A key file given for a vault without one changes the key too.
    assert!(matches!(
        config().unlock_with_keyfile(b"password", Some(&keyfile())),
        Err(Error::WrongPassword)
    ));
}

#[test]
fn removing_the_keyfile_flag_does_not_unlock() {
    let mut value = json_value(&keyfile_config());
    value["features"].as_object_mut().unwrap().remove("keyfile");
    // Without recomputing the checksum: tampering.
    let bytes = serde_json::to_vec_pretty(&value).unwrap();
    assert!(matches!(parse_v1(&bytes), Err(Error::ConfigTampered)));
    // With it: loads, but the flag is in the associated data, so nothing unlocks.
    let mut json: ConfigJson = serde_json::from_value(value).unwrap();
    json.checksum = checksum_hex(&json);
    let forged = parse_v1(&serde_json::to_vec_pretty(&json).unwrap()).unwrap();
    assert!(!forged.requires_keyfile());
    assert!(matches!(
        forged.unlock(b"password"),
        Err(Error::WrongPassword)
    ));
    assert!(matches!(
        forged.unlock_with_keyfile(b"password", Some(&keyfile())),
        Err(Error::WrongPassword)
    ));
}

#[test]
fn keyfile_false_is_not_a_valid_spelling() {
    let bytes = edited(|v| v["features"]["keyfile"] = Value::from(false), false);
    assert!(corrupt_reason(parse_v1(&bytes)).contains("keyfile"));
    let bytes = edited(|v| v["features"]["keyfile"] = Value::from("yes"), false);
    corrupt_reason(parse_v1(&bytes));
}

#[test]
fn rewrap_with_keyfile_keeps_or_drops_the_factor() {
    let old = keyfile_config();
    let kept = old.rewrap_with_keyfile(&master(), b"new", Some(&keyfile()));
    assert!(kept.requires_keyfile());
    assert!(kept.unlock(b"new").is_err());
    assert!(kept.unlock_with_keyfile(b"new", Some(&keyfile())).is_ok());
    let dropped = old.rewrap(&master(), b"new");
    assert!(!dropped.requires_keyfile());
    assert!(dropped.unlock(b"new").is_ok());
}

#[test]
fn keyfile_secret_reads_whole_files_and_refuses_empty_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key");
    let contents: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    fs::write(&path, &contents).unwrap();
    assert_eq!(
        KeyfileSecret::read(&path).unwrap().as_bytes(),
        KeyfileSecret::from_contents(&contents).as_bytes()
    );
    fs::write(&path, b"").unwrap();
    assert_eq!(
        KeyfileSecret::read(&path).unwrap_err().kind(),
        io::ErrorKind::InvalidData
    );
    assert!(KeyfileSecret::read(&dir.path().join("missing")).is_err());
    assert_eq!(format!("{:?}", keyfile()), "KeyfileSecret(..)");
}

#[test]
fn rewrap_changes_password_and_salt_only() {
    let features = Features {
        name_encoding: NameEncoding::Base32,
        longname_max: 100,
    };
    let old = ConfigV1::create(&master(), b"old", CHEAP, features.clone());
    let key = old.unlock(b"old").unwrap();
    let new = old.rewrap(&key, b"new");
    assert_ne!(new.salt(), old.salt());
    assert_eq!(new.kdf(), old.kdf());
    assert_eq!(new.features(), &features);
    assert_eq!(new.creator(), old.creator());
    assert!(matches!(new.unlock(b"old"), Err(Error::WrongPassword)));
    assert_eq!(new.unlock(b"new").unwrap().as_bytes(), master().as_bytes());
}

#[test]
fn rewrap_keeps_the_creator() {
    let mut old = config();
    old.creator = "veilfs 0.0.9".into();
    let new = old.rewrap(&master(), b"new");
    assert_eq!(new.creator(), "veilfs 0.0.9");
    let reloaded = parse_v1(&new.to_json()).unwrap();
    assert_eq!(
        reloaded.unlock(b"new").unwrap().as_bytes(),
        master().as_bytes()
    );
}

#[test]
fn save_is_atomic_read_only_and_replaces() {
    let dir = tempfile::tempdir().unwrap();
    // A stale temporary file from a crash is replaced, not an error.
    fs::write(dir.path().join(CONFIG_TMP_NAME), b"stale").unwrap();
    config().save(dir.path()).unwrap();
    assert!(!dir.path().join(CONFIG_TMP_NAME).exists());
    let meta = fs::metadata(dir.path().join(CONFIG_NAME)).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o400);

    // Saving over the read-only file works (rename needs only the directory writable).
    let newer = config().rewrap(&master(), b"newer");
    newer.save(dir.path()).unwrap();
    assert_eq!(ConfigV1::load(dir.path()).unwrap(), newer);
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, [CONFIG_NAME]);
}

#[test]
fn save_failure_leaves_the_old_config() {
    let dir = tempfile::tempdir().unwrap();
    config().save(dir.path()).unwrap();
    let before = fs::read(dir.path().join(CONFIG_NAME)).unwrap();
    // A directory in the temporary file's place cannot be removed with remove_file.
    fs::create_dir(dir.path().join(CONFIG_TMP_NAME)).unwrap();
    assert!(config().rewrap(&master(), b"x").save(dir.path()).is_err());
    assert_eq!(fs::read(dir.path().join(CONFIG_NAME)).unwrap(), before);
}

#[test]
fn missing_config_is_not_a_vault() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(ConfigV1::load(dir.path()), Err(Error::NotAVault(p)) if p == dir.path()));
    assert!(matches!(
        ConfigV1::load(&dir.path().join("nope")),
        Err(Error::NotAVault(_))
    ));
}

#[test]
fn unreadable_shapes_are_corrupt() {
    let good = config().to_json();
    corrupt_reason(parse_v1(b""));
    corrupt_reason(parse_v1(b" \n"));
    assert!(corrupt_reason(parse_v1(b"\xff\xfe{}")).contains("UTF-8"));
    for cut in [1, good.len() / 3, good.len() / 2, good.len() - 3] {
        assert!(
            corrupt_reason(parse_v1(&good[..cut])).contains("JSON"),
            "cut at {cut}"
        );
    }
    assert!(corrupt_reason(parse_v1(b"[1]")).contains("not a JSON object"));
    assert!(corrupt_reason(parse_v1(b"{\"format\": \"1\"}")).contains("format"));
    assert!(corrupt_reason(parse_v1(b"{\"format\": -1}")).contains("format"));
    corrupt_reason(parse_v1(b"{\"format\": 1}"));
    let unknown = edited(|v| v["extra"] = Value::from(1), false);
    assert!(corrupt_reason(parse_v1(&unknown)).contains("unknown field"));
    let unknown_kdf = edited(|v| v["kdf"]["pepper"] = Value::from("x"), false);
    assert!(corrupt_reason(parse_v1(&unknown_kdf)).contains("unknown field"));
    let unknown_feature = edited(|v| v["features"]["compression"] = Value::from(true), false);
    assert!(corrupt_reason(parse_v1(&unknown_feature)).contains("unknown field"));
    let missing = edited(
        |v| drop(v.as_object_mut().unwrap().remove("features")),
        false,
    );
    assert!(corrupt_reason(parse_v1(&missing)).contains("missing field"));
    let encoding = edited(
        |v| v["features"]["name_encoding"] = Value::from("rot13"),
        false,
    );
    assert!(corrupt_reason(parse_v1(&encoding)).contains("unknown variant"));
}

#[test]
fn bad_encodings_and_lengths_are_corrupt() {
    let salt = edited(|v| v["kdf"]["salt"] = Value::from("not base64!"), false);
    assert!(corrupt_reason(parse_v1(&salt)).contains("kdf.salt"));
    let short_salt = edited(|v| v["kdf"]["salt"] = Value::from("AAAA"), false);
    assert!(corrupt_reason(parse_v1(&short_salt)).contains("3 bytes, expected 32"));
    let padded = edited(
        |v| v["kdf"]["salt"] = Value::from(format!("{}=", v["kdf"]["salt"].as_str().unwrap())),
        false,
    );
    corrupt_reason(parse_v1(&padded));
    let wrapped = edited(|v| v["wrapped_master_key"] = Value::from("AAAA"), false);
    assert!(corrupt_reason(parse_v1(&wrapped)).contains("wrapped_master_key"));
    let checksum = edited(|v| v["checksum"] = Value::from("abc"), false);
    assert!(corrupt_reason(parse_v1(&checksum)).contains("checksum"));
    let upper = edited(
        |v| v["checksum"] = Value::from(v["checksum"].as_str().unwrap().to_uppercase()),
        false,
    );
    corrupt_reason(parse_v1(&upper));
}

#[test]
fn other_versions_get_the_version_error() {
    // Even with fields this version does not know, and without a checksum.
    let v3 = br#"{"format": 3, "argon3": {}, "wrapped_keys": []}"#;
    assert!(matches!(parse_v1(v3), Err(Error::ConfigVersion(3))));
    let v0 = edited(|v| v["format"] = Value::from(0), true);
    assert!(matches!(parse_v1(&v0), Err(Error::ConfigVersion(0))));
    let big = edited(
        |v| v["format"] = Value::from(u64::from(u32::MAX) + 1),
        false,
    );
    corrupt_reason(parse_v1(&big));
}

#[test]
fn edits_without_checksum_are_tampering() {
    let edits: Vec<Edit> = vec![
        Box::new(|v| v["creator"] = Value::from("someone else")),
        Box::new(|v| v["kdf"]["memory_kib"] = Value::from(16)),
        Box::new(|v| v["kdf"]["iterations"] = Value::from(2)),
        Box::new(|v| v["kdf"]["parallelism"] = Value::from(2)),
        Box::new(|v| v["kdf"]["salt"] = Value::from(BASE64URL_NOPAD.encode(&[3; 32]))),
        Box::new(|v| v["kdf"]["algorithm"] = Value::from("argon2i")),
        Box::new(|v| v["kdf"]["version"] = Value::from(16)),
        Box::new(|v| v["features"]["name_encoding"] = Value::from("base32")),
        Box::new(|v| v["features"]["longname_max"] = Value::from(180)),
        Box::new(|v| v["wrapped_master_key"] = Value::from(BASE64URL_NOPAD.encode(&[0; 80]))),
        Box::new(|v| v["checksum"] = Value::from("0".repeat(64))),
    ];
    for (i, edit) in edits.into_iter().enumerate() {
        let bytes = edited(edit, false);
        assert!(
            matches!(parse_v1(&bytes), Err(Error::ConfigTampered)),
            "edit {i}"
        );
    }
}

#[test]
fn forged_parameters_with_a_valid_checksum_do_not_unlock() {
    // Someone who recomputes the checksum gets past load, but the SIV wrapping is bound to
    // every field: the password no longer unlocks, and nothing weaker is ever used.
    let edits: Vec<Edit> = vec![
        Box::new(|v| v["creator"] = Value::from("someone else")),
        Box::new(|v| v["kdf"]["memory_kib"] = Value::from(16)),
        Box::new(|v| v["kdf"]["iterations"] = Value::from(2)),
        Box::new(|v| {
            v["kdf"]["memory_kib"] = Value::from(16);
            v["kdf"]["parallelism"] = Value::from(2);
        }),
        Box::new(|v| v["kdf"]["salt"] = Value::from(BASE64URL_NOPAD.encode(&[3; 32]))),
        Box::new(|v| v["features"]["name_encoding"] = Value::from("base32")),
        Box::new(|v| v["features"]["longname_max"] = Value::from(180)),
        Box::new(|v| {
            let mut wrapped = BASE64URL_NOPAD
                .decode(v["wrapped_master_key"].as_str().unwrap().as_bytes())
                .unwrap();
            wrapped[40] ^= 1;
            v["wrapped_master_key"] = Value::from(BASE64URL_NOPAD.encode(&wrapped));
        }),
    ];
    for (i, edit) in edits.into_iter().enumerate() {
        let forged = parse_v1(&edited(edit, true)).unwrap_or_else(|e| panic!("edit {i}: {e}"));
        assert!(
            matches!(forged.unlock(b"password"), Err(Error::WrongPassword)),
            "edit {i}"
        );
    }
}

#[test]
fn out_of_bounds_parameters_are_corrupt_even_with_a_valid_checksum() {
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|v| v["creator"] = Value::from("veilfs\u{1b}[2J")),
            "creator",
        ),
        (
            Box::new(|v| v["creator"] = Value::from("x".repeat(101))),
            "creator",
        ),
        (
            Box::new(|v| v["kdf"]["algorithm"] = Value::from("argon2i")),
            "algorithm",
        ),
        (
            Box::new(|v| v["kdf"]["version"] = Value::from(16)),
            "version",
        ),
        (
            Box::new(|v| v["kdf"]["memory_kib"] = Value::from(7)),
            "memory",
        ),
        (
            Box::new(|v| v["kdf"]["memory_kib"] = Value::from(4 * 1024 * 1024 + 1)),
            "memory",
        ),
        (
            Box::new(|v| v["kdf"]["iterations"] = Value::from(0)),
            "iterations",
        ),
        (
            Box::new(|v| v["kdf"]["iterations"] = Value::from(65)),
            "iterations",
        ),
        (
            Box::new(|v| v["kdf"]["parallelism"] = Value::from(0)),
            "parallelism",
        ),
        (
            Box::new(|v| v["kdf"]["parallelism"] = Value::from(17)),
            "parallelism",
        ),
        (
            Box::new(|v| v["kdf"]["parallelism"] = Value::from(2)),
            "per lane",
        ),
        (
            Box::new(|v| v["features"]["longname_max"] = Value::from(63)),
            "long-name",
        ),
        (
            Box::new(|v| v["features"]["longname_max"] = Value::from(256)),
            "long-name",
        ),
    ];
    for (edit, word) in cases {
        let reason = corrupt_reason(parse_v1(&edited(edit, true)));
        assert!(reason.contains(word), "{reason:?} should mention {word}");
    }
}

#[test]
fn oversized_file_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join(CONFIG_NAME),
        vec![b' '; MAX_CONFIG_BYTES as usize + 1],
    )
    .unwrap();
    assert!(corrupt_reason(ConfigV1::load(dir.path())).contains("larger"));
}

#[test]
fn a_config_that_is_not_a_regular_file_is_corrupt_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(CONFIG_NAME);
    let good = tempfile::NamedTempFile::new_in(dir.path()).unwrap();
    fs::write(good.path(), config().to_json()).unwrap();
    let make: [Maker; 4] = [
        (
            "a FIFO",
            Box::new(|| nix::unistd::mkfifo(&path, nix::sys::stat::Mode::S_IRUSR).unwrap()),
        ),
        (
            "a socket",
            Box::new(|| drop(std::os::unix::net::UnixListener::bind(&path).unwrap())),
        ),
        // Even one pointing to a good config: veilfs.conf is never followed.
        (
            "a symbolic link",
            Box::new(|| std::os::unix::fs::symlink(good.path(), &path).unwrap()),
        ),
        ("a directory", Box::new(|| fs::create_dir(&path).unwrap())),
    ];
    for (kind, make) in make {
        make();
        let reason = corrupt_reason(ConfigV1::load(dir.path()));
        assert!(
            reason.contains(&format!("{} is {kind}", path.display())),
            "{reason}"
        );
        let _ = fs::remove_file(&path).or_else(|_| fs::remove_dir(&path));
    }
    // A dangling symlink is not "no config": it is a config of the wrong type.
    std::os::unix::fs::symlink(dir.path().join("nowhere"), &path).unwrap();
    assert!(corrupt_reason(ConfigV1::load(dir.path())).contains("symbolic link"));
}

#[test]
fn save_replaces_whatever_is_in_the_temporary_files_place() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join(CONFIG_TMP_NAME);
    nix::unistd::mkfifo(&tmp, nix::sys::stat::Mode::S_IRWXU).unwrap();
    // With a umask that would take the owner's read bit: the mode is exact anyway.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o477));
    let saved = config().save(dir.path());
    nix::sys::stat::umask(old);
    saved.unwrap();
    let meta = fs::symlink_metadata(dir.path().join(CONFIG_NAME)).unwrap();
    assert!(meta.file_type().is_file());
    assert_eq!(meta.permissions().mode() & 0o7777, 0o400);
    assert!(!tmp.exists());
    assert_eq!(ConfigV1::load(dir.path()).unwrap(), config());
}

#[test]
fn keyfile_secret_refuses_special_and_large_files_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let big = dir.path().join("big");
    fs::write(&big, vec![7u8; MAX_KEYFILE_BYTES as usize + 1]).unwrap();
    let max = dir.path().join("max");
    fs::write(&max, vec![7u8; MAX_KEYFILE_BYTES as usize]).unwrap();
    for (path, needle) in [
        (fifo.as_path(), "is a FIFO"),
        (Path::new("/dev/zero"), "is a character device"),
        (dir.path(), "is a directory"),
        (big.as_path(), "more than 1048576"),
    ] {
        let err = KeyfileSecret::read(path).unwrap_err();
        assert!(
            err.to_string().contains(needle),
            "{}: {err}",
            path.display()
        );
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
    }
    // Exactly the limit is fine, and every byte counts.
    assert_eq!(
        KeyfileSecret::read(&max).unwrap().as_bytes(),
        KeyfileSecret::from_contents(&vec![7u8; MAX_KEYFILE_BYTES as usize]).as_bytes()
    );
}

#[test]
fn default_parameters_are_accepted() {
    assert_eq!(KdfParams::default().check(), Ok(()));
    assert_eq!(Features::default().check(), Ok(()));
    assert_eq!(KdfParams::default().memory_kib, 262144);
}

#[test]
#[should_panic(expected = "ConfigV1::create")]
fn creating_an_unloadable_config_is_a_bug() {
    ConfigV1::create(
        &master(),
        b"pw",
        KdfParams {
            iterations: 0,
            ..CHEAP
        },
        Features::default(),
    );
}
