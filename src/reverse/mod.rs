//! Reverse mode (format.md, "Reverse mode"; issue 17): a read-only view of a plaintext directory
//! as the backing directory of a format 2 vault holding its tree, computed on the fly, for
//! backups that hold only ciphertext.
//!
//! [`View`] holds what every part needs: the handle of the plaintext root (PLAINDIR), the keys,
//! and the config the view shows as `veilfs.conf`. [`tree`] lists view directories and finds the
//! plaintext entry behind a view name, [`content`] encrypts a file's contents at any offset,
//! [`derive`](mod@derive) makes the deterministic choices a forward writer makes at random, [`exclude`]
//! leaves out what the user excluded, and [`fuse`] serves it to the kernel. Nothing here writes
//! to PLAINDIR, and every step below it is one name opened relative to a directory handle,
//! never following a symlink ([`crate::backing`]).

pub mod content;
pub mod derive;
pub mod exclude;
pub mod fuse;
pub mod tree;

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::sync::Mutex;

use nix::fcntl::OFlag;

use crate::backing::{Dir, Stat};
use crate::config::{Features, MAX_CONFIG_BYTES};
use crate::crypto::keys::{ContentKey, DirIvKey, ReverseKey, VaultKeys};
use crate::crypto::names::{DirIv, NameCipher};
use derive::Mtime;
use exclude::Exclusions;

/// Where `veilfs init --reverse` keeps the config in PLAINDIR when no `--config` is given. It is
/// never part of the view (the view shows its bytes as `veilfs.conf` instead).
pub const REVERSE_CONFIG_NAME: &str = ".veilfs.reverse.conf";

/// The reverse config as it was read when the view was made: its bytes are the view's
/// `veilfs.conf`, its mtime that of every entry the view makes up, and its inode is hidden from
/// the view wherever it is in PLAINDIR.
#[derive(Debug)]
pub struct ConfigFile {
    pub bytes: Vec<u8>,
    pub stat: Stat,
}

impl ConfigFile {
    /// Reads the reverse config `name` in `dir` (which may be PLAINDIR: without touching its
    /// access time): a regular file of at most [`MAX_CONFIG_BYTES`], never a symlink.
    pub fn read(dir: &Dir, name: &OsStr) -> io::Result<ConfigFile> {
        let (file, stat) = open_plain_file(dir, name)?;
        if stat.st_size as u64 > MAX_CONFIG_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("larger than {MAX_CONFIG_BYTES} bytes: not a veilfs config"),
            ));
        }
        let mut bytes = Vec::new();
        file.take(MAX_CONFIG_BYTES).read_to_end(&mut bytes)?;
        Ok(ConfigFile { bytes, stat })
    }
}

/// One version of a plaintext file: what a file ID and a "changed while read" check compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Version {
    pub size: u64,
    pub mtime: Mtime,
    pub ctime: (i64, i64),
}

impl Version {
    // The stat fields' integer types differ between Linux and macOS.
    #[allow(clippy::unnecessary_cast)]
    pub fn of(stat: &Stat) -> Self {
        Version {
            size: stat.st_size.max(0) as u64,
            mtime: Mtime {
                secs: stat.st_mtime as i64,
                nanos: stat.st_mtime_nsec.clamp(0, 999_999_999) as u32,
            },
            ctime: (stat.st_ctime as i64, stat.st_ctime_nsec as i64),
        }
    }
}

/// A plaintext inode: device and inode number.
pub type InodeKey = (u64, u64);

// The stat fields' integer types differ between Linux and macOS.
#[allow(clippy::unnecessary_cast)]
pub fn inode_key(stat: &Stat) -> InodeKey {
    (stat.st_dev as u64, stat.st_ino as u64)
}

/// The reverse view of one plaintext directory.
#[derive(Debug)]
pub struct View {
    root: Dir,
    root_stat: Stat,
    names: NameCipher,
    diriv_key: DirIvKey,
    content_key: ContentKey,
    reverse_key: ReverseKey,
    longname_max: usize,
    config: ConfigFile,
    exclusions: Exclusions,
    /// Per plaintext directory, the entries whose encrypted names are long, by their hashed
    /// view name, and the directory's version they were listed at.
    long_names: Mutex<HashMap<InodeKey, (Version, tree::LongNames)>>,
    /// SHA-256 of hard-linked files' contents (their file ID covers it), by inode and version.
    hashes: Mutex<HashMap<InodeKey, (Version, [u8; 32])>>,
}

