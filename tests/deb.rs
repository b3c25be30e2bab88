//! The Debian package that `cargo deb` builds, installed for real: `apt-get install
//! ./veilfs_*.deb` puts the binary, the mount(8) helper, the man pages and the completions in
//! place; a vault made by the installed binary mounts through a line in /etc/fstab (`mount
//! MOUNTPOINT`) and keeps its files across mounts; `apt-get remove` (and a purge) take
//! everything away again.
//!
//! It changes the machine, so it runs only when given a package, as root: `VEILFS_DEB=FILE`
//! (scripts/test builds it with `cargo deb` and sets it; without it the test skips, and fails
//! under CI=true). /etc/fstab gets its old contents back, and a helper that another install put
//! in /sbin is moved aside and put back (tests/common/mount8.rs), whatever happens. A veilfs
//! package already installed is left alone: the test fails instead of replacing it.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::mount8::*;
use common::*;

/// How long apt-get may take (it may have to fetch fuse3).
const APT_TIMEOUT: Duration = Duration::from_secs(600);

/// What the package installs, under its final names (man pages are compressed by cargo-deb).
const INSTALLED: &[&str] = &[
    "/usr/bin/veilfs",
    "/usr/sbin/mount.fuse.veilfs",
    "/usr/share/man/man1/veilfs.1.gz",
    "/usr/share/man/man8/mount.fuse.veilfs.8.gz",
    "/usr/share/bash-completion/completions/veilfs",
    "/usr/share/zsh/vendor-completions/_veilfs",
    "/usr/share/fish/vendor_completions.d/veilfs.fish",
    "/usr/share/doc/veilfs/copyright",
    "/usr/share/doc/veilfs/examples/systemd/fstab.example",
    "/usr/share/doc/veilfs/examples/systemd/veilfs-vault.service",
];

/// The comment line above the /etc/fstab line this test adds, so that a run that was killed
/// leaves a line the next run can find and remove.
const FSTAB_MARK: &str = "# added by veilfs's tests/deb.rs for the length of the test";
const FSTAB: &str = "/etc/fstab";

fn apt_get(args: &[&str]) -> Output {
    run_with_timeout(
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive"),
        APT_TIMEOUT,
    )
}

/// The package's status as dpkg tells it (`install ok installed`, ...), if dpkg knows it.
fn package_status() -> Option<String> {
    let output = run(Command::new("dpkg-query").args(["-W", "-f=${Status}", "veilfs"]));
    let status = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    (output.status.success() && !status.is_empty()).then_some(status)
}

/// The files `dpkg -L veilfs` lists, or `None` when dpkg has no list for it.
fn package_files() -> Option<Vec<PathBuf>> {
    let output = run(Command::new("dpkg").args(["-L", "veilfs"]));
    let text = String::from_utf8_lossy(&output.stdout);
    let files: Vec<PathBuf> = text
        .lines()
        .filter(|l| l.starts_with('/'))
        .map(PathBuf::from)
        .collect();
    (output.status.success() && !files.is_empty()).then_some(files)
}

/// The veilfs package, installed from `deb` for one test and purged when it is dropped.
struct Installed;

impl Installed {
    fn install(deb: &Path) -> Installed {
        let deb = deb.to_str().expect("a UTF-8 path");
        let output = apt_get(&["install", "-y", "--no-install-recommends", deb]);
        assert_success(&output, "apt-get install veilfs.deb");
        Installed
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        if package_status().is_some() {
            let _ = apt_get(&["purge", "-y", "veilfs"]);
        }
    }
}

/// /etc/fstab with one more line for the length of a test; its old contents come back on drop.
struct FstabLine {
    before: Option<Vec<u8>>,
}

