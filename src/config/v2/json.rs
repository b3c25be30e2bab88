//! The JSON form of a format 2 config: the shapes written to disk (member order is the order on
//! disk), and the checks of everything that needs no key, made while parsing.

use data_encoding::BASE64URL_NOPAD;
use serde::{Deserialize, Serialize};

use super::{
    check_label, corrupt, ConfigV2, ContactInfo, Rotation, Slot, SlotKdf, SlotKind, FORMAT_V2,
    MAC_LEN, MAX_SLOTS, SLOT_ID_LEN, WRAPPED_LEN,
};
use crate::config::kdf::{KdfJson, KdfParams, SALT_LEN};
use crate::config::{
    check_creator, check_kdf_algorithm, contact, decode_fixed, strict_json, Features,
};
use crate::crypto::keys::VAULT_ID_LEN;
use crate::error::{Error, Result};

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

impl ConfigV2 {
    /// Parses and checks a format 2 config (see [`crate::config::Config::load`] for the errors).
    /// Checks everything that needs no key: bounds before any key derivation can allocate.
    pub fn from_json(text: &str) -> Result<ConfigV2> {
        let json: ConfigJson = strict_json(text)?;
        if json.format != FORMAT_V2 {
            return Err(Error::ConfigVersion(json.format));
        }
        let vault_id = decode_fixed::<VAULT_ID_LEN>(&json.vault_id, "vault_id")?;
        check_creator(&json.creator)?;
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
                check_kdf_algorithm(&kdf.algorithm, kdf.version)?;
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
            kdf: self
                .kdf
                .as_ref()
                .map(|kdf| KdfJson::new(&kdf.params, &kdf.salt)),
            contact: self.contact.as_ref().map(|contact| ContactJson {
                recipient: contact.recipient.clone(),
                request: BASE64URL_NOPAD.encode(&contact.request),
            }),
            wrapped: BASE64URL_NOPAD.encode(&self.wrapped),
        }
    }
}
