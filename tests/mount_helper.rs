//! Linux integration, for real: mount(8) with `-t fuse.veilfs` (through the helper link
//! `/sbin/mount.fuse.veilfs`) and with `-t fuse` (through mount.fuse3), /etc/fstab lines (the ones
//! in docs/systemd/fstab.example, with `mount --fstab FILE MOUNTPOINT`), the helper's own
//! command-line convention, `--idle`, the systemd service example (sd_notify readiness and a
//! credential as the password file), the unit files (`systemd-analyze verify`), syslog logging
//! without secrets, and scripts/install.sh.
//!
//! The tests that need `-t fuse.veilfs` install the helper link for their duration, one at a
//! time, moving another veilfs's helper aside meanwhile (tests/common/mount8.rs), so that they
//! never skip. No systemd runs in the test container: the service's command is run with the
//! environment systemd would give it.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::mount8::*;
use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_veilfs");
const DOCS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/systemd");

// ---------------------------------------------------------------------------------------------
// Helpers

/// Whether mount(8) can mount type `fuse` (through /sbin/mount.fuse, from the fuse3 package);
/// prints a note when not.
fn have_mount_fuse(what: &str) -> bool {
    let have = Path::new("/sbin/mount.fuse").exists();
    if !have {
        skip(what, "/sbin/mount.fuse is missing (install fuse3)");
    }
    have
}

/// A vault created with a key file `vault.key` in its scratch directory.
fn keyfile_vault() -> TestVault {
    TestVault::unmounted_with_init_args(|root| {
        fs::write(root.join("vault.key"), b"key file for the fstab example").unwrap();
        vec!["--keyfile".into(), root.join("vault.key").into()]
    })
}

// ---------------------------------------------------------------------------------------------
// mount(8)

#[test]
fn veilfs_mount_shows_type_fuse_veilfs() {
    let vault = TestVault::new();
    assert_type_and_source(&vault);
}

#[test]
fn mount_t_fuse_veilfs_runs_the_helper() {
    let _helper = SbinHelper::install();
    let vault = TestVault::unmounted();
    let options = format!(
        "passfile={},allow_other,noexec,nofail,_netdev,user,users,x-gvfs-show,\
         x-systemd.device-timeout=10s",
        vault.passfile().display()
    );
    let output = run(mount_cmd()
        .args(["-t", "fuse.veilfs"])
        .arg(vault.backing_path())
        .arg(vault.mount_path())
        .args(["-o", &options]));
    assert_success(&output, "mount -t fuse.veilfs");
    assert!(vault.is_mounted(), "not mounted when mount(8) returned");
    assert_type_and_source(&vault);
    let mount_options = mount_entry(vault.mount_path()).unwrap().options;
    assert!(
        mount_options.split(',').any(|o| o == "noexec"),
        "{mount_options}"
    );
    use_and_unmount(&vault);
}

#[test]
fn mount_passes_the_helpers_exit_status_on() {
    let _helper = SbinHelper::install();
    let vault = TestVault::unmounted();
    let wrong = vault.scratch().join("wrong");
    fs::write(&wrong, "wrong password\n").unwrap();
    let mount = |options: String| {
        run(mount_cmd()
            .args(["-t", "fuse.veilfs"])
            .arg(vault.backing_path())
            .arg(vault.mount_path())
            .args(["-o", &options]))
    };
    let output = mount(format!("passfile={}", wrong.display()));
    assert_eq!(output.status.code(), Some(6), "{}", stderr_of(&output));
    assert!(stderr_of(&output).contains("wrong password"));
    let output = mount(format!("passfile={},bogus", vault.passfile().display()));
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
    assert!(stderr_of(&output).contains("unknown mount option 'bogus'"));
    assert!(!vault.is_mounted());
}

