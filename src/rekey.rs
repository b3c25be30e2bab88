//! Re-encrypting a whole backing directory from one set of keys to another: the engine of
//! `veilfs rekey` (a new master key) and `veilfs upgrade` (format 1 to format 2), as format.md's
//! "Key rotation" specifies it.
//!
//! The walk needs no journal: SIV names authenticate, so every name says which key it is under
//! (a name never decrypts under the wrong key), and a file only ever gets its new name once its
//! new contents are durable, since contents do not authenticate. So a crash anywhere is finished
//! by running the walk again: a name under the new keys is done, one under the old keys is
//! converted, and a directory's `veilfs.diriv` changes to its new IV only once every entry of
//! the directory is done.
//!
//! The backing directory is hostile, and the previous key may be what leaked, so anything in it
//! may have been planted by someone who holds that key. Whatever an entry is, it never stops
//! its siblings: one unreadable under the previous key too (a truncated header, a symlink
//! target that does not authenticate) is left and reported ([`Report::left`]); one that could
//! not be converted for another reason is still under the previous key and keeps the rotation
//! unfinished ([`Report::unfinished`]), so that the key which alone reads it is not dropped. A
//! full or failing disk stops the walk at once, naming the file. The walk keeps no descriptor
//! per level (a directory is reopened from the root by its backing path), so depth costs
//! neither stack nor file descriptors.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::sys::time::TimeSpec;

use crate::backing::{self, Dir, FileKind, RenameMode, Stat};
use crate::crypto::content::HEADER_LEN;
use crate::crypto::names::DirIv;
use crate::crypto::records::LinkRecord;
use crate::error::{Error, Result};
use crate::layout::file::{Backing, FileContent};
use crate::layout::longname::{self, BackingName};
use crate::layout::{
    conflict, diriv, moves, EntryName, DIRIV_NAME, REKEY_LINKS_NAME, REKEY_TMP_NAME,
};
use crate::vault::{is_canonical_reserved, with_write_permission, BackingEntry, IvPolicy, Vault};

/// Plaintext is copied in pieces of this size; an all-zero piece that is not the file's last is
/// left unwritten, so a sparse file stays sparse.
const CHUNK: usize = 256 * 1024;
/// Backing files are created with this mode, then given the old file's.
const TMP_MODE: u32 = 0o600;
/// Longest link record read back: far beyond a real one (a path of thousands of long names),
/// short enough that a planted length makes no run allocate gigabytes.
const MAX_LINK_RECORD: u32 = 4 << 20;

/// What a rotation did.
#[derive(Debug, Default)]
pub struct Report {
    /// Backing entries listed so far, whatever they were: a progress bar's position against
    /// [`crate::fsck::count_entries`].
    pub walked: u64,
    pub dirs: u64,
    pub files: u64,
    pub symlinks: u64,
    /// FIFOs, sockets and device nodes: renamed, they have no contents.
    pub others: u64,
    /// Entries already under the new keys (done before a crash): left as they are.
    pub already: u64,
    /// Plaintext bytes re-encrypted.
    pub bytes: u64,
    /// Entries left as they were, each with the reason, that nothing could read under the
    /// previous key either: names under neither key (planted, or damaged; fsck reports them),
    /// files whose header and symlinks whose target do not decrypt. The rotation finishes
    /// without them.
    pub left: Vec<String>,
    /// Entries still under the previous key, each with the reason they could not be converted
    /// (permissions, a vanished file, a directory planted as `veilfs.rekey.tmp`): while there
    /// is one, the rotation must not finish, since the previous key alone reads them.
    pub unfinished: Vec<String>,
}

/// A directory on the walk's stack. Only its backing path is kept (in [`Rotation::path`]),
/// never an open handle: a tree 100,000 levels deep costs no descriptor per level.
struct Frame {
    /// Its IV under the previous keys and under the new ones.
    old: DirIv,
    new: DirIv,
    /// Subdirectories still to walk.
    subdirs: Vec<Subdir>,
    /// Every entry of its own is under the new keys: its `veilfs.diriv` may change.
    complete: bool,
}

