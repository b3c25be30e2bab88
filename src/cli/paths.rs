//! `veilfs encrypt-path` and `veilfs decrypt-path`: translate between plaintext paths and backing
//! paths without mounting (to find a file in a sync tool's web interface or version history, or
//! to tell what a backing file a sync tool complains about holds).

use std::fs;
use std::io::{self, BufRead, IsTerminal, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use veilfs::backing::Dir;
use veilfs::config::{Config, CONFIG_NAME};
use veilfs::vault::Vault;

use super::args::{reworded, CipherdirArg, KeyfileArg, PasswordArgs};
use super::reverse;
use super::unlock;
use super::{check_cipherdir, CliError, GlobalArgs, EXIT_FAILURE, EXIT_USAGE};

const INPUT_HELP: &str = "\
With no PATH, paths are read from standard input, one per line (after the password's line when
the password comes from standard input too). Each result is printed on a line of its own; a
path that cannot be translated is reported on stderr and the others are still done (exit status
1 at the end).";

/// `veilfs encrypt-path`.
#[derive(Debug, clap::Args)]
#[command(
    about = "Print the backing path of plaintext paths (no mount needed)",
    long_about = "Print where plaintext paths (relative to the vault's root, as seen through a \
                  mount) are stored in CIPHERDIR, relative to CIPHERDIR. The directories on the \
                  way must exist; the last component need not.",
    after_help = format!("{INPUT_HELP}\n\nExamples:\n  veilfs encrypt-path ~/Sync/vault Documents/report.txt\n  \
                          cd ~/Private && find . -newer x -printf '%P\\n' | \\\n      \
                          veilfs encrypt-path --passfile p ~/Sync/vault"),
    mut_args(reworded(
        "cipherdir",
        "The vault's backing directory; with --reverse, the plaintext directory (the paths \
         printed are then relative to its reverse view)"
    ))
)]
pub struct EncryptArgs {
    #[command(flatten)]
    pub password: PasswordArgs,

    #[command(flatten)]
    pub keyfile: KeyfileArg,

    #[command(flatten)]
    pub reverse: reverse::ReverseConfigArgs,

    #[command(flatten)]
    pub cipherdir: CipherdirArg,

    /// Plaintext paths, relative to the vault's root
    #[arg(value_name = "PLAIN_PATH")]
    pub paths: Vec<PathBuf>,
}

/// `veilfs decrypt-path`.
#[derive(Debug, clap::Args)]
#[command(
    about = "Print the plaintext path of backing paths (no mount needed)",
    long_about = "Print the plaintext path (relative to the vault's root) of paths in CIPHERDIR, \
                  given relative to CIPHERDIR or as absolute paths inside it. A sync tool's \
                  conflict copy is given under the name the mount shows it under.",
    after_help = format!("{INPUT_HELP}\n\nExamples:\n  veilfs decrypt-path ~/Sync/vault Q-rTRDffW4ImeGiRVovy-CJbYjqk3U4N_LY\n  \
                          veilfs decrypt-path ~/Sync/vault \\\n      \
                          ~/Sync/vault/3lLcSzEpjGjgN6NezQPQHHQFexc"),
    mut_args(reworded(
        "cipherdir",
        "The vault's backing directory; with --reverse, the plaintext directory (the paths \
         are then relative to its reverse view, or to a backup of it)"
    ))
)]
pub struct DecryptArgs {
    #[command(flatten)]
    pub password: PasswordArgs,

    #[command(flatten)]
    pub keyfile: KeyfileArg,

    #[command(flatten)]
    pub reverse: reverse::ReverseConfigArgs,

    #[command(flatten)]
    pub cipherdir: CipherdirArg,

    /// Backing paths, relative to CIPHERDIR or absolute
    #[arg(value_name = "BACKING_PATH")]
    pub paths: Vec<PathBuf>,
}

