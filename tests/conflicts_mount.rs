//! Conflict copies through a real mount: a read-write mount lists a copy under the name veilfs
//! picks and renames it to that name's encryption (the vault is clean afterwards); a read-only
//! mount lists and reads it without touching the backing directory.

mod corevault;

use std::fs;

use corevault::{long_name, name_of, CoreVault, Mounted};
use veilfs::crypto::names::NameEncoding;

fn backing_names(v: &CoreVault) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(&v.root)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// `report.txt` ("A") and its Syncthing conflict copy ("B"); a long-named file and its Dropbox
/// copy; a directory and its Nextcloud copy.
fn conflicted_vault(encoding: NameEncoding) -> CoreVault {
    let v = CoreVault::new(encoding);
    let a = v.write("report.txt", b"A");
    let b = v.write("tmp-b", b"B");
    fs::rename(
        &b,
        a.with_file_name(format!(
            "{}.sync-conflict-20240301-101500-7XJRS2Q",
            name_of(&a)
        )),
    )
    .unwrap();

    let long = long_name("minutes");
    let a = v.write(&long, b"long A");
    let b = v.write("tmp-long-b", b"long B");
    let copy = name_of(&a).replacen(
        "veilfs.longname.",
        "veilfs.longname (conflicted copy 2024-03-01).",
        1,
    );
    fs::rename(&b, a.with_file_name(copy)).unwrap();

    let d = v.mkdir("photos");
    v.write("photos/one.jpg", b"one");
    let e = v.mkdir("tmp-dir");
    v.write("tmp-dir/two.jpg", b"two");
    fs::rename(
        &e,
        d.with_file_name(format!(
            "{} (conflicted copy 2024-03-01 101500)",
            name_of(&d)
        )),
    )
    .unwrap();
    v
}

fn expected_names() -> Vec<String> {
    let long = long_name("minutes");
    let mut names = vec![
        "photos".to_owned(),
        "photos (conflict 1)".to_owned(),
        "report (conflict 1).txt".to_owned(),
        "report.txt".to_owned(),
        long.clone(),
        long.replace(".txt", " (conflict 1).txt"),
    ];
    names.sort();
    names
}

fn assert_both_sides(m: &Mounted) {
    assert_eq!(m.list(""), expected_names());
    assert_eq!(fs::read(m.path("report.txt")).unwrap(), b"A");
    assert_eq!(fs::read(m.path("report (conflict 1).txt")).unwrap(), b"B");
    let long = long_name("minutes");
    assert_eq!(fs::read(m.path(&long)).unwrap(), b"long A");
    assert_eq!(
        fs::read(m.path(&long.replace(".txt", " (conflict 1).txt"))).unwrap(),
        b"long B"
    );
    assert_eq!(m.list("photos"), ["one.jpg"]);
    assert_eq!(m.list("photos (conflict 1)"), ["two.jpg"]);
    assert_eq!(
        fs::read(m.path("photos (conflict 1)/two.jpg")).unwrap(),
        b"two"
    );
}

#[test]
fn a_read_only_mount_shows_copies_and_changes_nothing() {
    for encoding in [NameEncoding::Base64Url, NameEncoding::Base32] {
        let v = conflicted_vault(encoding);
        let before = backing_names(&v);
        {
            let m = Mounted::new(&v, true);
            assert_both_sides(&m);
        }
        assert_eq!(
            backing_names(&v),
            before,
            "a read-only mount renames nothing"
        );
    }
}

#[test]
fn a_read_write_mount_renames_copies_clean() {
    for encoding in [NameEncoding::Base64Url, NameEncoding::Base32] {
        let v = conflicted_vault(encoding);
        {
            let m = Mounted::new(&v, false);
            assert_both_sides(&m);
            // The copy is an ordinary entry now: it can be removed to settle the conflict.
            fs::remove_file(m.path("report (conflict 1).txt")).unwrap();
            assert!(!m.list("").contains(&"report (conflict 1).txt".to_owned()));
        }
        // Clean: every backing name is a name or a reserved one, and fsck agrees.
        let report = veilfs::fsck::check(&v.vault, &Default::default(), &|_| {});
        assert!(report.findings.is_empty(), "{:?}", report.findings);
        assert_eq!(v.read("photos (conflict 1)/two.jpg"), b"two");
        assert!(backing_names(&v)
            .iter()
            .all(|n| !n.contains(' ') && !n.contains("sync-conflict")));
    }
}

/// OneDrive's, Google Drive's and Seafile's copies (made by hand, as each tool renames: text
/// appended to an encoded name, inserted before a long-name entry's `.HASH`) of a file, of a
/// long-named file and of a directory, through a real mount: listed under veilfs's names with
/// the right contents, read-only changing nothing, read-write renaming them clean.
#[test]
fn onedrive_google_drive_and_seafile_copies_through_a_mount() {
    let tools = [
        ("OneDrive", "-DESKTOP-4GH7Q2"),
        ("Google Drive", " (1)"),
        (
            "Seafile",
            " (SFConflict jane@example.com 2024-03-01-10-15-00)",
        ),
    ];
    for (tool, text) in tools {
        for encoding in [NameEncoding::Base64Url, NameEncoding::Base32] {
            let what = format!("{tool}, {encoding:?}");
            let v = CoreVault::new(encoding);
            let a = v.write("notes.txt", b"A");
            let b = v.write("tmp-b", b"B");
            fs::rename(&b, a.with_file_name(format!("{}{text}", name_of(&a)))).unwrap();
            let long = long_name("agenda");
            let a = v.write(&long, b"long A");
            let b = v.write("tmp-long-b", b"long B");
            let copy =
                name_of(&a).replacen("veilfs.longname.", &format!("veilfs.longname{text}."), 1);
            fs::rename(&b, a.with_file_name(copy)).unwrap();
            let d = v.mkdir("music");
            v.write("music/one.ogg", b"one");
            let e = v.mkdir("tmp-dir");
            v.write("tmp-dir/two.ogg", b"two");
            fs::rename(&e, d.with_file_name(format!("{}{text}", name_of(&d)))).unwrap();

            let mut expected = vec![
                "music".to_owned(),
                "music (conflict 1)".to_owned(),
                "notes (conflict 1).txt".to_owned(),
                "notes.txt".to_owned(),
                long.clone(),
                long.replace(".txt", " (conflict 1).txt"),
            ];
            expected.sort();
            let check = |m: &Mounted| {
                assert_eq!(m.list(""), expected, "{what}");
                for (name, content) in [
                    ("notes.txt", &b"A"[..]),
                    ("notes (conflict 1).txt", b"B"),
                    (&long, b"long A"),
                    (&long.replace(".txt", " (conflict 1).txt"), b"long B"),
                    ("music/one.ogg", b"one"),
                    ("music (conflict 1)/two.ogg", b"two"),
                ] {
                    assert_eq!(fs::read(m.path(name)).unwrap(), content, "{what}: {name}");
                }
            };
            let before = backing_names(&v);
            check(&Mounted::new(&v, true));
            assert_eq!(backing_names(&v), before, "{what}: a read-only mount");
            check(&Mounted::new(&v, false));
            let report = veilfs::fsck::check(&v.vault, &Default::default(), &|_| {});
            assert!(report.findings.is_empty(), "{what}: {:?}", report.findings);
            assert!(
                backing_names(&v).iter().all(|n| !n.contains(text)),
                "{what}: {:?}",
                backing_names(&v)
            );
        }
    }
}
