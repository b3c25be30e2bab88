//! `veilfs encrypt-path` and `veilfs decrypt-path`: several paths, standard input, long names,
//! conflict copies, absolute backing paths, errors; and the core functions under them.

mod corevault;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use corevault::{long_name, name_of, CoreVault};
use veilfs::crypto::names::NameEncoding;

fn veilfs(v: &CoreVault, verb: &str, args: &[&Path], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_veilfs"));
    cmd.arg(verb)
        .arg("--passfile")
        .arg(v.passfile())
        .arg(&v.root)
        // Encrypted names may start with '-' (base64url): after `--` they are never options.
        .arg("--")
        .args(args);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd.spawn().unwrap();
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

fn lines(out: &Output) -> Vec<String> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn vault() -> (CoreVault, Vec<(String, PathBuf)>) {
    let v = CoreVault::new(NameEncoding::Base64Url);
    v.mkdir("Documents");
    v.mkdir(&format!("Documents/{}", long_name("dir")));
    let plain = [
        "Documents/report.txt".to_owned(),
        format!("Documents/{}/{}", long_name("dir"), long_name("file")),
        "top level.md".to_owned(),
    ];
    let mut pairs = Vec::new();
    for p in plain {
        let backing = v.write(&p, b"x");
        pairs.push((p, backing.strip_prefix(&v.root).unwrap().to_path_buf()));
    }
    (v, pairs)
}

/// Panics with the command's stderr unless it exited 0.
fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn both_ways_for_several_paths() {
    let (v, pairs) = vault();
    let plain: Vec<&Path> = pairs.iter().map(|(p, _)| Path::new(p)).collect();
    let backing: Vec<&Path> = pairs.iter().map(|(_, b)| b.as_path()).collect();

    let out = veilfs(&v, "encrypt-path", &plain, None);
    assert_ok(&out);
    assert_eq!(
        lines(&out),
        backing
            .iter()
            .map(|b| b.display().to_string())
            .collect::<Vec<_>>()
    );

    let out = veilfs(&v, "decrypt-path", &backing, None);
    assert_ok(&out);
    assert_eq!(
        lines(&out),
        pairs.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>()
    );

    // Absolute backing paths inside the vault; a leading '/' on plaintext paths.
    let absolute = v.root.join(backing[0]);
    assert_eq!(
        lines(&veilfs(&v, "decrypt-path", &[&absolute], None)),
        [pairs[0].0.clone()]
    );
    let rooted = PathBuf::from(format!("/{}", pairs[0].0));
    assert_eq!(
        lines(&veilfs(&v, "encrypt-path", &[&rooted], None)),
        [backing[0].display().to_string()]
    );
}

#[test]
fn paths_from_standard_input() {
    let (v, pairs) = vault();
    let input: String = pairs.iter().map(|(p, _)| format!("{p}\n")).collect();
    let out = veilfs(&v, "encrypt-path", &[], Some(&input));
    assert_ok(&out);
    let backing = lines(&out);
    let input: String = backing.iter().map(|b| format!("{b}\r\n")).collect();
    let out = veilfs(&v, "decrypt-path", &[], Some(&input));
    assert_eq!(
        lines(&out),
        pairs.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>()
    );
}

#[test]
fn conflict_copies_and_errors() {
    let (v, pairs) = vault();
    let original = v.root.join(&pairs[0].1);
    let copy = original.with_file_name(format!("{} (1)", name_of(&original)));
    std::fs::copy(&original, &copy).unwrap();
    let copy_rel = copy.strip_prefix(&v.root).unwrap();
    assert_eq!(
        lines(&veilfs(&v, "decrypt-path", &[copy_rel], None)),
        ["Documents/report (conflict 1).txt"]
    );

    // A bad path among good ones: the good ones are still printed, the status says it.
    let bad = Path::new("veilfs.diriv");
    let missing = Path::new("Documents/nope/x");
    let out = veilfs(&v, "decrypt-path", &[pairs[2].1.as_path(), bad], None);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(lines(&out), [pairs[2].0.clone()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("veilfs.diriv"));
    let out = veilfs(&v, "encrypt-path", &[missing], None);
    assert_eq!(out.status.code(), Some(1));
    let outside = veilfs(&v, "decrypt-path", &[Path::new("/etc/passwd")], None);
    assert!(String::from_utf8_lossy(&outside.stderr).contains("not inside the vault"));
    // Nothing to translate, and a terminal-less empty stdin: no output, success.
    let out = veilfs(&v, "encrypt-path", &[], Some(""));
    assert!(out.status.success() && out.stdout.is_empty());
}

#[test]
fn core_round_trip() {
    let (v, pairs) = vault();
    for (plain, backing) in pairs {
        assert_eq!(
            v.vault.encrypt_path(Path::new(&plain)).unwrap(),
            v.root.join(&backing)
        );
        assert_eq!(v.vault.decrypt_path(&backing).unwrap(), Path::new(&plain));
    }
}
