//! Converting one entry: a regular file re-encrypted into a new file under a fresh file ID
//! (holes, mode, owner and times kept) and renamed to its new name only once durable, a symlink's
//! target re-encrypted, and a directory or special file renamed in place.

use std::fs::File;
use std::io;

use nix::fcntl::OFlag;
use nix::sys::time::TimeSpec;

use super::{Rotation, TMP_MODE};
use crate::backing::{self, Dir, FileKind, RenameMode, Stat};
use crate::crypto::content::HEADER_LEN;
use crate::crypto::records::LinkRecord;
use crate::error::{Error, Result};
use crate::layout::file::{Backing, FileContent};
use crate::layout::longname::BackingName;
use crate::layout::REKEY_TMP_NAME;

/// Plaintext is copied in pieces of this size; an all-zero piece that is not the file's last is
/// left unwritten, so a sparse file stays sparse.
const CHUNK: usize = 256 * 1024;

impl Rotation<'_> {
    /// A directory or a special file keeps its inode: renamed, its xattrs re-encrypted (a
    /// directory's when it is walked into).
    pub(super) fn rename_in_place(
        &mut self,
        dir: &Dir,
        from: &str,
        backing: &BackingName,
    ) -> Result<()> {
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
    pub(super) fn convert_file(
        &mut self,
        dir: &Dir,
        from: &str,
        backing: &BackingName,
    ) -> Result<()> {
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
            .and_then(|()| Ok(target.sync_all()?));
        self.place_tmp(dir, backing, copied)
    }

    /// Once `prepared` says the new entry under [`REKEY_TMP_NAME`] in `dir` is complete, puts it
    /// in place under `backing`'s name; on any error the temporary entry goes.
    fn place_tmp(&self, dir: &Dir, backing: &BackingName, prepared: Result<()>) -> Result<()> {
        let placed = prepared.and_then(|()| {
            self.to.create_entry(dir, backing, |to| {
                dir.rename(REKEY_TMP_NAME, dir, to, RenameMode::Replace)
            })
        });
        if let Err(e) = placed {
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
    pub(super) fn convert_symlink(
        &mut self,
        dir: &Dir,
        from: &str,
        backing: &BackingName,
    ) -> Result<()> {
        let stat = dir.stat(from)?;
        let target = self
            .from
            .names()
            .decrypt_symlink(dir.readlink(from)?.as_encoded_bytes())?;
        let encrypted = self.to.names().encrypt_symlink(&target)?;
        dir.unlink_if_present(REKEY_TMP_NAME)?;
        dir.symlink(&encrypted, REKEY_TMP_NAME)?;
        let prepared = keep_owner(dir.chown(REKEY_TMP_NAME, Some(stat.st_uid), Some(stat.st_gid)))
            .and_then(|()| {
                let (atime, mtime) = times(&stat);
                dir.set_times(REKEY_TMP_NAME, &atime, &mtime)
            })
            .map_err(Error::from);
        self.place_tmp(dir, backing, prepared)?;
        // As for a file: the new name durable before the old goes.
        dir.sync()?;
        dir.unlink(from)?;
        Ok(())
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
