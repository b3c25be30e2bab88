//! A view file's contents: the header with the file's deterministic ID, then the plaintext
//! encrypted sector by sector, at any offset and length, by the same code a forward vault
//! writes with ([`FileCipher`], [`sectors_overlapping`]).
//!
//! A plaintext file can change while a backup reads it. The handle remembers the file's size,
//! mtime and ctime at open ([`Version`]), and every read `fstat`s it after reading: if the
//! file changed, the read fails with EIO (logged once, naming the plaintext path) rather than
//! serve a mix of two versions under one file ID.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest, Sha256};

use super::{derive, inode_key, open_plain_file, path_bytes, shown_path, Version, View};
use crate::backing::{Dir, Stat};
use crate::crypto::content::{
    backing_size, sector_at, sectors_overlapping, FileCipher, FileHeader, HEADER_LEN,
    MIN_XTS_SECTOR,
};
use crate::error::{Error, Result};
use crate::layout::file::Backing;

/// Chunk in which a hard-linked file is read to hash it.
const HASH_CHUNK: usize = 1 << 20;

/// An open view file.
#[derive(Debug)]
pub struct ViewFile {
    file: File,
    opened: Version,
    /// `None` for an empty file, whose view is an empty file.
    cipher: Option<FileCipher>,
    /// The plaintext path, for messages.
    shown: PathBuf,
    /// Whether a change while reading was logged already.
    warned: AtomicBool,
}

impl View {
    /// Opens the file at `path` (its name last) in `dir`, never following a symlink, with
    /// `O_NOATIME` where permitted, and computes its file ID (format.md, "Reverse mode").
    pub fn open_file(&self, dir: &Dir, path: &[OsString]) -> Result<(ViewFile, Stat)> {
        let name = path.last().ok_or(Error::InvalidName)?;
        let (file, stat) = open_plain_file(dir, name)?;
        let opened = Version::of(&stat);
        let size = opened.size;
        let one_link = stat.st_nlink <= 1;
        let file_id = if size == 0 {
            None
        } else if size < MIN_XTS_SECTOR {
            let mut contents = vec![0; size as usize];
            let n = Backing::read_at(&file, &mut contents, 0)?;
            contents.truncate(n);
            let path = one_link.then(|| path_bytes(path));
            Some(derive::short_file_id(
                &self.reverse_key,
                path.as_deref(),
                &contents,
            ))
        } else if one_link {
            Some(derive::file_id(
                &self.reverse_key,
                &path_bytes(path),
                size,
                opened.mtime,
            ))
        } else {
            let hash = self.contents_hash(&file, &stat)?;
            Some(derive::linked_file_id(
                &self.reverse_key,
                &hash,
                size,
                opened.mtime,
            ))
        };
        let cipher =
            file_id.map(|file_id| FileCipher::new(&self.content_key, FileHeader { file_id }));
        let view = ViewFile {
            file,
            opened,
            cipher,
            shown: shown_path(path),
            warned: AtomicBool::new(false),
        };
        Ok((view, stat))
    }

    /// SHA-256 of a hard-linked file's contents, computed once per inode and version.
    fn contents_hash(&self, file: &File, stat: &Stat) -> Result<[u8; 32]> {
        let (key, version) = (inode_key(stat), Version::of(stat));
        if let Some((seen, hash)) = self.hashes.lock().unwrap().get(&key) {
            if *seen == version {
                return Ok(*hash);
            }
        }
        let mut hasher = Sha256::new();
        let mut buf = vec![0; HASH_CHUNK];
        let mut offset = 0;
        loop {
            let n = Backing::read_at(file, &mut buf, offset)?;
            hasher.update(&buf[..n]);
            offset += n as u64;
            if n < buf.len() {
                break;
            }
        }
        let hash: [u8; 32] = hasher.finalize().into();
        // Only a hash of one version is kept: a file that changed meanwhile fails its reads.
        if Version::of(&fstat(file)?) == version {
            self.hashes.lock().unwrap().insert(key, (version, hash));
        }
        Ok(hash)
    }
}

impl ViewFile {
    /// The view file's size: the header and the plaintext, as at open.
    pub fn size(&self) -> u64 {
        backing_size(self.opened.size)
    }

