//! Conflict copies: `candidates`, `is_sync_tool_file`, `conflict_name`, `is_conflict_name` and
//! `name_copies`.
//!
//! - On any name, in either encoding, `candidates` never panics and returns distinct candidates
//!   that could be backing names: a short one is a prefix of the name in the encoding's alphabet,
//!   of a length an encoding can have; a long-name entry or sidecar is `veilfs.longname.` and a
//!   43-character hash taken from the name.
//! - For every sync tool's naming pattern (Dropbox, with and without a user's name taken from the
//!   input, Syncthing, Nextcloud/ownCloud, OneDrive, Google Drive, Seafile), the copy of a real
//!   encoded name (the encryption of the input, so of any length and content) has that name among
//!   its candidates; the copy of a long name's entry or sidecar has that entry.
//! - `conflict_name(n, k)` is a valid name when `n` is (at most 255 bytes, UTF-8 kept), and
//!   `is_conflict_name` recognises it; `name_copies` gives distinct names, none already taken,
//!   whatever the order of the copies.
//!
//! Input: a flags byte (bit 0: base32; bits 1-3: which tool), then a name.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use veilfs::crypto::keys::MasterKey;
use veilfs::crypto::names::{validate_name, DirIv, NameCipher, NameEncoding};
use veilfs::layout::conflict::{
    candidates, conflict_name, is_conflict_name, is_sync_tool_file, name_copies, Candidate,
    HASH_LEN,
};
use veilfs::layout::longname::{hashed_name, LONGNAME_PREFIX, SIDECAR_SUFFIX};

/// What each tool inserts (before the last extension, or at the end of a name without one).
const TOOLS: &[&str] = &[
    " (conflicted copy 2024-03-01)",                      // Dropbox
    ".sync-conflict-20240301-101500-7XJRS2Q",             // Syncthing
    " (conflicted copy 2024-03-01 101500)",               // Nextcloud, ownCloud
    "-DESKTOP-4GH7Q2",                                    // OneDrive
    " (1)",                                               // Google Drive
    " (SFConflict jane@example.com 2024-03-01-10-15-00)", // Seafile
    " (Kopie mit Konflikt 2024-03-01)",                   // Dropbox, localized
];

fn plausible(core: &str, encoding: NameEncoding) -> bool {
    core.chars().all(|c| encoding.is_alphabet_char(c))
        && match encoding {
            NameEncoding::Base64Url => core.len() >= 23 && core.len() % 4 != 1,
            NameEncoding::Base32 => core.len() >= 28 && matches!(core.len() % 8, 0 | 2 | 4 | 5 | 7),
        }
}

fn check_candidates(name: &str, encoding: NameEncoding) -> Vec<Candidate> {
    let found = candidates(name, encoding);
    let distinct: HashSet<&Candidate> = found.iter().collect();
    assert_eq!(distinct.len(), found.len(), "{name:?}: {found:?}");
    for candidate in &found {
        match candidate {
            Candidate::Short(core) => {
                assert!(name.starts_with(core.as_str()) && core.len() < name.len());
                assert!(plausible(core, encoding), "{name:?}: {core:?}");
            }
            Candidate::Long(entry) | Candidate::Sidecar(entry) => {
                let hash = entry
                    .strip_prefix(LONGNAME_PREFIX)
                    .expect("long-name prefix");
                assert_eq!(hash.len(), HASH_LEN);
                assert!(hash
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
                assert!(name.contains(hash), "{name:?}: {entry:?}");
            }
            Candidate::DirIv | Candidate::Conf => {}
        }
    }
    found
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let encoding = if flags & 1 == 0 {
        NameEncoding::Base64Url
    } else {
        NameEncoding::Base32
    };
    let tool = TOOLS[usize::from(flags >> 1) % TOOLS.len()];
    let text = String::from_utf8_lossy(rest);

    // Any name.
    check_candidates(&text, encoding);
    let _ = is_sync_tool_file(&text);
    let _ = is_conflict_name(rest);

    // The copies of a real encoded name, its long-name entry and its sidecar.
    let keys = MasterKey::from_bytes(std::array::from_fn(|i| i as u8)).derive();
    let cipher = NameCipher::new(keys.name, encoding);
    if let Ok(core) = cipher.encrypt_name(&DirIv([0xd0; 16]), rest) {
        let user = text
            .chars()
            .filter(|c| !c.is_control() && !matches!(c, '/' | '(' | ')'))
            .take(40)
            .collect::<String>();
        let dropbox_user = format!(" ({user}'s conflicted copy 2024-03-01)");
        for suffix in [tool, dropbox_user.as_str()] {
            let copy = format!("{core}{suffix}");
            let found = check_candidates(&copy, encoding);
            assert!(
                found.contains(&Candidate::Short(core.clone())),
                "{copy:?}: {found:?}"
            );
        }
        let entry = hashed_name(&core);
        let hash = &entry[LONGNAME_PREFIX.len()..];
        let stem = LONGNAME_PREFIX.trim_end_matches('.');
        for (copy, want) in [
            (
                format!("{stem}{tool}.{hash}"),
                Candidate::Long(entry.clone()),
            ),
            (format!("{entry}{tool}"), Candidate::Long(entry.clone())),
            (
                format!("{entry}{tool}{SIDECAR_SUFFIX}"),
                Candidate::Sidecar(entry.clone()),
            ),
            (
                format!("{entry}{SIDECAR_SUFFIX}{tool}"),
                Candidate::Sidecar(entry.clone()),
            ),
        ] {
            let found = check_candidates(&copy, encoding);
            assert!(found.contains(&want), "{copy:?}: {found:?}");
        }
    }

    // Shown names of copies.
    if validate_name(rest).is_ok() {
        for n in [1, 2, 10, 99_999] {
            let shown = conflict_name(rest, n);
            assert!(validate_name(&shown).is_ok(), "{shown:?}");
            assert!(is_conflict_name(&shown));
            if std::str::from_utf8(rest).is_ok() {
                assert!(std::str::from_utf8(&shown).is_ok());
            }
        }
    }
    let mut parts = rest.split(|&b| b == b'\n');
    let taken: HashSet<Vec<u8>> = parts
        .next()
        .unwrap_or_default()
        .split(|&b| b == b'|')
        .map(<[u8]>::to_vec)
        .collect();
    let copies: Vec<(String, Vec<u8>)> = parts
        .take(16)
        .enumerate()
        .map(|(i, original)| (format!("copy{i}"), original.to_vec()))
        .collect();
    let mut reversed = copies.clone();
    reversed.reverse();
    let named = name_copies(&taken, copies);
    assert_eq!(named, name_copies(&taken, reversed));
    let mut shown = HashSet::new();
    for (_, _, name) in &named {
        assert!(
            !taken.contains(name) && shown.insert(name.clone()),
            "{named:?}"
        );
    }
});
