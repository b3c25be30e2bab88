//! `veilfs init`: create a vault in an empty directory and show its recovery key.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use veilfs::config::kdf::{is_test_build, kib_text};
use veilfs::config::{Config, ConfigV2, Features, KdfParams, Secret, CONFIG_NAME};
use veilfs::crypto::keys::{MasterKey, RecoverySecret, VaultKeys};
use veilfs::crypto::names::NameEncoding;
use veilfs::crypto::recovery::format_recovery_secret;
use veilfs::layout::DIRIV_NAME;
use veilfs::vault::Vault;
use zeroize::Zeroizing;

use super::args::PasswordArgs;
use super::reverse;
use super::secret_input;
use super::{
    check_cipherdir, print_stdout, shell_quote, text, unlock, CliError, GlobalArgs, EXIT_CIPHERDIR,
    EXIT_USAGE,
};

const DEFAULT_KDF_MEMORY_MIB: u32 = KdfParams::DEFAULT_MEMORY_KIB / 1024;
/// The label of the recovery slot `init` makes.
pub const RECOVERY_LABEL: &str = "recovery key";

#[derive(Debug, clap::Args)]
#[command(
    about = "Create a new vault in an empty directory",
    long_about = "Create a new vault in CIPHERDIR, which must be an existing, empty directory. \
                  Asks for the password twice (or reads it from --passfile, --extpass, or the \
                  first line of standard input when that is not a terminal), writes \
                  CIPHERDIR/veilfs.conf, and prints the vault's recovery key once.",
    after_help = "Examples:
  mkdir ~/Sync/vault && veilfs init ~/Sync/vault
  veilfs init --name-encoding base32 --passfile ~/pass ~/Sync/vault
  head -c 64 /dev/urandom > ~/vault.key
  veilfs init --keyfile ~/vault.key ~/Sync/vault

Write the recovery key down, or save it with --recovery-key-file: with it, 'veilfs passwd \
--recovery-key CIPHERDIR' sets a new password when the old one is lost. Losing both loses the \
data for good. More ways to unlock (a key file for a trusted device, a second password): \
'veilfs slot add'."
)]
pub struct Args {
    #[command(flatten)]
    pub password: PasswordArgs,

    /// Require FILE as well as the password to unlock, ever after (a second factor). Any file
    /// of at most 1 MiB that never changes will do, since all of its bytes count: keep it off
    /// the sync folder, and keep a copy
    #[arg(long, value_name = "FILE")]
    pub keyfile: Option<PathBuf>,

    /// How encrypted file names are written in CIPHERDIR: base64 gives the shortest names;
    /// base32 is for sync targets or file systems that ignore case (Windows, macOS)
    #[arg(long, value_enum, value_name = "ENCODING", default_value = "base64")]
    pub name_encoding: NameEncoding,

    /// Encrypted names longer than N bytes are stored in a separate file; staying below the
    /// 255-byte limit leaves room for the suffix a sync tool adds to a conflict copy
    #[arg(
        long,
        value_name = "N",
        default_value_t = Features::DEFAULT_LONGNAME_MAX as u16,
        value_parser = clap::value_parser!(u16).range(64..=255)
    )]
    pub longname_max: u16,

    /// Memory the password key derivation (Argon2id) uses, in MiB: more makes guessing the
    /// password costlier and unlocking slower
    #[arg(
        long,
        value_name = "MIB",
        default_value_t = DEFAULT_KDF_MEMORY_MIB,
        value_parser = clap::value_parser!(u32).range(1..=4096)
    )]
    pub kdf_memory: u32,

    /// Passes of the key derivation over its memory: more makes unlocking slower
    #[arg(
        long,
        value_name = "N",
        default_value_t = KdfParams::DEFAULT_ITERATIONS,
        value_parser = clap::value_parser!(u32).range(1..=64)
    )]
    pub kdf_iterations: u32,

    /// The name of the password slot ('veilfs slot list' shows it; not secret: the config
    /// that holds it is in the sync folder)
    #[arg(long, value_name = "LABEL", default_value = "password")]
    pub label: String,

    /// Write the recovery key to FILE (a new file, readable only by you) instead of showing it:
    /// then move it somewhere safe, such as a password manager, away from this disk and the
    /// sync folder
    #[arg(long, value_name = "FILE")]
    pub recovery_key_file: Option<PathBuf>,

    #[command(flatten)]
    pub reverse: reverse::ReverseConfigArgs,

    /// The backing directory: an existing, empty directory, for example inside a sync folder;
    /// with --reverse, the plaintext directory, whose config goes to
    /// PLAINDIR/.veilfs.reverse.conf (or --config FILE)
    #[arg(value_name = "CIPHERDIR")]
    pub cipherdir: PathBuf,
}

