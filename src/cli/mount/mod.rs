//! `veilfs mount`: unlock a vault and serve it at a mount point.
//!
//! Everything that can be checked without the password is checked first (CIPHERDIR, the mount
//! point, FUSE itself: [`checks`]), each with its own exit status, so that a script or a user
//! learns about a typo before typing a password. Then the password is read and the vault
//! unlocked in the foreground, where a prompt works.
//!
//! By default the process then forks ([`daemon`]): the child starts a new session, points its
//! standard streams at /dev/null, mounts, and reports "ready" or the mount error through a
//! pipe; the parent exits 0 only once the mount is live, so the next line of a script can use
//! it.
//!
//! In both modes SIGINT, SIGTERM and SIGHUP unmount cleanly ([`serve`]): they are blocked
//! before any thread starts (so every thread inherits the mask) and a dedicated thread waits for
//! them with sigwait, then unmounts, which makes `Session::run` return. A mount point that is
//! busy is detached lazily instead (it disappears now; the process serves open files until they
//! are closed). A second signal exits at once.
//!
//! With `--idle`, a third thread unmounts once no request has come for that long (see
//! [`idle`]). In the foreground under systemd (`$NOTIFY_SOCKET` set), readiness and stopping
//! are reported with sd_notify, so that `Type=notify` units work. Once detached, the daemon
//! logs to syslog. The flags and their `-o` twins are merged in [`options`].

mod checks;
mod daemon;
mod idle;
mod options;
mod serve;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use fuser::Filesystem;

use veilfs::backing::Dir;
use veilfs::config::{Config, CONFIG_NAME};
use veilfs::fs::transport::Transport;
use veilfs::fs::{MountOptions, Mounted, VeilFs};

use super::args::{reworded, CipherdirArg, KeyfileArg, PasswordArgs};
use super::lock::{Purpose, VaultLock};
use super::unlock;
use super::{check_cipherdir, duration, print_stdout, shell_quote, CliError, GlobalArgs};
pub(super) use checks::{check_fuse, check_mountpoint};
pub(super) use options::Settings;
use serve::{ensure_std_fds, raise_open_file_limit, serve};

const MOUNT_HELP: &str = "\
Mount options (-o, comma-separated, may be repeated):
  ro, rw\tread-only or read-write (the default)
  allow_other\tlet other users in (the kernel then checks permissions); for a user other than \
root this needs 'user_allow_other' in /etc/fuse.conf
  nonempty\tmount over a directory that is not empty (hides its contents)
  default_permissions, dev, nodev, suid, nosuid, exec, noexec, atime, noatime, sync, async, \
dirsync, max_read=N\tpassed to the kernel
  passfile=FILE, extpass=CMD, keyfile=FILE, idle=DURATION, cache_ttl=DURATION, threads=N, \
transport=HOW, uring_depth=N\tthe same as --passfile, --extpass, --keyfile, --idle, --cache-ttl, \
--threads, --transport and --uring-depth (for /etc/fstab and systemd mount units: see 'man \
veilfs'); CMD cannot contain a comma, and in /etc/fstab a space in it is written \\040
  reverse, config=FILE, exclude_from=FILE\tthe same as --reverse, --config and \
--exclude-from
  defaults, auto, noauto, user, users, nouser, owner, group, nofail, _netdev, relatime, x-*, \
comment=, user=NAME\taccepted and ignored (for mount(8), /etc/fstab, systemd and desktops)

Exit status (besides 0-6, see 'veilfs --help'):
  7\tthe mount point is missing, not a directory, not empty, already a mount point, or inside \
CIPHERDIR
  8\tFUSE is not available: no /dev/fuse, or (when not root) no fusermount3 (install fuse3), or no \
FUSE over io_uring for --transport io-uring
  9\tthe kernel or fusermount3 refused the mount, or the mount process died before it was ready
  10\tCIPHERDIR is already mounted (or being repaired) by another veilfs process on this machine

Examples:
  veilfs mount ~/Sync/vault ~/Private
  veilfs mount --extpass 'pass show veilfs' -o ro ~/Sync/vault ~/Private
  veilfs mount --foreground ~/Sync/vault ~/Private   # Ctrl-C unmounts
  veilfs mount --idle 10m --keyfile ~/vault.key ~/Sync/vault ~/Private
  veilfs mount --reverse --exclude .cache/ ~ /mnt/encrypted-home
  mount -t fuse.veilfs -o passfile=/etc/veilfs/pass /srv/vault /mnt/v
  veilfs umount ~/Private";

