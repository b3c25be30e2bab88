//! The key file as a second factor (`veilfs init --keyfile`): a vault made with one opens with the
//! password and the key file together, never with either alone; `info` says so; `passwd` keeps
//! the requirement; the recovery key can set a new key file. Mounts for real.

mod common;

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;

/// A vault created with `--keyfile <scratch>/vault.key` (64 bytes that are not text).
fn keyfile_vault() -> (TestVault, PathBuf) {
    let vault = TestVault::unmounted_with_init_args(|root| {
        let key: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37) ^ 0xa5).collect();
        fs::write(root.join("vault.key"), key).unwrap();
        vec![OsString::from("--keyfile"), root.join("vault.key").into()]
    });
    let keyfile = vault.scratch().join("vault.key");
    (vault, keyfile)
}

fn write_file(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, contents).unwrap();
    path
}

#[test]
fn both_factors_mount_and_neither_alone_does() {
    let (vault, keyfile) = keyfile_vault();
    let keyfile = keyfile.to_str().unwrap();

    // The password alone: refused before any password is read (stdin is /dev/null here).
    let alone = run(veilfs()
        .arg("mount")
        .arg(vault.backing_path())
        .arg(vault.mount_path()));
    assert_fails(&alone, 6, "needs its key file");
    let alone = vault.try_mount(&[]);
    assert_fails(&alone, 6, "--keyfile");
    assert!(!vault.is_mounted());

    // The key file with a wrong password.
    let wrong = write_file(vault.scratch(), "wrong", "not the password\n");
    let output = run(veilfs()
        .arg("mount")
        .arg("--passfile")
        .arg(&wrong)
        .args(["--keyfile", keyfile])
        .arg(vault.backing_path())
        .arg(vault.mount_path()));
    assert_fails(&output, 6, "wrong password or key file");
    assert!(!vault.is_mounted());

    // The password with another key file (the right one less its last byte).
    let mut other = fs::read(keyfile).unwrap();
    other.pop();
    fs::write(vault.scratch().join("other.key"), &other).unwrap();
    let output = vault.try_mount(&[
        "--keyfile",
        vault.scratch().join("other.key").to_str().unwrap(),
    ]);
    assert_fails(&output, 6, "wrong password or key file");
    assert!(!vault.is_mounted());

    // Both.
    vault.mount_with(&["--keyfile", keyfile]);
    fs::write(vault.mount_path().join("two factors"), b"both needed").unwrap();
    vault.unmount();
    // -o keyfile= (the form /etc/fstab uses) works as well.
    vault.mount_with(&["-o", &format!("keyfile={keyfile}")]);
    assert_eq!(
        fs::read(vault.mount_path().join("two factors")).unwrap(),
        b"both needed"
    );
}

#[test]
fn info_and_the_config_record_the_requirement() {
    let (vault, _) = keyfile_vault();
    let info = run(veilfs().arg("info").arg(vault.backing_path()));
    assert_success(&info, "veilfs info");
    let text = String::from_utf8(info.stdout).unwrap();
    assert!(text.contains("\"password\": password+keyfile"), "{text}");
    let json = run(veilfs().args(["info", "--json"]).arg(vault.backing_path()));
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(value["slots"][0]["kind"], "password+keyfile");
    let config: serde_json::Value =
        serde_json::from_slice(&fs::read(vault.backing_path().join("veilfs.conf")).unwrap())
            .unwrap();
    assert_eq!(config["slots"][0]["kind"], "password+keyfile");

    // A vault without one: no slot mentions a key file.
    let plain = TestVault::unmounted();
    let conf = fs::read_to_string(plain.backing_path().join("veilfs.conf")).unwrap();
    assert!(!conf.contains("keyfile"), "{conf}");
    let info = run(veilfs().arg("info").arg(plain.backing_path()));
    assert!(String::from_utf8_lossy(&info.stdout).contains("\"password\": password,"));
}

