//! mount(8) and umount(8) from the tests that run them (tests/mount_helper.rs, tests/deb.rs):
//! the helper `/sbin/mount.fuse.veilfs` held for one test, what /proc/self/mountinfo says of a
//! mount, and a round trip through a mount made by mount(8).
//!
//! util-linux mount(8) looks for helpers in /sbin only (it ignores PATH), so a test that needs
//! `-t fuse.veilfs` installs the link `/sbin/mount.fuse.veilfs` -> the built binary, but ONLY
//! when nothing is there (or a link left by an earlier run of these tests); another veilfs's
//! helper is moved aside meanwhile and put back after.

use std::fs;
use std::io::ErrorKind;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::*;

const BIN: &str = env!("CARGO_BIN_EXE_veilfs");
pub const SBIN_HELPER: &str = "/sbin/mount.fuse.veilfs";

/// `/sbin/mount.fuse.veilfs` held for one test: nothing but what the test puts there. The tests
/// that use it hold a lock meanwhile, so they run one at a time.
pub struct SbinHelper {
    _lock: MutexGuard<'static, ()>,
}

static SBIN_LOCK: Mutex<()> = Mutex::new(());

/// Where another veilfs's helper (an installed package's, or the link `scripts/install.sh`
/// makes) waits while a test runs.
const SBIN_SAVED: &str = "/sbin/mount.fuse.veilfs.saved-by-veilfs-tests";

impl SbinHelper {
    /// Installs `/sbin/mount.fuse.veilfs` -> the built binary (see [`SbinHelper::clear`]).
    pub fn install() -> SbinHelper {
        let helper = SbinHelper::clear();
        std::os::unix::fs::symlink(BIN, SBIN_HELPER)
            .unwrap_or_else(|e| panic!("cannot install {SBIN_HELPER}: {e}"));
        helper
    }

    /// Leaves nothing at `/sbin/mount.fuse.veilfs`. A helper that is not ours (an installed
    /// veilfs's) is moved aside and put back when the test is done, so that these tests run on a
    /// machine where veilfs is installed too, instead of skipping there.
    pub fn clear() -> SbinHelper {
        let lock = SBIN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        // An earlier run that was killed may have left the installed helper aside.
        Self::restore_saved();
        match fs::symlink_metadata(SBIN_HELPER) {
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => panic!("cannot inspect {SBIN_HELPER}: {e}"),
            Ok(_) if Self::ours_or_dangling() => {
                // Left by an earlier run that was killed, or a dangling link.
                fs::remove_file(SBIN_HELPER).expect("removing the stale helper link");
            }
            Ok(_) => fs::rename(SBIN_HELPER, SBIN_SAVED)
                .unwrap_or_else(|e| panic!("cannot move the installed {SBIN_HELPER} aside: {e}")),
        }
        SbinHelper { _lock: lock }
    }

    /// Whether `/sbin/mount.fuse.veilfs` is a link to the built binary, or leads nowhere (a
    /// relative target counts from /sbin, as the package's `../bin/veilfs` does).
    fn ours_or_dangling() -> bool {
        fs::read_link(SBIN_HELPER).is_ok_and(|t| t == Path::new(BIN))
            || fs::symlink_metadata(SBIN_HELPER).is_ok() && fs::metadata(SBIN_HELPER).is_err()
    }

    /// Puts a helper moved aside back in place of our link (or of nothing).
    fn restore_saved() {
        if fs::symlink_metadata(SBIN_SAVED).is_err() {
            return;
        }
        if Self::ours_or_dangling() {
            let _ = fs::remove_file(SBIN_HELPER);
        }
        if fs::symlink_metadata(SBIN_HELPER).is_err() {
            fs::rename(SBIN_SAVED, SBIN_HELPER)
                .unwrap_or_else(|e| panic!("cannot put {SBIN_SAVED} back: {e}"));
        }
    }
}

impl Drop for SbinHelper {
    fn drop(&mut self) {
        if fs::read_link(SBIN_HELPER).is_ok_and(|t| t == Path::new(BIN)) {
            let _ = fs::remove_file(SBIN_HELPER);
        }
        Self::restore_saved();
    }
}

/// The topmost mount at `path`.
pub fn mount_entry(path: &Path) -> Option<veilfs::mountinfo::MountEntry> {
    veilfs::mountinfo::topmost_at(path).expect("reading /proc/self/mountinfo")
}

pub fn mount_cmd() -> Command {
    let mut cmd = Command::new("mount");
    cmd.stdin(Stdio::null());
    cmd
}

/// Writes, reads back, unmounts with umount(8), and checks the serving process exits.
pub fn use_and_unmount(vault: &TestVault) {
    let file = vault.mount_path().join("via mount(8).txt");
    fs::write(&file, b"hello through mount(8)").expect("writing through the mount");
    assert_eq!(fs::read(&file).unwrap(), b"hello through mount(8)");
    let pids = veilfs_processes_with_arg(vault.mount_path());
    assert_eq!(
        pids.len(),
        1,
        "expected one serving process, found {pids:?}"
    );
    let output = run(Command::new("umount").arg(vault.mount_path()));
    assert_success(&output, "umount");
    assert!(!vault.is_mounted());
    assert!(
        wait_for(Duration::from_secs(10), || !is_alive(pids[0])),
        "the veilfs process is still running after umount"
    );
}

pub fn assert_type_and_source(vault: &TestVault) {
    let entry = mount_entry(vault.mount_path()).expect("mounted");
    assert_eq!(entry.fstype, "fuse.veilfs");
    assert_eq!(Path::new(&entry.source), vault.backing_path());
}