pub fn run(args: Args, global: &GlobalArgs) -> Result<(), CliError> {
    let dir = &args.cipherdir;
    reverse::check_flags(&args.reverse)?;
    let reverse_place = match args.reverse.reverse {
        true => Some(reverse::ConfigPlace::new_for_init(dir, &args.reverse)?),
        false => None,
    };
    if reverse_place.is_none() {
        check_empty_dir(dir)?;
    }
    if let Some(file) = &args.recovery_key_file {
        check_key_file_place(file, dir)?;
    }

    let kdf = KdfParams {
        memory_kib: args.kdf_memory * 1024,
        iterations: args.kdf_iterations,
        parallelism: 1,
    };
    let features = Features {
        name_encoding: args.name_encoding,
        longname_max: usize::from(args.longname_max),
    };
    kdf.check()
        .and_then(|()| features.check())
        .and_then(|()| veilfs::config::v2::check_label(&args.label))
        .map_err(|reason| CliError::new(EXIT_USAGE, reason))?;
    if kdf.below_defaults() && !global.quiet && !is_test_build() {
        tracing::warn!(
            "Argon2id {} and {} pass(es) is below the defaults ({} and {}): each password \
             guess costs an attacker less",
            kib_text(kdf.memory_kib),
            kdf.iterations,
            kib_text(KdfParams::DEFAULT_MEMORY_KIB),
            KdfParams::DEFAULT_ITERATIONS
        );
    }
    let keyfile = args
        .keyfile
        .as_deref()
        .map(secret_input::read_keyfile)
        .transpose()?;

    let password = args
        .password
        .source()
        .read_new("Password: ", "Repeat password: ")?;

    tracing::info!(
        "deriving the key: Argon2id, {}, {} iterations",
        kib_text(kdf.memory_kib),
        kdf.iterations
    );
    let master = MasterKey::generate();
    let recovery = RecoverySecret::generate();
    let mut config = ConfigV2::new(&master, features);
    let secret = match &keyfile {
        Some(keyfile) => Secret::PasswordKeyfile(&password, keyfile),
        None => Secret::Password(&password),
    };
    config
        .add_slot(&master, &args.label, &secret, kdf)
        .and_then(|_| config.add_slot(&master, RECOVERY_LABEL, &Secret::Recovery(&recovery), kdf))
        .map_err(|reason| CliError::new(EXIT_USAGE, reason))?;
    drop(password);
    drop(keyfile);
    let keys = master.derive_v2(config.vault_id());
    drop(master);
    let config = Config::V2(config);
    match &reverse_place {
        Some(place) => place.save(&config)?,
        None => create_vault(dir, &config, &keys)?,
    }

    // The recovery key is shown (or saved) only now: if it cannot be, nobody has it, so take the
    // new (and still empty) vault back rather than leave one whose key may be lost for good.
    let key = Zeroizing::new(format_recovery_secret(&recovery));
    let take_back = |e: CliError, why: &str| {
        match &reverse_place {
            Some(place) => place.remove(),
            None => {
                let _ = fs::remove_file(dir.join(DIRIV_NAME));
                let _ = fs::remove_file(dir.join(CONFIG_NAME));
            }
        }
        e.context(format!(
            "the vault was not created, because its recovery key could not be {why}"
        ))
    };
    let width = text::help_width();
    let (created, steps) = match &reverse_place {
        Some(place) => (
            format!(
                "Created a reverse-mode config for {} in {}.",
                dir.display(),
                place.path().display()
            ),
            reverse::next_steps(dir, place),
        ),
        None => (
            format!("Created a veilfs vault in {}.", dir.display()),
            next_steps(dir, args.keyfile.as_deref()),
        ),
    };
    let shown = match &args.recovery_key_file {
        Some(file) => {
            save_key(file, dir, &key).map_err(|e| take_back(e, "saved"))?;
            Zeroizing::new(match global.quiet {
                true => String::new(),
                false => text::flow(&saved_banner(&created, file, &steps), width) + "\n",
            })
        }
        None if global.quiet => Zeroizing::new(format!("{}\n", key.as_str())),
        None => banner(&created, &key, &steps, width),
    };
    print_stdout(&shown).map_err(|e| match &args.recovery_key_file {
        // The key is safe in its file; only the message is lost.
        Some(_) => e,
        None => take_back(e, "shown"),
    })
}

