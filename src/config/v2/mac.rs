//! The MAC of a format 2 config: HMAC-SHA256, under a key derived from the master key, over a
//! transcript of the parsed values (not the JSON text, so that two JSON parsers cannot disagree
//! about what it covers). Every member is in it: changing one without the master key makes the
//! next unlock fail with `Error::ConfigModified`.

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{ConfigV2, FORMAT_V2};
use crate::config::kdf::{KDF_ALGORITHM, KDF_VERSION};
use crate::crypto::keys::MasterKey;

const TRANSCRIPT_LABEL: &[u8] = b"veilfs v2 config";
const ROTATION_TRANSCRIPT_LABEL: &[u8] = b"rotation";

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

impl ConfigV2 {
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

    /// Whether the stored MAC is the one `master` gives; compared in constant time (by the hmac crate).
    pub(super) fn mac_matches(&self, master: &MasterKey) -> bool {
        self.mac(master).verify_slice(&self.mac).is_ok()
    }

    /// Computes and stores the MAC: after every change made with the master key.
    pub(super) fn seal(&mut self, master: &MasterKey) {
        self.mac = self.mac(master).finalize().into_bytes().into();
    }
}
