//! `veilfs umount`: unmount a mounted vault.
//!
//! As root, umount(2); otherwise `fusermount3 -u`, which is setuid root and checks that the
//! mount belongs to the caller. Either way the veilfs process serving the mount sees its
//! connection end and exits. Only FUSE mounts are touched: `veilfs umount /home` is refused.

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use veilfs::mountinfo::{self, MOUNTINFO_PATH};

use super::platform::{lazy_unmount, unmount};
use super::{print_stdout, CliError, GlobalArgs, EXIT_BUSY, EXIT_MOUNTPOINT, EXIT_NO_FUSE};

const UMOUNT_HELP: &str = "\
Exit status (besides 0-2, see 'veilfs --help'):
  7\tMOUNTPOINT is not mounted, or is not a FUSE mount
  8\tnot root and no fusermount3 (install fuse3: apt-get install fuse3)
  10\tthe mount point is busy: a process has a file open in it or its working directory there \
(the message names them); close them, or use --lazy

Examples:
  veilfs umount ~/Private
  veilfs umount --lazy ~/Private";

/// `veilfs umount`.
#[derive(Debug, clap::Args)]
#[command(
    about = "Unmount a mounted vault",
    long_about = "Unmount the vault mounted at MOUNTPOINT; its veilfs process then exits.",
    after_help = UMOUNT_HELP
)]
pub struct UmountArgs {
    /// Detach the mount now even if it is busy; it goes away once the last file in it is
    /// closed
    #[arg(short = 'z', long)]
    pub lazy: bool,

    /// Where the vault is mounted
    pub mountpoint: PathBuf,
}

pub fn run(args: UmountArgs, global: &GlobalArgs) -> Result<(), CliError> {
    let shown = args.mountpoint.display();
    let path = absolute(&args.mountpoint)
        .map_err(|e| CliError::new(EXIT_MOUNTPOINT, format!("cannot resolve {shown}: {e}")))?;
    let entry = match mountinfo::topmost_at(&path) {
        Ok(Some(entry)) => entry,
        Ok(None) => {
            let why = if path.exists() || is_stale(&path) {
                "is not mounted"
            } else {
                "does not exist"
            };
            return Err(CliError::new(EXIT_MOUNTPOINT, format!("{shown} {why}")));
        }
        Err(e) => return Err(CliError::io(format!("cannot read {MOUNTINFO_PATH}"), e)),
    };
    if !entry.is_fuse() {
        return Err(CliError::new(
            EXIT_MOUNTPOINT,
            format!(
                "{shown} is not a veilfs mount (it is {} from {}); not unmounting it",
                entry.fstype, entry.source
            ),
        ));
    }

    if args.lazy {
        lazy_unmount(&path).map_err(|e| unmount_error(&args.mountpoint, &path, e))?;
        if !global.quiet {
            // The mount is gone either way: a closed standard output is no failure.
            let _ = print_stdout(&format!(
                "detached {shown}; it is unmounted once the last file in it is closed\n"
            ));
        }
        return Ok(());
    }
    unmount(&path).map_err(|e| unmount_error(&args.mountpoint, &path, e))?;
    if !global.quiet {
        let _ = print_stdout(&format!("unmounted {shown}\n"));
    }
    Ok(())
}

/// Whether `path` is a FUSE mount whose process is gone (stat fails with ENOTCONN).
fn is_stale(path: &Path) -> bool {
    fs::symlink_metadata(path).is_err_and(|e| e.raw_os_error() == Some(libc::ENOTCONN))
}

/// `path` made absolute with its parent resolved, without touching `path` itself: a stale
/// mount cannot be stat'ed.
fn absolute(path: &Path) -> io::Result<PathBuf> {
    let absolute = std::path::absolute(path)?;
    let name = absolute.file_name().filter(|n| n.as_bytes() != b"..");
    match (absolute.parent(), name) {
        (Some(parent), Some(name)) => Ok(fs::canonicalize(parent)?.join(name)),
        _ => fs::canonicalize(&absolute),
    }
}

fn unmount_error(shown: &Path, path: &Path, err: io::Error) -> CliError {
    let shown = shown.display();
    match err.raw_os_error() {
        Some(libc::EBUSY) => {
            let users = users_of(path);
            let who = if users.is_empty() {
                String::new()
            } else {
                format!(" (in use by {})", users.join(", "))
            };
            CliError::new(
                EXIT_BUSY,
                format!(
                    "cannot unmount {shown}: it is busy{who}; close the files and leave the directory, or \
                     use 'veilfs umount --lazy {shown}'"
                ),
            )
        }
        Some(libc::EINVAL) => CliError::new(EXIT_MOUNTPOINT, format!("{shown} is not mounted")),
        Some(libc::EPERM) => CliError::new(
            EXIT_MOUNTPOINT,
            format!("cannot unmount {shown}: not permitted (it was mounted by another user)"),
        ),
        _ if err.kind() == io::ErrorKind::NotFound => CliError::new(
            EXIT_NO_FUSE,
            format!("cannot unmount {shown}: fusermount3 is not in PATH; install fuse3 (apt-get install fuse3)"),
        ),
        _ => CliError::other(format!("cannot unmount {shown}: {err}")),
    }
}

/// The processes using something under `mountpoint` (working directory, root, executable or an
/// open file), as "NAME (pid N)", at most 8. Only the processes this user may inspect are seen.
fn users_of(mountpoint: &Path) -> Vec<String> {
    const MAX: usize = 8;
    let mut users = Vec::new();
    let Ok(procs) = fs::read_dir("/proc") else {
        return users;
    };
    let own = std::process::id();
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == own {
            continue;
        }
        let dir = entry.path();
        let uses =
            |link: &Path| fs::read_link(link).is_ok_and(|target| target.starts_with(mountpoint));
        let mut using = ["cwd", "root", "exe"].iter().any(|l| uses(&dir.join(l)));
        if !using {
            if let Ok(fds) = fs::read_dir(dir.join("fd")) {
                using = fds.flatten().any(|fd| uses(&fd.path()));
            }
        }
        if using {
            let name = fs::read_to_string(dir.join("comm")).unwrap_or_default();
            users.push(format!("{} (pid {pid})", name.trim()));
            if users.len() == MAX {
                users.push("...".to_owned());
                break;
            }
        }
    }
    users
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_keeps_the_last_component_unresolved() {
        let dir = tempfile::tempdir().unwrap();
        let canonical = fs::canonicalize(dir.path()).unwrap();
        assert_eq!(
            absolute(&dir.path().join("missing")).unwrap(),
            canonical.join("missing")
        );
        assert_eq!(
            absolute(&dir.path().join("a/..")).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        fs::create_dir(dir.path().join("a")).unwrap();
        assert_eq!(absolute(&dir.path().join("a/..")).unwrap(), canonical);
    }
}
