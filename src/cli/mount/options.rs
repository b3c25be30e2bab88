//! `veilfs mount`'s settings: the flags merged with the `-o` options (parsed by
//! [`veilfs::mount_options`]), which may give the same setting a second way (`--idle 10m` or
//! `-o idle=10m`, for /etc/fstab), and the defaults of what neither gives.

use std::path::PathBuf;
use std::time::Duration;

use veilfs::fs::transport::Transport;
use veilfs::mount_options::{self, ParsedOptions};

use super::MountArgs;
use crate::cli::args::PasswordArgs;
use crate::cli::{CliError, EXIT_USAGE};

/// Parses the `-o` arguments (see [`mount_options::parse_options`]); an unknown or malformed
/// option is a usage error.
#[cfg(test)]
fn parse_options<S: AsRef<str>>(lists: &[S]) -> Result<ParsedOptions, CliError> {
    parse_options_with(lists, false)
}

/// [`parse_options`]; `sloppy` (mount(8)'s `-s`) ignores unknown options with a warning instead
/// of refusing them.
fn parse_options_with<S: AsRef<str>>(lists: &[S], sloppy: bool) -> Result<ParsedOptions, CliError> {
    mount_options::parse_options(lists, sloppy)
        .map_err(|message| CliError::new(EXIT_USAGE, message))
}

/// The default number of serving threads: twice the number of CPUs, at least 4, at most 16.
/// More readers than CPUs keep one ready while others wait on the backing disk or a kernel
/// lock: on the 2-CPU machines measured, 4 threads untarred the bench tree in 3.1 s where 2
/// took 5.5 s, and no other column got slower (docs/performance.md).
fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(4, |n| n.get() * 2)
        .clamp(4, 16)
}

/// A setting given as a flag, as a `-o` option, or both (then they must agree).
fn either<T: PartialEq>(
    flag: Option<T>,
    option: Option<T>,
    name: &str,
) -> Result<Option<T>, CliError> {
    match (flag, option) {
        (Some(flag), Some(option)) if flag != option => Err(CliError::new(
            EXIT_USAGE,
            format!(
                "--{} and -o {name}= disagree; give one of them",
                name.replace('_', "-")
            ),
        )),
        (flag, option) => Ok(flag.or(option)),
    }
}

/// `$VEILFS_TRANSPORT`, the transport when neither `--transport` nor `-o transport=` gives one
/// (for a whole test suite, or every mount of a machine); `auto` when unset.
fn transport_from_env() -> Result<Transport, CliError> {
    match std::env::var("VEILFS_TRANSPORT") {
        Err(_) => Ok(Transport::Auto),
        Ok(name) => name
            .parse()
            .map_err(|e| CliError::new(EXIT_USAGE, format!("$VEILFS_TRANSPORT: {e}"))),
    }
}

/// What to serve and how, once the flags and `-o` options are merged.
pub(in crate::cli) struct Settings {
    pub password: PasswordArgs,
    pub keyfile: Option<PathBuf>,
    pub idle: Option<Duration>,
    pub cache_ttl: Duration,
    pub threads: usize,
    /// `--transport` and `--uring-depth`.
    pub transport: veilfs::fs::transport::Plan,
    /// What is left of the `-o` options once the flags' twins are taken out.
    pub options: ParsedOptions,
}

/// Merges the flags of `args` with its `-o` options.
pub(super) fn settings(args: &MountArgs) -> Result<Settings, CliError> {
    let mut options = parse_options_with(&args.options, args.sloppy)?;
    let password = PasswordArgs {
        passfile: either(
            args.password.passfile.clone(),
            options.passfile.take(),
            "passfile",
        )?,
        extpass: either(
            args.password.extpass.clone(),
            options.extpass.take(),
            "extpass",
        )?,
    };
    if password.passfile.is_some() && password.extpass.is_some() {
        return Err(CliError::new(
            EXIT_USAGE,
            "give the password with passfile or with extpass, not both",
        ));
    }
    Ok(Settings {
        password,
        keyfile: either(args.keyfile.path.clone(), options.keyfile.take(), "keyfile")?,
        idle: either(args.idle, options.idle.take(), "idle")?,
        cache_ttl: either(args.cache_ttl, options.cache_ttl.take(), "cache_ttl")?
            .unwrap_or(veilfs::fs::TTL),
        threads: either(args.threads, options.threads.take(), "threads")?
            .map_or_else(default_threads, usize::from),
        transport: veilfs::fs::transport::Plan {
            transport: match either(args.transport, options.transport.take(), "transport")? {
                Some(transport) => transport,
                None => transport_from_env()?,
            },
            queue_depth: either(args.uring_depth, options.uring_depth.take(), "uring_depth")?
                .map_or(veilfs::fs::transport::DEFAULT_QUEUE_DEPTH, usize::from),
        },
        options,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse() {
        let p = parse_options(&["ro,allow_other", "noatime"]).unwrap();
        assert!(p.read_only && p.allow_other && !p.nonempty);
        assert_eq!(p.extra, ["noatime"]);
        let p = parse_options(&["ro", "rw"]).unwrap();
        assert!(!p.read_only);
        let p =
            parse_options(&["defaults,noauto,user,_netdev,x-systemd.automount,nonempty"]).unwrap();
        assert!(p.nonempty);
        assert!(p.extra.is_empty(), "{:?}", p.extra);
        let p = parse_options(&["nodev,dev,max_read=65536,noexec,exec,noexec"]).unwrap();
        assert_eq!(p.extra, ["dev", "max_read=65536", "noexec"]);
        assert_eq!(
            parse_options::<&str>(&[]).unwrap(),
            ParsedOptions::default()
        );
        let p = parse_options(&["transport=io-uring,uring_depth=16"]).unwrap();
        assert_eq!(p.transport, Some(Transport::IoUring));
        assert_eq!(p.uring_depth, Some(16));
        assert!(p.extra.is_empty(), "{:?}", p.extra);
    }

    #[test]
    fn bad_options_are_usage_errors() {
        for bad in [
            "fsname=x",
            "subtype=y",
            "bogus",
            "allow_root",
            "auto_unmount",
            "max_read=0",
            "ro=1",
            "transport=carrier-pigeon",
            "uring_depth=0",
            "uring_depth=129",
        ] {
            let err = parse_options(&[bad]).unwrap_err();
            assert_eq!(err.code(), EXIT_USAGE, "{bad}: {err}");
        }
    }
}
