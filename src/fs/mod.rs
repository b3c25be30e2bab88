//! The FUSE adapter: translates kernel requests into vault-core calls. Thin by design: names go
//! through [`Vault`], contents through [`FileContent`], platform calls through [`sys`].
//!
//! Kernel cache times are [`TTL`] by default (one second, like gocryptfs): short enough that
//! changes a sync tool makes underneath show up promptly, long enough to spare most repeated
//! lookups. `MountOptions::cache_ttl` changes it for one mount.

mod attr;
mod inodes;
pub mod sys;

use std::collections::{HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, Weak};
use std::time::{Duration, SystemTime};

use fuser::{
    AccessFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation,
    INodeNo, InitFlags, KernelConfig, LockOwner, MountOption, OpenFlags, RenameFlags, ReplyAttr,
    ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyOpen,
    ReplyStatfs, ReplyWrite, ReplyXattr, Request, SessionACL, TimeOrNow, WriteFlags,
};

use nix::fcntl::OFlag;
use nix::sys::stat::SFlag;
use nix::sys::time::TimeSpec;

use crate::backing::{mode_of, Dir, Entry, FileKind, Pin, RenameMode, Stat};
use crate::crypto::content::HEADER_LEN;
use crate::crypto::names::DirIv;
use crate::crypto::records::MoveRecord;
use crate::error::{Error, Result};
use crate::layout::file::FileContent;
use crate::layout::longname::BackingName;
use crate::layout::{diriv, DIRIV_NAME, MOVE_NAME};
use crate::vault::{BackingEntry, IvPolicy, Vault};
use inodes::{InodeTable, Location, ROOT};

/// Kernel entry and attribute cache time, unless the mount asks for another.
pub const TTL: Duration = Duration::from_secs(1);
/// Largest read and write requests asked of the kernel: fewer, larger requests amortize the
/// per-request cost of FUSE.
const MAX_REQUEST: u32 = 1 << 20;
/// Undecodable backing entries are logged once each, up to this many.
const MAX_WARNED: usize = 10_000;

/// How a vault is served.
#[derive(Clone, Debug)]
pub struct MountOptions {
    pub read_only: bool,
    /// Let other users in; turns on the kernel's permission checks (`default_permissions`).
    pub allow_other: bool,
    /// Further `-o` options handed to the kernel verbatim.
    pub extra: Vec<String>,
    /// Worker threads serving requests.
    pub threads: usize,
    /// How long the kernel may trust entries, attributes and cached contents ([`TTL`] unless
    /// the user asks): changes made beside the mount show after at most this long.
    pub cache_ttl: Duration,
    /// Source shown in /proc/mounts (the backing directory).
    pub fsname: String,
}

/// Mounts `vault` at `mountpoint`; the caller runs (or spawns) the returned session.
pub fn mount(
    vault: Vault,
    mountpoint: &Path,
    options: &MountOptions,
) -> io::Result<fuser::Session<VeilFs>> {
    mount_filesystem(
        VeilFs::new(vault)?.tidy_backing(!options.read_only),
        mountpoint,
        options,
    )
}

/// [`mount`] for a [`VeilFs`] the caller made (the CLI keeps its request counter for `--idle`).
pub fn mount_filesystem(
    fs: VeilFs,
    mountpoint: &Path,
    options: &MountOptions,
) -> io::Result<fuser::Session<VeilFs>> {
    let mut config = fuser::Config::default();
    config.mount_options = vec![
        MountOption::FSName(options.fsname.clone()),
        MountOption::Subtype("veilfs".into()),
        if options.read_only {
            MountOption::RO
        } else {
            MountOption::RW
        },
    ];
    // fuser hands the subtype to fusermount3 only; as root it calls mount(2) itself, and the
    // kernel takes the subtype as an option: /proc/mounts then shows `fuse.veilfs` too.
    if nix::unistd::geteuid().is_root() {
        config
            .mount_options
            .push(MountOption::CUSTOM("subtype=veilfs".into()));
    }
    if options.allow_other {
        config.mount_options.push(MountOption::DefaultPermissions);
        config.acl = SessionACL::All;
    }
    config
        .mount_options
        .extend(options.extra.iter().map(|o| kernel_option(o)));
    config.n_threads = Some(options.threads.max(1));
    config.clone_fd = true;
    let fs = VeilFs {
        ttl: options.cache_ttl,
        ..fs
    };
    fuser::Session::new(fs, mountpoint, &config)
}

/// A `-o` option as fuser's own variant where it has one: as root, fuser turns those into mount
/// flags, while the kernel refuses unknown words in the FUSE option string.
fn kernel_option(option: &str) -> MountOption {
    match option {
        "dev" => MountOption::Dev,
        "nodev" => MountOption::NoDev,
        "suid" => MountOption::Suid,
        "nosuid" => MountOption::NoSuid,
        "exec" => MountOption::Exec,
        "noexec" => MountOption::NoExec,
        "atime" => MountOption::Atime,
        "noatime" => MountOption::NoAtime,
        "sync" => MountOption::Sync,
        "async" => MountOption::Async,
        "dirsync" => MountOption::DirSync,
        "default_permissions" => MountOption::DefaultPermissions,
        other => MountOption::CUSTOM(other.to_owned()),
    }
}

struct OpenFile {
    file: File,
    ino: u64,
    content: Arc<RwLock<FileContent>>,
}

/// Where an inode is in the backing directory: the handle of its parent and its entry name, or
/// for the root, the root's own handle and no name.
struct Located {
    dir: Dir,
    name: Option<OsString>,
    /// The backing inode the entry must still be: a sync tool may have replaced it since.
    backing_ino: u64,
}

impl Located {
    /// `lstat` of the entry; ESTALE when the name now holds another inode, so that the kernel
    /// looks the name up afresh (and finds what the sync tool put there).
    fn stat(&self) -> Result<Stat> {
        let stat = match &self.name {
            Some(name) => self.dir.stat(name)?,
            None => self.dir.stat_self()?,
        };
        self.check(&stat)?;
        Ok(stat)
    }

    fn check(&self, stat: &Stat) -> Result<()> {
        if stat.st_ino != self.backing_ino {
            return Err(errno(libc::ESTALE));
        }
        Ok(())
    }

    fn name(&self) -> Option<&OsStr> {
        self.name.as_deref()
    }

    /// The entry's name, for calls that cannot apply to the root.
    fn entry_name(&self, root_errno: i32) -> Result<&OsStr> {
        self.name().ok_or_else(|| errno(root_errno))
    }

    /// Opens the entry as a regular file (never following a symlink, never blocking).
    fn open(&self, flags: OFlag) -> Result<File> {
        let (file, stat) = self
            .dir
            .open_file_stat(self.entry_name(libc::EISDIR)?, flags, 0)?;
        self.check(&stat)?;
        Ok(file)
    }

    fn chmod(&self, mode: u32) -> io::Result<()> {
        match self.name() {
            Some(name) => self.dir.chmod(name, mode),
            None => self.dir.chmod_self(mode),
        }
    }

    fn chown(&self, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
        match self.name() {
            Some(name) => self.dir.chown(name, uid, gid),
            None => self.dir.chown_self(uid, gid),
        }
    }

    fn set_times(&self, atime: &TimeSpec, mtime: &TimeSpec) -> io::Result<()> {
        match self.name() {
            Some(name) => self.dir.set_times(name, atime, mtime),
            None => self.dir.set_times_self(atime, mtime),
        }
    }
}

enum AttrTarget {
    Open(Arc<OpenFile>),
    Entry(Located),
}

impl AttrTarget {
    fn stat(&self) -> Result<Stat> {
        match self {
            AttrTarget::Open(handle) => Ok(fstat(&handle.file)?),
            AttrTarget::Entry(located) => located.stat(),
        }
    }
}

fn fstat(file: &File) -> io::Result<Stat> {
    nix::sys::stat::fstat(file).map_err(io::Error::from)
}

/// One entry of a directory listing.
struct ListedEntry {
    ino: u64,
    kind: FileType,
    /// The name shown.
    name: OsString,
    /// The backing entry's name; empty for "." and "..".
    backing: OsString,
}

impl ListedEntry {
    fn dot(ino: u64, name: &str) -> Self {
        let (kind, name, backing) = (FileType::Directory, name.into(), OsString::new());
        Self {
            ino,
            kind,
            name,
            backing,
        }
    }
}

struct DirListing {
    entries: Vec<ListedEntry>,
}

/// The filesystem served by [`mount`].
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
    /// How open files are served: see [`VeilFs::init`].
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
}

fn errno(code: i32) -> Error {
    Error::Io(io::Error::from_raw_os_error(code))
}

