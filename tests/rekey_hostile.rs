//! `veilfs rekey` against a backing directory a sync peer has planted things in, as issue 12's
//! threat model has it (the peer may even hold the previous key: that may be why the user
//! rotates). Each test plants exactly what a peer could, runs the real command, and checks that
//! it ends with a one-line error naming the file and a documented exit status (never a panic, a
//! hang or a silent success), that nothing outside the vault is touched, that healthy entries
//! are converted all the same, and that nothing readable is lost: a rotation that could not
//! convert something keeps the previous key until a later run does.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, FileTypeExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread;
use std::time::Duration;

use common::rekey::{
    config_text, mount_with_password, rekey, setxattr, write_passfile, NEW_PASSWORD,
};
use common::tree::{assert_same_tree, backing_state, snapshot, Node};
use common::{assert_success, cp_a, run, stderr_of, veilfs, TestVault};

/// A vault holding what `fill` writes through the mount, unmounted; with the tree as mounted.
fn vault_with(fill: impl FnOnce(&Path)) -> (TestVault, BTreeMap<PathBuf, Node>) {
    let vault = TestVault::new();
    fill(vault.mount_path());
    let tree = snapshot(vault.mount_path());
    vault.unmount();
    (vault, tree)
}

/// Directories `a` to `e`, each with a file; two names of one file across directories.
fn small_tree(root: &Path) {
    for (i, name) in ["a", "b", "c", "d", "e"].iter().enumerate() {
        fs::create_dir(root.join(name)).unwrap();
        fs::write(root.join(name).join("f"), vec![i as u8 + 1; 5000]).unwrap();
    }
    fs::write(root.join("linked"), b"one file, two names").unwrap();
    fs::hard_link(root.join("linked"), root.join("a/linked")).unwrap();
    setxattr(&root.join("b/f"), "user.k", "v");
}

fn new_pass(vault: &TestVault) -> PathBuf {
    write_passfile(vault.scratch(), "new-pass", NEW_PASSWORD)
}

/// `veilfs rekey` with `passfile`, to completion (a hang fails the test).
fn rekey_with(vault: &TestVault, passfile: &Path) -> Output {
    run(&mut rekey(vault, passfile, &new_pass(vault)))
}

/// Finishes the rotation with the new password, then the tree as mounted with it.
fn finish_and_look(vault: &TestVault) -> BTreeMap<PathBuf, Node> {
    let done = rekey_with(vault, &new_pass(vault));
    assert_success(&done, "rekey run again");
    assert!(!config_text(vault).contains("\"rotation\""));
    look(vault)
}

fn look(vault: &TestVault) -> BTreeMap<PathBuf, Node> {
    assert_success(&mount_with_password(vault, &new_pass(vault)), "mount");
    let tree = snapshot(vault.mount_path());
    vault.unmount();
    tree
}

