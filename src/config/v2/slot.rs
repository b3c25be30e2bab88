//! Unlock slots of a format 2 config: their kinds, what each holds (Argon2id parameters and
//! salt, a recovery contact), their labels, and the keys that wrap the master key in the kinds
//! that do not use Argon2id alone (a recovery key, a recovery contact's share).

use std::time::SystemTime;

use data_encoding::BASE64URL_NOPAD;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{LABEL_MAX_LEN, SLOT_ID_LEN, WRAPPED_LEN, WRAP_KEY_LEN};
use crate::config::kdf::{KdfParams, SALT_LEN};
use crate::crypto::keys::{hkdf_sha256, ContactShare, RecoverySecret, VAULT_ID_LEN};
use crate::crypto::random_bytes;

const RECOVERY_SLOT_INFO: &[u8] = b"veilfs v2 recovery slot";
const CONTACT_SLOT_INFO: &[u8] = b"veilfs v2 contact slot";

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
    pub(super) id: [u8; SLOT_ID_LEN],
    pub(super) kind: SlotKind,
    pub(super) label: String,
    pub(super) created: String,
    pub(super) kdf: Option<SlotKdf>,
    pub(super) contact: Option<ContactInfo>,
    pub(super) wrapped: [u8; WRAPPED_LEN],
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
pub(super) struct SlotIdentity {
    pub id: [u8; SLOT_ID_LEN],
    pub salt: [u8; SALT_LEN],
    pub created: String,
}

impl SlotIdentity {
    pub fn fresh() -> SlotIdentity {
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
pub(super) fn recovery_wrap_key(
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
