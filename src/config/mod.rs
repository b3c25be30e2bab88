//! The config file `veilfs.conf` at the root of the backing directory: reading it safely,
//! telling its formats apart, unlocking it, and writing it atomically.
//!
//! Two formats: [`v1`] (one password, an optional key file, the recovery key is the master
//! key, a checksum without a key) and [`v2`] (unlock slots, a recovery key that is a slot's
//! secret, a MAC under the master key over every member, a vault ID that binds the keys).
//! `init` writes format 2; format 1 vaults still open. [`kdf`] holds the Argon2id parameters and
//! their bounds, [`keyfile`] the key-file secret. Both formats are specified in format.md.
//!
//! Every parse is strict: duplicate members, unknown members and files over
//! [`MAX_CONFIG_BYTES`] are refused, and the Argon2id bounds are checked before any key
//! derivation, so an edited config can neither be read two ways nor make veilfs allocate
//! without bound.

use std::io;
use std::path::Path;

use data_encoding::BASE64URL_NOPAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::backing::{self, Dir, FileKind, RenameMode, Size};
use crate::crypto::keys::{MasterKey, VaultKeys};
use crate::crypto::names::NameEncoding;
use crate::crypto::recovery::RecoveryKey;
use crate::error::{Error, Result};

pub mod contact;
pub mod kdf;
pub mod keyfile;
#[cfg(test)]
mod test_support;
pub mod v1;
pub mod v2;

pub use kdf::{KdfParams, KDF_ALGORITHM, KDF_VERSION, SALT_LEN};
pub use keyfile::{KeyfileSecret, MAX_KEYFILE_BYTES};
pub use v1::ConfigV1;
pub use v2::{ConfigV2, Slot, SlotKind};

/// File name of the config at the root of the backing directory.
pub const CONFIG_NAME: &str = "veilfs.conf";
/// Temporary name `save` writes before renaming over [`CONFIG_NAME`].
pub const CONFIG_TMP_NAME: &str = "veilfs.conf.tmp";
/// `creator` of configs written by this build.
pub const CREATOR: &str = concat!("veilfs ", env!("CARGO_PKG_VERSION"));
/// Config files are about 530 bytes (format 1) or 500 bytes per slot (format 2); anything much
/// larger is not one.
pub const MAX_CONFIG_BYTES: u64 = 64 * 1024;
/// `creator` is shown by `info`: short, printable text only.
const CREATOR_MAX_LEN: usize = 100;

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

/// A parsed `veilfs.conf`, of either format: everything but the keys, which an unlock gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Config {
    V1(ConfigV1),
    V2(ConfigV2),
}

/// A secret that opens a vault.
#[derive(Debug)]
pub enum Secret<'a> {
    Password(&'a [u8]),
    PasswordKeyfile(&'a [u8], &'a KeyfileSecret),
    Keyfile(&'a KeyfileSecret),
    Recovery(&'a crate::crypto::keys::RecoverySecret),
    /// A recovery contact's share and the recovery passphrase.
    Contact(&'a crate::crypto::keys::ContactShare, &'a [u8]),
}

impl Secret<'_> {
    /// The kind of slot that takes this secret.
    pub fn kind(&self) -> SlotKind {
        match self {
            Secret::Password(_) => SlotKind::Password,
            Secret::PasswordKeyfile(..) => SlotKind::PasswordKeyfile,
            Secret::Keyfile(_) => SlotKind::Keyfile,
            Secret::Recovery(_) => SlotKind::Recovery,
            Secret::Contact(..) => SlotKind::Contact,
        }
    }

    /// What it is, for messages: "a password and a key file".
    pub fn description(&self) -> &'static str {
        match self {
            Secret::Password(_) => "a password alone",
            Secret::PasswordKeyfile(..) => "a password and a key file",
            Secret::Keyfile(_) => "a key file alone",
            Secret::Recovery(_) => "a recovery key",
            Secret::Contact(..) => "a recovery contact's share and passphrase",
        }
    }
}

