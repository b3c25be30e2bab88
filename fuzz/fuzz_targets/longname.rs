//! Long names: `BackingName::new`, `hash_matches` and `EntryName::classify` on arbitrary text.
//!
//! - An encoded name up to the threshold is its own entry; a longer one is stored under
//!   `veilfs.longname.<hash>` (which `classify` calls `Long`) with a sidecar `<entry>.name`
//!   (`Reserved`), and its hash matches, in any case when asked to ignore case.
//! - `hash_matches(h, e, _)` holds only for the hash of `e` (exactly, or ignoring ASCII case when
//!   asked): a sidecar cannot be made to match another entry.
//! - `classify` never panics, does not depend on ASCII case, and returns `Long` only for a name
//!   with the long-name prefix and no `.name` suffix, `Short` only for a name without the
//!   reserved prefix.
//!
//! Input: a flags byte (bit 0: ignore case; the rest scales the threshold to 64..=255), then text;
//! a '\n' in the text splits it into an entry name and an encoded name for `hash_matches`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use veilfs::layout::longname::{
    hash_matches, hashed_name, BackingName, LONGNAME_PREFIX, SIDECAR_SUFFIX,
};
use veilfs::layout::{EntryName, RESERVED_PREFIX};

fn starts_with_ignore_case(name: &str, prefix: &str) -> bool {
    name.as_bytes()
        .get(..prefix.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(prefix.as_bytes()))
}

fn kind(name: &EntryName) -> u8 {
    match name {
        EntryName::Reserved => 0,
        EntryName::Long(_) => 1,
        EntryName::Short(_) => 2,
    }
}

fn check_classify(name: &str) {
    let class = EntryName::classify(name);
    match class {
        EntryName::Long(n) => {
            assert_eq!(n, name);
            assert!(starts_with_ignore_case(name, LONGNAME_PREFIX));
            let hash = name[LONGNAME_PREFIX.len()..].to_ascii_lowercase();
            assert!(!hash.ends_with(SIDECAR_SUFFIX));
        }
        EntryName::Short(n) => {
            assert_eq!(n, name);
            assert!(!starts_with_ignore_case(name, RESERVED_PREFIX));
        }
        EntryName::Reserved => assert!(starts_with_ignore_case(name, RESERVED_PREFIX)),
    }
    for folded in [name.to_ascii_uppercase(), name.to_ascii_lowercase()] {
        assert_eq!(
            kind(&EntryName::classify(&folded)),
            kind(&class),
            "{name:?}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let ignore_case = flags & 1 == 1;
    let longname_max = 64 + usize::from(flags >> 1) * (255 - 64) / 127;
    let text = String::from_utf8_lossy(rest);

    check_classify(&text);

    let name = BackingName::new(text.to_string(), longname_max);
    assert_eq!(name.encoded(), text);
    match &name {
        BackingName::Short(entry) => {
            assert!(text.len() <= longname_max);
            assert_eq!(entry, &text);
            assert!(name.sidecar().is_none());
        }
        BackingName::Long { hashed, .. } => {
            assert!(text.len() > longname_max);
            assert_eq!(hashed, &hashed_name(&text));
            assert!(hash_matches(hashed, &text, false));
            assert!(hash_matches(&hashed.to_ascii_uppercase(), &text, true));
            assert_eq!(
                EntryName::classify(name.entry()),
                EntryName::Long(name.entry())
            );
            let sidecar = name.sidecar().expect("a long name has a sidecar");
            assert_eq!(sidecar, format!("{hashed}{SIDECAR_SUFFIX}"));
            assert_eq!(EntryName::classify(&sidecar), EntryName::Reserved);
            check_classify(&sidecar);
        }
    }

    if let Some((entry, encoded)) = text.split_once('\n') {
        let expected = hashed_name(encoded);
        if hash_matches(entry, encoded, ignore_case) {
            assert!(entry.eq_ignore_ascii_case(&expected));
            assert!(ignore_case || entry == expected);
        }
        assert!(hash_matches(&expected, encoded, ignore_case));
    }
});
