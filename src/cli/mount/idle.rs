//! `--idle`: unmount after a time without filesystem requests.
//!
//! The adapter counts the requests that reach it (`VeilFs::request_counter`: all but the kernel's
//! `forget`s, which come from cache eviction, not from a user); [`watch`] runs in its own thread
//! and, once the count has not moved for the idle time, unmounts with a plain umount(2) (or
//! `fusermount3 -u`). That fails with EBUSY while a file is open in the mount or a process has its
//! working directory there: then it tries again after another idle period. A successful unmount
//! ends the session, and the process exits as after `veilfs umount`.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use veilfs::mountinfo;

use crate::cli::duration::format_duration;
use crate::cli::platform;

/// How often the watcher looks at the request count: a tenth of the idle time, between 0.1 and
/// 5 seconds.
fn tick(idle: Duration) -> Duration {
    (idle / 10).clamp(Duration::from_millis(100), Duration::from_secs(5))
}

/// Watches `requests` and unmounts `mountpoint` once it has not changed for `idle`; returns
/// after unmounting. `source` is the mount's source in the mount table (the backing directory):
/// only a mount with that source is unmounted, never whatever else is mounted there.
pub fn watch(requests: Arc<AtomicU64>, idle: Duration, mountpoint: PathBuf, source: String) {
    let tick = tick(idle);
    let mut seen = requests.load(Ordering::Relaxed);
    let mut quiet_since = Instant::now();
    loop {
        std::thread::sleep(tick);
        let now = requests.load(Ordering::Relaxed);
        if now != seen {
            seen = now;
            quiet_since = Instant::now();
            continue;
        }
        if quiet_since.elapsed() < idle {
            continue;
        }
        match unmount_if_ours(&mountpoint, &source) {
            Ok(true) => {
                tracing::info!(
                    "{} was idle for {}: unmounted",
                    mountpoint.display(),
                    format_duration(idle)
                );
                return;
            }
            Ok(false) => {
                tracing::info!(
                    "{} is no longer mounted by this process; stopping the idle timer",
                    mountpoint.display()
                );
                return;
            }
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                tracing::debug!(
                    "{} is idle but busy (open files or a working directory in it); trying again in {}",
                    mountpoint.display(),
                    format_duration(idle)
                );
            }
            Err(e) => tracing::warn!(
                "idle unmount of {} failed: {e}; trying again in {}",
                mountpoint.display(),
                format_duration(idle)
            ),
        }
        quiet_since = Instant::now();
    }
}

/// Unmounts `mountpoint` if the topmost mount there is a FUSE mount of `source`; `Ok(false)` if
/// it is not (somebody else unmounted it, or mounted something on top).
fn unmount_if_ours(mountpoint: &Path, source: &str) -> io::Result<bool> {
    if !mountinfo::is_veilfs_mount_of(mountpoint, source)? {
        return Ok(false);
    }
    platform::unmount(mountpoint)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tick_is_a_tenth_within_bounds() {
        assert_eq!(tick(Duration::from_secs(2)), Duration::from_millis(200));
        assert_eq!(tick(Duration::from_millis(500)), Duration::from_millis(100));
        assert_eq!(tick(Duration::from_secs(3600)), Duration::from_secs(5));
    }
}
