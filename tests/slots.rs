//! Format 2 keys as an attacker with write access to the backing directory tries them, and as a
//! user with several devices uses them: every edit of veilfs.conf is caught on every unlock
//! path before anything is written, a config from another vault is refused (never "repaired"),
//! an absurd config is refused before any allocation, and unlock slots come and go.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::{assert_fails, assert_success, run, slot_labels, veilfs, PASSWORD};
use serde_json::Value;

struct Vault {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    cipher: PathBuf,
    mnt: PathBuf,
    passfile: PathBuf,
    /// The recovery key `init -q` printed, in a file.
    recovery: PathBuf,
}

impl Vault {
    /// A vault made by `veilfs init` (cheap key derivation) with `extra` arguments.
    fn new(extra: &[&str]) -> Vault {
        common::require_fuse();
        let tmp = tempfile::Builder::new()
            .prefix("veilfs-slots-")
            .tempdir()
            .unwrap();
        let root = fs::canonicalize(tmp.path()).unwrap();
        let (cipher, mnt) = (root.join("cipher"), root.join("mnt"));
        fs::create_dir(&cipher).unwrap();
        fs::create_dir(&mnt).unwrap();
        let passfile = root.join("passfile");
        fs::write(&passfile, format!("{PASSWORD}\n")).unwrap();
        let init = run(veilfs()
            .args(["-q", "init", "--kdf-memory", "1", "--kdf-iterations", "1"])
            .arg("--passfile")
            .arg(&passfile)
            .args(extra)
            .arg(&cipher));
        assert_success(&init, "veilfs init");
        let recovery = root.join("recovery.txt");
        fs::write(&recovery, &init.stdout).unwrap();
        Vault {
            _tmp: tmp,
            root,
            cipher,
            mnt,
            passfile,
            recovery,
        }
    }

    fn file(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.root.join(name);
        fs::write(&path, contents).unwrap();
        path
    }

    fn config(&self) -> Value {
        serde_json::from_slice(&self.config_bytes()).unwrap()
    }

    fn config_bytes(&self) -> Vec<u8> {
        fs::read(self.cipher.join("veilfs.conf")).unwrap()
    }

    /// Replaces veilfs.conf as someone with write access to the backing directory would.
    fn plant_config(&self, bytes: &[u8]) {
        let path = self.cipher.join("veilfs.conf");
        fs::remove_file(&path).unwrap();
        fs::write(&path, bytes).unwrap();
    }

    /// `veilfs ARGS... CIPHERDIR [MOUNTPOINT]` with stdin closed.
    fn veilfs(&self, args: &[&str], mountpoint: bool) -> Output {
        let mut cmd = veilfs();
        cmd.args(args).arg(&self.cipher);
        if mountpoint {
            cmd.arg(&self.mnt);
        }
        run(cmd.stdin(std::process::Stdio::null()))
    }

    fn mount(&self, args: &[&str]) -> Output {
        let mut all = vec!["mount"];
        all.extend_from_slice(args);
        self.veilfs(&all, true)
    }

    /// `veilfs slot add` of a cheap key-file slot labelled `nas` taking `keyfile`, unlocked with
    /// the password and `unlock` (more options).
    fn add_keyfile_slot(&self, keyfile: &str, unlock: &[&str]) -> Output {
        let mut args = vec![
            "slot",
            "add",
            "--kdf-memory",
            "1",
            "--kdf-iterations",
            "1",
            "--kind",
            "keyfile",
            "--label",
            "nas",
            "--new-keyfile",
            keyfile,
            "--passfile",
            self.passfile(),
        ];
        args.extend_from_slice(unlock);
        self.veilfs(&args, false)
    }

    /// `veilfs passwd` with the recovery key in file `recovery`, the new password the old one.
    fn passwd_with_recovery_key(&self, recovery: &str) -> Output {
        let args = [
            "passwd",
            "--recovery-key-file",
            recovery,
            "--new-passfile",
            self.passfile(),
        ];
        self.veilfs(&args, false)
    }