fn to_errno(e: Error) -> Errno {
    Errno::from_i32(e.errno())
}

fn time_spec(t: Option<TimeOrNow>) -> TimeSpec {
    match t {
        None => TimeSpec::UTIME_OMIT,
        Some(TimeOrNow::Now) => TimeSpec::UTIME_NOW,
        Some(TimeOrNow::SpecificTime(t)) => match t.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(d) => TimeSpec::from_duration(d),
            // fuser 0.18 (src/time.rs) builds a pre-1970 time (sec, nsec) as EPOCH - (|sec| +
            // nsec) instead of EPOCH - |sec| + nsec; undo that to set what the caller asked for.
            Err(e) => TimeSpec::new(
                -(e.duration().as_secs() as i64),
                e.duration().subsec_nanos().into(),
            ),
        },
    }
}

/// The kind of a listed backing entry: from the listing, or from `lstat` where the backing
/// filesystem does not say.
fn entry_kind(dir: &Dir, entry: &Entry) -> io::Result<FileKind> {
    match entry.kind {
        Some(kind) => Ok(kind),
        None => Ok(FileKind::of(&dir.stat(&entry.name)?)),
    }
}

impl VeilFs {
    pub fn new(vault: Vault) -> io::Result<Self> {
        let root_ino = vault.root().stat_self()?.st_ino;
        let inodes = InodeTable::new(root_ino, vault.root_iv(), pin_budget());
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

    /// Opens the backing directory of directory `ino`, walking from the root through the
    /// names the inode table knows, never through a symlink ([`Dir::walk`]). The directory found
    /// must still be the inode the kernel means: otherwise ESTALE, and the kernel looks again.
    fn open_dir(&self, ino: u64) -> Result<Dir> {
        let dir = self.walk_to(ino)?;
        if ino != ROOT && dir.stat_self()?.st_ino != ino {
            return Err(errno(libc::ESTALE));
        }
        Ok(dir)
    }

    /// [`Self::open_dir`] without its check: for the parent of an entry whose own inode number
    /// is checked instead ([`Located`]), which says as much.
    fn walk_to(&self, ino: u64) -> Result<Dir> {
        let root = self.vault.root();
        if ino == ROOT {
            return Ok(root.try_clone()?);
        }
        let names = self.inodes.lock().unwrap().names_to(ino);
        let names = names.ok_or_else(|| errno(libc::ENOENT))?;
        root.walk(&names).map_err(|e| self.walk_failed(&names, e))
    }

    /// A walk that met a symlink (ELOOP) or a file (ENOTDIR) where a directory was: someone
    /// replaced a backing directory. Never followed; the request fails with EIO and the backing
    /// path is logged once.
    fn walk_failed(&self, names: &[OsString], e: io::Error) -> Error {
        let path = || {
            let mut path = self.vault.root_path().to_path_buf();
            path.extend(names);
            path
        };
        match e.raw_os_error() {
            Some(libc::ELOOP | libc::ENOTDIR) => {
                let why = io::Error::other(
                    "a directory on the way was replaced by a symlink or a file; not followed",
                );
                self.warn_once(path(), &why.into());
                errno(libc::EIO)
            }
            Some(libc::EACCES) => {
                self.warn_once(path(), &Error::from(e));
                errno(libc::EACCES)
            }
            _ => e.into(),
        }
    }

    /// Where inode `ino` is: its parent's handle and its backing name.
    fn locate(&self, ino: u64) -> Result<Located> {
        let (location, backing_ino) = {
            let table = self.inodes.lock().unwrap();
            (table.location(ino).cloned(), table.backing_ino(ino))
        };
        match location {
            _ if ino == ROOT => Ok(Located {
                dir: self.open_dir(ROOT)?,
                name: None,
                backing_ino,
            }),
            Some((parent, name)) => Ok(Located {
                dir: self.walk_to(parent)?,
                name: Some(name),
                backing_ino,
            }),
            None => Err(errno(libc::ENOENT)),
        }
    }

    /// [`Self::locate`], having checked that the entry is still the inode the kernel means.
    fn locate_checked(&self, ino: u64) -> Result<Located> {
        let located = self.locate(ino)?;
        located.stat()?;
        Ok(located)
    }

    /// Backing handle and IV of directory `ino`.
    fn dir(&self, ino: u64) -> Result<(Dir, DirIv)> {
        let dir = self.open_dir(ino)?;
        let known = self.inodes.lock().unwrap().iv(ino);
        let iv = match known {
            Some(iv) => iv,
            None => {
                let iv = self.load_iv(ino, &dir)?;
                self.inodes.lock().unwrap().set_iv(ino, iv);
                iv
            }
        };
        Ok((dir, iv))
    }

    /// The IV of directory `ino` (handle `dir`), not yet in the table: read or derived as the
    /// vault's [`IvPolicy`] says. A move record in it that authenticates and names the IV its
    /// path derives (a rename a crash interrupted) is finished first.
    fn load_iv(&self, ino: u64, dir: &Dir) -> Result<DirIv> {
        let record = self.vault.read_move(dir).unwrap_or_else(|e| {
            self.warn_once(dir.display_path(MOVE_NAME), &e);
            None
        });
        if let Some(record) = record {
            let (parent_iv, name) = self.plain_location(ino)?;
            let path_iv = self.vault.new_dir_iv(&parent_iv, &name);
            if record.new == path_iv && !self.tidy {
                // A read-only mount writes nothing: it shows what has moved so far.
                let why = io::Error::other(
                    "a directory rename was interrupted: mount read-write or run fsck --repair \
                     to finish it",
                );
                self.warn_once(dir.display_path(MOVE_NAME), &why.into());
                return Ok(record.new);
            }
            if record.new == path_iv {
                return Ok(self.finish_interrupted_move(ino, dir, &record));
            }
            if self.tidy && self.vault.move_never_started(dir, &record, &path_iv) {
                // The crash came before the directory itself was renamed.
                self.vault.abandon_move(dir);
            } else {
                let why = io::Error::other("a move record for another path: ignored");
                self.warn_once(dir.display_path(MOVE_NAME), &why.into());
            }
        }
        match self.vault.iv_policy() {
            IvPolicy::Stored => diriv::read(dir).inspect_err(|e| {
                self.warn_once(dir.display_path(DIRIV_NAME), e);
            }),
            IvPolicy::Derived => {
                let (parent_iv, name) = self.plain_location(ino)?;
                Ok(self.vault.new_dir_iv(&parent_iv, &name))
            }
        }
    }

    /// Finishes the move `record` of directory `ino` that a crash interrupted; its IV is the
    /// record's new one whether or not that succeeds (what is left is finished next time).
    fn finish_interrupted_move(&self, ino: u64, dir: &Dir, record: &MoveRecord) -> DirIv {
        let _one = self.finishing.lock().unwrap();
        if let Some(iv) = self.inodes.lock().unwrap().iv(ino) {
            return iv; // another request finished it
        }
        match self.vault.finish_move(dir, record) {
            Ok(changes) => self.inodes.lock().unwrap().apply_move(&changes),
            Err(e) => self.warn_once(dir.display_path(MOVE_NAME), &e),
        }
        record.new
    }

    /// The IV of the parent of directory `ino` and the plaintext name the IV of `ino` derives
    /// from (a conflict copy's is its original's: the sync tool copied names encrypted for it).
    fn plain_location(&self, ino: u64) -> Result<(DirIv, Vec<u8>)> {
        let location = self.inodes.lock().unwrap().location(ino).cloned();
        let (parent, backing) = location.ok_or_else(|| errno(libc::ENOENT))?;
        let (parent_dir, parent_iv) = self.dir(parent)?;
        let backing = backing.to_str().ok_or(Error::NameEncoding("UTF-8"))?;
        match self.vault.classify_entry(&parent_dir, &parent_iv, backing) {
            BackingEntry::Name(name) | BackingEntry::ConflictCopy { name, .. } => {
                Ok((parent_iv, name))
            }
            BackingEntry::Undecodable(e) => Err(e),
            _ => Err(errno(libc::EIO)),
        }
    }

    /// Starts moving directory `moved` to plaintext `new_name` in `new_parent`: writes its move
    /// record; `None` when its IV does not change.
    fn begin_move(
        &self,
        moved: u64,
        new_parent: u64,
        new_name: &OsStr,
    ) -> Result<Option<(Dir, MoveRecord)>> {
        // Loading its IV finishes an interrupted move of it first.
        let (dir, old) = self.dir(moved)?;
        let (_, new_parent_iv) = self.dir(new_parent)?;
        let new = self.vault.new_dir_iv(&new_parent_iv, new_name.as_bytes());
        if old == new {
            return Ok(None);
        }
        let record = self.vault.begin_move(&dir, old, new)?;
        Ok(Some((dir, record)))
    }

    /// Backing directory, its IV, and the backing name of `name` in directory `parent`.
    fn entry(&self, parent: u64, name: &OsStr) -> Result<(Dir, DirIv, BackingName)> {
        let (dir, iv) = self.dir(parent)?;
        let backing = self.vault.backing_name(&iv, name.as_bytes())?;
        Ok((dir, iv, backing))
    }

    /// Attributes of a backing entry the kernel now holds a reference to.
    fn looked_up(&self, parent: u64, dir: &Dir, backing: &BackingName) -> Result<FileAttr> {
        self.remembered(parent, dir, backing, InodeTable::remember)
    }

    /// [`Self::looked_up`] for an entry just created (see [`InodeTable::remember_new`]).
    fn created(&self, parent: u64, dir: &Dir, backing: &BackingName) -> Result<FileAttr> {
        self.remembered(parent, dir, backing, InodeTable::remember_new)
    }

    fn remembered(
        &self,
        parent: u64,
        dir: &Dir,
        backing: &BackingName,
        remember: fn(&mut InodeTable, u64, Location, Option<Pin>),
    ) -> Result<FileAttr> {
        let (pin, stat) = self.pin_entry(dir, OsStr::new(backing.entry()))?;
        let mut table = self.inodes.lock().unwrap();
        let ino = table.fuse_ino(stat.st_ino);
        remember(&mut table, ino, (parent, backing.entry().into()), pin);
        drop(table);
        Ok(attr::from_stat(ino, &stat))
    }

    /// Entry `name` of `dir` pinned, with the `fstat` of what was pinned: the number told to
    /// the kernel is then that of an inode that stays allocated until the kernel forgets it,
    /// even if the name is replaced a moment later. Past the pin budget (or where pins do not
    /// exist) its `lstat` alone, and the node goes unpinned ([`InodeTable`]).
    fn pin_entry(&self, dir: &Dir, name: &OsStr) -> io::Result<(Option<Pin>, Stat)> {
        if self.inodes.lock().unwrap().may_pin() {
            match dir.pin(name) {
                Ok((pin, stat)) => return Ok((Some(pin), stat)),
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                    self.warn_unpinned(&e)
                }
                Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {}
                Err(e) => return Err(e),
            }
        } else {
            self.warn_unpinned(&io::Error::other("the pin budget is spent"));
        }
        Ok((None, dir.stat(name)?))
    }