/// The keys of an unlocked vault, and which slot opened it (format 2).
#[derive(Debug)]
pub struct Unlocked {
    master: MasterKey,
    keys: VaultKeys,
    slot: Option<usize>,
}

impl Unlocked {
    fn new(master: MasterKey, keys: VaultKeys, slot: Option<usize>) -> Unlocked {
        Unlocked { master, keys, slot }
    }

    pub fn master(&self) -> &MasterKey {
        &self.master
    }

    /// The subkeys, derived as the vault's format says.
    pub fn keys(&self) -> &VaultKeys {
        &self.keys
    }

    /// The index of the slot that opened a format 2 vault.
    pub fn slot(&self) -> Option<usize> {
        self.slot
    }
}

impl Config {
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

    /// Parses and checks the contents of a config file of either format (see [`Config::load`]
    /// for the errors).
    pub fn from_json(bytes: &[u8]) -> Result<Config> {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| Error::ConfigCorrupt("not UTF-8 text".into()))?;
        if text.trim().is_empty() {
            return Err(Error::ConfigCorrupt("the file is empty".into()));
        }
        // The version first, from a parse that ignores everything else, so that a newer format
        // gets the version error rather than a complaint about members this code does not know.
        #[derive(Deserialize)]
        struct Version {
            format: Option<serde_json::Value>,
        }
        if !text.trim_start().starts_with('{') {
            return Err(Error::ConfigCorrupt("not a JSON object".into()));
        }
        let version: Version = lenient_json(text)?;
        let format = match version.format {
            None => return Err(Error::ConfigCorrupt("missing field `format`".into())),
            Some(value) => value
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| {
                    Error::ConfigCorrupt(format!("`format` is not a version number: {value}"))
                })?,
        };
        match format {
            v1::FORMAT_V1 => ConfigV1::from_json(text).map(Config::V1),
            v2::FORMAT_V2 => ConfigV2::from_json(text).map(Config::V2),
            other => Err(Error::ConfigVersion(other)),
        }
    }

    /// The file contents: pretty-printed JSON with a trailing newline.
    pub fn to_json(&self) -> Vec<u8> {
        match self {
            Config::V1(config) => config.to_json(),
            Config::V2(config) => config.to_json(),
        }
    }

    pub fn format(&self) -> u32 {
        match self {
            Config::V1(_) => v1::FORMAT_V1,
            Config::V2(_) => v2::FORMAT_V2,
        }
    }

    /// Name and version of the veilfs that created the vault.
    pub fn creator(&self) -> &str {
        match self {
            Config::V1(config) => config.creator(),
            Config::V2(config) => config.creator(),
        }
    }

    /// The format an unfinished key rotation started from, if one is: such a vault opens only
    /// to finish it (format.md, "Key rotation").
    pub fn rotating_from(&self) -> Option<u32> {
        match self {
            Config::V1(_) => None,
            Config::V2(config) => config.rotating_from(),
        }
    }

    pub fn features(&self) -> &Features {
        match self {
            Config::V1(config) => config.features(),
            Config::V2(config) => config.features(),
        }
    }

    /// Unlocks with `secret` (format 2: through the slot named `only`, an ID or a label, if
    /// given, else any slot of the secret's kind). Format 2 checks the MAC after the unlock and
    /// refuses a config modified by someone without the key ([`Error::ConfigModified`]).
    pub fn unlock(&self, secret: &Secret, only: Option<&str>) -> Result<Unlocked> {
        match self {
            Config::V1(config) => {
                let master = match *secret {
                    Secret::Password(password) => config.unlock_with_keyfile(password, None)?,
                    Secret::PasswordKeyfile(password, keyfile) => {
                        config.unlock_with_keyfile(password, Some(keyfile))?
                    }
                    _ => {
                        return Err(Error::NoSuchSlot(format!(
                        "{} (a vault of format 1 opens with its password, or with its recovery \
                         key given as a master key)",
                        secret.description()
                    )))
                    }
                };
                let keys = master.derive();
                Ok(Unlocked::new(master, keys, None))
            }
            Config::V2(config) => config.unlock(secret, only),
        }
    }

    /// Unlocks with a recovery key as read: a format 1 key (the master key itself) opens a
    /// format 1 vault, whose binding the caller must check against the root IV, since nothing
    /// else can; a format 2 key opens a recovery slot.
    pub fn unlock_with_recovery_key(&self, key: &RecoveryKey) -> Result<Unlocked> {
        match (self, key) {
            (Config::V1(_), RecoveryKey::MasterKey(master)) => {
                let master = master.clone();
                let keys = master.derive();
                Ok(Unlocked::new(master, keys, None))
            }
            (Config::V2(config), RecoveryKey::Secret(secret)) => {
                config.unlock(&Secret::Recovery(secret), None)
            }
            (Config::V1(_), RecoveryKey::Secret(_)) => Err(Error::RecoveryKeyFormat(
                "this is a recovery key of format 2 (58 characters), and this vault is of \
                 format 1 (109 characters)"
                    .into(),
            )),
            (Config::V2(_), RecoveryKey::MasterKey(_)) => Err(Error::RecoveryKeyFormat(
                "this is a recovery key of format 1 (109 characters), and this vault is of \
                 format 2 (58 characters)"
                    .into(),
            )),
        }
    }
}

