//! The `-o` mount option parser (`veilfs::mount_options`, used by `veilfs mount -o` and the
//! mount(8) helper) and the duration parser behind `idle=`, `cache_ttl=`, `--idle` and
//! `--cache-ttl`.
//!
//! - Any option lists parse or fail with a message, never panic; sloppy parsing (mount(8)'s
//!   `-s`) accepts everything strict parsing does, with the same result.
//! - Several `-o` arguments mean the same as one joined with commas.
//! - What is passed to the kernel holds no duplicate, no conflicting pair (`dev`/`nodev`, ...)
//!   and at most one `max_read=`, and parses back to itself; `threads=` is 1-64, `idle=` nonzero.
//! - An unknown option's value is never repeated in the error (it might be a secret command).
//! - A duration that parses is the same number of seconds written as `<N>s`.
//!
//! Input: text; each line is one `-o` argument.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veilfs::mount_options::{parse_duration, parse_options, ParsedOptions, PASSED_THROUGH};

const CONFLICTS: &[(&str, &str)] = &[
    ("dev", "nodev"),
    ("suid", "nosuid"),
    ("exec", "noexec"),
    ("atime", "noatime"),
    ("sync", "async"),
];

fn check_parsed(parsed: &ParsedOptions) {
    let extra = &parsed.extra;
    for (i, option) in extra.iter().enumerate() {
        assert!(
            !extra[i + 1..].contains(option),
            "duplicate {option:?} in {extra:?}"
        );
        match option.strip_prefix("max_read=") {
            Some(n) => assert!(n.parse::<u32>().is_ok_and(|n| n > 0), "{option:?}"),
            None => assert!(PASSED_THROUGH.contains(&option.as_str()), "{option:?}"),
        }
    }
    for (a, b) in CONFLICTS {
        assert!(
            !(extra.iter().any(|o| o == a) && extra.iter().any(|o| o == b)),
            "{a} and {b} in {extra:?}"
        );
    }
    assert!(extra.iter().filter(|o| o.starts_with("max_read=")).count() <= 1);
    assert!(parsed.threads.is_none_or(|n| (1..=64).contains(&n)));
    assert!(parsed.idle.is_none_or(|d| !d.is_zero()));
    let again = parse_options(&[extra.join(",")], false).expect("kernel options parse again");
    assert_eq!(&again.extra, extra);
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lists: Vec<&str> = text.split('\n').collect();
    let strict = parse_options(&lists, false);
    let sloppy = parse_options(&lists, true);
    let joined = parse_options(&[lists.join(",")], false);
    assert_eq!(strict, joined, "{lists:?}");
    match &strict {
        Ok(parsed) => {
            assert_eq!(sloppy.as_ref(), Ok(parsed));
            check_parsed(parsed);
        }
        Err(message) => {
            if let Some(rest) = message.strip_prefix("unknown mount option '") {
                let shown = &rest[..rest.find('\'').unwrap_or(rest.len())];
                assert!(!shown.contains('=') || shown.ends_with("=..."), "{message}");
            }
        }
    }
    if let Ok(parsed) = &sloppy {
        check_parsed(parsed);
    }

    if let Ok(duration) = parse_duration(text) {
        let secs = format!("{}s", duration.as_secs());
        assert_eq!(parse_duration(&secs), Ok(duration));
    }
});
