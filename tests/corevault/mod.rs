//! Vaults made through the core, without a mount: for tests of fsck, path translation and
//! conflict copies, where a mount would only cost time. [`CoreVault::new`] also writes a config
//! (password [`PASSWORD`], cheapest key derivation), so the CLI can open the vault too.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use veilfs::backing::Dir;
use veilfs::config::{Config, ConfigV1, ConfigV2, Features, KdfParams, Secret};
use veilfs::crypto::keys::MasterKey;
use veilfs::crypto::names::{DirIv, NameEncoding};
use veilfs::layout::diriv;
use veilfs::vault::{IvPolicy, Vault};

pub const PASSWORD: &str = "correct horse battery staple";

pub struct CoreVault {
    pub dir: tempfile::TempDir,
    /// The backing directory.
    pub root: PathBuf,
    pub vault: Vault,
}

impl CoreVault {
    pub fn new(encoding: NameEncoding) -> CoreVault {
        Self::with_iv_policy(encoding, IvPolicy::Stored)
    }

    /// A vault whose directory IVs come from `policy`, with a config of the format that goes
    /// with it: format 1 for [`IvPolicy::Stored`], format 2 for [`IvPolicy::Derived`].
    pub fn with_iv_policy(encoding: NameEncoding, policy: IvPolicy) -> CoreVault {
        let dir = tempfile::Builder::new()
            .prefix("veilfs-core-")
            .tempdir()
            .unwrap();
        let root = fs::canonicalize(dir.path()).unwrap().join("cipher");
        fs::create_dir(&root).unwrap();
        let master = MasterKey::generate();
        let features = Features {
            name_encoding: encoding,
            ..Features::default()
        };
        let kdf = KdfParams {
            memory_kib: 8,
            iterations: 1,
            parallelism: 1,
        };
        // The config's format goes with the IV policy, as for a vault the CLI opens.
        let (keys, config) = match policy {
            IvPolicy::Stored => (
                master.derive(),
                Config::V1(ConfigV1::create(
                    &master,
                    PASSWORD.as_bytes(),
                    kdf,
                    features.clone(),
                )),
            ),
            IvPolicy::Derived => {
                let mut config = ConfigV2::new(&master, features.clone());
                config
                    .add_slot(
                        &master,
                        "password",
                        &Secret::Password(PASSWORD.as_bytes()),
                        kdf,
                    )
                    .unwrap();
                (master.derive_v2(config.vault_id()), Config::V2(config))
            }
        };
        config.save(&root).unwrap();
        let vault = Vault::with_iv_policy(Dir::open_root(&root).unwrap(), &keys, &features, policy);
        vault.initialize_root().unwrap();
        fs::write(dir.path().join("passfile"), format!("{PASSWORD}\n")).unwrap();
        CoreVault { dir, root, vault }
    }

    pub fn passfile(&self) -> PathBuf {
        self.dir.path().join("passfile")
    }

    /// A handle of backing directory `path` (the root or a directory below it), opened from the
    /// vault's root handle.
    pub fn dir(&self, path: &Path) -> Dir {
        let relative = path.strip_prefix(&self.root).unwrap_or_else(|_| {
            panic!(
                "{} is not in the vault {}",
                path.display(),
                self.root.display()
            )
        });
        let names: Vec<&OsStr> = relative.iter().collect();
        self.vault.root().walk(&names).unwrap()
    }

    /// Backing directory and IV of the parent of `plain`, and the last component.
    pub fn parent(&self, plain: &str) -> (Dir, DirIv, Vec<u8>) {
        let path = Path::new(plain);
        let name = path.file_name().unwrap().as_bytes().to_vec();
        let (dir, iv) = self
            .vault
            .open_plain_dir(path.parent().unwrap_or(Path::new("")))
            .unwrap();
        (dir, iv, name)
    }

