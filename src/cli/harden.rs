//! Keeping key material out of core dumps and swap. Every veilfs process holds a key at some
//! point (the mount daemon for its whole life; init, passwd, slot, fsck and rekey briefly), so
//! every one starts with [`keys_stay_in_memory`].
//!
//! - No core dump: `RLIMIT_CORE` 0 (a core file in the working directory) and, on Linux, not
//!   dumpable (`PR_SET_DUMPABLE`), which also covers a `core_pattern` that pipes the dump to a
//!   collector (systemd-coredump, apport: they ignore `RLIMIT_CORE`) and keeps other processes
//!   of the same user from reading this one's memory through ptrace or /proc.
//! - No swap, on Linux: every page locked as it is first touched (`mlockall` with
//!   `MCL_ONFAULT`, so nothing is faulted in ahead: the daemon's memory does not grow), when the
//!   process may lock without bound (root, or `RLIMIT_MEMLOCK` unlimited). With a bounded
//!   limit (8 MiB for most users) locking everything would make allocations fail once the bound
//!   is reached, so veilfs then locks nothing and says so once: raise the limit (systemd's
//!   `LimitMEMLOCK=infinity`) or use encrypted swap.

use nix::sys::resource::{setrlimit, Resource};

/// What [`keys_stay_in_memory`] could do (elsewhere than on Linux, only fail).
#[derive(Debug, PartialEq, Eq)]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub enum MemoryLock {
    Locked,
    /// Not allowed to lock without bound: the limit, in bytes.
    Limited(u64),
    /// `mlockall` failed, or the platform has no `MCL_ONFAULT`.
    Failed(String),
}

/// Turns core dumps off and locks memory where it can (see the module documentation).
pub fn keys_stay_in_memory() -> MemoryLock {
    if let Err(e) = setrlimit(Resource::RLIMIT_CORE, 0, 0) {
        tracing::debug!("cannot turn core dumps off (RLIMIT_CORE): {e}");
    }
    #[cfg(target_os = "linux")]
    if let Err(e) = nix::sys::prctl::set_dumpable(false) {
        tracing::debug!("cannot make this process undumpable: {e}");
    }
    lock_memory()
}

#[cfg(target_os = "linux")]
fn lock_memory() -> MemoryLock {
    use nix::sys::mman::{mlockall, MlockAllFlags};
    use nix::sys::resource::{getrlimit, RLIM_INFINITY};
    let unbounded = nix::unistd::geteuid().is_root()
        || getrlimit(Resource::RLIMIT_MEMLOCK).is_ok_and(|(soft, _)| soft == RLIM_INFINITY);
    if !unbounded {
        let limit = getrlimit(Resource::RLIMIT_MEMLOCK).map_or(0, |(soft, _)| soft);
        return MemoryLock::Limited(limit);
    }
    let flags = MlockAllFlags::MCL_CURRENT
        | MlockAllFlags::MCL_FUTURE
        | MlockAllFlags::from_bits_retain(libc::MCL_ONFAULT);
    match mlockall(flags) {
        Ok(()) => MemoryLock::Locked,
        Err(e) => MemoryLock::Failed(e.to_string()),
    }
}

#[cfg(not(target_os = "linux"))]
fn lock_memory() -> MemoryLock {
    // macOS has no MCL_ONFAULT: locking all memory would fault every mapping in.
    MemoryLock::Failed("not supported on this platform".into())
}

impl MemoryLock {
    /// The one warning a mount logs when memory is not locked; `None` when it is.
    pub fn warning(&self) -> Option<String> {
        let why = match self {
            MemoryLock::Locked => return None,
            MemoryLock::Limited(limit) => format!(
                "the locked-memory limit is {} KiB (raise it: 'ulimit -l unlimited', or \
                 LimitMEMLOCK=infinity in a systemd unit)",
                limit / 1024
            ),
            MemoryLock::Failed(e) => e.clone(),
        };
        Some(format!(
            "memory is not locked, so keys may be written to swap unless swap is encrypted: {why}"
        ))
    }
}