#[test]
fn a_keyfile_for_a_vault_without_one_is_refused() {
    let vault = TestVault::unmounted();
    let key = write_file(vault.scratch(), "key", "some key\n");
    let output = vault.try_mount(&["--keyfile", key.to_str().unwrap()]);
    assert_fails(&output, 6, "no slot that opens with a key file");
    assert!(!vault.is_mounted());
}

/// `veilfs init` (cheap) of `cipher` with password file `pass` and key file `key`.
fn init_with_keyfile(pass: &Path, key: &Path, cipher: &Path) -> Output {
    run(veilfs()
        .args(["init", "--kdf-memory", "1", "--kdf-iterations", "1"])
        .arg("--passfile")
        .arg(pass)
        .arg("--keyfile")
        .arg(key)
        .arg(cipher))
}

#[test]
fn init_refuses_a_missing_or_empty_keyfile() {
    let dir = tempfile::tempdir().unwrap();
    let cipher = dir.path().join("cipher");
    fs::create_dir(&cipher).unwrap();
    let pass = write_file(dir.path(), "pass", "pw\n");
    for (name, contents) in [("missing", None), ("empty", Some(""))] {
        let key = dir.path().join(name);
        if let Some(contents) = contents {
            fs::write(&key, contents).unwrap();
        }
        let output = init_with_keyfile(&pass, &key, &cipher);
        assert_fails(&output, 1, "cannot read key file");
        assert_eq!(
            fs::read_dir(&cipher).unwrap().count(),
            0,
            "init left files behind"
        );
    }
    // With a key file that exists, init says what the vault now needs.
    let key = write_file(dir.path(), "key", "a key file");
    let output = init_with_keyfile(&pass, &key, &cipher);
    assert_success(&output, "veilfs init --keyfile");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("also needs its key file"), "{stdout}");
    assert!(stdout.contains("--new-keyfile"), "{stdout}");
}

#[test]
fn passwd_keeps_needing_the_keyfile() {
    let (vault, keyfile) = keyfile_vault();
    let new = write_file(vault.scratch(), "new", "the new password\n");
    let passwd = |extra: &[&str]| {
        run(veilfs()
            .arg("passwd")
            .arg("--passfile")
            .arg(vault.passfile())
            .arg("--new-passfile")
            .arg(&new)
            .args(extra)
            .arg(vault.backing_path()))
    };
    assert_fails(&passwd(&[]), 6, "needs its key file");
    assert_success(
        &passwd(&["--keyfile", keyfile.to_str().unwrap()]),
        "veilfs passwd --keyfile",
    );
    let config = fs::read_to_string(vault.backing_path().join("veilfs.conf")).unwrap();
    assert!(
        config.contains("\"kind\": \"password+keyfile\""),
        "{config}"
    );

    // The new password needs the key file too; the old one no longer opens.
    let with_new = |extra: &[&str]| {
        run(veilfs()
            .arg("mount")
            .arg("--passfile")
            .arg(&new)
            .args(extra)
            .arg(vault.backing_path())
            .arg(vault.mount_path()))
    };
    assert_fails(&with_new(&[]), 6, "needs its key file");
    let output = vault.try_mount(&["--keyfile", keyfile.to_str().unwrap()]);
    assert_fails(&output, 6, "wrong password or key file");
    assert_success(
        &with_new(&["--keyfile", keyfile.to_str().unwrap()]),
        "mount with the new password and the key file",
    );
    assert!(vault.is_mounted());
}

