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
//! ([`Config::create_with_keyfile`]); it is never written as `false`, so the associated data and
//! checksum of every config without a key file are what they were before the flag existed. With
//! it, the Argon2id secret input (RFC 9106 "K") is SHA-256 of the key file's bytes
//! ([`KeyfileSecret`]), and the password alone derives a different key.

use std::io;
use std::path::Path;

use aes_siv::siv::Aes256Siv;
use aes_siv::KeyInit;
use data_encoding::{BASE64URL_NOPAD, HEXLOWER};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::backing::{self, Dir, FileKind, RenameMode, Size};
use crate::crypto::keys::{MasterKey, MASTER_KEY_LEN};
use crate::crypto::names::NameEncoding;
use crate::crypto::random_bytes;
use crate::error::{Error, Result};

/// File name of the config at the root of the backing directory.
pub const CONFIG_NAME: &str = "veilfs.conf";
/// Temporary name `save` writes before renaming over [`CONFIG_NAME`].
pub const CONFIG_TMP_NAME: &str = "veilfs.conf.tmp";
/// The config format this code reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// `creator` of configs written by this build.
pub const CREATOR: &str = concat!("veilfs ", env!("CARGO_PKG_VERSION"));
/// The only key derivation function of format v1.
pub const KDF_ALGORITHM: &str = "argon2id";
/// Argon2 version 0x13.
pub const KDF_VERSION: u32 = 19;
pub const SALT_LEN: usize = 32;

const KEK_LEN: usize = 64;
const WRAPPED_LEN: usize = MASTER_KEY_LEN + 16;
/// Config files are about 530 bytes; anything much larger is not one.
pub const MAX_CONFIG_BYTES: u64 = 64 * 1024;
/// Longest key file accepted: every byte counts, and a key file is read whole before anything
/// else happens, so a device or a huge file given by mistake is refused at once.
pub const MAX_KEYFILE_BYTES: u64 = 1024 * 1024;
/// `creator` is shown by `info`: short, printable text only.
const CREATOR_MAX_LEN: usize = 100;

/// Argon2id cost parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    pub iterations: u32,
    /// Lanes. The argon2 crate computes them one after the other, so more lanes cost the same
    /// time and give an attacker with many cores no extra work; 1 is the sensible value.
    pub parallelism: u32,
}

impl KdfParams {
    pub const MEMORY_KIB_MIN: u32 = 8;
    /// 4 GiB.
    pub const MEMORY_KIB_MAX: u32 = 4 * 1024 * 1024;
    pub const ITERATIONS_MIN: u32 = 1;
    pub const ITERATIONS_MAX: u32 = 64;
    pub const PARALLELISM_MIN: u32 = 1;
    pub const PARALLELISM_MAX: u32 = 16;
    /// See [`KdfParams::default`].
    pub const DEFAULT_MEMORY_KIB: u32 = 256 * 1024;
    pub const DEFAULT_ITERATIONS: u32 = 3;

    /// Whether the parameters are within the bounds `Config::load` accepts; the reason if not.
    pub fn check(&self) -> std::result::Result<(), String> {
        if !(Self::MEMORY_KIB_MIN..=Self::MEMORY_KIB_MAX).contains(&self.memory_kib) {
            return Err(format!(
                "Argon2 memory {} KiB is outside {}..={} KiB",
                self.memory_kib,
                Self::MEMORY_KIB_MIN,
                Self::MEMORY_KIB_MAX
            ));
        }
        if !(Self::ITERATIONS_MIN..=Self::ITERATIONS_MAX).contains(&self.iterations) {
            return Err(format!(
                "Argon2 iterations {} outside {}..={}",
                self.iterations,
                Self::ITERATIONS_MIN,
                Self::ITERATIONS_MAX
            ));
        }
        if !(Self::PARALLELISM_MIN..=Self::PARALLELISM_MAX).contains(&self.parallelism) {
            return Err(format!(
                "Argon2 parallelism {} outside {}..={}",
                self.parallelism,
                Self::PARALLELISM_MIN,
                Self::PARALLELISM_MAX
            ));
        }
        if self.memory_kib < 8 * self.parallelism {
            return Err(format!(
                "Argon2 memory {} KiB is less than 8 KiB per lane ({} lanes)",
                self.memory_kib, self.parallelism
            ));
        }
        Ok(())
    }

