//! Sync tools' conflict copies of backing entries, one test per tool's naming pattern, through
//! the core (no mount): the copy is recognised, shown under a name veilfs chooses, translated
//! by decrypt-path, reported by fsck and renamed clean by `fsck --repair` — and neither side is
//! ever lost. The real Syncthing produces its conflicts in scripts/e2e-sync; the other tools
//! cannot run here, so their renames are done by hand, as each tool does them.

mod corevault;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use corevault::{long_name, name_of, CoreVault};
use veilfs::crypto::names::NameEncoding;
use veilfs::fsck::{self, Options, Outcome, Problem};
use veilfs::layout::diriv;
use veilfs::vault::{BackingEntry, ReservedCopy};

/// Inserts `text` before the last extension of `name` (a '.' that is not its first character),
/// or at its end: what every tool below does.
fn insert(name: &str, text: &str) -> String {
    match name.rfind('.') {
        Some(i) if i > 0 => format!("{}{text}{}", &name[..i], &name[i..]),
        _ => format!("{name}{text}"),
    }
}

/// Each tool's rename of one side of a conflict.
const TOOLS: &[(&str, &str)] = &[
    ("Dropbox", " (conflicted copy 2024-03-01)"),
    (
        "Dropbox with a user name",
        " (Jane Doe's conflicted copy 2024-03-01)",
    ),
    ("Syncthing", ".sync-conflict-20240301-101500-7XJRS2Q"),
    ("Nextcloud/ownCloud", " (conflicted copy 2024-03-01 101500)"),
    ("OneDrive", "-DESKTOP-4GH7Q2"),
    ("Google Drive", " (1)"),
    (
        "Seafile",
        " (SFConflict jane@example.com 2024-03-01-10-15-00)",
    ),
];

/// The plaintext listing of a directory as the mount shows it: names (conflict copies under the
/// names veilfs gives them) with the backing entry of each.
fn listing(v: &CoreVault, plain_dir: &str) -> BTreeMap<String, String> {
    let dir = if plain_dir.is_empty() {
        v.root.clone()
    } else {
        v.backing(plain_dir)
    };
    let dir = v.dir(&dir);
    let iv = diriv::read(&dir).unwrap();
    let mut names = BTreeMap::new();
    let mut undecoded = Vec::new();
    for entry in dir.entries().unwrap() {
        let name = entry.name.into_string().unwrap();
        match v.vault.decrypt_entry(&dir, &iv, &name) {
            Ok(Some(plain)) => {
                names.insert(String::from_utf8(plain).unwrap(), name);
            }
            Ok(None) => {}
            Err(_) => undecoded.push(name),
        }
    }
    let taken = names.keys().map(|n| n.as_bytes().to_vec()).collect();
    for copy in v
        .vault
        .conflict_copies(&dir, &iv, &taken, undecoded.iter().map(String::as_str))
    {
        names.insert(String::from_utf8(copy.shown).unwrap(), copy.backing);
    }
    names
}

fn repair(v: &CoreVault) -> fsck::Report {
    let options = Options {
        repair: true,
        ..Options::default()
    };
    fsck::check(&v.vault, &options, &|_| {})
}

fn check(v: &CoreVault) -> fsck::Report {
    fsck::check(&v.vault, &Options::default(), &|_| {})
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    File,
    LongFile,
    Dir,
    Symlink,
}

