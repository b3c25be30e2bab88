//! Sync tools' conflict copies of backing entries, and the names veilfs shows them under.
//!
//! When two devices change one file while apart, sync tools keep both versions by renaming one,
//! inserting text before the name's last extension or at its end:
//!
//! | tool                 | copy of `X.ext`                                          |
//! |----------------------|----------------------------------------------------------|
//! | Dropbox              | `X (conflicted copy YYYY-MM-DD).ext`, `X (NAME's conflicted copy YYYY-MM-DD).ext` (localized) |
//! | Syncthing            | `X.sync-conflict-YYYYMMDD-HHMMSS-DEVICEID.ext`           |
//! | Nextcloud, ownCloud  | `X (conflicted copy YYYY-MM-DD HHMMSS).ext`              |
//! | OneDrive             | `X-HOSTNAME.ext`                                         |
//! | Google Drive         | `X (1).ext`                                              |
//! | Seafile              | `X (SFConflict EMAIL YYYY-MM-DD-HH-MM-SS).ext`           |
//!
//! An encoded name has no '.', so a tool appends to it; a long-name entry
//! `veilfs.longname.HASH` has the "extension" `.HASH`, so tools insert before it; its sidecar's
//! extension is `.name`. Encoded names and hashes use alphabets without ' ', '(' and '.', so the
//! original is found by cutting at the first character outside the alphabet — except OneDrive's
//! `-HOSTNAME`, which base64url's alphabet absorbs: there every cut at a '-' or '_' is a
//! candidate. Candidates are only *candidates*: the caller keeps one only if it authenticates
//! (SIV for names, SHA-256 for sidecars), so a provider cannot make veilfs show a name it chose.
//!
//! Nothing of the provider's text reaches the plaintext: a copy is shown as
//! `stem (conflict N).ext` ([`conflict_name`]), N chosen by veilfs.

use std::collections::HashSet;

use super::longname::{LONGNAME_PREFIX, SIDECAR_SUFFIX};
use crate::crypto::names::{NameEncoding, NAME_MAX};

/// Length of the base64url SHA-256 in `veilfs.longname.<hash>`.
pub const HASH_LEN: usize = 43;
/// At most this many cuts at '-' or '_' are tried in a base64url name (OneDrive's
/// `-HOSTNAME`, where a host name may itself hold a few dashes).
const MAX_CUTS: usize = 16;
/// What veilfs inserts into the plaintext name of a conflict copy: `stem (conflict N).ext`.
const CONFLICT_MARK: &str = "conflict";

/// What a name that is not a plain backing name may be a copy of.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Candidate {
    /// The encoded name (a short entry) given.
    Short(String),
    /// The long-name entry `veilfs.longname.<hash>` given.
    Long(String),
    /// The sidecar of the long-name entry given (`veilfs.longname.<hash>`, without `.name`).
    Sidecar(String),
    /// `veilfs.diriv`.
    DirIv,
    /// `veilfs.conf`.
    Conf,
}

/// The names `name` may be a sync tool's copy of, most likely first. Empty for a name that has no
/// alphabet prefix at all (a sync tool's own files, `.DS_Store`, ...).
pub fn candidates(name: &str, encoding: NameEncoding) -> Vec<Candidate> {
    let mut found = Vec::new();
    if starts_with_ignore_case(name, "veilfs") {
        reserved_candidates(name, &mut found);
    } else {
        short_candidates(name, encoding, &mut found);
    }
    let mut seen = HashSet::new();
    found.retain(|c| seen.insert(c.clone()));
    found
}

fn short_candidates(name: &str, encoding: NameEncoding, found: &mut Vec<Candidate>) {
    let end = name
        .find(|c: char| !encoding.is_alphabet_char(c))
        .unwrap_or(name.len());
    let core = &name[..end];
    if core.len() < name.len() && plausible_length(core.len(), encoding) {
        found.push(Candidate::Short(core.to_owned()));
    }
    if encoding == NameEncoding::Base64Url {
        let cuts = core
            .char_indices()
            .rev()
            .filter(|&(_, c)| c == '-' || c == '_')
            .take(MAX_CUTS);
        for (at, _) in cuts {
            if plausible_length(at, encoding) {
                found.push(Candidate::Short(core[..at].to_owned()));
            }
        }
    }
}

