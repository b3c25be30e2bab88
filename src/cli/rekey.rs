//! `veilfs rekey` (a new master key, every file re-encrypted) and `veilfs upgrade` (a format 1
//! vault to format 2, the same way): the command around [`veilfs::rekey`].
//!
//! The new config is written first, with the previous master key inside it wrapped under the
//! new one ("Key rotation" in format.md): from then on the vault opens only to finish the
//! rotation, with the new password or the new recovery key, and running the same command again
//! after a crash or a kill carries on where the walk stopped.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use veilfs::backing::Dir;
use veilfs::config::{Config, ConfigV2, KdfParams, KeyfileSecret, Secret, SlotKind, Unlocked};
use veilfs::crypto::keys::{MasterKey, RecoverySecret};
use veilfs::crypto::recovery::format_recovery_secret;
use veilfs::fsck::count_entries;
use veilfs::rekey::{Report, Rotation};
use veilfs::vault::{IvPolicy, Vault};
use zeroize::Zeroizing;

use super::args::{reworded, CipherdirArg, KeyfileArg, PasswordArgs};
use super::init::{key_banner, RECOVERY_LABEL};
use super::lock::{Purpose, VaultLock};
use super::secret_input::{self, Password, Source};
use super::{check_cipherdir, print_stdout, CliError, GlobalArgs, EXIT_BAD_KEY, EXIT_USAGE};
use super::{progress, text, unlock};

const REKEY_HELP: &str = "Examples:
  veilfs rekey ~/Sync/vault
  veilfs rekey --recovery-key ~/Sync/vault

Unmount the vault on every device first. The new veilfs.conf reaches the other devices
through sync, with the new password. Slots other than the one unlocked with are dropped
(their secrets are not known here): add them again with 'veilfs slot add'. If rekey stops
(a crash, Ctrl-C, a full disk), run it again with the NEW password: it carries on.";

const UPGRADE_HELP: &str = "Examples:
  veilfs upgrade ~/Sync/vault

Unmount the vault on every device first, and upgrade veilfs there: format 2 needs veilfs 0.2
or later. If upgrade stops (a crash, Ctrl-C, a full disk), run it again with the NEW password:
it carries on.";

/// What both commands take.
#[derive(Debug, clap::Args)]
#[command(mut_args(reworded(
    "keyfile",
    "The vault's key file, when its password slot needs one; the new password needs it too"
)))]
pub struct Common {
    /// The current password
    #[command(flatten)]
    pub password: PasswordArgs,

    /// Unlock with the recovery key in FILE instead of the password; '-' reads it from
    /// standard input. FILE may hold init's whole output
    #[arg(long, value_name = "FILE", conflicts_with_all = ["passfile", "extpass"])]
    pub recovery_key_file: Option<PathBuf>,

    /// Unlock with the recovery key, typed or pasted at a prompt that does not show it (or read
    /// from standard input when it is not a terminal), instead of the password
    #[arg(long, conflicts_with_all = ["recovery_key_file", "passfile", "extpass"])]
    pub recovery_key: bool,

    #[command(flatten)]
    pub keyfile: KeyfileArg,

    /// Read the new password from the first line of FILE instead of asking
    #[arg(long, value_name = "FILE")]
    pub new_passfile: Option<PathBuf>,

    /// Carry slot LABEL over to the new key (rekey): its password is asked for (or read from
    /// the next line of standard input); a slot that takes a key file is given as LABEL=FILE.
    /// The slots neither unlocked with nor kept are dropped
    #[arg(long, value_name = "LABEL[=FILE]")]
    pub keep_slot: Vec<String>,

    #[command(flatten)]
    pub cipherdir: CipherdirArg,
}

#[derive(Debug, clap::Args)]
#[command(
    about = "Replace the master key, re-encrypting every file",
    long_about = "Replace the master key of the format 2 vault in CIPHERDIR with a new one and \
                  re-encrypt every name, file, symlink and extended attribute under it. Use it \
                  when a password, a recovery key, a key file or a copy of veilfs.conf may have \
                  leaked: afterwards none of them opens anything in the vault. Asks for the \
                  current password (or takes the recovery key), then for a new password, and \
                  prints a new recovery key. Needs free space for the largest file.",
    after_help = REKEY_HELP
)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, clap::Args)]
#[command(
    about = "Move a format 1 vault to format 2, re-encrypting every file",
    long_about = "Move the format 1 vault in CIPHERDIR to format 2: an authenticated config \
                  with unlock slots, a recovery key that is not the master key, and directory \
                  IVs that follow paths. Every name and file is re-encrypted under a new master \
                  key. Asks for the current password (or takes the recovery key), then for a \
                  new password, and prints the new recovery key: the old one opens nothing \
                  afterwards. Needs free space for the largest file.",
    after_help = UPGRADE_HELP
)]
pub struct UpgradeArgs {
    #[command(flatten)]
    pub common: Common,
}

