//! Reverse mode (issue 17; format.md, "Reverse mode"), mounted for real: a backup of the view
//! mounts forward and gives the tree back, a second backup copies nothing, the view is
//! read-only and leaves PLAINDIR's times alone, exclusions, a config kept outside PLAINDIR,
//! path translation, and a file changing while it is read.

mod common;

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{assert_success, require_fuse, run, sorted_names, unmount_all, veilfs, PASSWORD};

/// A plaintext directory with a reverse config, a mount point for its view, and a backup
/// directory with a mount point for mounting it forward. Dropping it unmounts everything.
struct Reverse {
    _dir: tempfile::TempDir,
    root: PathBuf,
    /// `--config FILE`, when the config is kept outside PLAINDIR.
    config: Option<PathBuf>,
}

impl Reverse {
    /// Sets up the directories and runs `veilfs init --reverse` (with `--config` outside
    /// PLAINDIR when `outside`); `fill` makes PLAINDIR's tree first.
    fn new(outside: bool, fill: impl FnOnce(&Path)) -> Reverse {
        require_fuse();
        let dir = tempfile::Builder::new()
            .prefix("veilfs-reverse-")
            .tempdir()
            .unwrap();
        let root = fs::canonicalize(dir.path()).unwrap();
        for sub in ["plain", "view", "backup", "restored"] {
            fs::create_dir(root.join(sub)).unwrap();
        }
        fs::write(root.join("passfile"), format!("{PASSWORD}\n")).unwrap();
        fill(&root.join("plain"));
        let reverse = Reverse {
            config: outside.then(|| root.join("reverse.conf")),
            _dir: dir,
            root,
        };
        let output = run(veilfs()
            .args([
                "init",
                "--reverse",
                "--kdf-memory",
                "1",
                "--kdf-iterations",
                "1",
            ])
            .args(reverse.config_args())
            .arg("--passfile")
            .arg(reverse.path("passfile"))
            .arg(reverse.plain()));
        assert_success(&output, "veilfs init --reverse");
        reverse
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn plain(&self) -> PathBuf {
        self.path("plain")
    }

    fn view(&self) -> PathBuf {
        self.path("view")
    }

    fn config_args(&self) -> Vec<PathBuf> {
        match &self.config {
            Some(file) => vec!["--config".into(), file.clone()],
            None => Vec::new(),
        }
    }

    /// `veilfs mount --reverse [--config F] EXTRA... PLAINDIR VIEW`.
    fn mount_view(&self, extra: &[&str]) {
        let output = run(veilfs()
            .args(["mount", "--reverse"])
            // The plaintext changes beside the view: no kernel cache hides an edit from the
            // next rsync, whatever the time between them.
            .args(["--cache-ttl", "0"])
            .args(self.config_args())
            .arg("--passfile")
            .arg(self.path("passfile"))
            .args(extra)
            .arg(self.plain())
            .arg(self.view()));
        assert_success(&output, "veilfs mount --reverse");
    }

    /// Mounts the backup forward at `restored`.
    fn mount_backup(&self) {
        let output = run(veilfs()
            .arg("mount")
            .arg("--passfile")
            .arg(self.path("passfile"))
            .arg(self.path("backup"))
            .arg(self.path("restored")));
        assert_success(&output, "veilfs mount of the backup");
    }

    fn unmount(&self, name: &str) {
        assert_success(
            &run(veilfs().arg("umount").arg(self.path(name))),
            "veilfs umount",
        );
    }

    /// `encrypt-path` or `decrypt-path --reverse` of one path.
    fn translate(&self, verb: &str, path: &Path) -> PathBuf {
        let output = run(veilfs()
            .args([verb, "--reverse"])
            .args(self.config_args())
            .arg("--passfile")
            .arg(self.path("passfile"))
            .arg(self.plain())
            .arg("--")
            .arg(path));
        assert_success(&output, verb);
        let mut text = output.stdout;
        assert_eq!(text.pop(), Some(b'\n'));
        PathBuf::from(std::ffi::OsString::from_vec(text))
    }
}

impl Drop for Reverse {
    fn drop(&mut self) {
        for name in ["view", "restored"] {
            unmount_all(&self.path(name));
        }
    }
}

/// `rsync -aH EXTRA... SRC/ DST/`, which must succeed; its output.
fn rsync(src: &Path, dst: &Path, extra: &[&str]) -> Output {
    let output = run(Command::new("rsync")
        .arg("-aH")
        .args(extra)
        .arg(format!("{}/", src.display()))
        .arg(format!("{}/", dst.display())));
    assert_success(&output, "rsync");
    output
}

/// The name of 150 bytes: its encrypted name is long (a `veilfs.longname.*` entry and sidecar).
fn long_name() -> String {
    "long-".repeat(30)
}

/// A tree with every kind of entry the view shows, and one it does not (a FIFO).
fn fill_tree(plain: &Path) {
    let sub = plain.join("dir").join("nested").join("deeper");
    fs::create_dir_all(&sub).unwrap();
    fs::write(plain.join(long_name()), b"under a long name").unwrap();
    fs::create_dir(plain.join(format!("{}-dir", long_name()))).unwrap();
    fs::write(plain.join("Ünïcødé ✓ 名前.txt"), "unicode").unwrap();
    fs::write(plain.join("empty"), b"").unwrap();
    for size in 1..=15 {
        fs::write(
            plain.join(format!("short{size}")),
            vec![b'a' + size as u8; size],
        )
        .unwrap();
    }
    for size in [16, 4095, 4096, 4097, 8192 + 5, 100_000] {
        let data: Vec<u8> = (0..size).map(|i| (i * 31 % 253) as u8).collect();
        fs::write(sub.join(format!("file{size}")), data).unwrap();
    }
    let sparse = fs::File::create(plain.join("sparse")).unwrap();
    sparse.set_len(3 << 20).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&sparse, b"middle", 1 << 20).unwrap();
    fs::write(plain.join("dir").join("linked"), vec![7; 5000]).unwrap();
    fs::hard_link(plain.join("dir").join("linked"), sub.join("linked too")).unwrap();
    fs::write(plain.join("dir").join("linked short"), b"tiny").unwrap();
    fs::hard_link(
        plain.join("dir").join("linked short"),
        plain.join("linked short too"),
    )
    .unwrap();
    symlink("../empty", plain.join("dir").join("to empty")).unwrap();
    symlink("/nowhere/at all", plain.join("dangling")).unwrap();
    symlink(long_name(), plain.join("to long")).unwrap();
    nix::unistd::mkfifo(
        &plain.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
}

/// `diff -r --no-dereference` of the two trees, leaving out what the view does not show.
fn assert_same_tree(plain: &Path, restored: &Path) {
    let output = run(Command::new("diff")
        .args([
            "-r",
            "--no-dereference",
            "-x",
            ".veilfs.reverse.conf",
            "-x",
            "fifo",
        ])
        .arg(plain)
        .arg(restored));
    assert_success(&output, "diff -r of PLAINDIR and the restored backup");
}

/// The lines of rsync's `--itemize-changes` output that say a file was sent.
fn sent(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| line.starts_with(">f") || line.starts_with("cL") || line.starts_with("cd"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_backup_of_the_view_mounts_forward_and_gives_the_tree_back() {
    let r = Reverse::new(false, fill_tree);
    r.mount_view(&[]);
    rsync(&r.view(), &r.path("backup"), &[]);

    // A second backup, with nothing changed, sends nothing, by checksum or by size and mtime.
    for how in [
        &["--checksum", "--itemize-changes"][..],
        &["--itemize-changes"][..],
    ] {
        let again = rsync(&r.view(), &r.path("backup"), how);
        assert_eq!(
            sent(&again),
            Vec::<String>::new(),
            "rsync {how:?} sent files"
        );
    }

    r.mount_backup();
    assert_same_tree(&r.plain(), &r.path("restored"));
    let restored = r.path("restored");
    let ino = |p: PathBuf| fs::symlink_metadata(p).unwrap().ino();
    assert_eq!(
        ino(restored.join("dir/linked")),
        ino(restored.join("dir/nested/deeper/linked too")),
        "hard links stay hard links"
    );
    assert_eq!(
        ino(restored.join("dir/linked short")),
        ino(restored.join("linked short too"))
    );
    assert!(
        !restored.join("fifo").exists(),
        "special files are not in the view"
    );
    r.unmount("restored");
    let fsck = run(veilfs()
        .arg("fsck")
        .arg("--passfile")
        .arg(r.path("passfile"))
        .arg(r.path("backup")));
    assert_success(&fsck, "veilfs fsck of the backup");

    // After one file changes, exactly its view entry is sent again.
    // The edit comes a few seconds later, as edits do: rsync compares whole seconds, and this
    // test runs in less than one.
    let edited = Path::new("dir/nested/deeper/file4097");
    let mut file = fs::OpenOptions::new()
        .append(true)
        .open(r.plain().join(edited))
        .unwrap();
    let written = file.metadata().unwrap().modified().unwrap();
    std::io::Write::write_all(&mut file, b"more").unwrap();
    file.set_modified(written + std::time::Duration::from_secs(3))
        .unwrap();
    drop(file);
    let again = rsync(&r.view(), &r.path("backup"), &["--itemize-changes"]);
    let view_path = r.translate("encrypt-path", edited);
    assert_eq!(
        sent(&again),
        vec![format!(">f.st...... {}", view_path.display())],
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
    assert_eq!(r.translate("decrypt-path", &view_path), edited);
    r.mount_backup();
    assert_same_tree(&r.plain(), &r.path("restored"));
}

/// Every entry below `dir`, and `dir`.
fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    let mut todo = vec![dir.to_path_buf()];
    while let Some(path) = todo.pop() {
        for entry in fs::read_dir(&path).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                todo.push(entry.path());
            }
            out.push(entry.path());
        }
    }
    out.sort();
    out
}

/// mtime and atime (seconds and nanoseconds) of each of `paths`, symlinks' atimes aside
/// (reading a link's target sets it, and no system call can say otherwise).
fn times(paths: &[PathBuf]) -> Vec<(PathBuf, i64, i64, i64, i64)> {
    paths
        .iter()
        .map(|path| {
            let meta = fs::symlink_metadata(path).unwrap();
            let (atime, atime_ns) = match meta.file_type().is_symlink() {
                true => (0, 0),
                false => (meta.atime(), meta.atime_nsec()),
            };
            (
                path.clone(),
                meta.mtime(),
                meta.mtime_nsec(),
                atime,
                atime_ns,
            )
        })
        .collect()
}

/// Reads every file and link of the tree at `dir`, through the view: each as long as `lstat`
/// says.
fn read_everything(dir: &Path) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            read_everything(&path);
        } else if meta.file_type().is_symlink() {
            let target = fs::read_link(&path).unwrap();
            assert_eq!(
                meta.len(),
                target.as_os_str().len() as u64,
                "{}",
                path.display()
            );
        } else {
            assert_eq!(
                fs::read(&path).unwrap().len() as u64,
                meta.len(),
                "{}",
                path.display()
            );
        }
    }
}

