//! One veilfs process per vault per machine: the mount daemon, or `fsck --repair`.
//!
//! The lock is `flock(LOCK_EX | LOCK_NB)` on a handle of CIPHERDIR itself (the directory, not a
//! file in it): it lives in the kernel of this machine, so no sync tool ever sees or copies it,
//! and it goes away with the last process holding it, even one killed with SIGKILL, so a crash
//! never leaves a stale lock behind. The lock belongs to the open file description: a daemon
//! that forks keeps it (parent and child share the description; the parent's exit closes only
//! its own descriptor), and nothing here ever unlocks explicitly, which would release the lock
//! for the daemon too. The handle is close-on-exec, so the commands veilfs runs (`--extpass`,
//! fusermount3) do not inherit it.
//!
//! On a network file system the lock is whatever that file system makes of flock (NFS turns it
//! into a lock on the server); where flock is not supported at all, veilfs warns and goes on
//! without it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use veilfs::backing::Dir;
use veilfs::mountinfo;

use super::{CliError, EXIT_BUSY};

/// How long a lock held with no mount of the vault is waited for: a daemon whose mount is gone
/// exits within milliseconds.
const EXIT_GRACE: Duration = Duration::from_secs(3);

/// The lock on a vault, held until this process (and every process forked from it while it was
/// held) has exited or dropped it.
#[derive(Debug)]
pub struct VaultLock {
    // Closing the handle is all dropping does: see the module documentation.
    _dir: Option<Dir>,
}

/// Who holds a vault's lock, as far as this machine tells.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Holder {
    /// Where the vault is mounted, from /proc/self/mountinfo.
    pub mountpoint: Option<PathBuf>,
    /// The process holding the lock, from /proc.
    pub pid: Option<u32>,
}

/// What the lock is for: it decides the message when another process holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    Mount,
    Repair,
    Rekey,
}

impl VaultLock {
    /// Takes the lock on `cipherdir` (canonical) without waiting. Exit status 10 (busy) when
    /// another process holds it, with a message saying where the vault is mounted and by which
    /// process, when this machine tells.
    pub fn acquire(cipherdir: &Path, purpose: Purpose) -> Result<VaultLock, CliError> {
        let dir = Dir::open_root(cipherdir)
            .map_err(|e| CliError::io(format!("cannot open {}", cipherdir.display()), e))?;
        Self::acquire_at(dir, cipherdir, purpose)
    }

    /// [`Self::acquire`] through `dir`, a handle of `cipherdir` (or a copy of one: the lock
    /// belongs to the open file description, which copies share).
    pub fn acquire_at(dir: Dir, cipherdir: &Path, purpose: Purpose) -> Result<VaultLock, CliError> {
        let started = Instant::now();
        let err = loop {
            match dir.try_lock() {
                Ok(true) => return Ok(VaultLock { _dir: Some(dir) }),
                Ok(false) => {
                    let holder = find_holder(cipherdir, &dir);
                    // Not mounted, yet locked: most likely the daemon of a mount that was just
                    // unmounted, still on its way out (`umount` returns before it has exited),
                    // so `umount; mount` in a script must not fail. Anything else is refused
                    // at once.
                    if holder.mountpoint.is_none() && started.elapsed() < EXIT_GRACE {
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    }
                    return Err(CliError::new(
                        EXIT_BUSY,
                        busy_message(cipherdir, &holder, purpose),
                    ));
                }
                Err(e) => break e,
            }
        };
        // ENOLCK, EOPNOTSUPP, EINVAL: a file system without flock. Better to go on than to
        // refuse every mount there.
        tracing::warn!(
            "cannot lock {} ({err}): nothing stops a second veilfs process from using this vault \
             at the same time",
            cipherdir.display()
        );
        Ok(VaultLock { _dir: None })
    }
}

/// The message for a vault whose lock another process holds.
pub fn busy_message(cipherdir: &Path, holder: &Holder, purpose: Purpose) -> String {
    let shown = cipherdir.display();
    let mut details = Vec::new();
    if let Some(mountpoint) = &holder.mountpoint {
        details.push(format!("at {}", mountpoint.display()));
    }
    if let Some(pid) = holder.pid {
        details.push(format!("by process {pid}"));
    }
    let details = if details.is_empty() {
        String::new()
    } else {
        format!(" ({})", details.join(", "))
    };
    let what = if holder.mountpoint.is_some() {
        format!("{shown} is already mounted{details}")
    } else {
        // Locked, but not (yet, or no longer) in the mount table: a mount starting or ending,
        // an `fsck --repair`, or a mount in another mount namespace.
        format!("{shown} is already mounted or being repaired by another veilfs process{details}")
    };
    match purpose {
        Purpose::Mount => format!("{what}; one mount per vault on a machine"),
        Purpose::Repair => format!(
            "{what}; unmount it before 'fsck --repair' (plain 'fsck' only reads, and may run \
             while it is mounted)"
        ),
        Purpose::Rekey => format!("{what}; unmount it before its keys change"),
    }
}