/// The backing subdirectories of the root (not veilfs's own names), sorted.
fn backing_dirs(vault: &TestVault) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(vault.backing_path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| fs::symlink_metadata(p).unwrap().is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn mkfifo(path: &Path) {
    let made = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(made.success());
}

/// Asserts exit status 1 and an error that names `what`: one line, the last (warnings about
/// single entries may come before it).
fn assert_one_line_error(output: &Output, what: &str) {
    let stderr = stderr_of(output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let last = stderr.trim_end().lines().last().unwrap_or_default();
    assert!(last.starts_with("veilfs: "), "{stderr}");
    assert!(last.contains(what), "{what} not in: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Where a directory planted as `veilfs.rekey.tmp` is now (its directory was renamed).
fn planted_dir(vault: &TestVault) -> PathBuf {
    backing_dirs(vault)
        .into_iter()
        .map(|dir| dir.join("veilfs.rekey.tmp"))
        .find(|tmp| tmp.is_dir())
        .expect("the planted directory is still there")
}

#[test]
fn a_planted_rekey_tmp_of_every_kind_is_never_followed_and_a_directory_holds_up_only_its_own() {
    let (vault, expected) = vault_with(small_tree);
    let outside = vault.scratch().join("outside");
    fs::write(&outside, b"not the vault's").unwrap();
    let dirs = backing_dirs(&vault);
    let tmp = |i: usize| dirs[i].join("veilfs.rekey.tmp");
    symlink(&outside, tmp(0)).unwrap();
    mkfifo(&tmp(1));
    fs::write(tmp(2), b"junk").unwrap();
    fs::create_dir(tmp(3)).unwrap();
    fs::create_dir(tmp(4)).unwrap();
    fs::write(tmp(4).join("someone's"), b"not veilfs's to delete").unwrap();
    symlink(&outside, vault.backing_path().join("veilfs.rekey.tmp")).unwrap();

    let first = rekey_with(&vault, vault.passfile());
    assert_one_line_error(&first, "veilfs.rekey.tmp is a directory");
    assert!(stderr_of(&first).contains("run 'veilfs rekey"));
    assert!(config_text(&vault).contains("\"rotation\""));
    assert_eq!(fs::read(&outside).unwrap(), b"not the vault's");
    // The planted directory is neither followed nor deleted; the others are gone.
    let planted = planted_dir(&vault);
    assert!(planted.join("someone's").exists());
    fs::remove_dir_all(planted).unwrap();
    assert_same_tree(&finish_and_look(&vault), &expected, "after the rotation");
    assert_eq!(fs::read(&outside).unwrap(), b"not the vault's");
}

/// Plants something at a path (the journal's), given a file outside the vault.
type Plant<'a> = dyn Fn(&Path, &Path) + 'a;

#[test]
fn a_planted_link_journal_is_never_followed_read_whole_or_trusted() {
    let garbage: Vec<u8> = (0..10_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let foreign = {
        // A record sealed under another vault's keys: it must not steer a link.
        let record = veilfs::crypto::records::LinkRecord {
            old_inode: 1,
            old_header: vec![0; 18],
            new_path: vec!["elsewhere".to_owned()],
        };
        let sealed = record.seal(
            &veilfs::crypto::keys::RecordKey::from_bytes([7; 64]),
            &[9; 16],
        );
        let mut bytes = (sealed.len() as u32).to_be_bytes().to_vec();
        bytes.extend_from_slice(&sealed);
        bytes
    };
    let kinds: [(&str, Box<Plant<'_>>); 8] = [
        (
            "a hard link to a file outside",
            Box::new(|p, outside| fs::hard_link(outside, p).unwrap()),
        ),
        ("garbage", Box::new(|p, _| fs::write(p, &garbage).unwrap())),
        (
            "a length of 4 GiB",
            Box::new(|p, _| fs::write(p, [0xff, 0xff, 0xff, 0xff, 1, 2, 3]).unwrap()),
        ),
        (
            "1 GiB of zeros",
            Box::new(|p, _| fs::File::create(p).unwrap().set_len(1 << 30).unwrap()),
        ),
        (
            "another vault's record",
            Box::new(|p, _| fs::write(p, &foreign).unwrap()),
        ),
        (
            "a symlink",
            Box::new(|p, outside| symlink(outside, p).unwrap()),
        ),
        ("a FIFO", Box::new(|p, _| mkfifo(p))),
        ("a directory", Box::new(|p, _| fs::create_dir(p).unwrap())),
    ];
    for (what, plant) in kinds {
        let (vault, expected) = vault_with(small_tree);
        let outside = vault.scratch().join("outside");
        fs::write(&outside, b"not the vault's").unwrap();
        plant(&vault.backing_path().join("veilfs.rekey.links"), &outside);
        let output = rekey_with(&vault, vault.passfile());
        assert_success(&output, what);
        assert_eq!(fs::read(&outside).unwrap(), b"not the vault's", "{what}");
        assert!(!vault.backing_path().join("veilfs.rekey.links").exists());
        assert_same_tree(&look(&vault), &expected, what);
    }
}

#[test]
fn a_journal_cut_short_by_a_crash_keeps_the_records_appended_after_it() {
    // A crash cut the journal's last record short; the next run's records, appended after it,
    // must still be read by the run after that, or the links they record come apart.
    let (vault, expected) = vault_with(|root| {
        small_tree(root);
        for d in ["b", "c", "d", "e"] {
            fs::hard_link(root.join(d).join("f"), root.join(format!("{d}-link"))).unwrap();
        }
    });
    fs::write(
        vault.backing_path().join("veilfs.rekey.links"),
        [0, 0, 0, 99, 1, 2],
    )
    .unwrap();
    // The root's names are converted (and journaled); directories planted in every
    // subdirectory hold up their names until the next run.
    for dir in backing_dirs(&vault) {
        fs::create_dir_all(dir.join("veilfs.rekey.tmp/x")).unwrap();
    }
    assert_eq!(rekey_with(&vault, vault.passfile()).status.code(), Some(1));
    for dir in backing_dirs(&vault) {
        fs::remove_dir_all(dir.join("veilfs.rekey.tmp")).unwrap();
    }
    assert_same_tree(&finish_and_look(&vault), &expected, "after the rotation");
}

#[test]
fn entries_of_the_wrong_type_or_unreadable_are_left_and_their_siblings_converted() {
    let (vault, _) = vault_with(|root| {
        for name in [
            "good1",
            "trunc",
            "garbage",
            "to-symlink",
            "to-fifo",
            "good2",
        ] {
            fs::write(root.join(name), vec![3; 9000]).unwrap();
        }
        fs::create_dir(root.join("dir")).unwrap();
        fs::write(root.join("dir/inner"), b"inner").unwrap();
        fs::create_dir(root.join("to-dir-symlink")).unwrap();
    });
    let outside = vault.scratch().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("file"), b"not the vault's").unwrap();
    // Which backing entry is which does not matter: damage the first ones in sorted order.
    let by_kind = |dir: bool| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = fs::read_dir(vault.backing_path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let m = fs::symlink_metadata(p).unwrap();
                !p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("veilfs.")
                    && (if dir { m.is_dir() } else { m.is_file() })
            })
            .collect();
        v.sort();
        v
    };
    let files = by_kind(false);
    assert_eq!(files.len(), 6);
    fs::OpenOptions::new()
        .write(true)
        .open(&files[0])
        .unwrap()
        .set_len(5)
        .unwrap();
    let mut bytes = fs::read(&files[1]).unwrap();
    bytes[..18].fill(0xab);
    fs::write(&files[1], bytes).unwrap();
    fs::remove_file(&files[2]).unwrap();
    symlink(outside.join("file"), &files[2]).unwrap();
    fs::remove_file(&files[3]).unwrap();
    mkfifo(&files[3]);
    let dirs = by_kind(true);
    // The empty one ("to-dir-symlink") becomes a symlink to a directory outside.
    let dir_link = dirs
        .iter()
        .find(|d| fs::read_dir(d).unwrap().count() == 1)
        .unwrap();
    fs::remove_dir_all(dir_link).unwrap();
    symlink(&outside, dir_link).unwrap();

    let output = rekey_with(&vault, vault.passfile());
    assert_one_line_error(&output, "entries were left as they were");
    // The rotation finished: what was left was unreadable under the previous key too.
    assert!(!config_text(&vault).contains("\"rotation\""));
    assert_eq!(fs::read(outside.join("file")).unwrap(), b"not the vault's");
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 1);
    assert_success(&mount_with_password(&vault, &new_pass(&vault)), "mount");
    let m = vault.mount_path();
    let readable = [
        "good1",
        "good2",
        "garbage",
        "to-symlink",
        "to-fifo",
        "trunc",
    ]
    .iter()
    .filter(|n| {
        // Never opened unless a regular file: reading the converted FIFO would block.
        fs::symlink_metadata(m.join(n)).is_ok_and(|meta| meta.is_file())
            && fs::read(m.join(n)).is_ok_and(|d| d == vec![3; 9000])
    })
    .count();
    // Two good files, and the two whose backing names are untouched by the planting; the
    // sort put the damaged ones first, so exactly two of the six still read as written.
    assert_eq!(readable, 2);
    assert_eq!(fs::read(m.join("dir/inner")).unwrap(), b"inner");
    let fifos = fs::read_dir(m)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_type().unwrap().is_fifo())
        .count();
    assert_eq!(fifos, 1, "the planted FIFO is converted as a FIFO");
    vault.unmount();
}

#[test]
fn thousands_of_levels_deep_need_no_stack_or_descriptor_per_level() {
    use nix::fcntl::{openat, OFlag};
    use nix::sys::stat::{mkdirat, Mode};
    // Making the tree through the mount costs time quadratic in its depth: 500 levels (well
    // past the 64 descriptors below) here; VEILFS_REKEY_DEPTH=2000 or more for a soak.
    let depth: usize = std::env::var("VEILFS_REKEY_DEPTH")
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(500);
    let vault = TestVault::new();
    // Made one level at a time from an open handle of the last: a path resolved from the top
    // each time would cost the mount a lookup per level per level.
    let mut dir = openat(
        nix::fcntl::AT_FDCWD,
        vault.mount_path(),
        OFlag::O_DIRECTORY,
        Mode::empty(),
    )
    .unwrap();
    for _ in 0..depth {
        mkdirat(&dir, "d", Mode::from_bits_truncate(0o755)).unwrap();
        dir = openat(&dir, "d", OFlag::O_DIRECTORY, Mode::empty()).unwrap();
    }
    let bottom = openat(
        &dir,
        "bottom",
        OFlag::O_WRONLY | OFlag::O_CREAT,
        Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    std::io::Write::write_all(&mut fs::File::from(bottom), b"deep down").unwrap();
    drop(dir);
    vault.unmount();
    let new = new_pass(&vault);
    // 64 descriptors: a walk that held one per level would run out long before the bottom.
    let output = run(Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 64 && exec \"$@\"")
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_veilfs"))
        .arg("rekey")
        .arg("--passfile")
        .arg(vault.passfile())
        .arg("--new-passfile")
        .arg(&new)
        .arg(vault.backing_path()));
    assert_success(&output, "rekey of a deep tree");
    assert!(!config_text(&vault).contains("\"rotation\""));
    assert_success(&mount_with_password(&vault, &new), "mount");
    let mut dir = openat(
        nix::fcntl::AT_FDCWD,
        vault.mount_path(),
        OFlag::O_DIRECTORY,
        Mode::empty(),
    )
    .unwrap();
    for _ in 0..depth {
        dir = openat(&dir, "d", OFlag::O_DIRECTORY, Mode::empty()).unwrap();
    }
    let bottom = openat(&dir, "bottom", OFlag::O_RDONLY, Mode::empty()).unwrap();
    let mut data = Vec::new();
    std::io::Read::read_to_end(&mut fs::File::from(bottom), &mut data).unwrap();
    assert_eq!(data, b"deep down");
    drop(dir);
    vault.unmount();
}

#[test]
fn conflict_copies_under_the_previous_key_are_shown_as_before() {
    let (vault, _) = vault_with(|root| {
        fs::write(root.join("doc.txt"), b"mine").unwrap();
        fs::write(root.join("other"), b"theirs").unwrap();
        fs::create_dir(root.join("dir")).unwrap();
        fs::write(root.join("dir/inner"), b"inner").unwrap();
    });
    // A sync tool's copies: the file's name with another file's contents, and a directory.
    let dirs = backing_dirs(&vault);
    let dir = &dirs[0];
    let copy = |from: &Path, to: PathBuf| cp_a(from, &to);
    copy(
        dir,
        PathBuf::from(format!(
            "{}.sync-conflict-20261202-120000-ABCDEFG",
            dir.display()
        )),
    );
    let mut files: Vec<PathBuf> = fs::read_dir(vault.backing_path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            fs::symlink_metadata(p).unwrap().is_file()
                && !p
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("veilfs.")
        })
        .collect();
    files.sort();
    copy(
        &files[1],
        PathBuf::from(format!(
            "{}.sync-conflict-20261202-120000-ABCDEFG",
            files[0].display()
        )),
    );
    // As the previous keys show it.
    assert_success(&vault.try_mount(&[]), "mount");
    let before = snapshot(vault.mount_path());
    vault.unmount();
    assert_eq!(before.len(), 7, "{:?}", before.keys());

    assert_success(&rekey_with(&vault, vault.passfile()), "rekey");
    assert_same_tree(&look(&vault), &before, "after the rotation");
}

