//! Throughput of one 4096-byte sector: `veilfs::crypto::xts::Xts` against the `xts-mode` crate
//! (same function, one AES block at a time), encrypt and decrypt, plus a 4096+15-byte sector
//! (the last sector of a file, with ciphertext stealing), and, as the ceiling, bare AES-256 over
//! 256 blocks through `aes`'s multi-block call (no tweaks at all).
//!
//! Run: `cargo bench --bench xts` (add `-- --quick` for a short run). Compare with
//! `openssl speed -evp aes-256-xts -bytes 4096 -seconds 2`.

use std::hint::black_box;

use aes::cipher::{Array, BlockCipherEncrypt, KeyInit};
use aes::{Aes256, Block};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use veilfs::crypto::xts::Xts;
use xts_mode::{get_tweak_default, Xts128};

const SECTOR: usize = 4096;

fn key() -> [u8; 64] {
    std::array::from_fn(|i| (i as u8).wrapping_mul(151).wrapping_add(7))
}

fn xts_mode_cipher(key: &[u8; 64]) -> Xts128<Aes256> {
    let k1 = Array::try_from(&key[..32]).expect("32 bytes");
    let k2 = Array::try_from(&key[32..]).expect("32 bytes");
    Xts128::new(Aes256::new(&k1), Aes256::new(&k2))
}

fn bench_xts(c: &mut Criterion) {
    let key = key();
    let ours = Xts::new(&key);
    let theirs = xts_mode_cipher(&key);

    for len in [SECTOR, SECTOR + 15] {
        let mut group = c.benchmark_group(format!("xts-{len}"));
        group.throughput(Throughput::Bytes(len as u64));
        let mut buf = vec![0x5au8; len];

        group.bench_function("veilfs/encrypt", |b| {
            b.iter(|| ours.encrypt_sector(black_box(7), black_box(&mut buf[..])))
        });
        group.bench_function("veilfs/decrypt", |b| {
            b.iter(|| ours.decrypt_sector(black_box(7), black_box(&mut buf[..])))
        });
        if len == SECTOR {
            let bare = Aes256::new(&Array::try_from(&key[..32]).expect("32 bytes"));
            let mut blocks = vec![Block::default(); SECTOR / 16];
            group.bench_function("aes-only/encrypt_blocks", |b| {
                b.iter(|| bare.encrypt_blocks(black_box(&mut blocks[..])))
            });
            group.bench_function("xts-mode/encrypt", |b| {
                b.iter(|| theirs.encrypt_sector(black_box(&mut buf[..]), get_tweak_default(7)))
            });
            group.bench_function("xts-mode/decrypt", |b| {
                b.iter(|| theirs.decrypt_sector(black_box(&mut buf[..]), get_tweak_default(7)))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench_xts);
criterion_main!(benches);
