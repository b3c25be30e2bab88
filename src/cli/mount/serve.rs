//! Serving a mounted vault until it is unmounted, in the foreground or in the daemon: the
//! mount itself, the signals that unmount (SIGINT, SIGTERM, SIGHUP, through a thread that waits
//! for them), the idle timer ([`super::idle`]), sd_notify for systemd, and what the serving
//! process needs set first (its open file limit, its standard descriptors).

use std::fs::File;
use std::io::{self, IsTerminal};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::Duration;

use nix::sys::signal::{SigSet, Signal};
use nix::sys::stat::Mode;

use fuser::Filesystem;

use veilfs::fs::MountOptions;
use veilfs::mountinfo;

use super::checks::FUSE_ADVICE;
use super::daemon::ReadyPipe;
use super::{idle, Said, Started};
use crate::cli::platform::{self, lazy_unmount};
use crate::cli::{harden, print_stdout, CliError, EXIT_MOUNT_FAILED, EXIT_NO_FUSE};

/// Raises the soft limit on open files to the hard one, as gocryptfs does: the daemon holds one
/// backing file per open plaintext file and a directory handle per request in flight, and a
/// desktop's default soft limit (1024) would make every request fail with EMFILE once a program
/// holds a thousand files open through the mount.
pub(super) fn raise_open_file_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                tracing::debug!("cannot raise the open file limit from {soft} to {hard}: {e}");
            }
        }
    }
}

/// Makes sure file descriptors 0, 1 and 2 are open (on /dev/null if they were closed), so that
/// /dev/fuse or a pipe never lands on one of them.
pub(super) fn ensure_std_fds() {
    loop {
        match File::options().read(true).write(true).open("/dev/null") {
            Ok(file) if file.as_raw_fd() > 2 => break,
            // Keep it open: it now fills one of 0, 1, 2.
            Ok(file) => std::mem::forget(file),
            Err(_) => break,
        }
    }
}

/// The signals that unmount.
fn unmount_signals() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGHUP);
    set
}

/// A mount error as a CLI error: exit status 8 when FUSE is missing, 9 otherwise.
fn mount_error(mountpoint: &Path, err: io::Error) -> CliError {
    if err.kind() == io::ErrorKind::NotFound && !Path::new("/dev/fuse").exists() {
        return CliError::new(
            EXIT_NO_FUSE,
            format!("/dev/fuse does not exist; {FUSE_ADVICE}"),
        );
    }
    CliError::new(
        EXIT_MOUNT_FAILED,
        format!("cannot mount {}: {err}", mountpoint.display()),
    )
}

