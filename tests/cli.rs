//! The `veilfs` binary as a user or a script drives it: init, info and passwd in temporary
//! directories, passwords through a pipe, files and commands, and every error path with its exit
//! status and its one-line message.

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;
use veilfs::config::{Config, Secret, Unlocked};
use veilfs::crypto::keys::RecoverySecret;
use veilfs::crypto::recovery::{parse_any_recovery_key, RecoveryKey};

/// Cheap key derivation so that the tests run fast even in debug builds.
const CHEAP: [&str; 4] = ["--kdf-memory", "8", "--kdf-iterations", "1"];

fn veilfs(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_veilfs"))
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the veilfs binary runs");
    // A command that fails early may not read its stdin: ignore a broken pipe.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

#[track_caller]
fn assert_ok(output: &Output) {
    assert!(
        output.status.success(),
        "status {:?}, stderr: {}",
        output.status,
        stderr(output)
    );
}

/// A failure: the given status, and exactly one line on stderr, `veilfs: ...`, containing `text`.
#[track_caller]
fn assert_fails(output: &Output, code: i32, text: &str) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(code), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.lines().count(), 1, "stderr is not one line: {err:?}");
    assert!(err.starts_with("veilfs: "), "{err}");
    assert!(err.contains(text), "{err:?} should contain {text:?}");
}

struct Vault {
    _tmp: TempDir,
    dir: PathBuf,
    /// What init printed on stdout.
    init_output: String,
}

impl Vault {
    fn path(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    fn config_path(&self) -> PathBuf {
        self.dir.join("veilfs.conf")
    }

    fn config_bytes(&self) -> Vec<u8> {
        fs::read(self.config_path()).unwrap()
    }

    /// Replaces veilfs.conf (which is read-only) with `bytes`.
    fn write_config(&self, bytes: &[u8]) {
        fs::remove_file(self.config_path()).unwrap();
        fs::write(self.config_path(), bytes).unwrap();
    }

    fn recovery_key(&self) -> String {
        recovery_key_lines(&self.init_output)
    }

    /// Whether `password` unlocks the vault, proven through the CLI: passwd to the same password.
    fn unlocks_with(&self, password: &str) -> bool {
        let out = veilfs(
            &["passwd", self.path()],
            &format!("{password}\n{password}\n"),
        );
        match out.status.code() {
            Some(0) => true,
            Some(6) => false,
            _ => panic!("passwd failed: {}", stderr(&out)),
        }
    }

    fn write_file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.parent().unwrap().join(name);
        fs::write(&path, contents).unwrap();
        path
    }
}