/// The same attack on an upgrade: the format 1 config put back while the upgrade is held up
/// would, with the old password, have started a second upgrade under yet another key over the
/// entries the first had converted. The root's IV file takes the new key first in format 1 too
/// (its root IV is derived, never read), so the old config no longer fits the vault.
#[test]
fn the_format_1_config_put_back_mid_upgrade_is_refused_and_changes_nothing() {
    let vault = TestVault::unmounted_v1();
    vault.mount_with(&[]);
    small_tree(vault.mount_path());
    let expected = snapshot(vault.mount_path());
    vault.unmount();
    let format_1 = config_text(&vault);
    let planted = backing_dirs(&vault)[2].join("veilfs.rekey.tmp");
    fs::create_dir(&planted).unwrap();
    fs::write(planted.join("x"), b"x").unwrap();
    let upgrade = |passfile: &Path| {
        run(veilfs()
            .arg("upgrade")
            .arg("--passfile")
            .arg(passfile)
            .arg("--new-passfile")
            .arg(new_pass(&vault))
            .arg(vault.backing_path()))
    };
    assert_eq!(upgrade(vault.passfile()).status.code(), Some(1));
    let upgrading = config_text(&vault);
    assert!(upgrading.contains("\"rotation\""));
    let at_start = backing_state(vault.backing_path());

    let conf = vault.backing_path().join("veilfs.conf");
    fs::write(&conf, &format_1).unwrap();
    let mount = vault.try_mount(&[]);
    assert_eq!(mount.status.code(), Some(5), "{}", stderr_of(&mount));
    let again = upgrade(vault.passfile());
    assert_eq!(again.status.code(), Some(5), "{}", stderr_of(&again));
    assert!(
        backing_state(vault.backing_path()) == at_start,
        "the replayed format 1 config changed the backing directory"
    );

    fs::write(&conf, &upgrading).unwrap();
    fs::remove_dir_all(planted_dir(&vault)).unwrap();
    assert_success(&upgrade(&new_pass(&vault)), "upgrade run again");
    assert_same_tree(&look(&vault), &expected, "after the upgrade");
}

