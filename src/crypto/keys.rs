//! The master key and the subkeys derived from it (format.md, "Keys").
//!
//! Every key type zeroizes its bytes when dropped and prints nothing but its type in `Debug`.

use hkdf::Hkdf;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::random_bytes;

pub const MASTER_KEY_LEN: usize = 64;
pub const RECOVERY_SECRET_LEN: usize = 32;
pub const CONTACT_SHARE_LEN: usize = 32;

const INFO_NAME_KEY: &[u8] = b"veilfs v1 name key";
const INFO_CONTENT_KEY: &[u8] = b"veilfs v1 content key";
const INFO_DIRIV_KEY: &[u8] = b"veilfs v1 diriv key";
const INFO_RECORD_KEY: &[u8] = b"veilfs v1 record key";

/// Format v2: every subkey's HKDF info is this prefix, the purpose, and the vault ID, which binds
/// every key to one vault.
const V2_INFO_PREFIX: &[u8] = b"veilfs v2 ";
/// Length of a format v2 vault ID.
pub const VAULT_ID_LEN: usize = 16;

/// HKDF-SHA256 with an empty salt: the one derivation function of format v1.
pub(crate) fn hkdf_sha256(ikm: &[u8], info: &[&[u8]], out: &mut [u8]) {
    Hkdf::<Sha256>::new(None, ikm)
        .expand_multi_info(info, out)
        .expect("HKDF output lengths in format v1 are far below the 8160-byte limit");
}

/// HMAC-SHA256 over the concatenation of `parts`.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

macro_rules! secret_bytes {
    ($(#[$doc:meta])* $name:ident, $len:expr) => {
        $(#[$doc])*
        #[derive(Clone, Zeroize, ZeroizeOnDrop)]
        pub struct $name([u8; $len]);

        impl $name {
            pub fn from_bytes(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }
            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "(..)"))
            }
        }
    };
}

secret_bytes!(
    /// 64 random bytes; everything else is derived from it. Shown once at init as the recovery key.
    MasterKey,
    MASTER_KEY_LEN
);
secret_bytes!(
    /// The secret of a format v2 recovery slot: shown once as the recovery key, never the
    /// master key itself, so that removing the slot revokes it.
    RecoverySecret,
    RECOVERY_SECRET_LEN
);
secret_bytes!(
    /// The half of a recovery-contact slot's secret that the contact holds (encrypted to them in
    /// the slot); the other half comes from the user's recovery passphrase.
    ContactShare,
    CONTACT_SHARE_LEN
);
secret_bytes!(
    /// AES-256-SIV key (two AES-256 keys) for names, symlink targets and xattrs.
    NameKey,
    64
);
secret_bytes!(
    /// Input to the per-file key derivation.
    ContentKey,
    32
);
secret_bytes!(
    /// AES-256-SIV key (two AES-256 keys) that seals the records veilfs writes about its own
    /// unfinished work (a directory move), so that nobody without the key can forge one.
    RecordKey,
    64
);
secret_bytes!(
    /// HMAC key that derives a new directory's IV from its parent's IV and its name.
    DirIvKey,
    32
);
secret_bytes!(
    /// HMAC key of reverse mode's deterministic choices (file IDs, symlink nonces): format.md,
    /// "Reverse mode". A forward vault never uses it.
    ReverseKey,
    32
);

impl MasterKey {
    pub fn generate() -> Self {
        let mut key = [0u8; MASTER_KEY_LEN];
        random_bytes(&mut key);
        let master = Self(key);
        key.zeroize();
        master
    }

    /// Splits the master key into the independent subkeys of format v1.
    pub fn derive(&self) -> VaultKeys {
        let mut name = Zeroizing::new([0u8; 64]);
        let mut content = Zeroizing::new([0u8; 32]);
        let mut diriv = Zeroizing::new([0u8; 32]);
        let mut record = Zeroizing::new([0u8; 64]);
        hkdf_sha256(&self.0, &[INFO_NAME_KEY], &mut name[..]);
        hkdf_sha256(&self.0, &[INFO_CONTENT_KEY], &mut content[..]);
        hkdf_sha256(&self.0, &[INFO_DIRIV_KEY], &mut diriv[..]);
        hkdf_sha256(&self.0, &[INFO_RECORD_KEY], &mut record[..]);
        VaultKeys {
            name: NameKey(*name),
            content: ContentKey(*content),
            diriv: DirIvKey(*diriv),
            record: RecordKey(*record),
        }
    }
}

