//! `veilfs rekey` and `veilfs upgrade` (issue 12's rotation), for real: a tree copied in through
//! the mount, the command killed with SIGKILL at several points and run again, then the vault
//! mounted and compared with the source (contents, symlink targets, modes, xattrs, hard links);
//! the pre-rotation config, password and recovery key open nothing, and no backing name or file
//! header from before the rotation is left.

mod common;

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::process::Stdio;
use std::thread;
use std::time::Duration;

use common::rekey::{
    config_text, mount_with_password, rekey, setxattr, write_passfile, NEW_PASSWORD,
};
use common::tree::{assert_same_tree, backing_state, snapshot};
use common::{assert_success, cp_a, run, slot_labels, stderr_of, veilfs, TestVault};

/// 2,000 files in 300 directories (three levels), with long names, empty, short, sector-edge
/// and sparse files, symlinks, hard links, xattrs on files and directories, and a directory
/// its owner may not write.
fn make_source(root: &Path) {
    let long = "l".repeat(230);
    let mut files = 0;
    for d in 0..300 {
        let dir = root.join(format!("d{}", d % 10)).join(format!("sub{d}"));
        fs::create_dir_all(&dir).unwrap();
        for f in 0..(if d < 200 { 7 } else { 6 }) {
            let name = if f == 0 {
                format!("{long}-{d}")
            } else {
                format!("f{f}-ü-{d}.txt")
            };
            let size = [0, 1, 15, 16, 4095, 4097, 9000][f % 7] + d;
            let data: Vec<u8> = (0..size).map(|i| (i * 7 + d) as u8).collect();
            fs::write(dir.join(name), data).unwrap();
            files += 1;
        }
        if d % 50 == 0 {
            setxattr(&dir, "user.dir", &format!("directory {d}"));
            setxattr(&dir.join(format!("f1-ü-{d}.txt")), "user.tag", "x");
            symlink(format!("f2-ü-{d}.txt"), dir.join("link")).unwrap();
            fs::hard_link(dir.join(format!("f3-ü-{d}.txt")), dir.join("hard")).unwrap();
        }
    }
    assert_eq!(files, 1800 + 200);
    let sparse = root.join("sparse");
    let file = fs::File::create(&sparse).unwrap();
    file.set_len(8 << 20).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, b"the end", 8 << 20).unwrap();
    fs::hard_link(root.join("d1/sub1/f4-ü-1.txt"), root.join("d2/across")).unwrap();
    fs::set_permissions(root.join("d3/sub3"), fs::Permissions::from_mode(0o555)).unwrap();
}

