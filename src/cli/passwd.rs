//! `veilfs passwd`: wrap the master key under a new password, unlocking with the old password or
//! with the recovery key. Only veilfs.conf changes; the data stays as it is.

use std::path::{Path, PathBuf};

use veilfs::config::Config;
use veilfs::crypto::keys::MasterKey;
use veilfs::crypto::recovery::parse_recovery_key;
use veilfs::layout::diriv;
use veilfs::layout::DIRIV_NAME;
use veilfs::vault::Vault;

use super::password::{self, Password, Source};
use super::{check_cipherdir, print_stdout, CliError, GlobalArgs, EXIT_BAD_KEY};

#[derive(Debug, clap::Args)]
#[command(
    about = "Change the password, or set a new one with the recovery key",
    long_about = "Change the password of the vault in CIPHERDIR. Unlocks with the current \
                  password, or, when it is lost, with the recovery key that init printed \
                  (--recovery-key-file), then asks for the new password twice. Only \
                  CIPHERDIR/veilfs.conf is rewritten; the encrypted files stay as they are. \
                  When standard input is not a terminal and no file gives them, the current \
                  password is read from its first line and the new one from the next.",
    after_help = "Examples:
  veilfs passwd ~/Sync/vault
  veilfs passwd --recovery-key-file ~/recovery.txt ~/Sync/vault
  printf '%s\\n%s\\n' \"$OLD\" \"$NEW\" | veilfs passwd ~/Sync/vault
  veilfs passwd --keyfile ~/vault.key ~/Sync/vault
  veilfs passwd --recovery-key-file ~/recovery.txt --new-keyfile ~/new.key ~/Sync/vault

The other devices that sync CIPHERDIR get the new veilfs.conf, and with it the new password.
A vault created with --keyfile keeps needing its key file (give it with --keyfile); after
losing the key file, the recovery key and --new-keyfile set a new one."
)]
pub struct Args {
    /// Read the current password from the first line of FILE
    #[arg(long, value_name = "FILE", conflicts_with_all = ["extpass", "recovery_key_file"])]
    pub passfile: Option<PathBuf>,

    /// Run CMD with 'sh -c' and use the first line of its output as the current password
    #[arg(long, value_name = "CMD", conflicts_with = "recovery_key_file")]
    pub extpass: Option<String>,

    /// Unlock with the recovery key in FILE instead of the current password (when it is lost);
    /// case, spaces, dashes and line breaks in the key do not matter
    #[arg(long, value_name = "FILE")]
    pub recovery_key_file: Option<PathBuf>,

    /// Read the new password from the first line of FILE instead of asking
    #[arg(long, value_name = "FILE")]
    pub new_passfile: Option<PathBuf>,

    /// The vault's key file (for a vault created with 'init --keyfile'): needed to unlock with
    /// the password, and needed with the new password too
    #[arg(long, value_name = "FILE")]
    pub keyfile: Option<PathBuf>,

    /// Require FILE instead of the current key file (if any) with the new password, from now on
    #[arg(long, value_name = "FILE")]
    pub new_keyfile: Option<PathBuf>,

    /// The vault's backing directory
    #[arg(value_name = "CIPHERDIR")]
    pub cipherdir: PathBuf,
}

pub fn run(args: Args, global: &GlobalArgs) -> Result<(), CliError> {
    let dir = &args.cipherdir;
    check_cipherdir(dir)?;
    let config = Config::load(dir)?;

    // The key files, before any password is asked for.
    let keyfile = match &args.recovery_key_file {
        // The recovery key unlocks alone; a key file given is the one to keep.
        Some(_) if args.keyfile.is_some() && !config.requires_keyfile() => {
            password::keyfile_for(&config, dir, args.keyfile.as_deref())?
        }
        Some(_) => args
            .keyfile
            .as_deref()
            .map(password::read_keyfile)
            .transpose()?,
        None => password::keyfile_for(&config, dir, args.keyfile.as_deref())?,
    };
    let new_keyfile = match (&args.new_keyfile, &keyfile) {
        (Some(file), _) => Some(password::read_keyfile(file)?),
        (None, Some(_)) => None,
        (None, None) if config.requires_keyfile() => {
            return Err(CliError::new(
                EXIT_BAD_KEY,
                format!(
                    "{} needs a key file with the new password too: give the current one with \
                     --keyfile FILE, or a new one with --new-keyfile FILE",
                    dir.display()
                ),
            ))
        }
        (None, None) => None,
    };

    let master = match &args.recovery_key_file {
        Some(file) => {
            let master = read_recovery_key(file)?;
            check_recovery_key(dir, &config, &master)?;
            master
        }
        None => {
            let old = Source::pick(args.passfile.as_deref(), args.extpass.as_deref())
                .read("Current password: ")?;
            password::unlock(&config, &old, keyfile.as_ref())?
        }
    };

    let new: Password = match &args.new_passfile {
        Some(file) => Source::File(file.clone()).read("")?,
        None => Source::interactive().read_new("New password: ", "Repeat new password: ")?,
    };
    // The new wrapping needs the new key file if one was given, else the current one (if any).
    let wrap_keyfile = new_keyfile.as_ref().or(keyfile.as_ref());
    config
        .rewrap_with_keyfile(&master, &new, wrap_keyfile)
        .save(dir)?;

    if !global.quiet {
        let how = if args.recovery_key_file.is_some() {
            " with the recovery key"
        } else {
            ""
        };
        let keyfile_note = match &args.new_keyfile {
            Some(file) => format!(
                "; from now on it also needs the key file {}",
                file.display()
            ),
            None => String::new(),
        };
        print_stdout(&format!(
            "Password of {} changed{how}{keyfile_note}; the files are unchanged.\n",
            dir.display()
        ))?;
    }
    Ok(())
}

fn read_recovery_key(file: &Path) -> Result<MasterKey, CliError> {
    let text = password::read_recovery_key_file(file)?;
    parse_recovery_key(&text).map_err(|e| CliError::from(e).context(file.display()))
}

/// A recovery key that parses may still belong to another vault, and wrapping it would lock the
/// user out: check it against the root directory IV, which the master key determines.
fn check_recovery_key(dir: &Path, config: &Config, master: &MasterKey) -> Result<(), CliError> {
    let vault = Vault::open(dir, master, config.features())?;
    match diriv::read(vault.root()) {
        Ok(iv) if iv == vault.root_iv() => Ok(()),
        Ok(_) => Err(veilfs::Error::WrongRecoveryKey.into()),
        Err(e) => Err(CliError::from(e).context(format!(
            "cannot check the recovery key against this vault, so the password is left unchanged \
             (is {} missing?)",
            dir.join(DIRIV_NAME).display()
        ))),
    }
}
