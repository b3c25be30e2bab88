//! The FUSE adapter: serves a [`Vault`] to the kernel. [`VeilFs`] holds the state shared by
//! every request; each operation is a method taking plain values (a `Caller`, inode numbers,
//! names) in the file of its concern, so that a test can drive it without /dev/fuse; `fuse`
//! alone speaks fuser, translating requests into those calls and results into replies. Names go
//! through [`Vault`], contents through [`FileContent`], platform calls through [`sys`].
//!
//! Kernel cache times are [`TTL`] by default (one second, like gocryptfs): short enough that
//! changes a sync tool makes underneath show up promptly, long enough to spare most repeated
//! lookups. `MountOptions::cache_ttl` changes it for one mount.

mod attr;
mod conflicts;
mod dir;
mod dir_ivs;
#[allow(unsafe_code)]
mod ffi;
mod fuse;
mod handles;
mod inodes;
mod listing;
mod metadata;
mod mount;
mod nodes;
mod rename;
pub mod sys;
#[cfg(test)]
mod tests;
pub mod transport;
#[cfg(target_os = "linux")]
mod uring;
mod xattr;

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, Weak};
use std::time::Duration;

use fuser::FopenFlags;

use crate::error::{Error, Result};
use crate::layout::file::FileContent;
use crate::vault::Vault;
use conflicts::DirAliases;
use handles::OpenFile;
use inodes::InodeTable;
use listing::DirListing;
pub use mount::{mount, mount_filesystem, session_config, MountOptions, Mounted};

/// Kernel entry and attribute cache time, unless the mount asks for another.
pub const TTL: Duration = Duration::from_secs(1);
/// Undecodable backing entries are logged once each, up to this many.
const MAX_WARNED: usize = 10_000;

/// The filesystem served by [`mount()`].
pub struct VeilFs {
    vault: Vault,
    inodes: Mutex<InodeTable>,
    files: Mutex<HashMap<u64, Arc<OpenFile>>>,
    dirs: Mutex<HashMap<u64, Arc<DirListing>>>,
    /// The decrypting state of each open inode, shared by all its handles: its lock makes
    /// read-modify-write of a sector atomic with respect to every other writer.
    contents: Mutex<HashMap<u64, Weak<RwLock<FileContent>>>>,
    next_fh: AtomicU64,
    warned: Mutex<HashSet<PathBuf>>,
    /// Running as root: new entries are given to the calling user, as a local filesystem would.
    chown_new: bool,
    /// Sync-conflict copies and re-cased names are put right, and renames a crash interrupted
    /// are finished: see [`VeilFs::tidy_backing`].
    tidy: bool,
    /// How open files are served: see `init` in `fuse.rs`.
    open_flags: FopenFlags,
    /// Kernel cache time of entries and attributes: see [`MountOptions::cache_ttl`].
    ttl: Duration,
    aliases: Mutex<HashMap<u64, DirAliases>>,
    /// Requests served (all but the kernel's forgets): `--idle` watches it.
    requests: Arc<AtomicU64>,
    /// Held shared by every request and exclusively by a rename, which may re-encrypt a whole
    /// subtree: no request sees a subtree half re-encrypted.
    tree: RwLock<()>,
    /// Held while a move a crash interrupted is finished, so that two requests do not both.
    finishing: Mutex<()>,
    /// Pins ran short once (see [`VeilFs::pin_entry`]): said once in the log.
    unpinned_warned: AtomicBool,
    /// Whether INIT asks for FUSE over io_uring, and what the kernel said.
    transport: transport::Negotiated,
}

pub(crate) fn errno(code: i32) -> Error {
    Error::Io(io::Error::from_raw_os_error(code))
}
impl VeilFs {
    pub fn new(vault: Vault) -> io::Result<Self> {
        let root_ino = vault.root().stat_self()?.st_ino;
        let inodes = InodeTable::new(root_ino, vault.root_iv(), nodes::pin_budget());
        Ok(Self {
            vault,
            inodes: Mutex::new(inodes),
            files: Mutex::default(),
            dirs: Mutex::default(),
            contents: Mutex::default(),
            next_fh: AtomicU64::new(1),
            warned: Mutex::default(),
            chown_new: nix::unistd::geteuid().is_root(),
            tidy: false,
            open_flags: FopenFlags::empty(),
            ttl: TTL,
            aliases: Mutex::default(),
            requests: Arc::default(),
            tree: RwLock::default(),
            finishing: Mutex::default(),
            unpinned_warned: AtomicBool::new(false),
            transport: transport::Negotiated::default(),
        })
    }

    /// The count of requests served, shared with the caller (for `--idle`).
    pub fn request_counter(&self) -> Arc<AtomicU64> {
        self.requests.clone()
    }

    /// Counts a request; the guard keeps renames out while it runs ([`Self::tree`]).
    fn count_request(&self) -> RwLockReadGuard<'_, ()> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.tree.read().unwrap()
    }

    /// Space on the backing file system, which is the vault's.
    fn do_statfs(&self) -> Result<nix::sys::statvfs::Statvfs> {
        Ok(self.vault.root().statvfs()?)
    }

    /// Logs `error` about backing entry `path`, the first time only.
    fn warn_once(&self, path: PathBuf, error: &Error) {
        let mut warned = self.warned.lock().unwrap();
        if warned.len() < MAX_WARNED && warned.insert(path.clone()) {
            tracing::warn!("backing entry {}: {error}", path.display());
        }
    }
}

/// Who asks: the parts of a FUSE request the operations need, so that they can be driven
/// without one.
#[derive(Clone, Copy, Debug)]
struct Caller {
    uid: u32,
    gid: u32,
}
