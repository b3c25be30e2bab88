//! The format 2 config: a vault ID, unlock slots that each wrap the master key, and a MAC under
//! a key derived from the master key over every member ("Config, format 2" in format.md).
//!
//! What format 1 could not do, and this does: nobody without the master key can change a single
//! member (the KDF cost, a slot, a feature) without the next unlock, through *any* slot, failing
//! with [`Error::ConfigModified`] before anything is written; the keys are bound to the vault ID,
//! and (checked by the caller against the root directory IV) a config is bound to its vault; a
//! password, a key file or a recovery key is one slot among several, each removable.
//!
//! The MAC is computed over a transcript of the parsed values, not over the JSON text, so that
//! two JSON parsers cannot disagree about what it covers; duplicate and unknown members are
//! refused anyway.

use std::time::SystemTime;

use aes_siv::siv::Aes256Siv;
use aes_siv::KeyInit;
use data_encoding::BASE64URL_NOPAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::kdf::{KdfParams, KDF_ALGORITHM, KDF_VERSION, SALT_LEN};
use super::{contact, decode_fixed, Features, Secret, Unlocked, CREATOR};
use crate::crypto::keys::{
    hkdf_sha256, ContactShare, MasterKey, RecoverySecret, MASTER_KEY_LEN, VAULT_ID_LEN,
};
use crate::crypto::random_bytes;
use crate::error::{Error, Result};

/// The format number of this config.
pub const FORMAT_V2: u32 = 2;
pub const SLOT_ID_LEN: usize = 8;
/// More slots than anyone has devices; bounds the work of an unlock that tries them all.
pub const MAX_SLOTS: usize = 32;
/// Labels are shown in lists: short, one line.
pub const LABEL_MAX_LEN: usize = 64;
const WRAP_KEY_LEN: usize = 64;
const WRAPPED_LEN: usize = MASTER_KEY_LEN + 16;
const MAC_LEN: usize = 32;

const TRANSCRIPT_LABEL: &[u8] = b"veilfs v2 config";
const SLOT_AD_LABEL: &[u8] = b"veilfs v2 slot";
const RECOVERY_SLOT_INFO: &[u8] = b"veilfs v2 recovery slot";
const CONTACT_SLOT_INFO: &[u8] = b"veilfs v2 contact slot";
const ROTATION_AD_LABEL: &[u8] = b"veilfs v2 rotation";
const ROTATION_TRANSCRIPT_LABEL: &[u8] = b"rotation";

/// What unlocks a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum SlotKind {
    /// A password (Argon2id).
    #[serde(rename = "password")]
    Password,
    /// A password and a key file (Argon2id with the key file as its secret input).
    #[serde(rename = "password+keyfile")]
    #[value(name = "password+keyfile")]
    PasswordKeyfile,
    /// A key file alone (Argon2id of the key file's hash): a trusted device that automounts.
    #[serde(rename = "keyfile")]
    Keyfile,
    /// A recovery key: a random secret shown once (HKDF: it has 256 bits of entropy).
    #[serde(rename = "recovery")]
    Recovery,
    /// A recovery contact's share and the user's recovery passphrase, together.
    #[serde(rename = "contact")]
    Contact,
}

impl SlotKind {
    /// The name on disk and in messages.
    pub fn name(self) -> &'static str {
        match self {
            SlotKind::Password => "password",
            SlotKind::PasswordKeyfile => "password+keyfile",
            SlotKind::Keyfile => "keyfile",
            SlotKind::Recovery => "recovery",
            SlotKind::Contact => "contact",
        }
    }

    /// Whether its wrapping key comes from Argon2id (every kind but the recovery key).
    pub fn uses_kdf(self) -> bool {
        self != SlotKind::Recovery
    }
}

/// A slot's Argon2id parameters and salt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotKdf {
    pub params: KdfParams,
    pub salt: [u8; SALT_LEN],
}

/// One unlock slot: the master key wrapped under one secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    id: [u8; SLOT_ID_LEN],
    kind: SlotKind,
    label: String,
    created: String,
    kdf: Option<SlotKdf>,
    contact: Option<ContactInfo>,
    wrapped: [u8; WRAPPED_LEN],
}

