//! `veilfs mount`: unlock a vault and serve it at a mount point.
//!
//! Everything that can be checked without the password is checked first (CIPHERDIR, the mount
//! point, FUSE itself), each with its own exit status, so that a script or a user learns about a
//! typo before typing a password. Then the password is read and the vault unlocked in the
//! foreground, where a prompt works.
//!
//! By default the process then forks: the child starts a new session, points its standard streams
//! at /dev/null, mounts, and reports "ready" or the mount error through a pipe; the parent exits
//! 0 only once the mount is live, so the next line of a script can use it. The fork happens
//! while the process has a single thread: fuser starts its worker threads only in
//! `Session::run`, after the fork.
//!
//! In both modes SIGINT, SIGTERM and SIGHUP unmount cleanly: they are blocked before any thread
//! starts (so every thread inherits the mask) and a dedicated thread waits for them with
//! sigwait, then unmounts, which makes `Session::run` return. A mount point that is busy is
//! detached lazily instead (it disappears now; the process serves open files until they are
//! closed). A second signal exits at once.
//!
//! With `--idle`, a third thread unmounts once no request has come for that long (see
//! [`super::idle`]). In the foreground under systemd (`$NOTIFY_SOCKET` set), readiness and
//! stopping are reported with sd_notify, so that `Type=notify` units work. Once detached, the
//! daemon logs to syslog.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, IsTerminal, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use fuser::Filesystem;

use nix::sys::signal::{SigSet, Signal};
use nix::sys::stat::Mode;
use nix::unistd::{ForkResult, Pid};

use veilfs::backing::Dir;
use veilfs::config::{Config, CONFIG_NAME};
use veilfs::fs::{MountOptions, VeilFs};
use veilfs::mount_options::{self, ParsedOptions};

use super::lock::{Purpose, VaultLock};
use super::password::PasswordArgs;
use super::platform::{self, fusermount_bin, lazy_unmount};
use super::unlock;
use super::{
    check_cipherdir, duration, idle, print_stdout, shell_quote, CliError, GlobalArgs, EXIT_FAILURE,
    EXIT_MOUNTPOINT, EXIT_MOUNT_FAILED, EXIT_NO_FUSE, EXIT_USAGE,
};

const MOUNT_HELP: &str = "\
Mount options (-o, comma-separated, may be repeated):
  ro, rw\tread-only or read-write (the default)
  allow_other\tlet other users in (the kernel then checks permissions); for a user other than \
root this needs 'user_allow_other' in /etc/fuse.conf
  nonempty\tmount over a directory that is not empty (hides its contents)
  default_permissions, dev, nodev, suid, nosuid, exec, noexec, atime, noatime, sync, async, \
dirsync, max_read=N\tpassed to the kernel
  passfile=FILE, extpass=CMD, keyfile=FILE, idle=DURATION, cache_ttl=DURATION, threads=N\tthe \
same as --passfile, --extpass, --keyfile, --idle, --cache-ttl and --threads (for /etc/fstab and \
systemd mount units: see 'man veilfs'); CMD cannot contain a comma, and in /etc/fstab a space in \
it is written \\040
  reverse, config=FILE, exclude_from=FILE\tthe same as --reverse, --config and \
--exclude-from
  defaults, auto, noauto, user, users, nouser, owner, group, nofail, _netdev, relatime, x-*, \
comment=, user=NAME\taccepted and ignored (for mount(8), /etc/fstab, systemd and desktops)

Exit status (besides 0-6, see 'veilfs --help'):
  7\tthe mount point is missing, not a directory, not empty, already a mount point, or inside \
CIPHERDIR
  8\tFUSE is not available: no /dev/fuse, or (when not root) no fusermount3; install fuse3
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
    after_help = MOUNT_HELP
)]
pub struct MountArgs {
    #[command(flatten)]
    pub password: PasswordArgs,

    /// The vault's key file, for a vault created with 'init --keyfile'
    #[arg(long, value_name = "FILE")]
    pub keyfile: Option<PathBuf>,

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

    /// Threads serving requests [default: twice the number of CPUs, 4 to 16]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub threads: Option<u16>,

    #[command(flatten)]
    pub reverse: super::reverse::ReverseMountArgs,

    /// The backing directory (the vault); with --reverse, the plaintext directory (PLAINDIR)
    pub cipherdir: PathBuf,

    /// Where the plaintext view appears: an empty directory
    pub mountpoint: PathBuf,

