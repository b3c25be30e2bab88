//! The committed vault `tests/fixtures/vault-v1/`, written by veilfs 0.1.0 in format v1: every
//! later version must still read it, byte for byte the same plaintext tree.
//!
//! `read_the_v1_fixture` unlocks a copy with its password and walks it through the vault core.
//! `make_fixture` wrote it (ignored; it refuses to overwrite): the fixture is random (salt,
//! file IDs, symlink nonce) and is never regenerated once committed, or it would test nothing.
//! To create it anew: `rm -r tests/fixtures/vault-v1 && cargo test --test fixture_v1 -- --ignored`.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;

use veilfs::backing::{Dir, FileKind};
use veilfs::config::{Config, ConfigV1, Features, KdfParams, Secret};
use veilfs::crypto::content::HEADER_LEN;
use veilfs::crypto::keys::MasterKey;
use veilfs::crypto::names::{DirIv, NameEncoding};
use veilfs::layout::diriv;
use veilfs::layout::file::FileContent;
use veilfs::vault::Vault;
use veilfs::Error;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/vault-v1");
const PASSWORD: &str = "veilfs fixture";

#[derive(Clone, Debug, PartialEq, Eq)]
enum Node {
    File(Vec<u8>),
    Dir,
    Symlink(Vec<u8>),
}

/// A 200-byte file name: 288 bytes encoded, so a long name under the fixture's threshold.
fn long_name() -> String {
    let name: String = (0..196)
        .map(|i| (b'a' + (i % 26) as u8) as char)
        .collect::<String>()
        + ".txt";
    assert_eq!(name.len(), 200);
    name
}

/// Byte `i` of block `n` is `(i + n) mod 251`, as in format.md's vectors.
fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|o| ((o % 4096 + o / 4096) % 251) as u8)
        .collect()
}

/// 20000 bytes: data in 0..100 and 16384..20000, a hole (sectors 1 to 3) in between.
fn sparse() -> Vec<u8> {
    let mut data = vec![0; 20000];
    data[..100].copy_from_slice(&pattern(100));
    data[16384..].copy_from_slice(&pattern(20000)[16384..]);
    data
}

/// The plaintext tree of the fixture, by path.
fn expected() -> BTreeMap<String, Node> {
    BTreeMap::from([
        ("hello.txt".into(), Node::File(b"Hello, veilfs!\n".to_vec())),
        ("ten.bin".into(), Node::File(b"0123456789".to_vec())),
        ("absorbed-4101.bin".into(), Node::File(pattern(4101))),
        ("sparse.bin".into(), Node::File(sparse())),
        ("empty".into(), Node::File(Vec::new())),
        ("docs".into(), Node::Dir),
        (
            "docs/notes.md".into(),
            Node::File(b"# Notes\n\nInside a subdirectory.\n".to_vec()),
        ),
        (
            long_name(),
            Node::File(b"a file with a long name\n".to_vec()),
        ),
        ("link".into(), Node::Symlink(b"hello.txt".to_vec())),
    ])
}

/// The fixture's features (the defaults when it was made).
fn fixture_features() -> Features {
    Features {
        name_encoding: NameEncoding::Base64Url,
        longname_max: 220,
    }
}

fn smallest_kdf() -> KdfParams {
    KdfParams {
        memory_kib: KdfParams::MEMORY_KIB_MIN,
        iterations: KdfParams::ITERATIONS_MIN,
        parallelism: KdfParams::PARALLELISM_MIN,
    }
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            copy_tree(&src, &dst);
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&src).unwrap(), &dst).unwrap();
        } else {
            fs::copy(&src, &dst).unwrap();
        }
    }
}

