//! Issue 11's hostile sync peer: someone who can write to the backing directory (a Syncthing
//! peer, a sync provider, an S3 bucket) plants entries in `cipher` while the vault is mounted,
//! and must not be able to
//!
//! - make writes through the mount land outside the vault, by swapping a backing subdirectory
//!   or CIPHERDIR itself for a symlink (with a shell's cwd inside, with `--cache-ttl 5m`);
//! - freeze the mount, `fsck`, `info` or `mount` with a FIFO or a socket where veilfs expects a
//!   small regular file (a long name's sidecar, `veilfs.diriv`, a sync tool's copy of a sidecar,
//!   `veilfs.conf`, a key file; `/dev/zero` as key file);
//! - rewrite the files veilfs keeps for itself because they are group- or world-writable (the
//!   daemon must not inherit umask 0);
//! - mount one vault twice on one machine.
//!
//! Every operation that could block runs in a child process under a deadline ([`bounded`]): a
//! process stuck in a FUSE request is in uninterruptible sleep and ignores SIGKILL, so the test
//! never waits for it; when something blocked, the daemon (which waits on the FIFO
//! interruptibly) is killed at the end of the test ([`Watched`]), which releases the stuck
//! processes with ENOTCONN and lets the mount be unmounted.

mod common;

use std::cell::Cell;
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::ops::Deref;
use std::os::unix::fs::{symlink, DirBuilderExt, FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::{umask, Mode};
use nix::unistd::{mkfifo, Pid};

/// How long `ls`, `cat`, a create, `info` or a refused `mount` may take.
const QUICK: Duration = Duration::from_secs(10);
/// How long `fsck` of a small vault may take.
const FSCK_LIMIT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// Running what may block

/// A child process whose stdout and stderr are being read in the background.
struct Running {
    child: Child,
    stdout: mpsc::Receiver<Vec<u8>>,
    stderr: mpsc::Receiver<Vec<u8>>,
}

impl Running {
    /// Starts `cmd` with its output captured (stdin as the caller set it).
    fn start(cmd: &mut Command) -> Running {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        Running {
            stdout: drain(child.stdout.take().unwrap()),
            stderr: drain(child.stderr.take().unwrap()),
            child,
        }
    }

    /// Its output once it exits, or `None` when it is still running after `limit`: then it is
    /// killed and reaped by a background thread, never waited for here.
    fn within(mut self, limit: Duration) -> Option<Output> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for a child") {
                let rest = Duration::from_secs(5);
                return Some(Output {
                    status,
                    stdout: self.stdout.recv_timeout(rest).unwrap_or_default(),
                    stderr: self.stderr.recv_timeout(rest).unwrap_or_default(),
                });
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let mut child = self.child;
                thread::spawn(move || child.wait());
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

fn drain(mut pipe: impl std::io::Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        let _ = tx.send(bytes);
    });
    rx
}

/// Runs `cmd` with stdin closed for at most `limit`; `None` when it blocked (see
/// [`Running::within`]).
fn bounded(cmd: &mut Command, limit: Duration) -> Option<Output> {
    Running::start(cmd.stdin(Stdio::null())).within(limit)
}

/// A command's status and output, for messages.
fn describe(output: &Output) -> String {
    format!(
        "{}; stdout: {:?}; stderr: {:?}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A shell command, the way a user types it.
fn sh(script: &str) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(script);
    cmd
}

/// A command as a user would type it, for messages.
fn command_line(cmd: &Command) -> String {
    let mut words = vec![cmd.get_program().to_string_lossy().into_owned()];
    words.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    words.join(" ")
}

/// `program ARGS... PATH`.
fn on(program: &str, args: &[&str], path: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args).arg(path);
    cmd
}

/// A mounted vault whose daemon is killed when the test ends if a command run through
/// [`Watched::run`] blocked: that releases the processes stuck in FUSE requests (ENOTCONN), so
/// that the vault can be unmounted and nothing is left hanging.
struct Watched {
    vault: TestVault,
    blocked: Cell<bool>,
}

