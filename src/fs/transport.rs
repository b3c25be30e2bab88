//! How requests travel between the kernel and the daemon: /dev/fuse (read and write, one
//! request per system call each way) or FUSE over io_uring (Linux 6.14+: per-CPU queues in
//! memory shared with the kernel, a reply and the next request in one submission, see
//! the `uring` module). [`Transport`] is the user's choice, [`Plan`] what a mount will try, and
//! [`Negotiated`] what the kernel agreed to at INIT.

use std::fmt;
use std::io;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use fuser::{InitFlags, KernelConfig};

/// The kernel's switch for FUSE over io_uring (off by default; root turns it on at run time).
pub const URING_SWITCH: &str = "/sys/module/fuse/parameters/enable_uring";

/// `--transport` / `-o transport=`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Transport {
    /// io_uring where the kernel offers it, /dev/fuse otherwise (silently but for one log line).
    #[default]
    Auto,
    /// io_uring or fail.
    IoUring,
    /// /dev/fuse only.
    DevFuse,
}

impl Transport {
    pub const NAMES: [&'static str; 3] = ["auto", "io-uring", "dev-fuse"];
}

impl FromStr for Transport {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Transport::Auto),
            "io-uring" | "io_uring" => Ok(Transport::IoUring),
            "dev-fuse" | "dev_fuse" => Ok(Transport::DevFuse),
            _ => Err(format!(
                "unknown transport {s:?} (expected {})",
                Transport::NAMES.join(", ")
            )),
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Auto => "auto",
            Transport::IoUring => "io-uring",
            Transport::DevFuse => "dev-fuse",
        })
    }
}

/// Why io_uring cannot be used here, in words for the log or an error.
pub fn uring_unavailable() -> Option<String> {
    #[cfg(not(target_os = "linux"))]
    {
        Some("FUSE over io_uring exists on Linux only".to_owned())
    }
    #[cfg(target_os = "linux")]
    {
        match std::fs::read_to_string(URING_SWITCH) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Some(format!(
                    "this kernel has no FUSE over io_uring ({URING_SWITCH} does not exist; \
                     it needs Linux 6.14 or later)"
                ))
            }
            Err(e) => return Some(format!("cannot read {URING_SWITCH}: {e}")),
            Ok(value) if value.trim() != "Y" => {
                return Some(format!(
                    "FUSE over io_uring is switched off ({URING_SWITCH} is {}; as root: \
                     echo Y > {URING_SWITCH})",
                    value.trim()
                ))
            }
            Ok(_) => {}
        }
        super::uring::probe()
            .err()
            .map(|e| format!("cannot set up an io_uring: {e}"))
    }
}

/// What a mount will try, decided before mounting.
#[derive(Clone, Debug)]
pub struct Plan {
    pub transport: Transport,
    /// Entries per queue (requests each CPU's queue can hold at once).
    pub queue_depth: usize,
}

/// Entries per queue unless the user says: each holds a payload buffer of the largest request
/// (1 MiB), touched only as far as requests use it.
pub const DEFAULT_QUEUE_DEPTH: usize = 8;
/// More than this buys nothing: the kernel queues what does not fit.
pub const MAX_QUEUE_DEPTH: usize = 128;

impl Default for Plan {
    fn default() -> Self {
        Plan {
            transport: Transport::Auto,
            queue_depth: DEFAULT_QUEUE_DEPTH,
        }
    }
}

impl Plan {
    /// Whether to ask the kernel for io_uring at INIT: `Err` when the user demanded it and this
    /// machine cannot; for `auto`, the reason it will not is logged once.
    pub fn wants_uring(&self) -> io::Result<bool> {
        match self.transport {
            Transport::DevFuse => Ok(false),
            Transport::IoUring => match uring_unavailable() {
                None => Ok(true),
                Some(why) => Err(io::Error::new(io::ErrorKind::Unsupported, why)),
            },
            Transport::Auto => match uring_unavailable() {
                None => Ok(true),
                Some(why) => {
                    tracing::info!("{why}; serving through /dev/fuse");
                    Ok(false)
                }
            },
        }
    }
}

/// Whether the kernel agreed to io_uring at INIT: set by the filesystem's `init`, read by the
/// serving loop once the session is up.
#[derive(Clone, Debug, Default)]
pub struct Negotiated {
    wanted: bool,
    granted: Arc<AtomicBool>,
}

impl Negotiated {
    pub fn new(wanted: bool) -> Self {
        Negotiated {
            wanted,
            granted: Arc::default(),
        }
    }

    /// In `Filesystem::init`: asks for io_uring when wanted and the kernel offers it.
    pub fn offer(&self, config: &mut KernelConfig) {
        if self.wanted
            && config
                .add_capabilities(InitFlags::FUSE_OVER_IO_URING)
                .is_ok()
        {
            self.granted.store(true, Ordering::Relaxed);
        }
    }

    pub fn wanted(&self) -> bool {
        self.wanted
    }

    pub fn granted(&self) -> bool {
        self.granted.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in Transport::NAMES {
            assert_eq!(name.parse::<Transport>().unwrap().to_string(), name);
        }
        assert_eq!("io_uring".parse::<Transport>(), Ok(Transport::IoUring));
        assert!("uring".parse::<Transport>().unwrap_err().contains("auto"));
    }
}