/// Which command is running: they differ only in the config they start from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Verb {
    Rekey,
    Upgrade,
}

impl Verb {
    fn name(self) -> &'static str {
        match self {
            Verb::Rekey => "rekey",
            Verb::Upgrade => "upgrade",
        }
    }
}

pub fn run_rekey(args: Args, global: &GlobalArgs) -> Result<(), CliError> {
    run(args.common, Verb::Rekey, global)
}

pub fn run_upgrade(args: UpgradeArgs, global: &GlobalArgs) -> Result<(), CliError> {
    run(args.common, Verb::Upgrade, global)
}

fn run(args: Common, verb: Verb, global: &GlobalArgs) -> Result<(), CliError> {
    let dir = &args.cipherdir.path;
    check_cipherdir(dir)?;
    let canonical = std::fs::canonicalize(dir)
        .map_err(|e| CliError::io(format!("cannot resolve {}", dir.display()), e))?;
    // No mount or repair of this vault on this machine while its keys change.
    let _lock = VaultLock::acquire(&canonical, Purpose::Rekey)?;
    let root = Dir::open_root(dir)
        .map_err(|e| CliError::io(format!("cannot open {}", dir.display()), e))?;
    let config = Config::load_from(&root)?;
    let recovery_key_file =
        unlock::recovery_key_file(args.recovery_key_file.as_deref(), args.recovery_key);
    let given = unlock::Given {
        keyfile: args.keyfile.path.as_deref(),
        recovery_key_file,
        ..unlock::Given::default()
    };
    let plan = unlock::Plan::prepare(&config, dir, &given)?;
    let source = args.password.source();

    let resuming = config.rotating_from().is_some();
    let (from, to, new_config, master) = if resuming {
        let Config::V2(v2) = &config else {
            unreachable!("only format 2 has rotations")
        };
        let unlocked = plan.unlock(&config, &source, "New password (the one rekey set): ")?;
        let (from, to) = resumed_vaults(&root, v2, &unlocked)?;
        if !global.quiet {
            eprintln!(
                "veilfs: finishing the interrupted {} of {}",
                if v2.rotating_from() == Some(1) {
                    "upgrade"
                } else {
                    "key rotation"
                },
                dir.display()
            );
        }
        (from, to, v2.clone(), unlocked.master().clone())
    } else {
        check_verb(&config, verb, dir)?;
        let unlocked = plan.unlock(&config, &source, "Current password: ")?;
        let from = plan.open(clone(&root, dir)?, &config, &unlocked)?;
        // The new password slot needs the key file exactly when the old one did; unlocked
        // with the recovery key, the key file is given only for that.
        let keyfile = args
            .keyfile
            .path
            .as_deref()
            .map(secret_input::read_keyfile)
            .transpose()?;
        if needed_keyfile(&config, &unlocked) && keyfile.is_none() {
            return Err(CliError::new(
                EXIT_BAD_KEY,
                format!(
                    "{} needs a key file with its password: give it with --keyfile FILE, and \
                     the new password will need it too",
                    dir.display()
                ),
            ));
        }
        let new_password = match &args.new_passfile {
            Some(file) => Source::File(file.clone()).read("")?,
            None => Source::interactive().read_new("New password: ", "Repeat new password: ")?,
        };
        let kept = kept_slots(&config, &args.keep_slot, dir)?;
        let master = MasterKey::generate();
        let recovery = RecoverySecret::generate();
        let started = start(
            &config,
            &unlocked,
            &master,
            NewSlots {
                password: &new_password,
                keyfile: keyfile.as_ref(),
                recovery: &recovery,
                kept: &kept,
            },
        )?;
        drop(new_password);
        let to = Vault::with_iv_policy(
            clone(&root, dir)?,
            &master.derive_v2(started.config.vault_id()),
            started.config.features(),
            IvPolicy::Derived,
        );
        // The key is shown before anything changes: if it cannot be, nothing has.
        let key = Zeroizing::new(format_recovery_secret(&recovery));
        print_stdout(&started_banner(
            dir,
            verb,
            &key,
            &started.dropped,
            global.quiet,
        ))?;
        Config::V2(started.config.clone()).save_in(&root)?;
        (from, to, started.config, master)
    };

    let began = Instant::now();
    let bar = (!global.quiet && std::io::stderr().is_terminal())
        .then(|| progress::entries_bar("re-encrypting", count_entries(to.root())));
    let walked = Rotation::new(&from, &to, |report| {
        if let Some(bar) = &bar {
            bar.set_position(report.walked);
            // Entries appeared since they were counted: the bar's total follows.
            if bar.length().is_some_and(|len| report.walked > len) {
                bar.set_length(report.walked);
            }
        }
    })
    .run();
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    // Whatever stopped it, the config keeps the previous key: a run that fixes nothing loses
    // nothing, and the next one carries on.
    let again = format!(
        "the {} is unfinished: once that is fixed, run 'veilfs {} {}' again with the new password",
        if verb == Verb::Upgrade {
            "upgrade"
        } else {
            "key rotation"
        },
        verb.name(),
        dir.display()
    );
    let report = walked.map_err(|e| CliError::other(format!("{e}; {again}")))?;
    if let Some(first) = report.unfinished.first() {
        return Err(CliError::other(format!(
            "{} entries are still under the previous key ({first}); {again}",
            report.unfinished.len()
        )));
    }
    let mut finished = new_config;
    finished.finish_rotation(&master);
    Config::V2(finished.clone()).save_in(&root)?;
    if !global.quiet {
        print_stdout(&summary(dir, &finished, &report, began.elapsed()))?;
    }
    if !report.left.is_empty() {
        return Err(CliError::other(format!(
            "{} entries were left as they were ({}); 'veilfs fsck {}' reports them",
            report.left.len(),
            report.left[0],
            dir.display()
        )));
    }
    Ok(())
}

