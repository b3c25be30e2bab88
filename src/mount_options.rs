//! The `-o` mount options of `veilfs mount` and of the mount(8) helper (`mount.fuse.veilfs`), and
//! the durations they and the command line take (`idle=`, `cache_ttl=`, `--idle`,
//! `--cache-ttl`).
//!
//! Pure parsing, no I/O: the command line (`src/cli/mount/options.rs`) merges the result with its flags
//! and mounts. It lives in the library so that it can be fuzzed (`fuzz/fuzz_targets/mount_options.rs`)
//! and tested without the binary.

use std::path::PathBuf;
use std::time::Duration;

/// `-o` options, parsed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParsedOptions {
    pub read_only: bool,
    pub allow_other: bool,
    pub nonempty: bool,
    /// Passed to the kernel (through `MountOptions::extra`).
    pub extra: Vec<String>,
    /// `passfile=`, `extpass=`, `keyfile=`, `idle=`, `cache_ttl=`, `threads=`: the flags, as
    /// options.
    pub passfile: Option<PathBuf>,
    pub extpass: Option<String>,
    pub keyfile: Option<PathBuf>,
    pub idle: Option<Duration>,
    pub cache_ttl: Option<Duration>,
    pub threads: Option<u16>,
    /// `transport=`, `uring_depth=`: `--transport`, `--uring-depth`.
    pub transport: Option<crate::fs::transport::Transport>,
    pub uring_depth: Option<u16>,
    /// `reverse`, `config=`, `exclude_from=`: `--reverse`, `--config`, `--exclude-from`.
    pub reverse: bool,
    pub config: Option<PathBuf>,
    pub exclude_from: Option<PathBuf>,
}

/// Options the kernel understands, handed on as they are.
pub const PASSED_THROUGH: &[&str] = &[
    "default_permissions",
    "dev",
    "nodev",
    "suid",
    "nosuid",
    "exec",
    "noexec",
    "atime",
    "noatime",
    "sync",
    "async",
    "dirsync",
];

/// Parses the `-o` arguments (each a comma-separated list). Later options override earlier ones
/// (`-o ro -o rw` is read-write). `sloppy` (mount(8)'s `-s`) ignores unknown options with a
/// warning instead of refusing them. The error is the message of a usage error (the command line
/// exits with status 2).
pub fn parse_options<S: AsRef<str>>(lists: &[S], sloppy: bool) -> Result<ParsedOptions, String> {
    // Every error is a usage error, told by its message alone.
    let usage = |message: String| message;
    let mut parsed = ParsedOptions::default();
    for option in lists
        .iter()
        .flat_map(|list| list.as_ref().split(','))
        .map(str::trim)
    {
        let (name, value) = match option.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (option, None),
        };
        let empty = |what: &str| usage(format!("-o {name}=: expected {what} after '='"));
        match (name, value) {
            ("", None) => {}
            ("ro", None) => parsed.read_only = true,
            ("rw", None) => parsed.read_only = false,
            ("allow_other", None) => parsed.allow_other = true,
            ("nonempty", None) => parsed.nonempty = true,
            ("passfile", Some("")) => return Err(empty("a file")),
            ("passfile", Some(file)) => parsed.passfile = Some(PathBuf::from(file)),
            ("extpass", Some("")) => return Err(empty("a command")),
            ("extpass", Some(cmd)) => parsed.extpass = Some(cmd.to_owned()),
            ("reverse", None) => parsed.reverse = true,
            ("config" | "exclude_from" | "exclude-from", Some("")) => return Err(empty("a file")),
            ("config", Some(file)) => parsed.config = Some(PathBuf::from(file)),
            ("exclude_from" | "exclude-from", Some(file)) => {
                parsed.exclude_from = Some(PathBuf::from(file))
            }
            ("keyfile", Some("")) => return Err(empty("a file")),
            ("keyfile", Some(file)) => parsed.keyfile = Some(PathBuf::from(file)),
            ("idle", Some(text)) => {
                parsed.idle = Some(
                    parse_nonzero_duration(text)
                        .map_err(|e| usage(format!("-o idle: {e}")))?,
                )
            }
            ("cache_ttl", Some(text)) => {
                parsed.cache_ttl = Some(
                    parse_duration(text)
                        .map_err(|e| usage(format!("-o cache_ttl: {e}")))?,
                )
            }
            ("transport", Some(name)) => {
                parsed.transport = Some(name.parse().map_err(|e| usage(format!("-o transport: {e}")))?)
            }
            ("uring_depth", Some(n)) => match n.parse::<u16>() {
                Ok(n) if (1..=crate::fs::transport::MAX_QUEUE_DEPTH).contains(&usize::from(n)) => {
                    parsed.uring_depth = Some(n)
                }
                _ => {
                    return Err(usage(format!(
                        "-o uring_depth={n}: expected a number from 1 to {}",
                        crate::fs::transport::MAX_QUEUE_DEPTH
                    )))
                }
            },
            ("threads", Some(n)) => match n.parse::<u16>() {
                Ok(n @ 1..=64) => parsed.threads = Some(n),
                _ => return Err(usage(format!("-o threads={n}: expected a number from 1 to 64"))),
            },
            ("max_read", Some(n)) => {
                if n.parse::<u32>().map_or(true, |n| n == 0) {
                    return Err(usage(format!("-o max_read={n}: expected a positive number of bytes")));
                }
                parsed.extra.push(option.to_owned());
            }
            (name, None) if PASSED_THROUGH.contains(&name) => parsed.extra.push(name.to_owned()),
            (name, None) if TABLE_ONLY_OPTIONS.contains(&name) => {}
            (name, Some(_)) if TABLE_ONLY_VALUE_OPTIONS.contains(&name) => {}
            (name, _) if name.starts_with("x-") => {}
            // What mount.fuse3 and libfuse would pass for this file system: harmless.
            ("subtype", Some("veilfs")) => {}
            ("fsname" | "subtype", _) => {
                return Err(usage(format!("-o {name}: veilfs sets the file system name and type itself")))
            }
            ("allow_root", None) => {
                return Err(usage("-o allow_root is not supported; use -o allow_other".to_owned()))
            }
            ("auto_unmount", None) => {
                return Err(usage(
                    "-o auto_unmount is not supported; 'veilfs umount' or a signal to the veilfs process \
                     unmounts"
                        .to_owned(),
                ))
            }
            // Only the name is repeated: a mistyped option's value might be a secret command.
            _ if sloppy => tracing::warn!("ignoring unknown mount option '{name}'"),
            _ => {
                let shown = if value.is_some() { format!("{name}=...") } else { name.to_owned() };
                return Err(usage(format!(
                    "unknown mount option '{shown}' (see 'veilfs mount --help' for the options veilfs \
                     accepts)"
                )));
            }
        }
    }
    // Keep the kernel flags consistent: the last of a conflicting pair wins.
    let conflicts = [
        ("dev", "nodev"),
        ("suid", "nosuid"),
        ("exec", "noexec"),
        ("atime", "noatime"),
        ("sync", "async"),
    ];
    let mut kept: Vec<String> = Vec::with_capacity(parsed.extra.len());
    for option in parsed.extra.iter().rev() {
        let opposite = conflicts.iter().find_map(|&(a, b)| match option.as_str() {
            o if o == a => Some(b),
            o if o == b => Some(a),
            _ => None,
        });
        if kept.contains(option)
            || opposite.is_some_and(|opposite| kept.iter().any(|k| k == opposite))
        {
            continue;
        }
        if option.starts_with("max_read=") && kept.iter().any(|k| k.starts_with("max_read=")) {
            continue;
        }
        kept.push(option.clone());
    }
    kept.reverse();
    parsed.extra = kept;
    Ok(parsed)
}

