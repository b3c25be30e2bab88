//! The command line: argument parsing, exit statuses, and one module per verb.
//!
//! To add a verb: write `cli/<verb>.rs` with an `Args` struct (clap `Args`, flattening the
//! arguments of [`args`] it takes: the password, the key file, CIPHERDIR) and
//! `pub fn run(args: Args, global: &GlobalArgs) -> Result<(), CliError>`, add a variant to [`Command`] and a line to
//! [`run`]. Map new error kinds to an exit status in [`CliError`]'s `From<veilfs::Error>`.
//! Its `after_help` is written in [`text`]'s markup (prose flows; tables are `  TERM\tTEXT`
//! rows; examples, indented, must fit in 80 columns: `tests/help_width.rs` checks).

use std::ffi::OsString;
use std::fmt;
use std::io::{self, Write};
use std::path::Path;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

pub mod args;
pub mod docs;
pub mod duration;
pub mod fsck;
pub mod habits;
pub mod harden;
pub mod helper;
pub mod info;
pub mod init;
pub mod lock;
pub mod log;
pub mod mount;
pub mod passwd;
pub mod paths;
pub mod platform;
pub mod progress;
pub mod rekey;
pub mod reverse;
pub mod secret_input;
pub mod slot;
pub mod text;
pub mod umount;
pub mod unlock;

// Exit statuses. Documented in the top-level `--help` (EXIT_STATUS_HELP) and the README.

/// Success.
pub const EXIT_OK: u8 = 0;
/// Any other error (I/O, a password source that failed, passwords that do not match, ...).
pub const EXIT_FAILURE: u8 = 1;
/// Usage error: unknown flag, bad value, missing argument (clap exits with it).
pub const EXIT_USAGE: u8 = 2;
/// CIPHERDIR is missing or not a directory, or not empty for `init`.
pub const EXIT_CIPHERDIR: u8 = 3;
/// CIPHERDIR is not a vault: it has no veilfs.conf.
pub const EXIT_NOT_A_VAULT: u8 = 4;
/// veilfs.conf is corrupt, was modified, has an unsupported format version, or is not a regular
/// file. (One that cannot be read, for its permissions, is [`EXIT_FAILURE`].)
pub const EXIT_CONFIG: u8 = 5;
/// Wrong password, key file or recovery key, a mistyped recovery key, or a vault's key file not
/// given.
pub const EXIT_BAD_KEY: u8 = 6;
// 7 and up: mount errors (`mount`, `umount`).
/// The mount point is missing, not a directory, not empty, already mounted, inside CIPHERDIR;
/// or (umount) not mounted, or not a FUSE mount.
pub const EXIT_MOUNTPOINT: u8 = 7;
/// FUSE is not available: no /dev/fuse, or no fusermount3 for a user other than root.
pub const EXIT_NO_FUSE: u8 = 8;
/// The kernel or fusermount3 refused the mount, or the mount process died before it was ready.
pub const EXIT_MOUNT_FAILED: u8 = 9;
/// Busy: (umount) the mount point has files open; (mount, fsck --repair) the vault is already
/// mounted, or being repaired, by another veilfs process on this machine.
pub const EXIT_BUSY: u8 = 10;

/// The exit statuses, as `--help` and the man page show them (in [`text`]'s markup).
macro_rules! exit_status_table {
    () => {
        "  0\tsuccess
  1\tother error (I/O, password or key file source failed, passwords do not match, ...)
  2\tusage error (unknown flag, bad value, missing argument; --keyfile for a vault without one)
  3\tCIPHERDIR is missing or not a directory, or (init) not empty
  4\tCIPHERDIR is not a vault (no veilfs.conf)
  5\tveilfs.conf is corrupt, was modified, has an unsupported format version, is not a \
         regular file (a FIFO, a symlink, a directory, ...), or is another vault's; or a key \
         rotation was interrupted (run 'veilfs rekey')
  6\twrong password, key file or recovery key, mistyped recovery key, or the vault's key file \
         not given (--keyfile)
  7\tmount point missing, not a directory, not empty or already mounted; (umount) not mounted
  8\tFUSE not available (no /dev/fuse, or no fusermount3 when not root): install fuse3
  9\tthe mount failed (refused by the kernel or fusermount3)
  10\t(umount) the mount point is busy; (mount, fsck --repair) the vault is already mounted, \
         or being repaired, by another veilfs process on this machine
  11\t(fsck) problems found and not all repaired"
    };
}

