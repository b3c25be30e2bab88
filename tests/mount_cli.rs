//! `veilfs mount` and `veilfs umount` as a user runs them: readiness, unmounting, remounting,
//! signals, `-o ro`, and every error with its exit status and one-line message.

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Asserts a failed command's exit status and that it printed exactly one line, `veilfs: ...`,
/// containing every one of `needles`.
fn assert_error(output: &Output, code: i32, needles: &[&str]) {
    let stderr = assert_status(output, code);
    assert_eq!(
        stderr.lines().count(),
        1,
        "expected one line on stderr, got: {stderr:?}"
    );
    assert!(stderr.starts_with("veilfs: "), "{stderr:?}");
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "stderr {stderr:?} lacks {needle:?}"
        );
    }
}

/// `veilfs mount` with no password source and stdin at /dev/null: a check that fails before
/// the password is read gives its own status; reading the password would fail with status 1.
fn mount_without_password(
    cipherdir: &std::path::Path,
    mountpoint: &std::path::Path,
    extra: &[&str],
) -> Output {
    run(veilfs()
        .arg("mount")
        .args(extra)
        .arg(cipherdir)
        .arg(mountpoint))
}

// ---------------------------------------------------------------------------------------------
// Mounting, unmounting

#[test]
fn mount_returns_once_the_mount_is_live() {
    let vault = TestVault::unmounted();
    let output = vault.try_mount(&[]);
    assert_success(&output, "veilfs mount");
    // No polling: the mount must be there the moment the command returned.
    assert!(
        vault.is_mounted(),
        "not mounted right after `veilfs mount` returned"
    );
    let root = fs::metadata(vault.mount_path()).expect("stat of the mount root");
    let parent = fs::metadata(vault.scratch()).unwrap();
    assert_ne!(
        root.dev(),
        parent.dev(),
        "the mount root is not on a new device"
    );
    // One line that says so.
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!(
            "mounted {} at {}\n",
            vault.backing_path().display(),
            vault.mount_path().display()
        )
    );
    // One background process serves it.
    assert_eq!(
        vault.daemon_pids().len(),
        1,
        "expected one veilfs process for the mount"
    );
}

#[test]
fn file_written_right_after_mount_is_readable() {
    let vault = TestVault::new();
    let path = vault.mount_path().join("hello.txt");
    fs::write(&path, b"hello, world\n").expect("writing a file right after mount returned");
    assert_eq!(fs::read(&path).unwrap(), b"hello, world\n");
    // The backing directory holds no plaintext name.
    for entry in fs::read_dir(vault.backing_path()).unwrap() {
        let name = entry.unwrap().file_name();
        assert!(
            !name.to_string_lossy().contains("hello"),
            "plaintext name in the backing directory: {name:?}"
        );
    }
}

#[test]
fn umount_unmounts_and_the_daemon_exits() {
    let vault = TestVault::new();
    let pids = vault.daemon_pids();
    assert_eq!(pids.len(), 1, "expected one veilfs process, found {pids:?}");
    let output = vault.try_unmount();
    assert_success(&output, "veilfs umount");
    assert!(!vault.is_mounted());
    assert!(
        wait_for(Duration::from_secs(10), || !is_alive(pids[0])),
        "the veilfs process {} is still running after umount",
        pids[0]
    );
}

#[test]
fn remount_keeps_the_data() {
    let vault = TestVault::new();
    fs::create_dir(vault.mount_path().join("dir")).expect("mkdir");
    fs::write(vault.mount_path().join("dir/file"), b"kept across mounts").expect("write");
    vault.remount();
    assert_eq!(
        fs::read(vault.mount_path().join("dir/file")).expect("read after remount"),
        b"kept across mounts"
    );
    vault.unmount();
    // Unmounted: the mount point is an empty directory again.
    assert_eq!(fs::read_dir(vault.mount_path()).unwrap().count(), 0);
}

