//! Unlocking a vault from the command line: which secret to read, in what order, and what to say
//! when it does not fit. Every command that needs the keys goes through here, so that each
//! checks the same things: the config's MAC (format 2, inside [`Config::unlock`]) and the
//! config's binding to the backing directory ([`Vault::check_binding`]) before anything is
//! written.
//!
//! [`Plan::prepare`] does everything that needs no password (reading the key file or the
//! recovery key file, deciding whether a password will be needed), so that commands can refuse
//! early; [`Plan::unlock`] then asks for the password if it must.

use std::path::Path;

use veilfs::backing::Dir;
use veilfs::config::{contact, Config, KeyfileSecret, Secret, SlotKind, Unlocked};
use veilfs::crypto::keys::ContactShare;
use veilfs::crypto::recovery::{parse_any_recovery_key, RecoveryKey};
use veilfs::vault::{IvPolicy, Vault};

use super::secret_input::{self, Source};
use super::{CliError, EXIT_BAD_KEY};

/// The recovery key file that means standard input: a prompt on a terminal.
pub const STDIN: &str = "-";

/// Where the recovery key is read from: `--recovery-key-file FILE`, or standard input (a
/// prompt on a terminal) for `--recovery-key`; `None` for neither.
pub fn recovery_key_file(file: Option<&Path>, prompt: bool) -> Option<&Path> {
    file.or(prompt.then_some(Path::new(STDIN)))
}

/// What the user gave to unlock with.
#[derive(Clone, Debug, Default)]
pub struct Given<'a> {
    pub keyfile: Option<&'a Path>,
    /// A file holding the recovery key ([`STDIN`]: standard input, or a prompt).
    pub recovery_key_file: Option<&'a Path>,
    /// A recovery contact's answer (format 2): then the password read is the recovery
    /// passphrase.
    pub contact_share: Option<&'a Path>,
    /// Only this slot (an ID or a label), format 2.
    pub slot: Option<&'a str>,
}

/// How a vault will be unlocked: the secrets read so far, and whether a password will be asked.
#[derive(Debug)]
pub struct Plan {
    keyfile: Option<KeyfileSecret>,
    recovery: Option<RecoveryKey>,
    contact: Option<ContactShare>,
    slot: Option<String>,
    /// Try a key-file slot (without a password) first.
    keyfile_alone: bool,
    /// Then (or only) ask for a password, with the key file if there is one.
    password: bool,
}

impl Plan {
    /// Reads the key file or recovery key file and decides whether a password will be needed,
    /// refusing at once what cannot work (exit status 6): a vault that needs a key file when
    /// none is given, a key file for a vault (or slot) that takes none.
    pub fn prepare(config: &Config, cipherdir: &Path, given: &Given) -> Result<Plan, CliError> {
        let mut plan = Plan {
            keyfile: None,
            recovery: None,
            contact: None,
            slot: given.slot.map(str::to_owned),
            keyfile_alone: false,
            password: false,
        };
        if let Some(file) = given.recovery_key_file {
            let parse = |text: &str| parse_any_recovery_key(&secret_input::written_key(text));
            plan.recovery = Some(if file == Path::new(STDIN) {
                let text = secret_input::read_recovery_key_stdin(|text| parse(text).is_ok())?;
                parse(&text)?
            } else {
                let text = secret_input::read_recovery_key_file(file)?;
                parse(&text).map_err(|e| CliError::from(e).context(file.display()))?
            });
            return Ok(plan);
        }
        if let Some(file) = given.contact_share {
            let text = secret_input::read_recovery_key_file(file)?;
            plan.contact = Some(
                contact::share_from_answer(&text)
                    .map_err(|e| CliError::from(e).context(file.display()))?,
            );
            plan.password = true;
            return Ok(plan);
        }
        let has = |kind: SlotKind| match config {
            Config::V1(v1) => match kind {
                SlotKind::Password => !v1.requires_keyfile(),
                SlotKind::PasswordKeyfile => v1.requires_keyfile(),
                SlotKind::Keyfile | SlotKind::Recovery | SlotKind::Contact => false,
            },
            Config::V2(v2) => v2
                .slots()
                .iter()
                .any(|s| s.kind() == kind && given.slot.is_none_or(|w| s.is(w))),
        };
        let dir = cipherdir.display();
        match given.keyfile {
            Some(file) => {
                plan.keyfile_alone = has(SlotKind::Keyfile);
                plan.password = has(SlotKind::PasswordKeyfile);
                if !plan.keyfile_alone && !plan.password {
                    return Err(CliError::new(
                        EXIT_BAD_KEY,
                        format!(
                            "{dir} has no slot that opens with a key file{}; leave out --keyfile",
                            slot_note(given)
                        ),
                    ));
                }
                plan.keyfile = Some(secret_input::read_keyfile(file)?);
            }
            None if has(SlotKind::Password) => plan.password = true,
            None if has(SlotKind::PasswordKeyfile) || has(SlotKind::Keyfile) => {
                return Err(CliError::new(
                    EXIT_BAD_KEY,
                    format!(
                        "{dir} needs its key file{}: give it with --keyfile FILE (-o keyfile=FILE \
                         for mount(8))",
                        if has(SlotKind::PasswordKeyfile) {
                            " as well as the password"
                        } else {
                            ""
                        }
                    ),
                ))
            }
            None => {
                return Err(CliError::new(
                    EXIT_BAD_KEY,
                    format!(
                        "{dir} has no password slot{}: unlock it with --recovery-key-file FILE{}",
                        slot_note(given),
                        if given.slot.is_some() {
                            ", or another slot"
                        } else {
                            ""
                        }
                    ),
                ))
            }
        }
        Ok(plan)
    }