/// Makes `original` (contents "A") and a second entry with contents "B" that the tool renamed
/// to a conflict copy of it; returns the copy's backing name.
fn make_conflict(v: &CoreVault, kind: Kind, original: &str, suffix: &str) -> String {
    let other = format!("{original}.other-side");
    let (orig_path, other_path) = match kind {
        Kind::File | Kind::LongFile => (v.write(original, b"A"), v.write(&other, b"B")),
        Kind::Dir => {
            let a = v.mkdir(original);
            v.write(&format!("{original}/inside.txt"), b"A");
            let b = v.mkdir(&other);
            v.write(&format!("{other}/inside.txt"), b"B");
            (a, b)
        }
        Kind::Symlink => (
            v.symlink(original, "target-A"),
            v.symlink(&other, "target-B"),
        ),
    };
    let copy = insert(name_of(&orig_path), suffix);
    fs::rename(&other_path, orig_path.with_file_name(&copy)).unwrap();
    // The other side's own sidecar, if any, is not part of the conflict.
    let sidecar = other_path.with_file_name(format!("{}.name", name_of(&other_path)));
    let _ = fs::remove_file(sidecar);
    copy
}

fn shown(original: &str) -> String {
    String::from_utf8(veilfs::layout::conflict::conflict_name(
        original.as_bytes(),
        1,
    ))
    .unwrap()
}

fn assert_sides(v: &CoreVault, kind: Kind, original: &str, copy_plain: &str) {
    match kind {
        Kind::File | Kind::LongFile => {
            assert_eq!(v.read(original), b"A");
            assert_eq!(v.read(copy_plain), b"B");
        }
        Kind::Dir => {
            assert_eq!(v.read(&format!("{original}/inside.txt")), b"A");
            assert_eq!(v.read(&format!("{copy_plain}/inside.txt")), b"B");
        }
        Kind::Symlink => {
            for (name, target) in [(original, "target-A"), (copy_plain, "target-B")] {
                let link = fs::read_link(v.backing(name)).unwrap();
                let plain = v
                    .vault
                    .names()
                    .decrypt_symlink(link.as_os_str().as_encoded_bytes())
                    .unwrap();
                assert_eq!(plain, target.as_bytes());
            }
        }
    }
}

fn one_pattern(encoding: NameEncoding, tool: &str, suffix: &str, kind: Kind) {
    let v = CoreVault::new(encoding);
    let original = match kind {
        Kind::LongFile => long_name("report"),
        Kind::Dir => "photos".to_owned(),
        Kind::Symlink => "link".to_owned(),
        Kind::File => "report.txt".to_owned(),
    };
    let copy = make_conflict(&v, kind, &original, suffix);
    let context = format!("{tool} ({encoding:?}, {kind:?}): copy {copy}");
    let copy_plain = shown(&original);

    // The core recognises the copy, of the right entry.
    let iv = v.vault.root_iv();
    match v.vault.classify_entry(v.vault.root(), &iv, &copy) {
        BackingEntry::ConflictCopy { name, .. } => {
            assert_eq!(name, original.as_bytes(), "{context}")
        }
        other => panic!("{context}: classified as {other:?}"),
    }
    // Listed next to the original under a name veilfs chose; both sides readable.
    let names = listing(&v, "");
    assert_eq!(
        names.keys().cloned().collect::<Vec<_>>(),
        [original.clone(), copy_plain.clone()]
            .iter()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>(),
        "{context}"
    );
    assert_eq!(names[&copy_plain], copy, "{context}");
    assert_eq!(
        v.vault.decrypt_path(Path::new(&copy)).unwrap(),
        Path::new(&copy_plain),
        "{context}"
    );

    // fsck reports it; --repair renames it to the encryption of the shown name.
    let report = check(&v);
    assert!(!report.is_clean(), "{context}");
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.problem == Problem::ConflictCopy),
        "{context}: {:?}",
        report.findings
    );
    let repaired = repair(&v);
    assert!(repaired.is_clean(), "{context}: {:?}", repaired.findings);
    assert!(!v.root.join(&copy).exists(), "{context}: copy still there");
    assert!(
        check(&v).findings.is_empty(),
        "{context}: {:?}",
        check(&v).findings
    );
    assert_sides(&v, kind, &original, &copy_plain);
}

fn all_patterns(encoding: NameEncoding) {
    for &(tool, suffix) in TOOLS {
        for kind in [Kind::File, Kind::LongFile, Kind::Dir, Kind::Symlink] {
            one_pattern(encoding, tool, suffix, kind);
        }
    }
}

