//! The first minutes with veilfs, as a new user lives them (issue 16): what init says, a line
//! on success wherever one waits, the recovery key from a prompt, from standard input and from a
//! saved copy of init's output, the hints for the usual mistakes, and a terminal left as it was
//! after Ctrl-C at a prompt. What needs a terminal runs on a pseudo-terminal through script(1).

mod common;

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_veilfs");

/// A temporary directory with a password file and (once made) a vault with its init output.
struct Place {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Place {
    fn new() -> Place {
        let dir = tempfile::Builder::new()
            .prefix("veilfs-first-")
            .tempdir()
            .unwrap();
        let root = fs::canonicalize(dir.path()).unwrap();
        fs::write(root.join("pass"), format!("{PASSWORD}\n")).unwrap();
        fs::write(root.join("new-pass"), "a new password\n").unwrap();
        Place { _dir: dir, root }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// `veilfs init` of a new directory `name` with a cheap key derivation; its output.
    fn init(&self, name: &str, extra: &[&str]) -> Output {
        fs::create_dir(self.path(name)).unwrap();
        self.init_existing(name, extra)
    }

    fn init_existing(&self, name: &str, extra: &[&str]) -> Output {
        run(veilfs()
            .args(["init", "--kdf-memory", "1", "--kdf-iterations", "1"])
            .arg("--passfile")
            .arg(self.path("pass"))
            .args(extra)
            .arg(self.path(name)))
    }

    /// `veilfs passwd --new-passfile ... VAULT` with `args`, `stdin` fed to it.
    fn passwd(&self, vault: &str, args: &[&str], stdin: &str) -> Output {
        let mut child = Command::new(BIN)
            .arg("passwd")
            .args(args)
            .arg("--new-passfile")
            .arg(self.path("new-pass"))
            .arg(self.path(vault))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }
}

fn stdout_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The lines of the recovery key in init's output.
fn key_lines(init_output: &str) -> String {
    let lines: Vec<&str> = init_output
        .lines()
        .filter(|l| l.starts_with("    ") && !l.trim().contains(' ') && l.contains('-'))
        .collect();
    assert_eq!(lines.len(), 3, "{init_output}");
    lines.join("\n") + "\n"
}

fn assert_fails_with(output: &Output, code: i32, needle: &str) {
    let stderr = stderr_of(output);
    assert_eq!(output.status.code(), Some(code), "{stderr}");
    assert!(stderr.contains(needle), "expected {needle:?} in: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
}

// ---------------------------------------------------------------------------------------------
// A pseudo-terminal

/// A shell command run by script(1) on a pseudo-terminal of 80 columns: its output is read as
/// it comes, and keys are typed once a prompt shows.
struct Terminal {
    child: Child,
    keys: ChildStdin,
    screen: Arc<Mutex<Vec<u8>>>,
}

impl Terminal {
    fn run(command: &str) -> Terminal {
        let mut child = Command::new("script")
            .args(["-q", "-e", "-c"])
            .arg(format!("stty cols 80; {command}"))
            .arg("/dev/null")
            .env("COLUMNS", "80")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running script(1)");
        let screen = Arc::new(Mutex::new(Vec::new()));
        let mut out = child.stdout.take().unwrap();
        let sink = screen.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        let keys = child.stdin.take().unwrap();
        Terminal {
            child,
            keys,
            screen,
        }
    }

    fn screen(&self) -> String {
        term_output(self).replace('\r', "")
    }

    /// Waits until `text` is on the screen.
    fn expect(&self, text: &str) {
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        while !self.screen().contains(text) {
            assert!(
                Instant::now() < deadline,
                "{text:?} never showed; the screen:\n{}",
                self.screen()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for `prompt`, then types `keys`. The prompt is written just before the terminal's
    /// echo is turned off: the pause lets that happen first, so that what is typed is not
    /// echoed by a terminal that has not been told yet.
    fn answer(&mut self, prompt: &str, keys: &str) {
        self.expect(prompt);
        thread::sleep(Duration::from_millis(300));
        self.keys.write_all(keys.as_bytes()).unwrap();
        self.keys.flush().unwrap();
    }

    /// Waits for the command to end; the whole screen.
    fn finish(&mut self) -> String {
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        wait_until(&mut self.child, deadline).expect("the command did not finish");
        // The reader thread may still be draining the last bytes.
        thread::sleep(Duration::from_millis(100));
        self.screen()
    }
}

/// All a terminal got, carriage returns (a line redrawn in place) included.
fn term_output(term: &Terminal) -> String {
    String::from_utf8_lossy(&term.screen.lock().unwrap()).into_owned()
}

fn have_script() -> bool {
    Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn shell_word(path: &Path) -> String {
    format!("'{}'", path.display())
}

// ---------------------------------------------------------------------------------------------
// init

#[test]
fn init_says_what_to_save_and_what_next() {
    let place = Place::new();
    let vault = place.path("vault");
    let out = place.init("vault", &[]);
    assert_success(&out, "init");
    let text = stdout_of(&out);
    for needle in [
        "Save these three lines",
        "veilfs.conf as well, outside the sync folder",
        &format!("veilfs mount {} MOUNTPOINT", vault.display()),
        &format!("veilfs passwd --recovery-key {}", vault.display()),
    ] {
        assert!(text.contains(needle), "{needle:?} not in:\n{text}");
    }
    // Laid out for the terminal (COLUMNS is not set here: 100 at most).
    assert!(text.lines().all(|l| l.len() <= 100), "{text}");
}

#[test]
fn init_on_a_missing_directory_says_mkdir() {
    let place = Place::new();
    let out = place.init_existing("missing", &[]);
    assert_fails_with(&out, 3, "does not exist (create it with 'mkdir ");
}

#[test]
fn init_writes_the_recovery_key_to_a_private_file() {
    let place = Place::new();
    let file = place.path("recovery.txt");
    let out = place.init("vault", &["--recovery-key-file", file.to_str().unwrap()]);
    assert_success(&out, "init --recovery-key-file");
    let text = stdout_of(&out);
    assert!(text.contains("recovery key is in"), "{text}");
    let mode = fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // What the file holds opens the vault.
    let saved = fs::read_to_string(&file).unwrap();
    assert!(
        !text.contains(&key_lines(&saved)),
        "the key was printed too"
    );
    let out = place.passwd(
        "vault",
        &["--recovery-key-file", file.to_str().unwrap()],
        "",
    );
    assert_success(&out, "passwd --recovery-key-file (init's file)");

    // Never over an existing file, and never into the synced directory.
    let again = place.init("other", &["--recovery-key-file", file.to_str().unwrap()]);
    assert_fails_with(&again, 1, "already exists");
    let inside = place.path("third").join("key.txt");
    let out = place.init("third", &["--recovery-key-file", inside.to_str().unwrap()]);
    assert_fails_with(&out, 2, "inside CIPHERDIR");
    assert!(!place.path("third").join("veilfs.conf").exists());
}

// ---------------------------------------------------------------------------------------------
// The recovery key

#[test]
fn the_recovery_key_opens_from_init_s_whole_output_and_from_standard_input() {
    let place = Place::new();
    let out = place.init("vault", &[]);
    assert_success(&out, "init");
    let whole = stdout_of(&out);
    let saved = place.path("init-output.txt");
    fs::write(&saved, &whole).unwrap();

    let out = place.passwd(
        "vault",
        &["--recovery-key-file", saved.to_str().unwrap()],
        "",
    );
    assert_success(&out, "passwd --recovery-key-file (init's whole output)");
    assert!(stdout_of(&out).contains("changed with the recovery key"));

    // '-': init's output from a pipe; or the key's lines, and the new password after them on
    // the same pipe.
    let out = place.passwd("vault", &["--recovery-key-file", "-"], &whole);
    assert_success(&out, "passwd --recovery-key-file - (init's whole output)");
    let key = key_lines(&whole);
    let mut child = Command::new(BIN)
        .args(["passwd", "--recovery-key"])
        .arg(place.path("vault"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let input = format!("{key}third password\n");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_success(
        &out,
        "passwd --recovery-key (the key, then the new password)",
    );
    let unlock = run(veilfs()
        .args(["fsck", "--passfile"])
        .arg({
            let file = place.path("third-pass");
            fs::write(&file, "third password\n").unwrap();
            file
        })
        .arg(place.path("vault")));
    assert_success(&unlock, "fsck with the password set through the pipe");

    // A mistyped key still gets a precise answer.
    let typo = key.replacen(|c: char| c.is_ascii_uppercase(), "!", 1);
    let out = place.passwd("vault", &["--recovery-key-file", "-"], &typo);
    assert_fails_with(&out, 6, "'!'");
}

#[test]
fn the_recovery_key_is_asked_for_without_showing_it() {
    if !have_script() {
        skip(
            "the_recovery_key_is_asked_for_without_showing_it",
            "no script(1) (util-linux)",
        );
        return;
    }
    let place = Place::new();
    let whole = stdout_of(&place.init("vault", &[]));
    let key = key_lines(&whole);
    let mut term = Terminal::run(&format!(
        "{BIN} passwd --recovery-key --new-passfile {} {}",
        shell_word(&place.path("new-pass")),
        shell_word(&place.path("vault"))
    ));
    let lines: Vec<&str> = key.lines().map(str::trim).collect();
    // Pasted or typed line by line, as init shows it.
    term.answer("Recovery key: ", &format!("{}\r", lines[0]));
    term.answer("Recovery key, continued: ", &format!("{}\r", lines[1]));
    term.expect("continued: \nRecovery key, continued: ");
    term.answer(
        "continued: \nRecovery key, continued: ",
        &format!("{}\r", lines[2]),
    );
    let screen = term.finish();
    assert!(screen.contains("changed with the recovery key"), "{screen}");
    for line in lines {
        assert!(!screen.contains(line), "the key was echoed:\n{screen}");
    }
}

#[test]
fn ctrl_c_at_a_prompt_leaves_the_terminal_as_it_was() {
    if !have_script() {
        skip(
            "ctrl_c_at_a_prompt_leaves_the_terminal_as_it_was",
            "no script(1) (util-linux)",
        );
        return;
    }
    let place = Place::new();
    assert_success(&place.init("vault", &[]), "init");
    let mut term = Terminal::run(&format!(
        "{BIN} passwd {}; echo \"status=$?\"; stty -a",
        shell_word(&place.path("vault"))
    ));
    term.answer("Current password: ", "\x03");
    let screen = term.finish();
    assert!(
        screen.contains("status=130"),
        "not ended by SIGINT:\n{screen}"
    );
    let settings = screen.split("status=130").nth(1).unwrap();
    let flags: Vec<&str> = settings.split_whitespace().collect();
    for flag in ["echo", "icanon", "isig"] {
        assert!(
            flags.contains(&flag),
            "{flag} is off after Ctrl-C:\n{settings}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Success lines

#[test]
fn mount_and_umount_say_what_they_did_unless_quiet() {
    require_fuse();
    let place = Place::new();
    assert_success(&place.init("vault", &[]), "init");
    let (vault, mnt) = (place.path("vault"), place.path("mnt"));
    fs::create_dir(&mnt).unwrap();
    let mount = |quiet: bool| {
        let mut cmd = veilfs();
        if quiet {
            cmd.arg("-q");
        }
        run(cmd
            .args(["mount", "--passfile"])
            .arg(place.path("pass"))
            .arg(&vault)
            .arg(&mnt))
    };
    let umount = |quiet: bool| {
        let mut cmd = veilfs();
        if quiet {
            cmd.arg("-q");
        }
        run(cmd.arg("umount").arg(&mnt))
    };
    let out = mount(false);
    assert_success(&out, "mount");
    assert_eq!(
        stdout_of(&out),
        format!("mounted {} at {}\n", vault.display(), mnt.display())
    );
    let out = umount(false);
    assert_success(&out, "umount");
    assert_eq!(stdout_of(&out), format!("unmounted {}\n", mnt.display()));
    let (out, off) = (mount(true), umount(true));
    assert_success(&out, "mount -q");
    assert_success(&off, "umount -q");
    assert!(out.stdout.is_empty() && off.stdout.is_empty());
}

#[test]
fn mount_in_the_foreground_says_it_is_ready_and_how_to_stop() {
    require_fuse();
    if !have_script() {
        skip(
            "mount_in_the_foreground_says_it_is_ready_and_how_to_stop",
            "no script(1) (util-linux)",
        );
        return;
    }
    let place = Place::new();
    assert_success(&place.init("vault", &[]), "init");
    let mnt = place.path("mnt");
    fs::create_dir(&mnt).unwrap();
    let mut term = Terminal::run(&format!(
        "exec {BIN} mount --foreground {} {}",
        shell_word(&place.path("vault")),
        shell_word(&mnt)
    ));
    term.answer("Password: ", &format!("{PASSWORD}\r"));
    let ready = format!(
        "mounted {} at {}; Ctrl-C unmounts",
        place.path("vault").display(),
        mnt.display()
    );
    term.expect(&ready);
    assert!(is_mounted(&mnt));
    term.keys.write_all(b"\x03").unwrap();
    term.keys.flush().unwrap();
    let screen = term.finish();
    assert!(
        screen.contains(&format!("unmounted {}", mnt.display())),
        "{screen}"
    );
    assert!(!is_mounted(&mnt));
}

#[test]
fn fsck_s_bar_fits_the_terminal_and_shares_its_total_with_the_summary() {
    require_fuse();
    if !have_script() {
        skip(
            "fsck_s_bar_fits_the_terminal_and_shares_its_total_with_the_summary",
            "no script(1) (util-linux)",
        );
        return;
    }
    let place = Place::new();
    assert_success(&place.init("vault", &[]), "init");
    let (vault, mnt) = (place.path("vault"), place.path("mnt"));
    fs::create_dir(&mnt).unwrap();
    let pass = place.path("pass");
    let mount = run(veilfs()
        .args(["-q", "mount", "--passfile"])
        .arg(&pass)
        .arg(&vault)
        .arg(&mnt));
    assert_success(&mount, "mount");
    for d in 0..10 {
        let dir = mnt.join(format!("d{d}"));
        fs::create_dir(&dir).unwrap();
        for f in 0..300 {
            fs::write(dir.join(format!("f{f}")), b"").unwrap();
        }
    }
    assert_success(&run(veilfs().arg("umount").arg(&mnt)), "umount");
    let mut term = Terminal::run(&format!(
        "{BIN} fsck --passfile {} {}",
        shell_word(&pass),
        shell_word(&vault)
    ));
    term.finish();
    // The bar redraws its line in place: each frame ends at a carriage return. Control
    // sequences (ESC [ parameters, a letter) are left out.
    let mut plain = String::new();
    let raw = term_output(&term);
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            chars.by_ref().find(|c| c.is_ascii_alphabetic());
        } else {
            plain.push(c);
        }
    }
    let pieces: Vec<&str> = plain.split(['\r', '\n']).collect();
    let summary = pieces
        .iter()
        .find(|l| l.starts_with("checked "))
        .unwrap_or_else(|| panic!("no summary:\n{plain}"));
    assert!(
        summary.contains("(11 directories, 3,000 files)"),
        "{summary}"
    );
    let total = summary.split_whitespace().nth(1).unwrap();
    let frames: Vec<&&str> = pieces.iter().filter(|f| f.contains("checking")).collect();
    assert!(!frames.is_empty(), "no bar:\n{plain}");
    for frame in frames {
        assert!(frame.chars().count() <= 80, "{frame}");
        assert!(frame.contains(&format!("/{total} entries")), "{frame}");
        assert!(
            !frame.contains(".0") && !frame.contains("0s left"),
            "{frame}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Hints

#[test]
fn a_mount_point_inside_cipherdir_gets_no_mkdir_hint() {
    let place = Place::new();
    assert_success(&place.init("vault", &[]), "init");
    let inside = place.path("vault").join("mnt");
    let out = run(veilfs()
        .args(["mount", "--passfile"])
        .arg(place.path("pass"))
        .arg(place.path("vault"))
        .arg(&inside));
    assert_fails_with(&out, 7, "is inside CIPHERDIR");
    assert!(!stderr_of(&out).contains("mkdir"));
    // Outside, a missing mount point does get one.
    let out = run(veilfs()
        .args(["mount", "--passfile"])
        .arg(place.path("pass"))
        .arg(place.path("vault"))
        .arg(place.path("missing")));
    assert_fails_with(&out, 7, "create it with 'mkdir ");
}

#[test]
fn swapped_arguments_get_the_right_order() {
    let place = Place::new();
    assert_success(&place.init("vault", &[]), "init");
    fs::create_dir(place.path("mnt")).unwrap();
    let out = run(veilfs()
        .arg("mount")
        .arg(place.path("mnt"))
        .arg(place.path("vault")));
    assert_fails_with(
        &out,
        4,
        &format!(
            "the vault comes first (veilfs mount {} {})",
            place.path("vault").display(),
            place.path("mnt").display()
        ),
    );
}

#[test]
fn an_empty_directory_gets_the_init_hint() {
    let place = Place::new();
    fs::create_dir(place.path("empty")).unwrap();
    for verb in ["info", "passwd", "fsck"] {
        let out = run(veilfs().arg(verb).arg(place.path("empty")));
        assert_fails_with(&out, 4, "it is empty; to create a vault there: veilfs init");
    }
    // A directory with something in it is just not a vault.
    fs::write(place.path("empty").join("x"), "").unwrap();
    let out = run(veilfs().arg("info").arg(place.path("empty")));
    assert_fails_with(&out, 4, "is not a veilfs vault");
    assert!(!stderr_of(&out).contains("veilfs init"));
}

#[test]
fn gocryptfs_spellings_get_the_veilfs_ones() {
    for (args, veilfs_says) in [
        (&["mount", "-fg", "a", "b"][..], "--foreground"),
        (&["mount", "--ro", "a", "b"], "-o ro"),
        (&["mount", "-passfile", "p", "a", "b"], "--passfile FILE"),
        (&["mount", "-allow_other", "a", "b"], "-o allow_other"),
        (&["-init", "a"], "'veilfs init CIPHERDIR'"),
    ] {
        let out = run(veilfs().args(args));
        assert_fails_with(
            &out,
            2,
            &format!("is how gocryptfs says it; veilfs says {veilfs_says}"),
        );
    }
}
