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

mod files;
mod links;
mod walk;
mod xattrs;

use std::collections::HashMap;
use std::io;
use std::path::Path;

use crate::backing::Dir;
use crate::error::{Error, Result};
use crate::layout::lend::with_write_permission;
use crate::layout::{diriv, DIRIV_NAME, REKEY_LINKS_NAME};
use crate::vault::Vault;

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