/// `veilfs mount`.
#[derive(Debug, clap::Args)]
#[command(
    about = "Unlock a vault and mount it",
    long_about = "Unlock the vault in CIPHERDIR and mount its plaintext view at MOUNTPOINT (an \
                  empty directory). Returns once the mount is ready; the filesystem is then \
                  served by a background process until 'veilfs umount MOUNTPOINT'.",
    after_help = MOUNT_HELP,
    mut_args(reworded(
        "cipherdir",
        "The vault's backing directory; with --reverse, the plaintext directory (PLAINDIR)"
    ))
)]
pub struct MountArgs {
    #[command(flatten)]
    pub password: PasswordArgs,

    #[command(flatten)]
    pub keyfile: KeyfileArg,

    /// Stay in the foreground and log to stderr; Ctrl-C, SIGTERM or SIGHUP unmounts. Under
    /// systemd ($NOTIFY_SOCKET set) readiness is reported, for Type=notify units
    #[arg(short, long)]
    pub foreground: bool,

    /// Unmount after DURATION without any use (30s, 10m, 1h30m); never while a file is open
    /// in the mount or a process has its working directory there
    #[arg(long, value_name = "DURATION", value_parser = duration::parse_nonzero_duration)]
    pub idle: Option<Duration>,

    /// How long the kernel may trust names, attributes and cached contents before asking again
    /// [default: 1s]. A vault that only this mount changes can take minutes (stat by path, as
    /// git status and make do, then rarely asks); for one a sync tool writes to, keep 1s, or 0
    /// to ask every time
    #[arg(long, value_name = "DURATION", value_parser = duration::parse_duration)]
    pub cache_ttl: Option<Duration>,

    /// Mount options, comma-separated (see below)
    #[arg(short = 'o', value_name = "OPTIONS", action = clap::ArgAction::Append)]
    pub options: Vec<String>,

    /// Threads serving requests through /dev/fuse [default: twice the number of CPUs, 4 to 16];
    /// over io_uring, one thread per CPU serves its queue, and these only what still comes
    /// through /dev/fuse (interrupts, forgets)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub threads: Option<u16>,

    /// How requests reach veilfs: io-uring (FUSE over io_uring, Linux 6.14+, once root has
    /// switched it on), dev-fuse, or auto: io-uring where the kernel offers it [default:
    /// $VEILFS_TRANSPORT, else auto]
    #[arg(long, value_name = "HOW", value_parser = parse_transport)]
    pub transport: Option<Transport>,

    /// Requests each CPU's io_uring queue holds at once [default: 8]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=128))]
    pub uring_depth: Option<u16>,

    #[command(flatten)]
    pub reverse: super::reverse::ReverseMountArgs,

    #[command(flatten)]
    pub cipherdir: CipherdirArg,

    /// Where the plaintext view appears: an empty directory
    pub mountpoint: PathBuf,

    /// Called as mount(8)'s helper with -s: unknown -o options are ignored, with a warning.
    #[arg(skip)]
    pub sloppy: bool,

    /// Called as mount(8)'s helper with -f: check everything, mount nothing.
    #[arg(skip)]
    pub fake: bool,
}

