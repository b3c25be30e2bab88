//! gocryptfs habits: its users type `-fg`, `--ro` or `-passfile`, which clap would answer with a
//! tip about `--`. When a command line fails to parse and holds one of these spellings, the
//! error names the veilfs spelling instead. Nothing is rewritten: a command line that parses
//! keeps its meaning.

/// A gocryptfs option (Go's flag package takes `-name` and `--name`, and `=value`), and how
/// veilfs says it.
struct Habit {
    name: &'static str,
    veilfs: &'static str,
    /// veilfs has `--name` too: only `-name` is foreign.
    long_is_ours: bool,
}

const fn habit(name: &'static str, veilfs: &'static str, long_is_ours: bool) -> Habit {
    Habit {
        name,
        veilfs,
        long_is_ours,
    }
}

/// No single letters: after one dash they may be veilfs's own short options (`slot
/// contact-answer -i KEY`), so gocryptfs's -d and -i are left to clap's error.
const HABITS: &[Habit] = &[
    habit("fg", "--foreground (or -f)", false),
    habit("ro", "-o ro", false),
    habit("rw", "-o rw", false),
    habit("allow_other", "-o allow_other", false),
    habit("nonempty", "-o nonempty", false),
    habit("ko", "-o OPTIONS", false),
    habit("passfile", "--passfile FILE", true),
    habit("extpass", "--extpass CMD", true),
    habit("idle", "--idle DURATION", true),
    habit("quiet", "--quiet (or -q)", true),
    habit("debug", "-vv", false),
    habit("init", "'veilfs init CIPHERDIR'", false),
    habit("passwd", "'veilfs passwd CIPHERDIR'", false),
    habit("info", "'veilfs info CIPHERDIR'", false),
    habit("fsck", "'veilfs fsck CIPHERDIR'", false),
    habit(
        "masterkey",
        "'veilfs passwd --recovery-key CIPHERDIR' (unlock with the recovery key)",
        false,
    ),
    habit("version", "--version (or -V)", true),
    habit("help", "--help (or -h)", true),
];

/// The answer for the first gocryptfs spelling in `argv` (program name first), if any.
pub fn answer<S: AsRef<std::ffi::OsStr>>(argv: &[S]) -> Option<String> {
    argv.iter()
        .skip(1)
        .filter_map(|arg| arg.as_ref().to_str())
        .take_while(|arg| *arg != "--")
        .find_map(|arg| {
            let (long, name) = match arg.strip_prefix("--") {
                Some(name) => (true, name),
                None => (false, arg.strip_prefix('-')?),
            };
            let name = name.split_once('=').map_or(name, |(name, _)| name);
            HABITS
                .iter()
                .find(|h| h.name == name && !(long && h.long_is_ours))
                .map(|h| format!("{arg} is how gocryptfs says it; veilfs says {}", h.veilfs))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gocryptfs_spellings_get_the_veilfs_ones() {
        let say = |args: &[&str]| answer(&[&["veilfs"], args].concat());
        assert_eq!(
            say(&["mount", "-fg", "a", "b"]).unwrap(),
            "-fg is how gocryptfs says it; veilfs says --foreground (or -f)"
        );
        assert!(say(&["mount", "--ro", "a", "b"])
            .unwrap()
            .ends_with("-o ro"));
        assert!(say(&["mount", "-passfile=x", "a", "b"])
            .unwrap()
            .starts_with("-passfile=x is how"));
        assert!(say(&["-init", "a"]).unwrap().contains("veilfs init"));
        // veilfs's own spellings, and anything after "--", are not gocryptfs's.
        assert_eq!(
            say(&["mount", "--passfile", "x", "-o", "ro", "a", "b"]),
            None
        );
        assert_eq!(say(&["mount", "-f", "-q", "a", "b"]), None);
        assert_eq!(say(&["mount", "--", "-fg"]), None);
    }
}