    fn argon2<'k>(&self, keyfile: Option<&'k KeyfileSecret>) -> Result<argon2::Argon2<'k>> {
        let params = argon2::Params::new(
            self.memory_kib,
            self.iterations,
            self.parallelism,
            Some(KEK_LEN),
        )
        .map_err(|e| Error::ConfigCorrupt(format!("Argon2 parameters rejected: {e}")))?;
        let (algorithm, version) = (argon2::Algorithm::Argon2id, argon2::Version::V0x13);
        match keyfile {
            None => Ok(argon2::Argon2::new(algorithm, version, params)),
            Some(secret) => {
                argon2::Argon2::new_with_secret(secret.as_bytes(), algorithm, version, params)
                    .map_err(|e| Error::ConfigCorrupt(format!("key derivation failed: {e}")))
            }
        }
    }
}

impl Default for KdfParams {
    /// Argon2id with 256 MiB, 3 iterations, 1 lane. Measured on the 2-core AMD EPYC development
    /// machine (2026-11-25, release build, other builds running): a whole `veilfs passwd` that
    /// stops at the unlock (one key derivation, process start included) took 0.64-0.78 s, with
    /// 64 MiB and 3 iterations taking 137-154 ms in the same interleaved runs. 4 iterations took
    /// about 1.0 s and 512 MiB with 2 iterations 1.2-1.8 s, outside the 0.5-1 s target.
    fn default() -> Self {
        KdfParams {
            memory_kib: Self::DEFAULT_MEMORY_KIB,
            iterations: Self::DEFAULT_ITERATIONS,
            parallelism: 1,
        }
    }
}

/// Feature flags of a vault, fixed at init and authenticated with the wrapped key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Features {
    /// How encrypted names are written as backing file names.
    pub name_encoding: NameEncoding,
    /// Encoded names longer than this many bytes are stored as long names (format.md, "Long
    /// names"); below 255 to leave room for the suffix a sync tool adds to a conflict copy.
    pub longname_max: usize,
}

impl Features {
    pub const LONGNAME_MAX_MIN: usize = 64;
    pub const LONGNAME_MAX_MAX: usize = 255;
    /// Leaves 55 bytes of the 255-byte name limit for the suffix a sync tool appends to a
    /// conflict copy: Syncthing's `.sync-conflict-YYYYMMDD-HHMMSS-DEVICID` is 38, Nextcloud's
    /// ` (conflicted copy YYYY-MM-DD HHMMSS)` 36, Dropbox's with a user's name often 45-55.
    pub const DEFAULT_LONGNAME_MAX: usize = 200;

    /// Whether the flags are within the bounds `Config::load` accepts; the reason if not.
    pub fn check(&self) -> std::result::Result<(), String> {
        if !(Self::LONGNAME_MAX_MIN..=Self::LONGNAME_MAX_MAX).contains(&self.longname_max) {
            return Err(format!(
                "long-name threshold {} is outside {}..={}",
                self.longname_max,
                Self::LONGNAME_MAX_MIN,
                Self::LONGNAME_MAX_MAX
            ));
        }
        Ok(())
    }
}

impl Default for Features {
    fn default() -> Self {
        Features {
            name_encoding: NameEncoding::Base64Url,
            longname_max: Self::DEFAULT_LONGNAME_MAX,
        }
    }
}