    /// Up to `len` bytes of the view file at `offset`; fewer only at its end.
    pub fn read(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        let end = self.size().min(offset.saturating_add(len as u64));
        let Some(cipher) = self.cipher.as_ref().filter(|_| offset < end) else {
            // Nothing to read: an empty file, or past the end (which a file that grew since
            // the open must not seem to be).
            self.check_unchanged()?;
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity((end - offset) as usize);
        if offset < HEADER_LEN {
            let header = cipher.header().to_bytes();
            out.extend_from_slice(&header[offset as usize..end.min(HEADER_LEN) as usize]);
        }
        if end > HEADER_LEN {
            let size = self.opened.size;
            let (from, to) = (offset.max(HEADER_LEN) - HEADER_LEN, end - HEADER_LEN);
            let first = sector_at(from, size).expect("from < to <= size");
            let last = sector_at(to - 1, size).expect("to - 1 < size");
            let mut buf = vec![0; (last.end() - first.start) as usize];
            // A file cut short meanwhile leaves zeros here, and fails the check below.
            Backing::read_at(&self.file, &mut buf, first.start)?;
            self.check_unchanged()?;
            for sector in sectors_overlapping(first.start, last.end(), size) {
                let at = (sector.start - first.start) as usize;
                cipher.encrypt_sector(sector, &mut buf[at..at + sector.len as usize]);
            }
            out.extend_from_slice(&buf[(from - first.start) as usize..(to - first.start) as usize]);
        }
        Ok(out)
    }

    /// EIO if the plaintext changed since the file was opened: its bytes just read may be of
    /// two versions, and its file ID is the first one's.
    fn check_unchanged(&self) -> Result<()> {
        if Version::of(&fstat(&self.file)?) == self.opened {
            return Ok(());
        }
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "{} changed while it was being read; its read fails (the next backup takes the \
                 new version)",
                self.shown.display()
            );
        }
        Err(Error::Io(io::Error::from_raw_os_error(libc::EIO)))
    }
}

fn fstat(file: &File) -> io::Result<Stat> {
    Ok(nix::sys::stat::fstat(file)?)
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::os::unix::fs::{symlink, MetadataExt};

    use super::*;
    use crate::crypto::keys::MasterKey;
    use crate::layout::file::{FileContent, MemBacking};
    use crate::reverse::exclude::Exclusions;

    fn view(dir: &std::path::Path) -> View {
        crate::reverse::tests::view(dir, Exclusions::none())
    }

    /// The whole view file of `name`, read in pieces of `step` bytes.
    fn view_bytes(view: &View, name: &str, step: usize) -> Vec<u8> {
        let (file, _) = view.open_file(view.root(), &[name.into()]).unwrap();
        let mut out = Vec::new();
        loop {
            let piece = file.read(out.len() as u64, step).unwrap();
            if piece.is_empty() {
                return out;
            }
            out.extend(piece);
        }
    }

    #[test]
    fn forward_reads_give_the_plaintext_at_every_size() {
        let dir = tempfile::tempdir().unwrap();
        let view = view(dir.path());
        let content_key = MasterKey::from_bytes([9; 64]).derive_v2(&[3; 16]).content;
        for size in [0, 1, 15, 16, 17, 4095, 4096, 4097, 4111, 4112, 10000] {
            let plain: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
            let name = format!("f{size}");
            std::fs::write(dir.path().join(&name), &plain).unwrap();
            let whole = view_bytes(&view, &name, 1 << 20);
            assert_eq!(whole.len() as u64, backing_size(size as u64));
            for step in [1, 7, 4096, 5000] {
                assert_eq!(
                    view_bytes(&view, &name, step),
                    whole,
                    "size {size}, step {step}"
                );
            }
            let backing = MemBacking(RefCell::new(whole.clone()));
            let forward = FileContent::load(&backing, &content_key).unwrap();
            assert_eq!(
                forward.read(&backing, 0, size + 1).unwrap(),
                plain,
                "size {size}"
            );
            // The same file gives the same bytes again: the ID is deterministic.
            assert_eq!(view_bytes(&view, &name, 1 << 20), whole);
        }
    }

    #[test]
    fn hard_links_read_the_same_through_every_name_and_symlinks_decrypt() {
        let dir = tempfile::tempdir().unwrap();
        let view = view(dir.path());
        std::fs::write(dir.path().join("a"), vec![1; 5000]).unwrap();
        std::fs::hard_link(dir.path().join("a"), dir.path().join("b")).unwrap();
        std::fs::write(dir.path().join("c"), vec![1; 5000]).unwrap();
        assert_eq!(view_bytes(&view, "a", 4096), view_bytes(&view, "b", 4096));
        assert_ne!(view_bytes(&view, "a", 4096), view_bytes(&view, "c", 4096));
        assert_eq!(std::fs::metadata(dir.path().join("a")).unwrap().nlink(), 2);

        symlink("../somewhere else", dir.path().join("l")).unwrap();
        let target = view.symlink_target(view.root(), &["l".into()]).unwrap();
        assert_eq!(
            target,
            view.symlink_target(view.root(), &["l".into()]).unwrap()
        );
        let names = crate::crypto::names::NameCipher::new(
            MasterKey::from_bytes([9; 64]).derive_v2(&[3; 16]).name,
            crate::crypto::names::NameEncoding::Base64Url,
        );
        assert_eq!(
            names.decrypt_symlink(target.as_bytes()).unwrap(),
            b"../somewhere else"
        );
    }

    #[test]
    fn a_file_changed_while_read_fails_its_read() {
        let dir = tempfile::tempdir().unwrap();
        let view = view(dir.path());
        std::fs::write(dir.path().join("f"), vec![1; 9000]).unwrap();
        let (file, _) = view.open_file(view.root(), &["f".into()]).unwrap();
        file.read(0, 4096).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join("f"))
            .and_then(|f| std::os::unix::fs::FileExt::write_all_at(&f, b"changed", 100))
            .unwrap();
        let err = file.read(0, 4096).unwrap_err();
        assert_eq!(err.errno(), libc::EIO);
    }
}
