//! `veilfs passwd`: wrap the master key under a new password, unlocking with the old password or
//! with the recovery key. Only veilfs.conf changes; the data stays as it is.

use std::path::PathBuf;

use veilfs::backing::Dir;
use veilfs::config::{Config, KdfParams, Secret, SlotKind, Unlocked};

use super::args::{reworded, CipherdirArg, KeyfileArg, PasswordArgs};
use super::secret_input::{self, Password, Source};
use super::unlock;
use super::{check_cipherdir, print_stdout, CliError, GlobalArgs, EXIT_BAD_KEY, EXIT_USAGE};

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
  veilfs passwd --recovery-key ~/Sync/vault
  veilfs passwd --recovery-key-file ~/recovery.txt ~/Sync/vault
  printf '%s\\n%s\\n' \"$OLD\" \"$NEW\" | veilfs passwd ~/Sync/vault
  veilfs passwd --keyfile ~/vault.key ~/Sync/vault
  veilfs passwd --recovery-key --new-keyfile ~/new.key ~/Sync/vault

The other devices that sync CIPHERDIR get the new veilfs.conf, and with it the new password.
A vault created with --keyfile keeps needing its key file (give it with --keyfile); after
losing the key file, the recovery key and --new-keyfile set a new one.",
    mut_args(reworded("passfile", "Read the current password from the first line of FILE")),
    mut_args(reworded(
        "extpass",
        "Run CMD with 'sh -c' and use the first line of its output as the current password"
    )),
    mut_args(reworded(
        "keyfile",
        "The vault's key file (for a vault created with 'init --keyfile'): needed to unlock \
         with the password, and needed with the new password too"
    ))
)]
pub struct Args {
    #[command(flatten)]
    pub password: PasswordArgs,

    /// Unlock with the recovery key in FILE instead of the current password (when it is lost);
    /// '-' reads it from standard input. FILE may hold init's whole output: the key's lines are
    /// found in it. Case, spaces, dashes and line breaks in the key do not matter
    #[arg(long, value_name = "FILE", conflicts_with_all = ["passfile", "extpass"])]
    pub recovery_key_file: Option<PathBuf>,

    /// Unlock with the recovery key, typed or pasted at a prompt that does not show it (or read
    /// from standard input when it is not a terminal), instead of the current password
    #[arg(long, conflicts_with_all = ["recovery_key_file", "contact_share", "passfile", "extpass"])]
    pub recovery_key: bool,

    /// Unlock with a recovery contact's answer in FILE ('veilfs slot contact-answer' wrote it)
    /// and the recovery passphrase (asked for, or --passfile), instead of the password
    #[arg(long, value_name = "FILE", conflicts_with = "recovery_key_file")]
    pub contact_share: Option<PathBuf>,

    /// Read the new password from the first line of FILE instead of asking
    #[arg(long, value_name = "FILE")]
    pub new_passfile: Option<PathBuf>,

    #[command(flatten)]
    pub keyfile: KeyfileArg,

    /// Require FILE instead of the current key file (if any) with the new password, from now on
    #[arg(long, value_name = "FILE", conflicts_with = "without_keyfile")]
    pub new_keyfile: Option<PathBuf>,

    /// Stop needing a key file: the new password alone will unlock (asked for by name, so
    /// that nothing drops the second factor by accident)
    #[arg(long)]
    pub without_keyfile: bool,

    /// The password slot to change, by label or ID (format 2, when the vault has several;
    /// 'veilfs slot list' shows them)
    #[arg(long, value_name = "LABEL")]
    pub slot: Option<String>,

    #[command(flatten)]
    pub cipherdir: CipherdirArg,
}

