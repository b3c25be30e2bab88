//! veilfs: an encrypted overlay filesystem for sync folders.
//!
//! Data flows one way: the CLI unlocks a [`vault::Vault`] from its [`config`], the FUSE adapter in
//! `fs` translates kernel requests into calls on the vault core ([`layout`]), and the core uses
//! [`crypto`] for every byte that reaches the backing directory. Nothing below `fs` knows FUSE.
//! The on-disk format is specified in `docs/format.md`; the code follows its words.

pub mod backing;
pub mod config;
pub mod crypto;
pub mod error;
pub mod fs;
pub mod fsck;
pub mod layout;
pub mod mount_options;
pub mod rekey;
pub mod reverse;
pub mod vault;

pub use error::{Error, Result};
