//! `veilfs mount` in the background: the process forks once the vault is unlocked; the child
//! leaves the terminal's session and serves, and tells the parent through a pipe whether the
//! mount is live, so that the parent exits 0 only when the next command can use it.
//!
//! The fork happens while the process has a single thread: fuser starts its worker threads only
//! in `Session::run`, which the child calls after the fork.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;

use nix::unistd::{ForkResult, Pid};

use super::Said;
use crate::cli::{log, platform, CliError, EXIT_FAILURE, EXIT_MOUNT_FAILED};

/// The child's end of the readiness pipe. One line: `ok`, or `err CODE MESSAGE`.
pub(super) struct ReadyPipe(File);

impl ReadyPipe {
    /// The mount is live.
    pub fn succeed(mut self) {
        // The parent may be gone (killed while waiting); the mount stays, so does this process.
        let _ = self.0.write_all(b"ok\n");
    }

    /// The mount failed with `err`, which the parent exits with.
    pub fn fail(mut self, err: &CliError) {
        let _ = self
            .0
            .write_all(format!("err {} {err}\n", err.code()).as_bytes());
    }
}

/// Forks; the child detaches and runs `serve`, which reports the mount's outcome through the
/// pipe; the parent waits for the child's word and returns it. `serve` (and what it owns, such
/// as the unlocked vault) is dropped in the parent.
pub(super) fn daemonize(
    said: Option<Said>,
    serve: impl FnOnce(ReadyPipe) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let threads = fs::read_dir("/proc/self/task").map_or(1, |tasks| tasks.count());
    if threads > 1 {
        return Err(CliError::other(format!(
            "internal error: cannot fork with {threads} threads running (use --foreground)"
        )));
    }
    let (read_end, write_end) =
        platform::cloexec_pipe().map_err(|e| CliError::io("cannot create a pipe", e.into()))?;
    let _ = io::stdout().flush();
    let _ = io::stderr().flush();

    // SAFETY: the process has a single thread here (checked above: the password prompt, the KDF
    // and the extpass command start none, and fuser starts its threads only in `Session::run`,
    // which the child calls after the fork), so the child may run any code, not only
    // async-signal-safe functions.
    #[allow(unsafe_code)]
    let forked = unsafe { nix::unistd::fork() };
    match forked {
        Err(e) => Err(CliError::io("cannot fork", e.into())),
        Ok(ForkResult::Parent { child }) => {
            drop(write_end);
            drop(serve);
            wait_until_ready(read_end, child, said)
        }
        Ok(ForkResult::Child) => {
            drop(read_end);
            let ready = ReadyPipe(File::from(write_end));
            if let Err(err) = detach() {
                ready.fail(&err);
                return Err(err);
            }
            serve(ready)
        }
    }
}

/// The child's side of daemonizing: a new session without a terminal, / as its directory (so
/// it holds no other mount busy), and its standard streams on /dev/null.
fn detach() -> Result<(), CliError> {
    nix::unistd::setsid().map_err(|e| CliError::io("setsid", e.into()))?;
    nix::unistd::chdir("/").map_err(|e| CliError::io("cannot change directory to /", e.into()))?;
    let null: OwnedFd = File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| CliError::io("cannot open /dev/null", e))?
        .into();
    nix::unistd::dup2_stdin(&null)
        .and_then(|()| nix::unistd::dup2_stdout(&null))
        .and_then(|()| nix::unistd::dup2_stderr(&null))
        .map_err(|e| {
            CliError::io(
                "cannot redirect the standard streams to /dev/null",
                e.into(),
            )
        })?;
    // Only the process systemd started may report to it; the daemon is another one. (Safe here:
    // the child has a single thread until it mounts.)
    std::env::remove_var("NOTIFY_SOCKET");
    log::to_syslog();
    Ok(())
}

/// The parent's side: reads the child's line; `ok` means the mount is live.
fn wait_until_ready(read_end: OwnedFd, child: Pid, said: Option<Said>) -> Result<(), CliError> {
    let mut line = Vec::new();
    let mut pipe = File::from(read_end);
    let mut byte = [0u8; 1];
    loop {
        match pipe.read(&mut byte) {
            Ok(0) => break,
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) => line.push(byte[0]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CliError::io("cannot read from the mount process", e)),
        }
    }
    let line = String::from_utf8_lossy(&line).into_owned();
    if line == "ok" {
        if let Some(said) = said {
            let process = format!(" (process {child})");
            said.mounted(if said.verbose { &process } else { "" });
        }
        return Ok(());
    }
    // The child failed: reap it.
    let status = nix::sys::wait::waitpid(child, None);
    if let Some(rest) = line.strip_prefix("err ") {
        let (code, message) = rest.split_once(' ').unwrap_or((rest, ""));
        let code = code
            .parse::<u8>()
            .ok()
            .filter(|&c| c != 0)
            .unwrap_or(EXIT_FAILURE);
        return Err(CliError::new(code, message));
    }
    Err(CliError::new(
        EXIT_MOUNT_FAILED,
        format!(
            "the mount process exited before the mount was ready ({})",
            describe_status(status)
        ),
    ))
}

fn describe_status(status: nix::Result<nix::sys::wait::WaitStatus>) -> String {
    use nix::sys::wait::WaitStatus;
    match status {
        Ok(WaitStatus::Exited(_, code)) => format!("exit status {code}"),
        Ok(WaitStatus::Signaled(_, signal, _)) => format!("killed by {signal}"),
        Ok(other) => format!("{other:?}"),
        Err(e) => format!("{e}"),
    }
}
