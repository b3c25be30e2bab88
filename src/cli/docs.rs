//! The hidden `veilfs man [PAGE]` and `veilfs completions SHELL`: the man pages (veilfs(1) and
//! mount.fuse.veilfs(8), the mount(8) helper's) and the shell completions, generated from the
//! clap definitions. `man/` and `packaging/completions/` in the repository are their output;
//! `tests/man.rs` fails when they are out of date (regenerate with
//! `VEILFS_UPDATE_MAN=1 cargo test --test man`).

use std::io::{self, Write};

use clap::CommandFactory;
use clap_complete::Shell;
use clap_mangen::roff::{bold, italic, roman, Inline, Roff};
use clap_mangen::Man;
use veilfs::mount_options;

use super::text::{self, Block};
use super::{helper, print_stdout, Cli, CliError, EXIT_STATUS_HELP};

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

/// The options of `veilfs mount` that are also `-o` options, named with `_` for `-`
/// (mount_options::parse_options takes them).
const FLAGS_AS_OPTIONS: &[&str] = &[
    "passfile",
    "extpass",
    "keyfile",
    "idle",
    "cache-ttl",
    "threads",
];

/// The man page of the mount(8) helper, mount.fuse.veilfs(8). Its options and mount options
/// come from the helper's usage and `veilfs mount`'s definitions, so that they cannot drift
/// apart.
pub fn helper_page() -> io::Result<Vec<u8>> {
    let mut cmd = Cli::command();
    cmd.build();
    let mount = cmd
        .find_subcommand("mount")
        .expect("veilfs has a mount command");
    let mut roff = title("mount.fuse.veilfs", "8");

    roff.control("SH", ["NAME"]);
    roff.text([roman(
        "mount.fuse.veilfs, mount.veilfs - mount(8) helper for veilfs vaults (type fuse.veilfs)",
    )]);

    roff.control("SH", ["SYNOPSIS"]);
    let usage = [
        vec![bold("mount.fuse.veilfs"), roman(" ")],
        vec![
            bold("mount -t fuse.veilfs"),
            roman(" [-o "),
            italic("OPTIONS"),
            roman("] "),
        ],
    ];
    for (i, start) in usage.into_iter().enumerate() {
        if i > 0 {
            roff.control("br", []);
        }
        let mut line = start;
        line.extend([italic("CIPHERDIR"), roman(" "), italic("MOUNTPOINT")]);
        if i == 0 {
            line.extend([
                roman(" [-sfnv] [-o "),
                italic("OPTIONS"),
                roman("] [-t "),
                italic("TYPE"),
                roman("]"),
            ]);
        }
        roff.text(line);
    }
    roff.control("br", []);
    roff.text([
        bold("mount"),
        roman(" "),
        italic("MOUNTPOINT"),
        roman("   (with a line in /etc/fstab)"),
    ]);

    roff.control("SH", ["DESCRIPTION"]);
    paragraph(
        &mut roff,
        [
            roman(
                "mount.fuse.veilfs is the veilfs binary under another name: a link to it, \
                 installed as /sbin/mount.fuse.veilfs by the Debian package and by \
                 scripts/install.sh (the name mount.veilfs is recognized too). mount(8) runs it \
                 for file systems of type ",
            ),
            bold("fuse.veilfs"),
            roman(
                ", given with -t or in /etc/fstab (when mount MOUNTPOINT is run, or at boot: \
                 systemd turns each line into a mount unit). It unlocks the vault in CIPHERDIR \
                 and mounts its plaintext view at MOUNTPOINT in the background, as ",
            ),
            bold("veilfs mount"),
            roman(
                " does, and returns once the mount is ready. The password comes from the \
                 passfile= or extpass= option, or else from the terminal mount(8) was run from. \
                 The mount shows as type fuse.veilfs in /proc/mounts, with CIPHERDIR as its \
                 source; umount(8) or ",
            ),
            bold("veilfs umount"),
            roman(" unmounts it."),
        ],
    );
    paragraph(
        &mut roff,
        [
            roman("Without the helper, mount(8) runs mount.fuse3, which runs "),
            bold("veilfs CIPHERDIR MOUNTPOINT -o OPTIONS"),
            roman(
                "; veilfs accepts that form as well, but mount(8) clears PATH, so veilfs must \
                 then be in /usr/local/bin or /usr/bin, or be named before # in the source of a \
                 mount of type fuse (/usr/bin/veilfs#/srv/vault).",
            ),
        ],
    );

    roff.control("SH", ["OPTIONS"]);
    for (block, _) in text::blocks(helper::USAGE) {
        if let Block::Definitions(rows) = block {
            for (term, description) in rows {
                item(&mut roff, vec![bold(term)], description);
            }
        }
    }

    roff.control("SH", ["MOUNT OPTIONS"]);
    paragraph(
        &mut roff,
        [
            roman(
                "OPTIONS is a comma-separated list; -o may be given more than once, and a later \
                 option overrides an earlier one (ro,rw is read-write). They are those of ",
            ),
            bold("veilfs mount -o"),
            roman(":"),
        ],
    );
    let notes_of_mount = mount
        .get_after_help()
        .map(|notes| notes.to_string())
        .unwrap_or_default();
    if let Some(rows) = text::blocks(&notes_of_mount)
        .into_iter()
        .find_map(|(block, _)| match block {
            Block::Definitions(rows) => Some(rows),
            _ => None,
        })
    {
        for (term, description) in rows {
            item(&mut roff, vec![roman(term)], description);
        }
    }
    roff.control("SS", ["The options of veilfs mount, as mount options"]);
    for long in FLAGS_AS_OPTIONS {
        let Some(arg) = mount.get_arguments().find(|a| a.get_long() == Some(long)) else {
            continue;
        };
        let help = arg
            .get_long_help()
            .or_else(|| arg.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default();
        item(
            &mut roff,
            vec![
                bold(format!("{}=", long.replace('-', "_"))),
                italic(value_name(arg)),
            ],
            &help,
        );
    }
    let ignored: Vec<String> = mount_options::TABLE_ONLY_OPTIONS
        .iter()
        .map(|name| name.to_string())
        .chain(
            mount_options::TABLE_ONLY_VALUE_OPTIONS
                .iter()
                .map(|name| format!("{name}=")),
        )
        .collect();
    paragraph(
        &mut roff,
        [roman(format!(
            "In /etc/fstab a space is written \\040. CMD ends at the next comma, so it cannot \
             contain one (put a longer command in a script). A password file given in \
             /etc/fstab should be readable by root only. Accepted and ignored, as options for \
             mount(8), systemd and desktops: {}, and every option that starts with x- \
             (x-systemd.automount, x-gvfs-show, ...). Refused: fsname= and subtype= (veilfs \
             sets them), allow_root (use allow_other), auto_unmount, and any other option, \
             unless -s is given (exit status 2).",
            ignored.join(", ")
        ))],
    );

    roff.control("SH", ["EXIT STATUS"]);
    paragraph(
        &mut roff,
        [roman(
            "The helper's exit status is veilfs's, which mount(8) passes on:",
        )],
    );
    notes(&mut roff, EXIT_STATUS_HELP);

    roff.control("SH", ["EXAMPLES"]);
    example(
        &mut roff,
        "mount -t fuse.veilfs -o passfile=/etc/veilfs/pass /srv/vault /mnt/vault\n\
         umount /mnt/vault\n\
         \n\
         # Check the vault, the password and the options, without mounting:\n\
         mount.fuse.veilfs /srv/vault /mnt/vault -f -o passfile=/etc/veilfs/pass",
    );
    paragraph(
        &mut roff,
        [roman(
            "Lines of /etc/fstab, each mounted by mount /mnt/vault (alternatives: use one):",
        )],
    );
    example(
        &mut roff,
        "# At boot; nofail: the boot goes on if the vault cannot be mounted\n\
         /srv/vault /mnt/vault fuse.veilfs passfile=/etc/veilfs/pass,nofail 0 0\n\
         \n\
         # On first access, unmounted after ten minutes unused; with a key file\n\
         /srv/vault /mnt/vault fuse.veilfs noauto,x-systemd.automount,\\\n\
         \x20   x-systemd.idle-timeout=10min,passfile=/etc/veilfs/pass,\\\n\
         \x20   keyfile=/etc/veilfs/key 0 0\n\
         \n\
         # The password typed at mount time, through systemd's password agents\n\
         /srv/vault /mnt/vault fuse.veilfs noauto,\\\n\
         \x20   extpass=systemd-ask-password\\040--id=veilfs:vault\\040vault 0 0",
    );
    paragraph(
        &mut roff,
        [roman(
            "(An /etc/fstab line is one line: the backslashes above only fold it.)",
        )],
    );

    roff.control("SH", ["FILES"]);
    item(
        &mut roff,
        vec![bold("/sbin/mount.fuse.veilfs")],
        "The helper: a link to /usr/bin/veilfs (the Debian package) or /usr/local/bin/veilfs \
         (scripts/install.sh).",
    );
    item(
        &mut roff,
        vec![bold("/etc/fstab")],
        "Lines of type fuse.veilfs.",
    );
    item(
        &mut roff,
        vec![bold("/usr/share/doc/veilfs/examples/systemd/")],
        "fstab.example, and systemd mount, automount and service units (the Debian package; \
         docs/systemd/ in the sources).",
    );

    roff.control("SH", ["SEE ALSO"]);
    roff.text([roman(
        "veilfs(1), mount(8), umount(8), fstab(5), mount.fuse3(8), systemd.mount(5), \
         systemd.automount(5), systemd-ask-password(1)",
    )]);

    let mut out = Vec::new();
    roff.to_writer(&mut out)?;
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

/// Notes in [`text`]'s markup: prose paragraphs flow, definition lists become tagged
/// paragraphs, verbatim lines stay as they are.
fn notes(roff: &mut Roff, text: &str) {
    for (block, _) in text::blocks(text) {
        match block {
            Block::Prose(text) => paragraph(roff, [roman(text)]),
            Block::Definitions(rows) => {
                for (term, description) in rows {
                    item(roff, vec![roman(term)], description);
                }
            }
            Block::Verbatim(lines) => example(roff, &lines.join("\n")),
        }
    }
}

fn preformatted(roff: &mut Roff, text: &str) {
    roff.control("nf", []);
    roff.text([roman(text.trim_end())]);
    roff.control("fi", []);
}

fn paragraph(roff: &mut Roff, inlines: impl Into<Vec<Inline>>) {
    roff.control("PP", []);
    roff.text(inlines);
}

fn item(roff: &mut Roff, term: Vec<Inline>, text: &str) {
    roff.control("TP", []);
    roff.text(term);
    roff.text([roman(text)]);
}

fn example(roff: &mut Roff, text: &str) {
    roff.control("PP", []);
    preformatted(roff, text);
}

fn extra_sections(roff: &mut Roff) {
    roff.control("SH", ["PASSWORDS AND KEY FILES"]);
    paragraph(
        roff,
        [roman(
            "The password comes from the terminal (asked twice by init), from the first line of \
             the file given with ",
        ),
        bold("--passfile"),
        roman(", from the first line printed by the command given with "),
        bold("--extpass"),
        roman(
            " (run with sh -c), or from a line of standard input when it is not a terminal. A \
             vault created with ",
        ),
        bold("init --keyfile"),
        italic(" FILE"),
        roman(
            " needs that file as well as the password, ever after: every byte of the file \
             counts (at most 1 MiB; a FIFO, a device or a directory is refused at once, exit \
             status 1), so it must never change. A password file is a regular file of at most \
             64 KiB or a pipe (such as /dev/stdin); a FIFO nobody writes to reads as empty. \
             Neither the password alone nor the key file with \
             a wrong password unlocks it; a missing ",
        ),
        bold("--keyfile"),
        roman(
            " is reported before the password is asked for (exit status 6). The recovery key \
             printed by init opens the vault without either: ",
        ),
        bold("veilfs passwd --recovery-key --new-keyfile"),
        roman(
            " FILE asks for it (without showing it; it may be pasted as init printed it, over \
             several lines) and sets a new password and key file. ",
        ),
        bold("--recovery-key-file"),
        roman(
            " KEY reads it from the file KEY instead (- for standard input), which may hold \
             all of init's output: the key's lines are found in it. ",
        ),
        bold("init --recovery-key-file"),
        roman(" FILE writes it to a new file, readable only by its owner, instead of showing it."),
    ]);

    roff.control("SH", ["MOUNT(8), FSTAB AND MOUNT HELPER"]);
    paragraph(
        roff,
        [
            roman(
                "Installed as (or linked to) /sbin/mount.fuse.veilfs, as the Debian package and \
                 scripts/install.sh do, the binary is the helper mount(8) runs for file system \
                 type ",
            ),
            bold("fuse.veilfs"),
            roman(
                ", so that mount -t fuse.veilfs and /etc/fstab lines mount vaults, with the \
                 options of ",
            ),
            bold("veilfs mount -o"),
            roman(
                " (see above): passfile=FILE, extpass=CMD, keyfile=FILE, idle=DURATION, \
                 cache_ttl=DURATION, threads=N, and those mount(8) and systemd hand on. ",
            ),
            bold("mount.fuse.veilfs"),
            roman("(8) describes the helper, its options and its exit status, with examples."),
        ],
    );
    paragraph(
        roff,
        [roman(
            "To mount on first access and unmount after 10 minutes unused, add \
             noauto,x-systemd.automount,x-systemd.idle-timeout=10min to the options in \
             /etc/fstab, or use a pair of units:",
        )],
    );
    example(
        roff,
        "# /etc/systemd/system/mnt-vault.mount\n\
         [Mount]\n\
         What=/srv/vault\n\
         Where=/mnt/vault\n\
         Type=fuse.veilfs\n\
         Options=passfile=/etc/veilfs/pass\n\
         \n\
         # /etc/systemd/system/mnt-vault.automount\n\
         [Automount]\n\
         Where=/mnt/vault\n\
         TimeoutIdleSec=10min\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target",
    );

    roff.control("SH", ["SYSTEMD"]);
    paragraph(
        roff,
        [roman(
            "A .mount unit (or an /etc/fstab line, which systemd turns into one) mounts through \
             the helper; add a .automount unit, or x-systemd.automount, to mount on first \
             access, and x-systemd.idle-timeout= (TimeoutIdleSec=) or ",
        ),
        bold("idle="),
        roman(" to unmount when unused. A service runs "),
        bold("veilfs mount --foreground"),
        roman(
            ": with Type=notify it reports readiness once the mount is live, and stopping the \
             service unmounts. Credentials of the service reach veilfs as files: ",
        ),
        bold("LoadCredential=veilfs-password:/etc/veilfs/vault.pass"),
        roman(" and "),
        bold("--passfile %d/veilfs-password"),
        roman(" (%d is $CREDENTIALS_DIRECTORY). "),
        bold("--extpass systemd-ask-password"),
        roman(
            " asks through systemd's password agents. Examples: docs/systemd/ in the sources, \
             /usr/share/doc/veilfs/examples/systemd/ from the Debian package.",
        ),
    ]);
    example(
        roff,
        "[Service]\n\
         Type=notify\n\
         LoadCredential=veilfs-password:/etc/veilfs/vault.pass\n\
         ExecStart=/usr/local/bin/veilfs mount --foreground \\\n\
         \x20   --passfile %d/veilfs-password /srv/vault /mnt/vault",
    );

    roff.control("SH", ["LOGGING"]);
    paragraph(
        roff,
        [roman(
            "Messages go to standard error: warnings and errors, more with -v (info), -vv \
             (debug) and -vvv (trace), errors only with -q; RUST_LOG overrides this. Once a \
             mount has detached from the terminal, they go to syslog (facility daemon, through \
             /dev/log), and are dropped when there is no syslog. Logs name backing \
             (encrypted) paths, never plaintext names, passwords or keys; fuser's per-request \
             debug messages, which hold plaintext names, appear only when RUST_LOG asks for \
             them.",
        )],
    );

    roff.control("SH", ["FILES"]);
    roff.control("PP", []);
    roff.text([roman("In CIPHERDIR, the backing directory:")]);
    item(
        roff,
        vec![bold("veilfs.conf")],
        "The vault's config: format version, Argon2id parameters and salt, feature flags \
         (name encoding, long-name threshold, key file), and the master key wrapped with \
         AES-256-SIV under the key derived from the password. JSON, read-only (0400); any \
         change to it is detected. Without it the vault cannot be opened, not even with the recovery key: keep a backup.",
    );
    item(
        roff,
        vec![bold("veilfs.diriv")],
        "In every directory: the 16-byte IV its entries' names are encrypted with.",
    );
    item(
        roff,
        vec![bold("veilfs.longname."), italic("HASH")],
        "An entry whose encrypted name is longer than the long-name threshold, stored under \
         a hash of that name.",
    );
    item(
        roff,
        vec![bold("veilfs.longname."), italic("HASH"), bold(".name")],
        "The full encrypted name of such an entry.",
    );
    item(
        roff,
        vec![bold("veilfs.conf.tmp")],
        "Left only by a crash while veilfs.conf was being replaced; removed by the next change.",
    );
    roff.control("PP", []);
    roff.text([roman(
        "Installed by the Debian package (with veilfs in /usr/bin) or by scripts/install.sh \
         (in /usr/local/bin):",
    )]);
    item(
        roff,
        vec![bold("/sbin/mount.fuse.veilfs")],
        "A link to veilfs: the helper mount(8) runs for type fuse.veilfs.",
    );

    roff.control("SH", ["ENVIRONMENT"]);
    item(
        roff,
        vec![bold("RUST_LOG")],
        "Log filter (tracing-subscriber EnvFilter syntax), instead of -v and -q.",
    );
    item(
        roff,
        vec![bold("NOTIFY_SOCKET")],
        "Set by systemd for Type=notify services: mount --foreground reports READY=1 and \
         STOPPING=1 to it.",
    );
    item(
        roff,
        vec![bold("CREDENTIALS_DIRECTORY")],
        "Set by systemd for services with LoadCredential=: pass a file in it to --passfile.",
    );
    item(
        roff,
        vec![bold("FUSERMOUNT_PATH")],
        "The fusermount3 binary to use when not root.",
    );
    item(
        roff,
        vec![bold("VEILFS_SYSLOG_SOCKET")],
        "Another syslog socket than /dev/log, for a detached mount (for tests).",
    );

    roff.control("SH", ["EXIT STATUS"]);
    notes(roff, EXIT_STATUS_HELP);

    roff.control("SH", ["SEE ALSO"]);
    roff.text([roman(
        "mount.fuse.veilfs(8), mount(8), fstab(5), mount.fuse3(8), fusermount3(1), \
         systemd.mount(5), systemd.automount(5), systemd.exec(5), systemd-ask-password(1), \
         gocryptfs(1)",
    )]);
}