/// The lines of init's output that hold the recovery key.
fn recovery_key_lines(output: &str) -> String {
    output
        .lines()
        .map(str::trim)
        .filter(|l| {
            l.contains('-')
                && l.chars()
                    .all(|c| c == '-' || c.is_ascii_uppercase() || ('2'..='7').contains(&c))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn new_vault_with(password: &str, extra: &[&str]) -> Vault {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("vault");
    fs::create_dir(&dir).unwrap();
    let mut args = vec!["init"];
    args.extend_from_slice(&CHEAP);
    args.extend_from_slice(extra);
    args.push(dir.to_str().unwrap());
    let out = veilfs(&args, &format!("{password}\n"));
    assert_ok(&out);
    Vault {
        _tmp: tmp,
        dir,
        init_output: stdout(&out),
    }
}

fn new_vault(password: &str) -> Vault {
    new_vault_with(password, &[])
}

/// veilfs.conf after `edit`, as someone editing the file by hand would leave it.
fn edited_config(vault: &Vault, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut json: Value = serde_json::from_slice(&vault.config_bytes()).unwrap();
    edit(&mut json);
    serde_json::to_vec_pretty(&json).unwrap()
}

/// Unlocks the config in `dir` with `password`, through the library.
fn unlock(dir: &Path, password: &[u8]) -> veilfs::Result<Unlocked> {
    Config::load(dir)?.unlock(&Secret::Password(password), None)
}

/// Unlocks the config in `dir` with recovery secret `secret`, through the library.
fn unlock_recovery(dir: &Path, secret: &RecoverySecret) -> Unlocked {
    Config::load(dir)
        .unwrap()
        .unlock(&Secret::Recovery(secret), None)
        .unwrap()
}

/// The secret a format 2 recovery key holds.
fn recovery_secret(text: &str) -> RecoverySecret {
    match parse_any_recovery_key(text).unwrap() {
        RecoveryKey::Secret(secret) => secret,
        other => panic!("expected a format 2 recovery key, got {other:?}"),
    }
}

#[test]
fn init_creates_a_vault_and_prints_a_working_recovery_key() {
    let vault = new_vault("correct horse");
    let conf = fs::metadata(vault.config_path()).unwrap();
    assert_eq!(conf.permissions().mode() & 0o777, 0o400);
    assert!(!vault.dir.join("veilfs.conf.tmp").exists());
    assert_eq!(
        fs::metadata(vault.dir.join("veilfs.diriv")).unwrap().len(),
        16
    );
    let mut names: Vec<_> = fs::read_dir(&vault.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["veilfs.conf", "veilfs.diriv"]);

    let out = &vault.init_output;
    assert!(out.contains("shown only this once"), "{out}");
    assert!(out.contains("lost for good"), "{out}");
    assert!(
        out.contains(&format!("veilfs passwd --recovery-key {}", vault.path())),
        "{out}"
    );
    let key = vault.recovery_key();
    assert_eq!(key.lines().count(), 3, "{out}");
    let secret = recovery_secret(&key);
    let from_key = unlock_recovery(&vault.dir, &secret);
    let from_password = unlock(&vault.dir, b"correct horse").unwrap();
    assert_eq!(
        from_key.master().as_bytes(),
        from_password.master().as_bytes()
    );
    // The recovery key is a slot's secret, not the master key.
    assert!(!from_key
        .master()
        .as_bytes()
        .windows(32)
        .any(|w| w == secret.as_bytes()));
    // The key appears once, and nothing of it on stderr.
    assert_eq!(out.matches(key.lines().next().unwrap()).count(), 1);
}

#[test]
fn init_quiet_still_prints_the_key() {
    let vault = new_vault_with("pw", &["-q"]);
    let lines: Vec<&str> = vault.init_output.lines().collect();
    assert_eq!(lines.len(), 1, "{:?}", vault.init_output);
    let secret = recovery_secret(lines[0]);
    assert_eq!(
        unlock_recovery(&vault.dir, &secret).master().as_bytes(),
        unlock(&vault.dir, b"pw").unwrap().master().as_bytes()
    );
}

#[test]
fn init_takes_the_first_line_of_stdin_without_its_line_end() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("v");
    fs::create_dir(&dir).unwrap();
    let mut args = vec!["init"];
    args.extend_from_slice(&CHEAP);
    args.push(dir.to_str().unwrap());
    assert_ok(&veilfs(&args, "  spaced pw \r\nsecond line\n"));
    assert!(unlock(&dir, b"  spaced pw ").is_ok());
}

#[test]
fn init_options_are_recorded_and_shown_by_info() {
    let vault = new_vault_with(
        "pw",
        &["--name-encoding", "base32", "--longname-max", "100"],
    );
    let info = veilfs(&["info", vault.path()], "");
    assert_ok(&info);
    let text = stdout(&info);
    assert!(text.contains("Format version: 2"), "{text}");
    assert!(text.contains("Created by:     veilfs "), "{text}");
    assert!(
        text.contains("\"password\": password, created 20"),
        "{text}"
    );
    assert!(
        text.contains("Argon2id, 8 MiB, 1 iteration, parallelism 1"),
        "{text}"
    );
    assert!(text.contains("\"recovery key\": recovery"), "{text}");
    assert!(text.contains("Name encoding:  base32"), "{text}");
    assert!(text.contains("over 100 bytes"), "{text}");

    let json = veilfs(&["info", "--json", vault.path()], "");
    assert_ok(&json);
    let value: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(value["format"], 2);
    let kdf = &value["slots"][0]["kdf"];
    assert_eq!(kdf["algorithm"], "argon2id");
    assert_eq!(kdf["memory_kib"], 8192);
    assert_eq!(kdf["memory_mib"], 8.0);
    assert_eq!(kdf["iterations"], 1);
    assert_eq!(value["slots"][1]["kind"], "recovery");
    assert_eq!(value["features"]["name_encoding"], "base32");
    assert_eq!(value["features"]["longname_max"], 100);

    // No key material: neither a wrapped key, nor the MAC, nor the recovery key.
    let conf: Value = serde_json::from_slice(&vault.config_bytes()).unwrap();
    let key = vault.recovery_key().replace(['-', '\n'], "");
    for out in [stdout(&info), stdout(&json)] {
        for slot in conf["slots"].as_array().unwrap() {
            assert!(!out.contains(slot["wrapped"].as_str().unwrap()), "{out}");
        }
        assert!(!out.contains(conf["mac"].as_str().unwrap()), "{out}");
        assert!(!out.contains("wrapped"), "{out}");
        assert!(!out.replace('-', "").contains(&key[..24]), "{out}");
    }
    assert!(info.stderr.is_empty() && json.stderr.is_empty());
}

#[test]
fn init_with_passfile_and_extpass() {
    let tmp = TempDir::new().unwrap();
    let passfile = tmp.path().join("pass");
    fs::write(&passfile, "from file\nignored\n").unwrap();
    for (n, source) in [
        ["--passfile", passfile.to_str().unwrap()],
        ["--extpass", "printf 'from cmd\\nignored\\n'"],
    ]
    .iter()
    .enumerate()
    {
        let dir = tmp.path().join(format!("v{n}"));
        fs::create_dir(&dir).unwrap();
        let mut args = vec!["init"];
        args.extend_from_slice(&CHEAP);
        args.extend_from_slice(source);
        args.push(dir.to_str().unwrap());
        assert_ok(&veilfs(&args, "not this\n"));
        let expected: &[u8] = if n == 0 { b"from file" } else { b"from cmd" };
        assert!(unlock(&dir, expected).is_ok(), "{source:?}");
    }
}

#[test]
fn init_refuses_missing_non_directory_and_non_empty_cipherdirs() {
    let tmp = TempDir::new().unwrap();
    let missing = tmp.path().join("missing");
    assert_fails(
        &veilfs(&["init", missing.to_str().unwrap()], "pw\n"),
        3,
        "does not exist",
    );
    assert!(!missing.exists());

    let file = tmp.path().join("file");
    fs::write(&file, "x").unwrap();
    assert_fails(
        &veilfs(&["init", file.to_str().unwrap()], "pw\n"),
        3,
        "not a directory",
    );

    let full = tmp.path().join("full");
    fs::create_dir(&full).unwrap();
    fs::write(full.join("photo.jpg"), "x").unwrap();
    assert_fails(
        &veilfs(&["init", full.to_str().unwrap()], "pw\n"),
        3,
        "not empty",
    );
    assert_eq!(fs::read_dir(&full).unwrap().count(), 1);

    // A vault is not empty either: init never overwrites one.
    let vault = new_vault("pw");
    let before = vault.config_bytes();
    assert_fails(&veilfs(&["init", vault.path()], "other\n"), 3, "not empty");
    assert_eq!(vault.config_bytes(), before);
}

#[test]
fn init_refuses_an_empty_password() {
    let tmp = TempDir::new().unwrap();
    let mut args = vec!["init"];
    args.extend_from_slice(&CHEAP);
    args.push(tmp.path().to_str().unwrap());
    assert_fails(&veilfs(&args, "\n"), 1, "no password");
    assert_fails(&veilfs(&args, ""), 1, "no password");
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn init_bad_flags_are_usage_errors() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().to_str().unwrap();
    for args in [
        vec!["init", "--kdf-memory", "0", dir],
        vec!["init", "--kdf-iterations", "65", dir],
        vec!["init", "--longname-max", "300", dir],
        vec!["init", "--name-encoding", "rot13", dir],
        vec!["init", "--passfile", "a", "--extpass", "b", dir],
        vec!["init"],
        vec!["frobnicate"],
    ] {
        let out = veilfs(&args, "pw\n");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).contains("panicked"));
    }
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn passwd_changes_the_password_and_nothing_else() {
    let vault = new_vault("old");
    let diriv = fs::read(vault.dir.join("veilfs.diriv")).unwrap();
    let data = vault.dir.join("SomeEncryptedName");
    fs::write(&data, "ciphertext").unwrap();
    let before: Value = serde_json::from_slice(&vault.config_bytes()).unwrap();

    let out = veilfs(&["passwd", vault.path()], "old\nnew\n");
    assert_ok(&out);
    assert_eq!(stdout(&out).lines().count(), 1, "{}", stdout(&out));
    assert!(stdout(&out).contains("changed"));
    assert!(out.stderr.is_empty());

    let after: Value = serde_json::from_slice(&vault.config_bytes()).unwrap();
    let (old_kdf, new_kdf) = (&before["slots"][0]["kdf"], &after["slots"][0]["kdf"]);
    assert_ne!(new_kdf["salt"], old_kdf["salt"]);
    for cost in ["memory_kib", "iterations", "parallelism"] {
        assert_eq!(new_kdf[cost], old_kdf[cost]);
    }
    assert_eq!(after["slots"][0]["label"], before["slots"][0]["label"]);
    assert_eq!(after["slots"][1], before["slots"][1]);
    assert_eq!(after["features"], before["features"]);
    assert_eq!(after["vault_id"], before["vault_id"]);
    assert_eq!(fs::read(vault.dir.join("veilfs.diriv")).unwrap(), diriv);
    assert_eq!(fs::read_to_string(&data).unwrap(), "ciphertext");
    assert_eq!(
        fs::metadata(vault.config_path())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o400
    );
    assert!(!vault.dir.join("veilfs.conf.tmp").exists());

    assert_fails(
        &veilfs(&["passwd", vault.path()], "old\nx\n"),
        6,
        "wrong password",
    );
    assert!(vault.unlocks_with("new"));
    // The recovery key still opens the same master key.
    let secret = recovery_secret(&vault.recovery_key());
    assert_eq!(
        unlock_recovery(&vault.dir, &secret).master().as_bytes(),
        unlock(&vault.dir, b"new").unwrap().master().as_bytes()
    );
}

#[test]
fn passwd_with_passfiles_and_extpass() {
    let vault = new_vault("one");
    let old = vault.write_file("old", "one\n");
    let new = vault.write_file("new", "two\r\n");
    let out = veilfs(
        &[
            "passwd",
            "--passfile",
            old.to_str().unwrap(),
            "--new-passfile",
            new.to_str().unwrap(),
            vault.path(),
        ],
        "",
    );
    assert_ok(&out);
    assert!(!vault.unlocks_with("one"));

    // --extpass for the current password, the new one from stdin's first line.
    assert_ok(&veilfs(
        &["passwd", "--extpass", "echo two", vault.path()],
        "three\n",
    ));
    assert!(vault.unlocks_with("three"));

    let out = veilfs(
        &[
            "passwd",
            "--extpass",
            "echo failing >&2; exit 7",
            vault.path(),
        ],
        "x\n",
    );
    // The command's own stderr passes through; the last line is ours.
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        err.lines().last().unwrap(),
        "veilfs: the --extpass command failed (exit status: 7)"
    );

    let missing = vault.dir.parent().unwrap().join("no-such-file");
    assert_fails(
        &veilfs(
            &[
                "passwd",
                "--passfile",
                missing.to_str().unwrap(),
                vault.path(),
            ],
            "",
        ),
        1,
        "no-such-file",
    );
    let empty = vault.write_file("empty", "");
    assert_fails(
        &veilfs(
            &[
                "passwd",
                "--passfile",
                empty.to_str().unwrap(),
                vault.path(),
            ],
            "",
        ),
        1,
        "is empty",
    );
    assert_fails(
        &veilfs(&["passwd", vault.path()], "three\n"),
        1,
        "no password on standard input",
    );
    assert!(vault.unlocks_with("three"));
}