    fn warn_unpinned(&self, why: &io::Error) {
        if !self.unpinned_warned.swap(true, Ordering::Relaxed) {
            let pinned = self.inodes.lock().unwrap().pinned();
            tracing::warn!(
                "cannot pin more backing inodes ({pinned} pinned: {why}); files replaced while \
                 the kernel holds them may now give EIO (raise the open file limit)"
            );
        }
    }

    /// The generation to tell the kernel with inode `ino`.
    fn generation(&self, ino: INodeNo) -> Generation {
        Generation(self.inodes.lock().unwrap().generation(ino.0))
    }

    /// Replies with an entry valid for the cache time, or with the error's errno.
    fn reply_entry(&self, reply: ReplyEntry, result: Result<FileAttr>) {
        match result {
            Ok(attr) => reply.entry(&self.ttl, &attr, self.generation(attr.ino)),
            Err(e) => reply.error(to_errno(e)),
        }
    }

    /// Hands new entry `entry` of `dir` to the calling user when running as root, keeping the
    /// group a setgid directory gave it.
    fn give_to_caller(&self, caller: Caller, dir: &Dir, entry: &str) -> io::Result<()> {
        // Root's own entries already belong to root.
        if !self.chown_new || (caller.uid == 0 && caller.gid == 0) {
            return Ok(());
        }
        let setgid = mode_of(&dir.stat_self()?) & sys::S_ISGID != 0;
        let gid = if setgid { None } else { Some(caller.gid) };
        dir.chown(entry, Some(caller.uid), gid)
    }

    /// Creates new entry `name` in `parent` through `create` (with a long name's sidecar, see
    /// [`Vault::create_entry`]), gives it to the caller, and returns its attributes with what
    /// `create` returned. On any failure the backing directory is left as it was.
    fn create_entry<T>(
        &self,
        caller: Caller,
        parent: u64,
        name: &OsStr,
        create: impl FnOnce(&Dir, &str) -> io::Result<T>,
    ) -> Result<(FileAttr, T)> {
        let (dir, _, backing) = self.entry(parent, name)?;
        let made = self
            .vault
            .create_entry(&dir, &backing, |entry| create(&dir, entry))?;
        let attr = self
            .give_to_caller(caller, &dir, backing.entry())
            .map_err(Error::from)
            .and_then(|()| self.created(parent, &dir, &backing));
        match attr {
            Ok(attr) => Ok((attr, made)),
            Err(e) => {
                self.vault.remove_new_entry(&dir, &backing);
                Err(e)
            }
        }
    }

    /// The shared content state of inode `ino`, loading it through `file` if nobody has it open.
    fn content(&self, ino: u64, file: &File) -> Result<Arc<RwLock<FileContent>>> {
        let mut contents = self.contents.lock().unwrap();
        if let Some(content) = contents.get(&ino).and_then(Weak::upgrade) {
            return Ok(content);
        }
        let content = Arc::new(RwLock::new(FileContent::load(
            file,
            self.vault.content_key(),
        )?));
        contents.insert(ino, Arc::downgrade(&content));
        Ok(content)
    }

    fn handle(&self, fh: FileHandle) -> Result<Arc<OpenFile>> {
        self.files
            .lock()
            .unwrap()
            .get(&fh.0)
            .cloned()
            .ok_or_else(|| errno(libc::EBADF))
    }

    fn add_handle(&self, ino: u64, file: File) -> Result<u64> {
        let content = self.content(ino, &file)?;
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.files
            .lock()
            .unwrap()
            .insert(fh, Arc::new(OpenFile { file, ino, content }));
        Ok(fh)
    }

    fn truncate(&self, content: &RwLock<FileContent>, file: &File, size: u64) -> Result<()> {
        content
            .write()
            .unwrap()
            .truncate(self.vault.content_key(), file, size)
    }

    fn warn_once(&self, path: PathBuf, error: &Error) {
        let mut warned = self.warned.lock().unwrap();
        if warned.len() < MAX_WARNED && warned.insert(path.clone()) {
            tracing::warn!("backing entry {}: {error}", path.display());
        }
    }

    fn do_lookup(&self, parent: u64, name: &OsStr) -> Result<FileAttr> {
        // A lookup writes nothing, so the parent is not checked (the entry's name, encrypted
        // with the parent's IV, finds nothing in another directory): one system call less on
        // the busiest request. Its IV is read only from a checked handle.
        let known = self.inodes.lock().unwrap().iv(parent);
        let (dir, iv) = match known {
            Some(iv) => (self.walk_to(parent)?, iv),
            None => self.dir(parent)?,
        };
        let backing = self.vault.backing_name(&iv, name.as_bytes())?;
        match self.looked_up(parent, &dir, &backing) {
            Err(e) if e.errno() == libc::ENOENT => {
                self.lookup_alias(parent, &dir, &iv, name).unwrap_or(Err(e))
            }
            result => result,
        }
    }

    /// Where attribute requests on `ino` go, with its attributes now: its handle `fh` if given,
    /// else its backing entry, else any open handle of it (an unlinked file that is still open
    /// has attributes too).
    fn attr_target(&self, ino: u64, fh: Option<FileHandle>) -> Result<(AttrTarget, Stat)> {
        let opened = |handle: Arc<OpenFile>| -> Result<(AttrTarget, Stat)> {
            let stat = fstat(&handle.file)?;
            Ok((AttrTarget::Open(handle), stat))
        };
        if let Some(handle) = fh.and_then(|fh| self.handle(fh).ok()) {
            return opened(handle);
        }
        let found = self
            .locate(ino)
            .and_then(|located| located.stat().map(|stat| (located, stat)));
        let error = match found {
            Ok((located, stat)) => return Ok((AttrTarget::Entry(located), stat)),
            Err(e) => e,
        };
        let open = self
            .files
            .lock()
            .unwrap()
            .values()
            .find(|h| h.ino == ino)
            .cloned();
        open.map_or(Err(error), opened)
    }

