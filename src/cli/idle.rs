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

use super::mount::find_mount;
use super::platform;

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
    match find_mount(mountpoint)? {
        Some(entry) if entry.fstype.starts_with("fuse") && entry.source == source => {}
        _ => return Ok(false),
    }
    platform::unmount(mountpoint)?;
    Ok(true)
}

/// Parses a duration: a number and a unit (`s`, `m`, `h`, `d`; seconds without one), or several
/// (`1h30m`). Zero is refused.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "invalid duration '{text}': expected a number and a unit, like 30s, 10m, 1h or 1h30m"
        )
    };
    let text_trimmed = text.trim();
    if text_trimmed.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    let mut rest = text_trimmed;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let seconds = match &rest[..unit_len] {
            "" | "s" | "sec" => 1,
            "m" | "min" => 60,
            "h" => 3600,
            "d" => 86400,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        let part = number.checked_mul(seconds).ok_or_else(bad)?;
        total = total
            .checked_add(Duration::from_secs(part))
            .ok_or_else(bad)?;
    }
    if total.is_zero() {
        return Err(format!(
            "invalid duration '{text}': it must be longer than zero"
        ));
    }
    Ok(total)
}

/// `90s` as `1m30s`.
pub fn format_duration(duration: Duration) -> String {
    let mut secs = duration.as_secs();
    if secs == 0 {
        return format!("{}ms", duration.as_millis());
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

// Every request but `forget` (and `batch_forget`, whose default calls `forget`) counts as use.
// `init` and `destroy` come from mounting and unmounting, not from a user.
#[allow(clippy::too_many_arguments)]
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86400)));
        assert_eq!(parse_duration(" 5min "), Ok(Duration::from_secs(300)));
        for bad in [
            "",
            "s",
            "10x",
            "-1s",
            "1.5h",
            "0s",
            "0",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_format() {
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_secs(600)), "10m");
        assert_eq!(format_duration(Duration::from_secs(2)), "2s");
        assert_eq!(format_duration(Duration::from_millis(300)), "300ms");
    }

    #[test]
    fn the_tick_is_a_tenth_within_bounds() {
        assert_eq!(tick(Duration::from_secs(2)), Duration::from_millis(200));
        assert_eq!(tick(Duration::from_millis(500)), Duration::from_millis(100));
        assert_eq!(tick(Duration::from_secs(3600)), Duration::from_secs(5));
    }
}