impl View {
    /// The view of PLAINDIR (`root`, opened with [`Dir::open_root`]) with the keys of a format
    /// 2 vault (the reverse key included: [`crate::crypto::keys::MasterKey::reverse_key`]) and
    /// its features, showing `config_file` as its `veilfs.conf`.
    pub fn new(
        root: Dir,
        keys: &VaultKeys,
        reverse_key: ReverseKey,
        features: &Features,
        config_file: ConfigFile,
        exclusions: Exclusions,
    ) -> io::Result<Self> {
        let root_stat = root.stat_self()?;
        Ok(View {
            root,
            root_stat,
            names: NameCipher::new(keys.name.clone(), features.name_encoding),
            diriv_key: keys.diriv.clone(),
            content_key: keys.content.clone(),
            reverse_key,
            longname_max: features.longname_max,
            config: config_file,
            exclusions,
            long_names: Mutex::default(),
            hashes: Mutex::default(),
        })
    }

    /// The handle of PLAINDIR.
    pub fn root(&self) -> &Dir {
        &self.root
    }

    /// The plaintext directory at `path` (names from PLAINDIR), opened without following a
    /// symlink anywhere on the way.
    pub fn open_dir(&self, path: &[OsString]) -> io::Result<Dir> {
        self.root.walk(path)
    }

    pub fn root_iv(&self) -> DirIv {
        DirIv::root(&self.diriv_key)
    }

    /// The IV of directory `name` in the directory with IV `parent`.
    pub fn dir_iv(&self, parent: &DirIv, name: &OsStr) -> DirIv {
        DirIv::derive(&self.diriv_key, parent, name.as_bytes())
    }

    /// The config the view shows as `veilfs.conf`.
    pub fn config(&self) -> &ConfigFile {
        &self.config
    }

    /// `fstat` of PLAINDIR as it was when the view was made: the owner of the entries the view
    /// makes up.
    pub fn root_stat(&self) -> &Stat {
        &self.root_stat
    }
}

/// A plaintext path (names from PLAINDIR) as the bytes the derivations take: joined by `/`.
pub fn path_bytes(path: &[OsString]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, name) in path.iter().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(name.as_bytes());
    }
    out
}

/// A plaintext path for messages.
pub fn shown_path(path: &[OsString]) -> std::path::PathBuf {
    path.iter().collect()
}

/// Runs `open` with `O_NOATIME` added to `flags`, and again without it when the kernel refuses
/// it (EPERM: only the owner of a file, or root, may ask for it), so that reading PLAINDIR
/// leaves its access times as they were wherever it is allowed to.
#[cfg(target_os = "linux")]
fn without_atime<T>(flags: OFlag, open: impl Fn(OFlag) -> io::Result<T>) -> io::Result<T> {
    match open(flags | OFlag::O_NOATIME) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => open(flags),
        result => result,
    }
}

/// macOS has no `O_NOATIME`: reading updates access times as the volume's mount options say.
#[cfg(not(target_os = "linux"))]
fn without_atime<T>(flags: OFlag, open: impl Fn(OFlag) -> io::Result<T>) -> io::Result<T> {
    open(flags)
}

/// Opens regular file `name` in `dir` for reading, without touching its access time.
fn open_plain_file(dir: &Dir, name: &OsStr) -> io::Result<(File, Stat)> {
    without_atime(OFlag::O_RDONLY, |flags| dir.open_file_stat(name, flags, 0))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::crypto::keys::MasterKey;

    /// The view of `dir` under fixed keys (master key 9..., vault ID 3...), its config `dir`
    /// itself (so no entry is hidden as the config).
    pub(crate) fn view(dir: &std::path::Path, exclusions: Exclusions) -> View {
        let keys = MasterKey::from_bytes([9; 64]).derive_v2(&[3; 16]);
        let config = std::fs::File::open(dir).unwrap();
        View::new(
            Dir::open_root(dir).unwrap(),
            &keys,
            ReverseKey::from_bytes([5; 32]),
            &Features::default(),
            ConfigFile {
                bytes: b"{}".to_vec(),
                stat: nix::sys::stat::fstat(&config).unwrap(),
            },
            exclusions,
        )
        .unwrap()
    }
}
