//! What reads the reverse view's contents: open files (a plaintext file encrypted as it is
//! read, or a made-up file's bytes; getattr through a handle gives the size it serves) and open
//! directories (their listing, taken at opendir), and symlink targets.

use std::ffi::OsString;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use fuser::{FileAttr, FileHandle, FileType};

use super::attr::file_type;
use super::nodes::{made_up_id, Node, ROOT};
use super::ReverseFs;
use crate::backing::FileKind;
use crate::error::Result;
use crate::fs::errno;
use crate::reverse::content::ViewFile;
use crate::reverse::tree::Item;

/// An open view file (a plaintext one boxed: its cipher's key schedules are large).
pub(super) enum Open {
    Plain(Box<ViewFile>),
    MadeUp(Arc<[u8]>),
}

/// An open view directory: its entries as the kernel gets them.
pub(super) type Listing = Arc<Vec<(u64, FileType, OsString)>>;

impl ReverseFs {
    fn new_handle(&self) -> u64 {
        self.next_handle.fetch_add(1, Ordering::Relaxed)
    }

    pub(super) fn do_getattr(&self, ino: u64, fh: Option<FileHandle>) -> Result<FileAttr> {
        if let Some(fh) = fh {
            if let Some(Open::Plain(file)) = self.files.lock().unwrap().get(&fh.0).map(|f| &**f) {
                // The size the handle serves, whatever the file became since.
                let mut attr = self.attr(ino)?;
                attr.size = file.size();
                return Ok(attr);
            }
        }
        self.attr(ino)
    }

    pub(super) fn do_open(&self, ino: u64, flags: i32) -> Result<u64> {
        if flags & libc::O_ACCMODE != libc::O_RDONLY || flags & libc::O_TRUNC != 0 {
            return Err(errno(libc::EROFS));
        }
        let made_up = match self.nodes.lock().unwrap().get(&ino).map(|held| &held.node) {
            Some(Node::MadeUp { bytes, .. }) => Some(bytes.clone()),
            Some(Node::Plain { .. }) => None,
            None => return Err(errno(libc::ESTALE)),
        };
        let open = match made_up {
            Some(bytes) => Open::MadeUp(bytes),
            None => {
                let (path, iv) = self.node(ino)?;
                if iv.is_some() {
                    return Err(errno(libc::EISDIR));
                }
                let (_, parent) = path.split_last().ok_or_else(|| errno(libc::EISDIR))?;
                let dir = self.view.open_dir(parent)?;
                let (file, stat) = self.view.open_file(&dir, &path)?;
                if self.plain_id(&stat) != ino {
                    return Err(errno(libc::ESTALE));
                }
                Open::Plain(Box::new(file))
            }
        };
        let fh = self.new_handle();
        self.files.lock().unwrap().insert(fh, Arc::new(open));
        Ok(fh)
    }

    pub(super) fn do_read(&self, fh: u64, offset: u64, size: u32) -> Result<Vec<u8>> {
        let open = self
            .files
            .lock()
            .unwrap()
            .get(&fh)
            .cloned()
            .ok_or_else(|| errno(libc::EBADF))?;
        match &*open {
            Open::Plain(file) => file.read(offset, size as usize),
            Open::MadeUp(bytes) => {
                let start = (offset as usize).min(bytes.len());
                let end = start.saturating_add(size as usize).min(bytes.len());
                Ok(bytes[start..end].to_vec())
            }
        }
    }

    pub(super) fn do_release(&self, fh: u64) {
        self.files.lock().unwrap().remove(&fh);
    }

    pub(super) fn do_readlink(&self, ino: u64) -> Result<Vec<u8>> {
        let (path, _) = self.node(ino)?;
        let (_, parent) = path.split_last().ok_or_else(|| errno(libc::EINVAL))?;
        let dir = self.view.open_dir(parent)?;
        Ok(self.view.symlink_target(&dir, &path)?.into_bytes())
    }

    pub(super) fn do_opendir(&self, ino: u64) -> Result<u64> {
        let (path, iv) = self.node(ino)?;
        let iv = iv.ok_or_else(|| errno(libc::ENOTDIR))?;
        let dir = self.view.open_dir(&path)?;
        let mut entries = vec![
            (ino, FileType::Directory, OsString::from(".")),
            (ROOT, FileType::Directory, OsString::from("..")),
        ];
        for listed in self.view.list(&dir, &path, &iv)? {
            let name = OsString::from(listed.name);
            let (id, kind) = match &listed.item {
                Item::Plain { stat, .. } => (self.plain_id(stat), file_type(FileKind::of(stat))),
                _ => (made_up_id(ino, &name), FileType::RegularFile),
            };
            entries.push((id, kind, name));
        }
        let fh = self.new_handle();
        self.dirs.lock().unwrap().insert(fh, Arc::new(entries));
        Ok(fh)
    }

    /// The listing open directory handle `fh` serves.
    pub(super) fn listing(&self, fh: u64) -> Option<Listing> {
        self.dirs.lock().unwrap().get(&fh).cloned()
    }

    pub(super) fn do_releasedir(&self, fh: u64) {
        self.dirs.lock().unwrap().remove(&fh);
    }
}
