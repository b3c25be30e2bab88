//! Mount setup: the options a vault is served with, the fuser session made from them, and
//! serving it through the transport INIT agreed to ([`Mounted`]).

use std::io;
use std::path::Path;
use std::time::Duration;

use fuser::{MountOption, SessionACL};

use crate::vault::Vault;

use super::transport::{Negotiated, Plan, Transport};
use super::VeilFs;

/// How a vault is served.
#[derive(Clone, Debug)]
pub struct MountOptions {
    pub read_only: bool,
    /// Let other users in; turns on the kernel's permission checks (`default_permissions`).
    pub allow_other: bool,
    /// Further `-o` options handed to the kernel verbatim.
    pub extra: Vec<String>,
    /// Worker threads serving requests.
    pub threads: usize,
    /// How long the kernel may trust entries, attributes and cached contents ([`super::TTL`] unless
    /// the user asks): changes made beside the mount show after at most this long.
    pub cache_ttl: Duration,
    /// Source shown in /proc/mounts (the backing directory).
    pub fsname: String,
    /// /dev/fuse or FUSE over io_uring ([`super::transport`]).
    pub transport: Plan,
}

/// Mounts `vault` at `mountpoint`; the caller runs the returned session.
pub fn mount(
    vault: Vault,
    mountpoint: &Path,
    options: &MountOptions,
) -> io::Result<Mounted<VeilFs>> {
    mount_filesystem(
        VeilFs::new(vault)?.tidy_backing(!options.read_only),
        mountpoint,
        options,
    )
}

/// [`mount`] for a [`VeilFs`] the caller made (the CLI keeps its request counter for `--idle`).
pub fn mount_filesystem(
    fs: VeilFs,
    mountpoint: &Path,
    options: &MountOptions,
) -> io::Result<Mounted<VeilFs>> {
    Mounted::new(
        |transport| VeilFs {
            ttl: options.cache_ttl,
            transport,
            ..fs
        },
        mountpoint,
        options,
        &session_config(options),
    )
}

const NOT_OFFERED: &str = "the kernel did not offer FUSE over io_uring at INIT";

/// A mounted session (INIT answered, requests queue in the kernel) and the transport it will
/// be served through.
pub struct Mounted<F: fuser::Filesystem> {
    session: fuser::Session<F>,
    negotiated: Negotiated,
    /// Entries per io_uring queue (io_uring exists on Linux only).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    queue_depth: usize,
}

impl<F: fuser::Filesystem> Mounted<F> {
    /// Mounts the filesystem `make` builds around what INIT will negotiate (its `init` calls
    /// [`Negotiated::offer`]). Fails when `--transport io-uring` cannot be had: before mounting
    /// where this machine cannot, unmounting again where the kernel did not agree at INIT.
    pub fn new(
        make: impl FnOnce(Negotiated) -> F,
        mountpoint: &Path,
        options: &MountOptions,
        config: &fuser::Config,
    ) -> io::Result<Self> {
        let negotiated = Negotiated::new(options.transport.wants_uring()?);
        let mut session = fuser::Session::new(make(negotiated.clone()), mountpoint, config)?;
        if options.transport.transport == Transport::IoUring && !negotiated.granted() {
            let _ = session.unmount();
            return Err(io::Error::new(io::ErrorKind::Unsupported, NOT_OFFERED));
        }
        Ok(Mounted {
            session,
            negotiated,
            queue_depth: options.transport.queue_depth,
        })
    }

    /// Unmounts (which ends [`Mounted::run`]).
    pub fn unmount(&mut self) -> io::Result<()> {
        self.session.unmount()
    }

    /// Something another thread can unmount with.
    pub fn unmount_callable(&mut self) -> fuser::SessionUnmounter {
        self.session.unmount_callable()
    }

    /// Serves requests until the filesystem is unmounted.
    pub fn run(self) -> io::Result<()> {
        if self.negotiated.granted() {
            return self.run_uring();
        }
        if self.negotiated.wanted() {
            tracing::info!("{NOT_OFFERED}; serving through /dev/fuse");
        } else {
            tracing::info!("serving through /dev/fuse");
        }
        self.session.run()
    }

    #[cfg(target_os = "linux")]
    fn run_uring(self) -> io::Result<()> {
        let depth = self.queue_depth;
        self.session.run_with(move |dispatcher| {
            super::uring::start(dispatcher, depth, super::fuse::MAX_REQUEST)
        })
    }

    #[cfg(not(target_os = "linux"))]
    fn run_uring(self) -> io::Result<()> {
        self.session.run()
    }
}

/// The fuser session configuration for `options`, for the forward mount and the reverse view
/// alike: source and subtype, read-only or not, `allow_other`, the kernel flags, the threads.
pub fn session_config(options: &MountOptions) -> fuser::Config {
    let mut config = fuser::Config::default();
    config.mount_options = vec![
        MountOption::FSName(options.fsname.clone()),
        MountOption::Subtype("veilfs".into()),
        if options.read_only {
            MountOption::RO
        } else {
            MountOption::RW
        },
    ];
    // fuser hands the subtype to fusermount3 only; as root it calls mount(2) itself, and the
    // kernel takes the subtype as an option: /proc/mounts then shows `fuse.veilfs` too.
    if nix::unistd::geteuid().is_root() {
        config
            .mount_options
            .push(MountOption::CUSTOM("subtype=veilfs".into()));
    }
    if options.allow_other {
        config.mount_options.push(MountOption::DefaultPermissions);
        config.acl = SessionACL::All;
    }
    config
        .mount_options
        .extend(options.extra.iter().map(|o| kernel_option(o)));
    config.n_threads = Some(options.threads.max(1));
    config.clone_fd = true;
    config
}

/// A `-o` option as fuser's own variant where it has one: as root, fuser turns those into mount
/// flags, while the kernel refuses unknown words in the FUSE option string.
fn kernel_option(option: &str) -> MountOption {
    match option {
        "dev" => MountOption::Dev,
        "nodev" => MountOption::NoDev,
        "suid" => MountOption::Suid,
        "nosuid" => MountOption::NoSuid,
        "exec" => MountOption::Exec,
        "noexec" => MountOption::NoExec,
        "atime" => MountOption::Atime,
        "noatime" => MountOption::NoAtime,
        "sync" => MountOption::Sync,
        "async" => MountOption::Async,
        "dirsync" => MountOption::DirSync,
        "default_permissions" => MountOption::DefaultPermissions,
        other => MountOption::CUSTOM(other.to_owned()),
    }
}