#[test]
fn rekey_killed_at_several_points_then_finished_keeps_every_file_and_revokes_the_old_secrets() {
    let vault = TestVault::unmounted();
    let recovery = vault.scratch().join("recovery.txt");
    // The vault's first recovery key: init printed it, so make a fresh vault whose key we keep.
    fs::remove_dir_all(vault.backing_path()).unwrap();
    fs::create_dir(vault.backing_path()).unwrap();
    let init = run(veilfs()
        .args([
            "init",
            "-q",
            "--kdf-memory",
            "1",
            "--kdf-iterations",
            "1",
            "--passfile",
        ])
        .arg(vault.passfile())
        .arg(vault.backing_path()));
    assert_success(&init, "init");
    fs::write(&recovery, &init.stdout).unwrap();

    let source = vault.scratch().join("source");
    make_source(&source);
    vault.mount_with(&[]);
    cp_a(&source.join("."), vault.mount_path());
    let expected = snapshot(&source);
    assert_same_tree(&snapshot(vault.mount_path()), &expected, "the copy in");
    vault.unmount();

    let old_config = config_text(&vault);
    let (old_names, old_headers) = backing_state(vault.backing_path());
    let new_pass = write_passfile(vault.scratch(), "new-pass", NEW_PASSWORD);

    // Killed with SIGKILL after longer and longer times, until a run finishes by itself. A run
    // killed before it saved the new config started nothing: the next starts again with the
    // old password; after that, every run finishes the rotation with the new one.
    let mut delay = Duration::from_millis(40);
    let mut killed_midway = 0;
    let finished = loop {
        let rotating = config_text(&vault).contains("\"rotation\"");
        let password = if rotating || config_text(&vault) != old_config {
            new_pass.clone()
        } else {
            vault.passfile().to_path_buf()
        };
        let mut child = rekey(&vault, &password, &new_pass).spawn().unwrap();
        thread::sleep(delay);
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            child.wait().unwrap();
            if config_text(&vault).contains("\"rotation\"") {
                killed_midway += 1;
                // Meanwhile the vault opens for nothing else.
                let mount = mount_with_password(&vault, &new_pass);
                assert_eq!(mount.status.code(), Some(5), "{}", stderr_of(&mount));
                assert!(stderr_of(&mount).contains("run 'veilfs rekey'"));
                let info = run(veilfs().arg("info").arg(vault.backing_path()));
                assert!(String::from_utf8_lossy(&info.stdout).contains("Unfinished:"));
            }
            delay = delay.mul_f32(1.7);
            continue;
        }
        break child.wait_with_output().unwrap();
    };
    assert_success(&finished, "the last rekey run");
    eprintln!("rekey killed {killed_midway} times during the rotation");
    assert!(killed_midway >= 1, "no kill landed during the rotation");
    assert!(!config_text(&vault).contains("\"rotation\""));

    // Every file as it was, through a mount with the new password.
    let mount = mount_with_password(&vault, &new_pass);
    assert_success(&mount, "mount with the new password");
    assert_same_tree(
        &snapshot(vault.mount_path()),
        &expected,
        "after the rotation",
    );
    vault.unmount();
    let fsck = run(veilfs()
        .arg("fsck")
        .arg("--passfile")
        .arg(&new_pass)
        .arg(vault.backing_path()));
    assert_success(&fsck, "fsck after the rotation");

    // No backing name and no file ID from before is left.
    let (new_names, new_headers) = backing_state(vault.backing_path());
    assert!(old_names.is_disjoint(&new_names), "an old name is left");
    assert!(
        old_headers.is_disjoint(&new_headers),
        "an old file header is left"
    );

    // The old password opens nothing: not the new config, and not the old config put back.
    let mount = vault.try_mount(&[]);
    assert_eq!(mount.status.code(), Some(6), "{}", stderr_of(&mount));
    fs::write(vault.backing_path().join("veilfs.conf"), &old_config).unwrap();
    let mount = vault.try_mount(&[]);
    assert_eq!(mount.status.code(), Some(5), "{}", stderr_of(&mount));
    let recover = run(veilfs()
        .arg("passwd")
        .arg("--recovery-key-file")
        .arg(&recovery)
        .arg("--new-passfile")
        .arg(&new_pass)
        .arg(vault.backing_path()));
    assert_eq!(recover.status.code(), Some(5), "{}", stderr_of(&recover));
}