impl MasterKey {
    /// Format v2's subkey for `purpose` of the vault `vault_id`.
    fn derive_v2_into(&self, purpose: &[u8], vault_id: &[u8; VAULT_ID_LEN], out: &mut [u8]) {
        hkdf_sha256(&self.0, &[V2_INFO_PREFIX, purpose, vault_id], out);
    }

    /// The subkeys of format v2: as v1's, with the vault ID in every derivation.
    pub fn derive_v2(&self, vault_id: &[u8; VAULT_ID_LEN]) -> VaultKeys {
        let mut name = Zeroizing::new([0u8; 64]);
        let mut content = Zeroizing::new([0u8; 32]);
        let mut diriv = Zeroizing::new([0u8; 32]);
        let mut record = Zeroizing::new([0u8; 64]);
        self.derive_v2_into(b"name key", vault_id, &mut name[..]);
        self.derive_v2_into(b"content key", vault_id, &mut content[..]);
        self.derive_v2_into(b"diriv key", vault_id, &mut diriv[..]);
        self.derive_v2_into(b"record key", vault_id, &mut record[..]);
        VaultKeys {
            name: NameKey(*name),
            content: ContentKey(*content),
            diriv: DirIvKey(*diriv),
            record: RecordKey(*record),
        }
    }

    /// The SIV key that wraps the previous master key in a config while a rotation is
    /// unfinished (format.md, "Key rotation").
    pub fn rotation_wrap_key(&self, vault_id: &[u8; VAULT_ID_LEN]) -> Zeroizing<[u8; 64]> {
        let mut key = Zeroizing::new([0u8; 64]);
        self.derive_v2_into(b"rotation wrap key", vault_id, &mut key[..]);
        key
    }

    /// The key of reverse mode (format.md, "Reverse mode").
    pub fn reverse_key(&self, vault_id: &[u8; VAULT_ID_LEN]) -> ReverseKey {
        let mut key = Zeroizing::new([0u8; 32]);
        self.derive_v2_into(b"reverse key", vault_id, &mut key[..]);
        ReverseKey(*key)
    }

    /// The HMAC key of a format v2 config's `mac`.
    pub fn config_mac_key(&self, vault_id: &[u8; VAULT_ID_LEN]) -> Zeroizing<[u8; 32]> {
        let mut key = Zeroizing::new([0u8; 32]);
        self.derive_v2_into(b"config mac key", vault_id, &mut key[..]);
        key
    }
}

impl RecoverySecret {
    pub fn generate() -> Self {
        let mut secret = Zeroizing::new([0u8; RECOVERY_SECRET_LEN]);
        random_bytes(&mut secret[..]);
        Self(*secret)
    }
}

impl ContactShare {
    pub fn generate() -> Self {
        let mut share = Zeroizing::new([0u8; CONTACT_SHARE_LEN]);
        random_bytes(&mut share[..]);
        Self(*share)
    }
}

/// The subkeys an unlocked vault works with.
#[derive(Clone, Debug)]
pub struct VaultKeys {
    pub name: NameKey,
    pub content: ContentKey,
    pub diriv: DirIvKey,
    pub record: RecordKey,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subkeys_are_distinct_and_deterministic() {
        let master = MasterKey::from_bytes([7; 64]);
        let a = master.derive();
        let b = master.derive();
        assert_eq!(a.name.as_bytes(), b.name.as_bytes());
        assert_ne!(&a.name.as_bytes()[..32], a.content.as_bytes());
        assert_ne!(a.content.as_bytes(), a.diriv.as_bytes());
    }

    #[test]
    fn v2_subkeys_depend_on_the_vault_id() {
        let master = MasterKey::from_bytes([7; 64]);
        let v1 = master.derive();
        let a = master.derive_v2(&[1; VAULT_ID_LEN]);
        let b = master.derive_v2(&[2; VAULT_ID_LEN]);
        assert_ne!(a.name.as_bytes(), b.name.as_bytes());
        assert_ne!(a.name.as_bytes(), v1.name.as_bytes());
        assert_ne!(a.diriv.as_bytes(), b.diriv.as_bytes());
        assert_ne!(
            master.config_mac_key(&[1; VAULT_ID_LEN])[..],
            master.config_mac_key(&[2; VAULT_ID_LEN])[..]
        );
    }

    #[test]
    fn debug_never_prints_key_bytes() {
        let master = MasterKey::from_bytes([0xab; 64]);
        assert_eq!(format!("{master:?}"), "MasterKey(..)");
        assert!(!format!("{:?}", master.derive()).contains("171"));
    }
}