#[test]
fn the_view_is_read_only_and_leaves_plaindir_as_it_was() {
    let r = Reverse::new(false, fill_tree);
    // Listed first: listing a directory sets its access time.
    let paths = entries(&r.plain());
    // Old access times, which a read would update (relatime updates those a day old).
    let touched = run(Command::new("find").arg(r.plain()).args([
        "-not",
        "-type",
        "l",
        "-exec",
        "touch",
        "-a",
        "-d",
        "2020-01-01",
        "{}",
        "+",
    ]));
    assert_success(&touched, "touch -a");
    let before = times(&paths);
    r.mount_view(&[]);
    read_everything(&r.view());

    let view = r.view();
    let file = fs::read_dir(&view)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| fs::symlink_metadata(p).unwrap().is_file() && fs::metadata(p).unwrap().len() > 0)
        .unwrap();
    let erofs = |what: &str, result: std::io::Result<()>| {
        let err = result.expect_err(what);
        assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{what}: {err}");
    };
    erofs("create", fs::write(view.join("new"), b"x"));
    erofs("mkdir", fs::create_dir(view.join("newdir")));
    erofs("unlink", fs::remove_file(&file));
    erofs("rename", fs::rename(&file, view.join("renamed")));
    erofs(
        "open for writing",
        fs::OpenOptions::new().write(true).open(&file).map(drop),
    );
    erofs(
        "truncate",
        fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&file)
            .map(drop),
    );
    erofs(
        "chmod",
        fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)),
    );
    erofs(
        "setxattr",
        common::xattr::set(&file, "user.test", b"value", 0),
    );
    erofs("symlink", symlink("target", view.join("link")));
    erofs("link", fs::hard_link(&file, view.join("hardlink")));
    let subdir = fs::read_dir(&view)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .unwrap();
    erofs("rmdir", fs::remove_dir(subdir));
    r.unmount("view");

    assert_eq!(times(&paths), before, "PLAINDIR's times changed");
}