/// Walks backing directory `dir` (IV `iv`), adding its plaintext entries to `tree` and the
/// backing names veilfs reserves to `reserved`, both under `prefix` (the plaintext path).
fn walk(
    vault: &Vault,
    dir: &Dir,
    iv: &DirIv,
    prefix: &str,
    tree: &mut BTreeMap<String, Node>,
    reserved: &mut Vec<String>,
) {
    for entry in dir.entries().unwrap() {
        let backing = entry.name.into_string().expect("backing names are ASCII");
        let Some(name) = vault.decrypt_entry(dir, iv, &backing).unwrap() else {
            reserved.push(format!("{prefix}{backing}"));
            continue;
        };
        let name = format!("{prefix}{}", String::from_utf8(name).unwrap());
        let meta = dir.stat(&backing).unwrap();
        let node = match FileKind::of(&meta) {
            FileKind::Dir => {
                let child = dir.open_dir(&backing).unwrap();
                let child_iv = diriv::read(&child).unwrap();
                walk(
                    vault,
                    &child,
                    &child_iv,
                    &format!("{name}/"),
                    tree,
                    reserved,
                );
                Node::Dir
            }
            FileKind::Symlink => {
                let target = dir.readlink(&backing).unwrap();
                Node::Symlink(
                    vault
                        .names()
                        .decrypt_symlink(target.as_encoded_bytes())
                        .unwrap(),
                )
            }
            _ => {
                let file = dir.open_file(&backing, OFlag::O_RDONLY, 0).unwrap();
                let size = FileContent::size(&file).unwrap();
                assert_eq!(
                    meta.st_size as u64,
                    if size == 0 { 0 } else { size + HEADER_LEN },
                    "{name}"
                );
                let content = FileContent::load(&file, vault.content_key()).unwrap();
                Node::File(content.read(&file, 0, size as usize + 1).unwrap())
            }
        };
        assert!(tree.insert(name, node).is_none());
    }
}

#[test]
fn read_the_v1_fixture() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("vault");
    copy_tree(Path::new(FIXTURE), &root);

    let config = Config::load(&root).unwrap();
    let Config::V1(v1) = &config else {
        panic!("the fixture is of format 1")
    };
    assert_eq!(*v1.kdf(), smallest_kdf());
    assert_eq!(*config.features(), fixture_features());
    assert!(matches!(
        config.unlock(&Secret::Password(b"veilfs fixturE"), None),
        Err(Error::WrongPassword)
    ));
    let unlocked = config
        .unlock(&Secret::Password(PASSWORD.as_bytes()), None)
        .unwrap();
    let vault = Vault::open(&root, unlocked.keys(), config.features()).unwrap();
    vault.check_binding().unwrap();

    let root_iv = diriv::read(vault.root()).unwrap();
    assert_eq!(root_iv, vault.root_iv(), "the root IV is derived");
    let mut tree = BTreeMap::new();
    let mut reserved = Vec::new();
    walk(&vault, vault.root(), &root_iv, "", &mut tree, &mut reserved);

    let expected = expected();
    assert_eq!(
        tree.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (path, node) in &expected {
        assert!(
            tree[path] == *node,
            "{path} differs from the expected plaintext"
        );
    }

    // The names veilfs reserves: the config, one IV per directory, one sidecar per long name.
    let docs = vault.backing_name(&root_iv, b"docs").unwrap();
    let long = vault
        .backing_name(&root_iv, long_name().as_bytes())
        .unwrap();
    let mut want = vec![
        "veilfs.conf".to_owned(),
        "veilfs.diriv".to_owned(),
        "docs/veilfs.diriv".to_owned(),
        long.sidecar().expect("a long name"),
    ];
    want.sort();
    reserved.sort();
    assert_eq!(reserved, want);

    // Directory IVs are derived from the parent's IV and the name.
    let docs_iv = diriv::read(&vault.root().open_dir(docs.entry()).unwrap()).unwrap();
    assert_eq!(docs_iv, vault.new_dir_iv(&root_iv, b"docs"));
    assert_eq!(vault.encrypt_path(Path::new("docs/notes.md")).unwrap(), {
        let notes = vault.backing_name(&docs_iv, b"notes.md").unwrap();
        root.join(docs.entry()).join(notes.entry())
    });

    // The hole of sparse.bin is zeros on disk, as the writer left it.
    let sparse = fs::read(vault.encrypt_path(Path::new("sparse.bin")).unwrap()).unwrap();
    let hole = &sparse[(HEADER_LEN + 4096) as usize..(HEADER_LEN + 16384) as usize];
    assert!(hole.iter().all(|&b| b == 0));
}