    /// Called as mount(8)'s helper with -s: unknown -o options are ignored, with a warning.
    #[arg(skip)]
    pub sloppy: bool,

    /// Called as mount(8)'s helper with -f: check everything, mount nothing.
    #[arg(skip)]
    pub fake: bool,
}

/// Parses the `-o` arguments (see [`mount_options::parse_options`]); an unknown or malformed
/// option is a usage error.
#[cfg(test)]
pub fn parse_options<S: AsRef<str>>(lists: &[S]) -> Result<ParsedOptions, CliError> {
    parse_options_with(lists, false)
}

/// [`parse_options`]; `sloppy` (mount(8)'s `-s`) ignores unknown options with a warning instead
/// of refusing them.
pub fn parse_options_with<S: AsRef<str>>(
    lists: &[S],
    sloppy: bool,
) -> Result<ParsedOptions, CliError> {
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

/// What to serve and how, once the flags and `-o` options are merged.
pub(super) struct Settings {
    pub password: PasswordArgs,
    pub keyfile: Option<PathBuf>,
    pub idle: Option<Duration>,
    pub cache_ttl: Duration,
    pub threads: usize,
    pub options: ParsedOptions,
}

fn settings(args: &MountArgs) -> Result<Settings, CliError> {
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
        keyfile: either(args.keyfile.clone(), options.keyfile.take(), "keyfile")?,
        idle: either(args.idle, options.idle.take(), "idle")?,
        cache_ttl: either(args.cache_ttl, options.cache_ttl.take(), "cache_ttl")?
            .unwrap_or(veilfs::fs::TTL),
        threads: either(args.threads, options.threads.take(), "threads")?
            .map_or_else(default_threads, usize::from),
        options,
    })
}

pub fn run(args: MountArgs, global: &GlobalArgs) -> Result<(), CliError> {
    // 1. Everything that needs no password.
    let settings = settings(&args)?;
    if super::reverse::wanted(&args.reverse, &settings.options)? {
        return super::reverse::mount(args, settings, global);
    }
    check_cipherdir(&args.cipherdir)?;
    let cipherdir = fs::canonicalize(&args.cipherdir)
        .map_err(|e| CliError::io(format!("cannot resolve {}", args.cipherdir.display()), e))?;
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
    check_fuse()?;
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
pub(super) type Started<F> = io::Result<(fuser::Session<F>, Arc<AtomicU64>)>;

/// Mounts what `start` serves at `mountpoint` and serves it, in the foreground or from a daemon
/// as `args` say.
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
        cipherdir: args.cipherdir.display().to_string(),
        mountpoint: args.mountpoint.display().to_string(),
        verbose: global.verbose > 0,
    });
    if args.foreground {
        ensure_std_fds();
        serve(start, mountpoint, mount_options, idle, None, said)
    } else {
        daemonize(start, mountpoint, mount_options, idle, said)
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
            args.cipherdir.display(),
            args.mountpoint.display(),
            shell_quote(&args.mountpoint),
            shell_quote(&args.cipherdir)
        ),
    )
}

/// Raises the soft limit on open files to the hard one, as gocryptfs does: the daemon holds one
/// backing file per open plaintext file and a directory handle per request in flight, and a
/// desktop's default soft limit (1024) would make every request fail with EMFILE once a program
/// holds a thousand files open through the mount.
fn raise_open_file_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                tracing::debug!("cannot raise the open file limit from {soft} to {hard}: {e}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Checks

/// Checks the mount point; returns its canonical path. Exit status 7 for every problem.
pub fn check_mountpoint(
    path: &Path,
    cipherdir: &Path,
    nonempty: bool,
) -> Result<PathBuf, CliError> {
    let err = |message: String| CliError::new(EXIT_MOUNTPOINT, message);
    let shown = path.display();
    let inside = || {
        err(format!(
            "mount point {shown} is inside CIPHERDIR {}; choose a directory outside it",
            cipherdir.display()
        ))
    };
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // Creating it there would only get it refused next time.
            if resolve_missing(path).starts_with(cipherdir) {
                return Err(inside());
            }
            return Err(err(format!(
                "mount point {shown} does not exist (create it with 'mkdir {}')",
                shell_quote(path)
            )));
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
            return Err(err(format!(
            "mount point {shown} is a stale mount whose veilfs process is gone; unmount it with \
                 'veilfs umount {shown}'"
        )))
        }
        Err(e) => return Err(err(format!("cannot access mount point {shown}: {e}"))),
    };
    if !meta.is_dir() {
        return Err(err(format!("mount point {shown} is not a directory")));
    }
    let canonical = fs::canonicalize(path)
        .map_err(|e| err(format!("cannot resolve mount point {shown}: {e}")))?;
    match find_mount(&canonical) {
        Ok(Some(entry)) => {
            return Err(err(format!(
                "{shown} is already a mount point ({} from {}); unmount it first",
                entry.fstype, entry.source
            )))
        }
        Ok(None) => {}
        // No mountinfo (no /proc): a different device than the parent's means a mount point.
        Err(_) => {
            let parent = canonical.parent().unwrap_or(Path::new("/"));
            if canonical == Path::new("/")
                || fs::metadata(parent).is_ok_and(|p| p.dev() != meta.dev())
            {
                return Err(err(format!(
                    "{shown} is already a mount point; unmount it first"
                )));
            }
        }
    }
    if canonical.starts_with(cipherdir) {
        return Err(inside());
    }
    if !nonempty {
        let mut entries = fs::read_dir(&canonical)
            .map_err(|e| err(format!("cannot read mount point {shown}: {e}")))?;
        if entries.next().is_some() {
            return Err(err(format!(
                "mount point {shown} is not empty (mounting would hide its contents; -o nonempty allows it)"
            )));
        }
    }
    Ok(canonical)
}