/// Mounts and serves until unmounted. `ready` (the daemon's pipe to its parent) gets the outcome
/// of the mount: "ok", or the error.
pub(super) fn serve<F: Filesystem>(
    start: impl FnOnce(&Path, &MountOptions) -> Started<F>,
    mountpoint: &Path,
    options: &MountOptions,
    idle: Option<Duration>,
    mut ready: Option<ReadyPipe>,
    said: Option<Said>,
) -> Result<(), CliError> {
    // In the foreground, the process systemd started is this one: it may report readiness.
    let foreground = ready.is_none();
    // Again in the daemon: memory locks do not survive a fork.
    if let Some(warning) = harden::keys_stay_in_memory().warning() {
        tracing::warn!("{warning}");
    }
    // The daemon relies on umask 0: the kernel hands it modes already masked by the caller's umask.
    nix::sys::stat::umask(Mode::empty());

    // Block the signals before any thread starts, so that every thread inherits the mask and only
    // the signal thread below receives them.
    let signals = unmount_signals();
    if let Err(e) = signals.thread_block() {
        let err = CliError::other(format!("cannot block signals: {e}"));
        if let Some(ready) = ready.take() {
            ready.fail(&err);
        }
        return Err(err);
    }

    let (mut session, requests) = match start(mountpoint, options) {
        Ok(started) => started,
        Err(e) => {
            let err = mount_error(mountpoint, e);
            if let Some(ready) = ready.take() {
                ready.fail(&err);
            }
            return Err(err);
        }
    };
    tracing::info!("mounted {} at {}", options.fsname, mountpoint.display());

    let unmounter = session.unmount_callable();
    let signal_mountpoint = mountpoint.to_path_buf();
    let source = options.fsname.clone();
    let spawned = std::thread::Builder::new()
        .name("veilfs-signals".into())
        .spawn(move || wait_for_signals(signals, unmounter, &signal_mountpoint, &source))
        .and_then(|_| match idle {
            None => Ok(()),
            Some(idle) => {
                let (mountpoint, source) = (mountpoint.to_path_buf(), options.fsname.clone());
                std::thread::Builder::new()
                    .name("veilfs-idle".into())
                    .spawn(move || idle::watch(requests, idle, mountpoint, source))
                    .map(drop)
            }
        });
    if let Err(e) = spawned {
        let err = CliError::other(format!("cannot start a thread: {e}"));
        if let Some(ready) = ready.take() {
            ready.fail(&err);
        }
        let _ = session.unmount();
        return Err(err);
    }

    // The mount is live: `Session::new` has answered the kernel's INIT, and requests queue in the
    // kernel until `run` serves them.
    if let Some(ready) = ready.take() {
        ready.succeed();
    }
    if foreground {
        sd_notify(&format!("READY=1\nSTATUS=Serving {}", mountpoint.display()));
        if let Some(said) = &said {
            // Under systemd, stopping the service unmounts; on a terminal, Ctrl-C does.
            let interactive =
                io::stdin().is_terminal() && std::env::var_os("NOTIFY_SOCKET").is_none();
            said.mounted(if interactive { "; Ctrl-C unmounts" } else { "" });
        }
    }
    let result = session.run();
    tracing::info!("unmounted {}", mountpoint.display());
    if let (true, Some(said)) = (foreground, &said) {
        let _ = print_stdout(&format!("unmounted {}\n", said.mountpoint));
    }
    result.map_err(|e| CliError::other(format!("serving {} failed: {e}", mountpoint.display())))
}

/// The signal thread: the first signal unmounts (lazily when the mount point is busy), which
/// ends `Session::run`; a second one exits at once.
fn wait_for_signals(
    signals: SigSet,
    mut unmounter: fuser::SessionUnmounter,
    mountpoint: &Path,
    source: &str,
) {
    let Ok(signal) = signals.wait() else { return };
    tracing::info!("{signal}: unmounting {}", mountpoint.display());
    sd_notify("STOPPING=1");
    let busy = match unmounter.unmount() {
        // As a user other than root, fuser runs `fusermount3 -u` and ignores its failure. Only
        // this mount counts: under a systemd automount, an autofs mount stays below it.
        Ok(()) => mountinfo::is_veilfs_mount_of(mountpoint, source).unwrap_or(false),
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => true,
        Err(e) => {
            tracing::error!("cannot unmount {}: {e}", mountpoint.display());
            false
        }
    };
    if busy {
        tracing::warn!(
            "{} is busy; detaching it now, it is served until the last open file is closed",
            mountpoint.display()
        );
        if let Err(e) = lazy_unmount(mountpoint) {
            tracing::error!("cannot detach {}: {e}", mountpoint.display());
        }
    }
    if let Ok(signal) = signals.wait() {
        tracing::warn!("{signal} again: exiting without waiting for the mount to be released");
        std::process::exit(128 + signal as i32);
    }
}

/// Tells systemd about the service's state (sd_notify(3)), when it asked for it by setting
/// `$NOTIFY_SOCKET`. Failures are logged and otherwise ignored.
fn sd_notify(state: &str) {
    let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    if let Err(e) = platform::send_notify(&socket, state.as_bytes()) {
        tracing::warn!(
            "cannot notify systemd through {}: {e}",
            Path::new(&socket).display()
        );
    }
}
