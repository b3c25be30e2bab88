//! The test vectors of `docs/format.md`, recomputed.
//!
//! `docs/format.md` holds its vectors in fenced code blocks with the info string `vector`: each
//! line that is neither empty nor a `#` comment is `name = value`, where the value is lowercase
//! hex (bytes) or a double-quoted string (the only escapes are `\"` and `\\`). The config vector
//! is the one fenced block with the info string `json veilfs.conf`: a whole `veilfs.conf`.
//!
//! Two tests read them:
//! - `vectors_match_the_implementation` recomputes every value through the crate's public API
//!   and compares; it fails if a vector is missing, renamed or added.
//! - `vectors_match_the_primitives` recomputes the values from the documented *description*
//!   with the primitive crates alone (hkdf, hmac, sha2, aes-siv, xts-mode, argon2), so the prose
//!   and the vectors agree with each other independently of our code.
//!
//! To (re)generate the values after a deliberate format change:
//! `VEILFS_PRINT_VECTORS=1 cargo test --test format_vectors -- --nocapture`
//! prints the values the implementation computes, ready to paste into the blocks.

use std::cell::RefCell;
use std::collections::BTreeSet;

use aes::cipher::{Array, KeyInit};
use aes::Aes256;
use aes_siv::siv::Aes256Siv;
use data_encoding::{BASE32_NOPAD, BASE64URL_NOPAD, HEXLOWER};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use xts_mode::{get_tweak_default, Xts128};

use veilfs::config::{Config, ConfigV1, Features, KdfParams, Secret, CREATOR};
use veilfs::crypto::content::{sectors_overlapping, FileCipher, FileHeader};
use veilfs::crypto::keys::{ContentKey, MasterKey};
use veilfs::crypto::names::{DirIv, NameCipher, NameEncoding};
use veilfs::crypto::recovery::{format_recovery_key, parse_recovery_key};
use veilfs::layout::file::{FileContent, MemBacking};
use veilfs::layout::longname::BackingName;

const FORMAT_MD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/format.md");

/// Every vector of format.md, in document order.
const EXPECTED: &[&str] = &[
    // Keys
    "master_key",
    "name_key",
    "content_key",
    "diriv_key",
    // File keys and header
    "file_id",
    "header",
    "file_xts_key",
    "short_keystream",
    // Sectors
    "sector0_sha256",
    "sector0_first32",
    "sector0_last32",
    "sector1_sha256",
    "sector1_first32",
    "sector1_last32",
    // Files
    "file_4196_backing_sha256",
    "file_4196_sector1",
    "file_4101_backing_sha256",
    "file_4101_sector0_first32",
    "file_4101_sector0_last32",
    "file_10_backing",
    // Directory IVs
    "root_iv",
    "documents_iv",
    // Names
    "dir_iv",
    "short_name",
    "short_name_base64url",
    "short_name_base32",
    "long_name",
    "long_name_base64url",
    "long_name_base64url_entry",
    "long_name_base64url_sidecar",
    "long_name_base32",
    "long_name_base32_entry",
    "long_name_base32_sidecar",
    // Symlink
    "symlink_nonce",
    "symlink_target",
    "symlink_backing",
    // Extended attribute
    "xattr_nonce",
    "xattr_name",
    "xattr_value",
    "xattr_backing_name",
    "xattr_backing_value",
    // Config
    "config_password",
    "config_salt",
    "config_kek",
    "config_ad",
    "config_checksummed",
    // Recovery key
    "recovery_key",
];

/// Number of ```` ```vector ```` blocks in format.md.
const VECTOR_BLOCKS: usize = 10;

// ---------------------------------------------------------------------------------------------
// Fixed inputs (format.md, "Test vectors")

fn seq<const N: usize>(first: u8) -> [u8; N] {
    std::array::from_fn(|i| first + i as u8)
}

fn master_key() -> MasterKey {
    MasterKey::from_bytes(seq(0x00))
}