/// `path` made absolute through its longest existing ancestor, resolved (symlinks followed); the
/// missing rest appended as it is.
fn resolve_missing(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut missing = Vec::new();
    let mut base = absolute.as_path();
    loop {
        if let Ok(resolved) = fs::canonicalize(base) {
            return missing.iter().rev().fold(resolved, |p, name| p.join(name));
        }
        match (base.parent(), base.file_name()) {
            (Some(parent), Some(name)) => {
                missing.push(name.to_os_string());
                base = parent;
            }
            _ => return absolute,
        }
    }
}

const FUSE_ADVICE: &str = "install fuse3 (apt-get install fuse3)";

/// Checks that this process can mount a FUSE file system: /dev/fuse exists, and a user other than
/// root has fusermount3. Exit status 8 if not.
pub fn check_fuse() -> Result<(), CliError> {
    // macFUSE has device nodes of its own and loads its kernel extension when mounting: nothing
    // to check beforehand (the other platform differences are in platform.rs).
    if !cfg!(target_os = "linux") {
        return Ok(());
    }
    match fs::metadata("/dev/fuse") {
        Ok(meta) if meta.file_type().is_char_device() => {}
        Ok(_) => return Err(CliError::new(EXIT_NO_FUSE, "/dev/fuse is not a character device")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(CliError::new(
                EXIT_NO_FUSE,
                format!(
                    "/dev/fuse does not exist: FUSE is not available; {FUSE_ADVICE}, or load the module \
                     with 'modprobe fuse' (in a container, pass the device in with --device /dev/fuse)"
                ),
            ))
        }
        Err(e) => return Err(CliError::new(EXIT_NO_FUSE, format!("cannot access /dev/fuse: {e}"))),
    }
    if nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    // fuser opens /dev/fuse itself before it tries fusermount3; most systems make it 0666.
    if let Err(e) = nix::unistd::access(
        "/dev/fuse",
        nix::unistd::AccessFlags::R_OK | nix::unistd::AccessFlags::W_OK,
    ) {
        return Err(CliError::new(
            EXIT_NO_FUSE,
            format!("cannot use /dev/fuse: {}; it must be readable and writable by every user (mode 0666)", e.desc()),
        ));
    }
    if fusermount_bin().is_none() {
        return Err(CliError::new(
            EXIT_NO_FUSE,
            format!("fusermount3 is not in PATH (a user other than root needs it to mount); {FUSE_ADVICE}"),
        ));
    }
    Ok(())
}

/// One line of /proc/self/mountinfo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MountEntry {
    pub mountpoint: PathBuf,
    pub fstype: String,
    pub source: String,
}

/// The topmost mount whose mount point is exactly `path` (canonical), from /proc/self/mountinfo.
pub(crate) fn find_mount(path: &Path) -> io::Result<Option<MountEntry>> {
    let text = fs::read("/proc/self/mountinfo")?;
    Ok(parse_mountinfo(&text)
        .into_iter()
        .rev()
        .find(|entry| entry.mountpoint == path))
}