/// A vault mounted with `--cache-ttl 0`: every command reaches the daemon, and what was planted
/// behind the mount, at once (no waiting out the kernel's cache time).
fn uncached_vault() -> TestVault {
    let vault = TestVault::unmounted();
    vault.mount_with(&["--cache-ttl", "0"]);
    vault
}

impl Watched {
    fn new(vault: TestVault) -> Watched {
        Watched {
            vault,
            blocked: Cell::new(false),
        }
    }

    fn run(&self, cmd: &mut Command, limit: Duration) -> Option<Output> {
        self.finish(Running::start(cmd.stdin(Stdio::null())), limit)
    }

    fn finish(&self, running: Running, limit: Duration) -> Option<Output> {
        let output = running.within(limit);
        if output.is_none() {
            self.blocked.set(true);
        }
        output
    }
}

impl Deref for Watched {
    type Target = TestVault;
    fn deref(&self) -> &TestVault {
        &self.vault
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        if !self.blocked.get() {
            return;
        }
        for pid in self.vault.daemon_pids() {
            eprintln!("killing veilfs daemon {pid}: a command blocked on its mount");
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
        wait_for(Duration::from_secs(5), || {
            self.vault.daemon_pids().is_empty()
        });
    }
}

// ---------------------------------------------------------------------------------------------
// The backing directory

/// The backing path of plaintext path `plain`, from `veilfs encrypt-path` (run before anything
/// is planted: it reads the backing directory itself).
fn backing_of(vault: &TestVault, plain: &str) -> PathBuf {
    let output = run(veilfs()
        .arg("encrypt-path")
        .arg("--passfile")
        .arg(vault.passfile())
        .arg(vault.backing_path())
        .arg(plain));
    assert_success(&output, "veilfs encrypt-path");
    let relative = String::from_utf8(output.stdout).unwrap();
    vault.backing_path().join(relative.trim_end())
}

/// Every path under `dir`, relative to it; symlinks are listed, not followed.
fn tree(dir: &Path) -> BTreeSet<PathBuf> {
    let mut found = BTreeSet::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        let Ok(entries) = fs::read_dir(dir.join(&relative)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = relative.join(entry.file_name());
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                pending.push(path.clone());
            }
            found.insert(path);
        }
    }
    found
}

fn plant_fifo(path: &Path) {
    mkfifo(path, Mode::from_bits_truncate(0o644))
        .unwrap_or_else(|e| panic!("mkfifo {}: {e}", path.display()));
}

/// What a hostile peer does to `backing` (a backing directory, or CIPHERDIR itself): moves it to
/// a directory outside the vault, and puts at its place a symlink to another, empty, outside
/// directory.
struct Swapped {
    /// Where the real directory went: `<scratch>/outside-moved/<its name>`.
    moved: PathBuf,
    /// The symlink's target: `<scratch>/outside-target`.
    target: PathBuf,
    moved_before: BTreeSet<PathBuf>,
}

impl Swapped {
    fn swap(scratch: &Path, backing: &Path) -> Swapped {
        let outside = scratch.join("outside-moved");
        let target = scratch.join("outside-target");
        fs::create_dir(&outside).unwrap();
        fs::create_dir(&target).unwrap();
        let moved = outside.join(backing.file_name().unwrap());
        fs::rename(backing, &moved).unwrap();
        symlink(&target, backing).unwrap();
        Swapped {
            moved_before: tree(&moved),
            moved,
            target,
        }
    }

    /// What appeared in the symlink's target.
    fn in_target(&self) -> BTreeSet<PathBuf> {
        tree(&self.target)
    }

    /// What appeared in the moved directory.
    fn in_moved(&self) -> BTreeSet<PathBuf> {
        &tree(&self.moved) - &self.moved_before
    }
}