/// The exit statuses (the man page's EXIT STATUS section).
pub const EXIT_STATUS_HELP: &str = exit_status_table!();

const MAIN_HELP: &str = concat!(
    "Exit status:\n",
    exit_status_table!(),
    "

Examples:
  mkdir ~/Sync/vault && veilfs init ~/Sync/vault
  veilfs info ~/Sync/vault
  veilfs passwd ~/Sync/vault
  veilfs mount ~/Sync/vault ~/Private && veilfs umount ~/Private

Run 'veilfs <command> --help' for the options of a command, and see 'man veilfs' for mount(8), \
/etc/fstab and systemd."
);

#[derive(Debug, Parser)]
#[command(
    name = "veilfs",
    version,
    about = "Encrypted filesystem for sync folders",
    long_about = "veilfs keeps an encrypted copy of a directory tree in a backing directory \
                  (CIPHERDIR) that can live in a sync folder (Syncthing, Nextcloud, Dropbox, \
                  rclone, ...). File contents are encrypted with AES-256-XTS, names with \
                  AES-256-SIV; the master key is wrapped with a key derived from your password \
                  (Argon2id) in CIPHERDIR/veilfs.conf.",
    after_help = MAIN_HELP,
    subcommand_help_heading = "Commands",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes, before or after its name.
#[derive(Clone, Copy, Debug, clap::Args)]
pub struct GlobalArgs {
    /// More log output on stderr (-v: info, -vv: debug, -vvv: trace)
    #[arg(
        short,
        long,
        global = true,
        action = clap::ArgAction::Count,
        conflicts_with = "quiet",
        help_heading = "Global options"
    )]
    pub verbose: u8,

    /// Print only errors and the essential output (init still prints the recovery key)
    #[arg(short, long, global = true, help_heading = "Global options")]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Init(init::Args),
    Info(info::Args),
    Passwd(passwd::Args),
    Slot(slot::Args),
    Mount(mount::MountArgs),
    Umount(umount::UmountArgs),
    Fsck(fsck::Args),
    Rekey(rekey::Args),
    Upgrade(rekey::UpgradeArgs),
    EncryptPath(paths::EncryptArgs),
    DecryptPath(paths::DecryptArgs),
    #[command(hide = true)]
    Man(docs::ManArgs),
    #[command(hide = true)]
    Completions(docs::CompletionsArgs),
}

/// The command line's definition, with the notes under each `--help` laid out for `width`
/// columns (see [`text`]); clap wraps the rest to the same width.
pub fn command(width: usize) -> clap::Command {
    fn lay_out(cmd: clap::Command, width: usize) -> clap::Command {
        let cmd = match cmd
            .get_after_help()
            .map(|notes| text::flow(&notes.to_string(), width))
        {
            Some(notes) => cmd.after_help(notes),
            None => cmd,
        };
        cmd.mut_subcommands(|sub| lay_out(sub, width))
    }
    lay_out(Cli::command().term_width(width), width)
}

/// Parses the command line `argv` (program name first). Help, version and usage errors are
/// printed and exit here, as clap does: a bare `veilfs` with a short usage, a gocryptfs spelling
/// with the veilfs one ([`habits`]).
pub fn parse(argv: Vec<OsString>) -> Cli {
    let width = text::help_width();
    let mut cmd = command(width);
    if argv.len() == 1 {
        let _ = io::stderr().write_all(short_usage(&mut cmd, width).as_bytes());
        std::process::exit(EXIT_USAGE.into());
    }
    let matches = match cmd.try_get_matches_from_mut(&argv) {
        Ok(matches) => matches,
        Err(err) if err.use_stderr() => match habits::answer(&argv) {
            Some(answer) => {
                let _ = writeln!(io::stderr(), "veilfs: {answer}");
                std::process::exit(EXIT_USAGE.into());
            }
            None => err.exit(),
        },
        Err(err) => err.exit(),
    };
    Cli::from_arg_matches(&matches).unwrap_or_else(|err| err.format(&mut cmd).exit())
}