    fn unmount(&self) {
        assert_success(&run(veilfs().arg("umount").arg(&self.mnt)), "veilfs umount");
    }

    fn passfile(&self) -> &str {
        self.passfile.to_str().unwrap()
    }

    fn recovery(&self) -> &str {
        self.recovery.to_str().unwrap()
    }
}

impl Drop for Vault {
    fn drop(&mut self) {
        common::unmount_all(&self.mnt);
    }
}

#[track_caller]
/// Every file of the backing directory with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path.clone());
                out.insert(path, Vec::new());
            } else {
                out.insert(path.clone(), fs::read(&path).unwrap());
            }
        }
    }
    out
}

/// issue 12's first attack, on format 2: lower the key derivation cost and drop the key-file
/// requirement of the password slot. Password, key file and recovery key all refuse, and
/// nothing is rewritten.
#[test]
fn a_downgraded_config_is_refused_on_every_unlock_path() {
    let device_key = b"device key, 64 bytes of it would do; these are enough for the test";
    let keyfile_path = {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("second.key");
        fs::write(&path, b"the second factor").unwrap();
        (tmp, path)
    };
    let vault = Vault::new(&["--keyfile", keyfile_path.1.to_str().unwrap()]);
    let second = keyfile_path.1.to_str().unwrap();
    let device = vault.file("device.key", device_key);
    assert_success(
        &vault.add_keyfile_slot(device.to_str().unwrap(), &["--keyfile", second]),
        "slot add",
    );
    // Everything works before the attack.
    assert_success(
        &vault.mount(&["--keyfile", device.to_str().unwrap()]),
        "mount",
    );
    fs::write(vault.mnt.join("secret"), b"data").unwrap();
    vault.unmount();

    let mut forged = vault.config();
    let slot = &mut forged["slots"][0];
    assert_eq!(slot["kind"], "password+keyfile");
    slot["kind"] = "password".into();
    slot["kdf"]["memory_kib"] = 8.into();
    vault.plant_config(&serde_json::to_vec_pretty(&forged).unwrap());
    let planted = snapshot(&vault.cipher);

    // The password alone: its slot is bound to its kind and cost, so it does not open.
    assert_fails(
        &vault.mount(&["--passfile", vault.passfile()]),
        6,
        "wrong password",
    );
    // The key-file slot opens, and the MAC finds the edit before the mount.
    assert_fails(
        &vault.mount(&["--keyfile", device.to_str().unwrap()]),
        5,
        "modified by someone without the key",
    );
    assert!(!common::is_mounted(&vault.mnt));
    // The recovery key, the path the user takes when the password "stops working".
    assert_fails(
        &vault.passwd_with_recovery_key(vault.recovery()),
        5,
        "modified by someone without the key",
    );
    for args in [
        vec!["fsck", "--keyfile", device.to_str().unwrap()],
        vec!["fsck", "--repair", "--keyfile", device.to_str().unwrap()],
    ] {
        assert_fails(&vault.veilfs(&args, false), 5, "modified");
    }
    assert_eq!(snapshot(&vault.cipher), planted, "nothing was rewritten");
}

/// issue 12's second attack: another vault's config, which opens with the same password, is
/// planted in this vault. Mount and fsck refuse it; `fsck --repair` changes nothing.
#[test]
fn a_foreign_config_with_the_same_password_is_refused() {
    let vault = Vault::new(&[]);
    assert_success(&vault.mount(&["--passfile", vault.passfile()]), "mount");
    fs::create_dir(vault.mnt.join("photos")).unwrap();
    fs::write(vault.mnt.join("photos/cat.jpg"), b"meow").unwrap();
    vault.unmount();
    let other = Vault::new(&[]);
    vault.plant_config(&other.config_bytes());
    let planted = snapshot(&vault.cipher);

    assert_fails(
        &vault.mount(&["--passfile", vault.passfile()]),
        5,
        "does not belong to this vault",
    );
    assert!(!common::is_mounted(&vault.mnt));
    for args in [
        vec!["fsck", "--passfile", vault.passfile()],
        vec!["fsck", "--repair", "--passfile", vault.passfile()],
        vec!["decrypt-path", "--passfile", vault.passfile()],
    ] {
        assert_fails(&vault.veilfs(&args, false), 5, "does not belong");
    }
    // Its recovery key fits its own config, not this vault.
    assert_fails(
        &vault.passwd_with_recovery_key(other.recovery()),
        5,
        "does not belong",
    );
    assert_eq!(snapshot(&vault.cipher), planted, "nothing was repaired");

    // Without the root IV file, the entries decide.
    fs::remove_file(vault.cipher.join("veilfs.diriv")).unwrap();
    assert_fails(
        &vault.veilfs(&["fsck", "--repair", "--passfile", vault.passfile()], false),
        5,
        "none of the",
    );
    assert!(!vault.cipher.join("veilfs.diriv").exists());
}

