//! `veilfs init`: create a vault in an empty directory and show its recovery key.

use std::fs;
use std::path::{Path, PathBuf};

use veilfs::config::kdf::{is_test_build, kib_text};
use veilfs::config::{Config, ConfigV2, Features, KdfParams, Secret, CONFIG_NAME};
use veilfs::crypto::keys::{MasterKey, RecoverySecret};
use veilfs::crypto::names::NameEncoding;
use veilfs::crypto::recovery::format_recovery_secret;
use veilfs::layout::DIRIV_NAME;
use veilfs::vault::Vault;
use zeroize::Zeroizing;

use super::password::{self, PasswordArgs};
use super::{check_cipherdir, print_stdout, CliError, GlobalArgs, EXIT_CIPHERDIR, EXIT_USAGE};

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
  veilfs init --name-encoding base32 --passfile ~/.vault-pass ~/Sync/vault
  head -c 64 /dev/urandom > ~/vault.key && veilfs init --keyfile ~/vault.key ~/Sync/vault

Write the recovery key down: with it, 'veilfs passwd --recovery-key-file FILE CIPHERDIR' sets a \
new password when the old one is lost. Losing both loses the data for good. More ways to unlock \
(a key file for a trusted device, a second password): 'veilfs slot add'."
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

    /// The backing directory: an existing, empty directory, for example inside a sync folder
    #[arg(value_name = "CIPHERDIR")]
    pub cipherdir: PathBuf,
}

pub fn run(args: Args, global: &GlobalArgs) -> Result<(), CliError> {
    let dir = &args.cipherdir;
    check_empty_dir(dir)?;

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
        .map(password::read_keyfile)
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
    // Check again: the key derivation took a while, and this must not overwrite anything.
    check_empty_dir(dir)?;
    config.save(dir).map_err(|e| {
        CliError::from(e).context(format!("cannot write {}", dir.join(CONFIG_NAME).display()))
    })?;
    if let Err(e) =
        Vault::open(dir, &keys, config.features()).and_then(|vault| vault.initialize_root())
    {
        // Leave the directory as it was, so that init can simply be run again.
        let _ = fs::remove_file(dir.join(CONFIG_NAME));
        return Err(CliError::from(e).context(format!("cannot initialize {}", dir.display())));
    }
    tracing::info!("created vault in {}", dir.display());

    // The recovery key is shown only now: if it cannot be, nobody has it, so take the new (and
    // still empty) vault back rather than leave one whose key may be lost for good.
    let key = Zeroizing::new(format_recovery_secret(&recovery));
    let mut shown = Zeroizing::new(banner(dir, &key, global.quiet));
    if let (Some(keyfile), false) = (&args.keyfile, global.quiet) {
        shown.push_str(&keyfile_note(dir, keyfile));
    }
    if let Err(e) = print_stdout(&shown) {
        let _ = fs::remove_file(dir.join(DIRIV_NAME));
        let _ = fs::remove_file(dir.join(CONFIG_NAME));
        return Err(
            e.context("the vault was not created, because its recovery key could not be shown")
        );
    }
    Ok(())
}

fn check_empty_dir(dir: &Path) -> Result<(), CliError> {
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

/// What init prints on stdout. Even with --quiet the key is printed (on one line, for scripts):
/// it is shown only this once.
fn banner(dir: &Path, key: &str, quiet: bool) -> String {
    if quiet {
        return format!("{key}\n");
    }
    let dir = dir.display();
    format!(
        "Created a veilfs vault in {dir}.

Recovery key (shown only this once):

{lines}
Write it down or print it, and keep it somewhere safe, apart from the
password. It opens the vault without the password, so guard it like one.
If you lose both, your files are lost for good: nobody can decrypt them.
Keep a copy of {dir}/veilfs.conf with it: the key opens that file.

To set a new password with the recovery key (saved in a file):
    veilfs passwd --recovery-key-file FILE {dir}
To mount the vault:
    veilfs mount {dir} MOUNTPOINT
",
        lines = key_lines(key)
    )
}

/// Printed after the banner for a vault made with --keyfile.
fn keyfile_note(dir: &Path, keyfile: &Path) -> String {
    format!(
        "
The vault also needs its key file, {keyfile}, every time it is unlocked, with the
password. Keep it, and a copy, safe and out of the synced folder, and never change it. If
it is lost, the recovery key sets a new one:
    veilfs passwd --recovery-key-file FILE --new-keyfile NEW_KEY_FILE {dir}
",
        keyfile = keyfile.display(),
        dir = dir.display()
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
        assert!(banner(Path::new("/v"), &key, false).contains(&lines));
        assert_eq!(banner(Path::new("/v"), &key, true), format!("{key}\n"));
    }
}