#[test]
fn every_tools_conflict_copy_is_shown_and_repaired_base64() {
    all_patterns(NameEncoding::Base64Url);
}

#[test]
fn every_tools_conflict_copy_is_shown_and_repaired_base32() {
    all_patterns(NameEncoding::Base32);
}

#[test]
fn sidecar_copies_restore_a_lost_sidecar_or_go_when_redundant() {
    for &(tool, suffix) in TOOLS {
        for encoding in [NameEncoding::Base64Url, NameEncoding::Base32] {
            let v = CoreVault::new(encoding);
            let name = long_name("kept");
            let entry = v.write(&name, b"payload");
            let sidecar = entry.with_file_name(format!("{}.name", name_of(&entry)));
            let copy = sidecar.with_file_name(insert(name_of(&sidecar), suffix));
            let context = format!("{tool} {encoding:?}: {}", name_of(&copy));

            // A redundant copy: hidden, and removed by --repair.
            fs::copy(&sidecar, &copy).unwrap();
            let iv = v.vault.root_iv();
            assert!(
                matches!(
                    v.vault.classify_entry(v.vault.root(), &iv, name_of(&copy)),
                    BackingEntry::ReservedCopy(ReservedCopy::Sidecar { valid: true, .. })
                ),
                "{context}"
            );
            assert_eq!(
                listing(&v, "").keys().collect::<Vec<_>>(),
                [&name],
                "{context}"
            );
            assert!(repair(&v).is_clean(), "{context}");
            assert!(!copy.exists() && sidecar.exists(), "{context}");

            // The sidecar lost, only the copy left: the entry still reads, and --repair puts the
            // copy in its place.
            fs::rename(&sidecar, &copy).unwrap();
            assert_eq!(
                listing(&v, "").keys().collect::<Vec<_>>(),
                [&name],
                "{context}"
            );
            assert_eq!(v.read(&name), b"payload", "{context}");
            let report = repair(&v);
            assert!(report.is_clean(), "{context}: {:?}", report.findings);
            assert!(sidecar.exists() && !copy.exists(), "{context}");
            assert!(check(&v).findings.is_empty(), "{context}");
        }
    }
}

#[test]
fn conflicting_directory_iv_copies_are_recognised() {
    let v = CoreVault::new(NameEncoding::Base64Url);
    let dir = v.mkdir("docs");
    v.write("docs/a.txt", b"a");
    // A byte-identical copy (what derived IVs make of the "same directory created twice" case).
    let copy = dir.join("veilfs (conflicted copy 2024-03-01).diriv");
    fs::copy(dir.join("veilfs.diriv"), &copy).unwrap();
    let report = check(&v);
    assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
    assert_eq!(report.findings[0].problem, Problem::DirIvCopy);
    assert!(repair(&v).is_clean());
    assert!(!copy.exists());
}

#[test]
fn names_under_a_foreign_copied_iv_are_reported_and_never_re_encrypted() {
    // A copy of veilfs.diriv holding another IV, and a name encrypted under it: what someone
    // planting another directory's IV and names leaves (a rename now re-encrypts names, so a
    // genuine copy holds the directory's own IV). Nothing authenticates it, so --repair leaves
    // the name alone, and deletes nothing. (It used to be re-encrypted with --trust-iv-copies,
    // which re-opened the attack and is gone.)
    let v = CoreVault::new(NameEncoding::Base64Url);
    let dir = v.mkdir("shared");
    v.write("shared/kept.txt", b"kept");
    let iv = v.iv(&dir);
    let other = veilfs::crypto::names::DirIv([0x42; 16]);
    v.vault
        .create_file(&v.dir(&dir), &other, b"other-side.txt", b"other")
        .unwrap();
    fs::write(
        dir.join("veilfs.sync-conflict-20240301-101500-7XJRS2Q.diriv"),
        other.0,
    )
    .unwrap();
    let report = check(&v);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.problem == Problem::NameUnderOtherIv),
        "{:?}",
        report.findings
    );
    let after = repair(&v);
    assert!(
        after
            .findings
            .iter()
            .any(|f| f.problem == Problem::NameUnderOtherIv && f.outcome == Outcome::Unrepairable),
        "{:?}",
        after.findings
    );
    assert!(!listing(&v, "shared").contains_key("other-side.txt"));
    let planted = v.vault.backing_name(&other, b"other-side.txt").unwrap();
    assert!(dir.join(planted.entry()).exists(), "nothing is deleted");
    assert_eq!(v.read("shared/kept.txt"), b"kept");
    assert_eq!(v.iv(&dir), iv);
}