/// A parsed and checked `veilfs.conf`: everything but the master key, which [`Config::unlock`]
/// unwraps with the password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    format: u32,
    creator: String,
    kdf: KdfParams,
    salt: [u8; SALT_LEN],
    features: Features,
    /// `features.keyfile` on disk: unlocking needs the key file as well as the password.
    keyfile: bool,
    wrapped_master_key: [u8; WRAPPED_LEN],
}

/// The second factor of a vault created with a key file: SHA-256 of the key file's bytes, used as
/// the Argon2id secret input. Wiped from memory when dropped.
pub struct KeyfileSecret(Zeroizing<[u8; 32]>);

impl KeyfileSecret {
    /// The secret of a key file whose whole contents are `bytes`.
    pub fn from_contents(bytes: &[u8]) -> KeyfileSecret {
        let mut hasher = Sha256::new();
        hasher.update(bytes);
        KeyfileSecret::finish(hasher)
    }

    /// Reads a key file whole (any bytes, at most [`MAX_KEYFILE_BYTES`]). Symlinks are followed
    /// (the user named the file), but a FIFO, a device, a directory or a larger file is refused
    /// at once, without blocking, with an error naming the file. An empty key file is an error:
    /// it would add nothing.
    pub fn read(path: &Path) -> io::Result<KeyfileSecret> {
        let bytes = Zeroizing::new(backing::read_user_file(path, MAX_KEYFILE_BYTES)?);
        if bytes.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the key file is empty",
            ));
        }
        Ok(KeyfileSecret::from_contents(&bytes))
    }

    fn finish(hasher: Sha256) -> KeyfileSecret {
        let mut secret = Zeroizing::new([0u8; 32]);
        secret.copy_from_slice(hasher.finalize().as_slice());
        KeyfileSecret(secret)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for KeyfileSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyfileSecret(..)")
    }
}

// The JSON shapes. The field order of these structs is the order on disk and in the compact JSON
// that the associated data and the checksum are computed over: do not reorder.

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KdfJson {
    algorithm: String,
    version: u32,
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
    salt: String,
}

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

fn decode_fixed<const N: usize>(text: &str, field: &str) -> Result<[u8; N]> {
    let bytes = BASE64URL_NOPAD
        .decode(text.as_bytes())
        .map_err(|e| Error::ConfigCorrupt(format!("{field} is not unpadded base64url: {e}")))?;
    bytes.as_slice().try_into().map_err(|_| {
        Error::ConfigCorrupt(format!("{field} is {} bytes, expected {N}", bytes.len()))
    })
}

/// The key-encryption key: Argon2id of the password (with the key file's secret as Argon2's
/// secret input when there is one), used as an AES-256-SIV key.
fn derive_kek(
    kdf: &KdfParams,
    salt: &[u8; SALT_LEN],
    password: &[u8],
    keyfile: Option<&KeyfileSecret>,
) -> Result<Zeroizing<[u8; KEK_LEN]>> {
    let mut kek = Zeroizing::new([0u8; KEK_LEN]);
    kdf.argon2(keyfile)?
        .hash_password_into(password, salt, &mut kek[..])
        .map_err(|e| match e {
            argon2::Error::OutOfMemory => Error::Io(io::Error::new(
                io::ErrorKind::OutOfMemory,
                format!(
                    "not enough memory for the key derivation ({} KiB)",
                    kdf.memory_kib
                ),
            )),
            e => Error::ConfigCorrupt(format!("key derivation failed: {e}")),
        })?;
    Ok(kek)
}

/// An I/O error whose message names the file: "cannot read /v/veilfs.conf: Permission denied".
fn named_io_error(what: &str, path: &Path, err: io::Error) -> Error {
    Error::Io(io::Error::new(
        err.kind(),
        format!("{what} {}: {err}", path.display()),
    ))
}

