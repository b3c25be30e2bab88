//! The hidden `veilfs man [PAGE]` and `veilfs completions SHELL`: the man pages (veilfs(1) and
//! mount.fuse.veilfs(8), the mount(8) helper's) and the shell completions, generated from the
//! clap definitions. `man/` and `packaging/completions/` in the repository are their output;
//! `tests/man.rs` fails when they are out of date (regenerate with
//! `VEILFS_UPDATE_MAN=1 cargo test --test man`).
//!
//! This file has the commands and veilfs(1) as clap_mangen renders it from the definitions;
//! [`sections`] has the hand-written sections that follow, [`mod@helper_page`]
//! mount.fuse.veilfs(8), and [`markup`] the roff building blocks they share.

mod helper_page;
mod markup;
mod sections;

use std::io::{self, Write};

use clap::CommandFactory;
use clap_complete::Shell;
use clap_mangen::roff::{bold, italic, roman, Roff};
use clap_mangen::Man;

use super::{print_stdout, Cli, CliError};
pub use helper_page::helper_page;
use markup::{item, notes};
use sections::extra_sections;

/// The date in the pages' header: the day the version in Cargo.toml was set, changed with it. A
/// date from the clock would make every regeneration differ.
const MANUAL_DATE: &str = "2026-12-02";

/// `veilfs man [PAGE]`.
#[derive(Debug, clap::Args)]
#[command(about = "Print a man page (roff) on standard output")]
pub struct ManArgs {
    /// The page
    #[arg(value_enum, default_value_t = Page::Veilfs)]
    pub page: Page,
}

/// The man pages veilfs has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Page {
    /// veilfs(1)
    Veilfs,
    /// mount.fuse.veilfs(8), the mount(8) helper
    #[value(name = "mount.fuse.veilfs")]
    Helper,
}

/// `veilfs completions SHELL`.
#[derive(Debug, clap::Args)]
#[command(about = "Print the completion script for SHELL on standard output")]
pub struct CompletionsArgs {
    /// The shell
    #[arg(value_enum)]
    pub shell: Shell,
}

pub fn run_man(args: ManArgs) -> Result<(), CliError> {
    let page = match args.page {
        Page::Veilfs => man_page(),
        Page::Helper => helper_page(),
    }
    .map_err(|e| CliError::io("cannot render the man page", e))?;
    print_stdout(&String::from_utf8_lossy(&page))
}

pub fn run_completions(args: CompletionsArgs) -> Result<(), CliError> {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "veilfs", &mut out);
    print_stdout(&String::from_utf8_lossy(&out))
}

/// The `.TH` line of page `name(section)`, and the settings both pages share. No hyphenation: a
/// word split across lines is hard to search for, and options would be split at their own
/// dashes. Ragged right: justifying lines of long option names and paths stretches the spaces
/// between them.
fn title(name: &str, section: &str) -> Roff {
    let source = format!("veilfs {}", env!("CARGO_PKG_VERSION"));
    let mut roff = Roff::new();
    roff.control("TH", [name, section, MANUAL_DATE, &source, "veilfs manual"]);
    roff.control("nh", []);
    roff.control("ad", ["l"]);
    roff
}

/// The man page, veilfs(1).
pub fn man_page() -> io::Result<Vec<u8>> {
    let mut cmd = Cli::command();
    cmd.build();
    let mut out = Vec::new();
    title("veilfs", "1").to_writer(&mut out)?;
    let man = Man::new(cmd.clone());
    man.render_name_section(&mut out)?;
    synopsis(&cmd, "veilfs").to_writer(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;

    let commands: Vec<&clap::Command> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        .collect();
    let mut roff = Roff::new();
    roff.control("SH", ["COMMANDS"]);
    for sub in &commands {
        let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
        item(
            &mut roff,
            vec![bold(format!("veilfs {}", sub.get_name()))],
            &about,
        );
    }
    roff.to_writer(&mut out)?;

    // Each command: its own section, with its synopsis, description, options and notes. The
    // global options are described once, above.
    let globals: Vec<&str> = cmd.get_arguments().map(|a| a.get_id().as_str()).collect();
    for sub in commands {
        let mut roff = Roff::new();
        roff.control(
            "SH",
            [format!("VEILFS {}", sub.get_name().to_uppercase()).as_str()],
        );
        roff.to_writer(&mut out)?;
        let mut own = sub.clone();
        for id in &globals {
            if own.get_arguments().any(|a| a.get_id() == *id) {
                own = own.mut_arg(*id, |a| a.hide(true));
            }
        }
        let mut parts = Vec::new();
        synopsis(&own, &format!("veilfs {}", sub.get_name())).to_writer(&mut parts)?;
        let man = Man::new(own);
        man.render_description_section(&mut parts)?;
        man.render_options_section(&mut parts)?;
        out.extend_from_slice(&subsections(&parts));
        if let Some(after) = sub.get_after_long_help().or_else(|| sub.get_after_help()) {
            let mut roff = Roff::new();
            roff.control("SS", ["NOTES"]);
            notes(&mut roff, &after.to_string());
            roff.to_writer(&mut out)?;
        }
    }

    let mut roff = Roff::new();
    extra_sections(&mut roff);
    roff.to_writer(&mut out)?;
    out.flush()?;
    Ok(out)
}

/// clap_mangen's sections of a command, as subsections of that command's section.
fn subsections(roff: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(roff);
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        match line.strip_prefix(".SH ") {
            Some(heading) => {
                out.push_str(".SS ");
                out.push_str(heading);
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out.into_bytes()
}

/// The SYNOPSIS of `cmd`, called as `name`: clap_mangen's leaves out the values options take.
fn synopsis(cmd: &clap::Command, name: &str) -> Roff {
    let mut line = vec![bold(name)];
    let options = cmd.get_arguments().filter(|a| {
        !a.is_hide_set()
            && !a.is_positional()
            && !["help", "version"].contains(&a.get_id().as_str())
    });
    for arg in options {
        line.push(roman(" ["));
        match (arg.get_short(), arg.get_long()) {
            (Some(short), Some(long)) => line.extend([
                bold(format!("-{short}")),
                roman("|"),
                bold(format!("--{long}")),
            ]),
            (Some(short), None) => line.push(bold(format!("-{short}"))),
            (None, Some(long)) => line.push(bold(format!("--{long}"))),
            (None, None) => continue,
        }
        if arg.get_action().takes_values() {
            line.extend([roman(" "), italic(value_name(arg))]);
        }
        line.push(roman("]"));
        if matches!(arg.get_action(), clap::ArgAction::Count) {
            line.push(roman("..."));
        }
    }
    if cmd.has_subcommands() {
        line.extend([roman(" "), italic("COMMAND"), roman(" ...")]);
    }
    for arg in cmd.get_positionals().filter(|a| !a.is_hide_set()) {
        let many = matches!(arg.get_action(), clap::ArgAction::Append)
            || arg.get_num_args().is_some_and(|n| n.max_values() > 1);
        let (open, close) = if arg.is_required_set() {
            ("", "")
        } else {
            ("[", "]")
        };
        line.extend([roman(format!(" {open}")), italic(value_name(arg))]);
        line.push(roman(format!("{}{close}", if many { "..." } else { "" })));
    }
    let mut roff = Roff::new();
    roff.control("SH", ["SYNOPSIS"]);
    roff.text(line);
    roff
}

fn value_name(arg: &clap::Arg) -> String {
    match arg.get_value_names() {
        Some(names) => names
            .iter()
            .map(|n| n.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        None => arg.get_id().as_str().to_uppercase(),
    }
}
