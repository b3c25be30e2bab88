//! `veilfs slot`: list, add and remove the unlock slots of a format 2 vault. Adding and removing
//! need an unlock through another slot; the last slot cannot be removed.

use std::path::{Path, PathBuf};

use serde::Serialize;
use veilfs::backing::Dir;
use veilfs::config::contact;
use veilfs::config::kdf::{is_test_build, kib_text};
use veilfs::config::{Config, ConfigV2, KdfParams, Secret, SlotKind};
use veilfs::crypto::keys::{ContactShare, RecoverySecret};
use veilfs::crypto::recovery::format_recovery_secret;
use zeroize::Zeroizing;

use super::args::{reworded, CipherdirArg, KeyfileArg, PasswordArgs};
use super::info::slot_list;
use super::init::key_lines;
use super::secret_input::{self, Source};
use super::unlock;
use super::{
    check_cipherdir, print_stdout, text, CliError, GlobalArgs, EXIT_BAD_KEY, EXIT_CONFIG,
    EXIT_USAGE,
};

#[derive(Debug, clap::Args)]
#[command(
    about = "List, add or remove the ways to unlock a vault",
    long_about = "Every way to unlock a vault of format 2 is a slot in its veilfs.conf that wraps \
                  the master key under one secret: a password, a password and a key file, a key \
                  file alone (a trusted device that mounts without asking), a recovery key, or a \
                  recovery contact (a person who holds half of a secret whose other half is \
                  your recovery passphrase: they can help you unlock, never unlock alone). \
                  Adding or removing a slot needs an unlock through another one; the last slot \
                  cannot be removed. 'veilfs passwd' changes a password slot's password.",
    after_help = "Examples:
  veilfs slot list ~/Sync/vault
  veilfs slot add --kind keyfile --label nas \\
      --new-keyfile /etc/veilfs/nas.key ~/Sync/vault
  veilfs slot add --kind password --label phone ~/Sync/vault
  veilfs slot add --kind recovery --label 'new recovery key' ~/Sync/vault
  veilfs slot add --kind contact --label alice \\
      --contact age1... ~/Sync/vault
  veilfs slot remove ~/Sync/vault 'recovery key'

Removing a slot does not revoke its secret from copies of the old veilfs.conf: a sync
provider's version history keeps them, and each still opens with the removed secret. Only
rotating the master key (re-encrypting the vault) revokes it for good."
)]
pub struct Args {
    #[command(subcommand)]
    pub command: SlotCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum SlotCommand {
    /// List the slots (no password needed)
    List(ListArgs),
    /// Add a slot, unlocking through another
    Add(AddArgs),
    /// Remove a slot, unlocking through another (or the same)
    Remove(RemoveArgs),
    /// Print a contact slot's request for its contact (no password needed)
    ContactRequest(ContactRequestArgs),
    /// As the contact: decrypt a request with your key and print the answer to send back
    ContactAnswer(ContactAnswerArgs),
}

#[derive(Debug, clap::Args)]
pub struct ContactRequestArgs {
    #[command(flatten)]
    pub cipherdir: CipherdirArg,

    /// The contact slot: its label or its ID
    #[arg(value_name = "SLOT")]
    pub slot: String,
}

#[derive(Debug, clap::Args)]
pub struct ContactAnswerArgs {
    /// Your age identity file (age-keygen's) or unencrypted OpenSSH ed25519 private key
    #[arg(long, short = 'i', value_name = "FILE")]
    pub identity: PathBuf,

    /// The request file you were sent
    #[arg(value_name = "REQUEST")]
    pub request: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Print a JSON array instead of text
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub cipherdir: CipherdirArg,
}

/// How to unlock the vault first: the slot used must already exist.
#[derive(Debug, clap::Args)]
#[command(mut_args(reworded(
    "keyfile",
    "Unlock with this key file (alone, or with the password, as its slot needs)"
)))]
pub struct UnlockArgs {
    #[command(flatten)]
    pub password: PasswordArgs,

    #[command(flatten)]
    pub keyfile: KeyfileArg,

    /// Unlock with the recovery key in FILE ('-': standard input; init's whole output will do)
    #[arg(long, value_name = "FILE", conflicts_with_all = ["passfile", "extpass", "keyfile"])]
    pub recovery_key_file: Option<PathBuf>,

    /// Unlock with the recovery key, typed or pasted at a prompt that does not show it
    #[arg(long, conflicts_with_all = ["passfile", "extpass", "keyfile", "recovery_key_file", "contact_share"])]
    pub recovery_key: bool,

