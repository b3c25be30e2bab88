//! Reverse mode on the command line (format.md, "Reverse mode"): `init --reverse`, `mount
//! --reverse` (and `-o reverse`), and `encrypt-path` / `decrypt-path --reverse`. Each command's
//! own module calls in here when it sees `--reverse`; the view itself is [`veilfs::reverse`].

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use veilfs::backing::{Dir, RenameMode};
use veilfs::config::Config;
use veilfs::fs::MountOptions;
use veilfs::mount_options::ParsedOptions;
use veilfs::reverse::exclude::Exclusions;
use veilfs::reverse::fuse::ReverseFs;
use veilfs::reverse::{ConfigFile, View, REVERSE_CONFIG_NAME};

use super::args::PasswordArgs;
use super::mount::{self, Settings, Started};
use super::unlock;
use super::{check_cipherdir, shell_quote, CliError, GlobalArgs, EXIT_CIPHERDIR, EXIT_USAGE};

/// `--reverse` and `--config`, for `init`, `encrypt-path` and `decrypt-path`.
#[derive(Debug, Default, clap::Args)]
pub struct ReverseConfigArgs {
    /// Reverse mode: the directory given is a plaintext directory (PLAINDIR), whose encrypted
    /// view 'veilfs mount --reverse' shows for backups
    #[arg(long)]
    pub reverse: bool,

    /// With --reverse: the reverse config, when it is not PLAINDIR/.veilfs.reverse.conf
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// The reverse-mode flags of `veilfs mount`.
#[derive(Debug, Default, clap::Args)]
pub struct ReverseMountArgs {
    /// Show a read-only, encrypted view of the plaintext directory PLAINDIR, for backups that
    /// hold only ciphertext: the view is what a vault holding PLAINDIR's files would contain,
    /// and a copy of it mounts as a vault (see 'veilfs init --reverse')
    #[arg(long)]
    pub reverse: bool,

    /// With --reverse: the reverse config, when it is not PLAINDIR/.veilfs.reverse.conf
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// With --reverse: leave out what PATTERN matches (gitignore syntax, matched against the
    /// path from PLAINDIR); may be repeated
    #[arg(long, value_name = "PATTERN")]
    pub exclude: Vec<String>,

    /// With --reverse: leave out what the patterns in FILE match (one a line, gitignore
    /// syntax); may be repeated
    #[arg(long, value_name = "FILE")]
    pub exclude_from: Vec<PathBuf>,
}

/// Where a reverse config is: a name in a directory held open.
pub struct ConfigPlace {
    dir: Dir,
    name: OsString,
    /// As the user gave it (or PLAINDIR/.veilfs.reverse.conf), for messages.
    path: PathBuf,
}

impl ConfigPlace {
    /// The config of PLAINDIR `plaindir`: `config`, or else `.veilfs.reverse.conf` in it.
    fn of(plaindir: &Path, config: Option<&Path>) -> Result<ConfigPlace, CliError> {
        let path = config.map_or_else(|| plaindir.join(REVERSE_CONFIG_NAME), Path::to_path_buf);
        let name = path.file_name().ok_or_else(|| {
            CliError::new(
                EXIT_USAGE,
                format!("--config {}: not a file name", path.display()),
            )
        })?;
        let parent = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let dir = Dir::open_root(parent)
            .map_err(|e| CliError::io(format!("cannot open {}", parent.display()), e))?;
        Ok(ConfigPlace {
            dir,
            name: name.to_owned(),
            path,
        })
    }

    /// Where `init --reverse` writes: refused if a file is there already.
    pub fn new_for_init(
        plaindir: &Path,
        args: &ReverseConfigArgs,
    ) -> Result<ConfigPlace, CliError> {
        check_cipherdir(plaindir)?;
        let place = ConfigPlace::of(plaindir, args.config.as_deref())?;
        if place.dir.exists(&place.name) {
            return Err(CliError::new(
                EXIT_CIPHERDIR,
                format!(
                    "{} exists already: a new reverse config would make the backups made with it \
                     unreadable with the new one; give another --config FILE",
                    place.path.display()
                ),
            ));
        }
        Ok(place)
    }