const FILE_ID: u8 = 0xa0;
const DIR_IV: u8 = 0xd0;
const SYMLINK_NONCE: u8 = 0xe0;
const XATTR_NONCE: u8 = 0xf0;
const SALT: u8 = 0x80;

/// Plaintext of the file vectors: byte `i` of block `n` (offset `4096 n + i`) is `(i + n) mod 251`.
fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|o| ((o % 4096 + o / 4096) % 251) as u8)
        .collect()
}

/// The 255-byte name: byte `i` is `'a' + (i mod 26)`.
fn long_name() -> String {
    (0..255).map(|i| (b'a' + (i % 26) as u8) as char).collect()
}

const SHORT_NAME: &str = "report.txt";
const SYMLINK_TARGET: &str = "../shared/notes.txt";
const XATTR_NAME: &str = "user.comment";
const XATTR_VALUE: &str = "blue";
const PASSWORD: &str = "correct horse battery staple";

/// The config vector's features, spelled out: they must not follow changes of the default.
fn vector_features() -> Features {
    Features {
        name_encoding: NameEncoding::Base64Url,
        longname_max: 200,
    }
}

fn kdf_params() -> KdfParams {
    KdfParams {
        memory_kib: KdfParams::MEMORY_KIB_MIN,
        iterations: KdfParams::ITERATIONS_MIN,
        parallelism: KdfParams::PARALLELISM_MIN,
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing format.md

#[derive(Clone, PartialEq, Eq)]
enum Value {
    Hex(Vec<u8>),
    Str(String),
}

impl Value {
    fn hex(&self) -> &[u8] {
        match self {
            Value::Hex(bytes) => bytes,
            Value::Str(s) => panic!("expected hex, found the string {s:?}"),
        }
    }
    fn str(&self) -> &str {
        match self {
            Value::Str(s) => s,
            Value::Hex(_) => panic!("expected a string, found hex"),
        }
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Hex(bytes) => f.write_str(&HEXLOWER.encode(bytes)),
            Value::Str(s) => write!(f, "\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")),
        }
    }
}

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

fn parse_value(text: &str) -> Value {
    if let Some(quoted) = text.strip_prefix('"') {
        let inner = quoted
            .strip_suffix('"')
            .unwrap_or_else(|| panic!("unterminated string: {text}"));
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(e @ ('"' | '\\')) => out.push(e),
                    other => panic!("unknown escape \\{other:?} in {text}"),
                },
                '"' => panic!("unescaped quote in {text}"),
                c => out.push(c),
            }
        }
        Value::Str(out)
    } else {
        let bytes = HEXLOWER
            .decode(text.as_bytes())
            .unwrap_or_else(|e| panic!("not lowercase hex ({e}): {text}"));
        Value::Hex(bytes)
    }
}

struct Doc {
    vectors: Vec<(String, Value)>,
    blocks: usize,
    configs: Vec<String>,
}

impl Doc {
    fn read() -> Doc {
        let text = std::fs::read_to_string(FORMAT_MD).expect("docs/format.md is readable");
        let mut doc = Doc {
            vectors: Vec::new(),
            blocks: 0,
            configs: Vec::new(),
        };
        let mut lines = text.lines();
        while let Some(line) = lines.next() {
            let Some(info) = line.strip_prefix("```") else {
                continue;
            };
            let body: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
            match info.trim() {
                "vector" => {
                    doc.blocks += 1;
                    for l in body
                        .iter()
                        .map(|l| l.trim())
                        .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    {
                        let (name, value) = l
                            .split_once(" = ")
                            .unwrap_or_else(|| panic!("not `name = value`: {l}"));
                        doc.vectors
                            .push((name.trim().to_owned(), parse_value(value.trim())));
                    }
                }
                "json veilfs.conf" => doc
                    .configs
                    .push(body.iter().map(|l| format!("{l}\n")).collect()),
                _ => {}
            }
        }
        doc
    }