    fn do_getattr(&self, ino: u64, fh: Option<FileHandle>) -> Result<FileAttr> {
        let stat = match self.attr_target(ino, fh) {
            Ok((_, stat)) => stat,
            // Unlinked (or renamed behind the mount) while the kernel holds it: the attributes
            // are still those of the inode the kernel means, as on a local file system.
            Err(e) => {
                let pin = self.inodes.lock().unwrap().pin(ino);
                pin.map_or(Err(e), |pin| Ok(pin.stat()?))?
            }
        };
        Ok(attr::from_stat(ino, &stat))
    }

    #[allow(clippy::too_many_arguments)]
    fn do_setattr(
        &self,
        ino: u64,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        fh: Option<FileHandle>,
        privileged: bool,
    ) -> Result<FileAttr> {
        let (target, _) = self.attr_target(ino, fh)?;
        if let Some(size) = size {
            let opened;
            let (content, file) = match &target {
                AttrTarget::Open(handle) => (handle.content.clone(), &handle.file),
                AttrTarget::Entry(located) => {
                    opened = located.open(OFlag::O_RDWR)?;
                    (self.content(ino, &opened)?, &opened)
                }
            };
            self.truncate(&content, file, size)?;
            // The kernel asks for this with FATTR_KILL_SUIDGID, which fuser 0.18 does not pass
            // on: a truncate by a caller without CAP_FSETID (not root) drops the bits, as on a
            // local filesystem, unless the same request sets the mode.
            if !privileged && mode.is_none() {
                drop_setid_bits(file)?;
            }
        }
        if let Some(mode) = mode {
            match &target {
                AttrTarget::Open(handle) => handle
                    .file
                    .set_permissions(fs::Permissions::from_mode(mode & 0o7777))?,
                AttrTarget::Entry(located) => located.chmod(mode & 0o7777)?,
            }
        }
        if uid.is_some() || gid.is_some() {
            match &target {
                AttrTarget::Open(handle) => std::os::unix::fs::fchown(&handle.file, uid, gid)?,
                AttrTarget::Entry(located) => located.chown(uid, gid)?,
            }
        }
        if atime.is_some() || mtime.is_some() {
            let (atime, mtime) = (time_spec(atime), time_spec(mtime));
            match &target {
                AttrTarget::Open(handle) => nix::sys::stat::futimens(&handle.file, &atime, &mtime)
                    .map_err(io::Error::from)?,
                AttrTarget::Entry(located) => located.set_times(&atime, &mtime)?,
            }
        }
        Ok(attr::from_stat(ino, &target.stat()?))
    }

    fn do_mkdir(&self, caller: Caller, parent: u64, name: &OsStr, mode: u32) -> Result<FileAttr> {
        let (dir, iv) = self.dir(parent)?;
        let backing = self
            .vault
            .create_dir(&dir, &iv, name.as_bytes(), mode & 0o7777)?;
        let attr = self
            .give_to_caller(caller, &dir, backing.entry())
            .map_err(Error::from)
            .and_then(|()| self.created(parent, &dir, &backing))
            .inspect_err(|_| self.vault.remove_new_entry(&dir, &backing))?;
        let child_iv = self.vault.new_dir_iv(&iv, name.as_bytes());
        self.inodes.lock().unwrap().set_iv(attr.ino.0, child_iv);
        Ok(attr)
    }

    fn do_unlink(&self, parent: u64, name: &OsStr) -> Result<()> {
        let (dir, _, backing) = self.entry(parent, name)?;
        let stat = dir.stat(backing.entry())?;
        dir.unlink(backing.entry())?;
        backing.remove_sidecar(&dir)?;
        let mut table = self.inodes.lock().unwrap();
        let ino = table.fuse_ino(stat.st_ino);
        table.unlink(ino, parent, OsStr::new(backing.entry()));
        Ok(())
    }

    /// Removes the IV file of backing directory `entry` of `parent` if it holds nothing else, so
    /// the directory can be removed or replaced; returns its handle and IV for
    /// [`Self::restore_diriv`] if that then fails.
    fn empty_dir_for_removal(parent: &Dir, entry: &str) -> Result<(Dir, Option<DirIv>)> {
        let dir = parent.open_dir(entry)?;
        if dir.entries()?.iter().any(|e| e.name != DIRIV_NAME) {
            return Err(errno(libc::ENOTEMPTY));
        }
        // Under derived IVs the file is only a check value, and may be missing.
        let iv = diriv::read(&dir).ok();
        dir.unlink_if_present(DIRIV_NAME)?;
        Ok((dir, iv))
    }

    fn restore_diriv(dir: &Dir, iv: &Option<DirIv>) {
        let Some(iv) = iv else { return };
        if let Err(e) = diriv::write(dir, iv) {
            tracing::error!(
                "could not restore {}: {e}",
                dir.display_path(DIRIV_NAME).display()
            );
        }
    }

    fn do_rmdir(&self, parent: u64, name: &OsStr) -> Result<()> {
        let (dir, _, backing) = self.entry(parent, name)?;
        let stat = dir.stat(backing.entry())?;
        if FileKind::of(&stat) != FileKind::Dir {
            return Err(errno(libc::ENOTDIR));
        }
        let (emptied, iv) = Self::empty_dir_for_removal(&dir, backing.entry())?;
        if let Err(e) = dir.rmdir(backing.entry()) {
            Self::restore_diriv(&emptied, &iv);
            return Err(e.into());
        }
        backing.remove_sidecar(&dir)?;
        let mut table = self.inodes.lock().unwrap();
        let ino = table.fuse_ino(stat.st_ino);
        table.unlink(ino, parent, OsStr::new(backing.entry()));
        Ok(())
    }

    fn do_rename(
        &self,
        parent: u64,
        name: &OsStr,
        new_parent: u64,
        new_name: &OsStr,
        flags: RenameFlags,
    ) -> Result<()> {
        let mode = rename_mode(flags).ok_or_else(|| errno(libc::EINVAL))?;
        let (from_dir, _, from) = self.entry(parent, name)?;
        let (to_dir, _, to) = self.entry(new_parent, new_name)?;
        let from_stat = from_dir.stat(from.entry())?;
        let to_stat = to_dir.stat(to.entry()).ok();
        let is_dir = |stat: &Stat| FileKind::of(stat) == FileKind::Dir;
        if to_stat
            .as_ref()
            .is_some_and(|s| s.st_ino == from_stat.st_ino)
        {
            return Ok(()); // two names of one inode: rename(2) does nothing
        }
        // A directory's IV follows its path (format-v2.md, "Unique directory IVs"): each moved
        // directory gets a move record before anything is renamed, and its subtree is
        // re-encrypted after.
        let mut moves = Vec::new();
        let from_ino = self.inodes.lock().unwrap().fuse_ino(from_stat.st_ino);
        if is_dir(&from_stat) {
            moves.extend(self.begin_move(from_ino, new_parent, new_name)?);
        }
        if mode == RenameMode::Exchange && to_stat.as_ref().is_some_and(is_dir) {
            let to_ino = self
                .inodes
                .lock()
                .unwrap()
                .fuse_ino(to_stat.as_ref().unwrap().st_ino);
            match self.begin_move(to_ino, parent, name) {
                Ok(record) => moves.extend(record),
                Err(e) => {
                    self.abandon_moves(&moves);
                    return Err(e);
                }
            }
        }
        let renamed = self.rename_entries(
            (parent, &from_dir, &from, &from_stat),
            (new_parent, &to_dir, &to, to_stat),
            mode,
        );
        if renamed.is_err() {
            self.abandon_moves(&moves);
            return renamed;
        }
        for (dir, record) in &moves {
            match self.vault.finish_move(dir, record) {
                Ok(changes) => self.inodes.lock().unwrap().apply_move(&changes),
                // The record stays: the next request that loads the directory's IV finishes it.
                Err(e) => self.warn_once(dir.display_path(MOVE_NAME), &e),
            }
        }
        Ok(())
    }

    fn abandon_moves(&self, moves: &[(Dir, MoveRecord)]) {
        for (dir, _) in moves {
            self.vault.abandon_move(dir);
        }
    }

