//! Records veilfs writes about its own unfinished work, sealed with AES-256-SIV under the record
//! key so that nobody without the master key can make one: the move record of a directory
//! rename (format-v2.md, "Unique directory IVs") and the link record of a key rotation
//! (format.md, "Key rotation").

use aes_siv::siv::Aes256Siv;
use aes_siv::KeyInit;

use super::keys::RecordKey;
use super::names::{DirIv, DIR_IV_LEN};
use super::random_bytes;
use crate::error::{Error, Result};

const AD_MOVE: &[u8] = b"veilfs v2 move";
const MOVE_ID_LEN: usize = 16;
/// Old IV, new IV and move ID, sealed (16 bytes of SIV tag).
pub const MOVE_RECORD_LEN: usize = 16 + 2 * DIR_IV_LEN + MOVE_ID_LEN;

/// A directory whose IV changes from `old` to `new`, with the names of its whole subtree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MoveRecord {
    pub old: DirIv,
    pub new: DirIv,
    /// Random: two moves between the same IVs have different records.
    pub id: [u8; MOVE_ID_LEN],
}

impl MoveRecord {
    pub fn new(old: DirIv, new: DirIv) -> Self {
        let mut id = [0; MOVE_ID_LEN];
        random_bytes(&mut id);
        Self { old, new, id }
    }

    /// `SIV(record key, AD = ["veilfs v2 move", binding], old || new || id)`; `binding` ties the
    /// record to one vault (the root IV today; v2 adds the vault ID).
    pub fn seal(&self, key: &RecordKey, binding: &[u8]) -> Vec<u8> {
        let mut plain = Vec::with_capacity(MOVE_RECORD_LEN - 16);
        plain.extend_from_slice(&self.old.0);
        plain.extend_from_slice(&self.new.0);
        plain.extend_from_slice(&self.id);
        Aes256Siv::new(key.as_bytes().into())
            .encrypt([AD_MOVE, binding], &plain)
            .expect("SIV accepts two associated data items")
    }

    /// The record in `sealed`, if it authenticates under `key` and `binding`.
    pub fn open(key: &RecordKey, binding: &[u8], sealed: &[u8]) -> Result<Self> {
        if sealed.len() != MOVE_RECORD_LEN {
            return Err(Error::NameAuth);
        }
        let plain = Aes256Siv::new(key.as_bytes().into())
            .decrypt([AD_MOVE, binding], sealed)
            .map_err(|_| Error::NameAuth)?;
        let iv = |at: usize| {
            let mut iv = [0; DIR_IV_LEN];
            iv.copy_from_slice(&plain[at..at + DIR_IV_LEN]);
            DirIv(iv)
        };
        let mut id = [0; MOVE_ID_LEN];
        id.copy_from_slice(&plain[2 * DIR_IV_LEN..]);
        Ok(Self {
            old: iv(0),
            new: iv(DIR_IV_LEN),
            id,
        })
    }
}

const AD_LINK: &[u8] = b"veilfs v2 rotation link";

/// A hard-linked file a key rotation has re-encrypted: the old file (its inode number and
/// header) and where its new file is (the backing names of the directories from the root, then
/// its own), so that its other names become links to the new file even after a crash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkRecord {
    pub old_inode: u64,
    /// The old file's header: empty for an empty file.
    pub old_header: Vec<u8>,
    pub new_path: Vec<String>,
}

impl LinkRecord {
    /// `SIV(record key, AD = ["veilfs v2 rotation link", binding], inode (8 bytes, big-endian)
    /// || header length (1 byte) || header || the path's names joined by "/")`.
    pub fn seal(&self, key: &RecordKey, binding: &[u8]) -> Vec<u8> {
        let mut plain = self.old_inode.to_be_bytes().to_vec();
        plain.push(u8::try_from(self.old_header.len()).expect("a header is 18 bytes"));
        plain.extend_from_slice(&self.old_header);
        plain.extend_from_slice(self.new_path.join("/").as_bytes());
        Aes256Siv::new(key.as_bytes().into())
            .encrypt([AD_LINK, binding], &plain)
            .expect("SIV accepts two associated data items")
    }

    /// The record in `sealed`, if it authenticates under `key` and `binding`.
    pub fn open(key: &RecordKey, binding: &[u8], sealed: &[u8]) -> Result<Self> {
        let plain = Aes256Siv::new(key.as_bytes().into())
            .decrypt([AD_LINK, binding], sealed)
            .map_err(|_| Error::NameAuth)?;
        let (inode, rest) = plain.split_first_chunk::<8>().ok_or(Error::NameAuth)?;
        let (&len, rest) = rest.split_first().ok_or(Error::NameAuth)?;
        let header = rest.get(..usize::from(len)).ok_or(Error::NameAuth)?;
        let path = std::str::from_utf8(&rest[usize::from(len)..]).map_err(|_| Error::NameAuth)?;
        Ok(Self {
            old_inode: u64::from_be_bytes(*inode),
            old_header: header.to_vec(),
            new_path: path.split('/').map(str::to_owned).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Computed independently with Python's `cryptography` (OpenSSL's AES-SIV):
    /// `AESSIV(bytes(range(64))).encrypt(bytes([1]*16 + [2]*16 + [3]*16),
    /// [b"veilfs v2 move", bytes([0x11]*16)])`.
    #[test]
    fn the_sealed_record_matches_an_independent_implementation() {
        let key: [u8; 64] = std::array::from_fn(|i| i as u8);
        let record = MoveRecord {
            old: DirIv([1; 16]),
            new: DirIv([2; 16]),
            id: [3; 16],
        };
        let sealed = record.seal(&RecordKey::from_bytes(key), &[0x11; 16]);
        assert_eq!(
            data_encoding::HEXLOWER.encode(&sealed),
            "e82bca5c377f5d27a7624bf0497ced940f986758b4170356ad68654fac163df2\
             b9c91a4af7ec47f4590fd0e18b8b580ce31a72fbcb7293c72a77f14735c4baf1"
        );
    }

    #[test]
    fn a_link_record_round_trips_and_opens_only_with_its_key() {
        let key = RecordKey::from_bytes([3; 64]);
        let record = LinkRecord {
            old_inode: 1234,
            old_header: vec![0, 1, 2],
            new_path: vec!["dir".into(), "file".into()],
        };
        let sealed = record.seal(&key, b"vault");
        assert_eq!(LinkRecord::open(&key, b"vault", &sealed).unwrap(), record);
        assert!(LinkRecord::open(&key, b"other", &sealed).is_err());
        assert!(LinkRecord::open(&RecordKey::from_bytes([4; 64]), b"vault", &sealed).is_err());
    }

    #[test]
    fn a_record_opens_only_with_its_key_and_binding() {
        let key = RecordKey::from_bytes([3; 64]);
        let record = MoveRecord::new(DirIv([1; 16]), DirIv([2; 16]));
        let sealed = record.seal(&key, b"vault a");
        assert_eq!(sealed.len(), MOVE_RECORD_LEN);
        assert_eq!(MoveRecord::open(&key, b"vault a", &sealed).unwrap(), record);
        assert!(MoveRecord::open(&key, b"vault b", &sealed).is_err());
        assert!(MoveRecord::open(&RecordKey::from_bytes([4; 64]), b"vault a", &sealed).is_err());
        let mut flipped = sealed.clone();
        flipped[20] ^= 1;
        assert!(MoveRecord::open(&key, b"vault a", &flipped).is_err());
    }
}
