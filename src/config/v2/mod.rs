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
//!
//! Here: the config, what changes it with the master key (slots added, replaced, removed; a
//! rotation started and finished), and the unlock. The slots and their kinds are in `slot`, the
//! JSON form and its checks in `json`, the MAC and its transcript in `mac`.

mod json;
mod mac;
mod slot;
#[cfg(test)]
mod tests;

use aes_siv::siv::Aes256Siv;
use aes_siv::KeyInit;
use data_encoding::BASE64URL_NOPAD;
use zeroize::Zeroizing;

use super::kdf::{KdfParams, SALT_LEN};
use super::{contact, Features, Secret, Unlocked, CREATOR};
use crate::crypto::keys::{ContactShare, MasterKey, MASTER_KEY_LEN, VAULT_ID_LEN};
use crate::crypto::random_bytes;
use crate::error::{Error, Result};
pub use slot::{check_label, contact_wrap_key, ContactInfo, Slot, SlotKdf, SlotKind};
use slot::{recovery_wrap_key, SlotIdentity};

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

const SLOT_AD_LABEL: &[u8] = b"veilfs v2 slot";
const ROTATION_AD_LABEL: &[u8] = b"veilfs v2 rotation";

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

fn corrupt(message: String) -> Error {
    Error::ConfigCorrupt(message)
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
}