#[test]
fn exclusions_a_config_outside_plaindir_and_mount_options() {
    let r = Reverse::new(true, |plain| {
        fs::create_dir_all(plain.join("cache/deep")).unwrap();
        fs::write(plain.join("cache/deep/big"), b"cached").unwrap();
        fs::write(plain.join("notes.txt"), b"kept").unwrap();
        fs::write(plain.join("scratch.tmp"), b"left out").unwrap();
        fs::write(plain.join("keep.tmp"), b"kept again").unwrap();
        fs::create_dir(plain.join("sub")).unwrap();
        fs::write(plain.join("sub/cache"), b"a file, not the cache directory").unwrap();
    });
    assert_eq!(
        sorted_names(&r.plain()),
        ["cache", "keep.tmp", "notes.txt", "scratch.tmp", "sub"],
        "--config FILE leaves PLAINDIR untouched"
    );
    fs::write(r.path("excludes"), "# comments are fine\n/cache/\n").unwrap();
    let excludes = r.path("excludes");
    r.mount_view(&[
        "--exclude",
        "*.tmp",
        "--exclude",
        "!keep.tmp",
        "--exclude-from",
        excludes.to_str().unwrap(),
    ]);
    rsync(&r.view(), &r.path("backup"), &[]);
    r.unmount("view");
    r.mount_backup();
    let restored = r.path("restored");
    assert_eq!(sorted_names(&restored), ["keep.tmp", "notes.txt", "sub"]);
    assert_eq!(
        fs::read(restored.join("sub/cache")).unwrap(),
        b"a file, not the cache directory"
    );
    r.unmount("restored");

    // The same through -o, as /etc/fstab gives it.
    let config = r.config.clone().unwrap();
    let output = run(veilfs()
        .arg("mount")
        .arg("-o")
        .arg(format!(
            "reverse,config={},exclude_from={},passfile={}",
            config.display(),
            excludes.display(),
            r.path("passfile").display()
        ))
        .arg(r.plain())
        .arg(r.view()));
    assert_success(&output, "veilfs mount -o reverse");
    let mut view_names = sorted_names(&r.view());
    view_names.retain(|n| !n.starts_with("veilfs."));
    assert_eq!(view_names.len(), 4, "{view_names:?}: cache/ left out");
    let options = common::mount_options(&r.view()).unwrap();
    assert!(options.split(',').any(|o| o == "ro"), "{options}");

    // Paths translate both ways, and name what the view shows.
    let encrypted = r.translate("encrypt-path", Path::new("sub/cache"));
    assert!(
        r.view().join(&encrypted).is_file(),
        "{}",
        encrypted.display()
    );
    assert_eq!(
        r.translate("decrypt-path", &encrypted),
        Path::new("sub/cache")
    );
}