/// issue 12's third attack: a config that asks for 64 GiB of memory, or says something twice.
#[test]
fn absurd_or_ambiguous_configs_are_refused_before_any_key_derivation() {
    let vault = Vault::new(&[]);
    let good = vault.config();
    let mut huge = good.clone();
    huge["slots"][0]["kdf"]["memory_kib"] = (64u64 << 20).into();
    vault.plant_config(&serde_json::to_vec_pretty(&huge).unwrap());
    // Under a 2 GiB address-space limit an attempt to allocate would fail differently.
    let out = run(std::process::Command::new("prlimit")
        .arg("--as=2147483648")
        .arg(env!("CARGO_BIN_EXE_veilfs"))
        .args(["mount", "--passfile", vault.passfile()])
        .arg(&vault.cipher)
        .arg(&vault.mnt));
    assert_fails(&out, 5, "65536 MiB is more than this machine allows");
    assert_fails(&vault.veilfs(&["info"], false), 5, "65536 MiB");

    let text = String::from_utf8(serde_json::to_vec_pretty(&good).unwrap()).unwrap();
    let twice = text.replacen(
        "\"generation\": 1,",
        "\"generation\": 1,\n  \"generation\": 2,",
        1,
    );
    vault.plant_config(twice.as_bytes());
    assert_fails(
        &vault.mount(&["--passfile", vault.passfile()]),
        5,
        "duplicate field `generation`",
    );
}

#[test]
fn slots_come_and_go_and_the_last_one_stays() {
    let vault = Vault::new(&[]);
    let device = vault.file("device.key", b"a device's key file");
    let device = device.to_str().unwrap();
    assert_success(&vault.add_keyfile_slot(device, &[]), "slot add");

    // The device mounts with its key file alone: no password is read (stdin is closed).
    assert_success(
        &vault.mount(&["--keyfile", device]),
        "mount with the key file",
    );
    fs::write(vault.mnt.join("from the nas"), b"hello").unwrap();
    vault.unmount();

    assert_eq!(
        slot_labels(&vault.cipher),
        ["password", "recovery key", "nas"]
    );

    // Removed (through the recovery key): it no longer opens the vault.
    let remove = vault.veilfs(
        &["slot", "remove", "--recovery-key-file", vault.recovery()],
        false,
    );
    assert_fails(&remove, 2, "SLOT");
    let mut cmd = veilfs();
    cmd.args(["slot", "remove", "--recovery-key-file", vault.recovery()])
        .arg(&vault.cipher)
        .arg("nas");
    let removed = run(&mut cmd);
    assert_success(&removed, "slot remove");
    assert!(String::from_utf8_lossy(&removed.stdout).contains("only rotating the master key"));
    assert_fails(
        &vault.mount(&["--keyfile", device]),
        6,
        "no slot that opens with a key file",
    );

    // Down to one slot, which cannot go.
    let remove = |slot: &str| {
        let mut cmd = veilfs();
        cmd.args(["slot", "remove", "--passfile", vault.passfile()])
            .arg(&vault.cipher)
            .arg(slot);
        run(&mut cmd)
    };
    assert_success(&remove("recovery key"), "slot remove 'recovery key'");
    assert_fails(&remove("password"), 2, "last");
    assert_success(&vault.mount(&["--passfile", vault.passfile()]), "mount");
    assert_eq!(fs::read(vault.mnt.join("from the nas")).unwrap(), b"hello");
    vault.unmount();
    // The removed recovery key opens nothing any more.
    assert_fails(
        &vault.passwd_with_recovery_key(vault.recovery()),
        6,
        "recovery",
    );
}