#[test]
fn passwd_with_the_recovery_key() {
    let vault = new_vault("forgotten");
    // Written down by hand: lower case, spaces instead of dashes, look-alike digits.
    let handwritten = vault
        .recovery_key()
        .to_lowercase()
        .replace('-', " ")
        .replace('o', "0")
        .replace('i', "1");
    let keyfile = vault.write_file("recovery.txt", &format!("{handwritten}\n"));
    let out = veilfs(
        &[
            "passwd",
            "--recovery-key-file",
            keyfile.to_str().unwrap(),
            vault.path(),
        ],
        "fresh\n",
    );
    assert_ok(&out);
    assert!(stdout(&out).contains("with the recovery key"));
    assert!(!vault.unlocks_with("forgotten"));
    assert!(vault.unlocks_with("fresh"));
}

#[test]
fn mistyped_or_foreign_recovery_keys_are_refused() {
    let vault = new_vault("pw");
    let before = vault.config_bytes();
    let key = vault.recovery_key();

    // One character changed.
    let mut chars: Vec<char> = key.chars().collect();
    chars[6] = if chars[6] == 'Q' { 'R' } else { 'Q' };
    let typo = vault.write_file("typo.txt", &chars.iter().collect::<String>());
    let out = veilfs(
        &[
            "passwd",
            "--recovery-key-file",
            typo.to_str().unwrap(),
            vault.path(),
        ],
        "new\n",
    );
    assert_fails(&out, 6, "mistyped");

    let short = vault.write_file("short.txt", &key[..key.len() - 3]);
    let out = veilfs(
        &[
            "passwd",
            "--recovery-key-file",
            short.to_str().unwrap(),
            vault.path(),
        ],
        "new\n",
    );
    assert_fails(&out, 6, "characters, expected 58");

    // A valid key of another vault.
    let other = new_vault("pw");
    let foreign = vault.write_file("foreign.txt", &other.recovery_key());
    let out = veilfs(
        &[
            "passwd",
            "--recovery-key-file",
            foreign.to_str().unwrap(),
            vault.path(),
        ],
        "new\n",
    );
    assert_fails(&out, 6, "wrong recovery key");

    let missing = vault.dir.parent().unwrap().join("nokey.txt");
    let out = veilfs(
        &[
            "passwd",
            "--recovery-key-file",
            missing.to_str().unwrap(),
            vault.path(),
        ],
        "new\n",
    );
    assert_fails(&out, 1, "cannot read recovery key file");

    assert_eq!(vault.config_bytes(), before);
    assert!(vault.unlocks_with("pw"));
}