#[test]
fn mount_unmount_cycle_command_level() {
    // Mount and unmount twice; works whatever the filesystem serves.
    let vault = TestVault::new();
    vault.remount();
    vault.unmount();
    vault.mount_with(&[]);
    assert!(vault.is_mounted());
}

#[test]
fn relative_paths_work() {
    let vault = TestVault::unmounted();
    let output = run(veilfs().current_dir(vault.scratch()).args([
        "mount",
        "--passfile",
        "passfile",
        "cipher",
        "mnt",
    ]));
    assert_success(&output, "veilfs mount with relative paths");
    assert!(vault.is_mounted());
    let output = run(veilfs()
        .current_dir(vault.scratch())
        .args(["umount", "mnt"]));
    assert_success(&output, "veilfs umount with a relative path");
    assert!(!vault.is_mounted());
}

#[test]
fn the_mount_shows_the_backing_directory_as_its_source() {
    let vault = TestVault::new();
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap();
    let line = mounts
        .lines()
        .find(|l| l.split(' ').nth(1) == Some(vault.mount_path().to_str().unwrap()))
        .expect("the mount in /proc/self/mounts");
    assert_eq!(
        line.split(' ').next(),
        vault.backing_path().to_str(),
        "{line}"
    );
    assert!(
        line.split(' ').nth(2).unwrap().starts_with("fuse"),
        "{line}"
    );
}

#[test]
fn the_daemon_raises_its_open_file_limit_to_the_hard_one() {
    // A desktop's soft limit of 1024 would make every request fail with EMFILE once a program
    // holds a thousand files open through the mount.
    let vault = TestVault::unmounted();
    let output = run(Command::new("prlimit")
        .arg("--nofile=1024:4096")
        .arg(env!("CARGO_BIN_EXE_veilfs"))
        .arg("mount")
        .arg("--passfile")
        .arg(vault.passfile())
        .arg(vault.backing_path())
        .arg(vault.mount_path())
        .stdin(Stdio::null()));
    assert_success(&output, "veilfs mount under prlimit");
    let pids = vault.daemon_pids();
    let limits = fs::read_to_string(format!("/proc/{}/limits", pids[0])).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    assert_eq!(
        line.split_whitespace().collect::<Vec<_>>()[3..5],
        ["4096", "4096"],
        "{line}"
    );
}

// ---------------------------------------------------------------------------------------------
// -o

#[test]
fn read_only_mount_refuses_writes() {
    let vault = TestVault::unmounted();
    vault.mount_with(&["-o", "ro"]);
    let options = mount_options(vault.mount_path()).unwrap();
    assert!(
        options.split(',').any(|o| o == "ro"),
        "mount options {options}"
    );
    let err =
        fs::write(vault.mount_path().join("new"), b"x").expect_err("writing to a read-only mount");
    assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");
    let err =
        fs::create_dir(vault.mount_path().join("newdir")).expect_err("mkdir on a read-only mount");
    assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");
}

#[test]
fn read_only_mount_still_reads() {
    let vault = TestVault::new();
    fs::write(vault.mount_path().join("file"), b"readable").expect("write");
    vault.unmount();
    vault.mount_with(&["-o", "ro"]);
    assert_eq!(
        fs::read(vault.mount_path().join("file")).expect("read on a read-only mount"),
        b"readable"
    );
    let err = fs::OpenOptions::new()
        .append(true)
        .open(vault.mount_path().join("file"))
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");
}

#[test]
fn generic_options_reach_the_kernel() {
    let vault = TestVault::unmounted();
    vault.mount_with(&["-o", "rw,noexec", "-o", "noatime,defaults,_netdev"]);
    let options = mount_options(vault.mount_path()).unwrap();
    for wanted in ["rw", "noexec", "noatime", "nodev", "nosuid"] {
        assert!(
            options.split(',').any(|o| o == wanted),
            "{wanted} missing from {options}"
        );
    }
}