/// A contact slot's contact: their age recipient, and the share encrypted to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactInfo {
    pub recipient: String,
    /// Binary age ciphertext of the share's text.
    pub request: Vec<u8>,
}

impl Slot {
    /// The slot's ID as written (base64url, 11 characters).
    pub fn id(&self) -> String {
        BASE64URL_NOPAD.encode(&self.id)
    }

    pub fn kind(&self) -> SlotKind {
        self.kind
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// When the slot was made (RFC 3339, UTC, to the second).
    pub fn created(&self) -> &str {
        &self.created
    }

    /// The Argon2id parameters, for every kind but the recovery key.
    pub fn kdf(&self) -> Option<&SlotKdf> {
        self.kdf.as_ref()
    }

    /// A contact slot's contact.
    pub fn contact(&self) -> Option<&ContactInfo> {
        self.contact.as_ref()
    }

    /// Whether `which` names this slot: its ID or its label, exactly.
    pub fn is(&self, which: &str) -> bool {
        self.label == which || self.id() == which
    }
}

/// A parsed `veilfs.conf` of format 2. Its MAC is checked by [`ConfigV2::unlock`], the only way
/// to the keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigV2 {
    vault_id: [u8; VAULT_ID_LEN],
    creator: String,
    generation: u64,
    features: Features,
    slots: Vec<Slot>,
    rotation: Option<Rotation>,
    mac: [u8; MAC_LEN],
}

/// An unfinished rotation of the master key ("Key rotation" in format.md): the previous master
/// key, wrapped under this config's, kept until every backing byte is re-encrypted.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Rotation {
    from_format: u32,
    wrapped: [u8; WRAPPED_LEN],
}