fn clone(root: &Dir, dir: &Path) -> Result<Dir, CliError> {
    root.try_clone()
        .map_err(|e| CliError::io(format!("cannot open {}", dir.display()), e))
}

/// Whether the password slot unlocked with (format 1: the vault) needs a key file; unlocked
/// another way, whether the vault's password slots do.
fn needed_keyfile(config: &Config, unlocked: &Unlocked) -> bool {
    match config {
        Config::V1(v1) => v1.requires_keyfile(),
        Config::V2(v2) => match unlocked.slot().map(|index| v2.slots()[index].kind()) {
            Some(SlotKind::Password) => false,
            Some(SlotKind::PasswordKeyfile) => true,
            _ => v2.has_kind(SlotKind::PasswordKeyfile) && !v2.has_kind(SlotKind::Password),
        },
    }
}

/// `rekey` rotates format 2 keys; `upgrade` moves format 1 to format 2.
fn check_verb(config: &Config, verb: Verb, dir: &Path) -> Result<(), CliError> {
    let hint = match (config, verb) {
        (Config::V1(_), Verb::Rekey) => {
            "is a format 1 vault: 'veilfs upgrade' gives it new keys \
                                         and format 2"
        }
        (Config::V2(_), Verb::Upgrade) => "is already format 2 ('veilfs rekey' gives it new keys)",
        _ => return Ok(()),
    };
    Err(CliError::new(
        EXIT_USAGE,
        format!("{} {hint}; nothing was changed", dir.display()),
    ))
}

/// The secrets the new config's slots take.
struct NewSlots<'a> {
    password: &'a Password,
    keyfile: Option<&'a KeyfileSecret>,
    recovery: &'a RecoverySecret,
    kept: &'a [KeptSlot],
}

/// A slot carried over to the new key, with its secret (checked against the old slot).
struct KeptSlot {
    label: String,
    kdf: KdfParams,
    password: Option<Password>,
    keyfile: Option<KeyfileSecret>,
}

impl KeptSlot {
    fn secret(&self) -> Secret<'_> {
        match (&self.password, &self.keyfile) {
            (Some(password), Some(keyfile)) => Secret::PasswordKeyfile(password, keyfile),
            (Some(password), None) => Secret::Password(password),
            (None, Some(keyfile)) => Secret::Keyfile(keyfile),
            (None, None) => unreachable!("kept_slots reads a secret for every slot"),
        }
    }
}

