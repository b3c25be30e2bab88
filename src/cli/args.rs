//! The arguments several verbs take, each declared once here and `#[command(flatten)]`ed into
//! the verbs' `Args`: the password's sources, the vault's key file, and CIPHERDIR.
//!
//! A verb in which one of them means more than its help here says (the *current* password of
//! `passwd`, a key file the new password needs too) rewords the help with
//! `#[command(mut_args(reworded(ID, HELP)))]` on its own `Args`, keeping the argument itself.
//! `init`'s CIPHERDIR and `--keyfile` are not these: there they name a directory to make a
//! vault in and a key file to require from then on.

use std::path::PathBuf;

use clap::Arg;

use super::secret_input::Source;

/// For `Command::mut_args`: gives the argument `id` the help `help`, and leaves the others as
/// they are. (`Command::mut_arg` would also move the argument to the end of the synopsis.)
pub fn reworded(id: &'static str, help: &'static str) -> impl FnMut(Arg) -> Arg {
    move |arg| {
        if arg.get_id() == id {
            arg.help(help)
        } else {
            arg
        }
    }
}

/// `--passfile` and `--extpass`, for commands that need one password.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct PasswordArgs {
    /// Read the password from the first line of FILE instead of asking
    #[arg(long, value_name = "FILE", conflicts_with = "extpass")]
    pub passfile: Option<PathBuf>,

    /// Run CMD with 'sh -c' and use the first line of its output as the password (a password
    /// manager, for example: --extpass 'pass show veilfs')
    #[arg(long, value_name = "CMD")]
    pub extpass: Option<String>,
}

impl PasswordArgs {
    pub fn source(&self) -> Source {
        Source::pick(self.passfile.as_deref(), self.extpass.as_deref())
    }
}

/// `--keyfile`: the key file of a vault that needs one to unlock.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct KeyfileArg {
    /// The vault's key file, for a vault created with 'init --keyfile'
    #[arg(id = "keyfile", long = "keyfile", value_name = "FILE")]
    pub path: Option<PathBuf>,
}

/// CIPHERDIR: the vault a verb works on.
#[derive(Clone, Debug, clap::Args)]
pub struct CipherdirArg {
    /// The vault's backing directory
    #[arg(id = "cipherdir", value_name = "CIPHERDIR")]
    pub path: PathBuf,
}
