//! The config file `veilfs.conf` at the root of the backing directory (format v1, "Config file"
//! in format.md).
//!
//! It holds the Argon2id parameters and salt, the vault's feature flags, and the master key
//! wrapped with AES-256-SIV under the key derived from the password. The associated data of the
//! wrapping is the compact JSON of every field before the wrapped key, so a changed parameter or
//! feature flag makes unwrapping fail. A SHA-256 checksum over all fields but itself tells a
//! damaged or hand-edited file ([`Error::ConfigTampered`]) apart from a wrong password
//! ([`Error::WrongPassword`]), which the SIV check alone cannot.
//!
//! On disk (pretty-printed, fields in this order):
//!
//! ```json
//! {
//!   "format": 1,
//!   "creator": "veilfs 0.1.0",
//!   "kdf": { "algorithm": "argon2id", "version": 19, "memory_kib": 262144, "iterations": 3,
//!            "parallelism": 1, "salt": "<base64url, unpadded, 32 bytes>" },
//!   "features": { "name_encoding": "base64url", "longname_max": 200, "keyfile": true },
//!   "wrapped_master_key": "<base64url, unpadded, 80 bytes>",
//!   "checksum": "<lowercase hex SHA-256>"
//! }
//! ```
//!
//! `"keyfile": true` is present only in vaults created with a key file as a second factor
//! ([`ConfigV1::create_with_keyfile`]); it is never written as `false`, so the associated data and
//! checksum of every config without a key file are what they were before the flag existed. With
//! it, the Argon2id secret input (RFC 9106 "K") is SHA-256 of the key file's bytes
//! ([`KeyfileSecret`]), and the password alone derives a different key.

use aes_siv::siv::Aes256Siv;
use aes_siv::KeyInit;
use data_encoding::{BASE64URL_NOPAD, HEXLOWER};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::kdf::{KdfFloor, KdfJson, KdfParams, SALT_LEN};
use super::keyfile::KeyfileSecret;
use super::{decode_fixed, Features, CREATOR};
use crate::crypto::keys::{MasterKey, MASTER_KEY_LEN};
use crate::crypto::names::NameEncoding;
use crate::crypto::random_bytes;
use crate::error::{Error, Result};

/// The format number of this config.
pub const FORMAT_V1: u32 = 1;

/// Format v1 accepted any cost from 8 KiB and 1 pass; such vaults still open.
const V1_FLOOR: KdfFloor = KdfParams::TEST_FLOOR;
const KEK_LEN: usize = 64;
const WRAPPED_LEN: usize = MASTER_KEY_LEN + 16;

/// A parsed and checked `veilfs.conf`: everything but the master key, which [`ConfigV1::unlock`]
/// unwraps with the password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigV1 {
    format: u32,
    creator: String,
    kdf: KdfParams,
    salt: [u8; SALT_LEN],
    features: Features,
    /// `features.keyfile` on disk: unlocking needs the key file as well as the password.
    keyfile: bool,
    wrapped_master_key: [u8; WRAPPED_LEN],
}

// The JSON shapes. The field order of these structs is the order on disk and in the compact JSON
// that the associated data and the checksum are computed over: do not reorder.

/// `features` on disk: [`Features`] plus the key-file flag, which is written only when set (so
/// configs without it serialize, and are authenticated, exactly as before it existed).
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeaturesJson {
    name_encoding: NameEncoding,
    longname_max: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    keyfile: Option<bool>,
}