#[test]
fn wrong_password_exits_6() {
    let vault = new_vault("right");
    assert_fails(
        &veilfs(&["passwd", vault.path()], "wrong\nnew\n"),
        6,
        "wrong password",
    );
    assert!(vault.unlocks_with("right"));
}

#[test]
fn not_a_vault_exits_4_and_missing_dir_exits_3() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().to_str().unwrap();
    assert_fails(&veilfs(&["info", dir], ""), 4, "not a veilfs vault");
    assert_fails(&veilfs(&["passwd", dir], "a\nb\n"), 4, "not a veilfs vault");
    let missing = tmp.path().join("gone");
    assert_fails(
        &veilfs(&["info", missing.to_str().unwrap()], ""),
        3,
        "does not exist",
    );
    assert_fails(
        &veilfs(&["passwd", missing.to_str().unwrap()], "a\nb\n"),
        3,
        "does not exist",
    );
}

#[test]
fn damaged_configs_exit_5() {
    let vault = new_vault("pw");
    let good = vault.config_bytes();

    vault.write_config(&good[..good.len() / 2]);
    assert_fails(&veilfs(&["info", vault.path()], ""), 5, "corrupt");
    assert_fails(
        &veilfs(&["passwd", vault.path()], "pw\nnew\n"),
        5,
        "corrupt",
    );

    vault.write_config(b"");
    assert_fails(&veilfs(&["info", vault.path()], ""), 5, "corrupt");

    vault.write_config(&good);
    vault.write_config(&edited_config(&vault, |c| c["format"] = 3.into()));
    assert_fails(&veilfs(&["info", vault.path()], ""), 5, "version 3");
    vault.write_config(br#"{"format": 7, "something": "new"}"#);
    assert_fails(
        &veilfs(&["passwd", vault.path()], "pw\nnew\n"),
        5,
        "version 7",
    );

    vault.write_config(&good);
    assert!(vault.unlocks_with("pw"));
}

#[test]
fn edited_kdf_parameters_are_caught() {
    let vault = new_vault("pw");
    let good = vault.config_bytes();
    let key = vault.write_file("recovery.txt", &vault.recovery_key());

    // Edited by hand: the file still loads (only the key can check the MAC), the password no
    // longer opens its slot, and the recovery key finds the edit before anything is written.
    let edit = |c: &mut Value| c["slots"][0]["kdf"]["iterations"] = 2.into();
    vault.write_config(&edited_config(&vault, edit));
    let edited = vault.config_bytes();
    assert_ok(&veilfs(&["info", vault.path()], ""));
    assert_fails(
        &veilfs(&["passwd", vault.path()], "pw\nnew\n"),
        6,
        "wrong password",
    );
    assert_fails(
        &veilfs(
            &[
                "passwd",
                "--recovery-key-file",
                key.to_str().unwrap(),
                vault.path(),
            ],
            "new\n",
        ),
        5,
        "modified by someone without the key",
    );
    assert_eq!(vault.config_bytes(), edited);

    // Out-of-bounds parameters are corrupt, before any key derivation.
    vault.write_config(&good);
    vault.write_config(&edited_config(&vault, |c| {
        c["slots"][0]["kdf"]["iterations"] = 0.into()
    }));
    assert_fails(&veilfs(&["info", vault.path()], ""), 5, "iterations");

    vault.write_config(&good);
    assert!(vault.unlocks_with("pw"));
}

#[test]
fn top_level_help_documents_the_exit_statuses() {
    let out = veilfs(&["--help"], "");
    assert_ok(&out);
    // As laid out for the terminal: one table row per status, whatever the spacing.
    let help = stdout(&out)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for line in [
        "3 CIPHERDIR is missing",
        "4 CIPHERDIR is not a vault",
        "5 veilfs.conf is corrupt",
        "6 wrong password",
    ] {
        assert!(help.contains(line), "{help}");
    }
    for verb in ["init", "info", "passwd"] {
        let out = veilfs(&[verb, "--help"], "");
        assert_ok(&out);
        assert!(stdout(&out).contains("Examples:"), "{verb}");
    }
}

#[test]
fn a_closed_stdout_is_not_a_panic() {
    let vault = new_vault("pw");
    let mut child = Command::new(env!("CARGO_BIN_EXE_veilfs"))
        .args(["info", vault.path()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}

#[test]
fn init_takes_the_vault_back_when_the_recovery_key_cannot_be_shown() {
    let tmp = TempDir::new().unwrap();
    let full = fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full exists on Linux");
    let out = Command::new(env!("CARGO_BIN_EXE_veilfs"))
        .args([
            "init",
            "--kdf-memory",
            "8",
            "--kdf-iterations",
            "1",
            "--passfile",
            "/dev/stdin",
        ])
        .arg(tmp.path())
        .stdin(Stdio::piped())
        .stdout(full)
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child.stdin.take().unwrap().write_all(b"pw\n")?;
            child.wait_with_output()
        })
        .unwrap();
    assert_fails(
        &out,
        1,
        "the vault was not created, because its recovery key could not be shown",
    );
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
}

// ---------------------------------------------------------------------------------------------
// Nothing blocks on what a sync peer (or a mistake) put in a file's place

/// How long a command that must not block may take.
const QUICK: Duration = Duration::from_secs(20);

/// `veilfs ARGS` with stdin at /dev/null, failing the test if it has not exited within [`QUICK`].
fn veilfs_quick(args: &[&std::ffi::OsStr]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_veilfs"));
    cmd.args(args).env_remove("RUST_LOG").stdin(Stdio::null());
    common::run_with_timeout(&mut cmd, QUICK)
}

fn os(s: &(impl AsRef<std::ffi::OsStr> + ?Sized)) -> &std::ffi::OsStr {
    s.as_ref()
}

/// What a special file is called in messages, and how to make one.
type Maker<'a> = (&'static str, Box<dyn Fn() + 'a>);

fn mkfifo(path: &Path) {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
}

#[test]
fn a_config_that_is_not_a_regular_file_exits_5_naming_it() {
    let vault = new_vault("pw");
    let good = vault.config_bytes();
    let conf = vault.config_path();
    let pass = vault.write_file("pass", "pw\n");
    let elsewhere = vault.write_file("conf-elsewhere", &String::from_utf8(good.clone()).unwrap());
    let kinds: [Maker; 4] = [
        ("a FIFO", Box::new(|| mkfifo(&conf))),
        (
            "a socket",
            Box::new(|| drop(std::os::unix::net::UnixListener::bind(&conf).unwrap())),
        ),
        (
            "a symbolic link",
            Box::new(|| std::os::unix::fs::symlink(&elsewhere, &conf).unwrap()),
        ),
        ("a directory", Box::new(|| fs::create_dir(&conf).unwrap())),
    ];
    for (kind, make) in kinds {
        fs::remove_file(&conf)
            .or_else(|_| fs::remove_dir(&conf))
            .unwrap();
        make();
        let needle = format!("{} is {kind}, not a regular file", conf.display());
        let dir = os(vault.path());
        for args in [
            vec![os("info"), dir],
            vec![os("passwd"), os("--passfile"), os(&pass), dir],
            vec![os("fsck"), os("--passfile"), os(&pass), dir],
            vec![os("fsck"), os("--repair"), os("--passfile"), os(&pass), dir],
            vec![
                os("encrypt-path"),
                os("--passfile"),
                os(&pass),
                dir,
                os("x"),
            ],
        ] {
            assert_fails(&veilfs_quick(&args), 5, &needle);
        }
    }
    fs::remove_dir(&conf).unwrap();
    fs::write(&conf, &good).unwrap();
    assert!(vault.unlocks_with("pw"));
}

#[test]
fn an_unreadable_config_exits_1_naming_it() {
    let vault = new_vault("pw");
    let conf = vault.config_path();
    // Reachable by another user, but not readable by one.
    for dir in [vault.dir.parent().unwrap(), vault.dir.as_path()] {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    }
    fs::set_permissions(&conf, fs::Permissions::from_mode(0o000)).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_veilfs"));
    cmd.arg("info").arg(vault.path()).stdin(Stdio::null());
    if nix::unistd::geteuid().is_root() {
        // Root reads anything: ask as nobody.
        cmd.uid(65534).gid(65534);
    }
    let out = common::run_with_timeout(&mut cmd, QUICK);
    assert_fails(
        &out,
        1,
        &format!("cannot read {}: Permission denied", conf.display()),
    );
}

#[test]
fn the_config_is_0400_whatever_the_umask() {
    let vault = new_vault("pw");
    for umask in ["000", "077", "777"] {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("umask {umask} && exec \"$0\" passwd \"$1\""))
            .arg(env!("CARGO_BIN_EXE_veilfs"))
            .arg(vault.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                child.stdin.take().unwrap().write_all(b"pw\npw\n")?;
                child.wait_with_output()
            })
            .unwrap();
        assert_ok(&out);
        let mode = fs::metadata(vault.config_path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o400, "umask {umask}");
    }
}