/// Parses `text` as `T`, refusing duplicate members (and, where `T` says so, unknown ones).
fn lenient_json<T: DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| {
        Error::ConfigCorrupt(match e.classify() {
            serde_json::error::Category::Data => e.to_string(),
            _ => format!("not valid JSON: {e}"),
        })
    })
}

/// [`lenient_json`], and then the file must say exactly what `T` says when written again, up to
/// whitespace and member order: one spelling per config, so that no other JSON reader can
/// understand the file differently (an array where an object belongs, which serde would take
/// member by member; `null` for an absent member; a duplicate member, which other readers
/// resolve differently).
fn strict_json<T: DeserializeOwned + Serialize>(text: &str) -> Result<T> {
    let parsed: T = lenient_json(text)?;
    let as_written = serde_json::to_value(&parsed).expect("config JSON always serializes");
    let as_read: serde_json::Value = lenient_json(text)?;
    if as_written != as_read {
        return Err(Error::ConfigCorrupt(
            "it is not written the one way veilfs writes it (an array for an object, null for \
             an absent member, or a false flag that is written only when true)"
                .into(),
        ));
    }
    Ok(parsed)
}

fn decode_fixed<const N: usize>(text: &str, field: &str) -> Result<[u8; N]> {
    let bytes = BASE64URL_NOPAD
        .decode(text.as_bytes())
        .map_err(|e| Error::ConfigCorrupt(format!("{field} is not unpadded base64url: {e}")))?;
    bytes.as_slice().try_into().map_err(|_| {
        Error::ConfigCorrupt(format!("{field} is {} bytes, expected {N}", bytes.len()))
    })
}

fn check_creator(creator: &str) -> Result<()> {
    if creator.len() > CREATOR_MAX_LEN || creator.chars().any(char::is_control) {
        return Err(Error::ConfigCorrupt(format!(
            "creator {creator:?} is not a short line of text"
        )));
    }
    Ok(())
}

fn check_kdf_algorithm(algorithm: &str, version: u32) -> Result<()> {
    if algorithm != KDF_ALGORITHM {
        return Err(Error::ConfigCorrupt(format!(
            "unknown key derivation algorithm {algorithm:?} (expected {KDF_ALGORITHM:?})"
        )));
    }
    if version != KDF_VERSION {
        return Err(Error::ConfigCorrupt(format!(
            "Argon2 version {version} is not supported (expected {KDF_VERSION})"
        )));
    }
    Ok(())
}