    /// Writes `config` here, mode 0600: to a temporary file, synced, then renamed to its name
    /// (refused if something took the name meanwhile).
    pub fn save(&self, config: &Config) -> Result<(), CliError> {
        let what = || format!("cannot write {}", self.path.display());
        let mut tmp = self.name.clone();
        tmp.push(".tmp");
        self.dir
            .unlink_if_present(&tmp)
            .and_then(|()| self.dir.write_new(&tmp, &config.to_json(), 0o600, true))
            .map_err(|e| CliError::io(what(), e))?;
        self.dir
            .rename(&tmp, &self.dir, &self.name, RenameMode::NoReplace)
            .and_then(|()| self.dir.sync())
            .map_err(|e| {
                let _ = self.dir.unlink(&tmp);
                CliError::io(what(), e)
            })
    }

    /// Removes the config `init` just wrote, when its recovery key could not be shown.
    pub fn remove(&self) {
        let _ = self.dir.unlink(&self.name);
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the config, which must be format 2 and not in the middle of a key rotation.
    fn load(&self) -> Result<(Config, ConfigFile), CliError> {
        let shown = self.path.display();
        let file = match ConfigFile::read(&self.dir, &self.name) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(CliError::new(
                    EXIT_CIPHERDIR,
                    format!(
                        "{shown} does not exist: create a reverse config with 'veilfs init \
                         --reverse PLAINDIR', or name it with --config FILE"
                    ),
                ))
            }
            result => result.map_err(|e| CliError::io(format!("cannot read {shown}"), e))?,
        };
        let config =
            Config::from_json(&file.bytes).map_err(|e| CliError::from(e).context(&shown))?;
        if config.format() != 2 {
            return Err(CliError::new(
                EXIT_USAGE,
                format!(
                    "{shown} is a format {} config; reverse mode needs format 2",
                    config.format()
                ),
            ));
        }
        if config.rotating_from().is_some() {
            return Err(veilfs::Error::RotationUnfinished.into());
        }
        Ok((config, file))
    }
}

/// What `init --reverse` says after the recovery key: what the view holds, and how to use it.
pub fn next_steps(plaindir: &Path, place: &ConfigPlace) -> String {
    let config = match place.path.file_name() == Some(REVERSE_CONFIG_NAME.as_ref())
        && place.path.parent() == Some(plaindir)
    {
        true => String::new(),
        false => format!("--config {} ", shell_quote(&place.path)),
    };
    format!(
        "The encrypted view of {} holds this config as veilfs.conf, so a backup of the view \
         opens with the password or the recovery key alone.\n\nTo show the view \
         (MOUNTPOINT: any empty directory) and back it up:\n    veilfs mount --reverse \
         {config}{} MOUNTPOINT\n    rsync -a MOUNTPOINT/ BACKUP/\nTo read a backup:\n    \
         veilfs mount BACKUP MOUNTPOINT",
        plaindir.display(),
        shell_quote(plaindir),
    )
}

/// Whether `veilfs mount` was asked for reverse mode (`--reverse` or `-o reverse`); the
/// reverse-mode flags and options without it are a usage error.
pub fn wanted(args: &ReverseMountArgs, options: &ParsedOptions) -> Result<bool, CliError> {
    let reverse = args.reverse || options.reverse;
    let flags = args.config.is_some()
        || options.config.is_some()
        || !args.exclude.is_empty()
        || !args.exclude_from.is_empty()
        || options.exclude_from.is_some();
    if flags && !reverse {
        return Err(CliError::new(
            EXIT_USAGE,
            "--config, --exclude and --exclude-from (and -o config=, exclude_from=) need --reverse",
        ));
    }
    Ok(reverse)
}

