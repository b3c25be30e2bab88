//! Where passwords come from: a prompt on the terminal, a file (`--passfile`), a command
//! (`--extpass`), or standard input when it is not a terminal (one password per line).
//!
//! Passwords are bytes, not text: whatever the source holds, minus the line end. They live in
//! `Zeroizing` buffers and are wiped when dropped.
//!
//! Key files and recovery key files are read here too; [`super::unlock`] decides which to use.

use std::fs::{self, File};
use std::io::{self, IsTerminal, Read};
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use veilfs::config::KeyfileSecret;
use veilfs::crypto::recovery::GROUP_LEN;
use zeroize::{Zeroize, Zeroizing};

use super::{CliError, EXIT_FAILURE};

/// A password, wiped from memory when dropped.
pub type Password = Zeroizing<Vec<u8>>;

/// Longest password accepted from any source.
pub const MAX_PASSWORD_LEN: usize = 4096;

/// Largest password file (`--passfile`, `--new-passfile`) or recovery key file read: only the
/// first line of a password file counts, but the whole file is checked before it is read.
pub const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// Where one password is read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// First line of a file.
    File(PathBuf),
    /// First line of the output of `sh -c CMD`.
    Extpass(String),
    /// A prompt on the controlling terminal, without echo.
    Terminal,
    /// The next line of standard input (which is not a terminal).
    Stdin,
}

impl Source {
    /// The file or command if given, else the terminal when stdin is one, else stdin.
    pub fn pick(passfile: Option<&Path>, extpass: Option<&str>) -> Source {
        match (passfile, extpass) {
            (Some(file), _) => Source::File(file.to_path_buf()),
            (None, Some(cmd)) => Source::Extpass(cmd.to_owned()),
            (None, None) => Source::interactive(),
        }
    }

    /// The terminal when stdin is one, else stdin.
    pub fn interactive() -> Source {
        if io::stdin().is_terminal() {
            Source::Terminal
        } else {
            Source::Stdin
        }
    }

    /// Reads a password; `prompt` is shown on the terminal only. An empty password is an error.
    pub fn read(&self, prompt: &str) -> Result<Password, CliError> {
        let password = match self {
            Source::File(path) => read_passfile(path)?,
            Source::Extpass(cmd) => run_extpass(cmd)?,
            Source::Terminal => prompt_terminal(prompt)?,
            Source::Stdin => read_stdin_line()?,
        };
        if password.is_empty() {
            return Err(CliError::other(match self {
                Source::File(path) => format!("password file {} is empty", path.display()),
                Source::Extpass(_) => "the --extpass command printed no password".to_owned(),
                Source::Terminal => "the password is empty".to_owned(),
                Source::Stdin => "no password on standard input (it is not a terminal, so each \
                                  password is read from a line of it)"
                    .to_owned(),
            }));
        }
        Ok(password)
    }

    /// Reads a new password: on the terminal it is asked twice and must match; other sources are
    /// read once.
    pub fn read_new(&self, prompt: &str, repeat_prompt: &str) -> Result<Password, CliError> {
        let password = self.read(prompt)?;
        if *self == Source::Terminal {
            let again = prompt_terminal(repeat_prompt)?;
            if again != password {
                return Err(CliError::new(EXIT_FAILURE, "the passwords do not match"));
            }
        }
        Ok(password)
    }
}

/// Reads a key file (its whole contents count, at most 1 MiB). Exit status 1 when it cannot be
/// read, or is a FIFO, a device, a directory or larger than 1 MiB (refused at once, never read).
pub fn read_keyfile(path: &Path) -> Result<KeyfileSecret, CliError> {
    KeyfileSecret::read(path)
        .map_err(|e| CliError::io(format!("cannot read key file {}", path.display()), e))
}

