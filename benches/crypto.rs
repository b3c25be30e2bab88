//! Micro-benchmarks of the crypto on veilfs's hot paths, one core:
//!
//! - `names`: AES-256-SIV name encryption and decryption through `NameCipher` (a 20-byte and a
//!   200-byte name; the encoded form is base64url), the cost paid per lookup, create and readdir
//!   entry;
//! - `file-key`: per-file key derivation (`FileCipher::new`: two HKDF-SHA256 expansions and an
//!   XTS key schedule), paid once per opened file;
//! - `sector-4096`: one 4096-byte sector through `FileCipher::encrypt_sector`/`decrypt_sector`
//!   (the raw `Xts` against the `xts-mode` crate is in `benches/xts.rs`);
//! - `file-128k`: the whole read path of `layout::file::FileContent` for a 128 KiB read (the
//!   kernel's readahead size) of a 1 MiB file in a temporary directory, page-cached: fstat for
//!   the size, pread, decrypt, copy out. The matching 128 KiB overwrite is measured too.
//!
//! Run: `cargo bench --bench crypto` (add `-- --quick` for a shorter run).

use std::fs::OpenOptions;
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use veilfs::crypto::content::{FileCipher, FileHeader, Sector, BLOCK_SIZE};
use veilfs::crypto::keys::{ContentKey, NameKey};
use veilfs::crypto::names::{DirIv, NameCipher, NameEncoding};
use veilfs::layout::file::FileContent;

const SECTOR: usize = BLOCK_SIZE as usize;
const READ_LEN: usize = 128 * 1024;
const FILE_LEN: usize = 1024 * 1024;

fn bytes<const N: usize>(seed: u8) -> [u8; N] {
    std::array::from_fn(|i| (i as u8).wrapping_mul(151).wrapping_add(seed))
}

fn bench_names(c: &mut Criterion) {
    let cipher = NameCipher::new(NameKey::from_bytes(bytes(1)), NameEncoding::Base64Url);
    let iv = DirIv(bytes(2));
    let mut group = c.benchmark_group("names");
    for len in [20usize, 200] {
        // A printable name of `len` bytes, like a long file name would be.
        let name: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
        let encoded = cipher.encrypt_name(&iv, &name).expect("valid name");
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(BenchmarkId::new("encrypt", len), &name, |b, name| {
            b.iter(|| {
                cipher
                    .encrypt_name(black_box(&iv), black_box(name))
                    .expect("valid name")
            })
        });
        group.bench_with_input(BenchmarkId::new("decrypt", len), &encoded, |b, encoded| {
            b.iter(|| {
                cipher
                    .decrypt_name(black_box(&iv), black_box(encoded))
                    .expect("own name")
            })
        });
    }
    group.finish();
}

fn bench_file_key(c: &mut Criterion) {
    let key = ContentKey::from_bytes(bytes(3));
    let header = FileHeader { file_id: bytes(4) };
    let mut group = c.benchmark_group("file-key");
    group.throughput(Throughput::Elements(1));
    group.bench_function("FileCipher::new", |b| {
        b.iter(|| FileCipher::new(black_box(&key), black_box(header)))
    });
    group.finish();
}

fn bench_sector(c: &mut Criterion) {
    let cipher = FileCipher::new(
        &ContentKey::from_bytes(bytes(3)),
        FileHeader { file_id: bytes(4) },
    );
    let sector = Sector {
        start: 7 * BLOCK_SIZE,
        len: BLOCK_SIZE,
    };
    // Never all zero, so decrypt_sector does decrypt (an all-zero sector is a hole).
    let mut buf = vec![0x5au8; SECTOR];
    let mut group = c.benchmark_group("sector-4096");
    group.throughput(Throughput::Bytes(SECTOR as u64));
    group.bench_function("encrypt_sector", |b| {
        b.iter(|| cipher.encrypt_sector(black_box(sector), black_box(&mut buf[..])))
    });
    group.bench_function("decrypt_sector", |b| {
        b.iter(|| cipher.decrypt_sector(black_box(sector), black_box(&mut buf[..])))
    });
    group.finish();
}

fn bench_file(c: &mut Criterion) {
    let key = ContentKey::from_bytes(bytes(3));
    let dir = tempfile::tempdir().expect("tempdir");
    let backing = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(dir.path().join("file"))
        .expect("create backing file");
    let data: Vec<u8> = (0..FILE_LEN).map(|i| (i * 7 + i / 4096) as u8).collect();
    let mut content = FileContent::default();
    content.write(&key, &backing, 0, &data).expect("write");
    // What an open file holds: the header's cipher, loaded once.
    let loaded = FileContent::load(&backing, &key).expect("load");
    assert_eq!(
        loaded.read(&backing, 0, READ_LEN).expect("read"),
        data[..READ_LEN]
    );

    let mut group = c.benchmark_group("file-128k");
    group.throughput(Throughput::Bytes(READ_LEN as u64));
    group.bench_function("read", |b| {
        b.iter(|| {
            loaded
                .read(black_box(&backing), black_box(256 * 1024), READ_LEN)
                .expect("read")
        })
    });
    let chunk = &data[..READ_LEN];
    group.bench_function("write", |b| {
        b.iter(|| {
            content
                .write(&key, black_box(&backing), black_box(256 * 1024), chunk)
                .expect("write")
        })
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_names, bench_file_key, bench_sector, bench_file
}
criterion_main!(benches);