    /// The backing part of [`Self::do_rename`]: renames the entry and updates the inode table.
    fn rename_entries(
        &self,
        (parent, from_dir, from, from_stat): (u64, &Dir, &BackingName, &Stat),
        (new_parent, to_dir, to, to_stat): (u64, &Dir, &BackingName, Option<Stat>),
        mode: RenameMode,
    ) -> Result<()> {
        let is_dir = |stat: &Stat| FileKind::of(stat) == FileKind::Dir;
        if mode == RenameMode::Exchange {
            // Names stay where they are, so their sidecars do too; only the inodes swap.
            let to_stat = to_stat.ok_or_else(|| errno(libc::ENOENT))?;
            from_dir.rename(from.entry(), to_dir, to.entry(), mode)?;
            let mut table = self.inodes.lock().unwrap();
            let (a, b) = (
                table.fuse_ino(from_stat.st_ino),
                table.fuse_ino(to_stat.st_ino),
            );
            table.moved(
                a,
                (parent, OsStr::new(from.entry())),
                (new_parent, to.entry().into()),
            );
            table.moved(
                b,
                (new_parent, OsStr::new(to.entry())),
                (parent, from.entry().into()),
            );
            return Ok(());
        }
        // A directory may replace an empty one, which in the backing dir still holds its IV.
        let replaced = match &to_stat {
            Some(s) if mode == RenameMode::Replace && is_dir(s) && is_dir(from_stat) => {
                Some(Self::empty_dir_for_removal(to_dir, to.entry())?)
            }
            _ => None,
        };
        let renamed = self.vault.create_entry(to_dir, to, |entry| {
            from_dir.rename(from.entry(), to_dir, entry, mode)
        });
        if let Err(e) = renamed {
            if let Some((emptied, iv)) = replaced {
                Self::restore_diriv(&emptied, &iv);
            }
            return Err(e);
        }
        if from.sidecar().is_some() && (parent != new_parent || from.entry() != to.entry()) {
            from.remove_sidecar(from_dir)?;
        }
        let mut table = self.inodes.lock().unwrap();
        if let Some(s) = to_stat {
            let replaced = table.fuse_ino(s.st_ino);
            table.unlink(replaced, new_parent, OsStr::new(to.entry()));
        }
        let moved = table.fuse_ino(from_stat.st_ino);
        table.moved(
            moved,
            (parent, OsStr::new(from.entry())),
            (new_parent, to.entry().into()),
        );
        Ok(())
    }

    fn do_link(&self, ino: u64, new_parent: u64, new_name: &OsStr) -> Result<FileAttr> {
        let source = self.locate_checked(ino)?;
        let from = source.entry_name(libc::EPERM)?;
        let (dir, _, backing) = self.entry(new_parent, new_name)?;
        self.vault
            .create_entry(&dir, &backing, |entry| source.dir.link(from, &dir, entry))?;
        self.looked_up(new_parent, &dir, &backing)
    }

    fn do_open(&self, ino: u64, flags: i32) -> Result<u64> {
        let writable = flags & libc::O_ACCMODE != libc::O_RDONLY || flags & libc::O_TRUNC != 0;
        let access = if writable {
            OFlag::O_RDWR
        } else {
            OFlag::O_RDONLY
        };
        // What the user cannot see (a planted FIFO, a truncated header, a backing file veilfs
        // may not open) is logged once with its backing path.
        let warn = |e: Error| {
            if matches!(e.errno(), libc::EIO | libc::EACCES) {
                if let Ok(located) = self.locate(ino) {
                    let path = located.dir.display_path(located.name().unwrap_or_default());
                    self.warn_once(path, &e);
                }
            }
            e
        };
        // The pinned inode is the one the kernel means, even if its name was replaced or
        // removed since the kernel resolved it: as on a local file system, the open reaches it.
        let pin = self.inodes.lock().unwrap().pin(ino);
        let file = match pin {
            Some(pin) => pin
                .open_file(access | backing_flags(flags))
                .map_err(Error::from),
            None => self
                .locate(ino)
                .and_then(|located| located.open(access | backing_flags(flags))),
        };
        let fh = self.add_handle(ino, file.map_err(warn)?).map_err(warn)?;
        if flags & libc::O_TRUNC != 0 {
            let handle = self.handle(FileHandle(fh))?;
            self.truncate(&handle.content, &handle.file, 0)?;
        }
        Ok(fh)
    }

    fn do_create(
        &self,
        caller: Caller,
        parent: u64,
        name: &OsStr,
        mode: u32,
        flags: i32,
    ) -> Result<(FileAttr, u64)> {
        let created = self.create_entry(caller, parent, name, |dir, entry| {
            let create = OFlag::O_RDWR | OFlag::O_CREAT | backing_flags(flags);
            // Always exclusive, so that a failure later never removes a file that was there
            // before: without O_EXCL the kernel looked the name up first and found nothing.
            dir.open_file(entry, create | OFlag::O_EXCL, mode & 0o7777)
        });
        let (attr, file) = match created {
            // Created by someone else since the kernel looked: open(2) opens it.
            Err(e) if e.errno() == libc::EEXIST && flags & libc::O_EXCL == 0 => {
                let attr = self.do_lookup(parent, name)?;
                return Ok((attr, self.do_open(attr.ino.0, flags)?));
            }
            result => result?,
        };
        let fh = self.add_handle(attr.ino.0, file)?;
        if flags & libc::O_TRUNC != 0 {
            let handle = self.handle(FileHandle(fh))?;
            self.truncate(&handle.content, &handle.file, 0)?;
        }
        Ok((attr, fh))
    }

    fn do_read(&self, fh: FileHandle, offset: u64, size: u32) -> Result<Vec<u8>> {
        let handle = self.handle(fh)?;
        let read = handle
            .content
            .read()
            .unwrap()
            .read(&handle.file, offset, size as usize);
        match read {
            // Rewritten in place under another header (a sync tool): read it as it is now.
            Err(Error::HeaderChanged) => {
                let mut content = handle.content.write().unwrap();
                *content = FileContent::load(&handle.file, self.vault.content_key())?;
                content.read(&handle.file, offset, size as usize)
            }
            read => read,
        }
    }

    fn do_write(&self, fh: FileHandle, offset: u64, data: &[u8], kill_privs: bool) -> Result<()> {
        let handle = self.handle(fh)?;
        if kill_privs {
            drop_setid_bits(&handle.file)?;
        }
        let mut content = handle.content.write().unwrap();
        content.write(self.vault.content_key(), &handle.file, offset, data)
    }

    fn do_release(&self, fh: FileHandle) {
        let handle = self.files.lock().unwrap().remove(&fh.0);
        if let Some(handle) = handle {
            let mut contents = self.contents.lock().unwrap();
            // Ours plus the map's weak one: the last handle of this inode is going.
            if Arc::strong_count(&handle.content) == 1 {
                contents.remove(&handle.ino);
            }
        }
    }

    fn do_opendir(&self, ino: u64) -> Result<u64> {
        let (dir, iv) = self.dir(ino)?;
        let parent_ino = {
            let table = self.inodes.lock().unwrap();
            table.location(ino).map_or(ROOT, |(parent, _)| *parent)
        };
        let mut entries = vec![
            ListedEntry::dot(ino, "."),
            ListedEntry::dot(parent_ino, ".."),
        ];
        let mut undecoded = Vec::new();
        for entry in dir.entries()? {
            let Some(backing_str) = entry.name.to_str() else {
                self.warn_once(dir.display_path(&entry.name), &Error::NameEncoding("UTF-8"));
                continue;
            };
            match self.vault.decrypt_entry(&dir, &iv, backing_str) {
                Ok(Some(plain)) => {
                    let kind = match entry_kind(&dir, &entry) {
                        Ok(kind) => attr::file_type(kind),
                        Err(_) => continue, // gone since it was listed
                    };
                    let ino = self.inodes.lock().unwrap().fuse_ino(entry.ino);
                    let name = OsString::from(sys::os_str(&plain));
                    entries.push(ListedEntry {
                        ino,
                        kind,
                        name,
                        backing: entry.name,
                    });
                }
                Ok(None) => {}
                Err(e) => undecoded.push((entry, e)),
            }
        }
        self.list_conflict_copies(ino, &dir, &iv, undecoded, &mut entries);
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.dirs
            .lock()
            .unwrap()
            .insert(fh, Arc::new(DirListing { entries }));
        Ok(fh)
    }

    fn do_statfs(&self) -> Result<nix::sys::statvfs::Statvfs> {
        Ok(self.vault.root().statvfs()?)
    }

    fn xattr_name(&self, name: &OsStr) -> Option<String> {
        let name = name.as_bytes().strip_prefix(b"user.")?;
        Some(format!(
            "user.{}",
            self.vault.names().encrypt_xattr_name(name)
        ))
    }

    fn do_getxattr(&self, ino: u64, name: &OsStr) -> Result<Vec<u8>> {
        // Only user.* is stored. For the other namespaces "not supported" is the truth, and
        // it is what `ls -l` (SELinux labels, ACLs) and `cp -a` remember per device: they then
        // stop asking, where ENODATA would cost one round trip per file for every listing.
        let backing_name = self
            .xattr_name(name)
            .ok_or_else(|| errno(libc::EOPNOTSUPP))?;
        let located = self.locate_checked(ino)?;
        let sealed = located.dir.get_xattr(located.name(), &backing_name)?;
        let encrypted = &backing_name["user.".len()..];
        self.vault.names().decrypt_xattr_value(encrypted, &sealed)
    }