    fn get(&self, name: &str) -> &Value {
        self.vectors
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("format.md has no vector {name}"))
    }

    fn config(&self) -> &str {
        assert_eq!(
            self.configs.len(),
            1,
            "format.md must hold exactly one `json veilfs.conf` block"
        );
        &self.configs[0]
    }
}

// ---------------------------------------------------------------------------------------------
// The values, through the crate's public API

/// The backing file of `plain` under the fixed file ID, sector by sector.
fn encrypt_file(key: &ContentKey, plain: &[u8]) -> Vec<u8> {
    let cipher = FileCipher::new(
        key,
        FileHeader {
            file_id: seq(FILE_ID),
        },
    );
    let mut out = cipher.header().to_bytes().to_vec();
    let size = plain.len() as u64;
    for sector in sectors_overlapping(0, size, size) {
        let mut buf = plain[sector.start as usize..sector.end() as usize].to_vec();
        cipher.encrypt_sector(sector, &mut buf);
        out.extend_from_slice(&buf);
    }
    // The reader must agree: the vector decrypts back through `FileContent`.
    let backing = MemBacking(RefCell::new(out.clone()));
    let content = FileContent::load(&backing, key).unwrap();
    assert_eq!(FileContent::size(&backing).unwrap(), size);
    assert_eq!(content.read(&backing, 0, plain.len() + 1).unwrap(), plain);
    out
}

fn hkdf(ikm: &[u8], info: &[u8], len: usize) -> Vec<u8> {
    let mut out = vec![0; len];
    Hkdf::<Sha256>::new(None, ikm)
        .expand(info, &mut out)
        .unwrap();
    out
}

fn sha256(data: &[u8]) -> Vec<u8> {
    Sha256::digest(data).to_vec()
}

fn hex(bytes: &[u8]) -> Value {
    Value::Hex(bytes.to_vec())
}

fn string(s: impl Into<String>) -> Value {
    Value::Str(s.into())
}

/// The config of the vectors, as this build writes it.
fn config_json() -> String {
    let config = ConfigV1::create_with_salt(
        &master_key(),
        PASSWORD.as_bytes(),
        kdf_params(),
        vector_features(),
        seq(SALT),
    );
    String::from_utf8(config.to_json()).unwrap()
}

/// The JSON shapes of format.md, "Config file", for recomputing the associated data and the
/// checksum from a config's text: field order is the order of the canonical serialization.
#[derive(Serialize, Deserialize)]
struct KdfJson {
    algorithm: String,
    version: u32,
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
    salt: String,
}

#[derive(Serialize, Deserialize)]
struct FeaturesJson {
    name_encoding: String,
    longname_max: u32,
}

#[derive(Serialize, Deserialize)]
struct ConfigJson {
    format: u32,
    creator: String,
    kdf: KdfJson,
    features: FeaturesJson,
    wrapped_master_key: String,
    checksum: String,
}

/// What a config's associated data covers, and with the wrapped key what its checksum covers.
#[derive(Serialize)]
struct CoveredJson<'a> {
    format: u32,
    creator: &'a str,
    kdf: &'a KdfJson,
    features: &'a FeaturesJson,
    #[serde(skip_serializing_if = "Option::is_none")]
    wrapped_master_key: Option<&'a str>,
}

/// (associated data, checksummed text) of a config file's text.
fn config_canonical(text: &str) -> (String, String) {
    let c: ConfigJson = serde_json::from_str(text).unwrap();
    let ad = CoveredJson {
        format: c.format,
        creator: &c.creator,
        kdf: &c.kdf,
        features: &c.features,
        wrapped_master_key: None,
    };
    let sum = CoveredJson {
        wrapped_master_key: Some(&c.wrapped_master_key),
        ..ad
    };
    (
        serde_json::to_string(&ad).unwrap(),
        serde_json::to_string(&sum).unwrap(),
    )
}