/// Writes the config of a new vault into the empty directory `dir` and its root's IV; on
/// failure leaves the directory as it was, so that init can simply be run again.
fn create_vault(dir: &Path, config: &Config, keys: &VaultKeys) -> Result<(), CliError> {
    // Check again: the key derivation took a while, and this must not overwrite anything.
    check_empty_dir(dir)?;
    config.save(dir).map_err(|e| {
        CliError::from(e).context(format!("cannot write {}", dir.join(CONFIG_NAME).display()))
    })?;
    if let Err(e) =
        Vault::open(dir, keys, config.features()).and_then(|vault| vault.initialize_root())
    {
        let _ = fs::remove_file(dir.join(CONFIG_NAME));
        return Err(CliError::from(e).context(format!("cannot initialize {}", dir.display())));
    }
    tracing::info!("created vault in {}", dir.display());
    Ok(())
}

/// Refuses (before the password is asked for) a recovery key file that exists, is in a
/// directory that does not, or would be inside CIPHERDIR, where the sync tool would upload it
/// beside the vault it opens.
fn check_key_file_place(file: &Path, dir: &Path) -> Result<(), CliError> {
    let shown = file.display();
    if file == Path::new(unlock::STDIN) {
        return Err(CliError::new(
            EXIT_USAGE,
            "without --recovery-key-file the recovery key goes to standard output",
        ));
    }
    if fs::symlink_metadata(file).is_ok() {
        return Err(CliError::other(format!(
            "recovery key file {shown} already exists; name a new file"
        )));
    }
    let parent = match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let parent = fs::canonicalize(parent)
        .map_err(|e| CliError::io(format!("cannot write recovery key file {shown}"), e))?;
    let cipherdir = fs::canonicalize(dir)
        .map_err(|e| CliError::io(format!("cannot resolve {}", dir.display()), e))?;
    if parent.starts_with(&cipherdir) {
        return Err(CliError::new(
            EXIT_USAGE,
            format!(
                "recovery key file {shown} is inside CIPHERDIR {}: it would be synced along with \
                 the vault it opens; choose a place outside it",
                dir.display()
            ),
        ));
    }
    Ok(())
}

/// Writes the recovery key to a new file `file`, mode 0600, with a line that says what it is.
fn save_key(file: &Path, dir: &Path, key: &str) -> Result<(), CliError> {
    let what = || format!("cannot write recovery key file {}", file.display());
    let absolute = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let lines = Zeroizing::new(key_lines(key));
    let contents = Zeroizing::new(format!(
        "veilfs recovery key of the vault in {}:\n\n{}\nIt opens the vault without the password: \
         veilfs passwd --recovery-key-file FILE CIPHERDIR\n",
        absolute.display(),
        lines.as_str()
    ));
    let mut out = fs::File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
        .map_err(|e| CliError::io(what(), e))?;
    out.write_all(contents.as_bytes())
        .and_then(|()| out.sync_all())
        .map_err(|e| {
            let _ = fs::remove_file(file);
            CliError::io(what(), e)
        })
}

fn check_empty_dir(dir: &Path) -> Result<(), CliError> {
    if fs::symlink_metadata(dir).is_err_and(|e| e.kind() == io::ErrorKind::NotFound) {
        return Err(CliError::new(
            EXIT_CIPHERDIR,
            format!(
                "{} does not exist (create it with 'mkdir {}', then run init again)",
                dir.display(),
                shell_quote(dir)
            ),
        ));
    }
    check_cipherdir(dir)?;
    let mut entries = fs::read_dir(dir).map_err(|e| {
        CliError::new(
            EXIT_CIPHERDIR,
            format!("cannot list {}: {e}", dir.display()),
        )
    })?;
    if let Some(entry) = entries.next() {
        let first = match entry {
            Ok(entry) => format!(" (it contains {:?})", entry.file_name()),
            Err(_) => String::new(),
        };
        return Err(CliError::new(
            EXIT_CIPHERDIR,
            format!(
                "{} is not empty{first}: a new vault needs an empty directory",
                dir.display()
            ),
        ));
    }
    Ok(())
}