/// What a shell did after the swap: whether `echo > newfile` and `mkdir newdir` succeeded.
struct Creates {
    file: bool,
    dir: bool,
    output: Output,
}

/// A shell in `cwd` that waits for a line on stdin, then runs `echo written > {prefix}newfile`
/// and `mkdir {prefix}newdir` and says how each went. Started before the attack, as a user's
/// shell is: its cwd is a reference to the directory taken before the peer acted.
fn waiting_shell(cwd: &Path, prefix: &str) -> (Running, std::process::ChildStdin) {
    let script = r#"
        read -r go
        if echo written > "${1}newfile"; then echo 'create: ok'; else echo 'create: failed'; fi
        if mkdir "${1}newdir"; then echo 'mkdir: ok'; else echo 'mkdir: failed'; fi
    "#;
    let mut running = Running::start(
        sh(script)
            .arg("sh")
            .arg(prefix)
            .current_dir(cwd)
            .stdin(Stdio::piped()),
    );
    let stdin = running.child.stdin.take().unwrap();
    (running, stdin)
}

/// Starts a shell in `cwd`, lets the peer swap `backing` for a symlink, then has the shell
/// create `{prefix}newfile` and `{prefix}newdir`. Panics when the shell blocks.
fn create_after_swap(
    vault: &Watched,
    cwd: &Path,
    prefix: &str,
    backing: &Path,
) -> (Creates, Swapped) {
    let (shell, mut go) = waiting_shell(cwd, prefix);
    // The user just looked around: the kernel's attributes of the root and of `cwd` are fresh
    // (within the 1 s TTL), as in everyday use. Were they stale, today's daemon would report
    // the swapped root as a symlink and the kernel would fail the whole mount with EIO.
    fs::metadata(vault.mount_path()).unwrap();
    fs::metadata(cwd).unwrap();
    let swapped = Swapped::swap(vault.scratch(), backing);
    go.write_all(b"go\n").unwrap();
    drop(go);
    let output = vault
        .finish(shell, QUICK)
        .unwrap_or_else(|| panic!("creating {prefix}newfile in {} blocked", cwd.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let creates = Creates {
        file: stdout.contains("create: ok"),
        dir: stdout.contains("mkdir: ok"),
        output,
    };
    (creates, swapped)
}

/// Nothing reached either outside directory, and both creates failed.
fn assert_nothing_escaped_and_creates_failed(creates: &Creates, swapped: &Swapped) {
    let escaped: Vec<_> = swapped
        .in_target()
        .into_iter()
        .map(|p| swapped.target.join(p))
        .chain(
            swapped
                .in_moved()
                .into_iter()
                .map(|p| swapped.moved.join(p)),
        )
        .collect();
    assert!(
        escaped.is_empty(),
        "writes through the mount escaped the vault: {escaped:?} (shell: {})",
        describe(&creates.output)
    );
    assert!(
        !creates.file && !creates.dir,
        "a create in a backing directory swapped for a symlink must fail with an error, but \
         file created: {}, directory created: {} (shell: {})",
        creates.file,
        creates.dir,
        describe(&creates.output)
    );
}

// ---------------------------------------------------------------------------------------------
// 1-3: writes escaping the vault

/// A shell whose cwd is `M/sub` (the directory reference it holds, like an open directory fd);
/// the peer moves `sub`'s backing directory out of the vault and puts a symlink to another
/// outside directory at its place; `echo > newfile` and `mkdir newdir` in that shell must fail,
/// and neither outside directory may gain anything.
#[test]
fn escape_subdir_swapped_for_symlink() {
    let vault = Watched::new(TestVault::new());
    let sub = vault.mount_path().join("sub");
    fs::create_dir(&sub).unwrap();
    let backing = backing_of(&vault, "sub");
    let (creates, swapped) = create_after_swap(&vault, &sub, "", &backing);
    assert_nothing_escaped_and_creates_failed(&creates, &swapped);
}

/// As [`escape_subdir_swapped_for_symlink`], on a mount with `--cache-ttl 5m`, creating by path
/// (`M/sub/newfile`, `M/sub/newdir`): the kernel still trusts its entry for `sub`.
#[test]
fn escape_subdir_swapped_for_symlink_with_long_cache_ttl() {
    let vault = TestVault::unmounted();
    vault.mount_with(&["--cache-ttl", "5m"]);
    let vault = Watched::new(vault);
    fs::create_dir(vault.mount_path().join("sub")).unwrap();
    let backing = backing_of(&vault, "sub");
    let (creates, swapped) = create_after_swap(&vault, vault.mount_path(), "sub/", &backing);
    assert_nothing_escaped_and_creates_failed(&creates, &swapped);
}

/// The peer moves CIPHERDIR itself away and puts a symlink to an empty outside directory at its
/// place; then `M/newfile` and `M/newdir` are created. They may succeed (in the real vault,
/// which the daemon holds open) or fail, but nothing may appear in the outside directory.
#[test]
fn escape_cipherdir_swapped_for_symlink() {
    let vault = Watched::new(TestVault::new());
    let (creates, swapped) =
        create_after_swap(&vault, vault.mount_path(), "", vault.backing_path());
    let escaped = swapped.in_target();
    assert!(
        escaped.is_empty(),
        "with CIPHERDIR swapped for a symlink, writes landed outside the vault in {}: \
         {escaped:?} (shell: {})",
        swapped.target.display(),
        describe(&creates.output)
    );
    // The daemon holds CIPHERDIR open: what succeeded is in the real vault, wherever it now is.
    let in_vault = swapped.in_moved();
    assert!(
        !(creates.file || creates.dir) || !in_vault.is_empty(),
        "the creates succeeded but nothing appeared in the real (moved) vault {} \
         (shell: {})",
        swapped.moved.display(),
        describe(&creates.output)
    );
    eprintln!(
        "CIPHERDIR swapped: file created {}, directory created {}; new in the real vault: \
         {in_vault:?}; shell: {}",
        creates.file,
        creates.dir,
        describe(&creates.output)
    );
}

// ---------------------------------------------------------------------------------------------
// 4: planted FIFOs and sockets

/// The hash part of a long-name entry a peer without the key made up: 43 base64url characters.
fn made_up_hash() -> String {
    format!("{:_<43}", "planted-by-a-hostile-peer")
}

/// What a peer planted in the backing directory of `dir` (see [`assert_plant_blocks_nothing`]).
struct Planted {
    /// The backing name `fsck` must mention.
    name: String,
    /// A command that touches the entry made bad through the mount: it may fail, not block.
    own_entry: Option<Command>,
}

/// Where a plant goes: the vault, and the backing paths of `dir` and of its entries.
struct Site<'a> {
    vault: &'a TestVault,
    dir: PathBuf,
    inner: PathBuf,
    victim: PathBuf,
}

/// Mounts a vault holding `dir/sibling.txt`, `dir/victim.txt` and `dir/inner/`, lets `plant`
/// plant something in the backing directory, then checks that `ls` of the root and of `dir`,
/// and `cat dir/sibling.txt`, return (within 10 s) what they should, that touching the planted
/// entry's own plaintext returns, and that `fsck` finishes within 30 s naming the plant.
fn assert_plant_blocks_nothing(plant: impl FnOnce(&Site) -> Planted) {
    const SIBLING: &[u8] = b"a sibling the plant must not make unreadable\n";
    let vault = Watched::new(uncached_vault());
    let m = vault.mount_path();
    fs::create_dir(m.join("dir")).unwrap();
    fs::create_dir(m.join("dir/inner")).unwrap();
    fs::write(m.join("dir/sibling.txt"), SIBLING).unwrap();
    fs::write(m.join("dir/victim.txt"), b"victim").unwrap();
    let site = Site {
        vault: &vault,
        dir: backing_of(&vault, "dir"),
        inner: backing_of(&vault, "dir/inner"),
        victim: backing_of(&vault, "dir/victim.txt"),
    };
    let mut planted = plant(&site);

    let mut failures = Vec::new();
    let mut check = |mut cmd: Command, ok: &dyn Fn(&Output) -> bool| {
        let what = command_line(&cmd);
        match vault.run(&mut cmd, QUICK) {
            None => failures.push(format!("`{what}` blocked (still running after {QUICK:?})")),
            Some(out) if !ok(&out) => {
                failures.push(format!("`{what}` returned wrongly: {}", describe(&out)))
            }
            Some(_) => {}
        }
    };
    let dir = m.join("dir");
    check(on("ls", &["-la"], m), &|o| o.status.success());
    check(on("ls", &["-la"], &dir), &|o| {
        String::from_utf8_lossy(&o.stdout).contains("sibling.txt")
    });
    if let Some(own) = planted.own_entry.take() {
        check(own, &|_| true);
    }
    check(on("cat", &[], &dir.join("sibling.txt")), &|o| {
        o.status.success() && o.stdout == SIBLING
    });

    let fsck = bounded_fsck(&vault);
    match fsck {
        None => failures.push(format!(
            "`veilfs fsck` blocked (still running after {FSCK_LIMIT:?})"
        )),
        Some(out) => {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            if !text.contains(&planted.name) {
                failures.push(format!(
                    "`veilfs fsck` does not name the planted {}: {}",
                    planted.name,
                    describe(&out)
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "a planted entry must make only itself fail:\n{}",
        failures.join("\n")
    );
}

/// A regular file named like a long-name entry, made up without the key, and a FIFO named like
/// that entry followed by `suffix`.
fn plant_longname_entry_and_fifo(site: &Site<'_>, suffix: &str) -> Planted {
    let entry = format!("veilfs.longname.{}", made_up_hash());
    fs::write(site.dir.join(&entry), b"made up by a peer without the key").unwrap();
    let fifo = format!("{entry}{suffix}");
    plant_fifo(&site.dir.join(&fifo));
    Planted {
        name: fifo,
        own_entry: None,
    }
}

/// `veilfs fsck` of `vault`'s backing directory, or `None` if it is still running after
/// [`FSCK_LIMIT`].
fn bounded_fsck(vault: &TestVault) -> Option<Output> {
    bounded(
        veilfs()
            .arg("fsck")
            .arg("--passfile")
            .arg(vault.passfile())
            .arg(vault.backing_path()),
        FSCK_LIMIT,
    )
}

/// (a) A FIFO named like a long name's sidecar, next to a regular file named like its entry.
#[test]
fn planted_fifo_as_longname_sidecar_blocks_nothing() {
    assert_plant_blocks_nothing(|site| plant_longname_entry_and_fifo(site, ".name"));
}

/// (b) A subdirectory replaced by the peer the way sync tools write (a new directory under a
/// temporary name, renamed over the old one once that is gone), with a FIFO as its
/// `veilfs.diriv`: a new backing inode, whose IV the daemon has never read.
#[test]
fn planted_fifo_as_diriv_blocks_nothing() {
    assert_plant_blocks_nothing(|site| {
        let fresh = site.dir.join(".syncthing.inner.tmp");
        fs::create_dir(&fresh).unwrap();
        plant_fifo(&fresh.join("veilfs.diriv"));
        fs::remove_dir_all(&site.inner).unwrap();
        fs::rename(&fresh, &site.inner).unwrap();
        Planted {
            name: site.inner.file_name().unwrap().to_str().unwrap().to_owned(),
            own_entry: Some(on(
                "ls",
                &["-la"],
                &site.vault.mount_path().join("dir/inner"),
            )),
        }
    });
}

/// (c) A FIFO named like Syncthing's conflict copy of a sidecar, next to a long-name entry
/// without a sidecar (so that the copy is where its name would be looked for).
#[test]
fn planted_fifo_as_conflict_copy_of_a_sidecar_blocks_nothing() {
    assert_plant_blocks_nothing(|site| {
        plant_longname_entry_and_fifo(site, ".sync-conflict-20261201-101010-ABCDEFG.name")
    });
}

/// (d) A socket where a file's backing file was.
#[test]
fn planted_socket_blocks_nothing() {
    assert_plant_blocks_nothing(|site| {
        fs::remove_file(&site.victim).unwrap();
        drop(UnixListener::bind(&site.victim).unwrap()); // the socket file stays
        assert!(fs::symlink_metadata(&site.victim)
            .unwrap()
            .file_type()
            .is_socket());
        Planted {
            name: site
                .victim
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned(),
            own_entry: Some(on(
                "cat",
                &[],
                &site.vault.mount_path().join("dir/victim.txt"),
            )),
        }
    });
}

// ---------------------------------------------------------------------------------------------
// 5: config and key files

/// Runs each command (at most 10 s) and collects what is wrong: blocking, exiting 0, or a
/// message not naming `name`.
fn refusals_naming(name: &str, commands: Vec<(String, Command)>) -> Vec<String> {
    let mut failures = Vec::new();
    for (what, mut cmd) in commands {
        match bounded(&mut cmd, QUICK) {
            None => failures.push(format!("{what}: blocked (still running after {QUICK:?})")),
            Some(out) if out.status.success() || !stderr_of(&out).contains(name) => {
                failures.push(format!(
                    "{what}: expected a nonzero exit and a message naming {name}, got {}",
                    describe(&out)
                ))
            }
            Some(_) => {}
        }
    }
    failures
}

fn mount_command(vault: &TestVault, extra: &[&Path]) -> Command {
    let mut cmd = veilfs();
    cmd.arg("mount")
        .arg("--passfile")
        .arg(vault.passfile())
        .args(extra)
        .arg(vault.backing_path())
        .arg(vault.mount_path());
    cmd
}

/// `veilfs.conf` replaced by a FIFO or a directory (vault not mounted): `info` and `mount` exit
/// within 10 s, nonzero, naming veilfs.conf.
#[test]
fn config_that_is_a_fifo_or_a_directory_is_refused_quickly() {
    let mut failures = Vec::new();
    type Replace = fn(&Path);
    let cases: [(&str, Replace); 2] = [
        ("a FIFO", plant_fifo),
        ("a directory", |p| fs::create_dir(p).unwrap()),
    ];
    for (kind, replace) in cases {
        let vault = TestVault::unmounted();
        let conf = vault.backing_path().join("veilfs.conf");
        fs::remove_file(&conf).unwrap();
        replace(&conf);
        let mut info = veilfs();
        info.arg("info").arg(vault.backing_path());
        failures.extend(refusals_naming(
            "veilfs.conf",
            vec![
                (format!("veilfs info, veilfs.conf {kind}"), info),
                (
                    format!("veilfs mount, veilfs.conf {kind}"),
                    mount_command(&vault, &[]),
                ),
            ],
        ));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `mount --keyfile` of a FIFO or of /dev/zero (a vault made with a key file): exits within 10 s,
/// nonzero, naming the key file.
#[test]
fn keyfile_that_is_a_fifo_or_dev_zero_is_refused_quickly() {
    let vault = TestVault::unmounted_with_init_args(|root| {
        let key: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37) ^ 0xa5).collect();
        fs::write(root.join("vault.key"), key).unwrap();
        vec![OsString::from("--keyfile"), root.join("vault.key").into()]
    });
    let fifo = vault.scratch().join("key.fifo");
    plant_fifo(&fifo);
    let mut failures = Vec::new();
    for keyfile in [fifo.as_path(), Path::new("/dev/zero")] {
        let mount = mount_command(&vault, &["--keyfile".as_ref(), keyfile]);
        failures.extend(refusals_naming(
            keyfile.to_str().unwrap(),
            vec![(
                format!("veilfs mount --keyfile {}", keyfile.display()),
                mount,
            )],
        ));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// 6: modes

/// Sets the process umask for its lifetime (the daemon inherits it from `veilfs mount`).
struct Umask(Mode);

impl Umask {
    fn set(mask: Mode) -> Umask {
        Umask(umask(mask))
    }
}

impl Drop for Umask {
    fn drop(&mut self) {
        umask(self.0);
    }
}

/// With `init` and the daemon under umask 0, nothing in the backing directory (directory IVs,
/// long-name sidecars, veilfs.conf, and the entries made for a directory, a file with a
/// 250-byte name and a symlink) is group- or world-writable.
#[test]
fn files_veilfs_writes_are_not_group_or_world_writable() {
    // init and the daemon run under umask 0; the user creating files does not.
    let vault = {
        let _umask = Umask::set(Mode::empty());
        TestVault::new()
    };
    let m = vault.mount_path();
    fs::DirBuilder::new()
        .mode(0o755)
        .create(m.join("dir"))
        .unwrap();
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(m.join("dir").join("l".repeat(250)))
        .unwrap()
        .write_all(b"long name")
        .unwrap();
    symlink("dir", m.join("link")).unwrap();
    let backing = vault.backing_path();
    let entries = tree(backing);
    assert!(
        entries
            .iter()
            .any(|p| p.to_string_lossy().ends_with(".name")),
        "no long-name sidecar was written: {entries:?}"
    );
    let writable: Vec<String> = entries
        .iter()
        .filter_map(|relative| {
            let meta = fs::symlink_metadata(backing.join(relative)).unwrap();
            let mode = meta.permissions().mode();
            (!meta.file_type().is_symlink() && mode & 0o022 != 0)
                .then(|| format!("{} {:o}", relative.display(), mode & 0o7777))
        })
        .collect();
    assert!(
        writable.is_empty(),
        "group- or world-writable in the backing directory: {writable:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 7: one daemon per vault

/// Unmounts `path` when dropped, if it is mounted.
struct UnmountOnDrop(PathBuf);

impl Drop for UnmountOnDrop {
    fn drop(&mut self) {
        if is_mounted(&self.0) {
            let _ = bounded(veilfs().arg("umount").arg(&self.0), QUICK);
        }
        if is_mounted(&self.0) {
            let _ = bounded(Command::new("umount").arg("-l").arg(&self.0), QUICK);
        }
    }
}

/// A second `veilfs mount` of a mounted vault, by the same path and through a symlink to it, is
/// refused as "already mounted" and leaves its mount point unmounted.
#[test]
fn second_mount_is_refused() {
    let vault = Watched::new(TestVault::new());
    let alias = vault.scratch().join("alias-of-cipher");
    symlink(vault.backing_path(), &alias).unwrap();
    let mut failures = Vec::new();
    for (i, cipherdir) in [vault.backing_path(), alias.as_path()]
        .into_iter()
        .enumerate()
    {
        let second = vault.scratch().join(format!("second-mount-{i}"));
        fs::create_dir(&second).unwrap();
        let _unmount = UnmountOnDrop(second.clone());
        let mut mount = veilfs();
        mount
            .arg("mount")
            .arg("--passfile")
            .arg(vault.passfile())
            .arg(cipherdir)
            .arg(&second);
        let what = format!("veilfs mount {} {}", cipherdir.display(), second.display());
        match vault.run(&mut mount, COMMAND_TIMEOUT) {
            None => failures.push(format!("{what}: blocked")),
            Some(out) => {
                let refused = !out.status.success()
                    && stderr_of(&out).to_lowercase().contains("already mounted");
                if !refused || is_mounted(&second) {
                    failures.push(format!(
                        "{what}: must be refused as already mounted, and {} left unmounted \
                         (mounted: {}); got {}",
                        second.display(),
                        is_mounted(&second),
                        describe(&out)
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Review findings: what the handles alone do not stop

/// Thousands of empty files named like long-name entries (`veilfs.longname.<made-up hash>`, no
/// sidecar; no key needed) must not freeze a listing. Each entry without its sidecar looks for a
/// sync tool's copy of it; that used to scan the whole directory once per entry, so `ls` of a
/// directory holding 5,000 such files took over six minutes, in uninterruptible sleep, with a
/// daemon thread busy all along (and `fsck` as long).
#[test]
fn planted_longname_entries_without_sidecars_list_quickly() {
    const PLANTED: usize = 3000;
    let vault = Watched::new(uncached_vault());
    let m = vault.mount_path();
    fs::create_dir(m.join("dir")).unwrap();
    fs::write(m.join("dir/sibling.txt"), b"sibling").unwrap();
    let dir = backing_of(&vault, "dir");
    for i in 0..PLANTED {
        let hash = format!("{:_<43}", format!("planted-{i}"));
        fs::write(dir.join(format!("veilfs.longname.{hash}")), b"").unwrap();
    }
    // And as many made-up copies of sidecars, which each lookup of a missing one goes through.
    for i in 0..PLANTED {
        let hash = format!("{:_<43}", format!("copy-{i}"));
        let copy = format!("veilfs.longname.{hash}.name.sync-conflict-20240101-000000-ABCDEFG");
        fs::write(dir.join(copy), b"").unwrap();
    }
    let mut failures = Vec::new();
    match vault.run(&mut on("ls", &["-la"], &m.join("dir")), QUICK) {
        None => failures.push(format!("`ls -la dir` still running after {QUICK:?}")),
        Some(out) if !String::from_utf8_lossy(&out.stdout).contains("sibling.txt") => {
            failures.push(format!("`ls -la dir`: {}", describe(&out)))
        }
        Some(_) => {}
    }
    let fsck = bounded_fsck(&vault);
    if fsck.is_none() {
        failures.push(format!("`veilfs fsck` still running after {FSCK_LIMIT:?}"));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A peer that copies one entry of directory P into directory Q, with a made-up "conflict copy"
/// of Q's `veilfs.diriv` holding P's IV, must not get `fsck --repair` to make that name a valid
/// name of Q: names authenticate with their own directory's IV precisely so that they cannot be
/// moved to another directory (docs/threat-model.md, "Names"), and P's `authorized_keys` would
/// then appear in Q, next to Q's own files, re-encrypted by veilfs itself.
#[test]
fn fsck_repair_does_not_move_a_name_into_another_directory() {
    let vault = Watched::new(TestVault::new());
    let m = vault.mount_path();
    fs::create_dir(m.join("P")).unwrap();
    fs::create_dir(m.join("Q")).unwrap();
    fs::write(m.join("P/authorized_keys"), b"ssh-ed25519 AAAA attacker\n").unwrap();
    fs::write(m.join("Q/own.txt"), b"Q's own file\n").unwrap();
    let p = backing_of(&vault, "P");
    let q = backing_of(&vault, "Q");
    let planted = backing_of(&vault, "P/authorized_keys");
    vault.unmount();

    // The peer: P's entry into Q, and P's IV as a sync tool's copy of Q's IV file.
    fs::copy(&planted, q.join(planted.file_name().unwrap())).unwrap();
    fs::copy(
        p.join("veilfs.diriv"),
        q.join("veilfs.sync-conflict-20240101-000000-ABCDEFG.diriv"),
    )
    .unwrap();
    let repair = bounded(
        veilfs()
            .arg("fsck")
            .arg("--repair")
            .arg("--passfile")
            .arg(vault.passfile())
            .arg(vault.backing_path()),
        FSCK_LIMIT,
    )
    .expect("fsck --repair blocked");

    vault.mount_with(&[]);
    let listed: Vec<OsString> = fs::read_dir(m.join("Q"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        !listed.iter().any(|n| n == "authorized_keys"),
        "fsck --repair moved P's name into Q: Q now lists {listed:?}; fsck said {}",
        describe(&repair)
    );
}