/// Issue 12: `veilfs upgrade` on a copy of the fixture, then a mount with the new password shows
/// exactly the fixture's plaintext tree (read through the mount, not the vault core), and the
/// upgraded vault is format 2 and clean for fsck.
#[test]
fn upgrading_the_v1_fixture_keeps_every_file() {
    common::require_fuse();
    let tmp = tempfile::tempdir().unwrap();
    let root = fs::canonicalize(tmp.path()).unwrap();
    let (vault, mnt) = (root.join("vault"), root.join("mnt"));
    copy_tree(Path::new(FIXTURE), &vault);
    fs::create_dir(&mnt).unwrap();
    let (old, new) = (root.join("old-pass"), root.join("new-pass"));
    fs::write(&old, format!("{PASSWORD}\n")).unwrap();
    fs::write(&new, "the upgraded vault's password\n").unwrap();

    let upgrade = common::run(
        common::veilfs()
            .arg("upgrade")
            .arg("--passfile")
            .arg(&old)
            .arg("--new-passfile")
            .arg(&new)
            .arg(&vault),
    );
    common::assert_success(&upgrade, "veilfs upgrade");
    assert!(matches!(Config::load(&vault).unwrap(), Config::V2(_)));
    let fsck = common::run(
        common::veilfs()
            .arg("fsck")
            .arg("--passfile")
            .arg(&new)
            .arg(&vault),
    );
    common::assert_success(&fsck, "veilfs fsck");

    let mount = common::run(
        common::veilfs()
            .arg("mount")
            .arg("--passfile")
            .arg(&new)
            .arg(&vault)
            .arg(&mnt),
    );
    common::assert_success(&mount, "veilfs mount");
    let mut tree = BTreeMap::new();
    let mut stack = vec![mnt.clone()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path
                .strip_prefix(&mnt)
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned();
            let meta = fs::symlink_metadata(&path).unwrap();
            let node = if meta.is_dir() {
                stack.push(path.clone());
                Node::Dir
            } else if meta.file_type().is_symlink() {
                Node::Symlink(
                    fs::read_link(&path)
                        .unwrap()
                        .into_os_string()
                        .into_encoded_bytes(),
                )
            } else {
                Node::File(fs::read(&path).unwrap())
            };
            tree.insert(name, node);
        }
    }
    common::unmount_all(&mnt);
    assert!(
        tree == expected(),
        "the upgraded fixture's tree differs from the fixture's"
    );
}

/// Writes `tests/fixtures/vault-v1/` through the vault core (there is no mount in this test).
#[test]
#[ignore = "writes the committed fixture; run explicitly, once"]
fn make_fixture() {
    let root = PathBuf::from(FIXTURE);
    assert!(
        !root.exists(),
        "{FIXTURE} exists: the fixture is never regenerated once committed"
    );
    fs::create_dir_all(&root).unwrap();

    let master = MasterKey::generate();
    let features = fixture_features();
    Config::V1(ConfigV1::create(
        &master,
        PASSWORD.as_bytes(),
        smallest_kdf(),
        features.clone(),
    ))
    .save(&root)
    .unwrap();
    let vault = Vault::open(&root, &master.derive(), &features).unwrap();
    vault.initialize_root().unwrap();
    let root_iv = vault.root_iv();

    let write_file = |dir: &Dir, iv: &DirIv, name: &str, chunks: &[(u64, &[u8])]| {
        let backing = vault.backing_name(iv, name.as_bytes()).unwrap();
        backing.write_sidecar(dir).unwrap();
        let file = dir
            .open_file(
                backing.entry(),
                OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL,
                0o644,
            )
            .unwrap();
        let mut content = FileContent::load(&file, vault.content_key()).unwrap();
        for &(offset, data) in chunks {
            content
                .write(vault.content_key(), &file, offset, data)
                .unwrap();
        }
    };

    let docs_iv = vault.new_dir_iv(&root_iv, b"docs");
    // BTreeMap order puts "docs" before "docs/notes.md", so the directory exists in time.
    for (path, node) in &expected() {
        let (dir, iv, name) = match path.split_once('/') {
            Some(("docs", name)) => (
                vault
                    .root()
                    .open_dir(vault.backing_name(&root_iv, b"docs").unwrap().entry())
                    .unwrap(),
                docs_iv,
                name,
            ),
            Some(_) => unreachable!(),
            None => (vault.root().try_clone().unwrap(), root_iv, path.as_str()),
        };
        match node {
            Node::Dir => {
                vault.create_dir(&dir, &iv, name.as_bytes(), 0o755).unwrap();
            }
            Node::Symlink(target) => {
                let backing = vault.backing_name(&iv, name.as_bytes()).unwrap();
                backing.write_sidecar(&dir).unwrap();
                let encrypted = vault.names().encrypt_symlink(target).unwrap();
                dir.symlink(encrypted, backing.entry()).unwrap();
            }
            Node::File(data) if name == "sparse.bin" => {
                write_file(
                    &dir,
                    &iv,
                    name,
                    &[(0, &data[..100]), (16384, &data[16384..])],
                );
            }
            Node::File(data) => write_file(&dir, &iv, name, &[(0, data)]),
        }
    }
}