fn config_kek() -> Vec<u8> {
    let p = kdf_params();
    let params = argon2::Params::new(p.memory_kib, p.iterations, p.parallelism, Some(64)).unwrap();
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut kek = vec![0; 64];
    argon
        .hash_password_into(PASSWORD.as_bytes(), &seq::<32>(SALT), &mut kek)
        .unwrap();
    kek
}

/// Every vector as the implementation computes it, in document order. `config` is the config
/// text the config-derived values are computed from.
fn compute(config: &str) -> Vec<(&'static str, Value)> {
    let master = master_key();
    let keys = master.derive();
    let mut v = vec![
        ("master_key", hex(master.as_bytes())),
        ("name_key", hex(keys.name.as_bytes())),
        ("content_key", hex(keys.content.as_bytes())),
        ("diriv_key", hex(keys.diriv.as_bytes())),
    ];

    // File keys. The crate does not expose the per-file keys: they are computed from their
    // description here and checked against the cipher's behaviour below.
    let content = &keys.content;
    let file_id: [u8; 16] = seq(FILE_ID);
    let header = FileHeader { file_id };
    let xts_key = hkdf(
        content.as_bytes(),
        &[&b"veilfs v1 file key"[..], &file_id].concat(),
        64,
    );
    let keystream = hkdf(
        content.as_bytes(),
        &[&b"veilfs v1 short file"[..], &file_id].concat(),
        16,
    );
    v.extend([
        ("file_id", hex(&file_id)),
        ("header", hex(&header.to_bytes())),
        ("file_xts_key", hex(&xts_key)),
        ("short_keystream", hex(&keystream)),
    ]);

    // Sectors 0 and 1: the first 8192 bytes of any file of 8192 bytes or more.
    let plain = pattern(8192);
    let file = encrypt_file(content, &plain);
    let sector0 = &file[18..18 + 4096];
    let sector1 = &file[18 + 4096..];
    assert_eq!(sector0, xts_mode_encrypt(&xts_key, 0, &plain[..4096]));
    assert_eq!(sector1, xts_mode_encrypt(&xts_key, 1, &plain[4096..]));
    for (name, sector) in [("sector0", sector0), ("sector1", sector1)] {
        v.extend([
            (leak(format!("{name}_sha256")), hex(&sha256(sector))),
            (leak(format!("{name}_first32")), hex(&sector[..32])),
            (leak(format!("{name}_last32")), hex(&sector[4096 - 32..])),
        ]);
    }

    let f4196 = encrypt_file(content, &pattern(4196));
    assert_eq!(
        &f4196[18..18 + 4096],
        sector0,
        "a full block 0 is the same sector in every file"
    );
    let f4101 = encrypt_file(content, &pattern(4101));
    let f4101_sector0 = &f4101[18..];
    let f10 = encrypt_file(content, &pattern(10));
    // The short keystream as the cipher uses it: a 15-byte file of zeros encrypts to it.
    let zeros = encrypt_file(content, &[0; 15]);
    assert_eq!(&zeros[18..], &keystream[..15]);
    v.extend([
        ("file_4196_backing_sha256", hex(&sha256(&f4196))),
        ("file_4196_sector1", hex(&f4196[18 + 4096..])),
        ("file_4101_backing_sha256", hex(&sha256(&f4101))),
        ("file_4101_sector0_first32", hex(&f4101_sector0[..32])),
        ("file_4101_sector0_last32", hex(&f4101_sector0[4101 - 32..])),
        ("file_10_backing", hex(&f10)),
    ]);

    let root = DirIv::root(&keys.diriv);
    v.extend([
        ("root_iv", hex(&root.0)),
        (
            "documents_iv",
            hex(&DirIv::derive(&keys.diriv, &root, b"Documents").0),
        ),
    ]);

    // Names, in a directory with the fixed IV. The 255-byte name is long under any threshold.
    let dir_iv = DirIv(seq(DIR_IV));
    let threshold = Features::LONGNAME_MAX_MAX;
    let b64 = NameCipher::new(keys.name.clone(), NameEncoding::Base64Url);
    let b32 = NameCipher::new(keys.name.clone(), NameEncoding::Base32);
    v.extend([
        ("dir_iv", hex(&dir_iv.0)),
        ("short_name", string(SHORT_NAME)),
        (
            "short_name_base64url",
            string(b64.encrypt_name(&dir_iv, SHORT_NAME.as_bytes()).unwrap()),
        ),
        (
            "short_name_base32",
            string(b32.encrypt_name(&dir_iv, SHORT_NAME.as_bytes()).unwrap()),
        ),
        ("long_name", string(long_name())),
    ]);
    for (label, cipher) in [("base64url", &b64), ("base32", &b32)] {
        let encoded = cipher
            .encrypt_name(&dir_iv, long_name().as_bytes())
            .unwrap();
        assert_eq!(
            cipher.decrypt_name(&dir_iv, &encoded).unwrap(),
            long_name().as_bytes()
        );
        let backing = BackingName::new(encoded.clone(), threshold);
        assert!(
            backing.sidecar().is_some(),
            "a 255-byte name is long under any threshold"
        );
        v.extend([
            (leak(format!("long_name_{label}")), string(encoded)),
            (
                leak(format!("long_name_{label}_entry")),
                string(backing.entry()),
            ),
            (
                leak(format!("long_name_{label}_sidecar")),
                string(backing.sidecar().unwrap()),
            ),
        ]);
    }

    let symlink = b64
        .encrypt_symlink_with_nonce(SYMLINK_TARGET.as_bytes(), seq(SYMLINK_NONCE))
        .unwrap();
    assert_eq!(
        b32.decrypt_symlink(symlink.as_bytes()).unwrap(),
        SYMLINK_TARGET.as_bytes()
    );
    v.extend([
        ("symlink_nonce", hex(&seq::<16>(SYMLINK_NONCE))),
        ("symlink_target", string(SYMLINK_TARGET)),
        ("symlink_backing", string(&symlink)),
    ]);

    let xattr_encrypted =
        b64.encrypt_xattr_name(XATTR_NAME.strip_prefix("user.").unwrap().as_bytes());
    let xattr_value = b64.encrypt_xattr_value_with_nonce(
        &xattr_encrypted,
        XATTR_VALUE.as_bytes(),
        seq(XATTR_NONCE),
    );
    assert_eq!(
        b64.decrypt_xattr_value(&xattr_encrypted, &xattr_value)
            .unwrap(),
        XATTR_VALUE.as_bytes()
    );
    v.extend([
        ("xattr_nonce", hex(&seq::<16>(XATTR_NONCE))),
        ("xattr_name", string(XATTR_NAME)),
        ("xattr_value", string(XATTR_VALUE)),
        (
            "xattr_backing_name",
            string(format!("user.{xattr_encrypted}")),
        ),
        ("xattr_backing_value", hex(&xattr_value)),
    ]);

    let (ad, checksummed) = config_canonical(config);
    v.extend([
        ("config_password", string(PASSWORD)),
        ("config_salt", hex(&seq::<32>(SALT))),
        ("config_kek", hex(&config_kek())),
        ("config_ad", string(ad)),
        ("config_checksummed", string(checksummed)),
    ]);

    let recovery = format_recovery_key(&master);
    assert_eq!(
        parse_recovery_key(&recovery).unwrap().as_bytes(),
        master.as_bytes()
    );
    v.push(("recovery_key", string(recovery)));
    v
}