/// Parses mountinfo(5): `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE
/// SUPEROPTIONS`, with space, tab, newline and backslash escaped as `\ooo`.
pub(crate) fn parse_mountinfo(text: &[u8]) -> Vec<MountEntry> {
    let mut entries = Vec::new();
    for line in text.split(|&b| b == b'\n') {
        let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
        let Some(dash) = fields.iter().position(|f| *f == b"-") else {
            continue;
        };
        if fields.len() < 5 || dash < 6 || fields.len() < dash + 3 {
            continue;
        }
        entries.push(MountEntry {
            mountpoint: PathBuf::from(OsStr::from_bytes(&unescape_octal(fields[4]))),
            fstype: String::from_utf8_lossy(&unescape_octal(fields[dash + 1])).into_owned(),
            source: String::from_utf8_lossy(&unescape_octal(fields[dash + 2])).into_owned(),
        });
    }
    entries
}

fn unescape_octal(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        if field[i] == b'\\'
            && i + 3 < field.len()
            && field[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let value = field[i + 1..i + 4]
                .iter()
                .fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
            if let Ok(byte) = u8::try_from(value) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(field[i]);
        i += 1;
    }
    out
}

/// Makes sure file descriptors 0, 1 and 2 are open (on /dev/null if they were closed), so that
/// /dev/fuse or a pipe never lands on one of them.
fn ensure_std_fds() {
    loop {
        match File::options().read(true).write(true).open("/dev/null") {
            Ok(file) if file.as_raw_fd() > 2 => break,
            // Keep it open: it now fills one of 0, 1, 2.
            Ok(file) => std::mem::forget(file),
            Err(_) => break,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Mounting and serving

/// The signals that unmount.
fn unmount_signals() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGHUP);
    set
}

/// A mount error as a CLI error: exit status 8 when FUSE is missing, 9 otherwise.
fn mount_error(mountpoint: &Path, err: io::Error) -> CliError {
    if err.kind() == io::ErrorKind::NotFound && !Path::new("/dev/fuse").exists() {
        return CliError::new(
            EXIT_NO_FUSE,
            format!("/dev/fuse does not exist; {FUSE_ADVICE}"),
        );
    }
    CliError::new(
        EXIT_MOUNT_FAILED,
        format!("cannot mount {}: {err}", mountpoint.display()),
    )
}

/// Mounts and serves until unmounted. `ready` (the daemon's pipe to its parent) gets the outcome
/// of the mount: "ok", or the error.
fn serve<F: Filesystem>(
    start: impl FnOnce(&Path, &MountOptions) -> Started<F>,
    mountpoint: &Path,
    options: &MountOptions,
    idle: Option<Duration>,
    mut ready: Option<ReadyPipe>,
    said: Option<Said>,
) -> Result<(), CliError> {
    // In the foreground, the process systemd started is this one: it may report readiness.
    let foreground = ready.is_none();
    // Again in the daemon: memory locks do not survive a fork.
    if let Some(warning) = super::harden::keys_stay_in_memory().warning() {
        tracing::warn!("{warning}");
    }
    // The daemon relies on umask 0: the kernel hands it modes already masked by the caller's umask.
    nix::sys::stat::umask(Mode::empty());

    // Block the signals before any thread starts, so that every thread inherits the mask and only
    // the signal thread below receives them.
    let signals = unmount_signals();
    if let Err(e) = signals.thread_block() {
        let err = CliError::other(format!("cannot block signals: {e}"));
        if let Some(ready) = ready.take() {
            ready.fail(&err);
        }
        return Err(err);
    }

    let (mut session, requests) = match start(mountpoint, options) {
        Ok(started) => started,
        Err(e) => {
            let err = mount_error(mountpoint, e);
            if let Some(ready) = ready.take() {
                ready.fail(&err);
            }
            return Err(err);
        }
    };
    tracing::info!("mounted {} at {}", options.fsname, mountpoint.display());

    let unmounter = session.unmount_callable();
    let signal_mountpoint = mountpoint.to_path_buf();
    let source = options.fsname.clone();
    let spawned = std::thread::Builder::new()
        .name("veilfs-signals".into())
        .spawn(move || wait_for_signals(signals, unmounter, &signal_mountpoint, &source))
        .and_then(|_| match idle {
            None => Ok(()),
            Some(idle) => {
                let (mountpoint, source) = (mountpoint.to_path_buf(), options.fsname.clone());
                std::thread::Builder::new()
                    .name("veilfs-idle".into())
                    .spawn(move || idle::watch(requests, idle, mountpoint, source))
                    .map(drop)
            }
        });
    if let Err(e) = spawned {
        let err = CliError::other(format!("cannot start a thread: {e}"));
        if let Some(ready) = ready.take() {
            ready.fail(&err);
        }
        let _ = session.unmount();
        return Err(err);
    }

    // The mount is live: `Session::new` has answered the kernel's INIT, and requests queue in the
    // kernel until `run` serves them.
    if let Some(ready) = ready.take() {
        ready.succeed();
    }
    if foreground {
        sd_notify(&format!("READY=1\nSTATUS=Serving {}", mountpoint.display()));
        if let Some(said) = &said {
            // Under systemd, stopping the service unmounts; on a terminal, Ctrl-C does.
            let interactive =
                io::stdin().is_terminal() && std::env::var_os("NOTIFY_SOCKET").is_none();
            said.mounted(if interactive { "; Ctrl-C unmounts" } else { "" });
        }
    }
    let result = session.run();
    tracing::info!("unmounted {}", mountpoint.display());
    if let (true, Some(said)) = (foreground, &said) {
        let _ = print_stdout(&format!("unmounted {}\n", said.mountpoint));
    }
    result.map_err(|e| CliError::other(format!("serving {} failed: {e}", mountpoint.display())))
}

/// The signal thread: the first signal unmounts (lazily when the mount point is busy), which
/// ends `Session::run`; a second one exits at once.
fn wait_for_signals(
    signals: SigSet,
    mut unmounter: fuser::SessionUnmounter,
    mountpoint: &Path,
    source: &str,
) {
    let Ok(signal) = signals.wait() else { return };
    tracing::info!("{signal}: unmounting {}", mountpoint.display());
    sd_notify("STOPPING=1");
    let busy = match unmounter.unmount() {
        // As a user other than root, fuser runs `fusermount3 -u` and ignores its failure. Only
        // this mount counts: under a systemd automount, an autofs mount stays below it.
        Ok(()) => find_mount(mountpoint)
            .is_ok_and(|m| m.is_some_and(|m| m.fstype.starts_with("fuse") && m.source == source)),
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => true,
        Err(e) => {
            tracing::error!("cannot unmount {}: {e}", mountpoint.display());
            false
        }
    };
    if busy {
        tracing::warn!(
            "{} is busy; detaching it now, it is served until the last open file is closed",
            mountpoint.display()
        );
        if let Err(e) = lazy_unmount(mountpoint) {
            tracing::error!("cannot detach {}: {e}", mountpoint.display());
        }
    }
    if let Ok(signal) = signals.wait() {
        tracing::warn!("{signal} again: exiting without waiting for the mount to be released");
        std::process::exit(128 + signal as i32);
    }
}

/// Tells systemd about the service's state (sd_notify(3)), when it asked for it by setting
/// `$NOTIFY_SOCKET`. Failures are logged and otherwise ignored.
fn sd_notify(state: &str) {
    let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    if let Err(e) = platform::send_notify(&socket, state.as_bytes()) {
        tracing::warn!(
            "cannot notify systemd through {}: {e}",
            Path::new(&socket).display()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Daemon mode

/// The child's end of the readiness pipe. One line: `ok`, or `err CODE MESSAGE`.
struct ReadyPipe(File);

impl ReadyPipe {
    fn succeed(mut self) {
        // The parent may be gone (killed while waiting); the mount stays, so does this process.
        let _ = self.0.write_all(b"ok\n");
    }

    fn fail(mut self, err: &CliError) {
        let _ = self
            .0
            .write_all(format!("err {} {err}\n", err.code()).as_bytes());
    }
}

/// Forks; the child mounts and serves, the parent waits for the child's word and returns it.
fn daemonize<F: Filesystem>(
    start: impl FnOnce(&Path, &MountOptions) -> Started<F>,
    mountpoint: &Path,
    options: &MountOptions,
    idle: Option<Duration>,
    said: Option<Said>,
) -> Result<(), CliError> {
    let threads = fs::read_dir("/proc/self/task").map_or(1, |tasks| tasks.count());
    if threads > 1 {
        return Err(CliError::other(format!(
            "internal error: cannot fork with {threads} threads running (use --foreground)"
        )));
    }
    let (read_end, write_end) =
        platform::cloexec_pipe().map_err(|e| CliError::io("cannot create a pipe", e.into()))?;
    let _ = io::stdout().flush();
    let _ = io::stderr().flush();

    // SAFETY: the process has a single thread here (checked above: the password prompt, the KDF
    // and the extpass command start none, and fuser starts its threads only in `Session::run`,
    // which the child calls after the fork), so the child may run any code, not only
    // async-signal-safe functions.
    match unsafe { nix::unistd::fork() } {
        Err(e) => Err(CliError::io("cannot fork", e.into())),
        Ok(ForkResult::Parent { child }) => {
            drop(write_end);
            // The keys it holds are wiped.
            drop(start);
            wait_until_ready(read_end, child, said)
        }
        Ok(ForkResult::Child) => {
            drop(read_end);
            let ready = ReadyPipe(File::from(write_end));
            if let Err(err) = detach() {
                ready.fail(&err);
                return Err(err);
            }
            serve(start, mountpoint, options, idle, Some(ready), None)
        }
    }
}

/// The child's side of daemonizing: a new session without a terminal, / as its directory (so
/// it holds no other mount busy), and its standard streams on /dev/null.
fn detach() -> Result<(), CliError> {
    nix::unistd::setsid().map_err(|e| CliError::io("setsid", e.into()))?;
    nix::unistd::chdir("/").map_err(|e| CliError::io("cannot change directory to /", e.into()))?;
    let null: OwnedFd = File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| CliError::io("cannot open /dev/null", e))?
        .into();
    nix::unistd::dup2_stdin(&null)
        .and_then(|()| nix::unistd::dup2_stdout(&null))
        .and_then(|()| nix::unistd::dup2_stderr(&null))
        .map_err(|e| {
            CliError::io(
                "cannot redirect the standard streams to /dev/null",
                e.into(),
            )
        })?;
    // Only the process systemd started may report to it; the daemon is another one. (Safe here:
    // the child has a single thread until it mounts.)
    std::env::remove_var("NOTIFY_SOCKET");
    super::log::to_syslog();
    Ok(())
}

/// The parent's side: reads the child's line; `ok` means the mount is live.
fn wait_until_ready(read_end: OwnedFd, child: Pid, said: Option<Said>) -> Result<(), CliError> {
    let mut line = Vec::new();
    let mut pipe = File::from(read_end);
    let mut byte = [0u8; 1];
    loop {
        match pipe.read(&mut byte) {
            Ok(0) => break,
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) => line.push(byte[0]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CliError::io("cannot read from the mount process", e)),
        }
    }
    let line = String::from_utf8_lossy(&line).into_owned();
    if line == "ok" {
        if let Some(said) = said {
            let process = format!(" (process {child})");
            said.mounted(if said.verbose { &process } else { "" });
        }
        return Ok(());
    }
    // The child failed: reap it.
    let status = nix::sys::wait::waitpid(child, None);
    if let Some(rest) = line.strip_prefix("err ") {
        let (code, message) = rest.split_once(' ').unwrap_or((rest, ""));
        let code = code
            .parse::<u8>()
            .ok()
            .filter(|&c| c != 0)
            .unwrap_or(EXIT_FAILURE);
        return Err(CliError::new(code, message));
    }
    Err(CliError::new(
        EXIT_MOUNT_FAILED,
        format!(
            "the mount process exited before the mount was ready ({})",
            describe_status(status)
        ),
    ))
}

fn describe_status(status: nix::Result<nix::sys::wait::WaitStatus>) -> String {
    use nix::sys::wait::WaitStatus;
    match status {
        Ok(WaitStatus::Exited(_, code)) => format!("exit status {code}"),
        Ok(WaitStatus::Signaled(_, signal, _)) => format!("killed by {signal}"),
        Ok(other) => format!("{other:?}"),
        Err(e) => format!("{e}"),
    }
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
        ] {
            let err = parse_options(&[bad]).unwrap_err();
            assert_eq!(err.code(), EXIT_USAGE, "{bad}: {err}");
        }
    }

    #[test]
    fn mountinfo_parses_escapes_and_optional_fields() {
        let text = b"22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
                     90 22 0:50 / /tmp/a\\040b rw,nosuid,nodev shared:2 master:3 - fuse /srv/c\\134d rw,user_id=0\n";
        let entries = parse_mountinfo(text);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].mountpoint, Path::new("/tmp/a b"));
        assert_eq!(entries[1].fstype, "fuse");
        assert_eq!(entries[1].source, "/srv/c\\d");
        assert_eq!(entries[0].fstype, "ext4");
    }

    #[test]
    fn the_root_is_a_mount_point() {
        assert!(find_mount(Path::new("/")).unwrap().is_some());
    }
}
