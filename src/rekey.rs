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

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};

use nix::fcntl::OFlag;
use nix::sys::time::TimeSpec;

use crate::backing::{self, Dir, FileKind, RenameMode, Stat};
use crate::crypto::content::HEADER_LEN;
use crate::crypto::names::DirIv;
use crate::crypto::records::LinkRecord;
use crate::error::{Error, Result};
use crate::layout::file::{Backing, FileContent};
use crate::layout::longname::{self, BackingName};
use crate::layout::{conflict, diriv, moves, EntryName, REKEY_LINKS_NAME, REKEY_TMP_NAME};
use crate::vault::{is_canonical_reserved, with_write_permission, BackingEntry, IvPolicy, Vault};

/// Plaintext is copied in pieces of this size; an all-zero piece that is not the file's last is
/// left unwritten, so a sparse file stays sparse.
const CHUNK: usize = 256 * 1024;
/// Backing files are created with this mode, then given the old file's.
const TMP_MODE: u32 = 0o600;

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
    /// Entries left as they were, each with the reason: names under neither key (planted, or
    /// damaged; fsck reports them), files whose header is unreadable, renames that failed.
    pub left: Vec<String>,
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

    /// Converts the whole tree, then makes it durable. Run it again after a crash.
    pub fn run(mut self) -> Result<Report> {
        let root = self.to.root().try_clone()?;
        self.load_links(&root)?;
        self.convert_dir(&root, self.from.root_iv(), self.to.root_iv())?;
        root.sync_filesystem()?;
        root.unlink_if_present(REKEY_LINKS_NAME)?;
        Ok(self.report)
    }

    /// The link records an interrupted run left in the journal. A record cut short by a crash
    /// ends the journal; one that does not authenticate (planted) is skipped.
    fn load_links(&mut self, root: &Dir) -> Result<()> {
        let mut journal = match root.open_file(REKEY_LINKS_NAME, OFlag::O_RDONLY, 0) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let mut bytes = Vec::new();
        journal.read_to_end(&mut bytes)?;
        let mut rest = &bytes[..];
        while let Some((len, tail)) = rest.split_first_chunk::<4>() {
            let Some(sealed) = tail.get(..u32::from_be_bytes(*len) as usize) else {
                break;
            };
            rest = &tail[sealed.len()..];
            match LinkRecord::open(self.to.record_key(), &self.to.root_iv().0, sealed) {
                Ok(record) => {
                    self.links
                        .insert((record.old_inode, record.old_header), record.new_path);
                }
                Err(_) => tracing::warn!(
                    "{}: skipped a record that does not authenticate",
                    root.display_path(REKEY_LINKS_NAME).display()
                ),
            }
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

    /// Converts every entry of `dir` from IV `old` (under the old keys) to IV `new` (under the
    /// new ones), its subdirectories depth first, then its IV file.
    fn convert_dir(&mut self, dir: &Dir, old: DirIv, new: DirIv) -> Result<()> {
        with_write_permission(dir, || self.convert_entries(dir, old, new)).map_err(|e| match e {
            // Named where it happened, unless a deeper directory already was.
            Error::Io(e) if !e.to_string().starts_with(&*dir.path().to_string_lossy()) => {
                Error::Io(io::Error::new(
                    e.kind(),
                    format!("{}: {e}", dir.path().display()),
                ))
            }
            e => e,
        })
    }

    fn convert_entries(&mut self, dir: &Dir, old: DirIv, new: DirIv) -> Result<()> {
        dir.unlink_if_present(REKEY_TMP_NAME)?;
        // Directories to walk into: (backing name now, plaintext name its old IV derives from,
        // plaintext name its new IV derives from).
        let mut subdirs: Vec<(String, Vec<u8>, Vec<u8>)> = Vec::new();
        let mut taken = HashSet::new();
        let mut undecoded = Vec::new();
        for entry in dir.entries()? {
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
            let kind = match entry.kind {
                Some(kind) => kind,
                None => FileKind::of(&dir.stat(&name)?),
            };
            if let Ok(Some(plain)) = self.to.decrypt_entry(dir, &new, &name) {
                self.report.already += 1;
                if kind == FileKind::Dir {
                    subdirs.push((name, plain.clone(), plain.clone()));
                }
                taken.insert(plain);
                continue;
            }
            match self.from.decrypt_entry(dir, &old, &name) {
                Ok(Some(plain)) => {
                    if let Some(to) = self.convert(dir, &name, kind, &new, &plain) {
                        if kind == FileKind::Dir {
                            subdirs.push((to, plain.clone(), plain.clone()));
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
            if let Some(to) = self.convert(dir, &copy.backing, kind, &new, &copy.shown) {
                if kind == FileKind::Dir {
                    subdirs.push((to, copy.original, copy.shown));
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
                        subdirs.push((name, plain.clone(), plain));
                    }
                }
                _ => self.leave(dir, &name, "its name decrypts under neither key"),
            }
        }
        for (entry, old_plain, new_plain) in subdirs {
            let sub = dir.open_dir(&entry)?;
            let Some(sub_old) = self.old_dir_iv(&sub, &old, &old_plain) else {
                self.leave(dir, &entry, "its veilfs.diriv is missing or unreadable");
                continue;
            };
            let sub_new = self.to.new_dir_iv(&new, &new_plain);
            self.finish_old_move(&sub, sub_old)?;
            self.convert_xattrs(&sub, None)?;
            self.path.push(entry);
            let converted = self.convert_dir(&sub, sub_old, sub_new);
            self.path.pop();
            converted?;
            self.report.dirs += 1;
        }
        self.remove_old_sidecars(dir, &old)?;
        if diriv::read(dir).ok() != Some(new) {
            // Durable before it replaces the old file: a format 1 directory's old IV is only
            // there, and a power loss must not leave an empty file the next run cannot read.
            diriv::replace(dir, &new, true)?;
        }
        Ok(())
    }

    /// Removes the sidecars of `dir` whose long-name entry is gone and whose name is under the
    /// old keys (IV `old`): a crash after a converted entry's old name went, before its
    /// sidecar did, leaves one, which no walk would otherwise visit (it is reserved).
    fn remove_old_sidecars(&self, dir: &Dir, old: &DirIv) -> Result<()> {
        for entry in dir.entries()? {
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
                dir.unlink_if_present(&entry.name)?;
            }
        }
        Ok(())
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
    /// returns its new backing name, or `None` (reported) when it could not be converted.
    fn convert(
        &mut self,
        dir: &Dir,
        from: &str,
        kind: FileKind,
        new: &DirIv,
        plain: &[u8],
    ) -> Option<String> {
        let converted = self.to.backing_name(new, plain).and_then(|backing| {
            match kind {
                FileKind::File => self.convert_file(dir, from, &backing)?,
                FileKind::Symlink => self.convert_symlink(dir, from, &backing)?,
                _ => self.rename_in_place(dir, from, &backing)?,
            }
            if let EntryName::Long(hashed) = EntryName::classify(from) {
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
                Some(to)
            }
            Err(e) => {
                self.leave(dir, from, &e.to_string());
                None
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
    /// file already converted becomes a link to the new file.
    fn convert_file(&mut self, dir: &Dir, from: &str, backing: &BackingName) -> Result<()> {
        let (source, stat) = dir.open_file_stat(from, OFlag::O_RDONLY, 0)?;
        let mut header = [0u8; HEADER_LEN as usize];
        let n = Backing::read_at(&source, &mut header, 0)?;
        let key = (stat.st_ino, header[..n].to_vec());
        if let Some(new_path) = self.links.get(&key) {
            let (first, dirs) = new_path.split_last().expect("a path names a file");
            // The new file of this very name (a crash came after its journal record, before
            // its old name went): it is in place, and must not be unlinked to link it to itself.
            let here = dirs == self.path.as_slice() && first == backing.entry();
            if !here {
                let first_dir = self.to.root().walk(dirs)?;
                self.to.create_entry(dir, backing, |to| {
                    dir.unlink_if_present(to)?;
                    first_dir.link(first, dir, to)
                })?;
            }
        } else {
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
        dir.unlink(from)?;
        Ok(())
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