#[test]
fn an_edited_rotation_member_or_a_replayed_config_is_refused_and_changes_nothing() {
    let (vault, expected) = vault_with(small_tree);
    let pre_rotation = config_text(&vault);
    // A rotation held up (a planted directory), so that its config can be edited and replayed.
    let dirs = backing_dirs(&vault);
    let planted = dirs[2].join("veilfs.rekey.tmp");
    fs::create_dir(&planted).unwrap();
    fs::write(planted.join("x"), b"x").unwrap();
    assert_eq!(rekey_with(&vault, vault.passfile()).status.code(), Some(1));
    let rotating = config_text(&vault);
    assert!(rotating.contains("\"rotation\""));
    let conf = vault.backing_path().join("veilfs.conf");
    let state = || backing_state(vault.backing_path());
    let at_start = state();

    let edits: [(&str, String); 3] = [
        (
            "from format 9",
            rotating.replace("\"from_format\": 2", "\"from_format\": 9"),
        ),
        (
            "from format 1",
            rotating.replace("\"from_format\": 2", "\"from_format\": 1"),
        ),
        ("a short from_master", {
            let at = rotating.find("\"from_master\": \"").unwrap() + 16;
            format!("{}{}", &rotating[..at], &rotating[at + 8..])
        }),
    ];
    for (what, edited) in edits {
        assert_ne!(edited, rotating, "{what}");
        fs::write(&conf, edited).unwrap();
        let output = rekey_with(&vault, &new_pass(&vault));
        assert_eq!(
            output.status.code(),
            Some(5),
            "{what}: {}",
            stderr_of(&output)
        );
        assert_eq!(stderr_of(&output).trim_end().lines().count(), 1, "{what}");
        assert!(state() == at_start, "{what} changed the backing directory");
    }

    // The configuration from before the rotation, put back (a provider's version history
    // keeps it; whoever has it may know its password): neither the mount nor a new rotation
    // may start from it over entries already under the new keys.
    fs::write(&conf, &pre_rotation).unwrap();
    let mount = vault.try_mount(&[]);
    assert_eq!(mount.status.code(), Some(5), "{}", stderr_of(&mount));
    let output = rekey_with(&vault, vault.passfile());
    assert_eq!(output.status.code(), Some(5), "{}", stderr_of(&output));
    assert!(
        state() == at_start,
        "the replayed config changed the backing directory"
    );

    fs::write(&conf, &rotating).unwrap();
    fs::remove_dir_all(planted_dir(&vault)).unwrap();
    assert_same_tree(&finish_and_look(&vault), &expected, "after the rotation");
    let finished = config_text(&vault);

    // A rotation member added to the finished config (from the rotating one): modified.
    let member_at = rotating.find("  \"rotation\"").unwrap();
    let member_end = rotating[member_at..].find("},").unwrap() + member_at + 2;
    let grafted = finished.replace(
        "  \"mac\"",
        &format!("{}\n  \"mac\"", &rotating[member_at..member_end]),
    );
    fs::write(&conf, &grafted).unwrap();
    for output in [
        rekey_with(&vault, &new_pass(&vault)),
        mount_with_password(&vault, &new_pass(&vault)),
    ] {
        assert_eq!(output.status.code(), Some(5), "{}", stderr_of(&output));
    }

    // A second rotation, then the first one's rotating config replayed: refused.
    fs::write(&conf, &finished).unwrap();
    let third = write_passfile(vault.scratch(), "third", "the third password");
    assert_success(
        &run(&mut rekey(&vault, &new_pass(&vault), &third)),
        "second rekey",
    );
    let after_second = state();
    fs::write(&conf, &rotating).unwrap();
    let output = rekey_with(&vault, &new_pass(&vault));
    assert_eq!(output.status.code(), Some(5), "{}", stderr_of(&output));
    assert!(state() == after_second);
}