/// Reads a file holding a secret the user named (`--passfile`, `--recovery-key-file`): a
/// regular file of at most [`MAX_SECRET_FILE_BYTES`], through `read_user_file` (symlinks
/// followed, devices and directories refused without blocking), or a pipe (`/dev/stdin`,
/// `<(command)`). A pipe is opened without blocking, so a FIFO nobody writes to reads as empty
/// instead of hanging; from one that has a writer, `first_line` stops at the first line end.
/// At most `max` bytes are read from a pipe (more is an error: `too_long`).
fn read_secret_file(
    path: &Path,
    first_line_only: bool,
    max: usize,
) -> io::Result<Zeroizing<Vec<u8>>> {
    // stat(2) of a FIFO does not open it, so it never blocks.
    if !fs::metadata(path).is_ok_and(|m| m.file_type().is_fifo()) {
        return Ok(Zeroizing::new(veilfs::backing::read_user_file(
            path,
            MAX_SECRET_FILE_BYTES,
        )?));
    }
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    if !file.metadata()?.file_type().is_fifo() {
        // Replaced between the two looks: read it as a file, with every check.
        return Ok(Zeroizing::new(veilfs::backing::read_user_file(
            path,
            MAX_SECRET_FILE_BYTES,
        )?));
    }
    // Opened without blocking; now wait for what a writer sends. With no writer at all, a read
    // returns end of file at once.
    let flags = nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_GETFL)?;
    let flags = nix::fcntl::OFlag::from_bits_truncate(flags) & !nix::fcntl::OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_SETFL(flags))?;
    let mut bytes = Zeroizing::new(Vec::with_capacity(max + 1));
    let mut chunk = Zeroizing::new([0u8; 512]);
    let mut pipe = file;
    while bytes.len() <= max {
        let room = (max + 1 - bytes.len()).min(chunk.len());
        let n = match pipe.read(&mut chunk[..room]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        bytes.extend_from_slice(&chunk[..n]);
        if first_line_only && chunk[..n].contains(&b'\n') {
            break;
        }
    }
    Ok(bytes)
}

/// A recovery key file's text (at most 64 KiB; see [`read_secret_file`]). Exit status 1 when it
/// cannot be read.
pub fn read_recovery_key_file(path: &Path) -> Result<Zeroizing<String>, CliError> {
    let what = || format!("cannot read recovery key file {}", path.display());
    let bytes = read_secret_file(path, false, MAX_SECRET_FILE_BYTES as usize)
        .map_err(|e| CliError::io(what(), e))?;
    if bytes.len() as u64 > MAX_SECRET_FILE_BYTES {
        return Err(CliError::other(format!(
            "{}: more than {MAX_SECRET_FILE_BYTES} bytes",
            what()
        )));
    }
    match std::str::from_utf8(&bytes) {
        Ok(text) => Ok(Zeroizing::new(text.to_owned())),
        Err(_) => Err(CliError::other(format!("{}: not UTF-8 text", what()))),
    }
}

/// `bytes` up to its first line end ("\n" or "\r\n"); the rest is wiped.
fn first_line(mut bytes: Password) -> Password {
    if let Some(end) = bytes.iter().position(|&b| b == b'\n') {
        bytes[end..].zeroize();
        bytes.truncate(end);
    }
    if bytes.last() == Some(&b'\r') {
        bytes.pop();
    }
    bytes
}

fn too_long(what: impl std::fmt::Display) -> CliError {
    CliError::other(format!(
        "the password from {what} is longer than {MAX_PASSWORD_LEN} bytes"
    ))
}

fn read_passfile(path: &Path) -> Result<Password, CliError> {
    let what = || format!("cannot read password file {}", path.display());
    // Only the first line counts: from a pipe, read no more than the longest line allowed.
    let bytes =
        read_secret_file(path, true, MAX_PASSWORD_LEN + 2).map_err(|e| CliError::io(what(), e))?;
    let line = first_line(bytes);
    if line.len() > MAX_PASSWORD_LEN {
        return Err(too_long(format_args!("password file {}", path.display())));
    }
    Ok(line)
}

fn run_extpass(cmd: &str) -> Result<Password, CliError> {
    // Not the command itself: it may hold a secret of its own.
    tracing::debug!("running the extpass command");
    // The command may ask the user: give it our stderr, and our stdin if it is the terminal (a
    // pipe may hold the next password, which the command must not eat).
    let stdin = if io::stdin().is_terminal() {
        Stdio::inherit()
    } else {
        Stdio::null()
    };
    let output = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(stdin)
        .stderr(Stdio::inherit())
        .stdout(Stdio::piped())
        .output()
        .map_err(|e| CliError::io("cannot run the --extpass command", e))?;
    let stdout = Zeroizing::new(output.stdout);
    if !output.status.success() {
        return Err(CliError::other(format!(
            "the --extpass command failed ({})",
            output.status
        )));
    }
    let mut line = Zeroizing::new(Vec::with_capacity(MAX_PASSWORD_LEN + 1));
    let end = stdout
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(stdout.len());
    if end > MAX_PASSWORD_LEN + 1 {
        return Err(too_long(format_args!("the --extpass command")));
    }
    line.extend_from_slice(&stdout[..end]);
    let line = first_line(line);
    if line.len() > MAX_PASSWORD_LEN {
        return Err(too_long(format_args!("the --extpass command")));
    }
    Ok(line)
}