/// Loads and unlocks the vault in `cipherdir` (canonicalized), asking for the password.
pub fn open_vault(
    cipherdir: &Path,
    password: &PasswordArgs,
    keyfile: Option<&Path>,
) -> Result<Vault, CliError> {
    check_cipherdir(cipherdir)?;
    let cipherdir = fs::canonicalize(cipherdir)
        .map_err(|e| CliError::io(format!("cannot resolve {}", cipherdir.display()), e))?;
    let config = Config::load(&cipherdir).map_err(|e| match e {
        veilfs::Error::NotAVault(_) if recased_config(&cipherdir).is_some() => CliError::new(
            CliError::from(e).code(),
            format!(
                "{} holds its config under another case ({}), as a case-insensitive sync target may \
                 leave it; 'veilfs fsck --repair' renames it back",
                cipherdir.display(),
                recased_config(&cipherdir).unwrap_or_default()
            ),
        ),
        e => e.into(),
    })?;
    let given = unlock::Given {
        keyfile,
        ..Default::default()
    };
    let plan = unlock::Plan::prepare(&config, &cipherdir, &given)?;
    let unlocked = plan.unlock(&config, &password.source(), "Password: ")?;
    let root = Dir::open_root(&cipherdir)
        .map_err(|e| CliError::io(format!("cannot open {}", cipherdir.display()), e))?;
    plan.open(root, &config, &unlocked)
}

/// The name of `veilfs.conf` in another case, when only that exists (as anything: a symlink
/// is not followed).
pub fn recased_config(cipherdir: &Path) -> Option<String> {
    let root = Dir::open_root(cipherdir).ok()?;
    if root.exists(CONFIG_NAME) {
        return None;
    }
    root.entries()
        .ok()?
        .into_iter()
        .filter_map(|e| e.name.into_string().ok())
        .find(|name| name.eq_ignore_ascii_case(CONFIG_NAME))
}

/// The paths given, or else standard input's lines.
fn inputs(paths: Vec<PathBuf>) -> Result<Vec<PathBuf>, CliError> {
    if !paths.is_empty() {
        return Ok(paths);
    }
    let stdin = io::stdin();
    if stdin.is_terminal() {
        return Err(CliError::new(
            EXIT_USAGE,
            "no path given (give paths as arguments, or one per line on standard input)",
        ));
    }
    let mut out = Vec::new();
    for line in stdin.lock().split(b'\n') {
        let mut line = line.map_err(|e| CliError::io("cannot read standard input", e))?;
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if !line.is_empty() {
            out.push(PathBuf::from(std::ffi::OsStr::from_bytes(&line)));
        }
    }
    Ok(out)
}

fn translate(
    paths: Vec<PathBuf>,
    what: &str,
    mut one: impl FnMut(&Path) -> veilfs::Result<PathBuf>,
) -> Result<(), CliError> {
    let mut failed = 0;
    for path in inputs(paths)? {
        match one(&path) {
            Ok(result) => {
                let mut line = result.into_os_string().into_vec();
                line.push(b'\n');
                // Raw bytes: plaintext names need not be UTF-8.
                let mut out = io::stdout().lock();
                out.write_all(&line)
                    .and_then(|()| out.flush())
                    .map_err(|e| CliError::io("cannot write to standard output", e))?;
            }
            Err(e) => {
                eprintln!("veilfs: cannot {what} {}: {e}", path.display());
                failed += 1;
            }
        }
    }
    if failed > 0 {
        return Err(CliError::new(
            EXIT_FAILURE,
            format!("{failed} path(s) could not be translated"),
        ));
    }
    Ok(())
}

pub fn run_encrypt(args: EncryptArgs, _global: &GlobalArgs) -> Result<(), CliError> {
    let keyfile = args.keyfile.path.as_deref();
    let cipherdir = &args.cipherdir.path;
    if let Some(view) = reverse::view(cipherdir, &args.reverse, &args.password, keyfile)? {
        return translate(args.paths, "encrypt", |plain| view.encrypt_path(plain));
    }
    let vault = open_vault(cipherdir, &args.password, keyfile)?;
    translate(args.paths, "encrypt", |plain| {
        let backing = vault.encrypt_path(plain)?;
        Ok(backing
            .strip_prefix(vault.root_path())
            .map(Path::to_path_buf)
            .unwrap_or(backing))
    })
}

pub fn run_decrypt(args: DecryptArgs, _global: &GlobalArgs) -> Result<(), CliError> {
    let keyfile = args.keyfile.path.as_deref();
    let cipherdir = &args.cipherdir.path;
    if let Some(view) = reverse::view(cipherdir, &args.reverse, &args.password, keyfile)? {
        return translate(args.paths, "decrypt", |backing| view.decrypt_path(backing));
    }
    let vault = open_vault(cipherdir, &args.password, keyfile)?;
    translate(args.paths, "decrypt", |backing| vault.decrypt_path(backing))
}