#[test]
fn unknown_and_reserved_options_are_usage_errors() {
    let vault = TestVault::unmounted();
    for (option, needle) in [
        ("bogus", "unknown mount option 'bogus'"),
        ("fsname=x", "fsname"),
        ("allow_root", "allow_other"),
    ] {
        let output =
            mount_without_password(vault.backing_path(), vault.mount_path(), &["-o", option]);
        assert_error(&output, 2, &[needle]);
    }
    assert!(!vault.is_mounted());
}

#[test]
fn bad_or_conflicting_cache_ttl_is_a_usage_error() {
    let vault = TestVault::unmounted();
    for (args, needle) in [
        (&["-o", "cache_ttl=soon"][..], "invalid duration 'soon'"),
        (&["-o", "cache_ttl="][..], "invalid duration ''"),
        (
            &["--cache-ttl", "5s", "-o", "cache_ttl=10s"][..],
            "--cache-ttl and -o cache_ttl= disagree",
        ),
    ] {
        let output = mount_without_password(vault.backing_path(), vault.mount_path(), args);
        assert_error(&output, 2, &[needle]);
    }
    assert!(!vault.is_mounted());
}

#[test]
fn threads_out_of_range_is_a_usage_error() {
    let vault = TestVault::unmounted();
    let output = vault.try_mount(&["--threads", "0"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
    vault.mount_with(&["--threads", "1"]);
}

// ---------------------------------------------------------------------------------------------
// Errors, each before the password is asked for

#[test]
fn missing_mountpoint_is_exit_7() {
    let vault = TestVault::unmounted();
    let missing = vault.scratch().join("missing");
    let output = mount_without_password(vault.backing_path(), &missing, &[]);
    assert_error(&output, 7, &["does not exist", "missing"]);
}

#[test]
fn mountpoint_not_a_directory_is_exit_7() {
    let vault = TestVault::unmounted();
    let file = vault.scratch().join("file");
    fs::write(&file, b"").unwrap();
    let output = mount_without_password(vault.backing_path(), &file, &[]);
    assert_error(&output, 7, &["not a directory"]);
}

#[test]
fn mountpoint_not_empty_is_exit_7_unless_nonempty() {
    let vault = TestVault::unmounted();
    fs::write(vault.mount_path().join("existing"), b"").unwrap();
    let output = mount_without_password(vault.backing_path(), vault.mount_path(), &[]);
    assert_error(&output, 7, &["not empty"]);
    assert!(!vault.is_mounted());
    vault.mount_with(&["-o", "nonempty"]);
}

#[test]
fn already_mounted_is_exit_7() {
    let vault = TestVault::new();
    let output = mount_without_password(vault.backing_path(), vault.mount_path(), &[]);
    assert_error(&output, 7, &["already a mount point"]);
    // The first mount is untouched, and only one is stacked there.
    assert!(vault.is_mounted());
    assert_eq!(vault.daemon_pids().len(), 1);
}

#[test]
fn mountpoint_inside_cipherdir_is_exit_7() {
    let vault = TestVault::unmounted();
    let inside = vault.backing_path().join("inside");
    fs::create_dir(&inside).unwrap();
    let output = mount_without_password(vault.backing_path(), &inside, &[]);
    assert_error(&output, 7, &["inside CIPHERDIR"]);
}

#[test]
fn missing_cipherdir_is_exit_3_and_not_a_vault_is_exit_4() {
    let vault = TestVault::unmounted();
    let output = mount_without_password(&vault.scratch().join("nope"), vault.mount_path(), &[]);
    assert_error(&output, 3, &["does not exist"]);
    let empty = vault.scratch().join("empty");
    fs::create_dir(&empty).unwrap();
    let output = mount_without_password(&empty, vault.mount_path(), &[]);
    assert_error(&output, 4, &["not a veilfs vault"]);
}

#[test]
fn wrong_password_is_exit_6_and_mounts_nothing() {
    let vault = TestVault::unmounted();
    let wrong = vault.scratch().join("wrong");
    fs::write(&wrong, "not the password\n").unwrap();
    let output = run(veilfs()
        .arg("mount")
        .arg("--passfile")
        .arg(&wrong)
        .arg(vault.backing_path())
        .arg(vault.mount_path()));
    assert_error(&output, 6, &["wrong password"]);
    assert!(!vault.is_mounted());
    assert!(vault.daemon_pids().is_empty());
}

#[test]
fn password_on_stdin_works() {
    let vault = TestVault::unmounted();
    let mut child = veilfs()
        .arg("mount")
        .arg(vault.backing_path())
        .arg(vault.mount_path())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    let status = wait_until(&mut child, Instant::now() + COMMAND_TIMEOUT).expect("mount finishes");
    assert!(status.success(), "{status}");
    assert!(vault.is_mounted());
}

#[test]
fn extpass_gives_the_password_to_mount() {
    let vault = TestVault::unmounted();
    let mount = |extpass: &str| {
        run(veilfs()
            .args(["mount", "--extpass", extpass])
            .arg(vault.backing_path())
            .arg(vault.mount_path()))
    };
    // The command's first line is the password; the command runs through sh -c.
    let command = format!("cat '{}'; echo ignored", vault.passfile().display());
    assert_success(&mount(&command), "veilfs mount --extpass");
    assert!(vault.is_mounted());
    fs::write(vault.mount_path().join("f"), b"through extpass").unwrap();
    vault.unmount();
    // A wrong password from the command, and a command that fails, mount nothing.
    assert_error(&mount("echo wrong"), 6, &["wrong password"]);
    assert_error(
        &mount("exit 3"),
        1,
        &["--extpass command failed", "exit status: 3"],
    );
    assert!(!vault.is_mounted());
    assert!(vault.daemon_pids().is_empty());
    vault.mount_with(&[]);
    assert_eq!(
        fs::read(vault.mount_path().join("f")).unwrap(),
        b"through extpass"
    );
}

/// `veilfs mount` run in a mount namespace of its own whose /dev is an empty tmpfs, after
/// `setup` (shell commands) made device nodes in it: the real check of /dev/fuse and the real
/// mount(2), on this machine, without touching its /dev.
fn mount_with_private_dev(vault: &TestVault, setup: &str) -> Option<Output> {
    if !nix::unistd::geteuid().is_root() {
        skip(
            "mount_with_private_dev",
            "needs root (a mount namespace with its own /dev)",
        );
        return None;
    }
    Some(run(Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            "mount -t tmpfs tmpfs /dev && {setup} exec \"$0\" mount --passfile \"$1\" \"$2\" \"$3\""
        ))
        .arg(env!("CARGO_BIN_EXE_veilfs"))
        .arg(vault.passfile())
        .arg(vault.backing_path())
        .arg(vault.mount_path())
        .stdin(Stdio::null())))
}