impl FeaturesJson {
    fn new(features: &Features, keyfile: bool) -> FeaturesJson {
        FeaturesJson {
            name_encoding: features.name_encoding,
            longname_max: features.longname_max,
            keyfile: keyfile.then_some(true),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigJson {
    format: u32,
    creator: String,
    kdf: KdfJson,
    features: FeaturesJson,
    wrapped_master_key: String,
    checksum: String,
}

/// What the wrapped key is bound to: the associated data of the SIV wrapping.
#[derive(Serialize)]
struct Header<'a> {
    format: u32,
    creator: &'a str,
    kdf: &'a KdfJson,
    features: &'a FeaturesJson,
}

/// What the checksum covers: every field before it.
#[derive(Serialize)]
struct Checksummed<'a> {
    format: u32,
    creator: &'a str,
    kdf: &'a KdfJson,
    features: &'a FeaturesJson,
    wrapped_master_key: &'a str,
}

fn compact_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("config JSON has only strings, integers and string-keyed maps")
}

fn header_bytes(format: u32, creator: &str, kdf: &KdfJson, features: &FeaturesJson) -> Vec<u8> {
    compact_json(&Header {
        format,
        creator,
        kdf,
        features,
    })
}

fn checksum_hex(json: &ConfigJson) -> String {
    let covered = Checksummed {
        format: json.format,
        creator: &json.creator,
        kdf: &json.kdf,
        features: &json.features,
        wrapped_master_key: &json.wrapped_master_key,
    };
    HEXLOWER.encode(Sha256::digest(compact_json(&covered)).as_slice())
}

impl ConfigV1 {
    /// A new config wrapping `master` under `password`, with a random salt.
    ///
    /// # Panics
    /// If `kdf` or `features` are outside the bounds that
    /// [`Config::load`](crate::config::Config::load) accepts (see [`KdfParams::check`] and
    /// [`Features::check`]): a config that could never be opened again is a bug of the caller.
    pub fn create(
        master: &MasterKey,
        password: &[u8],
        kdf: KdfParams,
        features: Features,
    ) -> ConfigV1 {
        let mut salt = [0u8; SALT_LEN];
        random_bytes(&mut salt);
        ConfigV1::create_with_salt(master, password, kdf, features, salt)
    }

    /// [`ConfigV1::create`] with a given salt: deterministic, for test vectors only.
    #[doc(hidden)]
    pub fn create_with_salt(
        master: &MasterKey,
        password: &[u8],
        kdf: KdfParams,
        features: Features,
        salt: [u8; SALT_LEN],
    ) -> ConfigV1 {
        ConfigV1::create_with_salt_and_keyfile(master, password, None, kdf, features, salt)
    }

    /// [`ConfigV1::create`] for a vault that needs a key file as well as the password, ever after:
    /// the config records `"keyfile": true`, and the key derivation takes `keyfile` as its secret
    /// input.
    pub fn create_with_keyfile(
        master: &MasterKey,
        password: &[u8],
        keyfile: &KeyfileSecret,
        kdf: KdfParams,
        features: Features,
    ) -> ConfigV1 {
        let mut salt = [0u8; SALT_LEN];
        random_bytes(&mut salt);
        ConfigV1::create_with_salt_and_keyfile(master, password, Some(keyfile), kdf, features, salt)
    }

    /// [`ConfigV1::create_with_keyfile`] (or, without a key file, [`ConfigV1::create`]) with a given
    /// salt: deterministic, for test vectors only.
    #[doc(hidden)]
    pub fn create_with_salt_and_keyfile(
        master: &MasterKey,
        password: &[u8],
        keyfile: Option<&KeyfileSecret>,
        kdf: KdfParams,
        features: Features,
        salt: [u8; SALT_LEN],
    ) -> ConfigV1 {
        ConfigV1::wrap(
            CREATOR.to_owned(),
            master,
            password,
            keyfile,
            kdf,
            features,
            salt,
        )
    }

