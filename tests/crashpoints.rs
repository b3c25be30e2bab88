//! Crash-point enumeration (docs/reliability.md, "Crash consistency"): a workload runs through
//! veilfs mounted on a recording filesystem; every crash state of the recorded backing
//! operations is rebuilt and checked (fsck, repair, mount, fsynced files). The harness is in
//! tests/crash/.
//!
//! The same for `veilfs rekey` and `veilfs upgrade`, which work on the backing directory
//! itself: the command runs with the recorder's mount as its CIPHERDIR, and each crash state is
//! finished by running it again (tests/crash/rotation.rs).
//!
//! Besides the in-order crash states, the states that reorder metadata between fsync barriers
//! (tests/crash/reorder.rs). `small_workload`, `rekey_small` and `upgrade_small` are the short
//! slices the normal test run includes, with 12 reordered states each; `full_workload`,
//! `rekey_full` and `upgrade_full` (ignored, every reordered state) are what
//! `scripts/crashpoints` runs.

mod common;
mod crash;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{symlink, FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::tree::{assert_same_tree, backing_state, try_snapshot};
use common::{is_mounted, run, unmount_all, veilfs, TestVault, PASSWORD};
use crash::log::{Event, Log, Mark};
use crash::recorder::{new_log, Recorder};
use crash::rotation::RotationChecker;
use crash::{
    build, check_all, copy_tree, expectations, inode_map, must, read_tree, Checker, CrashState,
    Kind, Reorder, Summary,
};

const NEW_PASSWORD: &str = "a new password for the crash tests";

/// How many reordered states the short slices check (an even spread of them; `CRASH_REORDER`
/// overrides): a full run of them takes minutes.
const SHORT_REORDERED: Option<usize> = Some(12);

/// Where the workload runs, and what it tells the log.
struct Ctx {
    mnt: PathBuf,
    cipher: PathBuf,
    passfiles: Vec<PathBuf>,
    log: Log,
}

impl Ctx {
    fn path(&self, rel: &str) -> PathBuf {
        self.mnt.join(rel)
    }

    fn mark(&self, mark: Mark) {
        self.log.lock().unwrap().push(Event::Mark(mark));
    }

    /// Writes `contents` to a new file `rel`, fsyncs it and promises it from then on.
    fn write_synced(&self, id: &str, rel: &str, contents: &[u8]) {
        let mut file = File::create(self.path(rel)).unwrap();
        file.write_all(contents).unwrap();
        file.sync_all().unwrap();
        self.expect(id, &[rel], contents);
    }

    fn write(&self, rel: &str, contents: &[u8]) {
        fs::write(self.path(rel), contents).unwrap();
    }

    fn expect(&self, id: &str, paths: &[&str], contents: &[u8]) {
        self.mark(Mark::Expect {
            id: id.into(),
            paths: paths.iter().map(PathBuf::from).collect(),
            contents: contents.to_vec(),
        });
    }

    fn forget(&self, id: &str) {
        self.mark(Mark::Forget { id: id.into() });
    }

    /// Renames `from` to `to`, keeping promise `id` (about a file at or under `from`, whose
    /// contents are `contents`) across: during the rename it may be under either name.
    fn rename_synced(&self, from: &str, to: &str, promised: &[(&str, &str, &[u8])]) {
        for (id, at, contents) in promised {
            let (old, new) = (under(from, at), under(to, at));
            self.mark(Mark::Expect {
                id: (*id).into(),
                paths: vec![old, new],
                contents: contents.to_vec(),
            });
        }
        fs::rename(self.path(from), self.path(to)).unwrap();
        for (id, at, contents) in promised {
            self.mark(Mark::Expect {
                id: (*id).into(),
                paths: vec![under(to, at)],
                contents: contents.to_vec(),
            });
        }
    }

    /// Writes `data` at `offset` into the existing file `rel`, which loses its promise `id`.
    fn write_at(&self, id: Option<&str>, rel: &str, offset: u64, data: &[u8]) {
        if let Some(id) = id {
            self.forget(id);
        }
        let file = OpenOptions::new().write(true).open(self.path(rel)).unwrap();
        file.write_all_at(data, offset).unwrap();
    }

