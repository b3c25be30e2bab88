//! The man pages (`man/veilfs.1`, `man/mount.fuse.veilfs.8`) and the shell completions
//! (`packaging/completions/`), all generated from the clap definitions by the hidden `veilfs man
//! [PAGE]` and `veilfs completions SHELL`, and packaged from the repository by `cargo deb`.
//!
//! When the command line changes, they must be regenerated:
//!
//! ```sh
//! VEILFS_UPDATE_MAN=1 cargo test --test man
//! ```

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::*;

/// Each generated file in the repository, and the veilfs arguments that print it.
const GENERATED: &[(&str, &[&str])] = &[
    ("man/veilfs.1", &["man"]),
    ("man/mount.fuse.veilfs.8", &["man", "mount.fuse.veilfs"]),
    (
        "packaging/completions/veilfs.bash",
        &["completions", "bash"],
    ),
    ("packaging/completions/_veilfs", &["completions", "zsh"]),
    (
        "packaging/completions/veilfs.fish",
        &["completions", "fish"],
    ),
];

/// The man pages: `veilfs man` arguments, and the file the page is in.
const PAGES: &[(&[&str], &str)] = &[
    (&["man"], "man/veilfs.1"),
    (&["man", "mount.fuse.veilfs"], "man/mount.fuse.veilfs.8"),
];

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

fn in_repository(path: &str) -> String {
    format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_committed_generated_files_are_up_to_date() {
    let update = std::env::var_os("VEILFS_UPDATE_MAN").is_some();
    let mut stale = Vec::new();
    for (path, args) in GENERATED {
        let generated = veilfs_stdout(args);
        if update {
            fs::write(in_repository(path), &generated)
                .unwrap_or_else(|e| panic!("writing {path}: {e}"));
            eprintln!("{path} regenerated");
        } else if fs::read_to_string(in_repository(path)).unwrap_or_default() != generated {
            stale.push(*path);
        }
    }
    assert!(
        stale.is_empty(),
        "{} out of date with the command line: regenerate with\n    \
         VEILFS_UPDATE_MAN=1 cargo test --test man\nand commit",
        stale.join(", ")
    );
}

/// The fields of a `.TH` line (quoted fields unquoted).
fn title_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut rest = line.strip_prefix(".TH ").expect("a .TH line").trim();
    while !rest.is_empty() {
        let (field, after) = match rest.strip_prefix('"') {
            Some(quoted) => quoted.split_once('"').expect("a closing quote"),
            None => rest.split_once(' ').unwrap_or((rest, "")),
        };
        fields.push(field.to_owned());
        rest = after.trim_start();
    }
    fields
}

#[test]
fn the_man_pages_have_a_full_header_with_a_fixed_date() {
    let version = format!("veilfs {}", env!("CARGO_PKG_VERSION"));
    for (args, path) in PAGES {
        let page = veilfs_stdout(args);
        let line = page
            .lines()
            .find(|l| l.starts_with(".TH "))
            .unwrap_or_else(|| panic!("{path} has no .TH line"));
        let fields = title_fields(line);
        let name = Path::new(path).file_stem().unwrap().to_str().unwrap();
        let section = Path::new(path).extension().unwrap().to_str().unwrap();
        assert_eq!(fields.len(), 5, "{path}: {line}");
        assert_eq!(
            (fields[0].as_str(), fields[1].as_str()),
            (name, section),
            "{line}"
        );
        let date = &fields[2];
        let is_date = date.len() == 10
            && date.char_indices().all(|(i, c)| match i {
                4 | 7 => c == '-',
                _ => c.is_ascii_digit(),
            });
        assert!(
            is_date,
            "{path}: the date {date:?} is not YYYY-MM-DD: {line}"
        );
        assert_eq!(fields[3], version, "{line}");
        assert_eq!(fields[4], "veilfs manual", "{line}");
        // The same date every time: regenerating changes nothing.
        assert_eq!(page, veilfs_stdout(args));

        // As man(1) shows it: the version and the date at the foot, the manual at the head.
        if !have("man") {
            skip(
                "the_man_pages_have_a_full_header_with_a_fixed_date",
                "man is not installed",
            );
            continue;
        }
        let output = run(Command::new("man")
            .arg("-l")
            .arg(in_repository(path))
            .env("MANWIDTH", "80")
            .env_remove("MANPAGER")
            .env_remove("PAGER"));
        assert_success(&output, "man -l");
        let text = String::from_utf8_lossy(&output.stdout);
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let head = format!("{name}({section})");
        assert!(
            lines[0].starts_with(&head)
                && lines[0].contains("veilfs manual")
                && lines[0].ends_with(&head),
            "{path}: head line {:?}",
            lines[0]
        );
        let foot = lines.last().unwrap();
        assert!(
            foot.starts_with(&version) && foot.contains(date.as_str()) && foot.ends_with(&head),
            "{path}: foot line {foot:?}"
        );
    }
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
fn the_helper_man_page_documents_what_it_must() {
    let page = veilfs_stdout(&["man", "mount.fuse.veilfs"]);
    for needle in [
        ".TH mount.fuse.veilfs 8",
        ".SH SYNOPSIS",
        ".SH \"MOUNT OPTIONS\"",
        ".SH \"EXIT STATUS\"",
        ".SH EXAMPLES",
        "[\\-sfnv]",
        "\\fBpassfile=\\fR\\fIFILE\\fR",
        "\\fBextpass=\\fR\\fICMD\\fR",
        "\\fBkeyfile=\\fR\\fIFILE\\fR",
        "\\fBidle=\\fR\\fIDURATION\\fR",
        "\\fBcache_ttl=\\fR\\fIDURATION\\fR",
        "\\fBthreads=\\fR\\fIN\\fR",
        "allow_other",
        "x\\-systemd.automount",
        "\\\\040",
        "nodiratime",
        "/etc/fstab",
        "(umount) the mount point is busy",
        "veilfs(1)",
    ] {
        assert!(
            page.contains(needle),
            "mount.fuse.veilfs.8 lacks {needle:?}"
        );
    }
    // veilfs(1) points at it.
    assert!(veilfs_stdout(&["man"]).contains("mount.fuse.veilfs(8)"));
}

#[test]
fn groff_renders_the_man_pages_without_warnings() {
    if !have("groff") {
        skip(
            "groff_renders_the_man_pages_without_warnings",
            "groff is not installed",
        );
        return;
    }
    for (_, path) in PAGES {
        let output = run(Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .arg(in_repository(path)));
        assert_success(&output, "groff");
        assert!(
            output.stderr.is_empty(),
            "groff warnings in {path}:\n{}",
            stderr_of(&output)
        );
    }
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