/// A subdirectory to walk into: its backing name now, and the plaintext names its IVs derive
/// from under the previous keys and under the new ones (they differ for a conflict copy).
struct Subdir {
    entry: String,
    old_plain: Vec<u8>,
    new_plain: Vec<u8>,
}

impl Subdir {
    /// A directory whose plaintext name is the same under both keys (all but conflict copies).
    fn named(entry: String, plain: &[u8]) -> Self {
        Subdir {
            entry,
            old_plain: plain.to_vec(),
            new_plain: plain.to_vec(),
        }
    }
}

/// A rotation of the backing directory of `from` (the old keys) to the keys of `to`; both
/// vaults are opened on the same root.
pub struct Rotation<'a> {
    from: &'a Vault,
    to: &'a Vault,
    /// The backing names of the directories from the root to the one being converted.
    path: Vec<String>,
    /// Hard-linked files converted so far (this run, and before a crash: the link journal), by
    /// old inode number and header: the path of the new file, which their other names become
    /// links to.
    links: HashMap<(u64, Vec<u8>), Vec<String>>,
    report: Report,
    /// Called at each entry with the report so far: for progress output.
    progress: Box<dyn FnMut(&Report) + 'a>,
}

impl<'a> Rotation<'a> {
    pub fn new(from: &'a Vault, to: &'a Vault, progress: impl FnMut(&Report) + 'a) -> Self {
        Rotation {
            from,
            to,
            path: Vec::new(),
            links: HashMap::new(),
            report: Report::default(),
            progress: Box::new(progress),
        }
    }

    /// Converts the whole tree, then makes it durable. Run it again after a crash, or while
    /// [`Report::unfinished`] is not empty.
    pub fn run(mut self) -> Result<Report> {
        let root = self.to.root().try_clone()?;
        self.load_links(&root)?;
        if diriv::read(&root).ok() != Some(self.to.root_iv()) {
            // The root's IV is derived from the keys in both formats (a format 1 vault reads
            // only its subdirectories' IV files), so its IV file only binds the vault to its
            // config: it takes the new keys' first, and a copy of the previous config put back
            // no longer opens the vault, nor starts a rotation (or an upgrade) over entries
            // already under the new keys.
            diriv::replace(&root, &self.to.root_iv(), true)?;
        }
        let mut stack = vec![self.enter(&root, self.from.root_iv(), self.to.root_iv())?];
        while let Some(frame) = stack.last_mut() {
            if let Some(sub) = frame.subdirs.pop() {
                let parent_old = frame.old;
                let parent_new = frame.new;
                if let Some(child) = self.descend(parent_old, parent_new, sub)? {
                    stack.push(child);
                }
                continue;
            }
            let frame = stack.pop().expect("the loop looked at it");
            let dir = self.current()?;
            if frame.complete {
                self.remove_old_sidecars(&dir, &frame.old)?;
            }
            if frame.complete && diriv::read(&dir).ok() != Some(frame.new) {
                // Every old name's removal durable before the old IV, which reads them, goes.
                dir.sync().map_err(|e| named(dir.path(), e.into()))?;
                // Durable before it replaces the old file: a format 1 directory's old IV is
                // only there, and a power loss must not leave an empty file the next run
                // cannot read.
                with_write_permission(&dir, || diriv::replace(&dir, &frame.new, true))
                    .map_err(|e| named(&dir.display_path(DIRIV_NAME), e))?;
            }
            if self.path.pop().is_some() {
                self.report.dirs += 1;
            }
        }
        root.sync_filesystem()?;
        if self.report.unfinished.is_empty() {
            root.unlink_if_present(REKEY_LINKS_NAME)?;
        }
        Ok(self.report)
    }