#[test]
fn mount_t_fuse_runs_veilfs_through_mount_fuse3() {
    // mount(8) -> /sbin/mount.fuse3 -> `BIN CIPHERDIR MOUNTPOINT -o OPTIONS`: no helper link.
    if !have_mount_fuse("mount -t fuse") {
        return;
    }
    let vault = TestVault::unmounted();
    let source = format!("{BIN}#{}", vault.backing_path().display());
    let output = run(mount_cmd()
        .args(["-t", "fuse", &source])
        .arg(vault.mount_path())
        .args([
            "-o",
            &format!(
                "passfile={},x-systemd.automount,noauto,nofail",
                vault.passfile().display()
            ),
        ]));
    assert_success(&output, "mount -t fuse veilfs#CIPHERDIR");
    assert!(vault.is_mounted());
    assert_type_and_source(&vault);
    use_and_unmount(&vault);

    // Read-only through the same route.
    let output = run(mount_cmd()
        .args(["-t", "fuse", &source])
        .arg(vault.mount_path())
        .args(["-o", &format!("ro,passfile={}", vault.passfile().display())]));
    assert_success(&output, "mount -t fuse -o ro");
    let err = fs::write(vault.mount_path().join("x"), b"x").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EROFS));
}

#[test]
fn fstab_example_lines_mount() {
    let example = fs::read_to_string(format!("{DOCS}/fstab.example")).unwrap();
    let lines: Vec<&str> = example
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(
        lines.len(),
        4,
        "docs/systemd/fstab.example changed: {lines:?}"
    );
    let _helper = SbinHelper::install();
    let mut mounted = 0;
    for &line in &lines {
        if line.contains(" fuse ") && !have_mount_fuse(line) {
            continue;
        }
        let vault = if line.contains("keyfile=") {
            keyfile_vault()
        } else {
            TestVault::unmounted()
        };
        let scratch = vault.scratch();
        let line = line
            .replace("/usr/local/bin/veilfs", BIN)
            .replace("/srv/vault", vault.backing_path().to_str().unwrap())
            .replace("/mnt/vault", vault.mount_path().to_str().unwrap())
            .replace("/etc/veilfs/vault.pass", vault.passfile().to_str().unwrap())
            .replace(
                "/etc/veilfs/vault.key",
                scratch.join("vault.key").to_str().unwrap(),
            );
        // systemd-ask-password needs a password agent: a stand-in answers in its place and
        // records the arguments it got, which must be the line's (`\040` decoded to spaces).
        let asked = scratch.join("asked");
        let line = if line.contains("systemd-ask-password") {
            let agent = scratch.join("systemd-ask-password");
            fs::write(
                &agent,
                format!(
                    "#!/bin/sh\nprintf '%s\\n' \"$*\" > '{}'\ncat '{}'\n",
                    asked.display(),
                    vault.passfile().display()
                ),
            )
            .unwrap();
            fs::set_permissions(&agent, fs::Permissions::from_mode(0o755)).unwrap();
            line.replace("systemd-ask-password", agent.to_str().unwrap())
        } else {
            line
        };
        let fstab = scratch.join("fstab");
        fs::write(&fstab, format!("# test\n{line}\n")).unwrap();
        let output = run(mount_cmd()
            .arg("--fstab")
            .arg(&fstab)
            .arg(vault.mount_path()));
        assert_success(&output, &format!("mount --fstab with {line}"));
        assert!(vault.is_mounted(), "{line}");
        if line.contains("extpass=") {
            assert_eq!(
                fs::read_to_string(&asked).expect("the password agent was not asked"),
                "--id=veilfs:vault vault\n",
                "{line}"
            );
        }
        assert_type_and_source(&vault);
        use_and_unmount(&vault);
        mounted += 1;
    }
    // Every line mounted (a skip above already failed under CI=true): a test that mounted
    // nothing must not pass.
    assert!(mounted > 0, "no line of fstab.example was mounted");
}

// ---------------------------------------------------------------------------------------------
// The helper's command line

