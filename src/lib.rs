//! veilfs: an encrypted overlay filesystem for sync folders.
//!
//! Data flows one way: the CLI unlocks a [`vault::Vault`] from its [`config`], the FUSE adapter in
//! `fs` translates kernel requests into calls on the vault core ([`layout`]), and the core uses
//! [`crypto`] for every byte that reaches the backing directory. Nothing below `fs` knows FUSE.
//! The on-disk format is specified in `docs/format.md`; the code follows its words.
//!
//! No `unsafe` but in `fs::ffi`, two thin wrappers of system calls nothing safe offers.

#![deny(unsafe_code)]

pub mod backing;
pub mod config;
pub mod crypto;
pub mod error;
pub mod fs;
pub mod fsck;
pub mod layout;
pub mod mount_options;
pub mod mountinfo;
pub mod rekey;
pub mod reverse;
pub mod vault;

pub use error::{Error, Result};