    /// Unlock with a recovery contact's answer in FILE and the recovery passphrase
    #[arg(long, value_name = "FILE", conflicts_with_all = ["recovery_key_file", "keyfile"])]
    pub contact_share: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// What the new slot opens with
    #[arg(long, value_enum, value_name = "KIND")]
    pub kind: SlotKind,

    /// Its name in lists (unique in the vault; not secret)
    #[arg(long, value_name = "LABEL")]
    pub label: String,

    /// The new slot's password: the first line of FILE (else asked twice)
    #[arg(long, value_name = "FILE")]
    pub new_passfile: Option<PathBuf>,

    /// The new slot's key file (kinds keyfile and password+keyfile)
    #[arg(long, value_name = "FILE")]
    pub new_keyfile: Option<PathBuf>,

    /// The recovery contact (kind contact): their age recipient (age1...) or ssh-ed25519 public
    /// key. The slot's passphrase (--new-passfile, or asked twice) is the user's half
    #[arg(long, value_name = "RECIPIENT")]
    pub contact: Option<String>,

    /// Memory of the new slot's key derivation, in MiB (default: 256)
    #[arg(long, value_name = "MIB", value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub kdf_memory: Option<u32>,

    /// Passes of the new slot's key derivation (default: 3)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub kdf_iterations: Option<u32>,

    #[command(flatten)]
    pub unlock: UnlockArgs,

    #[command(flatten)]
    pub cipherdir: CipherdirArg,
}

#[derive(Debug, clap::Args)]
pub struct RemoveArgs {
    #[command(flatten)]
    pub unlock: UnlockArgs,

    #[command(flatten)]
    pub cipherdir: CipherdirArg,

    /// The slot to remove: its label or its ID
    #[arg(value_name = "SLOT")]
    pub slot: String,
}

#[derive(Serialize)]
struct SlotJson<'a> {
    id: String,
    kind: &'static str,
    label: &'a str,
    created: &'a str,
}

pub fn run(args: Args, global: &GlobalArgs) -> Result<(), CliError> {
    match args.command {
        SlotCommand::List(args) => list(args),
        SlotCommand::Add(args) => add(args, global),
        SlotCommand::Remove(args) => remove(args, global),
        SlotCommand::ContactRequest(args) => contact_request(args),
        SlotCommand::ContactAnswer(args) => contact_answer(args),
    }
}

/// The format 2 config of `dir`, through the handle `root`; a format 1 vault has no slots.
fn load_v2(dir: &Path, root: &Dir) -> Result<ConfigV2, CliError> {
    match Config::load_from(root)? {
        Config::V2(config) => Ok(config),
        Config::V1(_) => Err(CliError::new(
            EXIT_CONFIG,
            format!(
                "{} is a vault of format 1, which has one password and no slots ('veilfs info' \
                 says what else it lacks)",
                dir.display()
            ),
        )),
    }
}

fn open_root(dir: &Path) -> Result<Dir, CliError> {
    check_cipherdir(dir)?;
    Dir::open_root(dir).map_err(|e| CliError::io(format!("cannot open {}", dir.display()), e))
}

fn list(args: ListArgs) -> Result<(), CliError> {
    let root = open_root(&args.cipherdir.path)?;
    let config = load_v2(&args.cipherdir.path, &root)?;
    if !args.json {
        return print_stdout(&slot_list(&config));
    }
    let slots: Vec<SlotJson> = config
        .slots()
        .iter()
        .map(|slot| SlotJson {
            id: slot.id(),
            kind: slot.kind().name(),
            label: slot.label(),
            created: slot.created(),
        })
        .collect();
    let mut text = serde_json::to_string_pretty(&slots).expect("slot JSON always serializes");
    text.push('\n');
    print_stdout(&text)
}

/// Unlocks `config` (of the vault at `dir`, handle `root`) as `how` says, checking the config's
/// MAC and its binding to the vault.
fn unlock_v2(
    dir: &Path,
    root: &Dir,
    config: &ConfigV2,
    how: &UnlockArgs,
) -> Result<veilfs::config::Unlocked, CliError> {
    let config = Config::V2(config.clone());
    let given = unlock::Given {
        keyfile: how.keyfile.path.as_deref(),
        recovery_key_file: unlock::recovery_key_file(
            how.recovery_key_file.as_deref(),
            how.recovery_key,
        ),
        contact_share: how.contact_share.as_deref(),
        slot: None,
    };
    let plan = unlock::Plan::prepare(&config, dir, &given)?;
    let unlocked = plan.unlock(&config, &how.password.source(), "Password: ")?;
    let handle = root
        .try_clone()
        .map_err(|e| CliError::io(format!("cannot open {}", dir.display()), e))?;
    plan.open(handle, &config, &unlocked)?;
    Ok(unlocked)
}

