//! Logging: tracing events go to stderr, or, once `veilfs mount` has detached from the terminal,
//! to syslog (journald or rsyslog) as RFC 3164-style datagrams on the syslog socket. Without a
//! syslog socket, the lines are dropped.
//!
//! What is logged never includes a password, a key, or a plaintext name or path inside the vault:
//! the filesystem logs backing (encrypted) paths, and fuser's own per-request debug lines, which
//! carry plaintext names, are capped at `info` unless `RUST_LOG` asks for them explicitly (and at
//! `error` below -vv).

use std::ffi::OsString;
use std::io::{self, Write};
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

use super::platform::SYSLOG_SOCKET;

/// Environment variable naming another syslog socket than the platform's (tests use it).
pub const SOCKET_ENV: &str = "VEILFS_SYSLOG_SOCKET";

/// Set once the process has detached: log lines go to syslog from then on.
static TO_SYSLOG: AtomicBool = AtomicBool::new(false);
/// The connected syslog socket, or `None` when there is none (then lines are dropped).
static SYSLOG: OnceLock<Option<Syslog>> = OnceLock::new();

struct Syslog {
    socket: Mutex<UnixDatagram>,
    path: OsString,
}

/// Sets up logging to stderr: warnings by default, `info` with -v, `debug` with -vv, `trace`
/// with -vvv, errors only with -q. `RUST_LOG`, when set, overrides all of this.
pub fn init(verbose: u8, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    // fuser logs every request, plaintext names included, at debug: never unless RUST_LOG asks.
    // Its warnings are noise for a user (`[Not Implemented] ioctl` on every terminal check of a
    // file, a failed unmount of what `umount` already unmounted): only from -vv on.
    let fuser = if !quiet && verbose >= 2 {
        "info"
    } else {
        "error"
    };
    let default = format!("{level},fuser={fuser}");
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(LogWriter)
        .with_ansi(false)
        .with_target(false)
        .without_time()
        .try_init();
}

/// Sends log lines to syslog from now on (called by the daemon once its stderr is /dev/null).
pub fn to_syslog() {
    SYSLOG.get_or_init(|| {
        let path = std::env::var_os(SOCKET_ENV).unwrap_or_else(|| SYSLOG_SOCKET.into());
        let socket = UnixDatagram::unbound().ok()?;
        socket.connect(&path).ok()?;
        Some(Syslog {
            socket: Mutex::new(socket),
            path,
        })
    });
    TO_SYSLOG.store(true, Ordering::SeqCst);
}

/// The `MakeWriter` of the subscriber: stderr, or a syslog line once detached.
struct LogWriter;

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = Target;

    fn make_writer(&'a self) -> Target {
        self.make_for_level(Level::INFO)
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Target {
        self.make_for_level(*meta.level())
    }
}

impl LogWriter {
    fn make_for_level(&self, level: Level) -> Target {
        if TO_SYSLOG.load(Ordering::Relaxed) {
            Target::Syslog(SyslogLine {
                level,
                buf: Vec::new(),
            })
        } else {
            Target::Stderr(io::stderr())
        }
    }
}

enum Target {
    Stderr(io::Stderr),
    Syslog(SyslogLine),
}

impl Write for Target {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Target::Stderr(stderr) => stderr.write(buf),
            Target::Syslog(line) => {
                line.buf.extend_from_slice(buf);
                Ok(buf.len())
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Target::Stderr(stderr) => stderr.flush(),
            Target::Syslog(_) => Ok(()),
        }
    }
}

/// One formatted event, sent as one datagram when dropped.
struct SyslogLine {
    level: Level,
    buf: Vec<u8>,
}

impl Drop for SyslogLine {
    fn drop(&mut self) {
        let Some(Some(syslog)) = SYSLOG.get() else {
            return;
        };
        let text = String::from_utf8_lossy(&self.buf);
        let message = syslog_message(self.level, std::process::id(), &text);
        let Ok(socket) = syslog.socket.lock() else {
            return;
        };
        if socket.send(message.as_bytes()).is_err() {
            // syslog restarted: its socket is new; connect again once.
            if socket.connect(&syslog.path).is_ok() {
                let _ = socket.send(message.as_bytes());
            }
        }
    }
}

/// Facility `daemon`.
const FACILITY_DAEMON: u8 = 3;

/// `<PRI>veilfs[PID]: MESSAGE`: RFC 3164 without the timestamp and host name, which syslog
/// adds. The level word the formatter puts first is dropped: the priority carries it.
fn syslog_message(level: Level, pid: u32, formatted: &str) -> String {
    let severity = match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    };
    let text = formatted.trim();
    let text = text
        .strip_prefix(level.as_str())
        .map_or(text, str::trim_start);
    // One line: newlines would start fake entries in a plain-text log.
    let text = text.replace(['\n', '\r'], " ");
    format!("<{}>veilfs[{pid}]: {text}", FACILITY_DAEMON * 8 + severity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syslog_lines_carry_the_priority_and_drop_the_level_word() {
        assert_eq!(
            syslog_message(Level::INFO, 42, " INFO mounted /a at /b\n"),
            "<30>veilfs[42]: mounted /a at /b"
        );
        assert_eq!(
            syslog_message(Level::ERROR, 7, "ERROR cannot\nunmount\n"),
            "<27>veilfs[7]: cannot unmount"
        );
        assert_eq!(
            syslog_message(Level::WARN, 1, " WARN x"),
            "<28>veilfs[1]: x"
        );
        assert_eq!(
            syslog_message(Level::DEBUG, 1, "DEBUG x"),
            "<31>veilfs[1]: x"
        );
    }
}