pub fn run(args: MountArgs, global: &GlobalArgs) -> Result<(), CliError> {
    // 1. Everything that needs no password.
    let settings = options::settings(&args)?;
    if super::reverse::wanted(&args.reverse, &settings.options)? {
        return super::reverse::mount(args, settings, global);
    }
    check_cipherdir(&args.cipherdir.path)?;
    let cipherdir = fs::canonicalize(&args.cipherdir.path).map_err(|e| {
        CliError::io(
            format!("cannot resolve {}", args.cipherdir.path.display()),
            e,
        )
    })?;
    // CIPHERDIR is opened once: the config, the lock and the vault are all read through this
    // handle, so swapping the directory meanwhile cannot pair one directory's config with
    // another's files.
    let root = Dir::open_root(&cipherdir)
        .map_err(|e| CliError::io(format!("cannot open {}", cipherdir.display()), e))?;
    let config = Config::load_from(&root).map_err(|e| swapped(e, &args))?;
    let given = unlock::Given {
        keyfile: settings.keyfile.as_deref(),
        ..Default::default()
    };
    let plan = unlock::Plan::prepare(&config, &cipherdir, &given)?;
    let options = settings.options;
    let mountpoint = check_mountpoint(&args.mountpoint, &cipherdir, options.nonempty)?;
    check_fuse(settings.transport.transport)?;
    // One daemon per vault on this machine: refused before the password is asked for. Held for
    // the rest of this function, which in daemon mode the forked child runs to its end (it
    // shares the lock; the parent's exit does not release it).
    let handle = root
        .try_clone()
        .map_err(|e| CliError::io(format!("cannot open {}", cipherdir.display()), e))?;
    let _lock = VaultLock::acquire_at(handle, &cipherdir, Purpose::Mount)?;
    if args.fake {
        // mount(8) -f: everything but the mount itself.
        return Ok(());
    }

    // 2. The password, in the foreground.
    let unlocked = plan.unlock(&config, &settings.password.source(), "Password: ")?;
    let vault = plan.open(root, &config, &unlocked)?;
    drop(unlocked);
    drop(plan);

    let mount_options = MountOptions {
        read_only: options.read_only,
        allow_other: options.allow_other,
        extra: options.extra,
        threads: settings.threads,
        cache_ttl: settings.cache_ttl,
        fsname: cipherdir.to_string_lossy().into_owned(),
        transport: settings.transport.clone(),
    };

    // 3. Mount and serve.
    let start = move |mountpoint: &Path, options: &MountOptions| -> Started<VeilFs> {
        let fs = VeilFs::new(vault)?.tidy_backing(!options.read_only);
        let requests = fs.request_counter();
        Ok((
            veilfs::fs::mount_filesystem(fs, mountpoint, options)?,
            requests,
        ))
    };
    launch(
        start,
        &args,
        &mountpoint,
        &mount_options,
        settings.idle,
        global,
    )
}

/// A mount's session, and the count of requests it serves (for `--idle`).
pub(super) type Started<F> = io::Result<(Mounted<F>, Arc<AtomicU64>)>;

fn parse_transport(text: &str) -> Result<Transport, String> {
    text.parse()
}

/// Mounts what `start` serves at `mountpoint` and serves it, in the foreground or from a daemon
/// as `args` say. `start` holds the keys: in daemon mode, the parent drops it (wiping them)
/// and only the child mounts.
pub(super) fn launch<F: Filesystem>(
    start: impl FnOnce(&Path, &MountOptions) -> Started<F>,
    args: &MountArgs,
    mountpoint: &Path,
    mount_options: &MountOptions,
    idle: Option<Duration>,
    global: &GlobalArgs,
) -> Result<(), CliError> {
    raise_open_file_limit();
    let said = (!global.quiet).then(|| Said {
        cipherdir: args.cipherdir.path.display().to_string(),
        mountpoint: args.mountpoint.display().to_string(),
        verbose: global.verbose > 0,
    });
    if args.foreground {
        ensure_std_fds();
        serve(start, mountpoint, mount_options, idle, None, said)
    } else {
        daemon::daemonize(said, move |ready| {
            serve(start, mountpoint, mount_options, idle, Some(ready), None)
        })
    }
}

/// The one line on standard output that says the mount is ready (and in the foreground, once
/// it is gone), as the user named the two directories; none with -q. A closed standard output
/// does not undo a mount.
struct Said {
    cipherdir: String,
    mountpoint: String,
    verbose: bool,
}

impl Said {
    fn mounted(&self, tail: &str) {
        let _ = print_stdout(&format!(
            "mounted {} at {}{tail}\n",
            self.cipherdir, self.mountpoint
        ));
    }
}

/// A CIPHERDIR that is not a vault, when the mount point is one: the two were given the wrong
/// way round.
fn swapped(err: veilfs::Error, args: &MountArgs) -> CliError {
    let vault_at_mountpoint = matches!(err, veilfs::Error::NotAVault(_))
        && fs::symlink_metadata(args.mountpoint.join(CONFIG_NAME)).is_ok();
    let err = CliError::from(err);
    if !vault_at_mountpoint {
        return err;
    }
    let code = err.code();
    CliError::new(
        code,
        format!(
            "{} is not a veilfs vault, but {} is: the vault comes first (veilfs mount {} {})",
            args.cipherdir.path.display(),
            args.mountpoint.display(),
            shell_quote(&args.mountpoint),
            shell_quote(&args.cipherdir.path)
        ),
    )
}
