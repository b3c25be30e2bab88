//! Open files: handles, the decrypting state each open inode shares, and open, create, read,
//! write, release, fsync and fallocate.

use std::ffi::OsStr;
use std::fs::File;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock, Weak};

use fuser::{FileAttr, FileHandle};

use nix::fcntl::OFlag;

use crate::crypto::content::HEADER_LEN;
use crate::error::{Error, Result};
use crate::layout::file::FileContent;

use super::metadata::drop_setid_bits;
use super::{errno, sys, Caller, VeilFs};

pub(super) struct OpenFile {
    pub(super) file: File,
    pub(super) ino: u64,
    pub(super) content: Arc<RwLock<FileContent>>,
}

impl VeilFs {
    /// The shared content state of inode `ino`, loading it through `file` if nobody has it open.
    pub(super) fn content(&self, ino: u64, file: &File) -> Result<Arc<RwLock<FileContent>>> {
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

    pub(super) fn handle(&self, fh: FileHandle) -> Result<Arc<OpenFile>> {
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

    pub(super) fn truncate(
        &self,
        content: &RwLock<FileContent>,
        file: &File,
        size: u64,
    ) -> Result<()> {
        content
            .write()
            .unwrap()
            .truncate(self.vault.content_key(), file, size)
    }

    pub(super) fn do_open(&self, ino: u64, flags: i32) -> Result<u64> {
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

    pub(super) fn do_create(
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

    pub(super) fn do_read(&self, fh: FileHandle, offset: u64, size: u32) -> Result<Vec<u8>> {
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

    pub(super) fn do_write(
        &self,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        kill_privs: bool,
    ) -> Result<()> {
        let handle = self.handle(fh)?;
        if kill_privs {
            drop_setid_bits(&handle.file)?;
        }
        let mut content = handle.content.write().unwrap();
        content.write(self.vault.content_key(), &handle.file, offset, data)
    }

    pub(super) fn do_release(&self, fh: FileHandle) {
        let handle = self.files.lock().unwrap().remove(&fh.0);
        if let Some(handle) = handle {
            let mut contents = self.contents.lock().unwrap();
            // Ours plus the map's weak one: the last handle of this inode is going.
            if Arc::strong_count(&handle.content) == 1 {
                contents.remove(&handle.ino);
            }
        }
    }

    pub(super) fn do_fsync(&self, fh: FileHandle, datasync: bool) -> Result<()> {
        let handle = self.handle(fh)?;
        if datasync {
            handle.file.sync_data()?;
        } else {
            handle.file.sync_all()?;
        }
        Ok(())
    }

    pub(super) fn do_fallocate(
        &self,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
    ) -> Result<()> {
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
}

/// Flags of a backing open besides its access mode: always readable (partial sectors are
/// read-modify-written), never appending or truncating (offsets and sizes differ from the
/// plaintext's; the adapter does both). [`crate::backing::Dir::open_file`] adds O_NOFOLLOW and O_NONBLOCK.
fn backing_flags(flags: i32) -> OFlag {
    OFlag::from_bits_truncate(flags & (libc::O_SYNC | libc::O_DSYNC))
}