/// Options that mean something to mount(8), /etc/fstab, systemd or a desktop, not to the
/// filesystem: accepted and ignored, whether they come from mount(8) or from `veilfs mount -o`.
/// Also every option starting with `x-` (`x-systemd.automount`, `x-gvfs-show`, ...), and
/// `comment=`, `user=NAME` (which mount(8) adds for a `user` mount) and `helper=`.
pub const TABLE_ONLY_OPTIONS: &[&str] = &[
    "defaults",
    "auto",
    "noauto",
    "user",
    "users",
    "nouser",
    "owner",
    "group",
    "nofail",
    "_netdev",
    // Access-time fine tuning the FUSE mount cannot take (it stays relatime).
    "relatime",
    "norelatime",
    "strictatime",
    "nostrictatime",
    "lazytime",
    "nolazytime",
    "diratime",
    "nodiratime",
];

/// Options with a value that are accepted and ignored, as `name=`.
pub const TABLE_ONLY_VALUE_OPTIONS: &[&str] = &["comment", "user", "helper", "uhelper"];

/// Parses a duration: a number and a unit (`s`, `m`, `h`, `d`; seconds without one), or several
/// (`1h30m`). Zero is allowed.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "invalid duration '{text}': expected a number and a unit, like 30s, 10m, 1h or 1h30m"
        )
    };
    let text_trimmed = text.trim();
    if text_trimmed.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    let mut rest = text_trimmed;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let seconds = match &rest[..unit_len] {
            "" | "s" | "sec" => 1,
            "m" | "min" => 60,
            "h" => 3600,
            "d" => 86400,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        let part = number.checked_mul(seconds).ok_or_else(bad)?;
        total = total
            .checked_add(Duration::from_secs(part))
            .ok_or_else(bad)?;
    }
    Ok(total)
}

/// [`parse_duration`], refusing zero.
pub fn parse_nonzero_duration(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        d if d.is_zero() => Err(format!(
            "invalid duration '{text}': it must be longer than zero"
        )),
        d => Ok(d),
    }
}