    /// Makes directory `plain`; returns its backing path.
    pub fn mkdir(&self, plain: &str) -> PathBuf {
        let (dir, iv, name) = self.parent(plain);
        let backing = self.vault.create_dir(&dir, &iv, &name, 0o755).unwrap();
        dir.display_path(backing.entry())
    }

    /// Makes file `plain` holding `contents`; returns its backing path.
    pub fn write(&self, plain: &str, contents: &[u8]) -> PathBuf {
        let (dir, iv, name) = self.parent(plain);
        let backing = self.vault.create_file(&dir, &iv, &name, contents).unwrap();
        dir.display_path(backing.entry())
    }

    /// Makes symlink `plain` to `target`; returns its backing path.
    pub fn symlink(&self, plain: &str, target: &str) -> PathBuf {
        let (dir, iv, name) = self.parent(plain);
        let backing = self
            .vault
            .create_symlink(&dir, &iv, &name, target.as_bytes())
            .unwrap();
        dir.display_path(backing.entry())
    }

    /// The IV of backing directory `path`.
    pub fn iv(&self, path: &Path) -> DirIv {
        diriv::read(&self.dir(path)).unwrap()
    }

    /// The backing path of `plain` (which must exist).
    pub fn backing(&self, plain: &str) -> PathBuf {
        let path = self.vault.encrypt_path(Path::new(plain)).unwrap();
        assert!(
            fs::symlink_metadata(&path).is_ok(),
            "{plain} has no backing entry {}",
            path.display()
        );
        path
    }

    /// Plaintext of file `plain`, read through the core.
    pub fn read(&self, plain: &str) -> Vec<u8> {
        read_backing(&self.vault, &self.backing(plain))
    }
}

/// Plaintext of the backing file at `path`.
pub fn read_backing(vault: &Vault, path: &Path) -> Vec<u8> {
    use veilfs::layout::file::FileContent;
    let file = fs::File::open(path).unwrap();
    let content = FileContent::load(&file, vault.content_key()).unwrap();
    content.read(&file, 0, usize::MAX >> 1).unwrap()
}

/// A long plaintext name (stored as a long name: over 134 bytes).
pub fn long_name(tag: &str) -> String {
    format!("{tag}-{}.txt", "l".repeat(160))
}

pub fn name_of(path: &Path) -> &str {
    path.file_name().and_then(OsStr::to_str).unwrap()
}

/// A [`CoreVault`] mounted with the built `veilfs` (read-only when asked); unmounted on drop.
pub struct Mounted {
    pub mnt: PathBuf,
}

impl Mounted {
    pub fn new(v: &CoreVault, read_only: bool) -> Mounted {
        let mnt = v.dir.path().join(if read_only { "mnt-ro" } else { "mnt" });
        let _ = fs::create_dir(&mnt);
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_veilfs"));
        cmd.arg("mount").arg("--passfile").arg(v.passfile());
        if read_only {
            cmd.args(["-o", "ro"]);
        }
        let out = cmd
            .arg(&v.root)
            .arg(&mnt)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "veilfs mount: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Mounted { mnt }
    }

    pub fn path(&self, plain: &str) -> PathBuf {
        self.mnt.join(plain)
    }

    /// Names in a directory of the mount, sorted.
    pub fn list(&self, plain_dir: &str) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.path(plain_dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let ok = std::process::Command::new(env!("CARGO_BIN_EXE_veilfs"))
            .arg("umount")
            .arg(&self.mnt)
            .stdin(std::process::Stdio::null())
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.mnt)
                .status();
        }
    }
}

/// Renames every backing name under `dir` (children before their directory) with `f`:
/// what a case-insensitive round trip may do to a vault.
pub fn rename_all(dir: &Path, f: &dyn Fn(&str) -> String, skip: &dyn Fn(&str) -> bool) {
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            rename_all(&path, f, skip);
        }
        if skip(&name) {
            continue;
        }
        let new = f(&name);
        if new != name {
            fs::rename(&path, dir.join(new)).unwrap();
        }
    }
}