/// The slots `--keep-slot` names (`LABEL` or `LABEL=FILE`), each with its secret read and
/// checked: it must open its slot of the current config (exit status 6 if not). A recovery
/// slot is replaced anyway, and a contact slot needs its contact: neither can be kept.
fn kept_slots(config: &Config, asked: &[String], dir: &Path) -> Result<Vec<KeptSlot>, CliError> {
    let Config::V2(v2) = config else {
        return match asked.first() {
            None => Ok(Vec::new()),
            Some(_) => Err(CliError::new(
                EXIT_USAGE,
                "--keep-slot: a format 1 vault has no slots to keep",
            )),
        };
    };
    let mut kept = Vec::new();
    for arg in asked {
        let (label, file) = match v2.find_slot(arg) {
            Some(_) => (arg.as_str(), None),
            None => match arg.split_once('=') {
                Some((label, file)) => (label, Some(Path::new(file))),
                None => (arg.as_str(), None),
            },
        };
        let slot = v2.find_slot(label).map(|i| &v2.slots()[i]).ok_or_else(|| {
            CliError::new(
                EXIT_USAGE,
                format!(
                    "--keep-slot: {} has no slot {label:?} ('veilfs slot list' shows them)",
                    dir.display()
                ),
            )
        })?;
        let needs_file = matches!(slot.kind(), SlotKind::Keyfile | SlotKind::PasswordKeyfile);
        let needs_password = matches!(slot.kind(), SlotKind::Password | SlotKind::PasswordKeyfile);
        if !needs_file && !needs_password {
            return Err(CliError::new(
                EXIT_USAGE,
                format!(
                    "--keep-slot: slot {label:?} is a {} slot: rekey makes a new recovery key, \
                     and a contact slot is added again with 'veilfs slot add'",
                    slot.kind().name()
                ),
            ));
        }
        let keyfile = match (needs_file, file) {
            (true, Some(file)) => Some(secret_input::read_keyfile(file)?),
            (true, None) => {
                return Err(CliError::new(
                    EXIT_USAGE,
                    format!(
                        "--keep-slot: slot {label:?} takes a key file: give it as {label}=FILE"
                    ),
                ))
            }
            (false, Some(_)) => {
                return Err(CliError::new(
                    EXIT_USAGE,
                    format!("--keep-slot: slot {label:?} takes no key file"),
                ))
            }
            (false, None) => None,
        };
        let password = needs_password
            .then(|| Source::interactive().read(&format!("Password of slot {label:?}: ")))
            .transpose()?;
        let slot_kept = KeptSlot {
            label: label.to_owned(),
            kdf: slot
                .kdf()
                .map_or_else(KdfParams::default, |kdf| kdf.params.for_rewrap()),
            password,
            keyfile,
        };
        v2.unlock(&slot_kept.secret(), Some(label))
            .map_err(|e| CliError::from(e).context(format!("--keep-slot {label:?}")))?;
        kept.push(slot_kept);
    }
    Ok(kept)
}

/// The new config of a rotation that is starting, and the labels of the old slots it drops.
struct Started {
    config: ConfigV2,
    dropped: Vec<String>,
}