#[test]
fn no_dev_fuse_is_exit_8() {
    let vault = TestVault::unmounted();
    let Some(output) = mount_with_private_dev(&vault, "") else {
        return;
    };
    assert_error(&output, 8, &["/dev/fuse does not exist", "fuse3"]);
    assert!(!vault.is_mounted());
}

#[test]
fn a_mount_the_kernel_refuses_is_exit_9() {
    // /dev/fuse is a character device, but /dev/zero's: the kernel's mount(2) refuses its fd.
    let vault = TestVault::unmounted();
    let Some(output) = mount_with_private_dev(
        &vault,
        "mknod -m 666 /dev/null c 1 3 && mknod -m 666 /dev/fuse c 1 5 &&",
    ) else {
        return;
    };
    assert_error(&output, 9, &["cannot mount", "EINVAL"]);
    assert!(!vault.is_mounted());
    assert!(vault.daemon_pids().is_empty());
}

// ---------------------------------------------------------------------------------------------
// umount

#[test]
fn umount_of_a_directory_not_mounted_is_exit_7() {
    let vault = TestVault::unmounted();
    let output = vault.try_unmount();
    assert_error(&output, 7, &["not mounted"]);
    let output = run(veilfs().arg("umount").arg(vault.scratch().join("missing")));
    assert_error(&output, 7, &["does not exist"]);
}

