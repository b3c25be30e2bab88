//! What the command line does differently on Linux and macOS, in one place: unmounting
//! (umount(2) or fusermount3 on Linux), the names under which the binary acts as mount(8)'s
//! helper, the syslog socket, and the systemd notification socket. (The mount(8)/fstab options it
//! accepts and ignores are in the library, with the `-o` parser: [`veilfs::mount_options`].)
//!
//! Linux is built and tested; the macOS branches follow macFUSE's documentation and are not
//! built or tested here (see the README).

use std::io;
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------------------------------------
// Unmounting

/// The fusermount binary fuser would run: `$FUSERMOUNT_PATH`, else fusermount3 or fusermount in
/// PATH.
#[cfg(target_os = "linux")]
pub fn fusermount_bin() -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    if let Some(path) = std::env::var_os("FUSERMOUNT_PATH") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    ["fusermount3", "fusermount"].iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|candidate| {
                std::fs::metadata(candidate).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0)
            })
    })
}

/// macFUSE mounts and unmounts without a fusermount helper.
#[cfg(not(target_os = "linux"))]
pub fn fusermount_bin() -> Option<PathBuf> {
    None
}

/// Whether this process needs fusermount3 to mount and unmount (Linux, not root).
pub fn needs_fusermount() -> bool {
    cfg!(target_os = "linux") && !nix::unistd::geteuid().is_root()
}

/// Unmounts now, failing with EBUSY while a file is open in the mount or a process has its
/// working directory there. Root: umount(2); another user: `fusermount3 -u`, whose "busy" is
/// turned into EBUSY.
pub fn unmount(mountpoint: &Path) -> io::Result<()> {
    if !needs_fusermount() {
        #[cfg(target_os = "linux")]
        return nix::mount::umount(mountpoint).map_err(io::Error::from);
        #[cfg(not(target_os = "linux"))]
        return nix::mount::unmount(mountpoint, nix::mount::MntFlags::empty())
            .map_err(io::Error::from);
    }
    let Some(bin) = fusermount_bin() else {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "fusermount3 not found",
        ));
    };
    let output = std::process::Command::new(&bin)
        .arg("-u")
        .arg("--")
        .arg(mountpoint)
        .output()?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    if stderr.contains("busy") {
        return Err(io::Error::from_raw_os_error(libc::EBUSY));
    }
    Err(io::Error::other(format!("{}: {stderr}", bin.display())))
}

/// Detaches the mount now (MNT_DETACH); it goes away once nothing uses it.
pub fn lazy_unmount(mountpoint: &Path) -> io::Result<()> {
    if !needs_fusermount() {
        #[cfg(target_os = "linux")]
        return nix::mount::umount2(mountpoint, nix::mount::MntFlags::MNT_DETACH)
            .map_err(io::Error::from);
        // macOS has no lazy unmount; MNT_FORCE is the closest.
        #[cfg(not(target_os = "linux"))]
        return nix::mount::unmount(mountpoint, nix::mount::MntFlags::MNT_FORCE)
            .map_err(io::Error::from);
    }
    let bin = fusermount_bin().unwrap_or_else(|| PathBuf::from("fusermount3"));
    let output = std::process::Command::new(&bin)
        .arg("-u")
        .arg("-z")
        .arg("--")
        .arg(mountpoint)
        .output()?;
    if output.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(
            String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// mount(8) helper

/// Program names under which the binary is mount(8)'s helper: util-linux runs
/// `/sbin/mount.fuse.veilfs` (or `/sbin/mount.veilfs`) for `-t fuse.veilfs` (`-t veilfs`).
/// macOS mount(8) has another convention (`mount_TYPE`), which veilfs does not implement.
#[cfg(target_os = "linux")]
pub const HELPER_NAMES: &[&str] = &["mount.veilfs", "mount.fuse.veilfs"];
#[cfg(not(target_os = "linux"))]
pub const HELPER_NAMES: &[&str] = &[];

// The mount(8), /etc/fstab and systemd options accepted and ignored are in the library, with the
// `-o` parser: `veilfs::mount_options::{TABLE_ONLY_OPTIONS, TABLE_ONLY_VALUE_OPTIONS}`.

// ---------------------------------------------------------------------------------------------
// Logging and systemd

/// Where syslog listens for datagrams: journald and rsyslog bind /dev/log on Linux.
#[cfg(target_os = "linux")]
pub const SYSLOG_SOCKET: &str = "/dev/log";
#[cfg(not(target_os = "linux"))]
pub const SYSLOG_SOCKET: &str = "/var/run/syslog";

/// Sends one datagram to the systemd notification socket `path` (`$NOTIFY_SOCKET`): a path, or
/// on Linux `@name` for a socket in the abstract namespace.
pub fn send_notify(path: &std::ffi::OsStr, message: &[u8]) -> io::Result<()> {
    use std::os::unix::net::UnixDatagram;
    let socket = UnixDatagram::unbound()?;
    #[cfg(target_os = "linux")]
    if let Some(name) = std::os::unix::ffi::OsStrExt::as_bytes(path).strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
        return socket.send_to_addr(message, &addr).map(drop);
    }
    socket.send_to(message, Path::new(path)).map(drop)
}

// ---------------------------------------------------------------------------------------------
// Processes

/// A pipe whose ends are closed on exec (pipe2 on Linux; pipe and fcntl elsewhere, which is
/// race-free only while the process has one thread, as it has where veilfs makes this pipe).
pub fn cloexec_pipe() -> nix::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    #[cfg(target_os = "linux")]
    {
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
    }
    #[cfg(not(target_os = "linux"))]
    {
        use nix::fcntl::{fcntl, FcntlArg, FdFlag};
        let (read_end, write_end) = nix::unistd::pipe()?;
        for end in [&read_end, &write_end] {
            fcntl(end, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
        }
        Ok((read_end, write_end))
    }
}