fn prompt_terminal(prompt: &str) -> Result<Password, CliError> {
    let text = prompt_hidden(prompt)
        .map_err(|e| CliError::io("cannot read the password from the terminal", e))?;
    let bytes = Zeroizing::new(text.as_bytes().to_vec());
    if bytes.len() > MAX_PASSWORD_LEN {
        return Err(too_long("the terminal"));
    }
    Ok(bytes)
}

/// Asks on the terminal without echo. rpassword turns echo off and, on Ctrl-C, raises SIGINT
/// before turning it back on, so a process killed by that signal would leave the shell without
/// echo. SIGINT is therefore blocked meanwhile: it waits until rpassword has put the terminal
/// back, and then ends the process as it would have.
fn prompt_hidden(prompt: &str) -> io::Result<Zeroizing<String>> {
    use nix::sys::signal::{SigSet, SigmaskHow, Signal};
    let mut sigint = SigSet::empty();
    sigint.add(Signal::SIGINT);
    let before = sigint.thread_swap_mask(SigmaskHow::SIG_BLOCK)?;
    let text = rpassword::prompt_password(prompt).map(Zeroizing::new);
    before.thread_set_mask()?;
    text
}

/// Whether `line` looks like a line of a written recovery key: groups of up to 4 characters
/// joined by dashes, as init prints them (or 5, one typed twice: a mistyped character keeps its
/// line, so that the parser can name it). A line of prose does not: it has spaces.
fn is_key_line(line: &str) -> bool {
    let line = line.trim();
    line.contains('-')
        && line.split('-').all(|group| {
            (1..=GROUP_LEN + 1).contains(&group.chars().count())
                && !group.chars().any(char::is_whitespace)
        })
}

/// The recovery key written in `text`: when it holds other lines too (the rest of init's
/// output, saved to a file or pasted), only the lines that look like a key's; else all of it, so
/// that a key typed another way (with spaces, on one line) still parses, and a mistyped one is
/// told apart precisely.
pub fn written_key(text: &str) -> Zeroizing<String> {
    let others = text
        .lines()
        .any(|line| !line.trim().is_empty() && !is_key_line(line));
    let keys: Vec<&str> = text.lines().filter(|line| is_key_line(line)).collect();
    Zeroizing::new(if others && !keys.is_empty() {
        keys.join("\n")
    } else {
        text.to_owned()
    })
}

/// A recovery key from standard input (`--recovery-key-file -`, `--recovery-key`): at a hidden
/// prompt when it is a terminal, else from its lines. Lines are read until `whole` says the
/// text holds a whole key (it may come in several lines, as init prints it), an empty line
/// (on a pipe: once a key's lines have begun), or the end of the input; nothing past that line
/// is consumed, so that a new password may follow on a pipe.
pub fn read_recovery_key_stdin(
    whole: impl Fn(&str) -> bool,
) -> Result<Zeroizing<String>, CliError> {
    let terminal = io::stdin().is_terminal();
    let mut text = Zeroizing::new(String::new());
    loop {
        let (line, end) = if terminal {
            let prompt = if text.is_empty() {
                "Recovery key: "
            } else {
                "Recovery key, continued: "
            };
            let line = prompt_hidden(prompt)
                .map_err(|e| CliError::io("cannot read the recovery key from the terminal", e))?;
            (Zeroizing::new(line.as_bytes().to_vec()), false)
        } else {
            read_stdin_line_or_end()?
        };
        let line = std::str::from_utf8(&line)
            .map_err(|_| CliError::other("the recovery key on standard input is not UTF-8 text"))?;
        if line.trim().is_empty() && (terminal || text.lines().any(is_key_line)) {
            break;
        }
        text.push_str(line);
        text.push('\n');
        if end || whole(&text) {
            break;
        }
        if text.len() as u64 > MAX_SECRET_FILE_BYTES {
            return Err(CliError::other(format!(
                "more than {MAX_SECRET_FILE_BYTES} bytes on standard input, and no recovery key"
            )));
        }
    }
    if text.trim().is_empty() {
        return Err(CliError::other("no recovery key given"));
    }
    Ok(text)
}