#[test]
fn umount_refuses_mounts_that_are_not_fuse() {
    // "/" is never a FUSE mount; were the check missing, umount(2) would fail with EBUSY.
    let output = run(veilfs().args(["umount", "/"]));
    assert_error(&output, 7, &["not a veilfs mount"]);
}

/// A process (`sleep`) whose working directory is `mount`, keeping it busy until killed.
fn hold_busy(mount: &Path) -> Child {
    Command::new("sleep")
        .arg("60")
        .current_dir(mount)
        .stdin(Stdio::null())
        .spawn()
        .expect("a process whose working directory is the mount")
}

#[test]
fn umount_of_a_busy_mount_says_who_and_lazy_detaches() {
    let vault = TestVault::new();
    let mut holder = hold_busy(vault.mount_path());
    let output = vault.try_unmount();
    let lazy = run(veilfs().args(["umount", "--lazy"]).arg(vault.mount_path()));
    let _ = holder.kill();
    let _ = holder.wait();
    assert_error(
        &output,
        10,
        &["busy", "sleep", &format!("pid {}", holder.id()), "--lazy"],
    );
    assert_success(&lazy, "veilfs umount --lazy");
    assert!(!vault.is_mounted());
}

// ---------------------------------------------------------------------------------------------
// Signals

/// Sends `signal` to `veilfs mount --foreground` (`child`, serving `vault`): it unmounts and
/// exits 0.
fn stops_cleanly_on(vault: &TestVault, mut child: Child, signal: Signal) {
    kill(Pid::from_raw(child.id() as i32), signal).unwrap();
    let status = wait_until(&mut child, Instant::now() + Duration::from_secs(20))
        .unwrap_or_else(|| panic!("exits after {signal}"));
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(!vault.is_mounted(), "still mounted after {signal}");
}

#[test]
fn foreground_unmounts_cleanly_on_sigterm() {
    let vault = TestVault::unmounted();
    let mut child = vault.spawn_foreground(&[], &[], Stdio::null());
    // Stays in the foreground.
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        child.try_wait().unwrap().is_none(),
        "--foreground exited on its own"
    );
    stops_cleanly_on(&vault, child, Signal::SIGTERM);
}

#[test]
fn foreground_unmounts_cleanly_on_sigint() {
    let vault = TestVault::unmounted();
    let child = vault.spawn_foreground(&[], &[], Stdio::null());
    stops_cleanly_on(&vault, child, Signal::SIGINT);
}

#[test]
fn sigterm_detaches_a_busy_mount_and_exits_when_released() {
    let vault = TestVault::unmounted();
    let mut child = vault.spawn_foreground(&[], &[], Stdio::null());
    let mut holder = hold_busy(vault.mount_path());
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let detached = wait_for(Duration::from_secs(20), || !vault.is_mounted());
    // Still serving the process that holds it.
    let still_running = child.try_wait().unwrap().is_none();
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(detached, "a busy mount was not detached on SIGTERM");
    assert!(still_running, "exited while the mount was still in use");
    let status = wait_until(&mut child, Instant::now() + Duration::from_secs(20))
        .expect("exits once the mount is released");
    assert_eq!(status.code(), Some(0), "{status}");
}

#[test]
fn foreground_exits_0_when_unmounted_from_outside() {
    let vault = TestVault::unmounted();
    let mut child = vault.spawn_foreground(&[], &[], Stdio::null());
    vault.unmount();
    let status = wait_until(&mut child, Instant::now() + Duration::from_secs(20))
        .expect("exits after umount");
    assert_eq!(status.code(), Some(0), "{status}");
}

