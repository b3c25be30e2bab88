//! Shared harness for integration tests that mount for real.
//!
//! [`TestVault::new`] creates a temporary directory holding a backing directory (`cipher`), a
//! mount point (`mnt`) and a password file, runs the built `veilfs init` with a cheap key
//! derivation, then `veilfs mount`. Dropping it unmounts (through `veilfs umount`, falling back to
//! `umount -l`) even when the test panicked, then removes the directory.
//!
//! Tests that use it need FUSE: they fail loudly, not skip, when /dev/fuse is missing (CI installs
//! fuse3; `scripts/test` sets it up).

#![allow(dead_code)]

pub mod ext4;
pub mod mount8;
pub mod rekey;
pub mod tree;
pub mod xattr;

use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The password every test vault is created with.
pub const PASSWORD: &str = "correct horse battery staple";

/// How long one veilfs command may take before the test fails (mount waits for readiness).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// The built `veilfs` binary, with stdin closed.
pub fn veilfs() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_veilfs"));
    cmd.stdin(Stdio::null());
    cmd
}

/// Runs `cmd` to completion with stdout and stderr captured; panics after `COMMAND_TIMEOUT`.
///
/// Reading the pipes to their end also checks that a daemon does not keep them open: `veilfs
/// mount` must hand its background process /dev/null, or this never sees EOF.
pub fn run(cmd: &mut Command) -> Output {
    run_with_timeout(cmd, COMMAND_TIMEOUT)
}

pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Output {
    let description = format!("{cmd:?}");
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {description}: {e}"));
    let stdout = read_in_background(child.stdout.take().unwrap());
    let stderr = read_in_background(child.stderr.take().unwrap());
    let deadline = Instant::now() + timeout;
    let status = wait_until(&mut child, deadline)
        .unwrap_or_else(|| panic!("{description} did not finish within {timeout:?}"));
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_secs(1));
    let stdout = stdout.recv_timeout(left).unwrap_or_else(|_| {
        panic!("{description} exited ({status}) but its stdout stayed open: a background process kept it")
    });
    let stderr = stderr.recv_timeout(left).unwrap_or_else(|_| {
        panic!("{description} exited ({status}) but its stderr stayed open: a background process kept it")
    });
    Output {
        status,
        stdout,
        stderr,
    }
}

fn read_in_background(mut pipe: impl Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        let _ = tx.send(bytes);
    });
    rx
}