    /// Removes the sidecars of `dir` whose long-name entry is gone and whose name is under the
    /// old keys (IV `old`): a crash after a converted entry's old name went, before its
    /// sidecar did, leaves one, which no walk would otherwise visit (it is reserved).
    fn remove_old_sidecars(&self, dir: &Dir, old: &DirIv) -> Result<()> {
        let entries = dir.entries().map_err(|e| named(dir.path(), e.into()))?;
        for entry in entries {
            let Some(hashed) = entry
                .name
                .to_str()
                .and_then(|name| name.strip_suffix(longname::SIDECAR_SUFFIX))
                .filter(|hashed| hashed.starts_with(longname::LONGNAME_PREFIX))
            else {
                continue;
            };
            match dir.stat(hashed) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                _ => continue,
            }
            let old_name = longname::read_sidecar(dir, hashed)
                .is_ok_and(|encoded| self.from.names().decrypt_name(old, &encoded).is_ok());
            if old_name {
                with_write_permission(dir, || Ok(dir.unlink_if_present(&entry.name)?))?;
            }
        }
        Ok(())
    }

    /// The directory being converted, opened from the root by its backing path.
    fn current(&self) -> Result<Dir> {
        self.to
            .root()
            .walk(&self.path)
            .map_err(|e| named(&self.to.root().display_path(self.path.join("/")), e.into()))
    }

    /// Converts the entries of `dir` (IV `old` under the previous keys, `new` under the new
    /// ones); returns its frame, with the subdirectories to walk.
    fn enter(&mut self, dir: &Dir, old: DirIv, new: DirIv) -> Result<Frame> {
        with_write_permission(dir, || self.convert_entries(dir, old, new))
    }

    /// Walks into `sub` of the current directory (IVs `parent_old` and `parent_new`): a move
    /// left unfinished is finished and its xattrs converted, then its entries. `None` when it
    /// cannot be walked into (reported).
    fn descend(
        &mut self,
        parent_old: DirIv,
        parent_new: DirIv,
        sub: Subdir,
    ) -> Result<Option<Frame>> {
        let parent = self.current()?;
        let opened = with_write_permission(&parent, || {
            let dir = parent.open_dir(&sub.entry)?;
            let Some(old) = self.old_dir_iv(&dir, &parent_old, &sub.old_plain) else {
                return Ok(None);
            };
            self.finish_old_move(&dir, old)?;
            self.convert_xattrs(&dir, None)?;
            Ok(Some((dir, old)))
        });
        let (dir, old) = match opened {
            Ok(Some(opened)) => opened,
            Ok(None) => {
                self.leave(
                    &parent,
                    &sub.entry,
                    "its veilfs.diriv is missing or unreadable",
                );
                return Ok(None);
            }
            Err(e) => {
                self.failed(&parent, &sub.entry, e, &mut true)?;
                return Ok(None);
            }
        };
        let new = self.to.new_dir_iv(&parent_new, &sub.new_plain);
        self.path.push(sub.entry);
        self.enter(&dir, old, new).map(Some)
    }

    /// The link records an interrupted run left in the journal, read up to the first that is
    /// cut short by a crash or does not authenticate (planted), where the journal is cut so
    /// that this run's records follow the good ones. Anything but a regular file of one name
    /// there was planted: it goes.
    fn load_links(&mut self, root: &Dir) -> Result<()> {
        let path = root.display_path(REKEY_LINKS_NAME);
        let journal = match root.open_file_stat(REKEY_LINKS_NAME, OFlag::O_RDWR, 0) {
            // A second name of some file (outside the vault, perhaps): it is neither read nor
            // cut, only its name here goes.
            Ok((_, stat)) if stat.st_nlink != 1 => {
                tracing::warn!(
                    "removing {}: it has {} names",
                    path.display(),
                    stat.st_nlink
                );
                return Ok(root.unlink(REKEY_LINKS_NAME)?);
            }
            Ok((file, _)) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e)
                if root
                    .stat(REKEY_LINKS_NAME)
                    .is_ok_and(|stat| FileKind::of(&stat) != FileKind::File) =>
            {
                tracing::warn!("removing {}: {e}", path.display());
                return remove_planted(root, REKEY_LINKS_NAME).map_err(Error::from);
            }
            Err(e) => return Err(named(&path, e.into())),
        };
        let mut reader = BufReader::new(&journal);
        let mut good = 0u64;
        loop {
            let mut len = [0; 4];
            if reader.read_exact(&mut len).is_err() {
                break;
            }
            let len = u32::from_be_bytes(len);
            if len > MAX_LINK_RECORD {
                break;
            }
            let mut sealed = Vec::new();
            (&mut reader)
                .take(len.into())
                .read_to_end(&mut sealed)
                .map_err(|e| named(&path, e.into()))?;
            if sealed.len() != len as usize {
                break;
            }
            let Ok(record) = LinkRecord::open(self.to.record_key(), &self.to.root_iv().0, &sealed)
            else {
                break;
            };
            self.links
                .insert((record.old_inode, record.old_header), record.new_path);
            good += 4 + u64::from(len);
        }
        let size = journal
            .metadata()
            .map_err(|e| named(&path, e.into()))?
            .len();
        if good < size {
            tracing::warn!(
                "{}: kept its first {good} of {size} bytes (the rest was cut short by a crash, \
                 or does not authenticate)",
                path.display()
            );
            journal.set_len(good).map_err(|e| named(&path, e.into()))?;
        }
        Ok(())
    }

    /// Appends `record` to the link journal, durably: before the old name it replaces goes.
    fn journal_link(&self, record: &LinkRecord) -> Result<()> {
        let sealed = record.seal(self.to.record_key(), &self.to.root_iv().0);
        let mut entry = (sealed.len() as u32).to_be_bytes().to_vec();
        entry.extend_from_slice(&sealed);
        let mut journal = self.to.root().open_file(
            REKEY_LINKS_NAME,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_APPEND,
            TMP_MODE,
        )?;
        journal.write_all(&entry)?;
        journal.sync_data()?;
        Ok(())
    }

    fn convert_entries(&mut self, dir: &Dir, old: DirIv, new: DirIv) -> Result<Frame> {
        let mut frame = Frame {
            old,
            new,
            subdirs: Vec::new(),
            complete: true,
        };
        if let Err(e) = remove_planted(dir, REKEY_TMP_NAME) {
            // Its files cannot be converted without that name: the rest of the tree is.
            self.failed(dir, REKEY_TMP_NAME, e.into(), &mut frame.complete)?;
            return Ok(frame);
        }
        let mut taken = HashSet::new();
        let mut undecoded = Vec::new();
        let entries = dir.entries().map_err(|e| named(dir.path(), e.into()))?;
        for entry in entries {
            self.report.walked += 1;
            (self.progress)(&self.report);
            let Ok(name) = entry.name.into_string() else {
                self.leave(dir, "(a name that is not UTF-8)", "it is not a veilfs name");
                continue;
            };
            if EntryName::classify(&name) == EntryName::Reserved && is_canonical_reserved(&name)
                || conflict::is_sync_tool_file(&name)
            {
                continue;
            }
            let kind = match entry
                .kind
                .map_or_else(|| dir.stat(&name).map(|s| FileKind::of(&s)), Ok)
            {
                Ok(kind) => kind,
                Err(e) => {
                    self.failed(dir, &name, e.into(), &mut frame.complete)?;
                    continue;
                }
            };
            if let Ok(Some(plain)) = self.to.decrypt_entry(dir, &new, &name) {
                self.report.already += 1;
                if kind == FileKind::Dir {
                    frame.subdirs.push(Subdir::named(name, &plain));
                }
                taken.insert(plain);
                continue;
            }
            match self.from.decrypt_entry(dir, &old, &name) {
                Ok(Some(plain)) => {
                    if let Some(to) =
                        self.convert(dir, &name, kind, &new, &plain, &mut frame.complete)?
                    {
                        if kind == FileKind::Dir {
                            frame.subdirs.push(Subdir::named(to, &plain));
                        }
                    }
                    taken.insert(plain);
                }
                _ => undecoded.push((name, kind)),
            }
        }
        // Sync tools' copies of entries under the old keys get the names they are shown under,
        // as tidying does: their own names cannot be re-encrypted.
        let copies = self.from.conflict_copies(
            dir,
            &old,
            &taken,
            undecoded.iter().map(|(name, _)| name.as_str()),
        );
        let mut copied = HashSet::new();
        for copy in copies {
            let Some(&(_, kind)) = undecoded.iter().find(|(name, _)| *name == copy.backing) else {
                continue;
            };
            if let Some(to) = self.convert(
                dir,
                &copy.backing,
                kind,
                &new,
                &copy.shown,
                &mut frame.complete,
            )? {
                if kind == FileKind::Dir {
                    frame.subdirs.push(Subdir {
                        entry: to,
                        old_plain: copy.original,
                        new_plain: copy.shown,
                    });
                }
            }
            copied.insert(copy.backing);
        }
        for (name, kind) in undecoded {
            if copied.contains(&name) {
                continue;
            }
            // A sync tool's copy of an entry already under the new keys is one to show, not to
            // convert (a directory's contents are under its original's IV); anything else
            // decrypts under neither key.
            match self.to.classify_entry(dir, &new, &name) {
                BackingEntry::ConflictCopy { name: plain, .. } => {
                    self.report.already += 1;
                    if kind == FileKind::Dir {
                        frame.subdirs.push(Subdir::named(name, &plain));
                    }
                }
                _ => self.leave(dir, &name, "its name decrypts under neither key"),
            }
        }
        Ok(frame)
    }

    /// The IV the entries of directory `sub` (plaintext `plain` in a directory of old IV
    /// `parent`) are encrypted under with the old keys: its `veilfs.diriv` in format 1 (which
    /// holds the new IV once the directory is done), its derivation in format 2.
    fn old_dir_iv(&self, sub: &Dir, parent: &DirIv, plain: &[u8]) -> Option<DirIv> {
        match self.from.iv_policy() {
            IvPolicy::Stored => diriv::read(sub).ok(),
            IvPolicy::Derived => Some(self.from.new_dir_iv(parent, plain)),
        }
    }

    /// A directory move under the old keys that a crash left unfinished is finished first
    /// (with the old keys), as the mount would have: its names are then all under `old`.
    fn finish_old_move(&mut self, sub: &Dir, old: DirIv) -> Result<()> {
        match self.from.read_move(sub) {
            Ok(Some(record)) if record.new == old => {
                self.from.finish_move(sub, &record)?;
            }
            Ok(Some(record)) if self.from.move_never_started(sub, &record, &old) => {
                moves::remove(sub)?;
            }
            Ok(Some(_)) => self.leave(sub, "veilfs.move", "a move record that fits no IV"),
            Ok(None) => {}
            // Planted, or another vault's: the mount ignores it too.
            Err(e) => tracing::warn!("{e}"),
        }
        Ok(())
    }

    /// Converts entry `from` of `dir` (a `kind`) to plaintext name `plain` under IV `new`;
    /// returns its new backing name, or `None` (reported; `complete` cleared when it is still
    /// under the previous key) when it could not be converted.
    fn convert(
        &mut self,
        dir: &Dir,
        from: &str,
        kind: FileKind,
        new: &DirIv,
        plain: &[u8],
        complete: &mut bool,
    ) -> Result<Option<String>> {
        let converted = self.to.backing_name(new, plain).and_then(|backing| {
            match kind {
                FileKind::File => self.convert_file(dir, from, &backing)?,
                FileKind::Symlink => self.convert_symlink(dir, from, &backing)?,
                _ => self.rename_in_place(dir, from, &backing)?,
            }
            if let EntryName::Long(hashed) = EntryName::classify(from) {
                // The old name gone for good before its sidecar goes: else a power loss may
                // leave the old entry without the sidecar that holds its name.
                dir.sync()?;
                dir.unlink_if_present(longname::sidecar_name(hashed))?;
            }
            Ok(backing.entry().to_owned())
        });
        match converted {
            Ok(to) => {
                match kind {
                    FileKind::File => self.report.files += 1,
                    FileKind::Symlink => self.report.symlinks += 1,
                    FileKind::Dir => {}
                    _ => self.report.others += 1,
                }
                Ok(Some(to))
            }
            // Renamed without replacing, a directory or special file finds its new name taken
            // only by a twin: the same name in another case, which a case-insensitive sync
            // target makes in a base32 vault, and which the mount shows as one entry. It is
            // left, as fsck reports it: holding the rotation up would let anyone who can
            // rename a file keep the vault shut.
            Err(Error::Io(e))
                if e.kind() == io::ErrorKind::AlreadyExists
                    && !matches!(kind, FileKind::File | FileKind::Symlink) =>
            {
                self.leave(
                    dir,
                    from,
                    "its new name is taken (by a twin in another case?)",
                );
                Ok(None)
            }
            Err(e) => {
                self.failed(dir, from, e, complete)?;
                Ok(None)
            }
        }
    }

    /// Entry `name` of `dir` could not be converted for `e`: a full, read-only or failing disk
    /// stops the walk (naming the file); contents unreadable under the previous key too are
    /// left; anything else leaves the entry under the previous key, `complete` cleared.
    fn failed(&mut self, dir: &Dir, name: &str, e: Error, complete: &mut bool) -> Result<()> {
        let path = dir.display_path(name);
        match &e {
            Error::Io(io)
                if matches!(
                    io.raw_os_error(),
                    Some(libc::ENOSPC | libc::EDQUOT | libc::EROFS | libc::EIO)
                ) =>
            {
                Err(named(&path, e))
            }
            Error::HeaderTruncated(_)
            | Error::HeaderVersion(_)
            | Error::NameAuth
            | Error::NameEncoding(_)
            | Error::TargetTooLong => {
                self.leave(
                    dir,
                    name,
                    &format!("it does not decrypt under the previous key either ({e})"),
                );
                Ok(())
            }
            _ => {
                *complete = false;
                let why = named(&path, e).to_string();
                tracing::warn!("still under the previous key: {why}");
                self.report.unfinished.push(why);
                Ok(())
            }
        }
    }

    /// A directory or a special file keeps its inode: renamed, its xattrs re-encrypted (a
    /// directory's when it is walked into).
    fn rename_in_place(&mut self, dir: &Dir, from: &str, backing: &BackingName) -> Result<()> {
        self.to.create_entry(dir, backing, |to| {
            dir.rename(from, dir, to, RenameMode::NoReplace)
        })?;
        if FileKind::of(&dir.stat(backing.entry())?) != FileKind::Dir {
            self.convert_xattrs(dir, Some(backing.entry()))?;
        }
        Ok(())
    }

    /// A regular file is re-encrypted into a new file under a fresh file ID, made durable, and
    /// renamed to its new name; only then does the old name go. A second name of a hard-linked
    /// file already converted becomes a link to the new file, unless that is gone or is no
    /// longer a regular file (planted): it is then re-encrypted anew.
    fn convert_file(&mut self, dir: &Dir, from: &str, backing: &BackingName) -> Result<()> {
        let (source, stat) = dir.open_file_stat(from, OFlag::O_RDONLY, 0)?;
        let mut header = [0u8; HEADER_LEN as usize];
        let n = Backing::read_at(&source, &mut header, 0)?;
        let key = (stat.st_ino, header[..n].to_vec());
        let linked = match self.links.get(&key) {
            // The new file of this very name (a crash came after its journal record, before
            // its old name went): it is in place, and must not be unlinked to link it to itself.
            Some(new_path)
                if new_path.split_last().is_some_and(|(file, dirs)| {
                    dirs == self.path.as_slice() && file == backing.entry()
                }) =>
            {
                true
            }
            Some(new_path) => match self.link_to(new_path, dir, backing) {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(
                        "{}: not linked to {} as recorded ({e}): re-encrypted anew",
                        dir.display_path(from).display(),
                        new_path.join("/")
                    );
                    false
                }
            },
            None => false,
        };
        if !linked {
            self.copy_file(dir, from, &source, &stat, backing)?;
            if stat.st_nlink > 1 {
                let mut new_path = self.path.clone();
                new_path.push(backing.entry().to_owned());
                let record = LinkRecord {
                    old_inode: key.0,
                    old_header: key.1.clone(),
                    new_path,
                };
                self.journal_link(&record)?;
                self.links.insert(key, record.new_path);
            }
        }
        // The new name durable before the old goes: a power loss may otherwise keep the
        // removal and lose the new name (POSIX orders neither without a barrier).
        dir.sync()?;
        dir.unlink(from)?;
        Ok(())
    }

    /// Makes `backing` in `dir` a link to the regular file at `new_path` (backing names from
    /// the root), replacing what a crash left under that name.
    fn link_to(&self, new_path: &[String], dir: &Dir, backing: &BackingName) -> Result<()> {
        let Some((file, dirs)) = new_path.split_last() else {
            return Err(Error::Io(io::ErrorKind::NotFound.into()));
        };
        let first_dir = self.to.root().walk(dirs)?;
        let kind = FileKind::of(&first_dir.stat(file)?);
        if kind != FileKind::File {
            return Err(
                backing::wrong_type(&first_dir.display_path(file), kind, "a regular file").into(),
            );
        }
        self.to.create_entry(dir, backing, |to| {
            dir.unlink_if_present(to)?;
            first_dir.link(file, dir, to)
        })
    }

    /// The new file of [`Self::convert_file`], under `backing`'s name.
    fn copy_file(
        &mut self,
        dir: &Dir,
        from: &str,
        source: &File,
        stat: &Stat,
        backing: &BackingName,
    ) -> Result<()> {
        let target = dir.open_file(
            REKEY_TMP_NAME,
            OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL,
            TMP_MODE,
        )?;
        let copied = self
            .copy_contents(source, &target)
            .and_then(|()| self.copy_xattrs(dir, from, &target))
            .and_then(|()| copy_metadata(&target, stat))
            .and_then(|()| Ok(target.sync_all()?))
            .and_then(|()| {
                self.to.create_entry(dir, backing, |to| {
                    dir.rename(REKEY_TMP_NAME, dir, to, RenameMode::Replace)
                })
            });
        if let Err(e) = copied {
            let _ = dir.unlink_if_present(REKEY_TMP_NAME);
            return Err(e);
        }
        Ok(())
    }

    /// Plaintext of `source` (old keys) into the empty `target` (new keys), holes kept.
    fn copy_contents(&mut self, source: &File, target: &File) -> Result<()> {
        let old = FileContent::load(source, self.from.content_key())?;
        let size = FileContent::size(source)?;
        let mut new = FileContent::default();
        let key = self.to.content_key();
        let mut offset = 0u64;
        while offset < size {
            let plain = old.read(source, offset, CHUNK)?;
            if plain.is_empty() {
                break;
            }
            let last = offset + plain.len() as u64 >= size;
            if last || plain.iter().any(|&b| b != 0) {
                new.write(key, target, offset, &plain)?;
            }
            offset += plain.len() as u64;
        }
        // A file cut short underneath reads shorter; the size the old file claims is kept.
        new.truncate(key, target, size)?;
        self.report.bytes += size;
        Ok(())
    }

    /// A symlink: its target re-encrypted into a new symlink, which replaces a copy a crash
    /// left under the new name; then the old name goes.
    fn convert_symlink(&mut self, dir: &Dir, from: &str, backing: &BackingName) -> Result<()> {
        let stat = dir.stat(from)?;
        let target = self
            .from
            .names()
            .decrypt_symlink(dir.readlink(from)?.as_encoded_bytes())?;
        let encrypted = self.to.names().encrypt_symlink(&target)?;
        dir.unlink_if_present(REKEY_TMP_NAME)?;
        dir.symlink(&encrypted, REKEY_TMP_NAME)?;
        let placed = keep_owner(dir.chown(REKEY_TMP_NAME, Some(stat.st_uid), Some(stat.st_gid)))
            .and_then(|()| {
                let (atime, mtime) = times(&stat);
                dir.set_times(REKEY_TMP_NAME, &atime, &mtime)
            })
            .map_err(Error::from)
            .and_then(|()| {
                self.to.create_entry(dir, backing, |to| {
                    dir.rename(REKEY_TMP_NAME, dir, to, RenameMode::Replace)
                })
            });
        if let Err(e) = placed {
            let _ = dir.unlink_if_present(REKEY_TMP_NAME);
            return Err(e);
        }
        // As for a file: the new name durable before the old goes.
        dir.sync()?;
        dir.unlink(from)?;
        Ok(())
    }

    /// The user xattrs of entry `from` of `dir`, re-encrypted onto `target`; xattrs that do not
    /// decrypt under the old keys (veilfs never wrote them) are not copied.
    fn copy_xattrs(&self, dir: &Dir, from: &str, target: &File) -> Result<()> {
        let name = Some(OsStr::new(from));
        for attr in dir.list_xattrs(name)? {
            let Some(plain) = self.old_xattr(dir, name, &attr) else {
                continue;
            };
            let (new_name, sealed) = self.new_xattr(&plain);
            backing::set_file_xattr(target, &new_name, &sealed)?;
        }
        Ok(())
    }

    /// Re-encrypts the user xattrs of entry `name` of `dir` (or of `dir` itself) in place:
    /// each new one set before its old one is removed, so a crash loses none.
    fn convert_xattrs(&self, dir: &Dir, name: Option<&str>) -> Result<()> {
        let name = name.map(OsStr::new);
        for attr in dir.list_xattrs(name)? {
            let Some(plain) = self.old_xattr(dir, name, &attr) else {
                continue;
            };
            let (new_name, sealed) = self.new_xattr(&plain);
            dir.set_xattr(name, &new_name, &sealed, 0)?;
            dir.remove_xattr(name, attr.to_str().expect("checked by old_xattr"))?;
        }
        Ok(())
    }

    /// The plaintext (name, value) of backing xattr `attr`, if the old keys wrote it.
    fn old_xattr(
        &self,
        dir: &Dir,
        name: Option<&OsStr>,
        attr: &OsStr,
    ) -> Option<(Vec<u8>, Vec<u8>)> {
        let encrypted = attr.to_str()?.strip_prefix("user.")?;
        let names = self.from.names();
        let plain_name = names.decrypt_xattr_name(encrypted).ok()?;
        let sealed = dir.get_xattr(name, attr.to_str()?).ok()?;
        let value = names.decrypt_xattr_value(encrypted, &sealed).ok()?;
        Some((plain_name, value))
    }

    fn new_xattr(&self, (name, value): &(Vec<u8>, Vec<u8>)) -> (String, Vec<u8>) {
        let names = self.to.names();
        let encrypted = names.encrypt_xattr_name(name);
        let sealed = names.encrypt_xattr_value(&encrypted, value);
        (format!("user.{encrypted}"), sealed)
    }

    fn leave(&mut self, dir: &Dir, name: &str, why: &str) {
        let path = dir.display_path(name);
        tracing::warn!("left {} as it was: {why}", path.display());
        self.report.left.push(format!("{}: {why}", path.display()));
    }
}