/// What a failure to read veilfs.conf through `dir` means. Missing: not a vault. Anything but a
/// regular file of a sane size (a symlink, a FIFO, a socket, a device, a directory, a huge
/// file): a corrupt config, named. Anything else (permissions, I/O): an I/O error, named.
fn config_read_error(dir: &Dir, err: io::Error) -> Error {
    let path = dir.display_path(CONFIG_NAME);
    if err.kind() == io::ErrorKind::NotFound {
        return Error::NotAVault(dir.path().to_path_buf());
    }
    // What is there, without following or opening it (a symlink gives ELOOP, a socket ENXIO).
    match dir.stat(CONFIG_NAME) {
        Ok(stat) if FileKind::of(&stat) != FileKind::File => Error::ConfigCorrupt(
            backing::wrong_type(&path, FileKind::of(&stat), "a regular file").to_string(),
        ),
        Ok(stat) if stat.st_size as u64 > MAX_CONFIG_BYTES => Error::ConfigCorrupt(format!(
            "{} is larger than {MAX_CONFIG_BYTES} bytes ({} bytes)",
            path.display(),
            stat.st_size
        )),
        // Refused by read_small for its type or size: its message names the file.
        _ if err.kind() == io::ErrorKind::InvalidData => Error::ConfigCorrupt(err.to_string()),
        _ => named_io_error("cannot read", &path, err),
    }
}

impl Config {
    /// A new config wrapping `master` under `password`, with a random salt.
    ///
    /// # Panics
    /// If `kdf` or `features` are outside the bounds that [`Config::load`] accepts (see
    /// [`KdfParams::check`] and [`Features::check`]): a config that could never be opened again
    /// is a bug of the caller.
    pub fn create(
        master: &MasterKey,
        password: &[u8],
        kdf: KdfParams,
        features: Features,
    ) -> Config {
        let mut salt = [0u8; SALT_LEN];
        random_bytes(&mut salt);
        Config::create_with_salt(master, password, kdf, features, salt)
    }

    /// [`Config::create`] with a given salt: deterministic, for test vectors only.
    #[doc(hidden)]
    pub fn create_with_salt(
        master: &MasterKey,
        password: &[u8],
        kdf: KdfParams,
        features: Features,
        salt: [u8; SALT_LEN],
    ) -> Config {
        Config::wrap(
            CREATOR.to_owned(),
            master,
            password,
            None,
            kdf,
            features,
            salt,
        )
    }

    /// [`Config::create`] for a vault that needs a key file as well as the password, ever after:
    /// the config records `"keyfile": true`, and the key derivation takes `keyfile` as its secret
    /// input.
    pub fn create_with_keyfile(
        master: &MasterKey,
        password: &[u8],
        keyfile: &KeyfileSecret,
        kdf: KdfParams,
        features: Features,
    ) -> Config {
        let mut salt = [0u8; SALT_LEN];
        random_bytes(&mut salt);
        Config::create_with_salt_and_keyfile(master, password, Some(keyfile), kdf, features, salt)
    }