/// A tmpfs of `size` mounted at `path` for as long as it lives.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Tmpfs {
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .unwrap();
        assert!(
            mounted.success(),
            "this test mounts a tmpfs: run it as root"
        );
        Tmpfs(path.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        common::umount_lazy(&self.0);
    }
}

#[test]
fn a_full_disk_stops_the_rotation_naming_the_file_and_a_later_run_finishes_it() {
    let vault = TestVault::unmounted();
    // The vault moves onto a 16 MiB tmpfs.
    let saved = vault.scratch().join("saved");
    fs::rename(vault.backing_path(), &saved).unwrap();
    fs::create_dir(vault.backing_path()).unwrap();
    let _tmpfs = Tmpfs::mount(vault.backing_path(), "16m");
    cp_a(&saved.join("."), vault.backing_path());
    vault.mount_with(&[]);
    let m = vault.mount_path();
    for i in 0..6 {
        let data: Vec<u8> = (0..(600_000 + i)).map(|b| (b * 7 + i) as u8).collect();
        fs::write(m.join(format!("file{i}")), data).unwrap();
    }
    fs::write(m.join("big"), vec![9; 2_500_000]).unwrap();
    setxattr(&m.join("file1"), "user.k", "v");
    let expected = snapshot(m);
    vault.unmount();
    // Room for the small files' copies, not for the big one's.
    let filler = vault.backing_path().join("filler");
    let free = nix_free(vault.backing_path());
    fs::write(&filler, vec![0; (free - 2_000_000) as usize]).unwrap();

    let output = rekey_with(&vault, vault.passfile());
    assert_one_line_error(&output, "No space left on device");
    assert!(stderr_of(&output).contains(&*vault.backing_path().to_string_lossy()));
    assert!(config_text(&vault).contains("\"rotation\""));
    fs::remove_file(&filler).unwrap();
    assert_same_tree(&finish_and_look(&vault), &expected, "after the rotation");
}