/// What a bare `veilfs` prints: the usage and the commands, short enough to stay on a screen.
fn short_usage(cmd: &mut clap::Command, width: usize) -> String {
    let mut notes = String::from("Commands:\n");
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
        notes.push_str(&format!("  {}\t{about}\n", sub.get_name()));
    }
    notes.push_str(
        "\n'veilfs --help' shows the options, exit statuses and examples; 'veilfs COMMAND \
         --help' those of a command.",
    );
    format!(
        "{}\n\n{}\n",
        cmd.render_usage().to_string().trim_end(),
        text::flow(&notes, width)
    )
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<(), CliError> {
    let global = &cli.global;
    match cli.command {
        Command::Init(args) => init::run(args, global),
        Command::Info(args) => info::run(args, global),
        Command::Passwd(args) => passwd::run(args, global),
        Command::Slot(args) => slot::run(args, global),
        Command::Mount(args) => mount::run(args, global),
        Command::Umount(args) => umount::run(args, global),
        Command::Fsck(args) => fsck::run(args, global),
        Command::Rekey(args) => rekey::run_rekey(args, global),
        Command::Upgrade(args) => rekey::run_upgrade(args, global),
        Command::EncryptPath(args) => paths::run_encrypt(args, global),
        Command::DecryptPath(args) => paths::run_decrypt(args, global),
        Command::Man(args) => docs::run_man(args),
        Command::Completions(args) => docs::run_completions(args),
    }
}

/// Logs go to stderr (to syslog once a mount has detached): warnings by default, more with -v,
/// errors only with -q. `RUST_LOG`, when set, overrides both. See [`log`].
pub fn init_logging(global: &GlobalArgs) {
    log::init(global.verbose, global.quiet);
}

/// An error of a command: the one line printed as `veilfs: <message>`, and the exit status.
#[derive(Debug)]
pub struct CliError {
    code: u8,
    message: String,
}

impl CliError {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// Exit status 1.
    pub fn other(message: impl Into<String>) -> Self {
        Self::new(EXIT_FAILURE, message)
    }

    /// An I/O error while doing `what` ("cannot read /x: No such file or directory").
    pub fn io(what: impl fmt::Display, err: io::Error) -> Self {
        Self::other(format!("{what}: {err}"))
    }

    pub fn code(&self) -> u8 {
        self.code
    }

    /// Prefixes the message with where it happened, keeping the exit status.
    pub fn context(self, what: impl fmt::Display) -> Self {
        Self {
            code: self.code,
            message: format!("{what}: {}", self.message),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One line, whatever a message from below contains.
        f.write_str(&self.message.replace(['\n', '\r'], " "))
    }
}

impl From<veilfs::Error> for CliError {
    fn from(err: veilfs::Error) -> Self {
        use veilfs::Error as E;
        let code = match &err {
            E::NotAVault(_) => EXIT_NOT_A_VAULT,
            E::ConfigCorrupt(_)
            | E::ConfigTampered
            | E::ConfigVersion(_)
            | E::ConfigModified(_)
            | E::ForeignConfig(_)
            | E::RotationUnfinished => EXIT_CONFIG,
            E::WrongPassword | E::WrongRecoveryKey | E::RecoveryKeyFormat(_) | E::NoSuchSlot(_) => {
                EXIT_BAD_KEY
            }
            _ => EXIT_FAILURE,
        };
        let message = match &err {
            E::ConfigTampered => format!(
                "{err} (damaged, or edited by hand; restore it from a backup or another device)"
            ),
            E::NotAVault(dir) if std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none()) => {
                format!(
                    "{err}: it is empty; to create a vault there: veilfs init {}",
                    shell_quote(dir)
                )
            }
            _ => err.to_string(),
        };
        Self::new(code, message)
    }
}

/// Checks that CIPHERDIR exists and is a directory (exit status 3 if not).
pub fn check_cipherdir(dir: &Path) -> Result<(), CliError> {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(CliError::new(
            EXIT_CIPHERDIR,
            format!("{} is not a directory", dir.display()),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(CliError::new(
            EXIT_CIPHERDIR,
            format!("{} does not exist", dir.display()),
        )),
        Err(e) => Err(CliError::new(
            EXIT_CIPHERDIR,
            format!("cannot access {}: {e}", dir.display()),
        )),
    }
}

/// `path` as a shell word, for a command line a message suggests: as it is when it holds only
/// characters no shell treats specially, else in single quotes.
pub fn shell_quote(path: &Path) -> String {
    let text = path.to_string_lossy();
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+,:@=%".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        text.into_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// Writes `text` to stdout; a closed stdout is an error, not a panic.
pub fn print_stdout(text: &str) -> Result<(), CliError> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| CliError::io("cannot write to standard output", e))
}
