//! The binary as mount(8)'s helper. Two conventions lead here:
//!
//! - util-linux mount(8) runs `/sbin/mount.fuse.veilfs` (or `/sbin/mount.veilfs`) for `-t
//!   fuse.veilfs` as `mount.veilfs SOURCE MOUNTPOINT [-sfnv] [-o OPTIONS] [-t TYPE]`: the binary
//!   recognizes its program name (a link to it named so; see `scripts/install.sh`);
//! - without such a helper, mount(8) runs mount.fuse3, which runs `veilfs SOURCE MOUNTPOINT -o
//!   OPTIONS` (the program named by the type's subtype, or before `#` in the source for `-t
//!   fuse`): the binary recognizes a first argument that is a path rather than a command.
//!
//! Both become a `veilfs mount` of SOURCE at MOUNTPOINT with the `-o` options, in the background,
//! returning once the mount is ready. The password comes from `passfile=`, `extpass=`, or the
//! terminal mount(8) was run from.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use clap::CommandFactory;

use super::args::{CipherdirArg, KeyfileArg, PasswordArgs};
use super::mount::{self, MountArgs};
use super::platform::HELPER_NAMES;
use super::{print_stdout, Cli, CliError, GlobalArgs, EXIT_USAGE};

/// The helper's `--help`, in [`super::text`]'s markup.
pub(super) const USAGE: &str = "\
Usage: mount.veilfs CIPHERDIR MOUNTPOINT [-sfnv] [-o OPTIONS] [-t TYPE]
       veilfs CIPHERDIR MOUNTPOINT [-o OPTIONS]

mount(8)'s helper for file systems of type fuse.veilfs: mounts the vault in CIPHERDIR at \
MOUNTPOINT in the background and returns once the mount is ready.

  -o OPTIONS\tmount options, as for 'veilfs mount -o', including passfile=FILE, extpass=CMD, \
keyfile=FILE, idle=DURATION, cache_ttl=DURATION and threads=N
  -s\tignore unknown options (with a warning)
  -f\tcheck everything, but do not mount
  -n\taccepted (there is no mtab to write)
  -v\tlog more
  -t TYPE\tfuse.veilfs (or veilfs, fuse)

See 'man veilfs' (section MOUNT(8), FSTAB AND MOUNT HELPER) and 'veilfs mount --help'.";

/// A mount helper call, parsed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HelperArgs {
    pub cipherdir: PathBuf,
    pub mountpoint: PathBuf,
    pub options: Vec<String>,
    pub sloppy: bool,
    pub fake: bool,
    pub verbose: u8,
    pub fstype: Option<String>,
}

/// Whether the command line `argv` (program name first) is a mount helper call.
pub fn is_helper_call(argv: &[OsString]) -> bool {
    let program = argv
        .first()
        .and_then(|p| Path::new(p).file_name())
        .and_then(OsStr::to_str);
    if program.is_some_and(|p| HELPER_NAMES.contains(&p)) {
        return true;
    }
    // mount.fuse3's `veilfs SOURCE MOUNTPOINT -o ...`: a first argument that is no command and
    // no flag, but a path.
    let Some(first) = argv.get(1) else {
        return false;
    };
    let bytes = first.as_encoded_bytes();
    argv.len() >= 3
        && !bytes.starts_with(b"-")
        && !is_command(first)
        && (bytes.contains(&b'/') || Path::new(first).exists())
}

fn is_command(word: &OsStr) -> bool {
    let Some(word) = word.to_str() else {
        return false;
    };
    word == "help"
        || Cli::command()
            .get_subcommands()
            .any(|s| s.get_name() == word || s.get_all_aliases().any(|a| a == word))
}

