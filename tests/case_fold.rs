//! Case-insensitive sync targets: base32 names never collide when case is ignored, and a base32
//! vault whose backing names were all upper- or lower-cased (as a case-insensitive round trip can
//! leave them, long-name entries and their sidecars included) still mounts and reads, and
//! `fsck --repair` gives every name its own case back.

mod corevault;

use std::collections::HashSet;
use std::fs;
use std::path::Path;

use corevault::{long_name, rename_all, CoreVault, Mounted};
use veilfs::crypto::names::{DirIv, NameEncoding};
use veilfs::fsck::{self, Options, Problem};
use veilfs::layout::longname::BackingName;

#[test]
fn base32_names_never_collide_ignoring_case() {
    let v = CoreVault::new(NameEncoding::Base32);
    let iv = DirIv([3; 16]);
    let mut seen = HashSet::new();
    let mut long_entries = HashSet::new();
    for i in 0..5000u32 {
        // Names that differ only in case themselves, short and long.
        for name in [
            format!("File-{i}.TXT"),
            format!("file-{i}.txt"),
            format!("{}-{i}", "Ab".repeat(70)),
        ] {
            let backing = v.vault.backing_name(&iv, name.as_bytes()).unwrap();
            let encoded = backing.encoded();
            assert_eq!(
                encoded,
                encoded.to_ascii_lowercase(),
                "base32 names are lowercase"
            );
            assert!(
                seen.insert(encoded.to_ascii_lowercase()),
                "collision for {name}"
            );
            if let BackingName::Long { hashed, .. } = &backing {
                // The hash is base64url (mixed case): folded, it still identifies the name.
                assert!(
                    long_entries.insert(hashed.to_ascii_lowercase()),
                    "long-name collision for {name}"
                );
            }
        }
    }
    assert!(long_entries.len() >= 5000);
}

fn fill(v: &CoreVault) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    v.mkdir("Docs");
    v.mkdir(&long_name("Deep"));
    v.mkdir(&format!("{}/sub", long_name("Deep")));
    for (i, plain) in [
        "top.txt".to_owned(),
        "Docs/Report.PDF".to_owned(),
        format!("Docs/{}", long_name("Long")),
        format!("{}/sub/{}", long_name("Deep"), long_name("inner")),
        format!("{}/x", long_name("Deep")),
    ]
    .into_iter()
    .enumerate()
    {
        let data: Vec<u8> = (0..5000 + i * 777).map(|b| (b * 7 + i) as u8).collect();
        v.write(&plain, &data);
        files.push((plain, data));
    }
    v.symlink("Docs/link", "Report.PDF");
    files
}

fn check(v: &CoreVault, repair: bool) -> fsck::Report {
    fsck::check(
        &v.vault,
        &Options {
            repair,
            ..Options::default()
        },
        &|_| {},
    )
}

#[test]
fn a_lower_cased_vault_reads_and_is_repaired() {
    let v = CoreVault::new(NameEncoding::Base32);
    let files = fill(&v);
    rename_all(&v.root, &|n| n.to_ascii_lowercase(), &|_| false);
    for (plain, data) in &files {
        assert_eq!(&v.read(plain), data, "{plain}");
    }
    let report = check(&v, false);
    assert!(
        !report.findings.is_empty()
            && report
                .findings
                .iter()
                .all(|f| f.problem == Problem::Recased),
        "{:?}",
        report.findings
    );
    assert!(check(&v, true).is_clean());
    assert!(
        check(&v, false).findings.is_empty(),
        "{:?}",
        check(&v, false).findings
    );
    for (plain, data) in &files {
        assert_eq!(&v.read(plain), data, "{plain}");
    }
}

#[test]
fn an_upper_cased_vault_mounts_and_reads() {
    for lower in [false, true] {
        let v = CoreVault::new(NameEncoding::Base32);
        let files = fill(&v);
        // Everything but the config, which is read before any key exists: see the test below.
        let recase = move |n: &str| {
            if lower {
                n.to_ascii_lowercase()
            } else {
                n.to_ascii_uppercase()
            }
        };
        rename_all(&v.root, &recase, &|n| n == "veilfs.conf");
        {
            let m = Mounted::new(&v, true);
            assert_eq!(
                m.list("Docs"),
                [
                    long_name("Long"),
                    "Report.PDF".to_owned(),
                    "link".to_owned()
                ]
            );
            for (plain, data) in &files {
                assert_eq!(
                    &fs::read(m.path(plain)).unwrap(),
                    data,
                    "{plain} (lower: {lower})"
                );
            }
            assert_eq!(
                fs::read_link(m.path("Docs/link")).unwrap(),
                Path::new("Report.PDF")
            );
        }
        // Looked up directly, without a listing first, and written to on a read-write mount.
        {
            let m = Mounted::new(&v, false);
            let (plain, data) = &files[3];
            assert_eq!(&fs::read(m.path(plain)).unwrap(), data);
            fs::write(m.path("Docs/Report.PDF"), b"rewritten").unwrap();
            fs::write(m.path("Docs/new.txt"), b"new").unwrap();
        }
        assert_eq!(v.read("Docs/Report.PDF"), b"rewritten");
        assert_eq!(v.read("Docs/new.txt"), b"new");
    }
}

#[test]
fn a_wholly_upper_cased_vault_is_put_right_by_fsck_repair() {
    let v = CoreVault::new(NameEncoding::Base32);
    let files = fill(&v);
    rename_all(&v.root, &|n| n.to_ascii_uppercase(), &|_| false);
    assert!(v.root.join("VEILFS.CONF").exists());
    let veilfs = || {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_veilfs"));
        cmd.arg("fsck")
            .arg("--passfile")
            .arg(v.passfile())
            .stdin(std::process::Stdio::null());
        cmd
    };
    let refused = veilfs().arg(&v.root).output().unwrap();
    assert_eq!(refused.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("fsck --repair"));
    let repaired = veilfs().arg("--repair").arg(&v.root).output().unwrap();
    assert!(
        repaired.status.success(),
        "{}",
        String::from_utf8_lossy(&repaired.stdout)
    );
    let clean = veilfs().arg(&v.root).output().unwrap();
    assert!(
        clean.status.success(),
        "{}",
        String::from_utf8_lossy(&clean.stdout)
    );
    for (plain, data) in &files {
        assert_eq!(&v.read(plain), data, "{plain}");
    }
    let m = Mounted::new(&v, true);
    assert_eq!(&fs::read(m.path(&files[3].0)).unwrap(), &files[3].1);
}
