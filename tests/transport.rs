//! `--transport`: FUSE over io_uring where the kernel's switch
//! (/sys/module/fuse/parameters/enable_uring) is on, /dev/fuse with one log line where it is
//! off, and a clear refusal of `--transport io-uring` there. The tests read the switch and never
//! flip it (other tests mount at the same time): scripts/test runs the suite once with the
//! switch off and once with it on, so each state is checked in one of the two runs. The rest of
//! the io_uring behaviour (unmount, kill -9, `--idle`) is the whole suite's, rerun on io_uring.

mod common;

use std::io::Read;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const SWITCH: &str = "/sys/module/fuse/parameters/enable_uring";

/// Whether the kernel has FUSE over io_uring switched on; None on a kernel without it.
fn uring_switched_on() -> Option<bool> {
    std::fs::read_to_string(SWITCH)
        .ok()
        .map(|value| value.trim() == "Y")
}

/// `veilfs -v mount --foreground --transport HOW`, once the mount is there, its log piped.
fn spawn_foreground(vault: &TestVault, transport: &str) -> Child {
    vault.spawn_foreground(&["-v"], &["--transport", transport], Stdio::piped())
}

/// Unmounts with SIGTERM and returns what the daemon logged.
fn stop(mut child: Child) -> String {
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let status = wait_until(&mut child, Instant::now() + Duration::from_secs(20))
        .expect("exits after SIGTERM");
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(status.success(), "{status}: {log}");
    log
}

/// The names of the daemon's threads.
fn thread_names(pid: u32) -> Vec<String> {
    let mut names = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let comm = task.unwrap().path().join("comm");
        if let Ok(name) = std::fs::read_to_string(comm) {
            names.push(name.trim().to_owned());
        }
    }
    names
}

/// Some work through the mount, compared with what was written.
fn use_the_mount(vault: &TestVault) {
    let dir = vault.mount_path().join("d");
    std::fs::create_dir(&dir).unwrap();
    let data: Vec<u8> = (0..3 << 20).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(dir.join("f"), &data).unwrap();
    assert_eq!(std::fs::read(dir.join("f")).unwrap(), data);
    std::fs::rename(dir.join("f"), dir.join("g")).unwrap();
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        1,
        "one entry after the rename"
    );
    std::fs::remove_file(dir.join("g")).unwrap();
    std::fs::remove_dir(&dir).unwrap();
}

#[test]
fn auto_takes_io_uring_where_the_kernel_offers_it_and_says_so_once_where_not() {
    require_fuse();
    let Some(on) = uring_switched_on() else {
        // A kernel without the switch has no FUSE over io_uring: auto must still mount.
        let vault = TestVault::unmounted();
        let child = spawn_foreground(&vault, "auto");
        use_the_mount(&vault);
        let log = stop(child);
        assert!(log.contains("serving through /dev/fuse"), "{log}");
        return;
    };
    let vault = TestVault::unmounted();
    let child = spawn_foreground(&vault, "auto");
    use_the_mount(&vault);
    // The queues' threads start once the mount is up (requests queue in the kernel meanwhile).
    let has_queues = |pid| {
        thread_names(pid)
            .iter()
            .any(|t| t.starts_with("veilfs-uring-"))
    };
    let queues = wait_for(Duration::from_secs(if on { 10 } else { 1 }), || {
        has_queues(child.id())
    });
    let threads = thread_names(child.id());
    let log = stop(child);
    let about_uring: Vec<&str> = log.lines().filter(|l| l.contains("io_uring")).collect();
    assert_eq!(about_uring.len(), 1, "one line about io_uring: {log}");
    if on {
        assert!(
            about_uring[0].contains("serving through FUSE over io_uring"),
            "{log}"
        );
        assert!(queues, "{threads:?}");
    } else {
        assert!(
            about_uring[0].contains("switched off") && about_uring[0].contains(SWITCH),
            "{log}"
        );
        assert!(
            about_uring[0].contains("serving through /dev/fuse"),
            "{log}"
        );
        assert!(!queues, "{threads:?}");
    }
}

#[test]
fn io_uring_is_served_through_the_ring_or_refused_clearly() {
    require_fuse();
    let vault = TestVault::unmounted();
    if uring_switched_on() != Some(true) {
        // Refused before the password is read, with the way to switch it on.
        let output = vault.try_mount(&["--transport", "io-uring"]);
        let stderr = stderr_of(&output);
        assert_eq!(output.status.code(), Some(8), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
        assert!(
            stderr.starts_with("veilfs: --transport io-uring: "),
            "{stderr}"
        );
        assert!(!vault.is_mounted());
        return;
    }
    let child = spawn_foreground(&vault, "io-uring");
    let pid = child.id();
    let before = ring_completions(pid);
    use_the_mount(&vault);
    let after = ring_completions(pid);
    assert!(
        after > before + 10,
        "requests went through the ring: {before} -> {after} completions"
    );
    let log = stop(child);
    assert!(log.contains("serving through FUSE over io_uring"), "{log}");
}

/// Completions the daemon's io_urings have posted (their fdinfo's `CqTail`), summed.
fn ring_completions(pid: u32) -> u64 {
    let mut total = 0;
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap() {
        let fd = fd.unwrap();
        let Ok(target) = std::fs::read_link(fd.path()) else {
            continue;
        };
        if !target.to_string_lossy().contains("io_uring") {
            continue;
        }
        let info = std::fs::read_to_string(format!(
            "/proc/{pid}/fdinfo/{}",
            fd.file_name().to_string_lossy()
        ))
        .unwrap_or_default();
        for line in info.lines() {
            if let Some(n) = line.strip_prefix("CqTail:") {
                total += n.trim().parse::<u64>().unwrap_or(0);
            }
        }
    }
    total
}

#[test]
fn a_transport_that_does_not_exist_is_a_usage_error() {
    let vault = TestVault::unmounted();
    let output = vault.try_mount(&["--transport", "carrier-pigeon"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
    let output = vault.try_mount(&["-o", "transport=carrier-pigeon"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
    assert!(stderr_of(&output).contains("auto, io-uring, dev-fuse"));
    let output = vault.try_mount(&["--transport", "dev-fuse", "-o", "transport=auto"]);
    assert!(
        stderr_of(&output).contains("disagree"),
        "{}",
        stderr_of(&output)
    );
    assert!(!vault.is_mounted());
}