/// `veilfs mount --reverse` (or `-o reverse`).
pub(super) fn mount(
    args: mount::MountArgs,
    settings: Settings,
    global: &GlobalArgs,
) -> Result<(), CliError> {
    let options = &settings.options;
    let config = args.reverse.config.clone().or(options.config.clone());
    let mut exclude_from = args.reverse.exclude_from.clone();
    exclude_from.extend(options.exclude_from.clone());
    let plaindir = canonical_dir(&args.cipherdir.path)?;
    let place = ConfigPlace::of(&plaindir, config.as_deref())?;
    let (config, config_file) = place.load()?;
    let exclusions = Exclusions::new(&plaindir, &args.reverse.exclude, &exclude_from)
        .map_err(|message| CliError::new(EXIT_USAGE, message))?;
    let mountpoint = mount::check_mountpoint(&args.mountpoint, &plaindir, options.nonempty)?;
    mount::check_fuse(settings.transport.transport)?;
    if args.fake {
        return Ok(());
    }
    let view = unlock_view(
        &plaindir,
        &place,
        (config, config_file),
        &settings.password,
        settings.keyfile.as_deref(),
        exclusions,
    )?;
    let mount_options = MountOptions {
        read_only: true,
        allow_other: options.allow_other,
        extra: options.extra.clone(),
        threads: settings.threads,
        cache_ttl: settings.cache_ttl,
        fsname: plaindir.to_string_lossy().into_owned(),
        transport: settings.transport.clone(),
    };
    let start = move |mountpoint: &Path, options: &MountOptions| -> Started<ReverseFs> {
        let fs = ReverseFs::new(view);
        let requests = fs.request_counter();
        Ok((
            veilfs::reverse::fuse::mount(fs, mountpoint, options)?,
            requests,
        ))
    };
    mount::launch(
        start,
        &args,
        &mountpoint,
        &mount_options,
        settings.idle,
        global,
    )
}

/// For `encrypt-path` and `decrypt-path`: with `--reverse`, the view of PLAINDIR `plaindir`
/// (asking for the password); without, `None` (and `--config` is a usage error).
pub fn view(
    plaindir: &Path,
    args: &ReverseConfigArgs,
    password: &PasswordArgs,
    keyfile: Option<&Path>,
) -> Result<Option<View>, CliError> {
    check_flags(args)?;
    if !args.reverse {
        return Ok(None);
    }
    let plaindir = canonical_dir(plaindir)?;
    let place = ConfigPlace::of(&plaindir, args.config.as_deref())?;
    let loaded = place.load()?;
    unlock_view(
        &plaindir,
        &place,
        loaded,
        password,
        keyfile,
        Exclusions::none(),
    )
    .map(Some)
}

/// `--config` without `--reverse`: a usage error.
pub fn check_flags(args: &ReverseConfigArgs) -> Result<(), CliError> {
    match (args.reverse, &args.config) {
        (false, Some(_)) => Err(CliError::new(EXIT_USAGE, "--config needs --reverse")),
        _ => Ok(()),
    }
}

fn canonical_dir(dir: &Path) -> Result<PathBuf, CliError> {
    check_cipherdir(dir)?;
    fs::canonicalize(dir).map_err(|e| CliError::io(format!("cannot resolve {}", dir.display()), e))
}

/// Asks for the password and makes the view.
fn unlock_view(
    plaindir: &Path,
    place: &ConfigPlace,
    (config, config_file): (Config, ConfigFile),
    password: &PasswordArgs,
    keyfile: Option<&Path>,
    exclusions: Exclusions,
) -> Result<View, CliError> {
    let given = unlock::Given {
        keyfile,
        ..Default::default()
    };
    let plan = unlock::Plan::prepare(&config, &place.path, &given)?;
    let unlocked = plan.unlock(&config, &password.source(), "Password: ")?;
    let Config::V2(v2) = &config else {
        return Err(CliError::new(
            EXIT_USAGE,
            "reverse mode needs a format 2 config",
        ));
    };
    let root = Dir::open_root(plaindir)
        .map_err(|e| CliError::io(format!("cannot open {}", plaindir.display()), e))?;
    View::new(
        root,
        unlocked.keys(),
        unlocked.master().reverse_key(v2.vault_id()),
        v2.features(),
        config_file,
        exclusions,
    )
    .map_err(|e| CliError::io(format!("cannot open {}", plaindir.display()), e))
}