/// Parses the arguments after the program name. `Ok(None)`: `--help` or `--version`, printed.
pub fn parse(args: &[OsString]) -> Result<Option<HelperArgs>, CliError> {
    let usage = |message: String| {
        CliError::new(
            EXIT_USAGE,
            format!("{message} (usage: mount.veilfs CIPHERDIR MOUNTPOINT [-sfnv] [-o OPTIONS] [-t TYPE])"),
        )
    };
    let mut parsed = HelperArgs::default();
    let mut positional: Vec<PathBuf> = Vec::new();
    let mut args = args.iter();
    let mut only_positional = false;
    while let Some(arg) = args.next() {
        let Some(text) = arg
            .to_str()
            .filter(|t| !only_positional && t.starts_with('-'))
        else {
            positional.push(PathBuf::from(arg));
            continue;
        };
        match text {
            "--" => only_positional = true,
            "-h" | "--help" => {
                print_stdout(&format!(
                    "{}\n",
                    super::text::flow(USAGE, super::text::help_width())
                ))?;
                return Ok(None);
            }
            "-V" | "--version" => {
                print_stdout(&format!("veilfs {}\n", env!("CARGO_PKG_VERSION")))?;
                return Ok(None);
            }
            _ if text.starts_with("--") => {
                return Err(usage(format!("unknown option '{text}'")));
            }
            _ => {
                // -sfnv, combinable; -o and -t take a value, attached or next.
                let flags = &text[1..];
                for (i, flag) in flags.char_indices() {
                    match flag {
                        's' => parsed.sloppy = true,
                        'f' => parsed.fake = true,
                        'n' => {}
                        'v' => parsed.verbose = parsed.verbose.saturating_add(1),
                        'o' | 't' => {
                            let attached = &flags[i + 1..];
                            let value = if attached.is_empty() {
                                args.next()
                                    .and_then(|v| v.to_str())
                                    .ok_or_else(|| usage(format!("-{flag} needs a value")))?
                                    .to_owned()
                            } else {
                                attached.to_owned()
                            };
                            if flag == 'o' {
                                parsed.options.push(value);
                            } else {
                                parsed.fstype = Some(value);
                            }
                            break;
                        }
                        other => return Err(usage(format!("unknown option '-{other}'"))),
                    }
                }
            }
        }
    }
    let [cipherdir, mountpoint]: [PathBuf; 2] = positional.try_into().map_err(|p: Vec<_>| {
        usage(format!(
            "expected CIPHERDIR and MOUNTPOINT, got {} argument{}",
            p.len(),
            if p.len() == 1 { "" } else { "s" }
        ))
    })?;
    parsed.cipherdir = cipherdir;
    parsed.mountpoint = mountpoint;
    if let Some(fstype) = &parsed.fstype {
        if !matches!(fstype.as_str(), "fuse.veilfs" | "veilfs" | "fuse") {
            return Err(usage(format!(
                "file system type '{fstype}' is not veilfs's (fuse.veilfs)"
            )));
        }
    }
    Ok(Some(parsed))
}

/// Runs a mount helper call (`argv` with the program name first).
pub fn run(argv: &[OsString]) -> Result<(), CliError> {
    let Some(args) = parse(&argv[1..])? else {
        return Ok(());
    };
    super::log::init(args.verbose, false);
    tracing::debug!(
        "mount helper: {} at {}",
        args.cipherdir.display(),
        args.mountpoint.display()
    );
    // Silent on success, as mount(8) is, unless asked with -v.
    let global = GlobalArgs {
        verbose: args.verbose,
        quiet: args.verbose == 0,
    };
    let mount_args = MountArgs {
        password: PasswordArgs::default(),
        keyfile: KeyfileArg::default(),
        foreground: false,
        idle: None,
        cache_ttl: None,
        options: args.options,
        threads: None,
        transport: None,
        uring_depth: None,
        reverse: Default::default(),
        cipherdir: CipherdirArg {
            path: args.cipherdir,
        },
        mountpoint: args.mountpoint,
        sloppy: args.sloppy,
        fake: args.fake,
    };
    mount::run(mount_args, &global)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn program_names_and_paths_select_the_helper() {
        assert!(is_helper_call(&os(&["/sbin/mount.fuse.veilfs", "a", "b"])));
        assert!(is_helper_call(&os(&["mount.veilfs", "a", "b"])));
        assert!(is_helper_call(&os(&[
            "veilfs",
            "/srv/vault",
            "/mnt",
            "-o",
            "rw"
        ])));
        assert!(!is_helper_call(&os(&["veilfs", "mount", "/a", "/b"])));
        assert!(!is_helper_call(&os(&["veilfs", "help", "mount"])));
        assert!(!is_helper_call(&os(&["veilfs", "--help"])));
        assert!(!is_helper_call(&os(&["veilfs", "info", "/a"])));
        assert!(!is_helper_call(&os(&["veilfs", "/a"])));
        // A mistyped command stays clap's error, not a mount of "moutn".
        assert!(!is_helper_call(&os(&["veilfs", "moutn", "a", "b"])));
    }

    #[test]
    fn mount8_convention_parses() {
        let parsed = parse(&os(&[
            "/srv/v",
            "/mnt/v",
            "-sv",
            "-o",
            "rw,passfile=/p",
            "-t",
            "fuse.veilfs",
            "-n",
            "-oro",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(parsed.cipherdir, Path::new("/srv/v"));
        assert_eq!(parsed.mountpoint, Path::new("/mnt/v"));
        assert_eq!(parsed.options, ["rw,passfile=/p", "ro"]);
        assert!(parsed.sloppy && !parsed.fake);
        assert_eq!(parsed.verbose, 1);
        assert_eq!(parsed.fstype.as_deref(), Some("fuse.veilfs"));
        let parsed = parse(&os(&["-f", "-tveilfs", "--", "-odd", "/m"]))
            .unwrap()
            .unwrap();
        assert!(parsed.fake);
        assert_eq!(parsed.cipherdir, Path::new("-odd"));
    }

    #[test]
    fn bad_helper_calls_are_usage_errors() {
        for bad in [
            &["/a"][..],
            &["/a", "/b", "/c"],
            &["/a", "/b", "-x"],
            &["/a", "/b", "-o"],
            &["/a", "/b", "--bogus"],
            &["/a", "/b", "-t", "ext4"],
        ] {
            let err = parse(&os(bad)).unwrap_err();
            assert_eq!(err.code(), EXIT_USAGE, "{bad:?}: {err}");
        }
    }
}