    fn wrap(
        creator: String,
        master: &MasterKey,
        password: &[u8],
        keyfile: Option<&KeyfileSecret>,
        kdf: KdfParams,
        features: Features,
        salt: [u8; SALT_LEN],
    ) -> ConfigV1 {
        if let Err(reason) = kdf.check_bounds(V1_FLOOR).and_then(|()| features.check()) {
            panic!("ConfigV1::create: {reason}");
        }
        let mut config = ConfigV1 {
            format: FORMAT_V1,
            creator,
            kdf,
            salt,
            features,
            keyfile: keyfile.is_some(),
            wrapped_master_key: [0; WRAPPED_LEN],
        };
        let kek = config
            .kdf
            .derive::<KEK_LEN>(&config.salt, password, keyfile)
            .expect("parameters within the checked bounds are accepted by Argon2");
        let mut buffer = Zeroizing::new(Vec::with_capacity(WRAPPED_LEN));
        buffer.extend_from_slice(master.as_bytes());
        Aes256Siv::new((&*kek).into())
            .encrypt_in_place([config.header()], &mut *buffer)
            .expect("SIV accepts one header and any plaintext");
        config.wrapped_master_key.copy_from_slice(&buffer);
        config
    }

    /// The master key, if `password` is the one the config was created or last rewrapped with.
    /// Takes as long as the key derivation (0.6-0.8 s with the default parameters). A vault that
    /// [needs a key file](ConfigV1::requires_keyfile) never unlocks with the password alone
    /// ([`Error::WrongPassword`]): see [`ConfigV1::unlock_with_keyfile`].
    pub fn unlock(&self, password: &[u8]) -> Result<MasterKey> {
        self.unlock_with_keyfile(password, None)
    }

    /// The master key, if `password` and `keyfile` are the credentials the config was created or
    /// last rewrapped with: the key file's secret when it [requires one](ConfigV1::requires_keyfile),
    /// `None` otherwise. Any other combination is [`Error::WrongPassword`], indistinguishable from
    /// a wrong password (the key derivation simply yields another key).
    pub fn unlock_with_keyfile(
        &self,
        password: &[u8],
        keyfile: Option<&KeyfileSecret>,
    ) -> Result<MasterKey> {
        let kek = self.kdf.derive::<KEK_LEN>(&self.salt, password, keyfile)?;
        let mut buffer = Zeroizing::new(Vec::with_capacity(WRAPPED_LEN));
        buffer.extend_from_slice(&self.wrapped_master_key);
        Aes256Siv::new((&*kek).into())
            .decrypt_in_place([self.header()], &mut *buffer)
            .map_err(|_| Error::WrongPassword)?;
        let mut key = Zeroizing::new([0u8; MASTER_KEY_LEN]);
        key.copy_from_slice(&buffer);
        Ok(MasterKey::from_bytes(*key))
    }

    /// A config for the same vault (same master key, features and KDF cost) under a new password,
    /// with a new salt. The caller proves it knows the key by passing it. The new config needs
    /// the password alone: for a vault that should keep needing its key file, use
    /// [`ConfigV1::rewrap_with_keyfile`].
    pub fn rewrap(&self, master: &MasterKey, new_password: &[u8]) -> ConfigV1 {
        self.rewrap_with_keyfile(master, new_password, None)
    }

    /// [`ConfigV1::rewrap`], with `keyfile` needed as well as the new password from now on (when
    /// `Some`; `None` makes the password alone enough).
    pub fn rewrap_with_keyfile(
        &self,
        master: &MasterKey,
        new_password: &[u8],
        keyfile: Option<&KeyfileSecret>,
    ) -> ConfigV1 {
        let mut salt = [0u8; SALT_LEN];
        random_bytes(&mut salt);
        // Keeps `creator`: `info` shows who created the vault, and the new wrapping rebinds it.
        // The cost is raised to the defaults if it was lower: format 1 cannot tell whether
        // someone without the key lowered it.
        ConfigV1::wrap(
            self.creator.clone(),
            master,
            new_password,
            keyfile,
            self.kdf.for_rewrap(),
            self.features.clone(),
            salt,
        )
    }