fn add(args: AddArgs, global: &GlobalArgs) -> Result<(), CliError> {
    let dir = &args.cipherdir.path;
    let root = open_root(dir)?;
    let mut config = load_v2(dir, &root)?;
    veilfs::config::v2::check_label(&args.label)
        .map_err(|reason| CliError::new(EXIT_USAGE, reason))?;
    if config.find_slot(&args.label).is_some() {
        return Err(CliError::new(
            EXIT_USAGE,
            format!("{} already has a slot {:?}", dir.display(), args.label),
        ));
    }
    let defaults = KdfParams::default();
    let kdf = KdfParams {
        memory_kib: args
            .kdf_memory
            .map_or(defaults.memory_kib, |mib| mib * 1024),
        iterations: args.kdf_iterations.unwrap_or(defaults.iterations),
        parallelism: 1,
    };
    if args.kind.uses_kdf() {
        kdf.check()
            .map_err(|reason| CliError::new(EXIT_USAGE, reason))?;
        if kdf.below_defaults() && !global.quiet && !is_test_build() {
            tracing::warn!(
                "Argon2id {} and {} pass(es) is below the defaults: each guess costs an attacker \
                 less",
                kib_text(kdf.memory_kib),
                kdf.iterations
            );
        }
    }
    match (args.kind == SlotKind::Contact, &args.contact) {
        (true, Some(recipient)) => veilfs::config::contact::check_recipient(recipient)
            .map_err(|reason| CliError::new(EXIT_USAGE, reason))?,
        (true, None) => {
            return Err(CliError::new(
                EXIT_USAGE,
                "a contact slot needs --contact RECIPIENT (their age1... or ssh-ed25519 key)",
            ))
        }
        (false, Some(_)) => {
            return Err(CliError::new(EXIT_USAGE, "--contact is for --kind contact"))
        }
        (false, None) => {}
    }
    let needs_keyfile = matches!(args.kind, SlotKind::Keyfile | SlotKind::PasswordKeyfile);
    let new_keyfile = match (&args.new_keyfile, needs_keyfile) {
        (Some(file), true) => Some(secret_input::read_keyfile(file)?),
        (None, false) => None,
        (None, true) => {
            return Err(CliError::new(
                EXIT_USAGE,
                format!("a {} slot needs --new-keyfile FILE", args.kind.name()),
            ))
        }
        (Some(_), false) => {
            return Err(CliError::new(
                EXIT_USAGE,
                format!("a {} slot takes no key file", args.kind.name()),
            ))
        }
    };

    let unlocked = unlock_v2(dir, &root, &config, &args.unlock)?;

    let new_password = match args.kind {
        SlotKind::Password | SlotKind::PasswordKeyfile | SlotKind::Contact => {
            let (prompt, again) = match args.kind {
                SlotKind::Contact => (
                    "Recovery passphrase (yours, not the contact's): ",
                    "Repeat it: ",
                ),
                _ => ("Password of the new slot: ", "Repeat the password: "),
            };
            Some(match &args.new_passfile {
                Some(file) => Source::File(file.clone()).read("")?,
                None => Source::interactive().read_new(prompt, again)?,
            })
        }
        SlotKind::Keyfile | SlotKind::Recovery => None,
    };
    let recovery = (args.kind == SlotKind::Recovery).then(RecoverySecret::generate);
    let id = match (args.kind, &new_password, &new_keyfile, &recovery) {
        (SlotKind::Contact, Some(passphrase), _, _) => config.add_contact_slot(
            unlocked.master(),
            &args.label,
            args.contact.as_deref().unwrap_or_default(),
            &ContactShare::generate(),
            passphrase,
            kdf,
        ),
        (SlotKind::Password, Some(password), _, _) => config.add_slot(
            unlocked.master(),
            &args.label,
            &Secret::Password(password),
            kdf,
        ),
        (SlotKind::PasswordKeyfile, Some(password), Some(keyfile), _) => config.add_slot(
            unlocked.master(),
            &args.label,
            &Secret::PasswordKeyfile(password, keyfile),
            kdf,
        ),
        (SlotKind::Keyfile, _, Some(keyfile), _) => config.add_slot(
            unlocked.master(),
            &args.label,
            &Secret::Keyfile(keyfile),
            kdf,
        ),
        (SlotKind::Recovery, _, _, Some(secret)) => config.add_slot(
            unlocked.master(),
            &args.label,
            &Secret::Recovery(secret),
            kdf,
        ),
        _ => unreachable!("every kind's secret was read above"),
    }
    .map_err(|reason| CliError::new(EXIT_USAGE, reason))?;
    Config::V2(config).save_in(&root)?;

    let mut said = format!(
        "Added slot {:?} ({}, ID {id}) to {}.\n",
        args.label,
        args.kind.name(),
        dir.display()
    );
    if args.kind == SlotKind::Contact {
        said.push_str(&format!(
            "\nTo recover with it: 'veilfs slot contact-request {dir} {label:?} > request.age', \
             send request.age to your contact, who runs 'veilfs slot contact-answer -i KEY \
             request.age' (or 'age -d -i KEY request.age') and sends back the answer; then \
             'veilfs passwd --contact-share ANSWER {dir}' asks for your recovery passphrase.\n",
            dir = dir.display(),
            label = args.label
        ));
    }
    let key = recovery
        .as_ref()
        .map(|secret| Zeroizing::new(format_recovery_secret(secret)));
    // The prose (with paths in it) is laid out for the terminal; the key goes around that
    // layout, so that no copy of it is left in memory unwiped.
    let mut text = Zeroizing::new(String::new());
    match (&key, global.quiet) {
        (Some(key), true) => text.push_str(&format!("{}\n", key.as_str())),
        (None, true) => return Ok(()),
        (key, false) => {
            text.push_str(&text::flow(&said, text::help_width()));
            text.push('\n');
            if let Some(key) = key {
                text.push_str("\nIts recovery key (shown only this once):\n\n");
                text.push_str(&Zeroizing::new(key_lines(key)));
                text.push_str("\nWrite it down and keep it apart from the password.\n");
            }
        }
    }
    print_stdout(&text)
}

