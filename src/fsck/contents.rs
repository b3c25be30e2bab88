//! What is in the entries of the plaintext tree that are not directories: file headers (and
//! the one repair of one, an all-zero file), symlink targets, and special files noted.

use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use nix::fcntl::OFlag;

use super::{Problem, Walk};
use crate::backing::{Dir, FileKind};
use crate::crypto::content::HEADER_LEN;
use crate::error::Error;
use crate::layout::file::FileContent;

/// What is wrong with a file's header.
struct BadHeader {
    problem: Problem,
    detail: String,
    /// Every byte of the file is zero: it can be given a new header.
    all_zero: bool,
}

impl Walk<'_> {
    /// Checks entry `name` of `dir`, of `kind`, which is not a directory.
    pub(super) fn check_contents(
        &self,
        kind: FileKind,
        dir: &Dir,
        name: &str,
        plain: Option<PathBuf>,
    ) {
        match kind {
            FileKind::File => self.check_file(dir, name, plain),
            FileKind::Symlink => self.check_symlink(dir, name, plain),
            FileKind::Dir => {}
            // Never opened. Named, since sync tools skip such entries: a FIFO or socket here
            // came from this machine, by the mount or by someone else.
            _ => self.note(
                Problem::SpecialFile,
                &dir.display_path(name),
                plain,
                format!(
                    "{}: sync tools do not carry one, so it is on this device only",
                    kind.described()
                ),
            ),
        }
    }

    fn check_file(&self, dir: &Dir, name: &str, plain: Option<PathBuf>) {
        let path = dir.display_path(name);
        match read_header(dir, name) {
            Ok(None) => {}
            Ok(Some(bad)) if !bad.all_zero => self.report(bad.problem, &path, plain, bad.detail),
            Ok(Some(bad)) => {
                self.repairable(
                    bad.problem,
                    &path,
                    plain,
                    "every byte is zero, its header included: its contents never reached the \
                     disk (a crash before it was synced)",
                    "give it a new header, so that it reads as zeros of its size",
                    || self.reheader_zeroed_file(dir, name),
                );
            }
            Err(e) => self.report(Problem::Unreadable, &path, plain, e.to_string()),
        }
    }

    /// Gives the all-zero file `name` of `dir` a fresh header and encrypted zeros of its
    /// plaintext size (a hole, or a short sector of zeros), durably.
    fn reheader_zeroed_file(&self, dir: &Dir, name: &str) -> crate::Result<()> {
        let file = dir.open_file(name, OFlag::O_RDWR, 0)?;
        if !is_all_zero(&mut &file)? {
            return Err(Error::Io(io::Error::other(
                "it changed since it was checked",
            )));
        }
        let size = FileContent::size(&file)?;
        file.set_len(0)?;
        let key = self.vault.content_key();
        FileContent::load(&file, key)?.truncate(key, &file, size)?;
        file.sync_all()?;
        Ok(())
    }

    fn check_symlink(&self, dir: &Dir, name: &str, plain: Option<PathBuf>) {
        let path = dir.display_path(name);
        match dir.readlink(name) {
            Ok(target) => {
                if let Err(e) = self.vault.names().decrypt_symlink(target.as_bytes()) {
                    self.report(Problem::SymlinkTarget, &path, plain, e.to_string());
                }
            }
            Err(e) => self.report(Problem::Unreadable, &path, plain, e.to_string()),
        }
    }
}

/// What is wrong with the header of file `name` of `dir`, if anything.
fn read_header(dir: &Dir, name: &str) -> io::Result<Option<BadHeader>> {
    // Never blocks: had a FIFO taken the file's place since the listing, this fails.
    let mut file = dir.open_file(name, OFlag::O_RDONLY, 0)?;
    let size = file.metadata()?.len();
    if size == 0 {
        return Ok(None);
    }
    if size < HEADER_LEN {
        return Ok(Some(BadHeader {
            problem: Problem::HeaderTruncated,
            detail: format!("{size} bytes: a header alone is {HEADER_LEN}"),
            all_zero: false,
        }));
    }
    let mut version = [0; 2];
    file.read_exact(&mut version)?;
    let version = u16::from_be_bytes(version);
    if version == 1 {
        return Ok(None);
    }
    // A file whose every byte is zero is one whose data never reached the disk while its size
    // did (a power loss before it was synced): nothing of it can be read, and a fresh header
    // makes it read as the zeros it holds instead of failing for ever.
    Ok(Some(BadHeader {
        problem: Problem::HeaderVersion,
        detail: format!("version {version}"),
        all_zero: version == 0 && is_all_zero(&mut file)?,
    }))
}

/// Whether every byte from `file`'s position on is zero.
fn is_all_zero(file: &mut impl Read) -> io::Result<bool> {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        match file.read(&mut buffer)? {
            0 => return Ok(true),
            n if buffer[..n].iter().any(|&b| b != 0) => return Ok(false),
            _ => {}
        }
    }
}
