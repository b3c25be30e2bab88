//! File contents: `FileContent::load` on an in-memory backing file of arbitrary bytes, with the
//! content key of the format.md test vectors. Loading never panics and fails only as format.md
//! says (1-17 bytes: a truncated header; another version); an accepted header re-serializes to
//! the same 18 bytes. Then reads at arbitrary offsets and lengths agree with one whole read (the
//! sector arithmetic, ciphertext stealing, short files), and writes and truncates at offsets up
//! to ~40 KiB agree with a plain byte vector, also after reloading the file from its backing.
//!
//!
//! The model is a byte vector plus format.md's hole rule: an XTS sector whose ciphertext is all
//! zero reads as zeros. An honest writer produces one with probability 2^-128, but a planted
//! file can hold a zero ciphertext block whose plaintext a truncate then stores as a sector of
//! its own, whose ciphertext is zero again (the first finding, fuzz/regressions/): the model
//! then encrypts each of its sectors and zeroes those whose ciphertext is zero.
//!
//! Input: 2 bytes (big-endian) of backing length L, L backing bytes, then operations.
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use veilfs::crypto::content::{
    sectors_overlapping, FileCipher, FileHeader, HEADER_LEN, MIN_XTS_SECTOR,
};
use veilfs::crypto::keys::{ContentKey, MasterKey};
use veilfs::layout::file::{FileContent, MemBacking};
use veilfs::Error;

/// Largest offset written or truncated to: ten sectors and a bit, so every sector shape occurs.
const SPAN: u64 = 10 * 4096 + 40;

#[derive(Debug)]
enum Op {
    Read { offset: u64, len: u16 },
    ReadNear { offset: u16, len: u16 },
    Write { offset: u16, data: Vec<u8> },
    Truncate { size: u16 },
    Reload,
}

impl Op {
    fn take(u: &mut Unstructured) -> Result<Op> {
        Ok(match u.int_in_range(0..=4u8)? {
            0 => Op::Read {
                offset: u.arbitrary()?,
                len: u.arbitrary()?,
            },
            1 => Op::ReadNear {
                offset: u.arbitrary()?,
                len: u.arbitrary()?,
            },
            2 => Op::Write {
                offset: u.arbitrary()?,
                data: u.arbitrary()?,
            },
            3 => Op::Truncate {
                size: u.arbitrary()?,
            },
            _ => Op::Reload,
        })
    }
}

fn content_key() -> ContentKey {
    MasterKey::from_bytes(std::array::from_fn(|i| i as u8))
        .derive()
        .content
}

fn scaled(x: u16) -> u64 {
    u64::from(x) * SPAN / u64::from(u16::MAX)
}

fn check_read(content: &FileContent, backing: &MemBacking, model: &[u8], offset: u64, len: usize) {
    let got = content.read(backing, offset, len).expect("read");
    let from = (offset.min(model.len() as u64)) as usize;
    let to = (offset.saturating_add(len as u64).min(model.len() as u64)) as usize;
    assert_eq!(got, model[from..to.max(from)], "read at {offset} of {len}");
}

/// Applies the hole rule to the model: a sector whose ciphertext under the file's current
/// header is all zero reads as zeros.
fn apply_hole_rule(content: &FileContent, key: &ContentKey, model: &mut [u8]) {
    let Some(header) = content.header() else {
        return;
    };
    let cipher = FileCipher::new(key, *header);
    let size = model.len() as u64;
    for sector in sectors_overlapping(0, size, size).filter(|s| s.len >= MIN_XTS_SECTOR) {
        let span = &mut model[sector.start as usize..sector.end() as usize];
        let mut ciphertext = span.to_vec();
        cipher.encrypt_sector(sector, &mut ciphertext);
        if ciphertext.iter().all(|&b| b == 0) {
            span.fill(0);
        }
    }
}

fn check_all(content: &FileContent, backing: &MemBacking, model: &[u8]) {
    assert_eq!(FileContent::size(backing).unwrap(), model.len() as u64);
    check_read(content, backing, model, 0, model.len() + 1);
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let len = usize::from(u16::from_be_bytes([data[0], data[1]])).min(data.len() - 2);
    let (bytes, rest) = data[2..].split_at(len);
    let key = content_key();
    let backing = MemBacking(bytes.to_vec().into());

    let mut content = match FileContent::load(&backing, &key) {
        Ok(content) => content,
        Err(Error::HeaderTruncated(n)) => {
            assert!(n as usize == bytes.len() && (1..HEADER_LEN as usize).contains(&bytes.len()));
            return;
        }
        Err(Error::HeaderVersion(v)) => {
            assert!(bytes.len() >= HEADER_LEN as usize && v != 1);
            assert_eq!(v, u16::from_be_bytes([bytes[0], bytes[1]]));
            return;
        }
        Err(e) => panic!("load failed with {e:?}"),
    };
    match content.header() {
        None => assert!(bytes.is_empty()),
        Some(header) => {
            assert_eq!(header.to_bytes()[..], bytes[..HEADER_LEN as usize]);
            assert_eq!(FileHeader::parse(bytes).unwrap(), *header);
        }
    }
    let size = FileContent::size(&backing).unwrap();
    assert_eq!(size, (bytes.len() as u64).saturating_sub(HEADER_LEN));
    let mut model = content.read(&backing, 0, size as usize).unwrap();
    assert_eq!(model.len() as u64, size);

    let mut u = Unstructured::new(rest);
    for _ in 0..16 {
        let Ok(op) = Op::take(&mut u) else {
            break;
        };
        match op {
            Op::Read { offset, len } => {
                check_read(&content, &backing, &model, offset, usize::from(len))
            }
            Op::ReadNear { offset, len } => {
                check_read(&content, &backing, &model, scaled(offset), usize::from(len))
            }
            Op::Write { offset, data } => {
                let offset = scaled(offset);
                content.write(&key, &backing, offset, &data).expect("write");
                if !data.is_empty() {
                    let end = offset as usize + data.len();
                    if model.len() < end {
                        model.resize(end, 0);
                    }
                    model[offset as usize..end].copy_from_slice(&data);
                }
                apply_hole_rule(&content, &key, &mut model);
                check_all(&content, &backing, &model);
            }
            Op::Truncate { size } => {
                let size = scaled(size);
                content.truncate(&key, &backing, size).expect("truncate");
                model.resize(size as usize, 0);
                apply_hole_rule(&content, &key, &mut model);
                check_all(&content, &backing, &model);
            }
            Op::Reload => {
                content = FileContent::load(&backing, &key).expect("reload");
                check_all(&content, &backing, &model);
            }
        }
    }
});