#[test]
fn rekey_leaves_and_reports_what_decrypts_under_neither_key() {
    let vault = TestVault::new();
    fs::write(vault.mount_path().join("kept"), b"kept").unwrap();
    vault.unmount();
    // A sync peer's planted name, under no key of this vault.
    let planted = vault.backing_path().join("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    fs::write(&planted, b"junk").unwrap();
    let new_pass = write_passfile(vault.scratch(), "new-pass", NEW_PASSWORD);
    let output = rekey(&vault, vault.passfile(), &new_pass).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
    assert!(
        stderr_of(&output).contains("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        "{}",
        stderr_of(&output)
    );
    assert!(planted.exists());
    // The rotation itself finished: the vault mounts with the new password.
    assert!(!config_text(&vault).contains("\"rotation\""));
    let mount = mount_with_password(&vault, &new_pass);
    assert_success(&mount, "mount");
    assert_eq!(fs::read(vault.mount_path().join("kept")).unwrap(), b"kept");
}

#[test]
fn rekey_and_upgrade_refuse_the_other_format_and_a_mounted_vault() {
    let vault = TestVault::new();
    let new_pass = write_passfile(vault.scratch(), "new-pass", NEW_PASSWORD);
    let busy = rekey(&vault, vault.passfile(), &new_pass).output().unwrap();
    assert_eq!(busy.status.code(), Some(10), "{}", stderr_of(&busy));
    vault.unmount();
    let upgrade = run(veilfs()
        .arg("upgrade")
        .arg("--passfile")
        .arg(vault.passfile())
        .arg("--new-passfile")
        .arg(&new_pass)
        .arg(vault.backing_path()));
    assert_eq!(upgrade.status.code(), Some(2), "{}", stderr_of(&upgrade));
    assert!(stderr_of(&upgrade).contains("already format 2"));

    let v1 = TestVault::unmounted_v1();
    let rekey = rekey(&v1, v1.passfile(), &new_pass).output().unwrap();
    assert_eq!(rekey.status.code(), Some(2), "{}", stderr_of(&rekey));
    assert!(stderr_of(&rekey).contains("veilfs upgrade"));
}

#[test]
fn upgrade_moves_a_format_1_vault_to_format_2_with_every_file() {
    let vault = TestVault::unmounted_v1();
    vault.mount_with(&[]);
    let source = vault.scratch().join("source");
    fs::create_dir_all(source.join("dir/inner")).unwrap();
    fs::write(source.join("dir/inner/file"), vec![7; 10000]).unwrap();
    fs::write(source.join("x".repeat(240)), b"long").unwrap();
    symlink("dir/inner/file", source.join("link")).unwrap();
    setxattr(&source.join("dir"), "user.k", "v");
    cp_a(&source.join("."), vault.mount_path());
    // A directory renamed in format 1 keeps an IV of its own: upgrade reads it from its file.
    fs::rename(
        vault.mount_path().join("dir"),
        vault.mount_path().join("moved"),
    )
    .unwrap();
    fs::rename(source.join("dir"), source.join("moved")).unwrap();
    fs::remove_file(source.join("link")).unwrap();
    symlink("dir/inner/file", source.join("link")).unwrap();
    let expected = snapshot(&source);
    assert_same_tree(&snapshot(vault.mount_path()), &expected, "the copy in");
    vault.unmount();
    let old_config = config_text(&vault);

    let upgrade = run(veilfs()
        .arg("upgrade")
        .arg("--passfile")
        .arg(vault.passfile())
        .arg("--new-passfile")
        .arg(vault.passfile())
        .arg(vault.backing_path()));
    assert_success(&upgrade, "upgrade");
    let config = config_text(&vault);
    assert!(config.contains("\"format\": 2"), "{config}");
    assert!(!config.contains("\"rotation\""), "{config}");
    vault.mount_with(&[]);
    assert_same_tree(
        &snapshot(vault.mount_path()),
        &expected,
        "after the upgrade",
    );
    vault.unmount();
    // The format 1 config (whose recovery key is its master key) opens nothing any more.
    fs::write(vault.backing_path().join("veilfs.conf"), old_config).unwrap();
    let mount = vault.try_mount(&[]);
    assert_eq!(mount.status.code(), Some(5), "{}", stderr_of(&mount));
}

/// Issue 12: "old slots are dropped unless carried over explicitly". A key-file slot kept with
/// `--keep-slot LABEL=FILE` opens the rotated vault with its key file alone; a slot not kept
/// does not; a kept slot's secret is checked against its old slot first.
#[test]
fn slots_are_dropped_unless_kept_and_a_kept_key_file_slot_still_opens() {
    let vault = TestVault::unmounted();
    let keyfile = vault.scratch().join("device.key");
    fs::write(&keyfile, b"a device's key file").unwrap();
    let other = vault.scratch().join("other.key");
    fs::write(&other, b"another device's key file").unwrap();
    for (label, file) in [("nas", &keyfile), ("tablet", &other)] {
        let add = run(veilfs()
            .args(["slot", "add", "--kdf-memory", "1", "--kdf-iterations", "1"])
            .args(["--kind", "keyfile", "--label", label, "--new-keyfile"])
            .arg(file)
            .arg("--passfile")
            .arg(vault.passfile())
            .arg(vault.backing_path()));
        assert_success(&add, "slot add");
    }
    let new_pass = write_passfile(vault.scratch(), "new-pass", NEW_PASSWORD);

    // A wrong key file for the kept slot: refused before anything changes.
    let config = config_text(&vault);
    let wrong = rekey(&vault, vault.passfile(), &new_pass)
        .arg(format!("--keep-slot=nas={}", other.display()))
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(6), "{}", stderr_of(&wrong));
    assert_eq!(config_text(&vault), config, "nothing was written");

    let done = rekey(&vault, vault.passfile(), &new_pass)
        .arg(format!("--keep-slot=nas={}", keyfile.display()))
        .output()
        .unwrap();
    assert_success(&done, "rekey --keep-slot");
    let stdout = String::from_utf8_lossy(&done.stdout);
    assert!(stdout.contains("\"tablet\" (keyfile)"), "{stdout}");
    assert_eq!(
        slot_labels(vault.backing_path()),
        ["password", "nas", "recovery key"]
    );

    let mount = |file: &Path| {
        run(veilfs()
            .arg("mount")
            .arg("--keyfile")
            .arg(file)
            .arg(vault.backing_path())
            .arg(vault.mount_path())
            .stdin(Stdio::null()))
    };
    assert_success(&mount(&keyfile), "mount with the kept key file alone");
    vault.unmount();
    let dropped = mount(&other);
    assert_eq!(dropped.status.code(), Some(6), "{}", stderr_of(&dropped));
}