    fn truncate(&self, id: Option<&str>, rel: &str, size: u64) {
        if let Some(id) = id {
            self.forget(id);
        }
        let file = OpenOptions::new().write(true).open(self.path(rel)).unwrap();
        file.set_len(size).unwrap();
    }

    fn mount(&self, passfile: &Path) {
        must(
            veilfs()
                .arg("mount")
                .arg("--passfile")
                .arg(passfile)
                .arg(&self.cipher)
                .arg(&self.mnt),
            "veilfs mount",
        );
    }

    fn unmount(&self) {
        for _ in 0..50 {
            let output = run(veilfs().arg("umount").arg(&self.mnt));
            if output.status.code() != Some(10) {
                common::assert_success(&output, "veilfs umount");
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("{} stayed busy", self.mnt.display());
    }

    /// Unmounts, changes the password (`veilfs passwd`, which rewrites veilfs.conf through the
    /// recorder) and mounts again with the new one.
    fn passwd(&self) {
        self.unmount();
        must(
            veilfs()
                .arg("passwd")
                .arg("--passfile")
                .arg(&self.passfiles[0])
                .arg("--new-passfile")
                .arg(&self.passfiles[1])
                .arg(&self.cipher),
            "veilfs passwd",
        );
        self.mount(&self.passfiles[1]);
    }
}

/// `at` under the directory `dir`, or `dir` itself when `at` is empty.
fn under(dir: &str, at: &str) -> PathBuf {
    if at.is_empty() {
        PathBuf::from(dir)
    } else {
        Path::new(dir).join(at)
    }
}

/// A name of `len` bytes starting with `tag`: over 149 bytes it needs a long-name sidecar.
fn name(tag: &str, len: usize) -> String {
    let mut name = tag.to_owned();
    while name.len() < len {
        name.push(char::from(b'a' + (name.len() % 26) as u8));
    }
    name
}

/// Recognisable contents: `len` bytes that differ per `seed` and per offset.
fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Unmounts its mount points when dropped.
struct Unmount(Vec<PathBuf>);

impl Drop for Unmount {
    fn drop(&mut self) {
        for path in &self.0 {
            unmount_all(path);
        }
    }
}

/// With CRASH_LOG set, prints the recorded operations numbered by crash point, and the marks.
fn print_log(events: &[Event]) {
    if std::env::var_os("CRASH_LOG").is_none() {
        return;
    }
    let mut point = 0;
    for event in events {
        match event {
            Event::Op(op) => {
                point += 1;
                eprintln!("{point:4} {}", op.describe());
            }
            Event::Mark(mark) => eprintln!("     {mark:?}"),
        }
    }
}

/// The counts, and each kind of failure with the first crash points that show it.
fn print_summary(what: &str, summary: &Summary, started: Instant) {
    eprintln!(
        "{what}: {} crash points, {} states {:?}, {} repaired by fsck, {} with tolerated \
         findings, {} failing, checked in {:.1} s",
        summary.crash_points,
        summary.states,
        summary.by_kind,
        summary.repaired,
        summary.tolerated,
        summary.failed,
        started.elapsed().as_secs_f64()
    );
    for (failure, places) in &summary.failures {
        eprintln!("FAILURE ({} states): {failure}", places.len());
        // CRASH_ALL=1: every crash point that shows it, not the first three.
        let shown = if std::env::var_os("CRASH_ALL").is_some() {
            places.len()
        } else {
            3
        };
        for place in places.iter().take(shown) {
            eprintln!("    at {place}");
        }
    }
}

/// Runs `workload` through veilfs on the recorder, then checks every crash state.
fn enumerate(what: &str, reorder: Reorder, workload: impl FnOnce(&Ctx)) -> Summary {
    common::require_fuse();
    let dir = tempfile::Builder::new()
        .prefix("veilfs-crash-")
        .tempdir()
        .unwrap();
    let root = fs::canonicalize(dir.path()).unwrap();
    let (real, cipher, mnt, check) = (
        root.join("real"),
        root.join("cipher"),
        root.join("mnt"),
        root.join("check"),
    );
    for d in [&real, &cipher, &mnt, &check] {
        fs::create_dir(d).unwrap();
    }
    // Should the test fail half-way, nothing stays mounted in the directory about to be removed.
    let _unmount = Unmount(vec![check.clone(), mnt.clone(), cipher.clone()]);
    let passfiles = vec![root.join("pass1"), root.join("pass2")];
    fs::write(&passfiles[0], format!("{PASSWORD}\n")).unwrap();
    fs::write(&passfiles[1], format!("{NEW_PASSWORD}\n")).unwrap();
    must(
        veilfs()
            .args([
                "init",
                "--kdf-memory",
                "1",
                "--kdf-iterations",
                "1",
                "--passfile",
            ])
            .arg(&passfiles[0])
            .arg(&real),
        "veilfs init",
    );
    let snapshot = root.join("snapshot");
    copy_tree(&real, &snapshot).unwrap();

    let log = new_log();
    let session = Recorder::new(&real, log.clone())
        .unwrap()
        .mount(&cipher)
        .unwrap();
    let ctx = Ctx {
        mnt: mnt.clone(),
        cipher: cipher.clone(),
        passfiles: passfiles.clone(),
        log: log.clone(),
    };
    let started = Instant::now();
    ctx.mount(&passfiles[0]);
    workload(&ctx);
    let (expected_tree, errors) = read_tree(&mnt);
    assert!(errors.is_empty(), "reading the workload's tree: {errors:?}");
    ctx.unmount();
    session.umount_and_join().unwrap();
    assert!(!is_mounted(&cipher), "the recorder is still mounted");
    let events = log.lock().unwrap().clone();
    let ops = events.iter().filter(|e| matches!(e, Event::Op(_))).count();
    print_log(&events);
    eprintln!(
        "{what}: workload recorded {ops} backing operations in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let checker = Checker {
        passfiles,
        mountpoint: check,
    };
    let started = Instant::now();
    let check = |dir: &Path, before: &[Event], _| checker.check(dir, &expectations(before));
    let (summary, final_tree) =
        check_all(&snapshot, &events, reorder, check, &root, |done, all| {
            if done % 100 == 0 || done == all {
                eprintln!("{what}: {done}/{all} states checked");
            }
        });
    print_summary(what, &summary, started);
    // The replay of the whole log must be what the workload left: else the recorder missed
    // something, and every state above is suspect.
    let replayed = final_tree.expect("the last crash point was checked");
    assert!(
        replayed == expected_tree,
        "{what}: the replayed log differs from the workload's tree: {:?} vs {:?}",
        replayed.keys().collect::<Vec<_>>(),
        expected_tree.keys().collect::<Vec<_>>()
    );
    summary
}

/// A few of everything: a short file and a long-named one fsynced, a rename of the long name,
/// a hard link, a write across a sector boundary, a truncate, `veilfs passwd`, the rename of a
/// directory to a long name, and the removal of the long-named file.
fn small(ctx: &Ctx) {
    let long1 = name("L1-", 160);
    let long2 = name("L2-", 170);
    let long_dir = name("D-", 155);
    let big = pattern(1, 5000);
    fs::create_dir(ctx.path("d")).unwrap();
    ctx.write_synced("short", "d/short", b"hello");
    ctx.write_synced("long", &format!("d/{long1}"), &big);
    ctx.rename_synced(
        &format!("d/{long1}"),
        &format!("d/{long2}"),
        &[("long", "", &big)],
    );
    fs::hard_link(ctx.path("d/short"), ctx.path("d/hard")).unwrap();
    ctx.write_at(Some("long"), &format!("d/{long2}"), 4090, b"across-4096!");
    ctx.truncate(None, &format!("d/{long2}"), 3000);
    ctx.passwd();
    ctx.rename_synced("d", &long_dir, &[("short", "short", b"hello")]);
    fs::remove_file(ctx.path(&format!("{long_dir}/{long2}"))).unwrap();
}

#[test]
fn small_workload() {
    let summary = enumerate("small workload", Reorder::from_env(SHORT_REORDERED), small);
    assert!(
        summary.failures.is_empty(),
        "crash states that fail their checks: {:#?}",
        summary.failures
    );
}

/// The tree the full workload untars: nested directories, short and long names (some over
/// the 149 bytes that need a sidecar), files of 0-15 bytes and across several sectors,
/// symlinks.
fn make_tree(at: &Path) {
    fs::create_dir(at).unwrap();
    for d in 0..4 {
        let dir = at.join(if d % 2 == 0 {
            format!("dir{d}")
        } else {
            name(&format!("dir{d}-"), 150 + d * 10)
        });
        fs::create_dir(&dir).unwrap();
        for f in 0..10 {
            let file = match f % 3 {
                0 => format!("f{f}"),
                1 => name(&format!("f{f}-"), 160 + f),
                _ => name(&format!("f{f}-"), 100),
            };
            let len = [0, 1, 7, 15, 4095, 4096, 4097, 9000, 12, 20000][f];
            fs::write(dir.join(&file), pattern((d * 10 + f) as u8, len)).unwrap();
        }
        std::os::unix::fs::symlink(name("target-", 170), dir.join("link")).unwrap();
        fs::create_dir(dir.join("sub")).unwrap();
        fs::write(dir.join("sub").join(name("deep-", 200)), b"deep").unwrap();
    }
}

/// Untar of a 60-entry tree, then renames of files and directories with long names, hard links,
/// writes across sector boundaries, short files, truncates, fsyncs, `veilfs passwd`, and more
/// changes under the new password.
fn full(ctx: &Ctx) {
    let scratch = ctx.mnt.parent().unwrap().join("tree");
    make_tree(&scratch);
    let tarball = ctx.mnt.parent().unwrap().join("tree.tar");
    must(
        Command::new("tar")
            .arg("-cf")
            .arg(&tarball)
            .arg("-C")
            .arg(&scratch)
            .arg("."),
        "tar -c",
    );
    fs::create_dir(ctx.path("t")).unwrap();
    must(
        Command::new("tar")
            .arg("-xf")
            .arg(&tarball)
            .arg("-C")
            .arg(ctx.path("t")),
        "tar -x",
    );
    let long_dir = name("dir1-", 160);
    let f1 = name("f1-", 161);
    let renamed_dir = name("renamed-", 180);
    let big = pattern(9, 13000);
    ctx.write_synced("s1", "t/dir0/short1", b"x");
    ctx.write_synced(
        "s15",
        &format!("t/{long_dir}/{}", name("s15-", 190)),
        b"fifteen bytes!!",
    );
    ctx.write_synced("big", &format!("t/{long_dir}/big"), &big);
    ctx.write("t/dir0/unsynced", &pattern(3, 6000));
    // Renames: a long-named file to another long name, and a directory holding fsynced files.
    let f1_new = name("f1-renamed-", 175);
    fs::rename(
        ctx.path(&format!("t/{long_dir}/{f1}")),
        ctx.path(&format!("t/{long_dir}/{f1_new}")),
    )
    .unwrap();
    ctx.rename_synced(
        &format!("t/{long_dir}"),
        &format!("t/{renamed_dir}"),
        &[
            ("s15", &name("s15-", 190), b"fifteen bytes!!"),
            ("big", "big", &big),
        ],
    );
    // Hard links, one to a long name.
    fs::hard_link(ctx.path("t/dir0/f0"), ctx.path("t/dir0/f0-link")).unwrap();
    fs::hard_link(
        ctx.path(&format!("t/{renamed_dir}/big")),
        ctx.path(&format!("t/dir2/{}", name("big-link-", 170))),
    )
    .unwrap();
    // Writes across sector boundaries, and truncates.
    ctx.write_at(
        Some("big"),
        &format!("t/{renamed_dir}/big"),
        4090,
        &pattern(5, 20),
    );
    ctx.write_at(
        None,
        &format!("t/{renamed_dir}/big"),
        8190,
        &pattern(6, 4100),
    );
    ctx.truncate(None, &format!("t/{renamed_dir}/big"), 5000);
    ctx.truncate(None, "t/dir0/unsynced", 4097);
    ctx.truncate(None, "t/dir2/f3", 1);
    // A new file given its size by ftruncate alone, as programs preallocate.
    File::create(ctx.path("t/dir0/sized"))
        .unwrap()
        .set_len(10000)
        .unwrap();
    for (i, len) in [1usize, 5, 15].iter().enumerate() {
        ctx.write(&format!("t/dir2/tiny{i}"), &pattern(i as u8, *len));
    }
    // The config rewrite, then more changes under the new password.
    ctx.passwd();
    let after = pattern(11, 4097);
    ctx.write_synced("after", &format!("t/dir2/{}", name("after-", 199)), &after);
    ctx.rename_synced(
        "t/dir2",
        &format!("t/{}", name("dir2-", 170)),
        &[("after", &name("after-", 199), &after)],
    );
    fs::remove_file(ctx.path("t/dir0/f0")).unwrap();
    fs::remove_dir_all(ctx.path("t/dir0/sub")).unwrap();
}

/// Run by `scripts/crashpoints`: many minutes.
#[test]
#[ignore]
fn full_workload() {
    let summary = enumerate("full workload", Reorder::from_env(None), full);
    assert!(
        summary.failures.is_empty(),
        "{} kinds of failure (see above)",
        summary.failures.len()
    );
}

/// The tree a rotation re-encrypts: a file with an xattr and hard links in two directories (one
/// a long name), a directory with an xattr, a directory its owner may not write (the command
/// lends itself the permission meanwhile), and a symlink; the full one adds a long-named file
/// with an xattr, files of 0, 1, 15, 16, 4095, 4096, 4097, 8193 and 20000 bytes, a sparse file
/// (its hole wider than rekey's 256 KiB piece), a long-named subdirectory, a dangling symlink
/// with a long target, and a file with three names.
fn make_rotation_tree(at: &Path, full: bool) {
    let (a, b) = (at.join("a"), at.join("b"));
    for dir in [at, &a, &b] {
        fs::create_dir(dir).unwrap();
    }
    fs::write(a.join("linked"), pattern(3, 5000)).unwrap();
    common::xattr::set(&a.join("linked"), "user.tag", b"a file's xattr", 0).unwrap();
    fs::hard_link(a.join("linked"), b.join(name("linked-", 170))).unwrap();
    common::xattr::set(&a, "user.dir", b"a directory's xattr", 0).unwrap();
    symlink("a/linked", at.join("link")).unwrap();
    let locked = at.join("locked");
    fs::create_dir(&locked).unwrap();
    fs::write(locked.join("inside"), pattern(5, 20)).unwrap();
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o555)).unwrap();
    if !full {
        return;
    }
    let tagged = at.join(name("tagged-", 160));
    fs::write(&tagged, pattern(2, 100)).unwrap();
    common::xattr::set(&tagged, "user.tag", b"another file's xattr", 0).unwrap();
    fs::write(at.join("empty"), b"").unwrap();
    for len in [1, 15, 16, 4095, 4096, 4097, 8193, 20000] {
        fs::write(b.join(format!("f{len}")), pattern(len as u8, len)).unwrap();
    }
    let sparse = File::create(at.join("sparse")).unwrap();
    sparse.write_all_at(b"the start", 0).unwrap();
    sparse.write_all_at(b"the end", 600 * 1024).unwrap();
    let sub = a.join(name("sub-", 155));
    fs::create_dir(&sub).unwrap();
    fs::write(sub.join("twice"), pattern(4, 12)).unwrap();
    fs::hard_link(sub.join("twice"), a.join("twice")).unwrap();
    fs::hard_link(sub.join("twice"), b.join("twice")).unwrap();
    symlink(name("dangling-", 200), sub.join("dangling")).unwrap();
}

/// Runs `veilfs VERB` (rekey, or upgrade of a format 1 vault) on the recorder's mount of a vault
/// holding the rotation tree, then finishes and checks every crash state.
fn enumerate_rotation(what: &str, verb: &'static str, full: bool, reorder: Reorder) -> Summary {
    let vault = if verb == "upgrade" {
        TestVault::unmounted_v1()
    } else {
        TestVault::unmounted()
    };
    let root = vault.scratch().to_path_buf();
    let (source, cipher, check) = (
        root.join("source"),
        root.join("recorded"),
        root.join("check"),
    );
    for d in [&cipher, &check] {
        fs::create_dir(d).unwrap();
    }
    let _unmount = Unmount(vec![check.clone(), cipher.clone()]);
    make_rotation_tree(&source, full);
    let expected = try_snapshot(&source).unwrap();
    vault.mount_with(&[]);
    must(
        Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", source.display()))
            .arg(vault.mount_path()),
        "cp -a into the vault",
    );
    let copied = try_snapshot(vault.mount_path()).unwrap();
    vault.unmount();
    assert_same_tree(&copied, &expected, "the copy into the vault");
    let real = vault.backing_path();
    let snapshot = root.join("snapshot");
    copy_tree(real, &snapshot).unwrap();
    let (old_names, old_headers) = backing_state(real);
    let new_passfile = root.join("new-pass");
    fs::write(&new_passfile, format!("{NEW_PASSWORD}\n")).unwrap();

    // The recorder shows the backing inodes with the snapshot's numbers, as it shows each state's
    // copy: the link journal names files by inode number.
    let log = new_log();
    let session = Recorder::with_inodes(real, log.clone(), inode_map(real, &snapshot).unwrap())
        .unwrap()
        .mount(&cipher)
        .unwrap();
    let started = Instant::now();
    must(
        veilfs()
            .args([verb, "-q", "--passfile"])
            .arg(vault.passfile())
            .arg("--new-passfile")
            .arg(&new_passfile)
            .arg(&cipher),
        verb,
    );
    session.umount_and_join().unwrap();
    assert!(!is_mounted(&cipher), "the recorder is still mounted");
    let events = log.lock().unwrap().clone();
    print_log(&events);
    let ops: Vec<usize> = (0..events.len())
        .filter(|&i| matches!(events[i], Event::Op(_)))
        .collect();
    eprintln!(
        "{what}: {verb} recorded {} backing operations in {:.1} s",
        ops.len(),
        started.elapsed().as_secs_f64()
    );
    // The replay of the whole log must be, byte for byte, the backing directory the command
    // left: else the recorder missed something, and every state is suspect.
    let replayed = root.join("replayed");
    let whole = CrashState {
        point: ops.len(),
        events: events.len(),
        kind: Kind::Process,
        ops,
    };
    build(&snapshot, &events, &whole, &replayed).unwrap();
    assert_same_tree(
        &try_snapshot(&replayed).unwrap(),
        &try_snapshot(real).unwrap(),
        "the replayed log against the backing directory the command left",
    );
    fs::remove_dir_all(&replayed).unwrap();

    let checker = RotationChecker {
        verb,
        old_passfile: vault.passfile().to_path_buf(),
        new_passfile,
        old_config: fs::read(snapshot.join("veilfs.conf")).unwrap(),
        old_names,
        old_headers,
        expected,
        mountpoint: check,
        cipher: cipher.clone(),
    };
    // The states are built in memory where there is room: the command run again fsyncs every
    // file it writes, which a disk shared with other builds makes slow, and no check needs.
    let work = tempfile::Builder::new()
        .prefix("veilfs-crash-states-")
        .tempdir_in(if Path::new("/dev/shm").is_dir() {
            Path::new("/dev/shm")
        } else {
            &root
        })
        .unwrap();
    let started = Instant::now();
    let (summary, _) = check_all(
        &snapshot,
        &events,
        reorder,
        |dir, _, inodes| checker.check(dir, inodes),
        work.path(),
        |done, all| {
            if done % 100 == 0 || done == all {
                eprintln!("{what}: {done}/{all} states checked");
            }
        },
    );
    print_summary(what, &summary, started);
    summary
}

fn assert_no_failures(summary: &Summary) {
    assert!(
        summary.failures.is_empty(),
        "{} kinds of failure (see above)",
        summary.failures.len()
    );
}

#[test]
fn rekey_small() {
    assert_no_failures(&enumerate_rotation(
        "rekey, small",
        "rekey",
        false,
        Reorder::from_env(SHORT_REORDERED),
    ));
}

#[test]
fn upgrade_small() {
    assert_no_failures(&enumerate_rotation(
        "upgrade, small",
        "upgrade",
        false,
        Reorder::from_env(SHORT_REORDERED),
    ));
}

/// Run by `scripts/crashpoints`.
#[test]
#[ignore]
fn rekey_full() {
    assert_no_failures(&enumerate_rotation(
        "rekey, full",
        "rekey",
        true,
        Reorder::from_env(None),
    ));
}

/// Run by `scripts/crashpoints`.
#[test]
#[ignore]
fn upgrade_full() {
    assert_no_failures(&enumerate_rotation(
        "upgrade, full",
        "upgrade",
        true,
        Reorder::from_env(None),
    ));
}