    fn do_setxattr(&self, ino: u64, name: &OsStr, value: &[u8], flags: i32) -> Result<()> {
        let backing_name = self
            .xattr_name(name)
            .ok_or_else(|| errno(libc::EOPNOTSUPP))?;
        let sealed = self
            .vault
            .names()
            .encrypt_xattr_value(&backing_name["user.".len()..], value);
        let located = self.locate_checked(ino)?;
        located
            .dir
            .set_xattr(located.name(), &backing_name, &sealed, flags)?;
        Ok(())
    }

    fn do_listxattr(&self, ino: u64) -> Result<Vec<u8>> {
        let located = self.locate_checked(ino)?;
        let mut list = Vec::new();
        for backing_name in located.dir.list_xattrs(located.name())? {
            let Some(encrypted) = backing_name.to_str().and_then(|n| n.strip_prefix("user."))
            else {
                continue;
            };
            if let Ok(name) = self.vault.names().decrypt_xattr_name(encrypted) {
                list.extend_from_slice(b"user.");
                list.extend_from_slice(&name);
                list.push(0);
            }
        }
        Ok(list)
    }

    fn do_removexattr(&self, ino: u64, name: &OsStr) -> Result<()> {
        let backing_name = self.xattr_name(name).ok_or_else(|| errno(sys::ENOATTR))?;
        let located = self.locate_checked(ino)?;
        located.dir.remove_xattr(located.name(), &backing_name)?;
        Ok(())
    }

    fn do_access(&self, caller: Caller, ino: u64, mask: AccessFlags) -> Result<()> {
        let stat = self.locate(ino)?.stat()?;
        let wanted = (mask.bits() & 0o7) as u32;
        let mode = mode_of(&stat);
        let granted = if caller.uid == 0 {
            // Root may do anything, but execute only what someone may execute.
            let any_exec = mode & 0o111 != 0 || FileKind::of(&stat) == FileKind::Dir;
            0o6 | if any_exec { 0o1 } else { 0 }
        } else if caller.uid == stat.st_uid {
            (mode >> 6) & 0o7
        } else if caller.gid == stat.st_gid {
            (mode >> 3) & 0o7
        } else {
            mode & 0o7
        };
        if wanted & !granted != 0 {
            return Err(errno(libc::EACCES));
        }
        Ok(())
    }

    fn do_fallocate(&self, fh: FileHandle, offset: u64, length: u64, mode: i32) -> Result<()> {
        let handle = self.handle(fh)?;
        let keep_size = sys::fallocate_keeps_size(mode).ok_or_else(|| errno(libc::EOPNOTSUPP))?;
        let mut content = handle.content.write().unwrap();
        let end = offset
            .checked_add(length)
            .ok_or_else(|| errno(libc::EFBIG))?;
        if !keep_size && end > FileContent::size(&handle.file)? {
            content.truncate(self.vault.content_key(), &handle.file, end)?;
        }
        // Allocated but unwritten backing bytes read as zero: a hole, so plaintext zeros.
        sys::fallocate(&handle.file, HEADER_LEN + offset, length, true)?;
        Ok(())
    }

    fn do_readlink(&self, ino: u64) -> Result<Vec<u8>> {
        let located = self.locate_checked(ino)?;
        let backing = located.dir.readlink(located.entry_name(libc::EINVAL)?)?;
        self.vault.names().decrypt_symlink(backing.as_bytes())
    }

    fn do_mknod(
        &self,
        caller: Caller,
        parent: u64,
        name: &OsStr,
        mode: u32,
        rdev: u32,
    ) -> Result<FileAttr> {
        let perm = mode & 0o7777;
        let kind = SFlag::from_bits_truncate((mode & sys::S_IFMT) as libc::mode_t);
        let (attr, ()) = self.create_entry(caller, parent, name, |dir, entry| {
            if kind == SFlag::S_IFREG {
                dir.open_file(
                    entry,
                    OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL,
                    perm,
                )
                .map(drop)
            } else {
                dir.mknod(entry, kind, perm, rdev.into())
            }
        })?;
        Ok(attr)
    }

    fn do_symlink(
        &self,
        caller: Caller,
        parent: u64,
        name: &OsStr,
        target: &Path,
    ) -> Result<FileAttr> {
        let encrypted = self
            .vault
            .names()
            .encrypt_symlink(target.as_os_str().as_bytes())?;
        let (attr, ()) = self.create_entry(caller, parent, name, |dir, entry| {
            dir.symlink(&encrypted, entry)
        })?;
        Ok(attr)
    }

    /// One batch of a `readdirplus` listing from `offset`: each entry with its attributes,
    /// `lstat`ed through the directory's handle. `add` returns true when the reply is full.
    fn list_plus(
        &self,
        ino: u64,
        listing: &DirListing,
        offset: u64,
        mut add: impl FnMut(u64, &OsStr, &FileAttr) -> bool,
    ) -> Result<()> {
        let dir = self.open_dir(ino)?;
        for (index, entry) in listing.entries.iter().enumerate().skip(offset as usize) {
            // The kernel takes no reference for "." and "..", and ignores their attributes.
            let pinned = if entry.backing.is_empty() {
                dir.stat_self().map(|stat| (None, stat))
            } else {
                self.pin_entry(&dir, &entry.backing)
            };
            let Ok((pin, stat)) = pinned else {
                continue; // gone since the listing was made
            };
            let entry_ino = if entry.backing.is_empty() {
                entry.ino
            } else {
                self.inodes.lock().unwrap().fuse_ino(stat.st_ino)
            };
            let attr = attr::from_stat(entry_ino, &stat);
            if add(index as u64 + 1, &entry.name, &attr) {
                break;
            }
            if !entry.backing.is_empty() {
                // Each entry given with attributes is a lookup the kernel will forget.
                self.inodes
                    .lock()
                    .unwrap()
                    .remember(entry_ino, (ino, entry.backing.clone()), pin);
            }
        }
        Ok(())
    }
}

/// How many backing inodes the adapter may pin: three quarters of the open file limit (which
/// `veilfs mount` raises to the hard limit), the rest left for open files, directory handles of
/// requests in flight and the FUSE channels.
fn pin_budget() -> usize {
    use nix::sys::resource::{getrlimit, Resource};
    let soft = getrlimit(Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| soft);
    let soft = usize::try_from(soft).unwrap_or(usize::MAX);
    soft - soft / 4
}

/// Who asks: the parts of a FUSE request the operations need, so that they can be driven
/// without one.
#[derive(Clone, Copy, Debug)]
struct Caller {
    uid: u32,
    gid: u32,
}

impl From<&Request> for Caller {
    fn from(req: &Request) -> Self {
        Caller {
            uid: req.uid(),
            gid: req.gid(),
        }
    }
}