// The JSON shapes; the field order is the order on disk.

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigJson {
    format: u32,
    vault_id: String,
    creator: String,
    generation: u64,
    features: Features,
    slots: Vec<SlotJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rotation: Option<RotationJson>,
    mac: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RotationJson {
    from_format: u32,
    from_master: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SlotJson {
    id: String,
    kind: SlotKind,
    label: String,
    created: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kdf: Option<KdfJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    contact: Option<ContactJson>,
    wrapped: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContactJson {
    recipient: String,
    /// base64url of the binary age file.
    request: String,
}

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

/// The bytes the MAC covers: every value, in a fixed order, each length-prefixed (u32
/// big-endian length, then the bytes) or as an 8-byte big-endian integer; an absent value is
/// the length 0xffffffff.
struct Transcript(Vec<u8>);

impl Transcript {
    fn bytes(&mut self, bytes: &[u8]) {
        let len = u32::try_from(bytes.len()).expect("config values are far below 4 GiB");
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0.extend_from_slice(bytes);
    }

    fn int(&mut self, n: u64) {
        self.0.extend_from_slice(&n.to_be_bytes());
    }

    fn absent(&mut self) {
        self.0.extend_from_slice(&u32::MAX.to_be_bytes());
    }
}

fn corrupt(message: String) -> Error {
    Error::ConfigCorrupt(message)
}

/// A label: 1 to 64 bytes of text without control characters.
pub fn check_label(label: &str) -> std::result::Result<(), String> {
    if label.is_empty() || label.len() > LABEL_MAX_LEN || label.chars().any(char::is_control) {
        return Err(format!(
            "slot label {label:?} is not 1 to {LABEL_MAX_LEN} bytes of text on one line"
        ));
    }
    Ok(())
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

impl ConfigV2 {
    /// A new vault's config: a random vault ID, generation 1, and no slot yet (add at least one
    /// with [`ConfigV2::add_slot`] before saving).
    pub fn new(master: &MasterKey, features: Features) -> ConfigV2 {
        let mut vault_id = [0u8; VAULT_ID_LEN];
        random_bytes(&mut vault_id);
        ConfigV2::with_vault_id(master, features, vault_id)
    }

    /// [`ConfigV2::new`] with a given vault ID: deterministic, for test vectors.
    #[doc(hidden)]
    pub fn with_vault_id(
        master: &MasterKey,
        features: Features,
        vault_id: [u8; VAULT_ID_LEN],
    ) -> ConfigV2 {
        if let Err(reason) = features.check() {
            panic!("ConfigV2::new: {reason}");
        }
        let mut config = ConfigV2 {
            vault_id,
            creator: CREATOR.to_owned(),
            generation: 1,
            features,
            slots: Vec::new(),
            rotation: None,
            mac: [0; MAC_LEN],
        };
        config.seal(master);
        config
    }

    /// The config that replaces this one when the master key is rotated to `master`: the same
    /// vault ID and features, the next generation, no slot yet, and the previous master key
    /// kept (wrapped under `master`) until [`ConfigV2::finish_rotation`].
    pub fn rotated(&self, previous: &MasterKey, master: &MasterKey) -> Result<ConfigV2> {
        if self.generation >= u64::from(u32::MAX) {
            return Err(corrupt("its key generation is at its end".into()));
        }
        Ok(ConfigV2::rotating(
            master,
            self.features.clone(),
            self.vault_id,
            self.generation + 1,
            (FORMAT_V2, previous),
        ))
    }

    /// The format 2 config that replaces format 1 config `v1` on an upgrade: a new vault ID,
    /// generation 1, `v1`'s features, and its master key `previous` kept as for a rotation.
    pub fn upgraded(features: Features, previous: &MasterKey, master: &MasterKey) -> ConfigV2 {
        let mut vault_id = [0u8; VAULT_ID_LEN];
        random_bytes(&mut vault_id);
        ConfigV2::rotating(master, features, vault_id, 1, (1, previous))
    }

    fn rotating(
        master: &MasterKey,
        features: Features,
        vault_id: [u8; VAULT_ID_LEN],
        generation: u64,
        (from_format, previous): (u32, &MasterKey),
    ) -> ConfigV2 {
        let mut config = ConfigV2::with_vault_id(master, features, vault_id);
        config.generation = generation;
        let mut buffer = Zeroizing::new(previous.as_bytes().to_vec());
        Aes256Siv::new((&*master.rotation_wrap_key(&vault_id)).into())
            .encrypt_in_place(config.rotation_ad(from_format), &mut *buffer)
            .expect("SIV accepts four headers and any plaintext");
        let mut wrapped = [0; WRAPPED_LEN];
        wrapped.copy_from_slice(&buffer);
        config.rotation = Some(Rotation {
            from_format,
            wrapped,
        });
        config.seal(master);
        config
    }

    /// The format an unfinished rotation started from (1 for an upgrade), if one is.
    pub fn rotating_from(&self) -> Option<u32> {
        self.rotation.as_ref().map(|r| r.from_format)
    }

    /// The previous master key of an unfinished rotation, unwrapped with `master` (from
    /// [`ConfigV2::unlock`], so the MAC has been checked).
    pub fn previous_master(&self, master: &MasterKey) -> Result<Option<MasterKey>> {
        let Some(rotation) = &self.rotation else {
            return Ok(None);
        };
        let mut buffer = Zeroizing::new(rotation.wrapped.to_vec());
        Aes256Siv::new((&*master.rotation_wrap_key(&self.vault_id)).into())
            .decrypt_in_place(self.rotation_ad(rotation.from_format), &mut *buffer)
            .map_err(|_| Error::ConfigModified("its previous master key does not unwrap".into()))?;
        let mut key = Zeroizing::new([0u8; MASTER_KEY_LEN]);
        key.copy_from_slice(&buffer);
        Ok(Some(MasterKey::from_bytes(*key)))
    }

    /// Ends a rotation: the previous master key is dropped from the config.
    pub fn finish_rotation(&mut self, master: &MasterKey) {
        self.rotation = None;
        self.seal(master);
    }

    fn rotation_ad(&self, from_format: u32) -> [Vec<u8>; 4] {
        [
            ROTATION_AD_LABEL.to_vec(),
            self.vault_id.to_vec(),
            self.generation.to_string().into_bytes(),
            from_format.to_string().into_bytes(),
        ]
    }

    /// Parses and checks a format 2 config (see [`super::Config::load`] for the errors).
    /// Checks everything that needs no key: bounds before any key derivation can allocate.
    pub fn from_json(text: &str) -> Result<ConfigV2> {
        let json: ConfigJson = super::strict_json(text)?;
        if json.format != FORMAT_V2 {
            return Err(Error::ConfigVersion(json.format));
        }
        let vault_id = decode_fixed::<VAULT_ID_LEN>(&json.vault_id, "vault_id")?;
        super::check_creator(&json.creator)?;
        if json.generation == 0 || json.generation > u64::from(u32::MAX) {
            return Err(corrupt(format!(
                "generation {} is not a key generation (1 and up)",
                json.generation
            )));
        }
        json.features.check().map_err(corrupt)?;
        if json.slots.is_empty() || json.slots.len() > MAX_SLOTS {
            return Err(corrupt(format!(
                "it has {} unlock slots (1 to {MAX_SLOTS} expected)",
                json.slots.len()
            )));
        }
        let mut slots: Vec<Slot> = Vec::with_capacity(json.slots.len());
        for (n, slot) in json.slots.into_iter().enumerate() {
            let slot = Slot::from_json(slot).map_err(|e| match e {
                Error::ConfigCorrupt(why) => corrupt(format!("slot {}: {why}", n + 1)),
                e => e,
            })?;
            if let Some(other) = slots
                .iter()
                .find(|s| s.id == slot.id || s.label == slot.label)
            {
                return Err(corrupt(format!(
                    "slots {:?} and {:?} have the same ID or label",
                    other.label, slot.label
                )));
            }
            slots.push(slot);
        }
        let rotation = match json.rotation {
            None => None,
            Some(rotation) => {
                if !(1..=FORMAT_V2).contains(&rotation.from_format) {
                    return Err(corrupt(format!(
                        "its rotation is from format {}, not 1 or 2",
                        rotation.from_format
                    )));
                }
                Some(Rotation {
                    from_format: rotation.from_format,
                    wrapped: decode_fixed::<WRAPPED_LEN>(
                        &rotation.from_master,
                        "rotation.from_master",
                    )?,
                })
            }
        };
        let mac = decode_fixed::<MAC_LEN>(&json.mac, "mac")?;
        Ok(ConfigV2 {
            vault_id,
            creator: json.creator,
            generation: json.generation,
            features: json.features,
            slots,
            rotation,
            mac,
        })
    }

    /// The file contents: pretty-printed JSON with a trailing newline.
    pub fn to_json(&self) -> Vec<u8> {
        let json = ConfigJson {
            format: FORMAT_V2,
            vault_id: BASE64URL_NOPAD.encode(&self.vault_id),
            creator: self.creator.clone(),
            generation: self.generation,
            features: self.features.clone(),
            slots: self.slots.iter().map(Slot::to_json).collect(),
            rotation: self.rotation.as_ref().map(|r| RotationJson {
                from_format: r.from_format,
                from_master: BASE64URL_NOPAD.encode(&r.wrapped),
            }),
            mac: BASE64URL_NOPAD.encode(&self.mac),
        };
        let mut bytes = serde_json::to_vec_pretty(&json).expect("config JSON always serializes");
        bytes.push(b'\n');
        bytes
    }

    pub fn vault_id(&self) -> &[u8; VAULT_ID_LEN] {
        &self.vault_id
    }

    pub fn creator(&self) -> &str {
        &self.creator
    }

    /// The key generation: 1, plus one for every rotation of the master key.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn features(&self) -> &Features {
        &self.features
    }

    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// The index of the slot whose ID or label is `which`.
    pub fn find_slot(&self, which: &str) -> Option<usize> {
        self.slots.iter().position(|slot| slot.is(which))
    }

    /// Whether some slot opens with `kind` of secret.
    pub fn has_kind(&self, kind: SlotKind) -> bool {
        self.slots.iter().any(|slot| slot.kind == kind)
    }

    /// Unlocks through the first slot of `secret`'s kind (or only the slot `only`, an ID or a
    /// label) that `secret` opens, then checks the MAC over the whole config: a config changed
    /// by someone without the key is [`Error::ConfigModified`], whichever slot opened it.
    ///
    /// Each password or key-file slot tried costs one key derivation.
    pub fn unlock(&self, secret: &Secret, only: Option<&str>) -> Result<Unlocked> {
        let kind = secret.kind();
        let mut tried = false;
        for (index, slot) in self.slots.iter().enumerate() {
            if slot.kind != kind || only.is_some_and(|which| !slot.is(which)) {
                continue;
            }
            tried = true;
            let wrap_key = self.wrap_key(slot, secret)?;
            let Some(master) = self.unwrap(slot, &wrap_key) else {
                continue;
            };
            if !self.mac_matches(&master) {
                return Err(Error::ConfigModified(
                    "its MAC does not match its contents; nothing was written".into(),
                ));
            }
            let keys = master.derive_v2(&self.vault_id);
            return Ok(Unlocked::new(master, keys, Some(index)));
        }
        if !tried {
            return Err(Error::NoSuchSlot(match only {
                Some(which) => format!("{} with the name {which:?}", secret.description()),
                None => secret.description().to_owned(),
            }));
        }
        Err(match secret {
            Secret::Recovery(_) => Error::WrongRecoveryKey,
            _ => Error::WrongPassword,
        })
    }

    /// Adds a slot that `secret` opens, labelled `label`, with `kdf` for the kinds that use it;
    /// the master key proves the caller may. Refused (with the reason): a label that is taken or
    /// not short text, more than [`MAX_SLOTS`] slots, KDF parameters below this build's floor.
    pub fn add_slot(
        &mut self,
        master: &MasterKey,
        label: &str,
        secret: &Secret,
        kdf: KdfParams,
    ) -> std::result::Result<String, String> {
        self.check_new_label(label)?;
        if secret.kind() == SlotKind::Contact {
            return Err("a contact slot is added with add_contact_slot".into());
        }
        let slot = self.make_slot(master, label, secret, kdf, SlotIdentity::fresh(), None)?;
        let id = slot.id();
        self.slots.push(slot);
        self.seal(master);
        Ok(id)
    }

    /// Adds a recovery-contact slot: `share` (the caller makes a fresh one) is stored encrypted
    /// to the contact's age `recipient`; the slot opens with the share and `passphrase`.
    pub fn add_contact_slot(
        &mut self,
        master: &MasterKey,
        label: &str,
        recipient: &str,
        share: &ContactShare,
        passphrase: &[u8],
        kdf: KdfParams,
    ) -> std::result::Result<String, String> {
        self.check_new_label(label)?;
        contact::check_recipient(recipient)?;
        let request = contact::encrypt_share(
            recipient,
            share,
            &BASE64URL_NOPAD.encode(&self.vault_id),
            label,
        )?;
        let info = ContactInfo {
            recipient: recipient.to_owned(),
            request,
        };
        let secret = Secret::Contact(share, passphrase);
        let slot = self.make_slot(
            master,
            label,
            &secret,
            kdf,
            SlotIdentity::fresh(),
            Some(info),
        )?;
        let id = slot.id();
        self.slots.push(slot);
        self.seal(master);
        Ok(id)
    }

    fn check_new_label(&self, label: &str) -> std::result::Result<(), String> {
        check_label(label)?;
        if self.slots.iter().any(|slot| slot.is(label)) {
            return Err(format!("a slot is already called {label:?}"));
        }
        if self.slots.len() >= MAX_SLOTS {
            return Err(format!(
                "the vault already has {MAX_SLOTS} slots, the most it can"
            ));
        }
        Ok(())
    }

    /// [`ConfigV2::add_slot`] with a given slot ID, salt and creation date: deterministic, for
    /// test vectors only.
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)]
    pub fn add_slot_fixed(
        &mut self,
        master: &MasterKey,
        label: &str,
        secret: &Secret,
        kdf: KdfParams,
        id: [u8; SLOT_ID_LEN],
        salt: [u8; SALT_LEN],
        created: &str,
    ) -> std::result::Result<(), String> {
        let identity = SlotIdentity {
            id,
            salt,
            created: created.to_owned(),
        };
        let slot = self.make_slot(master, label, secret, kdf, identity, None)?;
        self.slots.push(slot);
        self.seal(master);
        Ok(())
    }

    /// Replaces slot `index` by one that `secret` opens, keeping its label and place; `kdf` as
    /// for [`ConfigV2::add_slot`].
    pub fn replace_slot(
        &mut self,
        master: &MasterKey,
        index: usize,
        secret: &Secret,
        kdf: KdfParams,
    ) -> std::result::Result<(), String> {
        let label = self.slots[index].label.clone();
        if secret.kind() == SlotKind::Contact {
            return Err("a contact slot is replaced by removing it and adding another".into());
        }
        self.slots[index] =
            self.make_slot(master, &label, secret, kdf, SlotIdentity::fresh(), None)?;
        self.seal(master);
        Ok(())
    }

    /// Removes slot `index`; the last slot cannot be removed.
    pub fn remove_slot(
        &mut self,
        master: &MasterKey,
        index: usize,
    ) -> std::result::Result<Slot, String> {
        if self.slots.len() == 1 {
            return Err(format!(
                "slot {:?} is the vault's last: add another before removing it",
                self.slots[index].label
            ));
        }
        let slot = self.slots.remove(index);
        self.seal(master);
        Ok(slot)
    }

    fn make_slot(
        &self,
        master: &MasterKey,
        label: &str,
        secret: &Secret,
        kdf: KdfParams,
        identity: SlotIdentity,
        contact: Option<ContactInfo>,
    ) -> std::result::Result<Slot, String> {
        let kind = secret.kind();
        let kdf = if kind.uses_kdf() {
            kdf.check()?;
            Some(SlotKdf {
                params: kdf,
                salt: identity.salt,
            })
        } else {
            None
        };
        let mut slot = Slot {
            id: identity.id,
            kind,
            label: label.to_owned(),
            created: identity.created,
            kdf,
            contact,
            wrapped: [0; WRAPPED_LEN],
        };
        let wrap_key = self.wrap_key(&slot, secret).map_err(|e| e.to_string())?;
        let mut buffer = Zeroizing::new(master.as_bytes().to_vec());
        Aes256Siv::new((&*wrap_key).into())
            .encrypt_in_place(self.slot_ad(&slot), &mut *buffer)
            .expect("SIV accepts five headers and any plaintext");
        slot.wrapped.copy_from_slice(&buffer);
        Ok(slot)
    }

    /// The key that wraps the master key in `slot`, from `secret` (of the slot's kind).
    fn wrap_key(&self, slot: &Slot, secret: &Secret) -> Result<Zeroizing<[u8; WRAP_KEY_LEN]>> {
        let kdf = || {
            slot.kdf
                .as_ref()
                .expect("slots of every kind but recovery have KDF parameters (checked at load)")
        };
        match *secret {
            Secret::Password(password) => {
                let kdf = kdf();
                kdf.params.derive(&kdf.salt, password, None)
            }
            Secret::PasswordKeyfile(password, keyfile) => {
                let kdf = kdf();
                kdf.params.derive(&kdf.salt, password, Some(keyfile))
            }
            Secret::Keyfile(keyfile) => {
                let kdf = kdf();
                kdf.params.derive(&kdf.salt, keyfile.as_bytes(), None)
            }
            Secret::Recovery(secret) => Ok(recovery_wrap_key(secret, &self.vault_id, &slot.id)),
            Secret::Contact(share, passphrase) => {
                let kdf = kdf();
                let half = kdf.params.derive::<32>(&kdf.salt, passphrase, None)?;
                Ok(contact_wrap_key(share, &half, &self.vault_id, &slot.id))
            }
        }
    }

    /// The associated data of a slot's wrapping: it binds the wrapped key to this vault, this
    /// slot and this key generation.
    fn slot_ad(&self, slot: &Slot) -> [Vec<u8>; 5] {
        [
            SLOT_AD_LABEL.to_vec(),
            self.vault_id.to_vec(),
            slot.id.to_vec(),
            slot.kind.name().as_bytes().to_vec(),
            self.generation.to_string().into_bytes(),
        ]
    }

    fn unwrap(&self, slot: &Slot, wrap_key: &[u8; WRAP_KEY_LEN]) -> Option<MasterKey> {
        let mut buffer = Zeroizing::new(slot.wrapped.to_vec());
        Aes256Siv::new(wrap_key.into())
            .decrypt_in_place(self.slot_ad(slot), &mut *buffer)
            .ok()?;
        let mut key = Zeroizing::new([0u8; MASTER_KEY_LEN]);
        key.copy_from_slice(&buffer);
        Some(MasterKey::from_bytes(*key))
    }

    fn transcript(&self) -> Vec<u8> {
        let mut t = Transcript(Vec::with_capacity(1024));
        t.bytes(TRANSCRIPT_LABEL);
        t.int(u64::from(FORMAT_V2));
        t.bytes(&self.vault_id);
        t.bytes(self.creator.as_bytes());
        t.int(self.generation);
        t.bytes(self.features.name_encoding.name().as_bytes());
        t.int(self.features.longname_max as u64);
        t.int(self.slots.len() as u64);
        for slot in &self.slots {
            t.bytes(&slot.id);
            t.bytes(slot.kind.name().as_bytes());
            t.bytes(slot.label.as_bytes());
            t.bytes(slot.created.as_bytes());
            match &slot.kdf {
                None => t.absent(),
                Some(kdf) => {
                    t.bytes(KDF_ALGORITHM.as_bytes());
                    t.int(u64::from(KDF_VERSION));
                    t.int(u64::from(kdf.params.memory_kib));
                    t.int(u64::from(kdf.params.iterations));
                    t.int(u64::from(kdf.params.parallelism));
                    t.bytes(&kdf.salt);
                }
            }
            match &slot.contact {
                None => t.absent(),
                Some(contact) => {
                    t.bytes(contact.recipient.as_bytes());
                    t.bytes(&contact.request);
                }
            }
            t.bytes(&slot.wrapped);
        }
        // Appended only when present, so configs without it keep the transcript they had.
        if let Some(rotation) = &self.rotation {
            t.bytes(ROTATION_TRANSCRIPT_LABEL);
            t.int(u64::from(rotation.from_format));
            t.bytes(&rotation.wrapped);
        }
        t.0
    }

    fn mac(&self, master: &MasterKey) -> Hmac<Sha256> {
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(&master.config_mac_key(&self.vault_id)[..])
                .expect("HMAC takes keys of any length");
        mac.update(&self.transcript());
        mac
    }

    /// Compared in constant time (by the hmac crate).
    fn mac_matches(&self, master: &MasterKey) -> bool {
        self.mac(master).verify_slice(&self.mac).is_ok()
    }

    fn seal(&mut self, master: &MasterKey) {
        self.mac = self.mac(master).finalize().into_bytes().into();
    }
}

/// The wrapping key of a contact slot: HKDF of the contact's share and the passphrase's
/// Argon2id half, bound to the vault and slot. Neither half alone determines it.
#[doc(hidden)]
pub fn contact_wrap_key(
    share: &ContactShare,
    passphrase_half: &[u8; 32],
    vault_id: &[u8; VAULT_ID_LEN],
    slot_id: &[u8; SLOT_ID_LEN],
) -> Zeroizing<[u8; WRAP_KEY_LEN]> {
    let mut ikm = Zeroizing::new([0u8; 64]);
    ikm[..32].copy_from_slice(share.as_bytes());
    ikm[32..].copy_from_slice(passphrase_half);
    let mut key = Zeroizing::new([0u8; WRAP_KEY_LEN]);
    hkdf_sha256(
        &ikm[..],
        &[CONTACT_SLOT_INFO, vault_id, slot_id],
        &mut key[..],
    );
    key
}

/// What makes a new slot unique: random, except in test vectors.
struct SlotIdentity {
    id: [u8; SLOT_ID_LEN],
    salt: [u8; SALT_LEN],
    created: String,
}

impl SlotIdentity {
    fn fresh() -> SlotIdentity {
        let mut identity = SlotIdentity {
            id: [0; SLOT_ID_LEN],
            salt: [0; SALT_LEN],
            created: now_rfc3339(),
        };
        random_bytes(&mut identity.id);
        random_bytes(&mut identity.salt);
        identity
    }
}

/// The wrapping key of a recovery slot: HKDF of its 256-bit secret, bound to the vault and slot.
fn recovery_wrap_key(
    secret: &RecoverySecret,
    vault_id: &[u8; VAULT_ID_LEN],
    slot_id: &[u8; SLOT_ID_LEN],
) -> Zeroizing<[u8; WRAP_KEY_LEN]> {
    let mut key = Zeroizing::new([0u8; WRAP_KEY_LEN]);
    hkdf_sha256(
        secret.as_bytes(),
        &[RECOVERY_SLOT_INFO, vault_id, slot_id],
        &mut key[..],
    );
    key
}

impl Slot {
    fn from_json(json: SlotJson) -> Result<Slot> {
        let id = decode_fixed::<SLOT_ID_LEN>(&json.id, "id")?;
        check_label(&json.label).map_err(corrupt)?;
        if json.created.len() != 20 || humantime::parse_rfc3339(&json.created).is_err() {
            return Err(corrupt(format!(
                "created {:?} is not a time like 2026-12-02T10:00:00Z",
                json.created
            )));
        }
        let kdf = match (json.kind.uses_kdf(), json.kdf) {
            (true, Some(kdf)) => {
                super::check_kdf_algorithm(&kdf.algorithm, kdf.version)?;
                let params = KdfParams {
                    memory_kib: kdf.memory_kib,
                    iterations: kdf.iterations,
                    parallelism: kdf.parallelism,
                };
                params
                    .check_bounds(KdfParams::floor())
                    .map_err(|why| corrupt(format!("{why} (label {:?})", json.label)))?;
                let salt = decode_fixed::<SALT_LEN>(&kdf.salt, "kdf.salt")?;
                Some(SlotKdf { params, salt })
            }
            (false, None) => None,
            (true, None) => return Err(corrupt(format!("a {} slot needs kdf", json.kind.name()))),
            (false, Some(_)) => {
                return Err(corrupt(format!("a {} slot takes no kdf", json.kind.name())))
            }
        };
        let contact = match (json.kind == SlotKind::Contact, json.contact) {
            (true, Some(contact)) => {
                contact::check_recipient(&contact.recipient).map_err(corrupt)?;
                let request = BASE64URL_NOPAD
                    .decode(contact.request.as_bytes())
                    .map_err(|e| corrupt(format!("contact.request is not base64url: {e}")))?;
                if request.len() > contact::REQUEST_MAX_LEN {
                    return Err(corrupt(format!(
                        "contact.request is larger than {} bytes",
                        contact::REQUEST_MAX_LEN
                    )));
                }
                Some(ContactInfo {
                    recipient: contact.recipient,
                    request,
                })
            }
            (false, None) => None,
            (true, None) => return Err(corrupt("a contact slot needs contact".into())),
            (false, Some(_)) => {
                return Err(corrupt(format!(
                    "a {} slot takes no contact",
                    json.kind.name()
                )))
            }
        };
        let wrapped = decode_fixed::<WRAPPED_LEN>(&json.wrapped, "wrapped")?;
        Ok(Slot {
            id,
            kind: json.kind,
            label: json.label,
            created: json.created,
            kdf,
            contact,
            wrapped,
        })
    }

    fn to_json(&self) -> SlotJson {
        SlotJson {
            id: self.id(),
            kind: self.kind,
            label: self.label.clone(),
            created: self.created.clone(),
            kdf: self.kdf.as_ref().map(|kdf| KdfJson {
                algorithm: KDF_ALGORITHM.to_owned(),
                version: KDF_VERSION,
                memory_kib: kdf.params.memory_kib,
                iterations: kdf.params.iterations,
                parallelism: kdf.params.parallelism,
                salt: BASE64URL_NOPAD.encode(&kdf.salt),
            }),
            contact: self.contact.as_ref().map(|contact| ContactJson {
                recipient: contact.recipient.clone(),
                request: BASE64URL_NOPAD.encode(&contact.request),
            }),
            wrapped: BASE64URL_NOPAD.encode(&self.wrapped),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::keyfile::KeyfileSecret;
    use crate::config::Config;
    use crate::crypto::keys::ContactShare;
    use serde_json::Value;

    const CHEAP: KdfParams = KdfParams {
        memory_kib: 8,
        iterations: 1,
        parallelism: 1,
    };

    fn master() -> MasterKey {
        MasterKey::from_bytes(std::array::from_fn(|i| i as u8))
    }

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
}