/// Waits for `child` until `deadline`; kills it and returns `None` when it is still running.
pub fn wait_until(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    loop {
        if let Some(status) = child.try_wait().expect("waiting for a child") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Panics with the command's output unless it exited 0.
pub fn assert_success(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Panics unless the command exited with `code`; its stderr.
pub fn assert_status(output: &Output, code: i32) -> String {
    let stderr = stderr_of(output);
    assert_eq!(
        output.status.code(),
        Some(code),
        "expected exit status {code}, got {}; stderr: {stderr}",
        output.status
    );
    stderr
}

/// Panics unless the command exited with `code` and its stderr contains `needle` (and no panic).
pub fn assert_fails(output: &Output, code: i32, needle: &str) {
    let stderr = assert_status(output, code);
    assert!(
        stderr.contains(needle),
        "stderr {stderr:?} lacks {needle:?}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// The names in directory `dir`, sorted.
pub fn sorted_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Stderr of a command, as text.
pub fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Fails loudly when FUSE cannot work on this machine.
pub fn require_fuse() {
    assert!(
        Path::new("/dev/fuse").exists(),
        "/dev/fuse is missing: these tests mount for real; install fuse3 and load the module \
         (scripts/test does both when run as root)"
    );
}

/// Whether `path` (absolute, canonical) is a mount point, from /proc/self/mountinfo.
pub fn is_mounted(path: &Path) -> bool {
    mount_options(path).is_some()
}

/// The per-mount options (`rw,nosuid,...`) of the topmost mount at `path`, if mounted.
pub fn mount_options(path: &Path) -> Option<String> {
    veilfs::mountinfo::topmost_at(path)
        .expect("reading /proc/self/mountinfo")
        .map(|entry| entry.options)
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes; returns whether it held.
pub fn wait_for(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The pids of running veilfs processes, under any name (mount(8) runs it as mount.fuse.veilfs),
/// whose command line has `arg` as one argument.
pub fn veilfs_processes_with_arg(arg: &Path) -> Vec<u32> {
    let mut pids = Vec::new();
    let Ok(procs) = fs::read_dir("/proc") else {
        return pids;
    };
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        let is_veilfs = args.first().is_some_and(|a| {
            Path::new(OsStr::from_bytes(a))
                .file_name()
                .is_some_and(|n| n.to_string_lossy().contains("veilfs"))
        });
        if is_veilfs && args.iter().any(|a| *a == arg.as_os_str().as_bytes()) && is_alive(pid) {
            pids.push(pid);
        }
    }
    pids
}

/// Whether process `pid` exists and is not a zombie.
pub fn is_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name in parentheses, which may itself hold ')'.
        Ok(stat) => {
            stat.rfind(')')
                .and_then(|i| stat[i + 1..].trim_start().chars().next())
                != Some('Z')
        }
        Err(_) => false,
    }
}

/// A vault in a temporary directory, mounted unless made with [`TestVault::unmounted`].
pub struct TestVault {
    // Dropped after `Drop::drop` has unmounted.
    dir: tempfile::TempDir,
    root: PathBuf,
    backing: PathBuf,
    mountpoint: PathBuf,
    passfile: PathBuf,
}

impl TestVault {
    /// A new vault, mounted with default options.
    pub fn new() -> TestVault {
        let vault = TestVault::unmounted();
        vault.mount_with(&[]);
        vault
    }

    /// A new vault, initialized but not mounted.
    pub fn unmounted() -> TestVault {
        TestVault::unmounted_with_init_args(|_| Vec::new())
    }

    /// A new vault of format 1 (as an older veilfs made them: `veilfs init` writes format 2), not
    /// mounted: its config and root IV written through the library, with [`PASSWORD`].
    pub fn unmounted_v1() -> TestVault {
        let vault = TestVault::unmounted();
        let backing = vault.backing_path();
        for name in ["veilfs.conf", "veilfs.diriv"] {
            fs::remove_file(backing.join(name)).unwrap();
        }
        let master = veilfs::crypto::keys::MasterKey::generate();
        let features = veilfs::config::Features::default();
        let kdf = veilfs::config::KdfParams {
            memory_kib: 8,
            iterations: 1,
            parallelism: 1,
        };
        let config =
            veilfs::config::ConfigV1::create(&master, PASSWORD.as_bytes(), kdf, features.clone());
        veilfs::config::Config::V1(config).save(backing).unwrap();
        veilfs::vault::Vault::open(backing, &master.derive(), &features)
            .and_then(|v| v.initialize_root())
            .unwrap();
        vault
    }

    /// A new vault, initialized with extra `veilfs init` arguments (made by `extra` from the
    /// temporary directory, which already exists: it may write a key file there), not mounted.
    pub fn unmounted_with_init_args(
        extra: impl FnOnce(&Path) -> Vec<std::ffi::OsString>,
    ) -> TestVault {
        require_fuse();
        let dir = tempfile::Builder::new()
            .prefix("veilfs-test-")
            .tempdir()
            .expect("creating a temporary directory");
        // Canonical, so that paths compare equal to those in /proc/self/mountinfo.
        let root = fs::canonicalize(dir.path()).unwrap();
        let backing = root.join("cipher");
        let mountpoint = root.join("mnt");
        let passfile = root.join("passfile");
        fs::create_dir(&backing).unwrap();
        fs::create_dir(&mountpoint).unwrap();
        fs::write(&passfile, format!("{PASSWORD}\n")).unwrap();
        let extra = extra(&root);
        let output = run(veilfs()
            .args([
                "init",
                "--kdf-memory",
                "1",
                "--kdf-iterations",
                "1",
                "--passfile",
            ])
            .arg(&passfile)
            .args(&extra)
            .arg(&backing));
        assert_success(&output, "veilfs init");
        TestVault {
            dir,
            root,
            backing,
            mountpoint,
            passfile,
        }
    }

    /// Where the plaintext view is mounted.
    pub fn mount_path(&self) -> &Path {
        &self.mountpoint
    }

    /// The backing (encrypted) directory.
    pub fn backing_path(&self) -> &Path {
        &self.backing
    }

    /// The file holding [`PASSWORD`].
    pub fn passfile(&self) -> &Path {
        &self.passfile
    }

    /// The temporary directory holding everything; free for a test's own files.
    pub fn scratch(&self) -> &Path {
        &self.root
    }

    pub fn is_mounted(&self) -> bool {
        is_mounted(&self.mountpoint)
    }

    /// `veilfs mount --passfile P EXTRA... CIPHERDIR MOUNTPOINT`, run to completion.
    pub fn try_mount(&self, extra: &[&str]) -> Output {
        run(veilfs()
            .arg("mount")
            .arg("--passfile")
            .arg(&self.passfile)
            .args(extra)
            .arg(&self.backing)
            .arg(&self.mountpoint))
    }

    /// Mounts with extra arguments (`&["-o", "ro"]`); panics unless it succeeded and the mount
    /// is there the moment the command returned.
    pub fn mount_with(&self, extra: &[&str]) {
        let output = self.try_mount(extra);
        assert_success(&output, "veilfs mount");
        assert!(
            self.is_mounted(),
            "veilfs mount exited 0 but {} is not mounted",
            self.mountpoint.display()
        );
    }

    /// Spawns `veilfs GLOBAL... mount --foreground --passfile P EXTRA... CIPHERDIR MOUNTPOINT`
    /// and waits until the mount is there; its standard error goes to `stderr`.
    pub fn spawn_foreground(
        &self,
        global: &[&str],
        extra: &[&str],
        stderr: std::process::Stdio,
    ) -> std::process::Child {
        let mut child = veilfs()
            .args(global)
            .args(["mount", "--foreground", "--passfile"])
            .arg(&self.passfile)
            .args(extra)
            .arg(&self.backing)
            .arg(&self.mountpoint)
            .stdout(std::process::Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let mounted = wait_for(COMMAND_TIMEOUT, || {
            self.is_mounted() || child.try_wait().unwrap().is_some()
        });
        if !mounted || !self.is_mounted() {
            let _ = child.kill();
            panic!(
                "veilfs mount --foreground did not mount ({:?})",
                child.wait()
            );
        }
        child
    }

    /// `veilfs umount MOUNTPOINT`, run to completion.
    pub fn try_unmount(&self) -> Output {
        run(veilfs().arg("umount").arg(&self.mountpoint))
    }

    /// Unmounts; panics unless it succeeded and the mount is gone.
    pub fn unmount(&self) {
        // Files a test just closed may still be open for a moment (the kernel sends RELEASE
        // asynchronously): retry while umount reports busy (exit 10).
        let mut output = self.try_unmount();
        for _ in 0..50 {
            if output.status.code() != Some(10) {
                break;
            }
            thread::sleep(Duration::from_millis(100));
            output = self.try_unmount();
        }
        assert_success(&output, "veilfs umount");
        assert!(
            !self.is_mounted(),
            "veilfs umount exited 0 but {} is still mounted",
            self.mountpoint.display()
        );
    }

    /// Unmounts and mounts again with default options.
    pub fn remount(&self) {
        self.unmount();
        self.mount_with(&[]);
    }

    /// The backing path of mount entry `rel`, found by its inode number (the backing and the
    /// plaintext ones are the same).
    pub fn backing_of(&self, rel: impl AsRef<Path>) -> PathBuf {
        let wanted = fs::symlink_metadata(self.mountpoint.join(rel.as_ref()))
            .unwrap()
            .ino();
        let mut stack = vec![self.backing.clone()];
        while let Some(dir) = stack.pop() {
            for entry in fs::read_dir(&dir).unwrap() {
                let entry = entry.unwrap();
                let meta = entry.metadata().unwrap();
                if meta.ino() == wanted {
                    return entry.path();
                }
                if meta.is_dir() {
                    stack.push(entry.path());
                }
            }
        }
        panic!("{} has no backing entry", rel.as_ref().display());
    }

    /// The pids of the veilfs processes serving this vault's mount point.
    pub fn daemon_pids(&self) -> Vec<u32> {
        veilfs_processes_with_arg(&self.mountpoint)
    }
}

/// Unmounts whatever is stacked on `mountpoint`, even after a failed test: first through
/// `veilfs umount`, then forcibly (`umount -l`), so that removing a directory never walks into a
/// mount.
pub fn unmount_all(mountpoint: &Path) {
    for _ in 0..4 {
        if !is_mounted(mountpoint) {
            break;
        }
        let clean = veilfs()
            .arg("umount")
            .arg(mountpoint)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !clean {
            umount_lazy(mountpoint);
        }
    }
}

/// `umount -l PATH`, quietly: detaches whatever is mounted there, whatever its state.
pub fn umount_lazy(path: &Path) {
    let _ = Command::new("umount")
        .arg("-l")
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The labels of a vault's key slots, in their order, from `veilfs slot list --json`.
pub fn slot_labels(backing: &Path) -> Vec<String> {
    let list = run(veilfs().args(["slot", "list", "--json"]).arg(backing));
    assert_success(&list, "veilfs slot list --json");
    let slots: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    slots
        .as_array()
        .expect("slot list --json gives an array")
        .iter()
        .map(|slot| slot["label"].as_str().expect("a slot's label").to_owned())
        .collect()
}

/// `cp -a FROM TO`, as a sync tool or a user copies a tree: modes, times, links and xattrs
/// kept; panics unless it succeeded.
pub fn cp_a(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap_or_else(|e| panic!("cannot run cp: {e}"));
    assert!(
        status.success(),
        "cp -a {} {}: {status}",
        from.display(),
        to.display()
    );
}

/// `umount PATH`, quietly, and `umount -l PATH` if that failed: for a mount of a test's own
/// other than veilfs (a tmpfs, a loop device), gone whatever its state.
pub fn umount_or_detach(path: &Path) {
    let clean = Command::new("umount")
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !clean {
        umount_lazy(path);
    }
}

/// A result with its errno, to compare veilfs with a plain directory errno for errno.
pub type Res<T> = Result<T, nix::errno::Errno>;

/// `r` with its error as the errno it carries; panics on an error that is not an OS error.
pub fn io_res<T>(r: std::io::Result<T>) -> Res<T> {
    r.map_err(|e| {
        nix::errno::Errno::from_raw(
            e.raw_os_error()
                .unwrap_or_else(|| panic!("not an OS error: {e}")),
        )
    })
}

impl Drop for TestVault {
    fn drop(&mut self) {
        unmount_all(&self.mountpoint);
        if self.is_mounted() {
            // Leave the directory rather than delete through a mount.
            eprintln!(
                "TestVault: {} is still mounted; leaving {}",
                self.mountpoint.display(),
                self.root.display()
            );
            let dir = std::mem::replace(&mut self.dir, tempfile::TempDir::new().unwrap());
            let _ = dir.keep();
        }
    }
}

/// The marker at the start of every skip line; `scripts/test` collects the lines that carry it.
pub const SKIP_MARKER: &str = "VEILFS-SKIPPED";

/// Whether this run is CI's (`CI=true`), where every prerequisite must be present.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// A test (or part of one) that cannot run here because `why` is missing. Under `CI=true` that
/// is a failure: CI installs every prerequisite, so a missing one means the suite would pass
/// without testing. Elsewhere one loud line goes straight to stderr, past libtest's output
/// capture (which takes only `print!`/`eprint!`), so that `scripts/test` can list the skips at
/// the end of the run instead of counting them as passes. The caller then returns or continues.
pub fn skip(what: &str, why: &str) {
    use std::io::Write;
    assert!(
        !in_ci(),
        "{what}: {why}; under CI=true a missing prerequisite fails the test"
    );
    // One write, so that lines from tests running in parallel do not interleave.
    let line = format!("{SKIP_MARKER}: {what}: {why}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
}