/// Names built at run time live as long as the test: a handful of short strings.
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// AES-256-XTS of one sector with the `xts-mode` crate, keyed K1 || K2.
fn xts_mode_encrypt(key: &[u8], sector: u128, plain: &[u8]) -> Vec<u8> {
    let k1 = Array::try_from(&key[..32]).unwrap();
    let k2 = Array::try_from(&key[32..]).unwrap();
    let xts = Xts128::new(Aes256::new(&k1), Aes256::new(&k2));
    let mut buf = plain.to_vec();
    xts.encrypt_sector(&mut buf, get_tweak_default(sector));
    buf
}

// ---------------------------------------------------------------------------------------------
// The tests

#[test]
fn vectors_match_the_implementation() {
    let fresh = config_json();
    if std::env::var_os("VEILFS_PRINT_VECTORS").is_some() {
        for (name, value) in compute(&fresh) {
            println!("{name} = {value}");
        }
        println!("```json veilfs.conf\n{fresh}```");
        return;
    }

    let doc = Doc::read();
    let names: Vec<&str> = doc.vectors.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names, EXPECTED,
        "the vectors of format.md, by name and order"
    );
    assert_eq!(
        names.iter().collect::<BTreeSet<_>>().len(),
        names.len(),
        "duplicate vector names"
    );
    assert_eq!(
        doc.blocks, VECTOR_BLOCKS,
        "number of ```vector blocks in format.md"
    );

    // The config vector pins `creator`, which names the crate version: a build with another
    // version writes another (equally valid) config, so the documented one is checked by
    // reading it instead, and the config-derived values are computed from it.
    let documented = doc.config();
    let creator = serde_json::from_str::<ConfigJson>(documented)
        .unwrap()
        .creator;
    if creator == CREATOR {
        assert_eq!(
            fresh, documented,
            "Config::create_with_salt writes the documented veilfs.conf"
        );
    } else {
        eprintln!("note: format.md's config was written by {creator:?}, this is {CREATOR:?}");
    }
    let config = Config::from_json(documented.as_bytes()).unwrap();
    assert_eq!(
        String::from_utf8(config.to_json()).unwrap(),
        documented,
        "the config round-trips"
    );
    assert_eq!(
        config
            .unlock(&Secret::Password(PASSWORD.as_bytes()), None)
            .unwrap()
            .master()
            .as_bytes(),
        master_key().as_bytes()
    );
    let Config::V1(v1) = &config else {
        panic!("format.md's first config is of format 1")
    };
    assert_eq!(*v1.kdf(), kdf_params());
    assert_eq!(*config.features(), vector_features());

    let computed = compute(documented);
    assert_eq!(computed.len(), EXPECTED.len());
    for (name, value) in computed {
        assert_eq!(doc.get(name), &value, "vector {name}");
    }
}