/// The mode the kernel's rename flags ask for; `None` for flags veilfs does not support.
fn rename_mode(flags: RenameFlags) -> Option<RenameMode> {
    if flags.is_empty() {
        return Some(RenameMode::Replace);
    }
    #[cfg(target_os = "linux")]
    {
        if flags == RenameFlags::RENAME_EXCHANGE {
            return Some(RenameMode::Exchange);
        }
        if flags == RenameFlags::RENAME_NOREPLACE {
            return Some(RenameMode::NoReplace);
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Sync-conflict copies and re-cased names. The core recognises them (`Vault::conflict_copies`,
// `Vault::find_recased`); the adapter only lists them, and finds them again on lookup.

/// Names of one directory the kernel may look up that are not the canonical encryption of the
/// name: conflict copies shown under `stem (conflict N).ext` when they could not be renamed, and
/// entries whose backing names a case-insensitive sync target re-cased.
#[derive(Debug, Default)]
struct DirAliases {
    /// Shown plaintext name -> backing entry name.
    names: HashMap<OsString, String>,
    /// The directory was searched for re-cased names since it was last listed.
    recased_searched: bool,
}

impl VeilFs {
    /// Whether the adapter may rename backing entries on its own: a conflict copy to the proper
    /// encryption of the name it is shown under, a re-cased name to its canonical case, so that
    /// the vault is clean afterwards (and, names being deterministic, two devices doing this
    /// rename produce the same result), and a directory rename a crash interrupted is finished
    /// when its directory is first used. Only for a read-write mount; off by default.
    pub fn tidy_backing(mut self, tidy: bool) -> Self {
        self.tidy = tidy;
        self
    }

    /// Called by `do_opendir` with the entries whose names did not decrypt: lists those that are
    /// conflict copies (renamed to their clean names when tidying, else remembered as aliases),
    /// and logs the others once.
    fn list_conflict_copies(
        &self,
        ino: u64,
        dir: &Dir,
        iv: &DirIv,
        undecoded: Vec<(Entry, Error)>,
        entries: &mut Vec<ListedEntry>,
    ) {
        let mut aliases = DirAliases::default();
        if !undecoded.is_empty() {
            let taken: HashSet<Vec<u8>> = entries[2..]
                .iter()
                .map(|e| e.name.as_bytes().to_vec())
                .collect();
            let names = undecoded
                .iter()
                .filter_map(|(e, _)| e.name.to_str().map(str::to_owned))
                .collect::<Vec<_>>();
            let copies =
                self.vault
                    .conflict_copies(dir, iv, &taken, names.iter().map(String::as_str));
            for (entry, error) in &undecoded {
                let path = dir.display_path(&entry.name);
                let Some(copy) = copies
                    .iter()
                    .find(|c| entry.name.to_str() == Some(c.backing.as_str()))
                else {
                    self.warn_once(path, error);
                    continue;
                };
                let fuse_ino = self.inodes.lock().unwrap().fuse_ino(entry.ino);
                let mut backing = OsString::from(&copy.backing);
                let renamed = self.tidy && {
                    let was = (iv, copy.original.as_slice());
                    match self
                        .vault
                        .rename_entry(dir, iv, &copy.backing, &copy.shown, was)
                    {
                        Ok((to, changes)) => {
                            backing = to.entry().into();
                            let mut table = self.inodes.lock().unwrap();
                            table.apply_move(&changes);
                            table.moved(
                                fuse_ino,
                                (ino, OsStr::new(&copy.backing)),
                                (ino, to.entry().into()),
                            );
                            tracing::info!(
                                "renamed conflict copy {} to {}",
                                path.display(),
                                to.entry()
                            );
                            true
                        }
                        Err(e) => {
                            tracing::warn!("cannot rename conflict copy {}: {e}", path.display());
                            false
                        }
                    }
                };
                let shown = OsString::from(sys::os_str(&copy.shown));
                if !renamed {
                    aliases.names.insert(shown.clone(), copy.backing.clone());
                }
                let Ok(kind) = entry_kind(dir, entry) else {
                    continue; // gone since it was listed
                };
                let kind = attr::file_type(kind);
                entries.push(ListedEntry {
                    ino: fuse_ino,
                    kind,
                    name: shown,
                    backing,
                });
            }
        }
        let mut all = self.aliases.lock().unwrap();
        if aliases.names.is_empty() {
            all.remove(&ino); // the usual case: keep the map small
        } else {
            all.insert(ino, aliases);
        }
    }

    /// `do_lookup` of a name whose canonical backing entry does not exist: a conflict copy shown
    /// under that name, or (base32 vaults) the entry under a re-cased name. `None`: not found.
    fn lookup_alias(
        &self,
        parent: u64,
        dir: &Dir,
        iv: &DirIv,
        name: &OsStr,
    ) -> Option<Result<FileAttr>> {
        let (known, searched) = {
            let aliases = self.aliases.lock().unwrap();
            let dir_aliases = aliases.get(&parent);
            (
                dir_aliases.and_then(|a| a.names.get(name)).cloned(),
                dir_aliases.is_some_and(|a| a.recased_searched),
            )
        };
        let entry = match known {
            Some(entry) => entry,
            // A conflict copy's name looked up before any listing of its directory showed it.
            None if crate::layout::conflict::is_conflict_name(name.as_bytes()) => {
                let copies = match self.vault.scan_conflict_copies(dir, iv) {
                    Ok(copies) => copies,
                    Err(e) => return Some(Err(e)),
                };
                let mut aliases = self.aliases.lock().unwrap();
                let dir_aliases = aliases.entry(parent).or_default();
                for copy in copies {
                    dir_aliases
                        .names
                        .insert(OsString::from(sys::os_str(&copy.shown)), copy.backing);
                }
                dir_aliases.names.get(name)?.clone()
            }
            None if self.vault.ignores_case() && !searched => {
                // Searched once per listing of the directory: creating many files in a directory
                // must not read it whole for every new name.
                let found = match self.vault.recased_entries(dir, iv) {
                    Ok(found) => found,
                    Err(e) => return Some(Err(e)),
                };
                let mut aliases = self.aliases.lock().unwrap();
                let dir_aliases = aliases.entry(parent).or_default();
                dir_aliases.recased_searched = true;
                for (plain, entry) in found {
                    dir_aliases
                        .names
                        .insert(OsString::from(sys::os_str(&plain)), entry);
                }
                dir_aliases.names.get(name)?.clone()
            }
            None => return None,
        };
        if self.tidy {
            let renamed = match self.vault.classify_entry(dir, iv, &entry) {
                BackingEntry::Name(plain) => self.vault.normalize_case(dir, iv, &entry, &plain),
                BackingEntry::ConflictCopy { name: original, .. } => self
                    .vault
                    .rename_entry(dir, iv, &entry, name.as_bytes(), (iv, &original))
                    .map(|(to, changes)| {
                        self.inodes.lock().unwrap().apply_move(&changes);
                        to
                    }),
                _ => Err(Error::NameAuth),
            };
            match renamed {
                Ok(to) => {
                    if let Some(a) = self.aliases.lock().unwrap().get_mut(&parent) {
                        a.names.remove(name);
                    }
                    return Some(self.looked_up(parent, dir, &to));
                }
                Err(e) => {
                    tracing::warn!("cannot rename {}: {e}", dir.display_path(&entry).display())
                }
            }
        }
        Some(self.looked_up(parent, dir, &BackingName::Short(entry)))
    }
}

/// What a write by an unprivileged user does to a local file: setuid goes, and setgid where it
/// means "set group ID" (group-executable) rather than mandatory locking.
fn drop_setid_bits(file: &File) -> io::Result<()> {
    let mode = mode_of(&fstat(file)?) & 0o7777;
    let mut kept = mode & !sys::S_ISUID;
    if mode & sys::S_IXGRP != 0 {
        kept &= !sys::S_ISGID;
    }
    if kept != mode {
        file.set_permissions(fs::Permissions::from_mode(kept))?;
    }
    Ok(())
}

/// Flags of a backing open besides its access mode: always readable (partial sectors are
/// read-modify-written), never appending or truncating (offsets and sizes differ from the
/// plaintext's; the adapter does both). [`Dir::open_file`] adds O_NOFOLLOW and O_NONBLOCK.
fn backing_flags(flags: i32) -> OFlag {
    OFlag::from_bits_truncate(flags & (libc::O_SYNC | libc::O_DSYNC))
}

impl Filesystem for VeilFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> io::Result<()> {
        // The kernel lowers these to what it supports; an error just means "kept its value".
        let _ = config.set_max_write(MAX_REQUEST);
        let _ = config.set_max_readahead(MAX_REQUEST);
        // Listings with attributes: `ls -l` and friends then need no lookup per entry. AUTO
        // lets the kernel use plain readdir where attributes would go unused.
        // We clear setuid/setgid ourselves when the kernel flags a write (and the backing
        // filesystem does on chown); otherwise the kernel asks for security.capability before
        // every single write, a round trip each.
        let _ = config.add_capabilities(InitFlags::FUSE_HANDLE_KILLPRIV_V2);
        let _ = config
            .add_capabilities(InitFlags::FUSE_DO_READDIRPLUS | InitFlags::FUSE_READDIRPLUS_AUTO);
        // Writes reach the backing file before they are answered, so a `close(2)` has nothing
        // left to flush: NOFLUSH spares it the FLUSH round trip.
        self.open_flags = FopenFlags::FOPEN_NOFLUSH;
        // Decrypted pages may outlive an open (KEEP_CACHE) only where the kernel drops them
        // when it sees a file's size or mtime change (AUTO_INVAL_DATA): a sync tool rewriting
        // a backing file in place must show once the attributes expire (`ttl`).
        if config
            .add_capabilities(InitFlags::FUSE_AUTO_INVAL_DATA)
            .is_ok()
        {
            self.open_flags |= FopenFlags::FOPEN_KEEP_CACHE;
        }
        // Lookups and listings in one directory need not queue behind each other: the adapter
        // locks what it shares.
        let _ = config.add_capabilities(InitFlags::FUSE_PARALLEL_DIROPS);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let _tree = self.count_request();
        self.reply_entry(reply, self.do_lookup(parent.0, name));
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.inodes.lock().unwrap().forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        let _tree = self.count_request();
        reply_attr(reply, self.ttl, self.do_getattr(ino.0, fh));
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let _tree = self.count_request();
        reply_attr(
            reply,
            self.ttl,
            self.do_setattr(
                ino.0,
                mode,
                uid,
                gid,
                size,
                atime,
                mtime,
                fh,
                req.uid() == 0,
            ),
        );
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let _tree = self.count_request();
        match self.do_readlink(ino.0) {
            Ok(target) => reply.data(&target),
            Err(e) => reply.error(to_errno(e)),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let _tree = self.count_request();
        let mode = (mode & sys::S_IFMT) | (mode & !umask & 0o7777);
        self.reply_entry(reply, self.do_mknod(req.into(), parent.0, name, mode, rdev));
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let _tree = self.count_request();
        self.reply_entry(
            reply,
            self.do_mkdir(req.into(), parent.0, name, mode & !umask),
        );
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let _tree = self.count_request();
        reply_empty(reply, self.do_unlink(parent.0, name));
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let _tree = self.count_request();
        reply_empty(reply, self.do_rmdir(parent.0, name));
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let _tree = self.count_request();
        self.reply_entry(
            reply,
            self.do_symlink(req.into(), parent.0, link_name, target),
        );
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let _tree = self.tree.write().unwrap();
        reply_empty(
            reply,
            self.do_rename(parent.0, name, newparent.0, newname, flags),
        );
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let _tree = self.count_request();
        self.reply_entry(reply, self.do_link(ino.0, newparent.0, newname));
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let _tree = self.count_request();
        match self.do_open(ino.0, flags.0) {
            Ok(fh) => reply.opened(FileHandle(fh), self.open_flags),
            Err(e) => reply.error(to_errno(e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let _tree = self.count_request();
        match self.do_read(fh, offset, size) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(to_errno(e)),
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let _tree = self.count_request();
        let kill_privs = write_flags.contains(WriteFlags::FUSE_WRITE_KILL_SUIDGID);
        match self.do_write(fh, offset, data, kill_privs) {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(to_errno(e)),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        let _tree = self.count_request();
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let _tree = self.count_request();
        self.do_release(fh);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        let _tree = self.count_request();
        let result = self.handle(fh).and_then(|h| {
            if datasync {
                h.file.sync_data()?;
            } else {
                h.file.sync_all()?;
            }
            Ok(())
        });
        reply_empty(reply, result);
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let _tree = self.count_request();
        match self.do_opendir(ino.0) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(to_errno(e)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let _tree = self.count_request();
        let Some(listing) = self.dirs.lock().unwrap().get(&fh.0).cloned() else {
            return reply.error(Errno::EBADF);
        };
        for (index, entry) in listing.entries.iter().enumerate().skip(offset as usize) {
            if reply.add(
                INodeNo(entry.ino),
                index as u64 + 1,
                entry.kind,
                &entry.name,
            ) {
                break;
            }
        }
        reply.ok();
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let _tree = self.count_request();
        let Some(listing) = self.dirs.lock().unwrap().get(&fh.0).cloned() else {
            return reply.error(Errno::EBADF);
        };
        let listed = self.list_plus(ino.0, &listing, offset, |offset, name, attr| {
            reply.add(
                attr.ino,
                offset,
                name,
                &self.ttl,
                attr,
                self.generation(attr.ino),
            )
        });
        match listed {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(to_errno(e)),
        }
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        let _tree = self.count_request();
        self.dirs.lock().unwrap().remove(&fh.0);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let _tree = self.count_request();
        let result = self.open_dir(ino.0).and_then(|dir| Ok(dir.sync()?));
        reply_empty(reply, result);
    }

    // fsblkcnt_t is u64 on Linux but u32 on macOS.
    #[allow(clippy::useless_conversion)]
    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let _tree = self.count_request();
        match self.do_statfs() {
            Ok(s) => reply.statfs(
                u64::from(s.blocks()),
                u64::from(s.blocks_free()),
                u64::from(s.blocks_available()),
                u64::from(s.files()),
                u64::from(s.files_free()),
                s.block_size() as u32,
                crate::crypto::names::NAME_MAX as u32,
                s.fragment_size() as u32,
            ),
            Err(e) => reply.error(to_errno(e)),
        }
    }

    fn setxattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        let _tree = self.count_request();
        reply_empty(reply, self.do_setxattr(ino.0, name, value, flags));
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let _tree = self.count_request();
        match self.do_getxattr(ino.0, name) {
            Ok(value) => reply_sized(reply, size, &value),
            Err(e) => reply.error(to_errno(e)),
        }
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let _tree = self.count_request();
        match self.do_listxattr(ino.0) {
            Ok(list) => reply_sized(reply, size, &list),
            Err(e) => reply.error(to_errno(e)),
        }
    }

    fn removexattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let _tree = self.count_request();
        reply_empty(reply, self.do_removexattr(ino.0, name));
    }

    fn access(&self, req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        let _tree = self.count_request();
        reply_empty(reply, self.do_access(req.into(), ino.0, mask));
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let _tree = self.count_request();
        match self.do_create(req.into(), parent.0, name, mode & !umask, flags) {
            Ok((attr, fh)) => reply.created(
                &self.ttl,
                &attr,
                self.generation(attr.ino),
                FileHandle(fh),
                self.open_flags,
            ),
            Err(e) => reply.error(to_errno(e)),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let _tree = self.count_request();
        reply_empty(reply, self.do_fallocate(fh, offset, length, mode));
    }
}

/// Replies with attributes valid for `ttl`, or with the error's errno.
fn reply_attr(reply: ReplyAttr, ttl: Duration, result: Result<FileAttr>) {
    match result {
        Ok(attr) => reply.attr(&ttl, &attr),
        Err(e) => reply.error(to_errno(e)),
    }
}

/// Replies with success, or with the error's errno.
fn reply_empty(reply: ReplyEmpty, result: Result<()>) {
    match result {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(to_errno(e)),
    }
}

/// Replies to a getxattr/listxattr: the size when asked for it, ERANGE when it does not fit.
fn reply_sized(reply: ReplyXattr, size: u32, data: &[u8]) {
    if size == 0 {
        reply.size(data.len() as u32);
    } else if data.len() > size as usize {
        reply.error(Errno::ERANGE);
    } else {
        reply.data(data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Features;
    use crate::crypto::keys::MasterKey;

    /// The adapter over a new vault in a temporary directory, driven without a kernel.
    fn unmounted() -> (tempfile::TempDir, VeilFs) {
        let tmp = tempfile::tempdir().unwrap();
        let vault = Vault::open(
            tmp.path(),
            &MasterKey::generate().derive(),
            &Features::default(),
        )
        .unwrap();
        vault.initialize_root().unwrap();
        (tmp, VeilFs::new(vault).unwrap())
    }

    fn write_new(fs: &VeilFs, caller: Caller, name: &str, contents: &[u8]) -> u64 {
        let (attr, fh) = fs
            .do_create(caller, ROOT, OsStr::new(name), 0o644, libc::O_RDWR)
            .unwrap();
        fs.do_write(FileHandle(fh), 0, contents, false).unwrap();
        fs.do_release(FileHandle(fh));
        attr.ino.0
    }

    /// The soak's wrong reads (a file only ever renamed into place read as 0 or 37 bytes): a
    /// lookup answered with a file's number, then the file replaced and the number given by
    /// the backing file system to a new file. The kernel handles replies in no fixed order, so
    /// it could take that lookup's reply after the new file's (whose next generation it had
    /// already accepted), and hold the old name under the number; an open of it then reached
    /// the new file: empty, or half written. Now the looked-up inode stays pinned: its number
    /// goes to no other file, and the open reaches the file the lookup found.
    #[test]
    fn a_lookup_answered_just_before_its_name_is_replaced_opens_the_file_it_found() {
        let (_tmp, fs) = unmounted();
        let me = Caller {
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
        };
        write_new(&fs, me, "sealed", b"the old contents");
        let found = fs.do_lookup(ROOT, OsStr::new("sealed")).unwrap().ino.0;
        write_new(&fs, me, "tmp", b"the new contents");
        let no_flags = RenameFlags::empty();
        fs.do_rename(
            ROOT,
            OsStr::new("tmp"),
            ROOT,
            OsStr::new("sealed"),
            no_flags,
        )
        .unwrap();
        let reused = (0..300)
            .map(|i| format!("new{i}"))
            .find(|name| write_new(&fs, me, name, b"") == found);
        let fh = FileHandle(fs.do_open(found, libc::O_RDONLY).unwrap());
        let read = String::from_utf8_lossy(&fs.do_read(fh, 0, 100).unwrap()).into_owned();
        fs.do_release(fh);
        assert_eq!(read, "the old contents");
        assert_eq!(
            reused, None,
            "a new file got the number of the looked-up one"
        );
    }
}