#[test]
fn background_process_unmounts_on_sigterm() {
    let vault = TestVault::new();
    let pids = vault.daemon_pids();
    assert_eq!(pids.len(), 1, "{pids:?}");
    kill(Pid::from_raw(pids[0] as i32), Signal::SIGTERM).unwrap();
    assert!(
        wait_for(Duration::from_secs(20), || !vault.is_mounted()),
        "still mounted after SIGTERM to the daemon"
    );
    assert!(
        wait_for(Duration::from_secs(10), || !is_alive(pids[0])),
        "the daemon still runs"
    );
}

#[test]
fn background_process_is_detached() {
    let vault = TestVault::new();
    let pid = vault.daemon_pids()[0];
    // A session of its own, no controlling terminal, working directory "/".
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let (session, tty) = (fields[3], fields[4]);
    assert_eq!(session, pid.to_string(), "not a session leader: {stat}");
    assert_eq!(tty, "0", "has a controlling terminal: {stat}");
    assert_eq!(
        fs::read_link(format!("/proc/{pid}/cwd")).unwrap(),
        std::path::Path::new("/")
    );
    for fd in 0..3 {
        assert_eq!(
            fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap(),
            std::path::Path::new("/dev/null"),
            "fd {fd}"
        );
    }
    // umask 0: the adapter relies on it.
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let umask = status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .map(str::trim);
    assert_eq!(umask, Some("0000"), "{status}");
}

#[test]
fn created_files_get_the_callers_mode() {
    // The daemon runs with umask 0 and the kernel applies the caller's umask: 0o644 from a
    // process whose umask is 0o022, whatever the daemon's.
    let vault = TestVault::new();
    let path = vault.mount_path().join("modes");
    fs::write(&path, b"").expect("create");
    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
    let expected = 0o666 & !current_umask();
    assert_eq!(mode, expected, "mode {mode:o}, expected {expected:o}");
}

fn current_umask() -> u32 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let umask = status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .unwrap()
        .trim();
    u32::from_str_radix(umask, 8).unwrap()
}

#[test]
fn mount_help_lists_exit_statuses() {
    let output = run(veilfs().args(["mount", "--help"]));
    assert_success(&output, "veilfs mount --help");
    let help = String::from_utf8_lossy(&output.stdout);
    for needle in [
        "--foreground",
        "--passfile",
        "--extpass",
        "allow_other",
        "  7 ",
        "  8 ",
        "  9 ",
    ] {
        assert!(help.contains(needle), "{needle:?} missing from:\n{help}");
    }
}

// ---------------------------------------------------------------------------------------------
// One daemon per vault

/// How long a command that must not block may take.
const QUICK: Duration = Duration::from_secs(20);

#[test]
fn a_second_mount_of_a_mounted_vault_is_refused_until_it_is_unmounted() {
    let vault = TestVault::new();
    let daemon = vault.daemon_pids();
    assert_eq!(daemon.len(), 1, "{daemon:?}");
    let other = vault.scratch().join("other");
    fs::create_dir(&other).unwrap();
    let at = format!("at {}", vault.mount_path().display());
    let by = format!("by process {}", daemon[0]);
    let already = format!("{} is already mounted", vault.backing_path().display());

    // With the password, and without one (stdin is /dev/null): refused before it is asked for.
    let second = run_with_timeout(
        veilfs()
            .arg("mount")
            .arg("--passfile")
            .arg(vault.passfile())
            .arg(vault.backing_path())
            .arg(&other),
        QUICK,
    );
    assert_error(&second, 10, &[&already, &at, &by]);
    let second = mount_without_password(vault.backing_path(), &other, &[]);
    assert_error(&second, 10, &[&already, &at, &by]);
    // Through another path to the same directory, too.
    let link = vault.scratch().join("link");
    std::os::unix::fs::symlink(vault.backing_path(), &link).unwrap();
    let second = mount_without_password(&link, &other, &[]);
    assert_error(&second, 10, &["is already mounted", &at]);
    assert!(!is_mounted(&other));
    assert!(vault.is_mounted());
    assert_eq!(vault.daemon_pids(), daemon);

    // Once unmounted, the vault mounts again, anywhere.
    vault.unmount();
    let output = run(veilfs()
        .arg("mount")
        .arg("--passfile")
        .arg(vault.passfile())
        .arg(vault.backing_path())
        .arg(&other));
    assert_success(&output, "mount after unmount");
    assert!(is_mounted(&other));
    let refused = mount_without_password(vault.backing_path(), vault.mount_path(), &[]);
    assert_error(
        &refused,
        10,
        &["is already mounted", &format!("at {}", other.display())],
    );
    assert_success(&run(veilfs().arg("umount").arg(&other)), "umount other");
    vault.mount_with(&[]);
}