#[test]
fn a_provider_cannot_plant_a_name() {
    let v = CoreVault::new(NameEncoding::Base64Url);
    let file = v.write("invoice.pdf", b"real");
    let planted = format!("{} (evil.sh; rm -rf ~)", name_of(&file));
    fs::copy(&file, file.with_file_name(&planted)).unwrap();
    let names = listing(&v, "");
    assert_eq!(
        names.keys().collect::<Vec<_>>(),
        ["invoice (conflict 1).pdf", "invoice.pdf"]
    );
    assert!(names.keys().all(|n| !n.contains("evil")));
}

#[test]
fn names_matching_no_pattern_stay_hidden_and_are_reported() {
    let v = CoreVault::new(NameEncoding::Base64Url);
    v.write("a.txt", b"a");
    let junk = v
        .root
        .join("QUJDREVGR0hJSktMTU5PUFFSU1RVVldY (conflicted copy 2024-03-01)");
    fs::write(&junk, b"x").unwrap();
    fs::write(v.root.join("random name.bin"), b"x").unwrap();
    fs::create_dir(v.root.join(".stfolder")).unwrap();
    assert_eq!(listing(&v, "").keys().collect::<Vec<_>>(), ["a.txt"]);
    let report = check(&v);
    let undecodable: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.problem == Problem::UndecodableName)
        .map(|f| f.backing.display().to_string())
        .collect();
    assert_eq!(undecodable.len(), 2, "{:?}", report.findings);
    assert_eq!(
        report.checked.ignored, 1,
        ".stfolder is a sync tool's, not a problem"
    );
    assert!(
        !repair(&v).is_clean(),
        "undecodable names are never repaired away"
    );
    assert!(junk.exists());
}

#[test]
fn two_devices_renaming_the_same_copy_agree() {
    // Names are deterministic: the same directory state gives the same clean name everywhere.
    let a = CoreVault::new(NameEncoding::Base64Url);
    let copy = make_conflict(
        &a,
        Kind::File,
        "notes.md",
        ".sync-conflict-20240301-101500-7XJRS2Q",
    );
    assert!(a.root.join(&copy).exists());
    let b_root = a.dir.path().join("device-b");
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(&a.root)
        .arg(&b_root)
        .status()
        .unwrap();
    assert!(status.success());
    repair(&a);
    assert!(!a.root.join(&copy).exists());
    let mut a_names: Vec<_> = fs::read_dir(&a.root)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    a_names.sort();
    // Device B: the same key, its own copy of the backing directory.
    let b = veilfs::vault::Vault::open(&b_root, &keys_of(&a), a.vault.features()).unwrap();
    fsck::check(
        &b,
        &Options {
            repair: true,
            ..Options::default()
        },
        &|_| {},
    );
    let mut b_names: Vec<_> = fs::read_dir(&b_root)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    b_names.sort();
    assert_eq!(a_names, b_names);
}

fn keys_of(v: &CoreVault) -> veilfs::crypto::keys::VaultKeys {
    let secret = veilfs::config::Secret::Password(corevault::PASSWORD.as_bytes());
    veilfs::config::Config::load(&v.root)
        .unwrap()
        .unlock(&secret, None)
        .unwrap()
        .keys()
        .clone()
}