pub fn run(args: Args, global: &GlobalArgs) -> Result<(), CliError> {
    let dir = &args.cipherdir.path;
    check_cipherdir(dir)?;
    let root = Dir::open_root(dir)
        .map_err(|e| CliError::io(format!("cannot open {}", dir.display()), e))?;
    let config = Config::load_from(&root)?;

    // The key files and the recovery key, before any password is asked for.
    let recovery_key_file =
        unlock::recovery_key_file(args.recovery_key_file.as_deref(), args.recovery_key);
    let recovering = recovery_key_file.is_some() || args.contact_share.is_some();
    let given = unlock::Given {
        // When recovering, a key file given is the one the new password keeps needing.
        keyfile: args.keyfile.path.as_deref().filter(|_| !recovering),
        recovery_key_file,
        contact_share: args.contact_share.as_deref(),
        // The current password is that of the slot to change, when it is named.
        slot: args.slot.as_deref().filter(|_| !recovering),
    };
    let plan = unlock::Plan::prepare(&config, dir, &given)?;
    let keyfile = match (recovering, &args.keyfile.path) {
        (true, Some(file)) => Some(secret_input::read_keyfile(file)?),
        _ => None,
    };
    let new_keyfile = args
        .new_keyfile
        .as_deref()
        .map(secret_input::read_keyfile)
        .transpose()?;

    let source = args.password.source();
    let unlocked = plan.unlock(&config, &source, "Current password: ")?;
    // The config must belong to this vault before a new one is written over it.
    plan.open(
        root.try_clone()
            .map_err(|e| CliError::io(format!("cannot open {}", dir.display()), e))?,
        &config,
        &unlocked,
    )?;

    let target = Target::pick(&config, &unlocked, &args)?;
    // The key file the new password needs: a new one, the current one, or none when asked by
    // name (--without-keyfile); a vault that needs one never silently stops needing it.
    let current_keyfile = keyfile.as_ref().or(plan.keyfile());
    let wrap_keyfile = match (&new_keyfile, args.without_keyfile) {
        (Some(new), _) => Some(new),
        (None, true) => None,
        (None, false) if target.needs_keyfile => Some(current_keyfile.ok_or_else(|| {
            CliError::new(
                EXIT_BAD_KEY,
                format!(
                    "{} needs a key file with the new password too: give the current one with \
                     --keyfile FILE, a new one with --new-keyfile FILE, or say \
                     --without-keyfile to stop needing one",
                    dir.display()
                ),
            )
        })?),
        (None, false) => None,
    };

    let new: Password = match &args.new_passfile {
        Some(file) => Source::File(file.clone()).read("")?,
        None => Source::interactive().read_new("New password: ", "Repeat new password: ")?,
    };
    let new_config = match &config {
        Config::V1(v1) => Config::V1(v1.rewrap_with_keyfile(unlocked.master(), &new, wrap_keyfile)),
        Config::V2(v2) => {
            let mut v2 = v2.clone();
            let secret = match wrap_keyfile {
                Some(keyfile) => Secret::PasswordKeyfile(&new, keyfile),
                None => Secret::Password(&new),
            };
            let result = match target.slot {
                Some(index) => v2.replace_slot(unlocked.master(), index, &secret, target.kdf),
                None => v2
                    .add_slot(unlocked.master(), &target.label, &secret, target.kdf)
                    .map(drop),
            };
            result.map_err(|reason| CliError::new(EXIT_USAGE, reason))?;
            Config::V2(v2)
        }
    };
    new_config.save_in(&root)?;

    if !global.quiet {
        let how = if recovery_key_file.is_some() {
            " with the recovery key"
        } else if args.contact_share.is_some() {
            " with the recovery contact's help"
        } else {
            ""
        };
        let slot = match &config {
            Config::V1(_) => String::new(),
            Config::V2(_) => format!(" (slot {:?})", target.label),
        };
        let keyfile_note = match (&args.new_keyfile, wrap_keyfile) {
            (Some(file), _) => format!(
                "; from now on it also needs the key file {}",
                file.display()
            ),
            (None, None) if target.needs_keyfile => "; it no longer needs a key file".to_owned(),
            _ => String::new(),
        };
        print_stdout(&format!(
            "Password of {}{slot} changed{how}{keyfile_note}; the files are unchanged.\n",
            dir.display()
        ))?;
    }
    Ok(())
}

/// The slot whose password changes.
struct Target {
    /// Its index; `None` for a new slot (a format 2 vault that had no password slot).
    slot: Option<usize>,
    label: String,
    /// Whether it needs a key file with the password now.
    needs_keyfile: bool,
    /// Its KDF cost from now on: never lower than before, nor than the defaults.
    kdf: KdfParams,
}

impl Target {
    fn pick(config: &Config, unlocked: &Unlocked, args: &Args) -> Result<Target, CliError> {
        let v2 = match config {
            Config::V1(v1) => {
                return Ok(Target {
                    slot: None,
                    label: String::new(),
                    needs_keyfile: v1.requires_keyfile(),
                    kdf: v1.kdf().for_rewrap(),
                })
            }
            Config::V2(v2) => v2,
        };
        let is_password =
            |kind: SlotKind| matches!(kind, SlotKind::Password | SlotKind::PasswordKeyfile);
        let index = match (&args.slot, unlocked.slot()) {
            (Some(which), _) => Some(v2.find_slot(which).ok_or_else(|| {
                CliError::new(
                    EXIT_USAGE,
                    format!(
                        "{} has no slot {which:?} ('veilfs slot list' shows them)",
                        args.cipherdir.path.display()
                    ),
                )
            })?),
            (None, Some(index)) if is_password(v2.slots()[index].kind()) => Some(index),
            (None, _) => {
                let passwords: Vec<usize> = (0..v2.slots().len())
                    .filter(|&i| is_password(v2.slots()[i].kind()))
                    .collect();
                match passwords[..] {
                    [] => None,
                    [only] => Some(only),
                    _ => {
                        return Err(CliError::new(
                            EXIT_USAGE,
                            format!(
                                "{} has several password slots: say which with --slot LABEL \
                                 ('veilfs slot list' shows them)",
                                args.cipherdir.path.display()
                            ),
                        ))
                    }
                }
            }
        };
        Ok(match index {
            Some(index) => {
                let slot = &v2.slots()[index];
                if !is_password(slot.kind()) {
                    return Err(CliError::new(
                        EXIT_USAGE,
                        format!(
                            "slot {:?} is a {} slot, not a password: 'veilfs slot' adds and \
                             removes the others",
                            slot.label(),
                            slot.kind().name()
                        ),
                    ));
                }
                Target {
                    slot: Some(index),
                    label: slot.label().to_owned(),
                    needs_keyfile: slot.kind() == SlotKind::PasswordKeyfile,
                    kdf: slot
                        .kdf()
                        .map_or_else(KdfParams::default, |kdf| kdf.params.for_rewrap()),
                }
            }
            None => Target {
                slot: None,
                label: "password".to_owned(),
                needs_keyfile: false,
                kdf: KdfParams::default().for_rewrap(),
            },
        })
    }
}
