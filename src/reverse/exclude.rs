//! Which plaintext entries reverse mode leaves out of the view: `--exclude PATTERN` and
//! `--exclude-from FILE`, in gitignore syntax, matched by the `ignore` crate's gitignore
//! matcher (the one ripgrep uses) rather than by globbing of our own.

use std::path::{Path, PathBuf};

use ignore::gitignore::{Gitignore, GitignoreBuilder};

/// The patterns of one mount.
#[derive(Debug)]
pub struct Exclusions(Gitignore);

impl Exclusions {
    /// Nothing excluded.
    pub fn none() -> Self {
        Exclusions(Gitignore::empty())
    }

    /// `patterns` and the lines of `files`, in that order (a later `!pattern` re-includes), for
    /// paths relative to `root`. The error is a one-line message naming the bad pattern or file.
    pub fn new(root: &Path, patterns: &[String], files: &[PathBuf]) -> Result<Self, String> {
        let mut builder = GitignoreBuilder::new(root);
        for pattern in patterns {
            builder
                .add_line(None, pattern)
                .map_err(|e| format!("--exclude {pattern:?}: {e}"))?;
        }
        for file in files {
            if let Some(e) = builder.add(file) {
                return Err(format!("--exclude-from {}: {e}", file.display()));
            }
        }
        builder
            .build()
            .map(Exclusions)
            .map_err(|e| format!("cannot use the exclusions: {e}"))
    }

    /// Whether the entry at `path` (relative to the view's root) is left out. Callers go from
    /// the root down, so an entry in an excluded directory is never asked about: as in git, a
    /// `!pattern` cannot bring it back.
    pub fn excludes(&self, path: &Path, is_dir: bool) -> bool {
        self.0.matched(path, is_dir).is_ignore()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gitignore_syntax() {
        let root = Path::new("/plain");
        let patterns = ["*.tmp", "/cache/", "!keep.tmp", "build/**/out"].map(String::from);
        let ex = Exclusions::new(root, &patterns, &[]).unwrap();
        assert!(ex.excludes(Path::new("a.tmp"), false));
        assert!(ex.excludes(Path::new("deep/b.tmp"), false));
        assert!(!ex.excludes(Path::new("keep.tmp"), false));
        assert!(ex.excludes(Path::new("cache"), true));
        assert!(!ex.excludes(Path::new("cache"), false), "directories only");
        assert!(!ex.excludes(Path::new("sub/cache"), true), "anchored");
        assert!(ex.excludes(Path::new("build/x/y/out"), false));
        assert!(!ex.excludes(Path::new("notes.txt"), false));
        assert!(!Exclusions::none().excludes(Path::new("a.tmp"), false));
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let err =
            Exclusions::new(Path::new("/"), &[], &[PathBuf::from("/nonexistent/x")]).unwrap_err();
        assert!(err.contains("/nonexistent/x"), "{err}");
    }
}