/// Free bytes on the filesystem of `path`, from df.
fn nix_free(path: &Path) -> u64 {
    let df = Command::new("df")
        .args(["-B1", "--output=avail"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&df.stdout)
        .lines()
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// A tree with what a crash can separate: hard links across directories, xattrs, long names,
/// symlinks, a sparse file.
fn crash_tree(root: &Path) {
    let long = "n".repeat(200);
    for d in 0..8 {
        let dir = root.join(format!("{long}-{d}"));
        fs::create_dir(&dir).unwrap();
        for f in 0..8 {
            let data: Vec<u8> = (0..(f * 1500 + d)).map(|i| (i + f) as u8).collect();
            fs::write(dir.join(format!("{long}-{f}")), data).unwrap();
        }
        fs::hard_link(
            dir.join(format!("{long}-1")),
            root.join(format!("link-{d}")),
        )
        .unwrap();
        setxattr(&dir.join(format!("{long}-2")), "user.x", &format!("{d}"));
        setxattr(&dir, "user.dir", "yes");
        symlink(format!("{long}-3"), dir.join("sym")).unwrap();
    }
    let sparse = fs::File::create(root.join("sparse")).unwrap();
    sparse.set_len(1 << 20).unwrap();
}

#[test]
fn killed_at_a_series_of_points_then_killed_again_resuming_loses_nothing() {
    let (vault, expected) = vault_with(crash_tree);
    let pristine = vault.scratch().join("pristine");
    let cp = |from: &Path, to: &Path| {
        let _ = fs::remove_dir_all(to);
        cp_a(from, to);
    };
    cp(vault.backing_path(), &pristine);
    let new = new_pass(&vault);
    let mut delay = Duration::from_millis(10);
    let mut midway = 0;
    loop {
        cp(&pristine, vault.backing_path());
        let mut child = rekey(&vault, vault.passfile(), &new).spawn().unwrap();
        thread::sleep(delay);
        if child.try_wait().unwrap().is_some() {
            assert!(child.wait_with_output().unwrap().status.success());
            break;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        if config_text(&vault).contains("\"rotation\"") {
            midway += 1;
            // The run that resumes is killed too, halfway through the same time.
            let mut again = rekey(&vault, &new, &new).spawn().unwrap();
            thread::sleep(delay / 2);
            let _ = again.kill();
            again.wait().unwrap();
            assert_same_tree(
                &finish_and_look(&vault),
                &expected,
                &format!("killed at {delay:?}"),
            );
        }
        // Growing by half each time: kill points early and late in a dozen runs.
        delay = delay * 3 / 2;
    }
    eprintln!("killed {midway} times mid-rotation");
    assert!(midway >= 2, "too few kills landed during the rotation");
}

#[test]
fn a_file_that_changes_size_while_it_is_read_neither_hangs_nor_stops_its_siblings() {
    let (vault, expected) = vault_with(|root| {
        fs::write(root.join("growing"), vec![5; 16 << 20]).unwrap();
        for i in 0..20 {
            fs::write(root.join(format!("quiet{i}")), vec![i as u8; 10_000]).unwrap();
        }
    });
    let growing = fs::read_dir(vault.backing_path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| fs::symlink_metadata(p).unwrap().len() > 1 << 20)
        .unwrap();
    // Cut short and grown again, over and over, while rekey reads it.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let peer = {
        let stop = stop.clone();
        let growing = growing.clone();
        thread::spawn(move || {
            let mut size = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(file) = fs::OpenOptions::new().write(true).open(&growing) {
                    let _ = file.set_len(size);
                }
                size = (size + (3 << 20) + 7) % (32 << 20);
            }
        })
    };
    let output = rekey_with(&vault, vault.passfile());
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    peer.join().unwrap();
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{}",
        stderr_of(&output)
    );
    assert!(!stderr_of(&output).contains("panicked"));
    // Cut to nothing and grown, its header is zeros: left, as unreadable under either key.
    // Anything else that stopped the rotation, a second run finishes.
    if config_text(&vault).contains("\"rotation\"") {
        assert_success(&rekey_with(&vault, &new_pass(&vault)), "rekey run again");
    }
    let tree = look(&vault);
    for (path, node) in &expected {
        if path != Path::new("growing") {
            assert_eq!(tree.get(path), Some(node), "{}", path.display());
        }
    }
}

