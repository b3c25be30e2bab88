//! Permissions: access(2), setuid and setgid cleared by another user's write, and what
//! `allow_other` lets another user do.

use std::fs::{self};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use nix::unistd::AccessFlags;

use crate::common::{io_res, TestVault};
use crate::harness::Pair;
use crate::ops::{mkdir, p, write_file};

#[test]
fn access_checks() {
    let t = Pair::new();
    t.ok("write f", |r| write_file(r, "f", b"x"));
    t.ok("mkdir d", |r| mkdir(r, "d"));
    let flags = [
        ("F_OK", AccessFlags::F_OK),
        ("R_OK", AccessFlags::R_OK),
        ("W_OK", AccessFlags::W_OK),
        ("X_OK", AccessFlags::X_OK),
        (
            "R_OK|W_OK|X_OK",
            AccessFlags::R_OK | AccessFlags::W_OK | AccessFlags::X_OK,
        ),
    ];
    for mode in [0o644, 0o000, 0o100, 0o001, 0o755, 0o600] {
        t.ok(&format!("chmod f {mode:o}"), |r| {
            io_res(fs::set_permissions(
                p(r, "f"),
                fs::Permissions::from_mode(mode),
            ))
        });
        t.ok(&format!("chmod d {mode:o}"), |r| {
            io_res(fs::set_permissions(
                p(r, "d"),
                fs::Permissions::from_mode(mode),
            ))
        });
        for (name, flag) in flags {
            t.both(&format!("access(f mode {mode:o}, {name})"), |r| {
                nix::unistd::access(&p(r, "f"), flag)
            });
            t.both(&format!("access(d mode {mode:o}, {name})"), |r| {
                nix::unistd::access(&p(r, "d"), flag)
            });
        }
    }
    t.both("access missing", |r| {
        nix::unistd::access(&p(r, "missing"), AccessFlags::F_OK)
    });
    t.finish();
}

/// A write or a truncate by a user without CAP_FSETID clears setuid (and setgid on a
/// group-executable file), as on a local filesystem: the adapter does it when the kernel flags
/// the write, and on any truncate by a caller other than root.
#[test]
fn a_write_or_truncate_by_another_user_clears_setuid_and_setgid() {
    let vault = TestVault::unmounted();
    // No attribute cache: the mode read back is the daemon's, not one cached before the write.
    vault.mount_with(&["-o", "allow_other", "--cache-ttl", "0"]);
    let plain = tempfile::tempdir().unwrap();
    for (what, command) in [
        ("write", "echo more >> '{}'"),
        ("truncate", "truncate -s 1 '{}'"),
    ] {
        let mut modes = Vec::new();
        for dir in [vault.mount_path(), plain.path()] {
            // The user `nobody` must reach the file through every parent.
            for parent in dir.ancestors().take(2) {
                fs::set_permissions(parent, fs::Permissions::from_mode(0o755)).unwrap();
            }
            let file = dir.join(format!("setid-{what}"));
            fs::write(&file, b"xyz").unwrap();
            std::os::unix::fs::chown(&file, Some(65534), Some(65534)).unwrap();
            fs::set_permissions(&file, fs::Permissions::from_mode(0o6775)).unwrap();
            let status = nobody("sh")
                .arg("-c")
                .arg(command.replace("{}", &file.display().to_string()))
                .status()
                .unwrap();
            assert!(status.success(), "{what} as nobody in {}", dir.display());
            modes.push(fs::metadata(&file).unwrap().mode() & 0o7777);
        }
        assert_eq!(modes[0], modes[1], "{what}: mount vs plain directory");
        assert_eq!(modes[1], 0o775, "{what}");
    }
}

/// `allow_other` lets other users in with the kernel checking the permission bits, as on a
/// local file system: what the user `nobody` may and may not do is the same as in a plain
/// directory. Without it, the mount is closed to every other user, whatever its modes.
#[test]
fn allow_other_checks_permissions_as_a_plain_directory_does() {
    let vault = TestVault::unmounted();
    vault.mount_with(&["-o", "allow_other", "--cache-ttl", "0"]);
    let plain = tempfile::tempdir().unwrap();
    // Each step as nobody: its exit status, 0 or 1.
    let script = "cd \"$1\" || exit 9
        for step in 'cat private' 'cat public' 'echo more >> public' 'rm public' \
                    'touch closed/new' 'touch open/new' 'ls closed' 'mkdir closed/d' \
                    'mv open/new open/moved' 'chmod 777 public'; do
            if sh -c \"$step\" >/dev/null 2>&1; then echo \"$step: ok\"; else echo \"$step: refused\"; fi
        done";
    let as_nobody = |dir: &Path| {
        let output = nobody("sh")
            .args(["-c", script, "sh"])
            .arg(dir)
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8(output.stdout).unwrap(),
        )
    };
    let mut results = Vec::new();
    for dir in [vault.mount_path(), plain.path()] {
        for parent in dir.ancestors().take(2) {
            fs::set_permissions(parent, fs::Permissions::from_mode(0o755)).unwrap();
        }
        fs::write(dir.join("private"), b"secret").unwrap();
        fs::set_permissions(dir.join("private"), fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(dir.join("public"), b"open").unwrap();
        fs::set_permissions(dir.join("public"), fs::Permissions::from_mode(0o644)).unwrap();
        for (name, mode) in [("closed", 0o755), ("open", 0o777)] {
            fs::create_dir(dir.join(name)).unwrap();
            fs::set_permissions(dir.join(name), fs::Permissions::from_mode(mode)).unwrap();
        }
        results.push(as_nobody(dir));
    }
    assert_eq!(
        results[0], results[1],
        "mount (left) vs plain directory (right)"
    );
    assert_eq!(
        results[1].1,
        "cat private: refused\ncat public: ok\necho more >> public: refused\nrm public: refused\n\
         touch closed/new: refused\ntouch open/new: ok\nls closed: ok\nmkdir closed/d: refused\n\
         mv open/new open/moved: ok\nchmod 777 public: refused\n"
    );
    assert_eq!(
        fs::read(vault.mount_path().join("public")).unwrap(),
        b"open"
    );

    // Without allow_other the kernel lets no other user in, whatever the modes say.
    vault.unmount();
    vault.mount_with(&[]);
    let closed = as_nobody(vault.mount_path());
    assert_eq!(
        closed,
        (Some(9), String::new()),
        "nobody got in without allow_other"
    );
}

/// `program` as the user and the group `nobody` (65534), with no supplementary groups.
fn nobody(program: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", program]);
    cmd
}
