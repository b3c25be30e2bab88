//! The man page (`man/veilfs.1`) and the shell completions, both generated from the clap
//! definitions by the hidden `veilfs man` and `veilfs completions SHELL`.
//!
//! When the command line changes, `man/veilfs.1` must be regenerated:
//!
//! ```sh
//! VEILFS_UPDATE_MAN=1 cargo test --test man      # or: cargo run -q -- man > man/veilfs.1
//! ```

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::*;

const MAN_PAGE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/man/veilfs.1");

fn veilfs_stdout(args: &[&str]) -> String {
    let output = run(veilfs().args(args));
    assert_success(&output, &format!("veilfs {}", args.join(" ")));
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn the_committed_man_page_is_up_to_date() {
    let generated = veilfs_stdout(&["man"]);
    if std::env::var_os("VEILFS_UPDATE_MAN").is_some() {
        fs::write(MAN_PAGE, &generated).expect("writing man/veilfs.1");
        eprintln!("man/veilfs.1 regenerated");
        return;
    }
    let committed = fs::read_to_string(MAN_PAGE).unwrap_or_default();
    assert!(
        committed == generated,
        "man/veilfs.1 is out of date with the command line: regenerate it with\n    \
         VEILFS_UPDATE_MAN=1 cargo test --test man\nand commit it"
    );
}

#[test]
fn the_man_page_documents_what_it_must() {
    let page = veilfs_stdout(&["man"]);
    for needle in [
        ".TH veilfs 1",
        ".SH \"VEILFS MOUNT\"",
        ".SH \"VEILFS INIT\"",
        ".SH \"VEILFS UMOUNT\"",
        ".SH \"EXIT STATUS\"",
        ".SH FILES",
        "veilfs.conf",
        "veilfs.diriv",
        "veilfs.longname.",
        "mount.fuse.veilfs",
        "fuse.veilfs",
        "x\\-systemd.automount",
        "LoadCredential",
        "\\-\\-keyfile",
        "\\-\\-idle",
        "passfile=FILE",
        "(umount) the mount point is busy",
    ] {
        assert!(page.contains(needle), "the man page lacks {needle:?}");
    }
    // The hidden commands stay hidden.
    assert!(!page.contains("VEILFS MAN"));
    assert!(!page.contains("VEILFS COMPLETIONS"));
}

#[test]
fn groff_renders_the_man_page_without_warnings() {
    if !have("groff") {
        skip(
            "groff_renders_the_man_page_without_warnings",
            "groff is not installed",
        );
        return;
    }
    let output = run(Command::new("groff").args(["-man", "-Tutf8", "-ww", "-z", MAN_PAGE]));
    assert_success(&output, "groff");
    assert!(
        output.stderr.is_empty(),
        "groff warnings:\n{}",
        stderr_of(&output)
    );
}

#[test]
fn hidden_commands_are_not_in_the_help() {
    let help = veilfs_stdout(&["--help"]);
    assert!(help.contains("mount"));
    assert!(!help.contains("completions"), "{help}");
    assert!(
        !help.lines().any(|l| l.trim_start().starts_with("man ")),
        "{help}"
    );
}

#[test]
fn completions_cover_the_commands_and_flags() {
    for shell in ["bash", "zsh", "fish"] {
        let script = veilfs_stdout(&["completions", shell]);
        for word in [
            "init",
            "mount",
            "umount",
            "passwd",
            "--keyfile",
            "--idle",
            "--passfile",
        ] {
            // fish spells long options `-l keyfile`.
            let fish = word
                .strip_prefix("--")
                .is_some_and(|long| script.contains(&format!("-l {long}")));
            assert!(
                script.contains(word) || fish,
                "{shell} completions lack {word:?}"
            );
        }
    }
    let bad = run(veilfs().args(["completions", "tcsh"]));
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn completion_scripts_parse() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, check) in [
        ("bash", &["bash", "-n"][..]),
        ("zsh", &["zsh", "-n"]),
        ("fish", &["fish", "--no-execute"]),
    ] {
        if !have(check[0]) {
            skip(
                &format!("completion_scripts_parse ({shell})"),
                &format!("{shell} is not installed"),
            );
            continue;
        }
        let path = dir.path().join(shell);
        fs::write(&path, veilfs_stdout(&["completions", shell])).unwrap();
        let output = run(Command::new(check[0]).args(&check[1..]).arg(&path));
        assert_success(&output, &format!("{shell} syntax check"));
    }
    // In bash, the script defines the completion function and registers it.
    if have("bash") {
        let path = dir.path().join("bash");
        let output = run(Command::new("bash").arg("-c").arg(format!(
            "source {} && complete -p veilfs",
            Path::new(&path).display()
        )));
        assert_success(&output, "sourcing the bash completions");
        assert!(String::from_utf8_lossy(&output.stdout).contains("veilfs"));
    }
}