fn remove(args: RemoveArgs, global: &GlobalArgs) -> Result<(), CliError> {
    let dir = &args.cipherdir.path;
    let root = open_root(dir)?;
    let mut config = load_v2(dir, &root)?;
    let Some(index) = config.find_slot(&args.slot) else {
        return Err(CliError::new(
            EXIT_USAGE,
            format!(
                "{} has no slot {:?} ('veilfs slot list' shows them)",
                dir.display(),
                args.slot
            ),
        ));
    };
    if config.slots().len() == 1 {
        return Err(CliError::new(
            EXIT_USAGE,
            format!(
                "slot {:?} is the last of {}: add another before removing it",
                args.slot,
                dir.display()
            ),
        ));
    }
    let unlocked = unlock_v2(dir, &root, &config, &args.unlock)?;
    let removed = config
        .remove_slot(unlocked.master(), index)
        .map_err(|reason| CliError::new(EXIT_USAGE, reason))?;
    Config::V2(config).save_in(&root)?;
    if !global.quiet {
        let said = format!(
            "Removed slot {:?} ({}) from {}. Copies of the old veilfs.conf (a sync provider's \
             version history keeps them) still open with its secret: only rotating the master \
             key revokes it for good.",
            removed.label(),
            removed.kind().name(),
            dir.display()
        );
        print_stdout(&(text::flow(&said, text::help_width()) + "\n"))?;
    }
    Ok(())
}

fn contact_request(args: ContactRequestArgs) -> Result<(), CliError> {
    let dir = &args.cipherdir.path;
    let root = open_root(dir)?;
    let config = load_v2(dir, &root)?;
    let slot = config
        .find_slot(&args.slot)
        .map(|index| &config.slots()[index])
        .ok_or_else(|| {
            CliError::new(
                EXIT_USAGE,
                format!("{} has no slot {:?}", dir.display(), args.slot),
            )
        })?;
    let Some(info) = slot.contact() else {
        return Err(CliError::new(
            EXIT_USAGE,
            format!(
                "slot {:?} is a {} slot, not a contact",
                slot.label(),
                slot.kind().name()
            ),
        ));
    };
    print_stdout(&contact::armor(&info.request))
}

fn contact_answer(args: ContactAnswerArgs) -> Result<(), CliError> {
    let read = |path: &Path, what: &str| {
        veilfs::backing::read_user_file(path, 64 * 1024)
            .map(Zeroizing::new)
            .map_err(|e| CliError::io(format!("cannot read {what} {}", path.display()), e))
    };
    let identity = read(&args.identity, "identity file")?;
    let request = read(&args.request, "request")?;
    let answer = contact::answer(&request, &identity).map_err(|reason| {
        CliError::new(
            EXIT_BAD_KEY,
            format!("{}: {reason}", args.request.display()),
        )
    })?;
    print_stdout(&answer)
}