    /// Unlocks: the recovery key, or the key file alone, then the password (read from `source`
    /// only now, with `prompt`). Wrong secrets are exit status 6, a modified config 5.
    pub fn unlock(
        &self,
        config: &Config,
        source: &Source,
        prompt: &str,
    ) -> Result<Unlocked, CliError> {
        let slot = self.slot.as_deref();
        if let Some(key) = &self.recovery {
            return config.unlock_with_recovery_key(key).map_err(CliError::from);
        }
        if let (true, Some(keyfile)) = (self.keyfile_alone, &self.keyfile) {
            match config.unlock(&Secret::Keyfile(keyfile), slot) {
                Ok(unlocked) => return Ok(unlocked),
                Err(veilfs::Error::WrongPassword) if self.password => {}
                Err(veilfs::Error::WrongPassword) => {
                    return Err(CliError::new(
                        EXIT_BAD_KEY,
                        "wrong key file: it opens no slot of this vault",
                    ))
                }
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(share) = &self.contact {
            let passphrase = source.read("Recovery passphrase: ")?;
            return config
                .unlock(&Secret::Contact(share, &passphrase), slot)
                .map_err(|e| match e {
                    veilfs::Error::WrongPassword => CliError::new(
                        EXIT_BAD_KEY,
                        "wrong recovery passphrase or contact share: they open no contact slot",
                    ),
                    e => e.into(),
                });
        }
        let password = source.read(prompt)?;
        let secret = match &self.keyfile {
            Some(keyfile) => Secret::PasswordKeyfile(&password, keyfile),
            None => Secret::Password(&password),
        };
        config.unlock(&secret, slot).map_err(|e| match e {
            veilfs::Error::WrongPassword if self.keyfile.is_some() => CliError::new(
                EXIT_BAD_KEY,
                "wrong password or key file (or the config's parameters were altered)",
            ),
            e => e.into(),
        })
    }

    /// The vault in the backing directory `root` with the unlocked keys, after checking that the
    /// config belongs to it (exit status 5 if not). Format 2 derives every directory's IV from
    /// its path; format 1 reads it from `veilfs.diriv`.
    pub fn open(&self, root: Dir, config: &Config, unlocked: &Unlocked) -> Result<Vault, CliError> {
        if config.rotating_from().is_some() {
            return Err(veilfs::Error::RotationUnfinished.into());
        }
        let policy = match config {
            Config::V1(_) => IvPolicy::Stored,
            Config::V2(_) => IvPolicy::Derived,
        };
        let vault = Vault::with_iv_policy(root, unlocked.keys(), config.features(), policy);
        vault
            .check_binding()
            .map_err(|e| match (&e, &self.recovery) {
                (_, Some(RecoveryKey::MasterKey(_))) => veilfs::Error::WrongRecoveryKey.into(),
                _ => CliError::from(e),
            })?;
        Ok(vault)
    }

    /// The key file read for the unlock, if one was.
    pub fn keyfile(&self) -> Option<&KeyfileSecret> {
        self.keyfile.as_ref()
    }
}

fn slot_note(given: &Given) -> String {
    match given.slot {
        Some(slot) => format!(" through slot {slot:?}"),
        None => String::new(),
    }
}