/// Where `cipherdir` is mounted and which process holds its lock, as far as /proc tells.
fn find_holder(cipherdir: &Path, dir: &Dir) -> Holder {
    let mountpoint = mountinfo::read().ok().and_then(|entries| {
        let source = cipherdir.to_string_lossy();
        entries
            .into_iter()
            .find(|m| m.is_veilfs_of(&source))
            .map(|m| m.mountpoint)
    });
    Holder {
        mountpoint,
        pid: lock_holder(dir, cipherdir),
    }
}

/// The process holding a flock on the directory `dir` (at `path`). /proc/locks names the process that took
/// the lock, which for a daemon is the parent that forked it and has exited since; so the
/// descriptors of the processes are searched for one whose fdinfo shows the lock. Only
/// descriptors that lead to `path` are looked at (readlink of /proc/PID/fd/N asks no file
/// system, so a hung mount elsewhere cannot make this hang).
#[cfg(target_os = "linux")]
fn lock_holder(dir: &Dir, path: &Path) -> Option<u32> {
    use std::fs;
    let stat = dir.stat_self().ok()?;
    let (dev, ino) = (stat.st_dev, stat.st_ino);
    let key = format!(
        " {:02x}:{:02x}:{ino} ",
        nix::sys::stat::major(dev),
        nix::sys::stat::minor(dev)
    );
    let holds = |pid: u32, fd: &str| {
        fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).is_ok_and(|info| {
            info.lines()
                .any(|l| l.starts_with("lock:") && l.contains("FLOCK") && l.contains(&key))
        })
    };
    // Whoever took the lock, if it still holds it (a foreground mount, fsck --repair).
    let locks = fs::read_to_string("/proc/locks").ok()?;
    let taker = locks
        .lines()
        .find(|l| l.contains(" FLOCK ") && l.contains(&key))
        .and_then(|l| l.split_whitespace().nth(4))
        .and_then(|pid| pid.parse::<u32>().ok());
    let me = std::process::id();
    let holds_fd_to_path = |pid: u32| -> bool {
        let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
            return false;
        };
        fds.flatten().any(|fd| {
            fs::read_link(fd.path()).is_ok_and(|target| target == path)
                && holds(pid, &fd.file_name().to_string_lossy())
        })
    };
    if let Some(taker) = taker.filter(|&p| p != me && holds_fd_to_path(p)) {
        return Some(taker);
    }
    let mut pids: Vec<u32> = fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .collect();
    // The newest first: a daemon is forked after the process that took the lock.
    pids.sort_unstable_by(|a, b| b.cmp(a));
    pids.into_iter().find(|&pid| holds_fd_to_path(pid))
}

#[cfg(not(target_os = "linux"))]
fn lock_holder(_dir: &Dir, _path: &Path) -> Option<u32> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn a_second_lock_is_refused_and_names_the_holder() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = fs::canonicalize(tmp.path()).unwrap();
        let first = VaultLock::acquire(&dir, Purpose::Mount).unwrap();
        let err = VaultLock::acquire(&dir, Purpose::Repair).unwrap_err();
        assert_eq!(err.code(), EXIT_BUSY);
        let message = err.to_string();
        assert!(
            message.contains("already mounted or being repaired"),
            "{message}"
        );
        assert!(message.contains("fsck --repair"), "{message}");
        drop(first);
        drop(VaultLock::acquire(&dir, Purpose::Mount).unwrap());
    }

    #[test]
    fn busy_messages() {
        let dir = Path::new("/v");
        let both = Holder {
            mountpoint: Some("/m".into()),
            pid: Some(42),
        };
        assert_eq!(
            busy_message(dir, &both, Purpose::Mount),
            "/v is already mounted (at /m, by process 42); one mount per vault on a machine"
        );
        let pid_only = Holder {
            mountpoint: None,
            pid: Some(42),
        };
        assert!(busy_message(dir, &pid_only, Purpose::Repair)
            .starts_with("/v is already mounted or being repaired by another veilfs process (by process 42); unmount it"));
        assert!(busy_message(dir, &Holder::default(), Purpose::Mount)
            .starts_with("/v is already mounted or being repaired by another veilfs process;"));
    }
}