impl FstabLine {
    fn add(line: &str) -> FstabLine {
        let before = match fs::read(FSTAB) {
            Ok(bytes) => Some(without_marked_lines(&bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => panic!("cannot read {FSTAB}: {e}"),
        };
        let mut text = before.clone().unwrap_or_default();
        if !text.is_empty() && !text.ends_with(b"\n") {
            text.push(b'\n');
        }
        text.extend_from_slice(format!("{FSTAB_MARK}\n{line}\n").as_bytes());
        fs::write(FSTAB, text).unwrap_or_else(|e| panic!("cannot write {FSTAB}: {e}"));
        FstabLine { before }
    }
}

impl Drop for FstabLine {
    fn drop(&mut self) {
        let restored = match &self.before {
            Some(bytes) => fs::write(FSTAB, bytes),
            None => fs::remove_file(FSTAB),
        };
        if let Err(e) = restored {
            eprintln!("cannot restore {FSTAB}: {e}");
        }
    }
}

/// `fstab` without the lines an earlier, killed run added (each mark and the line after it).
fn without_marked_lines(fstab: &[u8]) -> Vec<u8> {
    let mut kept = Vec::with_capacity(fstab.len());
    let mut lines = fstab.split_inclusive(|&b| b == b'\n');
    while let Some(line) = lines.next() {
        if line.strip_suffix(b"\n").unwrap_or(line) == FSTAB_MARK.as_bytes() {
            lines.next();
        } else {
            kept.extend_from_slice(line);
        }
    }
    kept
}

#[test]
fn the_package_installs_mounts_through_fstab_and_removes_cleanly() {
    let Some(deb) = std::env::var_os("VEILFS_DEB").map(PathBuf::from) else {
        skip(
            "the_package_installs_mounts_through_fstab_and_removes_cleanly",
            "VEILFS_DEB is not set (cargo deb builds target/debian/veilfs_*.deb; scripts/test sets it)",
        );
        return;
    };
    if !nix::unistd::geteuid().is_root() {
        skip(
            "the_package_installs_mounts_through_fstab_and_removes_cleanly",
            "not root (apt-get install and /etc/fstab need it)",
        );
        return;
    }
    let deb = fs::canonicalize(&deb).unwrap_or_else(|e| panic!("{}: {e}", deb.display()));
    if let Some(status) = package_status().filter(|s| s.contains(" installed")) {
        panic!(
            "a veilfs package is installed here ({status}): this test would replace it and \
             remove it; apt-get purge veilfs first"
        );
    }

    // The package's helper takes the place of whatever another install left in /sbin.
    let _helper = SbinHelper::clear();
    let installed = Installed::install(&deb);
    let files = package_files().expect("dpkg -L veilfs lists nothing after the install");
    for path in INSTALLED {
        assert!(
            Path::new(path).exists(),
            "{path} is not installed (dpkg -L: {files:?})"
        );
        assert!(
            files.iter().any(|f| f == Path::new(path)),
            "dpkg -L does not list {path}"
        );
    }
    assert_eq!(
        fs::canonicalize(SBIN_HELPER).unwrap(),
        Path::new("/usr/bin/veilfs"),
        "{SBIN_HELPER} does not lead to the installed binary"
    );
    let version = run(Command::new("/usr/bin/veilfs").arg("--version"));
    assert_success(&version, "veilfs --version");
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("veilfs {}", env!("CARGO_PKG_VERSION"))
    );
    let man = run(Command::new("man").args(["-w", "mount.fuse.veilfs"]));
    assert_success(&man, "man -w mount.fuse.veilfs");

    // A vault made by the installed binary, at the release key derivation's floor (a release
    // build refuses the tests' cheaper one).
    let vault = TestVault::unmounted();
    for name in ["veilfs.conf", "veilfs.diriv"] {
        fs::remove_file(vault.backing_path().join(name)).unwrap();
    }
    let init = run(Command::new("/usr/bin/veilfs")
        .args([
            "init",
            "--kdf-memory",
            "19",
            "--kdf-iterations",
            "2",
            "--passfile",
        ])
        .arg(vault.passfile())
        .arg(vault.backing_path()));
    assert_success(&init, "the installed veilfs init");

    let fstab = FstabLine::add(&format!(
        "{} {} fuse.veilfs passfile={},noauto 0 0",
        vault.backing_path().display(),
        vault.mount_path().display(),
        vault.passfile().display()
    ));
    let mount = || {
        let output = run(mount_cmd().arg(vault.mount_path()));
        assert_success(&output, "mount MOUNTPOINT (an /etc/fstab line)");
        assert!(vault.is_mounted(), "not mounted when mount(8) returned");
        assert_type_and_source(&vault);
        let pids = veilfs_processes_with_arg(vault.mount_path());
        assert_eq!(pids.len(), 1, "serving processes: {pids:?}");
        assert_eq!(
            fs::read_link(format!("/proc/{}/exe", pids[0])).unwrap(),
            Path::new("/usr/bin/veilfs"),
            "the mount is not served by the installed binary"
        );
    };
    mount();
    use_and_unmount(&vault);
    // Again, to read what the first mount wrote.
    mount();
    assert_eq!(
        fs::read(vault.mount_path().join("via mount(8).txt")).unwrap(),
        b"hello through mount(8)"
    );
    assert_success(
        &run(Command::new("umount").arg(vault.mount_path())),
        "umount",
    );
    assert!(wait_for(Duration::from_secs(10), || !vault.is_mounted()));
    drop(fstab);

    let output = apt_get(&["remove", "-y", "veilfs"]);
    assert_success(&output, "apt-get remove veilfs");
    for file in files.iter().filter(|f| !f.is_dir()) {
        assert!(
            fs::symlink_metadata(file).is_err(),
            "{} is left after apt-get remove",
            file.display()
        );
    }
    assert!(fs::symlink_metadata(SBIN_HELPER).is_err());
    // A package without conffiles is gone after remove already, which apt-get purge takes for
    // an unknown package; dpkg purges whatever is left, or says there is nothing.
    let output = run(Command::new("dpkg").args(["--purge", "veilfs"]));
    assert_success(&output, "dpkg --purge veilfs");
    assert_eq!(package_files(), None, "dpkg -L veilfs still lists files");
    let status = package_status().unwrap_or_default();
    assert!(
        !status.contains("installed") || status.contains("not-installed"),
        "dpkg still knows veilfs after the purge: {status}"
    );
    assert!(fs::symlink_metadata("/usr/share/doc/veilfs").is_err());
    drop(installed);
}