/// Whether an encoded name of `len` characters can exist: at least one plaintext byte after the
/// 16-byte SIV tag, and a length unpadded base64url / base32 produces.
fn plausible_length(len: usize, encoding: NameEncoding) -> bool {
    match encoding {
        NameEncoding::Base64Url => len >= 23 && len % 4 != 1,
        NameEncoding::Base32 => len >= 28 && matches!(len % 8, 0 | 2 | 4 | 5 | 7),
    }
}

fn reserved_candidates(name: &str, found: &mut Vec<Candidate>) {
    let lower = name.to_ascii_lowercase();
    let prefix = LONGNAME_PREFIX.trim_end_matches('.');
    if let Some(rest) = lower.strip_prefix(prefix) {
        // Runs of hash-alphabet characters of at least a hash's length: the hash is the first or
        // the last HASH_LEN characters of one (a OneDrive suffix may have merged into it).
        let offset = prefix.len();
        let original_rest = &name[offset..];
        let mut start = None;
        for (i, c) in rest.char_indices().chain([(rest.len(), ' ')]) {
            let in_alphabet = c.is_ascii_alphanumeric() || c == '-' || c == '_';
            match (in_alphabet, start) {
                (true, None) => start = Some(i),
                (false, Some(s)) => {
                    start = None;
                    if i - s < HASH_LEN {
                        continue;
                    }
                    let after = &rest[i..];
                    let sidecar =
                        after.starts_with(SIDECAR_SUFFIX) || after.ends_with(SIDECAR_SUFFIX);
                    for hash in [
                        &original_rest[s..s + HASH_LEN],
                        &original_rest[i - HASH_LEN..i],
                    ] {
                        let entry = format!("{LONGNAME_PREFIX}{hash}");
                        found.push(if sidecar {
                            Candidate::Sidecar(entry)
                        } else {
                            Candidate::Long(entry)
                        });
                    }
                }
                _ => {}
            }
        }
        return;
    }
    let tail = &lower["veilfs".len()..];
    if tail.contains("diriv") {
        found.push(Candidate::DirIv);
    } else if tail.contains("conf") {
        found.push(Candidate::Conf);
    }
}

