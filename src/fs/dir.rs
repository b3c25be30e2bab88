//! Entries made and removed: lookup, mkdir, mknod, symlink, link, unlink and rmdir. New
//! entries come through the vault's sidecar protocol and are handed to the calling user.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use fuser::FileAttr;

use nix::fcntl::OFlag;
use nix::sys::stat::SFlag;

use crate::backing::{mode_of, Dir, FileKind};
use crate::crypto::names::DirIv;
use crate::error::Result;
use crate::layout::longname::BackingName;
use crate::layout::{diriv, DIRIV_NAME};

use super::{errno, sys, Caller, VeilFs};

impl VeilFs {
    /// Gives new entry `backing` of directory `parent` (handle `dir`) to the caller and
    /// remembers it: the last steps of every create, after which the entry is the caller's.
    fn hand_over(
        &self,
        caller: Caller,
        parent: u64,
        dir: &Dir,
        backing: &BackingName,
    ) -> Result<FileAttr> {
        self.give_to_caller(caller, dir, backing.entry())?;
        self.created(parent, dir, backing)
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

    /// Creates new entry `name` in `parent` through `create` and hands it over to the caller
    /// ([`crate::vault::Vault::create_entry_then`]), returning its attributes with what
    /// `create` returned. On any failure the backing directory is left as it was.
    pub(super) fn create_entry<T>(
        &self,
        caller: Caller,
        parent: u64,
        name: &OsStr,
        create: impl FnOnce(&Dir, &str) -> io::Result<T>,
    ) -> Result<(FileAttr, T)> {
        let (dir, _, backing) = self.entry(parent, name)?;
        let (made, attr) = self.vault.create_entry_then(
            &dir,
            &backing,
            |entry| create(&dir, entry),
            |_| self.hand_over(caller, parent, &dir, &backing),
        )?;
        Ok((attr, made))
    }

    pub(super) fn do_lookup(&self, parent: u64, name: &OsStr) -> Result<FileAttr> {
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

    pub(super) fn do_mkdir(
        &self,
        caller: Caller,
        parent: u64,
        name: &OsStr,
        mode: u32,
    ) -> Result<FileAttr> {
        let (dir, iv) = self.dir(parent)?;
        let (_, attr) =
            self.vault
                .create_dir_then(&dir, &iv, name.as_bytes(), mode & 0o7777, |backing| {
                    self.hand_over(caller, parent, &dir, backing)
                })?;
        let child_iv = self.vault.new_dir_iv(&iv, name.as_bytes());
        self.inodes.lock().unwrap().set_iv(attr.ino.0, child_iv);
        Ok(attr)
    }

    pub(super) fn do_unlink(&self, parent: u64, name: &OsStr) -> Result<()> {
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
    pub(super) fn empty_dir_for_removal(parent: &Dir, entry: &str) -> Result<(Dir, Option<DirIv>)> {
        let dir = parent.open_dir(entry)?;
        if dir.entries()?.iter().any(|e| e.name != DIRIV_NAME) {
            return Err(errno(libc::ENOTEMPTY));
        }
        // Under derived IVs the file is only a check value, and may be missing.
        let iv = diriv::read(&dir).ok();
        dir.unlink_if_present(DIRIV_NAME)?;
        Ok((dir, iv))
    }

    pub(super) fn restore_diriv(dir: &Dir, iv: &Option<DirIv>) {
        let Some(iv) = iv else { return };
        if let Err(e) = diriv::write(dir, iv) {
            tracing::error!(
                "could not restore {}: {e}",
                dir.display_path(DIRIV_NAME).display()
            );
        }
    }

    pub(super) fn do_rmdir(&self, parent: u64, name: &OsStr) -> Result<()> {
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

    pub(super) fn do_link(&self, ino: u64, new_parent: u64, new_name: &OsStr) -> Result<FileAttr> {
        let source = self.locate_checked(ino)?;
        let from = source.entry_name(libc::EPERM)?;
        let (dir, _, backing) = self.entry(new_parent, new_name)?;
        self.vault
            .create_entry(&dir, &backing, |entry| source.dir.link(from, &dir, entry))?;
        self.looked_up(new_parent, &dir, &backing)
    }

    pub(super) fn do_mknod(
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

    pub(super) fn do_symlink(
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
}