#[test]
fn password_and_recovery_key_files_never_block() {
    let vault = new_vault("pw");
    let dir = vault.dir.parent().unwrap();
    let fifo = dir.join("fifo");
    mkfifo(&fifo);
    let big = dir.join("big");
    fs::write(&big, [b"pw\n".as_slice(), &vec![b'x'; 64 * 1024]].concat()).unwrap();
    let v = os(vault.path());
    // A FIFO nobody writes to reads as empty, at once.
    let out = veilfs_quick(&[os("passwd"), os("--passfile"), os(&fifo), v]);
    assert_fails(
        &out,
        1,
        &format!("password file {} is empty", fifo.display()),
    );
    let out = veilfs_quick(&[os("passwd"), os("--recovery-key-file"), os(&fifo), v]);
    assert_fails(&out, 6, "recovery key is mistyped");
    // Devices, directories and large files are refused without being read.
    for (file, needle) in [
        (
            Path::new("/dev/zero"),
            "/dev/zero is a character device, not a regular file".to_owned(),
        ),
        (dir, format!("{} is a directory", dir.display())),
        (
            big.as_path(),
            format!("{} is 65539 bytes long, more than 65536", big.display()),
        ),
    ] {
        let out = veilfs_quick(&[os("passwd"), os("--passfile"), os(file), v]);
        assert_fails(
            &out,
            1,
            &format!("cannot read password file {}", file.display()),
        );
        assert_fails(&out, 1, &needle);
        let out = veilfs_quick(&[os("passwd"), os("--recovery-key-file"), os(file), v]);
        assert_fails(&out, 1, "cannot read recovery key file");
        assert_fails(&out, 1, &needle);
    }
    assert!(vault.unlocks_with("pw"));
}

#[test]
fn a_password_from_a_pipe_still_works() {
    let vault = new_vault("pw");
    // --passfile /dev/stdin (a pipe), and --new-passfile a FIFO that a writer is waiting on.
    let fifo = vault.dir.parent().unwrap().join("new-pass");
    mkfifo(&fifo);
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || fs::write(fifo, b"new\n").unwrap())
    };
    // Let the writer block in open(2): from then on the FIFO has a writer.
    std::thread::sleep(Duration::from_millis(300));
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("printf 'pw\\n' | exec \"$0\" passwd --passfile /dev/stdin --new-passfile \"$1\" \"$2\"")
        .arg(env!("CARGO_BIN_EXE_veilfs"))
        .arg(&fifo)
        .arg(vault.path())
        .stdin(Stdio::null());
    assert_ok(&common::run_with_timeout(&mut cmd, QUICK));
    writer.join().unwrap();
    assert!(vault.unlocks_with("new"));
}