#[test]
fn in_a_base32_vault_two_names_differing_in_case_hold_nothing_up() {
    // A case-insensitive sync target and back: one plaintext name, two backing names.
    let vault =
        TestVault::unmounted_with_init_args(|_| vec!["--name-encoding".into(), "base32".into()]);
    vault.mount_with(&[]);
    fs::create_dir(vault.mount_path().join("dir")).unwrap();
    fs::write(vault.mount_path().join("dir/inner"), b"inner").unwrap();
    fs::write(vault.mount_path().join("file"), b"file").unwrap();
    vault.unmount();
    for entry in fs::read_dir(vault.backing_path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("veilfs.") {
            continue;
        }
        let twin = vault.backing_path().join(name.to_ascii_uppercase());
        assert_ne!(twin, path);
        cp_a(&path, &twin);
    }
    assert_success(&vault.try_mount(&[]), "mount");
    let before = snapshot(vault.mount_path());
    vault.unmount();
    let output = rekey_with(&vault, vault.passfile());
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{}",
        stderr_of(&output)
    );
    assert!(
        !config_text(&vault).contains("\"rotation\""),
        "a re-cased twin held the rotation up: {}",
        stderr_of(&output)
    );
    assert_same_tree(&look(&vault), &before, "after the rotation");
}