#[test]
fn helper_convention_called_directly() {
    let vault = TestVault::unmounted();
    let links = vault.scratch().join("links");
    fs::create_dir(&links).unwrap();
    for name in ["mount.veilfs", "mount.fuse.veilfs"] {
        std::os::unix::fs::symlink(BIN, links.join(name)).unwrap();
    }
    let helper = |name: &str, args: &[&str]| {
        run(Command::new(links.join(name))
            .stdin(Stdio::null())
            .arg(vault.backing_path())
            .arg(vault.mount_path())
            .args(args))
    };
    let passfile = format!("passfile={}", vault.passfile().display());

    // -f: everything but the mount.
    let output = helper("mount.veilfs", &["-f", "-o", &passfile]);
    assert_success(&output, "mount.veilfs -f");
    assert!(!vault.is_mounted());

    // Unknown options: refused, or ignored with -s.
    let output = helper("mount.veilfs", &["-o", &format!("{passfile},bogus")]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
    let output = helper(
        "mount.fuse.veilfs",
        &[
            "-s",
            "-o",
            &format!("{passfile},bogus"),
            "-t",
            "fuse.veilfs",
        ],
    );
    assert_success(&output, "mount.fuse.veilfs -s");
    assert!(stderr_of(&output).contains("ignoring unknown mount option 'bogus'"));
    assert!(vault.is_mounted());
    vault.unmount();

    // What mount(8) and systemd hand a helper, all at once.
    let output = helper(
        "mount.veilfs",
        &[
            "-nv",
            "-o",
            &format!(
                "rw,nodev,nosuid,noexec,{passfile},idle=1h,cache_ttl=30s,threads=2,noauto,nofail,_netdev,\
                 user,users,user=nobody,comment=x,x-systemd.automount,x-gvfs-name=Vault"
            ),
            "-t",
            "fuse.veilfs",
        ],
    );
    assert_success(&output, "mount.veilfs with mount(8)'s options");
    assert!(vault.is_mounted());
    vault.unmount();

    // mount.fuse3's form: `veilfs CIPHERDIR MOUNTPOINT -o OPTIONS`.
    let output = run(veilfs()
        .arg(vault.backing_path())
        .arg(vault.mount_path())
        .args(["-o", &format!("rw,dev,suid,{passfile}")]));
    assert_success(&output, "veilfs CIPHERDIR MOUNTPOINT -o");
    assert!(vault.is_mounted());
    vault.unmount();

    // Another file system type, or a missing argument: usage errors.
    let output = helper("mount.veilfs", &["-t", "ext4", "-o", &passfile]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
    let output = run(Command::new(links.join("mount.veilfs")).arg("/only-one"));
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
    let output = run(Command::new(links.join("mount.veilfs")).arg("--help"));
    assert_success(&output, "mount.veilfs --help");
    assert!(String::from_utf8_lossy(&output.stdout).contains("Usage: mount.veilfs"));
}

// ---------------------------------------------------------------------------------------------
// --idle

#[test]
fn idle_unmounts_an_unused_mount() {
    let vault = TestVault::unmounted();
    vault.mount_with(&["--idle", "2s"]);
    let pids = vault.daemon_pids();
    let start = Instant::now();
    assert!(
        wait_for(Duration::from_secs(15), || !vault.is_mounted()),
        "still mounted 15 s after mounting with --idle 2s"
    );
    let after = start.elapsed();
    assert!(
        after >= Duration::from_millis(1500),
        "unmounted after {after:?}"
    );
    assert!(
        wait_for(Duration::from_secs(10), || pids
            .iter()
            .all(|&p| !is_alive(p))),
        "the veilfs process is still running after the idle unmount"
    );
}

#[test]
fn idle_waits_while_a_file_is_open() {
    let vault = TestVault::unmounted();
    // The -o form, as an fstab line would give it.
    vault.mount_with(&["-o", "idle=2s"]);
    fs::write(vault.mount_path().join("open"), b"kept open").unwrap();
    let file = fs::File::open(vault.mount_path().join("open")).unwrap();
    std::thread::sleep(Duration::from_secs(6));
    assert!(
        vault.is_mounted(),
        "unmounted while a file was open in the mount"
    );
    drop(file);
    assert!(
        wait_for(Duration::from_secs(15), || !vault.is_mounted()),
        "still mounted long after the last file was closed"
    );
}

#[test]
fn use_postpones_the_idle_unmount() {
    let vault = TestVault::unmounted();
    vault.mount_with(&["--idle", "2s"]);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        // opendir, readdir, releasedir: requests every time (listings are not cached).
        let _ = fs::read_dir(vault.mount_path()).unwrap().count();
        assert!(vault.is_mounted(), "unmounted while in use");
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(
        wait_for(Duration::from_secs(15), || !vault.is_mounted()),
        "still mounted long after the last use"
    );
}

// ---------------------------------------------------------------------------------------------
// systemd

/// The service example's ExecStart, with the example paths replaced.
fn service_command(vault: &TestVault, credentials: &Path) -> Vec<String> {
    let unit = fs::read_to_string(format!("{DOCS}/veilfs-vault.service")).unwrap();
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart= in veilfs-vault.service");
    exec.split_whitespace()
        .map(|word| {
            word.replace("/usr/local/bin/veilfs", BIN)
                .replace("%d", credentials.to_str().unwrap())
                .replace("/srv/vault", vault.backing_path().to_str().unwrap())
                .replace("/mnt/vault", vault.mount_path().to_str().unwrap())
        })
        .collect()
}

/// Runs the service example's command as systemd would (credentials directory, notify socket at
/// `notify_addr`), and checks READY=1 comes once the mount is live and STOPPING=1 on SIGTERM.
fn run_service(vault: &TestVault, socket: UnixDatagram, notify_addr: &str) {
    let credentials = vault.scratch().join("credentials");
    fs::create_dir(&credentials).unwrap();
    fs::copy(vault.passfile(), credentials.join("veilfs-password")).unwrap();
    let command = service_command(vault, &credentials);
    socket
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut child = Command::new(&command[0])
        .args(&command[1..])
        .env("NOTIFY_SOCKET", notify_addr)
        .env("CREDENTIALS_DIRECTORY", &credentials)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).expect("no READY=1 from the service");
    let message = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(message.lines().any(|l| l == "READY=1"), "{message:?}");
    assert!(vault.is_mounted(), "READY=1 came before the mount was live");
    fs::write(vault.mount_path().join("f"), b"served by the service").unwrap();

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let n = socket
        .recv(&mut buf)
        .expect("no STOPPING=1 from the service");
    assert_eq!(&buf[..n], b"STOPPING=1");
    let status = wait_until(&mut child, Instant::now() + COMMAND_TIMEOUT)
        .expect("the service did not exit after SIGTERM");
    assert!(status.success(), "the service exited with {status}");
    assert!(!vault.is_mounted());
}

#[test]
fn the_service_example_notifies_systemd_and_reads_its_credential() {
    let vault = TestVault::unmounted();
    let path = vault.scratch().join("notify");
    let socket = UnixDatagram::bind(&path).unwrap();
    run_service(&vault, socket, path.to_str().unwrap());
}

#[test]
fn notify_works_with_an_abstract_socket() {
    use std::os::linux::net::SocketAddrExt;
    let vault = TestVault::unmounted();
    let name = format!("veilfs-test-notify-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let socket = UnixDatagram::bind_addr(&addr).unwrap();
    run_service(&vault, socket, &format!("@{name}"));
}

#[test]
fn unit_files_pass_systemd_analyze_verify() {
    let running = Command::new("systemctl")
        .arg("is-system-running")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    eprintln!(
        "systemd state here: {running:?} (units are only verified, not started, by this test)"
    );
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        skip(
            "unit_files_pass_systemd_analyze_verify",
            "systemd-analyze is not installed (systemd)",
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut units = Vec::new();
    for name in [
        "mnt-vault.mount",
        "mnt-vault.automount",
        "veilfs-vault.service",
    ] {
        let text = fs::read_to_string(format!("{DOCS}/{name}")).unwrap();
        // ExecStart= must name an executable that exists.
        let path = dir.path().join(name);
        fs::write(&path, text.replace("/usr/local/bin/veilfs", BIN)).unwrap();
        units.push(path);
    }
    let output = run(Command::new("systemd-analyze")
        .arg("verify")
        .args(&units)
        .env("SYSTEMD_LOG_LEVEL", "warning"));
    let stderr = stderr_of(&output);
    assert_success(&output, "systemd-analyze verify");
    let ours: Vec<&str> = stderr
        .lines()
        .filter(|l| {
            units
                .iter()
                .any(|u| l.contains(u.file_name().unwrap().to_str().unwrap()))
        })
        .collect();
    assert!(
        ours.is_empty(),
        "systemd-analyze warnings:\n{}",
        ours.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Logging

#[test]
fn a_detached_mount_logs_to_syslog_and_never_a_secret() {
    let vault = TestVault::unmounted();
    let log_path = vault.scratch().join("syslog");
    let socket = UnixDatagram::bind(&log_path).unwrap();
    let output = run(veilfs()
        .env("VEILFS_SYSLOG_SOCKET", &log_path)
        .env_remove("RUST_LOG")
        .arg("-vvv")
        .arg("mount")
        .arg("--passfile")
        .arg(vault.passfile())
        .arg(vault.backing_path())
        .arg(vault.mount_path()));
    assert_success(&output, "veilfs -vvv mount");
    // Plaintext names the logs must never show.
    let name = "plaintext-secret-name";
    let dir = vault.mount_path().join(format!("{name}-dir"));
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join(format!("{name}.txt")), b"contents").unwrap();
    fs::rename(
        dir.join(format!("{name}.txt")),
        dir.join(format!("{name}-renamed.txt")),
    )
    .unwrap();
    let _ = fs::read_dir(&dir).unwrap().count();
    let _ = fs::metadata(dir.join("missing-plaintext-secret-name"));
    vault.unmount();

    socket
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let mut messages = Vec::new();
    let mut buf = vec![0u8; 65536];
    while let Ok(n) = socket.recv(&mut buf) {
        messages.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        if messages.last().unwrap().contains(": unmounted ") {
            break;
        }
    }
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("<30>veilfs[") && m.contains("mounted ")),
        "no 'mounted' message at priority daemon.info: {messages:#?}"
    );
    assert!(
        messages.iter().any(|m| m.contains(": unmounted ")),
        "no 'unmounted' message: {messages:#?}"
    );
    for message in &messages {
        assert!(!message.contains(name), "plaintext name logged: {message}");
        assert!(!message.contains(PASSWORD), "password logged: {message}");
        assert!(!message.contains('\n'), "multi-line message: {message:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// scripts/install.sh

#[test]
fn install_script_stages_and_removes_everything() {
    let dest = tempfile::tempdir().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/install.sh");
    let output =
        run(Command::new(script).args(["--destdir", dest.path().to_str().unwrap(), "--bin", BIN]));
    assert_success(&output, "install.sh");
    let root = dest.path();
    let installed: Vec<PathBuf> = [
        "usr/local/bin/veilfs",
        "usr/local/share/man/man1/veilfs.1",
        "usr/local/share/man/man8/mount.fuse.veilfs.8",
        "usr/local/share/bash-completion/completions/veilfs",
        "usr/local/share/zsh/site-functions/_veilfs",
        "usr/local/share/fish/vendor_completions.d/veilfs.fish",
    ]
    .iter()
    .map(|p| root.join(p))
    .collect();
    for path in &installed {
        assert!(path.is_file(), "{} missing", path.display());
    }
    assert_eq!(
        fs::read_link(root.join("sbin/mount.fuse.veilfs")).unwrap(),
        Path::new("/usr/local/bin/veilfs")
    );
    let man = run(veilfs().arg("man"));
    assert_eq!(fs::read(&installed[1]).unwrap(), man.stdout);
    let man = run(veilfs().args(["man", "mount.fuse.veilfs"]));
    assert_eq!(fs::read(&installed[2]).unwrap(), man.stdout);

    let output =
        run(Command::new(script).args(["--destdir", dest.path().to_str().unwrap(), "--uninstall"]));
    assert_success(&output, "install.sh --uninstall");
    for path in &installed {
        assert!(!path.exists(), "{} left behind", path.display());
    }
    assert!(fs::symlink_metadata(root.join("sbin/mount.fuse.veilfs")).is_err());
}
