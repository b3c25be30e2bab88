//! The harness of every test here: a mounted vault and a plain directory, each operation run on
//! both, every mismatch recorded with the line that found it.

use std::cell::RefCell;
use std::fmt::Debug;
use std::path::Path;

use crate::common::{Res, TestVault};

/// A mounted vault and a plain directory that every operation is run against.
pub struct Pair {
    pub vault: TestVault,
    plain: tempfile::TempDir,
    failures: RefCell<Vec<String>>,
}

impl Pair {
    pub fn new() -> Pair {
        Pair::mounted_with(&[])
    }

    /// A pair whose vault is mounted with `extra` options.
    pub fn mounted_with(extra: &[&str]) -> Pair {
        let vault = TestVault::unmounted();
        vault.mount_with(extra);
        Pair {
            vault,
            plain: tempfile::Builder::new()
                .prefix("veilfs-plain-")
                .tempdir()
                .unwrap(),
            failures: RefCell::default(),
        }
    }

    pub fn mnt(&self) -> &Path {
        self.vault.mount_path()
    }

    pub fn plain(&self) -> &Path {
        self.plain.path()
    }

    /// Runs `op` against both roots; records a mismatch.
    #[track_caller]
    pub fn both<T: PartialEq + Debug>(&self, what: &str, op: impl Fn(&Path) -> Res<T>) {
        let got = op(self.mnt());
        let expected = op(self.plain());
        if got != expected {
            self.fail(format!("{what}: {}", mismatch(&got, &expected)));
        }
    }

    /// Like [`Pair::both`], for operations expected to succeed on the plain directory.
    #[track_caller]
    pub fn ok<T: PartialEq + Debug>(&self, what: &str, op: impl Fn(&Path) -> Res<T>) -> Option<T> {
        let expected = op(self.plain());
        assert!(
            expected.is_ok(),
            "{what} failed on the plain directory: {expected:?}"
        );
        let got = op(self.mnt());
        if got != expected {
            self.fail(format!("{what}: {}", mismatch(&got, &expected)));
        }
        got.ok()
    }

    #[track_caller]
    pub fn check(&self, condition: bool, message: impl FnOnce() -> String) {
        if !condition {
            self.fail(message());
        }
    }

    #[track_caller]
    pub fn fail(&self, message: String) {
        let at = std::panic::Location::caller();
        self.failures
            .borrow_mut()
            .push(format!("line {}: {message}", at.line()));
    }

    /// Fails the test with every recorded mismatch.
    pub fn finish(self) {
        let failures = self.failures.take();
        drop(self);
        assert!(
            failures.is_empty(),
            "{} mismatch(es):\n  {}",
            failures.len(),
            failures.join("\n  ")
        );
    }
}

/// "mount gave X, plain dir gave Y", shortened around the first difference for long values.
pub fn mismatch<T: Debug>(got: &T, expected: &T) -> String {
    let (got, expected) = (format!("{got:?}"), format!("{expected:?}"));
    const KEEP: usize = 200;
    if got.len() <= KEEP && expected.len() <= KEEP {
        return format!("mount gave {got}, plain dir gave {expected}");
    }
    let first = got
        .bytes()
        .zip(expected.bytes())
        .take_while(|(a, b)| a == b)
        .count();
    let window = |s: &str| {
        let mut start = first.saturating_sub(60).min(s.len());
        while !s.is_char_boundary(start) {
            start -= 1;
        }
        let mut end = (first + 100).min(s.len());
        while !s.is_char_boundary(end) {
            end += 1;
        }
        format!("...{}... ({} chars)", &s[start..end], s.len())
    };
    format!(
        "differ at char {first}: mount gave {}, plain dir gave {}",
        window(&got),
        window(&expected)
    )
}
