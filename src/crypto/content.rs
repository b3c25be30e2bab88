//! File contents of format v1 ("Contents" in format.md): the file header, the per-file keys, and
//! how a plaintext of a given size is cut into sectors and encrypted.
//!
//! Pure functions over byte buffers; reading and writing backing files is `layout::file`'s job.

use zeroize::Zeroizing;

use super::keys::{hkdf_sha256, ContentKey};
use super::random_bytes;
use super::xts::Xts;
use crate::error::{Error, Result};

pub const BLOCK_SIZE: u64 = 4096;
pub const HEADER_LEN: u64 = 18;
pub const FORMAT_VERSION: u16 = 1;
pub const FILE_ID_LEN: usize = 16;
/// XTS needs at least one full AES block per sector.
pub const MIN_XTS_SECTOR: u64 = 16;

const INFO_FILE_KEY: &[u8] = b"veilfs v1 file key";
const INFO_SHORT_FILE: &[u8] = b"veilfs v1 short file";

/// The 18 bytes in front of every non-empty backing file: version (u16 big-endian) and file ID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileHeader {
    pub file_id: [u8; FILE_ID_LEN],
}

impl FileHeader {
    pub fn random() -> Self {
        let mut file_id = [0; FILE_ID_LEN];
        random_bytes(&mut file_id);
        Self { file_id }
    }

    pub fn to_bytes(&self) -> [u8; HEADER_LEN as usize] {
        let mut out = [0; HEADER_LEN as usize];
        out[..2].copy_from_slice(&FORMAT_VERSION.to_be_bytes());
        out[2..].copy_from_slice(&self.file_id);
        out
    }

    pub fn parse(bytes: &[u8]) -> Result<Self> {
        if bytes.len() < HEADER_LEN as usize {
            return Err(Error::HeaderTruncated(bytes.len() as u64));
        }
        let version = u16::from_be_bytes([bytes[0], bytes[1]]);
        if version != FORMAT_VERSION {
            return Err(Error::HeaderVersion(version));
        }
        let mut file_id = [0; FILE_ID_LEN];
        file_id.copy_from_slice(&bytes[2..HEADER_LEN as usize]);
        Ok(Self { file_id })
    }
}

/// Plaintext size of a backing file of `backing_size` bytes: stat never decrypts.
pub fn plaintext_size(backing_size: u64) -> Result<u64> {
    match backing_size {
        0 => Ok(0),
        n if n < HEADER_LEN => Err(Error::HeaderTruncated(n)),
        n => Ok(n - HEADER_LEN),
    }
}

/// Backing size of a plaintext of `size` bytes.
pub fn backing_size(size: u64) -> u64 {
    if size == 0 {
        0
    } else {
        size + HEADER_LEN
    }
}

/// A run of plaintext bytes encrypted as one unit: `start` is a multiple of [`BLOCK_SIZE`] and
/// `start / BLOCK_SIZE` is its XTS sector number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sector {
    pub start: u64,
    pub len: u64,
}

impl Sector {
    pub fn end(&self) -> u64 {
        self.start + self.len
    }
    pub fn index(&self) -> u64 {
        self.start / BLOCK_SIZE
    }
}

/// The sector containing plaintext offset `pos` in a file of `size` bytes, if `pos < size`.
///
/// Sectors are the 4096-byte blocks, except at the end: a final block of 1-15 bytes is absorbed
/// into the sector before it (4096 + r bytes, ciphertext stealing), and a whole file under 16
/// bytes is one short sector encrypted with a keystream instead of XTS.
pub fn sector_at(pos: u64, size: u64) -> Option<Sector> {
    if pos >= size {
        return None;
    }
    if size < MIN_XTS_SECTOR {
        return Some(Sector {
            start: 0,
            len: size,
        });
    }
    let tail = size % BLOCK_SIZE;
    let last_start = if tail > 0 && tail < MIN_XTS_SECTOR {
        size - tail - BLOCK_SIZE
    } else if tail == 0 {
        size - BLOCK_SIZE
    } else {
        size - tail
    };
    let start = (pos / BLOCK_SIZE * BLOCK_SIZE).min(last_start);
    let end = if start == last_start {
        size
    } else {
        start + BLOCK_SIZE
    };
    Some(Sector {
        start,
        len: end - start,
    })
}

/// The sectors of a `size`-byte file that overlap plaintext range `[from, to)`, in order.
pub fn sectors_overlapping(from: u64, to: u64, size: u64) -> impl Iterator<Item = Sector> {
    let to = to.min(size);
    let mut next = sector_at(from, size).filter(|_| from < to);
    std::iter::from_fn(move || {
        let sector = next?;
        next = sector_at(sector.end(), size).filter(|s| s.start < to);
        Some(sector)
    })
}

/// The keys of one file, derived from the content key and the file ID in its header.
pub struct FileCipher {
    header: FileHeader,
    xts: Xts,
    short_keystream: Zeroizing<[u8; MIN_XTS_SECTOR as usize]>,
}

impl std::fmt::Debug for FileCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FileCipher(..)")
    }
}

impl FileCipher {
    pub fn new(content_key: &ContentKey, header: FileHeader) -> Self {
        let mut xts_key = Zeroizing::new([0u8; 64]);
        hkdf_sha256(
            content_key.as_bytes(),
            &[INFO_FILE_KEY, &header.file_id],
            &mut xts_key[..],
        );
        let mut short_keystream = Zeroizing::new([0u8; MIN_XTS_SECTOR as usize]);
        hkdf_sha256(
            content_key.as_bytes(),
            &[INFO_SHORT_FILE, &header.file_id],
            &mut short_keystream[..],
        );
        Self {
            header,
            xts: Xts::new(&xts_key),
            short_keystream,
        }
    }

    pub fn header(&self) -> &FileHeader {
        &self.header
    }

    /// Encrypts the plaintext of `sector` in place. A short sector (a file under 16 bytes) is
    /// XORed with a keystream that is used once: writers give such a file a new file ID whenever
    /// its contents change.
    pub fn encrypt_sector(&self, sector: Sector, data: &mut [u8]) {
        debug_assert_eq!(data.len() as u64, sector.len);
        if sector.len < MIN_XTS_SECTOR {
            self.apply_short_keystream(data);
        } else {
            self.xts.encrypt_sector(sector.index(), data);
        }
    }

    /// Decrypts `sector` in place. An all-zero XTS sector is a hole and reads as zeros; a short
    /// sector is never a hole (its ciphertext is zero whenever plaintext equals keystream).
    pub fn decrypt_sector(&self, sector: Sector, data: &mut [u8]) {
        debug_assert_eq!(data.len() as u64, sector.len);
        if sector.len < MIN_XTS_SECTOR {
            self.apply_short_keystream(data);
        } else if !is_all_zero(data) {
            self.xts.decrypt_sector(sector.index(), data);
        }
    }

    fn apply_short_keystream(&self, data: &mut [u8]) {
        for (byte, key) in data.iter_mut().zip(self.short_keystream.iter()) {
            *byte ^= key;
        }
    }
}

fn is_all_zero(data: &[u8]) -> bool {
    // Chunked so the compiler vectorizes the OR, yet ciphertext (nonzero at once) exits early.
    data.chunks(64)
        .all(|chunk| chunk.iter().fold(0, |acc, &b| acc | b) == 0)
}