/// issue 12's recovery contact, with a test age identity as the contact: the contact's answer
/// and the recovery passphrase together open the vault; either alone does not.
#[test]
fn a_recovery_contact_and_the_passphrase_open_the_vault_together_only() {
    use age::secrecy::ExposeSecret;

    let vault = Vault::new(&[]);
    let contact = age::x25519::Identity::generate();
    let identity = vault.file(
        "contact.key",
        format!("{}\n", contact.to_string().expose_secret()).as_bytes(),
    );
    let passphrase = vault.file("passphrase", b"our recovery passphrase\n");
    let recipient = contact.to_public().to_string();
    let mut add = veilfs();
    add.args(["slot", "add", "--kdf-memory", "1", "--kdf-iterations", "1"])
        .args([
            "--kind",
            "contact",
            "--label",
            "alice",
            "--contact",
            &recipient,
        ])
        .arg("--new-passfile")
        .arg(&passphrase)
        .arg("--passfile")
        .arg(&vault.passfile)
        .arg(&vault.cipher);
    let added = run(&mut add);
    assert_success(&added, "slot add --kind contact");
    assert!(String::from_utf8_lossy(&added.stdout).contains("contact-request"));

    // The user asks; the contact answers with their key.
    let mut request = veilfs();
    request
        .args(["slot", "contact-request"])
        .arg(&vault.cipher)
        .arg("alice");
    let request = run(&mut request);
    assert_success(&request, "slot contact-request");
    let request_file = vault.file("request.age", &request.stdout);
    let mut answer = veilfs();
    answer
        .args(["slot", "contact-answer", "-i"])
        .arg(&identity)
        .arg(&request_file);
    let answer = run(&mut answer);
    assert_success(&answer, "slot contact-answer");
    let answer_file = vault.file("answer.txt", &answer.stdout);

    let passwd = |share: &Path, passfile: &Path| {
        let mut cmd = veilfs();
        cmd.arg("passwd")
            .arg("--contact-share")
            .arg(share)
            .arg("--passfile")
            .arg(passfile)
            .arg("--new-passfile")
            .arg(vault.file("new", b"a new password\n"))
            .arg(&vault.cipher);
        run(&mut cmd)
    };
    // The share with a wrong passphrase, the passphrase alone, another contact's answer.
    let before = vault.config_bytes();
    let wrong = vault.file("wrong", b"not our passphrase\n");
    assert_fails(
        &passwd(&answer_file, &wrong),
        6,
        "wrong recovery passphrase",
    );
    assert_fails(
        &vault.veilfs(
            &["passwd", "--passfile", passphrase.to_str().unwrap()],
            false,
        ),
        6,
        "wrong password",
    );
    let stranger = age::x25519::Identity::generate();
    let stranger_key = vault.file(
        "stranger.key",
        stranger.to_string().expose_secret().as_bytes(),
    );
    let mut refused = veilfs();
    refused
        .args(["slot", "contact-answer", "-i"])
        .arg(&stranger_key)
        .arg(&request_file);
    assert_fails(&run(&mut refused), 6, "cannot open the request");
    assert_eq!(vault.config_bytes(), before);

    // Both: a new password, which then mounts.
    let done = passwd(&answer_file, &passphrase);
    assert_success(&done, "passwd --contact-share");
    assert!(String::from_utf8_lossy(&done.stdout).contains("recovery contact"));
    let new = vault.root.join("new");
    assert_success(
        &vault.mount(&["--passfile", new.to_str().unwrap()]),
        "mount with the new password",
    );
    vault.unmount();
}