#[test]
fn the_recovery_key_sets_a_new_keyfile() {
    let dir = tempfile::tempdir().unwrap();
    let cipher = dir.path().join("cipher");
    let mnt = dir.path().join("mnt");
    fs::create_dir(&cipher).unwrap();
    fs::create_dir(&mnt).unwrap();
    let pass = write_file(dir.path(), "pass", "pw\n");
    let old_key = write_file(dir.path(), "old.key", "old key file");
    let new_key = write_file(dir.path(), "new.key", "new key file");
    let init = run(veilfs()
        .args(["-q", "init", "--kdf-memory", "1", "--kdf-iterations", "1"])
        .arg("--passfile")
        .arg(&pass)
        .arg("--keyfile")
        .arg(&old_key)
        .arg(&cipher));
    assert_success(&init, "veilfs init --keyfile");
    let recovery = dir.path().join("recovery");
    fs::write(&recovery, &init.stdout).unwrap();

    // The key file is lost: without --new-keyfile (or the old one), passwd refuses.
    let passwd = |extra: &[&str]| {
        run(veilfs()
            .arg("passwd")
            .arg("--recovery-key-file")
            .arg(&recovery)
            .arg("--new-passfile")
            .arg(&pass)
            .args(extra)
            .arg(&cipher))
    };
    assert_fails(&passwd(&[]), 6, "--new-keyfile");
    let output = passwd(&["--new-keyfile", new_key.to_str().unwrap()]);
    assert_success(&output, "veilfs passwd --recovery-key-file --new-keyfile");
    assert!(String::from_utf8_lossy(&output.stdout).contains("new.key"));

    let mount = |key: &Path| {
        run(veilfs()
            .arg("mount")
            .arg("--passfile")
            .arg(&pass)
            .arg("--keyfile")
            .arg(key)
            .arg(&cipher)
            .arg(&mnt))
    };
    assert_fails(&mount(&old_key), 6, "wrong password or key file");
    let output = mount(&new_key);
    assert_success(&output, "mount with the new key file");
    assert!(is_mounted(&fs::canonicalize(&mnt).unwrap()));
    assert_success(&run(veilfs().arg("umount").arg(&mnt)), "veilfs umount");
}

#[test]
fn a_key_file_that_is_a_fifo_a_device_a_directory_or_too_large_is_refused_at_once() {
    let (vault, _keyfile) = keyfile_vault();
    let scratch = vault.scratch();
    let fifo = scratch.join("fifo.key");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let big = scratch.join("big.key");
    fs::write(&big, vec![1u8; 1024 * 1024 + 1]).unwrap();
    let dir = scratch.join("dir.key");
    fs::create_dir(&dir).unwrap();
    let cases = [
        (fifo.as_path(), "is a FIFO"),
        (Path::new("/dev/zero"), "is a character device"),
        (dir.as_path(), "is a directory"),
        (big.as_path(), "1048577 bytes long, more than 1048576"),
    ];
    let quick = std::time::Duration::from_secs(20);
    for (key, needle) in cases {
        let named = format!("cannot read key file {}", key.display());
        // mount, passwd, fsck: the key file is read before the password.
        let output = run_with_timeout(
            veilfs()
                .arg("mount")
                .arg("--passfile")
                .arg(vault.passfile())
                .arg("--keyfile")
                .arg(key)
                .arg(vault.backing_path())
                .arg(vault.mount_path()),
            quick,
        );
        assert_fails(&output, 1, &named);
        assert_fails(&output, 1, needle);
        assert!(!vault.is_mounted());
        for verb in ["passwd", "fsck"] {
            let output = run_with_timeout(
                veilfs()
                    .arg(verb)
                    .arg("--keyfile")
                    .arg(key)
                    .arg(vault.backing_path()),
                quick,
            );
            assert_fails(&output, 1, &named);
        }
        // init: nothing is created.
        let fresh = scratch.join("fresh");
        fs::create_dir_all(&fresh).unwrap();
        let output = run_with_timeout(
            veilfs()
                .args(["init", "--kdf-memory", "1", "--kdf-iterations", "1"])
                .arg("--passfile")
                .arg(vault.passfile())
                .arg("--keyfile")
                .arg(key)
                .arg(&fresh),
            quick,
        );
        assert_fails(&output, 1, needle);
        assert_eq!(fs::read_dir(&fresh).unwrap().count(), 0);
    }
}
