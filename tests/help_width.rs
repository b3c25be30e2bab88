//! Everything veilfs prints for a reader reads well in an 80-column terminal: every command's
//! `-h` and `--help`, the short usage of a bare `veilfs`, and the man pages at `MANWIDTH=80`. A
//! line over 80 characters is broken by the terminal wherever it happens to end, mid-word; a word
//! hyphenated across two lines is hard to search for and to copy.

mod common;

use std::process::Command;

use common::*;

const WIDTH: usize = 80;

/// The problems of `text` as shown at 80 columns: lines too long, words split across lines.
fn problems(what: &str, text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let width = line.chars().count();
        if width > WIDTH {
            found.push(format!(
                "{what}: line {} has {width} characters: {line}",
                i + 1
            ));
        }
        let split = line
            .strip_suffix('-')
            .or_else(|| line.strip_suffix('\u{2010}'))
            .is_some_and(|head| head.ends_with(|c: char| c.is_alphabetic()))
            && lines
                .get(i + 1)
                .is_some_and(|next| next.trim_start().starts_with(|c: char| c.is_lowercase()));
        if split {
            found.push(format!(
                "{what}: a word is split at the end of line {}: {line}",
                i + 1
            ));
        }
    }
    found
}

fn help(args: &[&str]) -> String {
    let output = run(veilfs().args(args).env("COLUMNS", WIDTH.to_string()));
    assert_success(&output, &format!("veilfs {}", args.join(" ")));
    String::from_utf8(output.stdout).expect("UTF-8 help")
}

/// The commands listed in a `--help`'s "Commands:" section.
fn commands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        // A description that wraps continues further in.
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_help_fits_in_80_columns() {
    let mut found = Vec::new();
    let mut queue: Vec<Vec<String>> = vec![vec![]];
    let mut seen = 0;
    while let Some(path) = queue.pop() {
        seen += 1;
        for flag in ["-h", "--help"] {
            let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
            args.push(flag);
            let text = help(&args);
            found.extend(problems(&format!("veilfs {}", args.join(" ")), &text));
            if flag == "--help" {
                for sub in commands(&text) {
                    queue.push([path.clone(), vec![sub]].concat());
                }
            }
        }
    }
    assert!(seen > 10, "only {seen} commands found");
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn the_mount_helper_s_help_fits_in_80_columns() {
    let dir = tempfile::tempdir().unwrap();
    let helper = dir.path().join("mount.veilfs");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_veilfs"), &helper).unwrap();
    let output = run(Command::new(&helper)
        .arg("--help")
        .env("COLUMNS", WIDTH.to_string()));
    assert_success(&output, "mount.veilfs --help");
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("-o OPTIONS"), "{text}");
    let found = problems("mount.veilfs --help", &text);
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn a_bare_veilfs_prints_a_short_usage() {
    let output = run(veilfs().env("COLUMNS", WIDTH.to_string()));
    assert_eq!(output.status.code(), Some(2));
    let text = stderr_of(&output);
    assert!(text.starts_with("Usage: veilfs"), "{text}");
    assert!(text.contains("  mount "), "{text}");
    assert!(text.contains("'veilfs --help'"), "{text}");
    assert!(
        text.lines().count() <= 24,
        "{} lines:\n{text}",
        text.lines().count()
    );
    let found = problems("veilfs", &text);
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn the_man_pages_fit_in_80_columns() {
    for (page, file) in [
        ("veilfs", "veilfs.1"),
        ("mount.fuse.veilfs", "mount.fuse.veilfs.8"),
    ] {
        let output = run(veilfs().args(["man", page]));
        assert_success(&output, &format!("veilfs man {page}"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file);
        std::fs::write(&path, &output.stdout).unwrap();
        let rendered = run(Command::new("man")
            .arg("-l")
            .arg(&path)
            .env("MANWIDTH", WIDTH.to_string())
            .env("MAN_KEEP_FORMATTING", "")
            .env_remove("MANPAGER")
            .env_remove("PAGER"));
        if !rendered.status.success() {
            skip(
                "the_man_pages_fit_in_80_columns",
                &format!("man(1) cannot render pages here: {}", stderr_of(&rendered)),
            );
            return;
        }
        let text = String::from_utf8_lossy(&rendered.stdout);
        assert!(text.contains("SYNOPSIS"), "{text}");
        let found = problems(&format!("man {page}"), &text);
        assert!(found.is_empty(), "{}", found.join("\n"));
    }
}

#[test]
fn the_man_synopsis_names_the_values() {
    let page = String::from_utf8(run(veilfs().arg("man")).stdout).unwrap();
    let mount = page
        .split(".SH \"VEILFS MOUNT\"")
        .nth(1)
        .and_then(|s| s.split(".SS OPTIONS").next())
        .expect("a mount section");
    for needle in [
        "\\fB\\-o\\fR \\fIOPTIONS\\fR",
        "\\fB\\-\\-passfile\\fR \\fIFILE\\fR",
        "\\fB\\-\\-idle\\fR \\fIDURATION\\fR",
        "\\fICIPHERDIR\\fR",
    ] {
        assert!(
            mount.contains(needle),
            "the synopsis lacks {needle:?}:\n{mount}"
        );
    }
    assert!(!page.contains("[\\fB\\-o \\fR]"), "an empty value name");
}