#[test]
fn the_lock_goes_with_a_killed_daemon() {
    let vault = TestVault::new();
    let daemon = vault.daemon_pids();
    assert_eq!(daemon.len(), 1);
    kill(Pid::from_raw(daemon[0] as i32), Signal::SIGKILL).unwrap();
    assert!(wait_for(QUICK, || !is_alive(daemon[0])));
    // The mount point is left stale (ENOTCONN); after it is cleared, the vault mounts again: no
    // lock survives its process.
    let _ = run(veilfs().arg("umount").arg(vault.mount_path()));
    if vault.is_mounted() {
        let _ = run(Command::new("umount").arg("-l").arg(vault.mount_path()));
    }
    vault.mount_with(&[]);
}

#[test]
fn a_foreground_mount_holds_the_lock_too() {
    let vault = TestVault::unmounted();
    let mut child = vault.spawn_foreground(&[], &[], Stdio::null());
    let other = vault.scratch().join("other");
    fs::create_dir(&other).unwrap();
    let second = mount_without_password(vault.backing_path(), &other, &[]);
    assert_error(
        &second,
        10,
        &["is already mounted", &format!("by process {}", child.id())],
    );
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    assert!(wait_until(&mut child, deadline).is_some_and(|s| s.success()));
    vault.mount_with(&[]);
}

#[test]
fn fsck_repair_is_refused_while_mounted_and_plain_fsck_runs() {
    let vault = TestVault::new();
    fs::write(vault.mount_path().join("file"), "contents").unwrap();
    let fsck = |extra: &[&str]| {
        run_with_timeout(
            veilfs()
                .arg("fsck")
                .args(extra)
                .arg("--passfile")
                .arg(vault.passfile())
                .arg(vault.backing_path()),
            QUICK,
        )
    };
    let repair = fsck(&["--repair"]);
    assert_error(
        &repair,
        10,
        &[
            "is already mounted",
            &format!("at {}", vault.mount_path().display()),
            "unmount it before 'fsck --repair'",
        ],
    );
    assert_success(&fsck(&[]), "fsck while mounted");
    assert!(vault.is_mounted());
    vault.unmount();
    assert_success(&fsck(&["--repair"]), "fsck --repair once unmounted");
    // And fsck --repair releases the lock when it is done.
    vault.mount_with(&[]);
}

#[test]
fn a_config_that_is_a_fifo_fails_the_mount_at_once() {
    let vault = TestVault::unmounted();
    let conf = vault.backing_path().join("veilfs.conf");
    fs::remove_file(&conf).unwrap();
    nix::unistd::mkfifo(&conf, nix::sys::stat::Mode::S_IRUSR).unwrap();
    let output = run_with_timeout(
        veilfs()
            .arg("mount")
            .arg("--passfile")
            .arg(vault.passfile())
            .arg(vault.backing_path())
            .arg(vault.mount_path()),
        QUICK,
    );
    assert_error(&output, 5, &[&format!("{} is a FIFO", conf.display())]);
    assert!(!vault.is_mounted());
}