/// The recovery key in lines of 5 groups, for writing down.
pub fn key_lines(key: &str) -> String {
    let groups: Vec<&str> = key.split('-').collect();
    groups
        .chunks(5)
        .map(|line| format!("    {}\n", line.join("-")))
        .collect()
}

/// What init says about the vault after its recovery key (in [`text`]'s markup): where to go
/// next, and what else to keep.
fn next_steps(dir: &Path, keyfile: Option<&Path>) -> String {
    let (shown, word) = (dir.display(), shell_quote(dir));
    let mut text = format!(
        "Keep a copy of {shown}/veilfs.conf as well, outside the sync folder: every file in the \
         vault needs it, even with the recovery key, and a sync conflict or a mistaken delete \
         can take it.\n"
    );
    if let Some(keyfile) = keyfile {
        text.push_str(&format!(
            "\nThe vault also needs its key file, {}, every time it is unlocked, with the \
             password. Keep it, and a copy, safe and out of the synced folder, and never change \
             it. If it is lost, the recovery key sets a new one:\n    veilfs passwd \
             --recovery-key --new-keyfile NEW_KEY_FILE {word}\n",
            keyfile.display()
        ));
    }
    text.push_str(&format!(
        "\nTo mount the vault (MOUNTPOINT: any empty directory):\n    veilfs mount {word} \
         MOUNTPOINT\nTo set a new password with the recovery key, if the password is lost:\n    \
         veilfs passwd --recovery-key {word}"
    ));
    text
}

/// What init prints on stdout: prose laid out for the terminal `width` columns wide, around
/// the key, which goes around that layout so that no copy of it is left in memory unwiped.
/// `created` says what was made, `steps` what to do next ([`next_steps`]).
fn banner(created: &str, key: &str, steps: &str, width: usize) -> Zeroizing<String> {
    let head = format!("{created}\n\nRecovery key (shown only this once):");
    let tail = format!(
        "Save these three lines as they are: write them down, print them, or store them in a \
         password manager, apart from the password. They open the vault without the password, \
         so guard them like one. If you lose both, your files are lost for good: nobody can \
         decrypt them.\n\n{steps}"
    );
    key_banner(&head, key, &tail, width)
}

/// `head` and `tail` laid out for the terminal around the recovery key's lines, which stay out
/// of the layout so that every copy of the key is wiped.
pub fn key_banner(head: &str, key: &str, tail: &str, width: usize) -> Zeroizing<String> {
    let mut out = Zeroizing::new(text::flow(head, width));
    out.push_str("\n\n");
    out.push_str(&Zeroizing::new(key_lines(key)));
    out.push('\n');
    out.push_str(&text::flow(tail, width));
    out.push('\n');
    out
}

/// What init prints when the recovery key went to a file.
fn saved_banner(created: &str, file: &Path, steps: &str) -> String {
    format!(
        "{created}\n\nIts recovery key is in {} (readable only by you), and nowhere else. It \
         opens the vault without the password: move it somewhere safe, apart from the password \
         (a password manager, or a printout), and delete the file. If you lose both, your files \
         are lost for good.\n\n{steps}",
        file.display(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_printed_in_three_lines_that_parse_back() {
        let secret = RecoverySecret::from_bytes([42; 32]);
        let key = format_recovery_secret(&secret);
        let lines = key_lines(&key);
        assert_eq!(lines.lines().count(), 3);
        assert!(lines.lines().all(|line| line.len() <= 80));
        match veilfs::crypto::recovery::parse_any_recovery_key(&lines).unwrap() {
            veilfs::crypto::recovery::RecoveryKey::Secret(parsed) => {
                assert_eq!(parsed.as_bytes(), secret.as_bytes())
            }
            other => panic!("{other:?}"),
        }
        let shown = banner("Created.", &key, &next_steps(Path::new("/v"), None), 80);
        assert!(shown.contains(&lines), "{}", shown.as_str());
        let found = super::super::secret_input::written_key(&shown);
        assert!(matches!(
            veilfs::crypto::recovery::parse_any_recovery_key(&found),
            Ok(veilfs::crypto::recovery::RecoveryKey::Secret(_))
        ));
    }
}