/// Removes what stands at `name` in `dir`, a name only veilfs writes (a file of its own, or
/// planted: a symlink goes, never followed). A planted directory goes only if it is empty:
/// its contents are no one's to delete.
fn remove_planted(dir: &Dir, name: &str) -> io::Result<()> {
    match dir.unlink_if_present(name) {
        Err(e) if matches!(e.raw_os_error(), Some(libc::EISDIR | libc::EPERM)) => {
            dir.rmdir(name).map_err(|_| {
                io::Error::other(format!(
                    "{} is a directory, which veilfs never makes: move it out of the vault",
                    dir.display_path(name).display()
                ))
            })
        }
        result => result,
    }
}

/// `e`, saying which backing file it happened to (unless it already does).
fn named(path: &Path, e: Error) -> Error {
    let message = e.to_string();
    if message.contains(&*path.to_string_lossy()) {
        return e;
    }
    let kind = match &e {
        Error::Io(io) => io.kind(),
        _ => io::ErrorKind::Other,
    };
    Error::Io(io::Error::new(
        kind,
        format!("{}: {message}", path.display()),
    ))
}

/// Gives the new file the old one's mode, owner (when this process may) and times; the times
/// last, since writing changed them.
fn copy_metadata(target: &File, stat: &Stat) -> Result<()> {
    use nix::sys::stat::{fchmod, futimens, Mode};
    keep_owner(
        nix::unistd::fchown(
            target,
            Some(nix::unistd::Uid::from_raw(stat.st_uid)),
            Some(nix::unistd::Gid::from_raw(stat.st_gid)),
        )
        .map_err(io::Error::from),
    )?;
    fchmod(
        target,
        Mode::from_bits_truncate((backing::mode_of(stat) & 0o7777) as _),
    )
    .map_err(io::Error::from)?;
    let (atime, mtime) = times(stat);
    futimens(target, &atime, &mtime).map_err(io::Error::from)?;
    Ok(())
}

/// A user who is not root cannot give files away; the owner is then this user, which it was.
fn keep_owner(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => Ok(()),
        result => result,
    }
}

fn times(stat: &Stat) -> (TimeSpec, TimeSpec) {
    (
        TimeSpec::new(stat.st_atime, stat.st_atime_nsec),
        TimeSpec::new(stat.st_mtime, stat.st_mtime_nsec),
    )
}