/// The config a rotation starts with: under `master`, holding the previous master key, with a
/// password slot (the label and KDF cost of the slot unlocked with, when it was a password
/// slot; never a lower cost) and a new recovery slot.
fn start(
    config: &Config,
    unlocked: &Unlocked,
    master: &MasterKey,
    slots: NewSlots,
) -> Result<Started, CliError> {
    let (mut new, label, kdf, dropped) = match config {
        Config::V1(v1) => (
            ConfigV2::upgraded(v1.features().clone(), unlocked.master(), master),
            "password".to_owned(),
            v1.kdf().for_rewrap(),
            Vec::new(),
        ),
        Config::V2(v2) => {
            let used = unlocked.slot().map(|index| &v2.slots()[index]);
            let (label, kdf) = match used {
                Some(slot)
                    if matches!(slot.kind(), SlotKind::Password | SlotKind::PasswordKeyfile) =>
                {
                    (
                        slot.label().to_owned(),
                        slot.kdf()
                            .map_or_else(KdfParams::default, |kdf| kdf.params.for_rewrap()),
                    )
                }
                _ => ("password".to_owned(), KdfParams::default().for_rewrap()),
            };
            let dropped = v2
                .slots()
                .iter()
                .filter(|slot| {
                    !slot.is(&label)
                        && slot.kind() != SlotKind::Recovery
                        && !slots.kept.iter().any(|kept| slot.is(&kept.label))
                })
                .map(|slot| format!("{:?} ({})", slot.label(), slot.kind().name()))
                .collect();
            (v2.rotated(unlocked.master(), master)?, label, kdf, dropped)
        }
    };
    let secret = match slots.keyfile {
        Some(keyfile) => Secret::PasswordKeyfile(slots.password, keyfile),
        None => Secret::Password(slots.password),
    };
    new.add_slot(master, &label, &secret, kdf)
        .and_then(|_| {
            slots.kept.iter().try_for_each(|kept| {
                new.add_slot(master, &kept.label, &kept.secret(), kept.kdf)
                    .map(drop)
            })
        })
        .and_then(|_| {
            new.add_slot(
                master,
                RECOVERY_LABEL,
                &Secret::Recovery(slots.recovery),
                kdf,
            )
        })
        .map_err(|reason| CliError::new(EXIT_USAGE, reason))?;
    Ok(Started {
        config: new,
        dropped,
    })
}

/// The two vaults of an interrupted rotation: the previous keys (from inside the config) and
/// the new ones. The root's IV file must be one of theirs: a rotation ends by replacing it.
fn resumed_vaults(
    root: &Dir,
    config: &ConfigV2,
    unlocked: &Unlocked,
) -> Result<(Vault, Vault), CliError> {
    let previous = config
        .previous_master(unlocked.master())?
        .expect("a rotating config holds the previous key");
    let (old_keys, old_policy) = match config.rotating_from() {
        Some(1) => (previous.derive(), IvPolicy::Stored),
        _ => (previous.derive_v2(config.vault_id()), IvPolicy::Derived),
    };
    let path = root.path().to_path_buf();
    let from = Vault::with_iv_policy(
        clone(root, &path)?,
        &old_keys,
        config.features(),
        old_policy,
    );
    let to = Vault::with_iv_policy(
        clone(root, &path)?,
        unlocked.keys(),
        config.features(),
        IvPolicy::Derived,
    );
    if from.check_binding().is_err() {
        to.check_binding()?;
    }
    Ok((from, to))
}

/// What a starting rotation prints: the new recovery key, and what happens next. Even with
/// --quiet the key is printed (on one line, for scripts): it is shown only this once.
fn started_banner(
    dir: &Path,
    verb: Verb,
    key: &str,
    dropped: &[String],
    quiet: bool,
) -> Zeroizing<String> {
    if quiet {
        return Zeroizing::new(format!("{key}\n"));
    }
    let width = text::help_width();
    let dir = dir.display();
    let head =
        format!("New recovery key of {dir} (shown only this once; the old one will open nothing):");
    let mut tail = "Save these three lines as they are, apart from the password.".to_owned();
    if !dropped.is_empty() {
        tail.push_str(&format!(
            "\n\nThese slots are dropped (add them again with 'veilfs slot add'): {}.",
            dropped.join(", ")
        ));
    }
    tail.push_str(&format!(
        "\n\nRe-encrypting every file. If this stops, run 'veilfs {} {dir}' again with the new \
         password: it carries on where it stopped.",
        verb.name()
    ));
    key_banner(&head, key, &tail, width)
}

fn summary(dir: &Path, config: &ConfigV2, report: &Report, took: Duration) -> String {
    let text = format!(
        "{} is under its new key (generation {}): {} files ({}), {} directories, {} symbolic links{} \
         re-encrypted in {:.1} s; the previous password, recovery key and copies of veilfs.conf \
         open nothing in it.\n",
        dir.display(),
        config.generation(),
        report.files,
        bytes_text(report.bytes),
        report.dirs,
        report.symlinks,
        if report.already > 0 {
            format!(" ({} entries were done before it stopped)", report.already)
        } else {
            String::new()
        },
        took.as_secs_f64()
    );
    text::flow(&text, text::help_width()) + "\n"
}

fn bytes_text(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes >= MIB {
        format!("{:.1} MiB", bytes as f64 / MIB as f64)
    } else {
        format!("{bytes} bytes")
    }
}