    /// [`Config::create_with_keyfile`] (or, without a key file, [`Config::create`]) with a given
    /// salt: deterministic, for test vectors only.
    #[doc(hidden)]
    pub fn create_with_salt_and_keyfile(
        master: &MasterKey,
        password: &[u8],
        keyfile: Option<&KeyfileSecret>,
        kdf: KdfParams,
        features: Features,
        salt: [u8; SALT_LEN],
    ) -> Config {
        Config::wrap(
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
    ) -> Config {
        if let Err(reason) = kdf.check().and_then(|()| features.check()) {
            panic!("Config::create: {reason}");
        }
        let mut config = Config {
            format: FORMAT_VERSION,
            creator,
            kdf,
            salt,
            features,
            keyfile: keyfile.is_some(),
            wrapped_master_key: [0; WRAPPED_LEN],
        };
        let kek = derive_kek(&config.kdf, &config.salt, password, keyfile)
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
    /// [needs a key file](Config::requires_keyfile) never unlocks with the password alone
    /// ([`Error::WrongPassword`]): see [`Config::unlock_with_keyfile`].
    pub fn unlock(&self, password: &[u8]) -> Result<MasterKey> {
        self.unlock_with_keyfile(password, None)
    }

    /// The master key, if `password` and `keyfile` are the credentials the config was created or
    /// last rewrapped with: the key file's secret when it [requires one](Config::requires_keyfile),
    /// `None` otherwise. Any other combination is [`Error::WrongPassword`], indistinguishable from
    /// a wrong password (the key derivation simply yields another key).
    pub fn unlock_with_keyfile(
        &self,
        password: &[u8],
        keyfile: Option<&KeyfileSecret>,
    ) -> Result<MasterKey> {
        let kek = derive_kek(&self.kdf, &self.salt, password, keyfile)?;
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
    /// [`Config::rewrap_with_keyfile`].
    pub fn rewrap(&self, master: &MasterKey, new_password: &[u8]) -> Config {
        self.rewrap_with_keyfile(master, new_password, None)
    }

    /// [`Config::rewrap`], with `keyfile` needed as well as the new password from now on (when
    /// `Some`; `None` makes the password alone enough).
    pub fn rewrap_with_keyfile(
        &self,
        master: &MasterKey,
        new_password: &[u8],
        keyfile: Option<&KeyfileSecret>,
    ) -> Config {
        let mut salt = [0u8; SALT_LEN];
        random_bytes(&mut salt);
        // Keeps `creator`: `info` shows who created the vault, and the new wrapping rebinds it.
        Config::wrap(
            self.creator.clone(),
            master,
            new_password,
            keyfile,
            self.kdf,
            self.features.clone(),
            salt,
        )
    }

    /// Reads and checks `<cipherdir>/veilfs.conf`. Does not need the password.
    ///
    /// The file is read through a handle of CIPHERDIR, never following a symlink and never
    /// blocking: a veilfs.conf that is a symlink, a FIFO, a socket, a device or a directory, or
    /// larger than [`MAX_CONFIG_BYTES`], is [`Error::ConfigCorrupt`] naming the file; one that
    /// cannot be read (permissions) is an [`Error::Io`] naming it.
    pub fn load(cipherdir: &Path) -> Result<Config> {
        let dir = match Dir::open_root(cipherdir) {
            Ok(dir) => dir,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::NotAVault(cipherdir.to_path_buf()))
            }
            Err(e) => return Err(named_io_error("cannot open", cipherdir, e)),
        };
        Config::load_from(&dir)
    }

    /// [`Config::load`] from an open handle of CIPHERDIR.
    pub fn load_from(dir: &Dir) -> Result<Config> {
        match dir.read_small(CONFIG_NAME, Size::AtMost(MAX_CONFIG_BYTES)) {
            Ok(bytes) => Config::from_json(&bytes),
            Err(e) => Err(config_read_error(dir, e)),
        }
    }

    /// Parses and checks the contents of a config file (see [`Config::load`] for the errors).
    pub fn from_json(bytes: &[u8]) -> Result<Config> {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| Error::ConfigCorrupt("not UTF-8 text".into()))?;
        if text.trim().is_empty() {
            return Err(Error::ConfigCorrupt("the file is empty".into()));
        }
        // The version first, from a loose parse, so that a newer format gets the version error
        // rather than a complaint about fields this code does not know.
        let loose: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| Error::ConfigCorrupt(format!("not valid JSON: {e}")))?;
        let format = match loose.get("format") {
            None => return Err(Error::ConfigCorrupt("missing field `format`".into())),
            Some(value) => value
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| {
                    Error::ConfigCorrupt(format!("`format` is not a version number: {value}"))
                })?,
        };
        if format != FORMAT_VERSION {
            return Err(Error::ConfigVersion(format));
        }
        let json: ConfigJson =
            serde_json::from_value(loose).map_err(|e| Error::ConfigCorrupt(e.to_string()))?;

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

        if json.creator.len() > CREATOR_MAX_LEN || json.creator.chars().any(char::is_control) {
            return Err(Error::ConfigCorrupt(format!(
                "creator {:?} is not a short line of text",
                json.creator
            )));
        }
        if json.kdf.algorithm != KDF_ALGORITHM {
            return Err(Error::ConfigCorrupt(format!(
                "unknown key derivation algorithm {:?} (expected {KDF_ALGORITHM:?})",
                json.kdf.algorithm
            )));
        }
        if json.kdf.version != KDF_VERSION {
            return Err(Error::ConfigCorrupt(format!(
                "Argon2 version {} is not supported (expected {KDF_VERSION})",
                json.kdf.version
            )));
        }
        let kdf = KdfParams {
            memory_kib: json.kdf.memory_kib,
            iterations: json.kdf.iterations,
            parallelism: json.kdf.parallelism,
        };
        kdf.check().map_err(Error::ConfigCorrupt)?;
        let features = Features {
            name_encoding: json.features.name_encoding,
            longname_max: json.features.longname_max,
        };
        features.check().map_err(Error::ConfigCorrupt)?;

        Ok(Config {
            format,
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

    /// Writes `<cipherdir>/veilfs.conf` atomically: a crash at any moment leaves either the old or
    /// the new file. The file is read-only (0400, whatever the umask): it is never edited in place.
    pub fn save(&self, cipherdir: &Path) -> Result<()> {
        let dir =
            Dir::open_root(cipherdir).map_err(|e| named_io_error("cannot open", cipherdir, e))?;
        self.save_in(&dir)
    }

    /// [`Config::save`] through an open handle of CIPHERDIR: the temporary file is written,
    /// synced and renamed over veilfs.conf relative to that handle, and the directory synced.
    pub fn save_in(&self, dir: &Dir) -> Result<()> {
        let tmp = || dir.display_path(CONFIG_TMP_NAME);
        // A stale temporary file from a crash (or anything planted there) goes first.
        dir.unlink_if_present(CONFIG_TMP_NAME)
            .map_err(|e| named_io_error("cannot remove", &tmp(), e))?;
        // write_new removes the file again if it cannot be written whole.
        dir.write_new(CONFIG_TMP_NAME, &self.to_json(), 0o400, true)
            .map_err(|e| named_io_error("cannot write", &tmp(), e))?;
        if let Err(e) = dir.rename(CONFIG_TMP_NAME, dir, CONFIG_NAME, RenameMode::Replace) {
            let _ = dir.unlink(CONFIG_TMP_NAME);
            return Err(named_io_error(
                "cannot rename",
                &tmp(),
                io::Error::new(e.kind(), format!("to {CONFIG_NAME}: {e}")),
            ));
        }
        dir.sync()
            .map_err(|e| named_io_error("cannot sync", dir.path(), e))?;
        Ok(())
    }

    pub fn format(&self) -> u32 {
        self.format
    }

    /// Name and version of the veilfs that created the vault.
    pub fn creator(&self) -> &str {
        &self.creator
    }

    /// Argon2id cost parameters (the algorithm is always [`KDF_ALGORITHM`], version
    /// [`KDF_VERSION`]).
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
        KdfJson {
            algorithm: KDF_ALGORITHM.to_owned(),
            version: KDF_VERSION,
            memory_kib: self.kdf.memory_kib,
            iterations: self.kdf.iterations,
            parallelism: self.kdf.parallelism,
            salt: BASE64URL_NOPAD.encode(&self.salt),
        }
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
mod tests {
    use super::*;
    use serde_json::Value;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    type Edit = Box<dyn Fn(&mut Value)>;
    /// What a special file is called in messages, and how to make one.
    type Maker<'a> = (&'static str, Box<dyn Fn() + 'a>);

    /// The cheapest parameters load accepts: tests stay fast.
    const CHEAP: KdfParams = KdfParams {
        memory_kib: 8,
        iterations: 1,
        parallelism: 1,
    };

    fn master() -> MasterKey {
        MasterKey::from_bytes(std::array::from_fn(|i| i as u8))
    }

    fn config() -> Config {
        Config::create_with_salt(
            &master(),
            b"password",
            CHEAP,
            Features::default(),
            [2; SALT_LEN],
        )
    }

    fn json_value(config: &Config) -> Value {
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

    fn corrupt_reason(result: Result<Config>) -> String {
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
        let loaded = Config::load(dir.path()).unwrap();
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
        let a = Config::create(&master(), b"password", CHEAP, Features::default());
        let b = Config::create(&master(), b"password", CHEAP, Features::default());
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
        let config = Config::wrap(
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
    const KAT_KEYFILE_SECRET: &str =
        "4856d26f430ad4bd1991d86dac1ec8a24a1df0ac469d7b177c1335448eb784d2";
    const KAT_KEYFILE_WRAPPED: &str =
        "i4eVfcT-4MeXMQaBBgzjwO6tcR0nh1b6o-x-qS4FqRiSpmE_syorOvg8GrCnC717mNk27R77xMXun2LHb-UNAynynhucODFSyipeDZpDaZI";
    const KAT_KEYFILE_CHECKSUM: &str =
        "7fb7c5c560d04bce81c42d0b3ce23413ea4a2c9aead52e0f20fb509931f0e269";

    fn keyfile() -> KeyfileSecret {
        KeyfileSecret::from_contents(KAT_KEYFILE_CONTENTS)
    }

    fn keyfile_config() -> Config {
        Config::create_with_salt_and_keyfile(
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
        let config = Config::wrap(
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
        let loaded = Config::load(dir.path()).unwrap();
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
        assert!(matches!(
            Config::from_json(&bytes),
            Err(Error::ConfigTampered)
        ));
        // With it: loads, but the flag is in the associated data, so nothing unlocks.
        let mut json: ConfigJson = serde_json::from_value(value).unwrap();
        json.checksum = checksum_hex(&json);
        let forged = Config::from_json(&serde_json::to_vec_pretty(&json).unwrap()).unwrap();
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
        assert!(corrupt_reason(Config::from_json(&bytes)).contains("keyfile"));
        let bytes = edited(|v| v["features"]["keyfile"] = Value::from("yes"), false);
        corrupt_reason(Config::from_json(&bytes));
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
        let old = Config::create(&master(), b"old", CHEAP, features.clone());
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
        let reloaded = Config::from_json(&new.to_json()).unwrap();
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
        assert_eq!(Config::load(dir.path()).unwrap(), newer);
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
        assert!(matches!(Config::load(dir.path()), Err(Error::NotAVault(p)) if p == dir.path()));
        assert!(matches!(
            Config::load(&dir.path().join("nope")),
            Err(Error::NotAVault(_))
        ));
    }

    #[test]
    fn unreadable_shapes_are_corrupt() {
        let good = config().to_json();
        corrupt_reason(Config::from_json(b""));
        corrupt_reason(Config::from_json(b" \n"));
        assert!(corrupt_reason(Config::from_json(b"\xff\xfe{}")).contains("UTF-8"));
        for cut in [1, good.len() / 3, good.len() / 2, good.len() - 3] {
            assert!(
                corrupt_reason(Config::from_json(&good[..cut])).contains("JSON"),
                "cut at {cut}"
            );
        }
        assert!(corrupt_reason(Config::from_json(b"[1]")).contains("format"));
        assert!(corrupt_reason(Config::from_json(b"{\"format\": \"1\"}")).contains("format"));
        assert!(corrupt_reason(Config::from_json(b"{\"format\": -1}")).contains("format"));
        corrupt_reason(Config::from_json(b"{\"format\": 1}"));
        let unknown = edited(|v| v["extra"] = Value::from(1), false);
        assert!(corrupt_reason(Config::from_json(&unknown)).contains("unknown field"));
        let unknown_kdf = edited(|v| v["kdf"]["pepper"] = Value::from("x"), false);
        assert!(corrupt_reason(Config::from_json(&unknown_kdf)).contains("unknown field"));
        let unknown_feature = edited(|v| v["features"]["compression"] = Value::from(true), false);
        assert!(corrupt_reason(Config::from_json(&unknown_feature)).contains("unknown field"));
        let missing = edited(
            |v| drop(v.as_object_mut().unwrap().remove("features")),
            false,
        );
        assert!(corrupt_reason(Config::from_json(&missing)).contains("missing field"));
        let encoding = edited(
            |v| v["features"]["name_encoding"] = Value::from("rot13"),
            false,
        );
        assert!(corrupt_reason(Config::from_json(&encoding)).contains("unknown variant"));
    }

    #[test]
    fn bad_encodings_and_lengths_are_corrupt() {
        let salt = edited(|v| v["kdf"]["salt"] = Value::from("not base64!"), false);
        assert!(corrupt_reason(Config::from_json(&salt)).contains("kdf.salt"));
        let short_salt = edited(|v| v["kdf"]["salt"] = Value::from("AAAA"), false);
        assert!(corrupt_reason(Config::from_json(&short_salt)).contains("3 bytes, expected 32"));
        let padded = edited(
            |v| v["kdf"]["salt"] = Value::from(format!("{}=", v["kdf"]["salt"].as_str().unwrap())),
            false,
        );
        corrupt_reason(Config::from_json(&padded));
        let wrapped = edited(|v| v["wrapped_master_key"] = Value::from("AAAA"), false);
        assert!(corrupt_reason(Config::from_json(&wrapped)).contains("wrapped_master_key"));
        let checksum = edited(|v| v["checksum"] = Value::from("abc"), false);
        assert!(corrupt_reason(Config::from_json(&checksum)).contains("checksum"));
        let upper = edited(
            |v| v["checksum"] = Value::from(v["checksum"].as_str().unwrap().to_uppercase()),
            false,
        );
        corrupt_reason(Config::from_json(&upper));
    }

    #[test]
    fn other_versions_get_the_version_error() {
        // Even with fields this version does not know, and without a checksum.
        let v2 = br#"{"format": 2, "argon3": {}, "wrapped_keys": []}"#;
        assert!(matches!(
            Config::from_json(v2),
            Err(Error::ConfigVersion(2))
        ));
        let v0 = edited(|v| v["format"] = Value::from(0), true);
        assert!(matches!(
            Config::from_json(&v0),
            Err(Error::ConfigVersion(0))
        ));
        let big = edited(
            |v| v["format"] = Value::from(u64::from(u32::MAX) + 1),
            false,
        );
        corrupt_reason(Config::from_json(&big));
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
                matches!(Config::from_json(&bytes), Err(Error::ConfigTampered)),
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
            let forged =
                Config::from_json(&edited(edit, true)).unwrap_or_else(|e| panic!("edit {i}: {e}"));
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
            let reason = corrupt_reason(Config::from_json(&edited(edit, true)));
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
        assert!(corrupt_reason(Config::load(dir.path())).contains("larger"));
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
            let reason = corrupt_reason(Config::load(dir.path()));
            assert!(
                reason.contains(&format!("{} is {kind}", path.display())),
                "{reason}"
            );
            let _ = fs::remove_file(&path).or_else(|_| fs::remove_dir(&path));
        }
        // A dangling symlink is not "no config": it is a config of the wrong type.
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &path).unwrap();
        assert!(corrupt_reason(Config::load(dir.path())).contains("symbolic link"));
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
        assert_eq!(Config::load(dir.path()).unwrap(), config());
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
    #[should_panic(expected = "Config::create")]
    fn creating_an_unloadable_config_is_a_bug() {
        Config::create(
            &master(),
            b"pw",
            KdfParams {
                iterations: 0,
                ..CHEAP
            },
            Features::default(),
        );
    }
}