fn starts_with_ignore_case(name: &str, prefix: &str) -> bool {
    name.get(..prefix.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
}

/// Files sync tools keep in the folders they sync (markers, settings, temporary files of a
/// transfer in progress): not part of the vault, and nothing fsck complains about.
pub fn is_sync_tool_file(name: &str) -> bool {
    const EXACT: &[&str] = &[
        ".stfolder",
        ".stignore",
        ".stversions",
        ".stglobalignore",
        ".dropbox",
        ".dropbox.attr",
        ".dropbox.cache",
        ".DS_Store",
        "desktop.ini",
        "Thumbs.db",
        "Icon\r",
        ".sync",
        ".owncloudsync.log",
        ".nextcloudsync.log",
        ".sync_journal.db",
        ".SyncID",
        ".SyncIgnore",
        ".SyncArchive",
        ".tresorit",
    ];
    EXACT.contains(&name)
        || name.starts_with(".syncthing.") && name.ends_with(".tmp")
        || name.starts_with("~syncthing~") && name.ends_with(".tmp")
        || name.starts_with(".stfolder")
        || name.starts_with("._sync_")
        || name.starts_with(".sync_") && name.contains(".db")
        || name.starts_with(".~lock.")
        || name.ends_with(".partial")
}

/// The plaintext name veilfs shows conflict copy `n` (1, 2, ...) of `name` under:
/// `stem (conflict n).ext`, inserted before the last extension (a leading dot is no extension),
/// the stem shortened if the result would exceed 255 bytes.
pub fn conflict_name(name: &[u8], n: u32) -> Vec<u8> {
    let mark = format!(" ({CONFLICT_MARK} {n})");
    let split = match name.iter().rposition(|&b| b == b'.') {
        Some(dot)
            if dot > 0 && dot + 1 < name.len() && name.len() - dot + mark.len() < NAME_MAX / 2 =>
        {
            dot
        }
        _ => name.len(),
    };
    let (stem, ext) = name.split_at(split);
    let room = NAME_MAX - mark.len() - ext.len();
    let mut stem_len = stem.len().min(room);
    // Do not cut a UTF-8 character in half.
    if std::str::from_utf8(stem).is_ok() {
        while stem_len > 0
            && !std::str::from_utf8(stem)
                .unwrap()
                .is_char_boundary(stem_len)
        {
            stem_len -= 1;
        }
    }
    let mut out = stem[..stem_len].to_vec();
    out.extend_from_slice(mark.as_bytes());
    out.extend_from_slice(ext);
    out
}

/// Whether `name` has the form [`conflict_name`] gives: it may be the shown name of a copy.
pub fn is_conflict_name(name: &[u8]) -> bool {
    let mark = format!(" ({CONFLICT_MARK} ");
    name.windows(mark.len()).any(|w| w == mark.as_bytes())
}

/// Assigns shown names to the conflict copies of one directory: for each `(backing name,
/// original plaintext name)`, `stem (conflict N).ext` with the smallest N whose name is not in
/// `taken` (the directory's plaintext names) nor given to an earlier copy. Copies are taken in
/// order of original name, then backing name, so two devices with the same directory state
/// choose the same names. Returns `(backing name, original, shown)`.
pub fn name_copies(
    taken: &HashSet<Vec<u8>>,
    copies: Vec<(String, Vec<u8>)>,
) -> Vec<(String, Vec<u8>, Vec<u8>)> {
    let mut copies = copies;
    copies.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
    let mut given: HashSet<Vec<u8>> = HashSet::new();
    copies
        .into_iter()
        .map(|(backing, original)| {
            let shown = (1..)
                .map(|n| conflict_name(&original, n))
                .find(|name| !taken.contains(name) && !given.contains(name))
                .expect("some number is free");
            given.insert(shown.clone());
            (backing, original, shown)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use NameEncoding::{Base32, Base64Url};

    const B64: &str = "Q-rTRDffW4ImeGiRVovy-CJbYjqk3U4N_LY";
    const B32: &str = "ipvngrbx35nyejtyncivnc7s7arfwyr2utou4dp4wy";
    const HASH: &str = "CpPjvSY_sN9PpXKRZOY2uDk7Ofi89NWrl7czxSU5kho";

    fn short(s: &str) -> Candidate {
        Candidate::Short(s.to_owned())
    }
    fn long() -> Candidate {
        Candidate::Long(format!("veilfs.longname.{HASH}"))
    }
    fn sidecar() -> Candidate {
        Candidate::Sidecar(format!("veilfs.longname.{HASH}"))
    }

    #[test]
    fn every_tool_pattern_on_a_short_name_yields_its_core() {
        for encoding in [Base64Url, Base32] {
            let core = if encoding == Base64Url { B64 } else { B32 };
            for suffix in [
                " (conflicted copy 2024-03-01)",
                " (Jane Doe's conflicted copy 2024-03-01)",
                ".sync-conflict-20240301-101500-ABCDEFG",
                " (conflicted copy 2024-03-01 101500)",
                "-LAPTOP-7",
                " (1)",
                " (SFConflict jane@example.com 2024-03-01-10-15-00)",
                " (Kopie mit Konflikt 2024-03-01)",
            ] {
                let found = candidates(&format!("{core}{suffix}"), encoding);
                assert!(
                    found.contains(&short(core)),
                    "{encoding:?} {suffix:?}: {found:?}"
                );
            }
        }
    }

    #[test]
    fn onedrive_suffixes_are_cut_at_each_dash_from_the_right() {
        // A core that holds dashes itself, with a host name that does too.
        let found = candidates(&format!("{B64}-MY-DESK-PC"), Base64Url);
        assert!(found.contains(&short(B64)), "{found:?}");
        assert!(found.len() <= MAX_CUTS + 1);
        assert!(candidates(&format!("{B32}-my-desk-pc"), Base32).contains(&short(B32)));
    }

    #[test]
    fn long_name_entries_and_sidecars_are_told_apart() {
        for (name, want) in [
            (
                format!("veilfs.longname.sync-conflict-20240301-101500-ABCDEFG.{HASH}"),
                long(),
            ),
            (
                format!("veilfs.longname (conflicted copy 2024-03-01).{HASH}"),
                long(),
            ),
            (
                format!("veilfs.longname (Jane's conflicted copy 2024-03-01).{HASH}"),
                long(),
            ),
            (format!("veilfs.longname-LAPTOP.{HASH}"), long()),
            (format!("veilfs.longname (1).{HASH}"), long()),
            (format!("veilfs.longname.{HASH} (1)"), long()),
            (format!("veilfs.longname.{HASH}-LAPTOP"), long()),
            (
                format!("veilfs.longname.{HASH} (conflicted copy 2024-03-01).name"),
                sidecar(),
            ),
            (
                format!("veilfs.longname.{HASH}.sync-conflict-20240301-101500-ABCDEFG.name"),
                sidecar(),
            ),
            (format!("veilfs.longname.{HASH}-LAPTOP.name"), sidecar()),
            (format!("veilfs.longname.{HASH} (1).name"), sidecar()),
            (format!("veilfs.longname.{HASH}.name (1)"), sidecar()),
            (
                format!("VEILFS.LONGNAME.{HASH} (1).NAME"),
                Candidate::Sidecar(format!("veilfs.longname.{HASH}")),
            ),
        ] {
            let found = candidates(&name, Base64Url);
            assert!(found.contains(&want), "{name}: {found:?}");
        }
    }

    #[test]
    fn reserved_file_copies_are_recognised() {
        assert_eq!(
            candidates("veilfs (conflicted copy 2024-03-01).diriv", Base64Url),
            [Candidate::DirIv]
        );
        assert_eq!(
            candidates("veilfs.sync-conflict-20240301-101500-ABCDEFG.diriv", Base32),
            [Candidate::DirIv]
        );
        assert_eq!(candidates("veilfs (1).conf", Base64Url), [Candidate::Conf]);
    }

    #[test]
    fn foreign_names_have_no_candidates() {
        for name in [
            ".stfolder",
            ".DS_Store",
            "desktop.ini",
            "short (1)",
            "x.sync-conflict-1-2-3",
        ] {
            assert!(candidates(name, Base64Url).is_empty(), "{name}");
            assert!(candidates(name, Base32).is_empty(), "{name}");
        }
    }

    #[test]
    fn shown_names_keep_the_extension_and_fit() {
        assert_eq!(conflict_name(b"report.txt", 1), b"report (conflict 1).txt");
        assert_eq!(
            conflict_name(b"archive.tar.gz", 2),
            b"archive.tar (conflict 2).gz"
        );
        assert_eq!(conflict_name(b"Makefile", 1), b"Makefile (conflict 1)");
        assert_eq!(conflict_name(b".bashrc", 1), b".bashrc (conflict 1)");
        assert_eq!(conflict_name(b"trailing.", 1), b"trailing. (conflict 1)");
        let long = conflict_name(&[b'a'; 255], 12);
        assert_eq!(long.len(), 255);
        assert!(long.ends_with(b" (conflict 12)"));
        let mut utf8 = "é".repeat(127).into_bytes();
        utf8.extend(b".txt");
        let shown = conflict_name(&utf8, 1);
        assert!(shown.len() <= 255 && std::str::from_utf8(&shown).is_ok());
    }

    #[test]
    fn numbering_skips_taken_names_and_is_order_independent() {
        let taken: HashSet<Vec<u8>> = [b"a.txt".to_vec(), b"a (conflict 1).txt".to_vec()].into();
        let copies = vec![
            ("zz".to_owned(), b"a.txt".to_vec()),
            ("yy".to_owned(), b"a.txt".to_vec()),
        ];
        let mut reversed = copies.clone();
        reversed.reverse();
        let named = name_copies(&taken, copies);
        assert_eq!(named, name_copies(&taken, reversed));
        assert_eq!(
            named[0],
            (
                "yy".to_owned(),
                b"a.txt".to_vec(),
                b"a (conflict 2).txt".to_vec()
            )
        );
        assert_eq!(named[1].2, b"a (conflict 3).txt");
    }
}