/// Recomputes the documented values from format.md's prose with the primitive crates only.
#[test]
fn vectors_match_the_primitives() {
    if std::env::var_os("VEILFS_PRINT_VECTORS").is_some() {
        return;
    }
    let doc = Doc::read();
    let h = |name: &str| doc.get(name).hex().to_vec();
    let s = |name: &str| doc.get(name).str().to_owned();

    // Inputs are what the prose says they are.
    assert_eq!(h("master_key"), seq::<64>(0x00));
    assert_eq!(h("file_id"), seq::<16>(FILE_ID));
    assert_eq!(h("dir_iv"), seq::<16>(DIR_IV));
    assert_eq!(h("symlink_nonce"), seq::<16>(SYMLINK_NONCE));
    assert_eq!(h("xattr_nonce"), seq::<16>(XATTR_NONCE));
    assert_eq!(h("config_salt"), seq::<32>(SALT));
    assert_eq!(s("long_name"), long_name());

    // Keys: HKDF-SHA256, empty salt.
    let master = h("master_key");
    assert_eq!(h("name_key"), hkdf(&master, b"veilfs v1 name key", 64));
    assert_eq!(
        h("content_key"),
        hkdf(&master, b"veilfs v1 content key", 32)
    );
    assert_eq!(h("diriv_key"), hkdf(&master, b"veilfs v1 diriv key", 32));

    // File header and keys.
    let content = h("content_key");
    let file_id = h("file_id");
    assert_eq!(h("header"), [&[0x00, 0x01][..], &file_id].concat());
    let xts_key = h("file_xts_key");
    assert_eq!(
        xts_key,
        hkdf(
            &content,
            &[&b"veilfs v1 file key"[..], &file_id].concat(),
            64
        )
    );
    let keystream = h("short_keystream");
    assert_eq!(
        keystream,
        hkdf(
            &content,
            &[&b"veilfs v1 short file"[..], &file_id].concat(),
            16
        )
    );

    // Sectors with the xts-mode crate: block n at XTS sector number n, CTS for partial blocks.
    let p = pattern(8192);
    for (n, name) in [(0usize, "sector0"), (1, "sector1")] {
        let c = xts_mode_encrypt(&xts_key, n as u128, &p[4096 * n..4096 * (n + 1)]);
        assert_eq!(h(&format!("{name}_sha256")), sha256(&c));
        assert_eq!(h(&format!("{name}_first32")), &c[..32]);
        assert_eq!(h(&format!("{name}_last32")), &c[4096 - 32..]);
    }
    let header = h("header");
    let p = pattern(4196);
    let tail = xts_mode_encrypt(&xts_key, 1, &p[4096..]);
    assert_eq!(h("file_4196_sector1"), tail);
    let backing = [
        &header[..],
        &xts_mode_encrypt(&xts_key, 0, &p[..4096]),
        &tail,
    ]
    .concat();
    assert_eq!(h("file_4196_backing_sha256"), sha256(&backing));
    let p = pattern(4101);
    let sector = xts_mode_encrypt(&xts_key, 0, &p);
    assert_eq!(
        h("file_4101_backing_sha256"),
        sha256(&[&header[..], &sector].concat())
    );
    assert_eq!(h("file_4101_sector0_first32"), &sector[..32]);
    assert_eq!(h("file_4101_sector0_last32"), &sector[4101 - 32..]);
    let short: Vec<u8> = pattern(10)
        .iter()
        .zip(&keystream)
        .map(|(p, k)| p ^ k)
        .collect();
    assert_eq!(h("file_10_backing"), [&header[..], &short].concat());

    // Directory IVs: HMAC-SHA256(diriv key, parent IV || name), first 16 bytes.
    let hmac16 = |parent: &[u8], name: &[u8]| {
        let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(&h("diriv_key")).unwrap();
        mac.update(parent);
        mac.update(name);
        mac.finalize().into_bytes()[..16].to_vec()
    };
    assert_eq!(h("root_iv"), hmac16(&[0; 16], b""));
    assert_eq!(h("documents_iv"), hmac16(&h("root_iv"), b"Documents"));

    // Names: AES-SIV with the directory IV as the one associated-data component.
    let siv = |ad: &[&[u8]], plain: &[u8]| {
        let key = h("name_key");
        Aes256Siv::new(key.as_slice().try_into().unwrap())
            .encrypt(ad, plain)
            .unwrap()
    };
    let dir_iv = h("dir_iv");
    let short = siv(&[&dir_iv], s("short_name").as_bytes());
    assert_eq!(s("short_name_base64url"), BASE64URL_NOPAD.encode(&short));
    assert_eq!(
        s("short_name_base32"),
        BASE32_NOPAD.encode(&short).to_ascii_lowercase()
    );
    let long = siv(&[&dir_iv], s("long_name").as_bytes());
    for (label, encoded) in [
        ("base64url", BASE64URL_NOPAD.encode(&long)),
        ("base32", BASE32_NOPAD.encode(&long).to_ascii_lowercase()),
    ] {
        assert!(encoded.len() > 220);
        assert_eq!(s(&format!("long_name_{label}")), encoded);
        let entry = format!(
            "veilfs.longname.{}",
            BASE64URL_NOPAD.encode(&sha256(encoded.as_bytes()))
        );
        assert_eq!(s(&format!("long_name_{label}_entry")), entry);
        assert_eq!(
            s(&format!("long_name_{label}_sidecar")),
            format!("{entry}.name")
        );
    }

    // Symlink: base64url(nonce || SIV(AD = ["veilfs v1 symlink", nonce], target)).
    let nonce = h("symlink_nonce");
    let sealed = siv(
        &[b"veilfs v1 symlink", &nonce],
        s("symlink_target").as_bytes(),
    );
    assert_eq!(
        s("symlink_backing"),
        BASE64URL_NOPAD.encode(&[&nonce[..], &sealed].concat())
    );

    // Extended attribute.
    let name = s("xattr_name");
    let encrypted = BASE64URL_NOPAD.encode(&siv(
        &[b"veilfs v1 xattr name"],
        name.strip_prefix("user.").unwrap().as_bytes(),
    ));
    assert_eq!(s("xattr_backing_name"), format!("user.{encrypted}"));
    let nonce = h("xattr_nonce");
    let sealed = siv(
        &[b"veilfs v1 xattr value", &nonce, encrypted.as_bytes()],
        s("xattr_value").as_bytes(),
    );
    assert_eq!(h("xattr_backing_value"), [&nonce[..], &sealed].concat());

    // Config: KEK = Argon2id(password, salt), 64 bytes; wrapped key = SIV(KEK, AD = [ad], master).
    let config: ConfigJson = serde_json::from_str(doc.config()).unwrap();
    assert_eq!(s("config_password"), PASSWORD);
    assert_eq!(
        BASE64URL_NOPAD.decode(config.kdf.salt.as_bytes()).unwrap(),
        h("config_salt")
    );
    assert_eq!(
        (
            config.kdf.algorithm.as_str(),
            config.kdf.version,
            config.kdf.memory_kib,
            config.kdf.iterations,
            config.kdf.parallelism
        ),
        ("argon2id", 19, 8, 1, 1)
    );
    let params = argon2::Params::new(8, 1, 1, Some(64)).unwrap();
    let mut kek = vec![0; 64];
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password_into(s("config_password").as_bytes(), &h("config_salt"), &mut kek)
        .unwrap();
    assert_eq!(h("config_kek"), kek);
    let wrapped = BASE64URL_NOPAD
        .decode(config.wrapped_master_key.as_bytes())
        .unwrap();
    assert_eq!(wrapped.len(), 80);
    let unwrapped = Aes256Siv::new(kek.as_slice().try_into().unwrap())
        .decrypt([s("config_ad").as_bytes()], &wrapped)
        .expect("the documented associated data unwraps the documented key");
    assert_eq!(unwrapped, master);
    assert_eq!(
        config.checksum,
        HEXLOWER.encode(&sha256(s("config_checksummed").as_bytes()))
    );
    // The checksummed text is the associated data with the wrapped key appended as a last field.
    let ad = s("config_ad");
    let expected = format!(
        "{},\"wrapped_master_key\":\"{}\"}}",
        &ad[..ad.len() - 1],
        config.wrapped_master_key
    );
    assert_eq!(s("config_checksummed"), expected);

    // Recovery key: base32(master || first 4 bytes of SHA-256("veilfs recovery key" || master)),
    // upper case, groups of 4 joined by '-'.
    let check = sha256(&[&b"veilfs recovery key"[..], &master].concat());
    let raw = BASE32_NOPAD.encode(&[&master[..], &check[..4]].concat());
    let grouped: Vec<String> = raw
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    assert_eq!(s("recovery_key"), grouped.join("-"));
}

/// A short file is never a hole: with a 1-byte file the XORed byte is zero for 1 plaintext byte
/// in 256, and must still read back as that byte (format.md, "Holes").
#[test]
fn a_short_file_whose_ciphertext_is_zero_still_decrypts() {
    let keys = master_key().derive();
    let file_id: [u8; 16] = seq(FILE_ID);
    let keystream = hkdf(
        keys.content.as_bytes(),
        &[&b"veilfs v1 short file"[..], &file_id].concat(),
        16,
    );
    let plain = [keystream[0]];
    let backing = encrypt_file(&keys.content, &plain);
    assert_eq!(backing[18..], [0]);
}
