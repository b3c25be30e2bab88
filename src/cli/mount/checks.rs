//! `veilfs mount`'s checks before the password is asked for: the mount point (exit status 7)
//! and FUSE itself (exit status 8), so that a typo or a missing package is told at once.

use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use veilfs::mountinfo;

use veilfs::fs::transport::Transport;

use crate::cli::platform::fusermount_bin;
use crate::cli::{shell_quote, CliError, EXIT_MOUNTPOINT, EXIT_NO_FUSE};

/// Checks the mount point; returns its canonical path. Exit status 7 for every problem.
pub fn check_mountpoint(
    path: &Path,
    cipherdir: &Path,
    nonempty: bool,
) -> Result<PathBuf, CliError> {
    let err = |message: String| CliError::new(EXIT_MOUNTPOINT, message);
    let shown = path.display();
    let inside = || {
        err(format!(
            "mount point {shown} is inside CIPHERDIR {}; choose a directory outside it",
            cipherdir.display()
        ))
    };
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // Creating it there would only get it refused next time.
            if resolve_missing(path).starts_with(cipherdir) {
                return Err(inside());
            }
            return Err(err(format!(
                "mount point {shown} does not exist (create it with 'mkdir {}')",
                shell_quote(path)
            )));
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
            return Err(err(format!(
            "mount point {shown} is a stale mount whose veilfs process is gone; unmount it with \
                 'veilfs umount {shown}'"
        )))
        }
        Err(e) => return Err(err(format!("cannot access mount point {shown}: {e}"))),
    };
    if !meta.is_dir() {
        return Err(err(format!("mount point {shown} is not a directory")));
    }
    let canonical = fs::canonicalize(path)
        .map_err(|e| err(format!("cannot resolve mount point {shown}: {e}")))?;
    match mountinfo::topmost_at(&canonical) {
        Ok(Some(entry)) => {
            return Err(err(format!(
                "{shown} is already a mount point ({} from {}); unmount it first",
                entry.fstype, entry.source
            )))
        }
        Ok(None) => {}
        // No mountinfo (no /proc): a different device than the parent's means a mount point.
        Err(_) => {
            let parent = canonical.parent().unwrap_or(Path::new("/"));
            if canonical == Path::new("/")
                || fs::metadata(parent).is_ok_and(|p| p.dev() != meta.dev())
            {
                return Err(err(format!(
                    "{shown} is already a mount point; unmount it first"
                )));
            }
        }
    }
    if canonical.starts_with(cipherdir) {
        return Err(inside());
    }
    if !nonempty {
        let mut entries = fs::read_dir(&canonical)
            .map_err(|e| err(format!("cannot read mount point {shown}: {e}")))?;
        if entries.next().is_some() {
            return Err(err(format!(
                "mount point {shown} is not empty (mounting would hide its contents; -o nonempty allows it)"
            )));
        }
    }
    Ok(canonical)
}

/// `path` made absolute through its longest existing ancestor, resolved (symlinks followed); the
/// missing rest appended as it is.
fn resolve_missing(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut missing = Vec::new();
    let mut base = absolute.as_path();
    loop {
        if let Ok(resolved) = fs::canonicalize(base) {
            return missing.iter().rev().fold(resolved, |p, name| p.join(name));
        }
        match (base.parent(), base.file_name()) {
            (Some(parent), Some(name)) => {
                missing.push(name.to_os_string());
                base = parent;
            }
            _ => return absolute,
        }
    }
}

pub(super) const FUSE_ADVICE: &str = "install fuse3 (apt-get install fuse3)";

/// Checks that this process can mount a FUSE file system: /dev/fuse exists, a user other than
/// root has fusermount3, and the kernel offers FUSE over io_uring when `transport` demands it.
/// Exit status 8 if not.
pub fn check_fuse(transport: Transport) -> Result<(), CliError> {
    check_dev_fuse()?;
    if transport == Transport::IoUring {
        if let Some(why) = veilfs::fs::transport::uring_unavailable() {
            return Err(CliError::new(
                EXIT_NO_FUSE,
                format!("--transport io-uring: {why}"),
            ));
        }
    }
    Ok(())
}

fn check_dev_fuse() -> Result<(), CliError> {
    // macFUSE has device nodes of its own and loads its kernel extension when mounting: nothing
    // to check beforehand (the other platform differences are in platform.rs).
    if !cfg!(target_os = "linux") {
        return Ok(());
    }
    match fs::metadata("/dev/fuse") {
        Ok(meta) if meta.file_type().is_char_device() => {}
        Ok(_) => return Err(CliError::new(EXIT_NO_FUSE, "/dev/fuse is not a character device")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(CliError::new(
                EXIT_NO_FUSE,
                format!(
                    "/dev/fuse does not exist: FUSE is not available; {FUSE_ADVICE}, or load the module \
                     with 'modprobe fuse' (in a container, pass the device in with --device /dev/fuse)"
                ),
            ))
        }
        Err(e) => return Err(CliError::new(EXIT_NO_FUSE, format!("cannot access /dev/fuse: {e}"))),
    }
    if nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    // fuser opens /dev/fuse itself before it tries fusermount3; most systems make it 0666.
    if let Err(e) = nix::unistd::access(
        "/dev/fuse",
        nix::unistd::AccessFlags::R_OK | nix::unistd::AccessFlags::W_OK,
    ) {
        return Err(CliError::new(
            EXIT_NO_FUSE,
            format!("cannot use /dev/fuse: {}; it must be readable and writable by every user (mode 0666)", e.desc()),
        ));
    }
    if fusermount_bin().is_none() {
        return Err(CliError::new(
            EXIT_NO_FUSE,
            format!("fusermount3 is not in PATH (a user other than root needs it to mount); {FUSE_ADVICE}"),
        ));
    }
    Ok(())
}