    /// Parses and checks a format 1 config (see [`super::Config::load`] for the errors). Unknown
    /// members and duplicate members are refused.
    pub fn from_json(text: &str) -> Result<ConfigV1> {
        let json: ConfigJson = super::strict_json(text)?;
        if json.format != FORMAT_V1 {
            return Err(Error::ConfigVersion(json.format));
        }

        // One way only to write each config: the flag is absent unless it is set.
        if json.features.keyfile == Some(false) {
            return Err(Error::ConfigCorrupt(
                "features.keyfile is written only when true (omit it instead of false)".into(),
            ));
        }
        let salt = decode_fixed::<SALT_LEN>(&json.kdf.salt, "kdf.salt")?;
        let wrapped_master_key =
            decode_fixed::<WRAPPED_LEN>(&json.wrapped_master_key, "wrapped_master_key")?;
        if json.checksum.len() != 64 || HEXLOWER.decode(json.checksum.as_bytes()).is_err() {
            return Err(Error::ConfigCorrupt(
                "checksum is not 64 lowercase hex digits".into(),
            ));
        }
        if checksum_hex(&json) != json.checksum {
            return Err(Error::ConfigTampered);
        }

        super::check_creator(&json.creator)?;
        super::check_kdf_algorithm(&json.kdf.algorithm, json.kdf.version)?;
        let kdf = KdfParams {
            memory_kib: json.kdf.memory_kib,
            iterations: json.kdf.iterations,
            parallelism: json.kdf.parallelism,
        };
        kdf.check_bounds(V1_FLOOR).map_err(Error::ConfigCorrupt)?;
        let features = Features {
            name_encoding: json.features.name_encoding,
            longname_max: json.features.longname_max,
        };
        features.check().map_err(Error::ConfigCorrupt)?;

        Ok(ConfigV1 {
            format: FORMAT_V1,
            creator: json.creator,
            kdf,
            salt,
            features,
            keyfile: json.features.keyfile == Some(true),
            wrapped_master_key,
        })
    }

    /// The file contents: pretty-printed JSON with a trailing newline.
    pub fn to_json(&self) -> Vec<u8> {
        let mut json = ConfigJson {
            format: self.format,
            creator: self.creator.clone(),
            kdf: self.kdf_json(),
            features: self.features_json(),
            wrapped_master_key: BASE64URL_NOPAD.encode(&self.wrapped_master_key),
            checksum: String::new(),
        };
        json.checksum = checksum_hex(&json);
        let mut bytes = serde_json::to_vec_pretty(&json).expect("config JSON always serializes");
        bytes.push(b'\n');
        bytes
    }

    pub fn format(&self) -> u32 {
        self.format
    }

    /// Name and version of the veilfs that created the vault.
    pub fn creator(&self) -> &str {
        &self.creator
    }

    /// Argon2id cost parameters (the algorithm is always
    /// [`KDF_ALGORITHM`](crate::config::kdf::KDF_ALGORITHM), version
    /// [`KDF_VERSION`](crate::config::kdf::KDF_VERSION)).
    pub fn kdf(&self) -> &KdfParams {
        &self.kdf
    }

    /// The Argon2 salt; not secret.
    pub fn salt(&self) -> &[u8; SALT_LEN] {
        &self.salt
    }

    pub fn features(&self) -> &Features {
        &self.features
    }

    /// Whether unlocking needs a key file as well as the password (`"keyfile": true` in
    /// `features`).
    pub fn requires_keyfile(&self) -> bool {
        self.keyfile
    }

    fn features_json(&self) -> FeaturesJson {
        FeaturesJson::new(&self.features, self.keyfile)
    }

    fn kdf_json(&self) -> KdfJson {
        KdfJson::new(&self.kdf, &self.salt)
    }

    fn header(&self) -> Vec<u8> {
        header_bytes(
            self.format,
            &self.creator,
            &self.kdf_json(),
            &self.features_json(),
        )
    }
}

#[cfg(test)]
mod tests;
