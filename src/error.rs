//! The error type of the vault core, and its mapping to errno (the only place that knows both).

use std::io;
use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Io(#[from] io::Error),

    // Names.
    #[error("invalid file name (empty, \".\", \"..\", or containing '/' or NUL)")]
    InvalidName,
    #[error("file name longer than 255 bytes")]
    NameTooLong,
    #[error("symbolic link target too long to encrypt")]
    TargetTooLong,
    #[error("encrypted name is not valid {0}")]
    NameEncoding(&'static str),
    #[error("encrypted name or value failed authentication (corrupt, or from another directory or vault)")]
    NameAuth,
    #[error("long-name sidecar {0} is missing or does not match its entry")]
    Sidecar(String),

    // Directory IVs and file headers.
    #[error("directory IV file {0} is {1}")]
    DirIv(PathBuf, String),
    #[error("file header is truncated ({0} bytes)")]
    HeaderTruncated(u64),
    #[error("file header has unsupported format version {0}")]
    HeaderVersion(u16),
    #[error(
        "file header changed since the file was opened (rewritten in place by another writer)"
    )]
    HeaderChanged,

    // Config and keys.
    #[error("{0} is not a veilfs vault (no veilfs.conf)")]
    NotAVault(PathBuf),
    #[error("config file is corrupt: {0}")]
    ConfigCorrupt(String),
    #[error("config file was modified: its checksum does not match its contents")]
    ConfigTampered,
    #[error("config format version {0} is not supported by this veilfs (supports 1 and 2)")]
    ConfigVersion(u32),
    #[error("veilfs.conf was modified by someone without the key ({0})")]
    ConfigModified(String),
    #[error("this veilfs.conf does not belong to this vault: {0}")]
    ForeignConfig(String),
    #[error(
        "a key rotation of this vault was interrupted (its files are under two keys): \
         run 'veilfs rekey' to finish it"
    )]
    RotationUnfinished,
    #[error("no unlock slot of this vault takes {0}")]
    NoSuchSlot(String),
    #[error("wrong password (or the config's parameters were altered)")]
    WrongPassword,
    #[error("wrong recovery key (it decodes, but does not unlock this vault)")]
    WrongRecoveryKey,
    #[error("recovery key is mistyped: {0}")]
    RecoveryKeyFormat(String),
}

impl Error {
    /// The errno a filesystem request failing with this error returns.
    pub fn errno(&self) -> i32 {
        match self {
            Error::Io(e) => e.raw_os_error().unwrap_or(libc::EIO),
            Error::InvalidName => libc::EINVAL,
            Error::NameTooLong | Error::TargetTooLong => libc::ENAMETOOLONG,
            _ => libc::EIO,
        }
    }
}