/// The next line of stdin, read one byte at a time straight from the file descriptor: nothing
/// past the line is consumed, and no copy stays behind in a stdio buffer.
fn read_stdin_line() -> Result<Password, CliError> {
    read_stdin_line_or_end().map(|(line, _)| line)
}

/// [`read_stdin_line`], and whether the input ended (rather than a line end).
fn read_stdin_line_or_end() -> Result<(Password, bool), CliError> {
    let stdin = io::stdin();
    let fd = stdin.as_fd();
    let mut line = Zeroizing::new(Vec::with_capacity(MAX_PASSWORD_LEN + 2));
    let mut byte = Zeroizing::new([0u8; 1]);
    let end = loop {
        match nix::unistd::read(fd, &mut byte[..]) {
            Ok(0) => break true,
            Ok(_) if byte[0] == b'\n' => break false,
            Ok(_) if line.len() > MAX_PASSWORD_LEN => return Err(too_long("standard input")),
            Ok(_) => line.push(byte[0]),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                return Err(CliError::io(
                    "cannot read the password from standard input",
                    e.into(),
                ))
            }
        }
    };
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    if line.len() > MAX_PASSWORD_LEN {
        return Err(too_long("standard input"));
    }
    Ok((line, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw(bytes: &[u8]) -> Password {
        Zeroizing::new(bytes.to_vec())
    }

    #[test]
    fn first_line_strips_line_ends() {
        assert_eq!(&first_line(pw(b"secret\n"))[..], b"secret");
        assert_eq!(&first_line(pw(b"secret\r\nsecond\n"))[..], b"secret");
        assert_eq!(&first_line(pw(b"secret"))[..], b"secret");
        assert_eq!(&first_line(pw(b" spaces kept \n"))[..], b" spaces kept ");
        assert_eq!(&first_line(pw(b"\n"))[..], b"");
    }

    #[test]
    fn the_key_is_found_in_init_output() {
        let key = "    ABCD-EFGH-IJKL-MNOP-QRST\n    UVWX-YZ23-4567-ABCD-EFGH\n    IJKL-MN";
        let output = format!(
            "Created a veilfs vault in /v.\n\nRecovery key (shown only this once):\n\n{key}\n\n\
             Save these lines. To mount it:\n    veilfs mount /v MOUNTPOINT\n"
        );
        assert_eq!(written_key(&output).as_str(), key);
        // A key alone, or typed another way, is taken as it is.
        assert_eq!(written_key(key).as_str(), key);
        assert_eq!(written_key("abcd efgh\nijkl").as_str(), "abcd efgh\nijkl");
        assert!(!is_key_line("a re-cased name"));
        assert!(is_key_line("AB!D-EFGH"), "a typo keeps its line");
        assert!(!is_key_line("    veilfs passwd --recovery-key /v"));
    }

    #[test]
    fn passfile_errors_are_clear() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let err = Source::File(missing.clone()).read("").unwrap_err();
        assert!(
            err.to_string().contains("cannot read password file"),
            "{err}"
        );
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\nsecond line\n").unwrap();
        let err = Source::File(empty).read("").unwrap_err();
        assert!(err.to_string().contains("is empty"), "{err}");
        let long = dir.path().join("long");
        std::fs::write(&long, vec![b'x'; MAX_PASSWORD_LEN + 1]).unwrap();
        assert!(Source::File(long).read("").is_err());
        let exact = dir.path().join("exact");
        std::fs::write(
            &exact,
            [vec![b'x'; MAX_PASSWORD_LEN], b"\r\n".to_vec()].concat(),
        )
        .unwrap();
        assert_eq!(
            Source::File(exact).read("").unwrap().len(),
            MAX_PASSWORD_LEN
        );
    }

    #[test]
    fn extpass_takes_the_first_line_and_reports_failures() {
        let source = Source::Extpass("printf 'from cmd\\nsecond\\n'".into());
        assert_eq!(&source.read("").unwrap()[..], b"from cmd");
        // The command line may hold a secret (`echo hunter2`): no message repeats it.
        let err = Source::Extpass("exit 3 # hunter2".into())
            .read("")
            .unwrap_err();
        assert!(err.to_string().contains("command failed"), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let err = Source::Extpass("true # hunter2".into())
            .read("")
            .unwrap_err();
        assert!(err.to_string().contains("printed no password"), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let long = "head -c 100000 /dev/zero | tr '\\0' x # hunter2".to_owned();
        let err = Source::Extpass(long).read("").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
