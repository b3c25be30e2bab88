//! Directory listings: a snapshot of decrypted names taken at opendir, served to readdir and
//! (with attributes, each entry a lookup) to readdirplus.

use std::ffi::{OsStr, OsString};
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use fuser::{FileAttr, FileHandle, FileType};

use crate::backing::{Dir, Entry, FileKind};
use crate::error::{Error, Result};

use super::attr;
use super::inodes::ROOT;
use super::{errno, sys, VeilFs};

/// One entry of a directory listing.
pub(super) struct ListedEntry {
    pub(super) ino: u64,
    pub(super) kind: FileType,
    /// The name shown.
    pub(super) name: OsString,
    /// The backing entry's name; empty for "." and "..".
    pub(super) backing: OsString,
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

pub(super) struct DirListing {
    pub(super) entries: Vec<ListedEntry>,
}

/// The kind of a listed backing entry: from the listing, or from `lstat` where the backing
/// filesystem does not say.
pub(super) fn entry_kind(dir: &Dir, entry: &Entry) -> io::Result<FileKind> {
    match entry.kind {
        Some(kind) => Ok(kind),
        None => Ok(FileKind::of(&dir.stat(&entry.name)?)),
    }
}

impl VeilFs {
    pub(super) fn do_opendir(&self, ino: u64) -> Result<u64> {
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

    /// The listing opendir took for handle `fh`.
    fn listing(&self, fh: FileHandle) -> Result<Arc<DirListing>> {
        let listing = self.dirs.lock().unwrap().get(&fh.0).cloned();
        listing.ok_or_else(|| errno(libc::EBADF))
    }

    /// One batch of a `readdir` listing from `offset`: `add` gets each entry's offset, inode,
    /// kind and name, and returns true when the reply is full.
    pub(super) fn do_readdir(
        &self,
        fh: FileHandle,
        offset: u64,
        mut add: impl FnMut(u64, u64, FileType, &OsStr) -> bool,
    ) -> Result<()> {
        let listing = self.listing(fh)?;
        for (index, entry) in listing.entries.iter().enumerate().skip(offset as usize) {
            if add(index as u64 + 1, entry.ino, entry.kind, &entry.name) {
                break;
            }
        }
        Ok(())
    }

    /// One batch of a `readdirplus` listing of directory `ino` from `offset`: each entry with
    /// its attributes, `lstat`ed through the directory's handle. `add` returns true when the
    /// reply is full.
    pub(super) fn do_readdirplus(
        &self,
        ino: u64,
        fh: FileHandle,
        offset: u64,
        mut add: impl FnMut(u64, &OsStr, &FileAttr) -> bool,
    ) -> Result<()> {
        let listing = self.listing(fh)?;
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

    pub(super) fn do_releasedir(&self, fh: FileHandle) {
        self.dirs.lock().unwrap().remove(&fh.0);
    }

    pub(super) fn do_fsyncdir(&self, ino: u64) -> Result<()> {
        Ok(self.open_dir(ino)?.sync()?)
    }
}