#[test]
fn a_file_that_changes_while_it_is_read_fails_instead_of_mixing_versions() {
    let r = Reverse::new(false, |plain| {
        fs::write(plain.join("growing"), vec![1; 8 << 20]).unwrap();
    });
    r.mount_view(&[]);
    let view_file = r.translate("encrypt-path", Path::new("growing"));
    let mut file = fs::File::open(r.view().join(view_file)).unwrap();
    let mut buf = vec![0; 4096];
    file.read_exact(&mut buf).unwrap();
    // Rewritten in place (same size): only its ctime and mtime say so.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let plain = fs::OpenOptions::new()
        .write(true)
        .open(r.plain().join("growing"))
        .unwrap();
    std::os::unix::fs::FileExt::write_all_at(&plain, &vec![2; 1 << 20], 4 << 20).unwrap();
    file.seek(SeekFrom::Start(6 << 20)).unwrap();
    let err = file.read_exact(&mut buf).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    // Opened again, the new version reads whole.
    drop(file);
    let mut again = Vec::new();
    fs::File::open(
        r.view()
            .join(r.translate("encrypt-path", Path::new("growing"))),
    )
    .unwrap()
    .read_to_end(&mut again)
    .unwrap();
    assert_eq!(again.len(), 18 + (8 << 20));
}
