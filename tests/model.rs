//! A randomized model test: the same seeded sequence of file system operations runs on a mount
//! and on a plain directory; every result (errno included) must agree, and so must the whole
//! trees, compared byte for byte every few hundred operations and at the end.
//!
//! `VEILFS_MODEL_SEED=<n>` replays one sequence, `VEILFS_MODEL_OPS=<n>` sets its length. A
//! failure prints the seed, the failing operation and the operations before it.
//!
//! Also: concurrent writers to one file (disjoint, overlapping, and interleaved ranges within
//! the same blocks) never corrupt each other's bytes.

mod common;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ffi::OsString;
use std::fmt::Debug;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use common::ext4::Ext4Vault;
use common::{io_res, xattr, Res, TestVault};
use nix::errno::Errno;
use nix::fcntl::{fallocate, renameat2, FallocateFlags, RenameFlags, AT_FDCWD};

/// xorshift64*: tiny, seedable, good enough to pick operations.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        let fill = self.next();
        (0..len)
            .map(|i| (fill.rotate_left(i as u32 % 64) as u8) ^ (i as u8))
            .collect()
    }

    /// Offsets and sizes near block boundaries, within a block, or anywhere.
    fn offset(&mut self, size: u64) -> u64 {
        match self.below(4) {
            0 => {
                let block = self.below(size / 4096 + 3);
                (block * 4096 + self.below(7)).saturating_sub(3)
            }
            1 => self.below(size + 1),
            2 => size + self.below(10_000), // past EOF
            _ => self.below(64),
        }
    }

    fn len(&mut self) -> usize {
        match self.below(5) {
            0 => 1 + self.below(16) as usize,
            1 => 4096,
            2 => 4096 - 3 + self.below(7) as usize,
            3 => self.below(20_000) as usize,
            _ => 1 + self.below(9000) as usize,
        }
    }
}

/// How many operations a failure report shows (`VEILFS_MODEL_LOG`, default 25).
fn log_len() -> usize {
    env_u64("VEILFS_MODEL_LOG").map_or(25, |n| n as usize)
}

/// `s` with runs of more than 8 equal characters written as `X{n}`: long names stay readable.
fn squeeze(s: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let run = chars[i..].iter().take_while(|&&c| c == chars[i]).count();
        if run > 8 {
            out.push_str(&format!("{}{{{run}}}", chars[i]));
        } else {
            out.extend(&chars[i..i + run]);
        }
        i += run;
    }
    out
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number"))
    })
}

/// Names drawn from a small pool so that operations collide often; some are long enough to
/// be stored as hashed long names.
fn name_pool() -> Vec<OsString> {
    let mut names: Vec<OsString> = ["a", "b", "c", "d e", "ü", "x.txt"]
        .iter()
        .map(OsString::from)
        .collect();
    names.push(OsString::from("L".repeat(180)));
    names.push(OsString::from("M".repeat(255)));
    names.push(OsString::from_vec(b"nl\nname".to_vec()));
    names
}

/// One entry of a tree snapshot.
#[derive(Debug, PartialEq, Eq, Clone)]
enum Entry {
    Dir {
        nlink: u64,
        mode: u32,
    },
    File {
        nlink: u64,
        mode: u32,
        content: Vec<u8>,
    },
    Symlink {
        target: PathBuf,
    },
}

/// Everything under `root` (not following symlinks), plus which paths share an inode.
fn snapshot(root: &Path) -> (BTreeMap<PathBuf, Entry>, Vec<Vec<PathBuf>>) {
    let mut entries = BTreeMap::new();
    let mut by_inode: BTreeMap<u64, Vec<PathBuf>> = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path)
                .unwrap_or_else(|e| panic!("lstat {}: {e}", path.display()));
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            let mode = meta.mode() & 0o7777;
            let e = if meta.is_dir() {
                stack.push(path.clone());
                Entry::Dir {
                    nlink: meta.nlink(),
                    mode,
                }
            } else if meta.file_type().is_symlink() {
                Entry::Symlink {
                    target: fs::read_link(&path).unwrap(),
                }
            } else {
                let content =
                    fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
                assert_eq!(
                    content.len() as u64,
                    meta.len(),
                    "{}: size differs from what reads return",
                    path.display()
                );
                by_inode.entry(meta.ino()).or_default().push(rel.clone());
                Entry::File {
                    nlink: meta.nlink(),
                    mode,
                    content,
                }
            };
            entries.insert(rel, e);
        }
    }
    let mut groups: Vec<Vec<PathBuf>> = by_inode.into_values().filter(|g| g.len() > 1).collect();
    for g in &mut groups {
        g.sort();
    }
    groups.sort();
    (entries, groups)
}

fn brief(entry: Option<&Entry>) -> String {
    match entry {
        Some(Entry::File {
            nlink,
            mode,
            content,
        }) => {
            format!("file nlink {nlink} mode {mode:o} {} bytes", content.len())
        }
        other => format!("{other:?}"),
    }
}

/// Panics with the differences between the two trees.
fn compare_trees(mount: &Path, plain: &Path) -> Result<(), String> {
    let (m, mg) = snapshot(mount);
    let (p, pg) = snapshot(plain);
    let mut diffs = Vec::new();
    for key in m
        .keys()
        .chain(p.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        let (a, b) = (m.get(key), p.get(key));
        if a != b {
            let mut d = format!("{}: mount {}, plain {}", key.display(), brief(a), brief(b));
            if let (Some(Entry::File { content: x, .. }), Some(Entry::File { content: y, .. })) =
                (a, b)
            {
                if let Some(i) = x.iter().zip(y.iter()).position(|(u, v)| u != v) {
                    d += &format!(" (first differing byte at {i})");
                }
            }
            diffs.push(d);
        }
    }
    if mg != pg {
        diffs.push(format!("hard link groups: mount {mg:?}, plain {pg:?}"));
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(diffs.join("\n  "))
    }
}

/// One model run: a tree in the mount and the same tree in a plain directory (the whole of both,
/// or one thread's area of them), the RNG, held file handles and the log.
struct Model {
    mount: PathBuf,
    plain: PathBuf,
    rng: Rng,
    /// How to run this sequence again, for failure messages ("VEILFS_MODEL_SEED=...").
    replay: String,
    /// Where failure messages say the run was ("", or "thread 3, round 7, ").
    place: String,
    /// Where the mount and the plain directory live (shown by `VEILFS_MODEL_KEEP`).
    keep_note: String,
    names: Vec<OsString>,
    /// Open handles (mount, plain, description), kept across operations.
    handles: Vec<(File, File, String)>,
    log: VecDeque<String>,
    step: usize,
    /// Per operation kind: (succeeded, failed with the same errno on both sides).
    stats: BTreeMap<String, (usize, usize)>,
}

impl Model {
    fn new(mount: PathBuf, plain: PathBuf, seed: u64, replay: String) -> Model {
        Model {
            keep_note: format!(
                "the mount {} and the plain directory {}",
                mount.display(),
                plain.display()
            ),
            mount,
            plain,
            rng: Rng::new(seed),
            replay,
            place: String::new(),
            names: name_pool(),
            handles: Vec::new(),
            log: VecDeque::new(),
            step: 0,
            stats: BTreeMap::new(),
        }
    }

    fn roots(&self) -> [&Path; 2] {
        [&self.mount, &self.plain]
    }

    fn fail(&self, message: String) -> ! {
        if std::env::var_os("VEILFS_MODEL_KEEP").is_some() {
            // For debugging: leave the mount and the plain directory for inspection.
            eprintln!(
                "VEILFS_MODEL_KEEP: {}failed: {}; leaving {}",
                self.place,
                squeeze(&message),
                self.keep_note
            );
            std::process::exit(1);
        }
        let log: Vec<&String> = self.log.iter().collect();
        panic!(
            "model test failed at {}op {} (reproduce with {}):\n{}\nlast operations:\n  {}",
            self.place,
            self.step,
            self.replay.replace("{ops}", &(self.step + 1).to_string()),
            squeeze(&message),
            log.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n  ")
        );
    }

    /// Runs `ops` operations, comparing the trees every 500.
    fn run(&mut self, ops: usize) {
        for _ in 0..ops {
            self.op();
            self.step += 1;
            if self.step.is_multiple_of(500) {
                self.check_trees(&format!("after op {}", self.step - 1));
            }
        }
    }

    /// Fails unless the two trees are equal.
    fn check_trees(&self, when: &str) {
        if let Err(diffs) = compare_trees(&self.mount, &self.plain) {
            self.fail(format!("trees differ {when}:\n  {diffs}"));
        }
    }

    fn note(&mut self, what: String) {
        self.log
            .push_back(squeeze(&format!("#{} {what}", self.step)));
        if self.log.len() > log_len() {
            self.log.pop_front();
        }
    }

    /// Runs `op` on both roots and compares the results.
    fn both<T: PartialEq + Debug>(&mut self, what: String, op: impl Fn(&Path) -> Res<T>) {
        self.note(what.clone());
        let [mount, plain] = self.roots();
        let got = op(mount);
        let expected = op(plain);
        let kind = what.split(' ').next().unwrap_or_default().to_string();
        let counts = self.stats.entry(kind).or_default();
        if expected.is_ok() {
            counts.0 += 1;
        } else {
            counts.1 += 1;
        }
        if got != expected {
            let (g, e) = (format!("{got:?}"), format!("{expected:?}"));
            let cut = |s: &str| {
                if s.len() > 300 {
                    format!(
                        "{}... ({} chars)",
                        &s[..s.char_indices().nth(300).map_or(s.len(), |c| c.0)],
                        s.len()
                    )
                } else {
                    s.to_string()
                }
            };
            self.fail(format!(
                "{what}: mount gave {}, plain dir gave {}",
                cut(&g),
                cut(&e)
            ));
        }
    }

    /// Existing paths of the plain tree (the model's truth): (relative path, is_dir, is_file).
    fn existing(&self) -> Vec<(PathBuf, bool, bool)> {
        let mut out = vec![(PathBuf::new(), true, false)];
        let mut stack = vec![PathBuf::new()];
        while let Some(dir) = stack.pop() {
            for entry in fs::read_dir(self.plain.join(&dir)).unwrap() {
                let entry = entry.unwrap();
                let rel = dir.join(entry.file_name());
                let ft = entry.file_type().unwrap();
                if ft.is_dir() {
                    stack.push(rel.clone());
                }
                out.push((rel, ft.is_dir(), ft.is_file()));
            }
        }
        out
    }

    fn any_path(&mut self) -> PathBuf {
        let existing = self.existing();
        if self.rng.chance(75) && existing.len() > 1 {
            self.rng.pick(&existing[1..]).0.clone()
        } else {
            self.new_path()
        }
    }

    fn file_path(&mut self) -> PathBuf {
        let files: Vec<PathBuf> = self
            .existing()
            .into_iter()
            .filter(|e| e.2)
            .map(|e| e.0)
            .collect();
        if files.is_empty() || self.rng.chance(5) {
            self.new_path()
        } else {
            self.rng.pick(&files).clone()
        }
    }

    fn dir_path(&mut self) -> PathBuf {
        let dirs: Vec<PathBuf> = self
            .existing()
            .into_iter()
            .filter(|e| e.1)
            .map(|e| e.0)
            .collect();
        self.rng.pick(&dirs).clone()
    }

    /// A (usually new) name in an existing directory, at most three levels deep.
    fn new_path(&mut self) -> PathBuf {
        let mut dir = self.dir_path();
        while dir.components().count() >= 3 {
            dir.pop();
        }
        let name = self.rng.pick(&self.names).clone();
        dir.join(name)
    }

    fn op(&mut self) {
        let weight = self.rng.below(121);
        match weight {
            0..=9 => {
                let path = self.new_path();
                let data = {
                    let len = self.rng.len();
                    self.rng.bytes(len)
                };
                self.both(format!("create {path:?} with {} bytes", data.len()), |r| {
                    let mut f = io_res(
                        OpenOptions::new()
                            .write(true)
                            .create(true)
                            .truncate(true)
                            .open(r.join(&path)),
                    )?;
                    io_res(f.write_all(&data))
                });
            }
            10..=24 => {
                let path = self.file_path();
                let size = fs::metadata(self.plain.join(&path))
                    .map(|m| m.len())
                    .unwrap_or(0);
                let offset = self.rng.offset(size);
                let data = {
                    let len = self.rng.len();
                    self.rng.bytes(len)
                };
                self.both(
                    format!(
                        "pwrite {} bytes at {offset} to {path:?} (size {size})",
                        data.len()
                    ),
                    |r| {
                        let f = io_res(OpenOptions::new().write(true).open(r.join(&path)))?;
                        io_res(f.write_all_at(&data, offset))
                    },
                );
            }
            25..=31 => {
                let path = self.file_path();
                let size = fs::metadata(self.plain.join(&path))
                    .map(|m| m.len())
                    .unwrap_or(0);
                let new_size = self.rng.offset(size);
                self.both(
                    format!("truncate {path:?} from {size} to {new_size}"),
                    |r| {
                        let f = io_res(OpenOptions::new().write(true).open(r.join(&path)))?;
                        io_res(f.set_len(new_size))
                    },
                );
            }
            32..=39 => {
                let path = self.file_path();
                let size = fs::metadata(self.plain.join(&path))
                    .map(|m| m.len())
                    .unwrap_or(0);
                let offset = self.rng.offset(size);
                let len = self.rng.len();
                self.both(format!("pread {len} at {offset} from {path:?}"), |r| {
                    let f = io_res(File::open(r.join(&path)))?;
                    let mut buf = vec![0; len];
                    let mut done = 0;
                    while done < len {
                        match io_res(f.read_at(&mut buf[done..], offset + done as u64))? {
                            0 => break,
                            n => done += n,
                        }
                    }
                    buf.truncate(done);
                    Ok(buf)
                });
            }
            40..=41 => {
                let path = self.file_path();
                let data = {
                    let len = self.rng.len();
                    self.rng.bytes(len)
                };
                self.both(format!("append {} bytes to {path:?}", data.len()), |r| {
                    let mut f = io_res(OpenOptions::new().append(true).open(r.join(&path)))?;
                    io_res(f.write_all(&data))
                });
            }
            42..=51 => {
                let from = self.any_path();
                let to = if self.rng.chance(50) {
                    self.any_path()
                } else {
                    self.new_path()
                };
                let flags = match self.rng.below(10) {
                    0 => RenameFlags::RENAME_NOREPLACE,
                    1 => RenameFlags::RENAME_EXCHANGE,
                    _ => RenameFlags::empty(),
                };
                self.both(format!("rename {from:?} -> {to:?} {flags:?}"), |r| {
                    renameat2(AT_FDCWD, &r.join(&from), AT_FDCWD, &r.join(&to), flags)
                });
            }
            52..=56 => {
                let from = self.any_path();
                let to = self.new_path();
                self.both(format!("link {from:?} -> {to:?}"), |r| {
                    io_res(fs::hard_link(r.join(&from), r.join(&to)))
                });
            }
            57..=64 => {
                let path = self.any_path();
                self.both(format!("unlink {path:?}"), |r| {
                    io_res(fs::remove_file(r.join(&path)))
                });
            }
            65..=71 => {
                let path = self.new_path();
                self.both(format!("mkdir {path:?}"), |r| {
                    io_res(fs::create_dir(r.join(&path)))
                });
            }
            72..=75 => {
                let path = self.any_path();
                self.both(format!("rmdir {path:?}"), |r| {
                    io_res(fs::remove_dir(r.join(&path)))
                });
            }
            76..=79 => {
                let path = self.new_path();
                let target = match self.rng.below(3) {
                    0 => self.any_path(),
                    1 => PathBuf::from("/abs/target").join(self.rng.pick(&self.names)),
                    // No "..": a symlink may be moved anywhere, and one that leads out of the
                    // tree would resolve differently in the two roots.
                    _ => PathBuf::from("./").join(self.rng.pick(&self.names)),
                };
                self.both(format!("symlink {path:?} -> {target:?}"), |r| {
                    io_res(std::os::unix::fs::symlink(&target, r.join(&path)))
                });
            }
            80..=83 => {
                let path = self.any_path();
                self.both(format!("readlink {path:?}"), |r| {
                    io_res(fs::read_link(r.join(&path)))
                });
                self.both(format!("lstat {path:?}"), |r| {
                    io_res(fs::symlink_metadata(r.join(&path))).map(|m| {
                        (
                            m.file_type().is_dir(),
                            (!m.is_dir()).then_some(m.len()),
                            m.nlink(),
                            m.mode(),
                        )
                    })
                });
            }
            84..=86 => {
                let dir = self.dir_path();
                self.both(format!("readdir {dir:?}"), |r| {
                    let mut names = Vec::new();
                    for e in io_res(fs::read_dir(r.join(&dir)))? {
                        let e = io_res(e)?;
                        names.push((e.file_name(), io_res(e.file_type())?.is_dir()));
                    }
                    names.sort();
                    Ok(names)
                });
            }
            87..=90 => {
                // Open a held handle pair (or close one when there are enough).
                if self.handles.len() >= 4 || (self.rng.chance(30) && !self.handles.is_empty()) {
                    let i = self.rng.below(self.handles.len() as u64) as usize;
                    let (_, _, what) = self.handles.remove(i);
                    self.note(format!("close handle {i} ({what})"));
                } else {
                    let path = self.file_path();
                    let open = |r: &Path| {
                        io_res(
                            OpenOptions::new()
                                .read(true)
                                .write(true)
                                .open(r.join(&path)),
                        )
                    };
                    let [mount, plain] = self.roots();
                    let (a, b) = (open(mount), open(plain));
                    let what = squeeze(&format!("open {path:?} read-write"));
                    self.note(format!("{what} -> handle {}", self.handles.len()));
                    match (a, b) {
                        (Ok(a), Ok(b)) => self.handles.push((a, b, what)),
                        (Err(a), Err(b)) if a == b => {}
                        (a, b) => self.fail(format!(
                            "{what}: mount gave {:?}, plain dir gave {:?}",
                            a.map(drop),
                            b.map(drop)
                        )),
                    }
                }
            }
            91..=95 if !self.handles.is_empty() => {
                // Write through a held handle (its file may have been renamed or unlinked).
                let i = self.rng.below(self.handles.len() as u64) as usize;
                let size = self.handles[i].1.metadata().unwrap().len();
                let offset = self.rng.offset(size);
                let len = self.rng.len();
                let data = self.rng.bytes(len);
                let what = format!(
                    "pwrite {len} at {offset} through handle {i} ({})",
                    self.handles[i].2
                );
                let (a, b) = (
                    self.handles[i].0.write_all_at(&data, offset),
                    self.handles[i].1.write_all_at(&data, offset),
                );
                self.check_pair(what, io_res(a), io_res(b));
            }
            96..=99 if !self.handles.is_empty() => {
                let i = self.rng.below(self.handles.len() as u64) as usize;
                let size = self.handles[i].1.metadata().unwrap().len();
                let offset = self.rng.offset(size);
                let len = self.rng.len();
                let what = format!(
                    "pread {len} at {offset} through handle {i} ({})",
                    self.handles[i].2
                );
                let read = |f: &File| {
                    let mut buf = vec![0; len];
                    let n = io_res(f.read_at(&mut buf, offset))?;
                    buf.truncate(n);
                    Ok(buf)
                };
                let (a, b) = (read(&self.handles[i].0), read(&self.handles[i].1));
                self.check_pair(what, a, b);
            }
            100..=102 if !self.handles.is_empty() => {
                // ftruncate through a held handle whose file still has a name (an unlinked
                // file's handle is tests/posix's files::unlinked_open_file_stays_usable).
                let i = self.rng.below(self.handles.len() as u64) as usize;
                let meta = self.handles[i].1.metadata().unwrap();
                if meta.nlink() > 0 {
                    let size = self.rng.offset(meta.len());
                    let what = format!("ftruncate handle {i} ({}) to {size}", self.handles[i].2);
                    let (a, b) = (
                        self.handles[i].0.set_len(size),
                        self.handles[i].1.set_len(size),
                    );
                    self.check_pair(what, io_res(a), io_res(b));
                }
            }
            103..=105 => {
                let path = self.any_path();
                let mode = *self
                    .rng
                    .pick(&[0o644, 0o600, 0o755, 0o700, 0o444, 0o1777, 0o2755]);
                self.both(format!("chmod {path:?} {mode:o}"), |r| {
                    io_res(fs::set_permissions(
                        r.join(&path),
                        fs::Permissions::from_mode(mode),
                    ))
                });
            }
            106..=107 => {
                let path = self.file_path();
                self.both(format!("open {path:?} O_TRUNC"), |r| {
                    io_res(
                        OpenOptions::new()
                            .write(true)
                            .truncate(true)
                            .open(r.join(&path)),
                    )
                    .map(drop)
                });
            }
            108..=110 => {
                // Read following symlinks.
                let path = self.any_path();
                self.both(format!("read (following symlinks) {path:?}"), |r| {
                    io_res(fs::read(r.join(&path)))
                });
            }
            111..=112 => {
                let path = self.any_path();
                let value = {
                    let len = self.rng.below(300) as usize;
                    self.rng.bytes(len)
                };
                let name = format!("user.{}", self.rng.below(3));
                self.both(
                    format!("setxattr {path:?} {name} ({} bytes)", value.len()),
                    |r| io_res(xattr::set(&r.join(&path), &name, &value, 0)),
                );
                self.both(format!("getxattr {path:?} {name}"), |r| {
                    io_res(xattr::get(&r.join(&path), &name))
                });
            }
            113..=115 => {
                let path = self.file_path();
                let size = fs::metadata(self.plain.join(&path))
                    .map(|m| m.len())
                    .unwrap_or(0);
                let offset = self.rng.offset(size);
                let len = self.rng.len();
                // Mode 0 and KEEP_SIZE; veilfs refuses hole punching and the other modes
                // (EOPNOTSUPP), where ext4 would succeed.
                let (flags, flag_name) = if self.rng.chance(30) {
                    (FallocateFlags::FALLOC_FL_KEEP_SIZE, " KEEP_SIZE")
                } else {
                    (FallocateFlags::empty(), "")
                };
                self.both(
                    format!("fallocate{flag_name} {len} at {offset} of {path:?} (size {size})"),
                    |r| {
                        let f = io_res(OpenOptions::new().write(true).open(r.join(&path)))?;
                        fallocate(&f, flags, offset as i64, len as i64)
                    },
                );
            }
            116..=117 => {
                let path = self.any_path();
                if self.rng.chance(50) {
                    let name = format!("user.{}", self.rng.below(3));
                    self.both(format!("removexattr {path:?} {name}"), |r| {
                        io_res(xattr::remove(&r.join(&path), &name))
                    });
                } else {
                    self.both(format!("listxattr {path:?}"), |r| {
                        io_res(xattr::list(&r.join(&path)))
                    });
                }
            }
            _ => {
                let path = self.any_path();
                self.both(format!("stat {path:?}"), |r| {
                    io_res(fs::metadata(r.join(&path)))
                        .map(|m| (m.is_dir(), (!m.is_dir()).then_some(m.len())))
                });
            }
        }
    }

    /// One operation across two areas of the threaded run (`self` is the whole tree, run with
    /// the area threads stopped): a rename of an entry of one area to a name in another, with
    /// or without RENAME_NOREPLACE or RENAME_EXCHANGE, or a hard link into another area that is
    /// removed again at once. An entry moves only when no file in it has a second link: a
    /// link left behind in its old area would let two threads reach one file in the next round.
    fn cross_area_op(&mut self, areas: &[PathBuf]) {
        let t = self.rng.below(areas.len() as u64) as usize;
        let u = (t + 1 + self.rng.below(areas.len() as u64 - 1) as usize) % areas.len();
        let existing = self.existing();
        let in_area = |area: &Path, dirs_only: bool| -> Vec<PathBuf> {
            existing
                .iter()
                .filter(|e| e.0.starts_with(area) && e.0 != area && (e.1 || !dirs_only))
                .map(|e| e.0.clone())
                .collect()
        };
        let from = match in_area(&areas[t], false) {
            entries if entries.is_empty() || self.rng.chance(5) => {
                areas[t].join(self.rng.pick(&self.names))
            }
            entries => self.rng.pick(&entries).clone(),
        };
        let mut dirs = in_area(&areas[u], true);
        dirs.retain(|d| d.components().count() < 3);
        dirs.push(areas[u].clone());
        let to = self.rng.pick(&dirs).join(self.rng.pick(&self.names));
        if self.rng.chance(25) {
            self.both(format!("link across areas {from:?} -> {to:?}"), |r| {
                io_res(fs::hard_link(r.join(&from), r.join(&to)))
            });
            if fs::symlink_metadata(self.plain.join(&to)).is_ok_and(|m| m.nlink() > 1) {
                self.both(format!("lstat {from:?}"), |r| {
                    io_res(fs::symlink_metadata(r.join(&from))).map(|m| (m.nlink(), m.len()))
                });
                self.both(format!("unlink {to:?}"), |r| {
                    io_res(fs::remove_file(r.join(&to)))
                });
            }
            return;
        }
        let flags = match self.rng.below(10) {
            0 => RenameFlags::RENAME_NOREPLACE,
            1 => RenameFlags::RENAME_EXCHANGE,
            _ => RenameFlags::empty(),
        };
        let linked = |path: &Path| has_hard_links(&self.plain.join(path));
        if linked(&from) || (flags == RenameFlags::RENAME_EXCHANGE && linked(&to)) {
            self.note(format!(
                "skipped: rename {from:?} -> {to:?} {flags:?} (hard links)"
            ));
            return;
        }
        self.both(
            format!("rename across areas {from:?} -> {to:?} {flags:?}"),
            |r| renameat2(AT_FDCWD, &r.join(&from), AT_FDCWD, &r.join(&to), flags),
        );
    }

    fn check_pair<T: PartialEq + Debug>(&mut self, what: String, got: Res<T>, expected: Res<T>) {
        self.note(what.clone());
        if got != expected {
            let brief = |r: &Res<T>| {
                let s = format!("{r:?}");
                if s.len() > 300 {
                    format!("{}... ({} chars)", &s[..300], s.len())
                } else {
                    s
                }
            };
            self.fail(format!(
                "{what}: mount gave {}, plain dir gave {}",
                brief(&got),
                brief(&expected)
            ));
        }
    }
}

/// Reads file `path` to its end, not following a symlink.
fn read_no_follow(path: &Path) -> std::io::Result<()> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    file.read_to_end(&mut Vec::new()).map(drop)
}

/// Whether `path` is, or is a directory holding, a file with more than one link.
fn has_hard_links(path: &Path) -> bool {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::read_dir(path)
            .unwrap()
            .any(|e| has_hard_links(&e.unwrap().path())),
        Ok(m) => m.is_file() && m.nlink() > 1,
        Err(_) => false,
    }
}

fn seed_from_env() -> u64 {
    env_u64("VEILFS_MODEL_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    })
}

fn plain_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("veilfs-model-")
        .tempdir()
        .unwrap()
}

#[test]
fn random_operations_match_a_plain_directory() {
    let seed = seed_from_env();
    let ops = env_u64("VEILFS_MODEL_OPS").unwrap_or(3000) as usize;
    eprintln!("model test: VEILFS_MODEL_SEED={seed} VEILFS_MODEL_OPS={ops}");
    let vault = TestVault::new();
    let plain = plain_dir();
    let mut model = Model::new(
        vault.mount_path().to_path_buf(),
        plain.path().to_path_buf(),
        seed,
        format!("VEILFS_MODEL_SEED={seed} VEILFS_MODEL_OPS={{ops}}"),
    );
    let started = std::time::Instant::now();
    model.run(ops / 2);
    // Halfway: unmount and mount again, closing the held handles.
    model.handles.clear();
    model.note("remount".to_string());
    vault.remount();
    model.run(ops - ops / 2);
    model.check_trees("at the end");
    model.handles.clear();
    // The same after a remount: nothing lived only in the daemon's memory.
    vault.remount();
    model.check_trees("after a remount");
    let (entries, groups) = snapshot(plain.path());
    eprintln!(
        "model test: {ops} operations in {:?}; (ok, errno) per kind: {:?}; final tree: {} entries, {} hard link groups",
        started.elapsed(),
        model.stats,
        entries.len(),
        groups.len()
    );
}

// =====================================================================================
// Eight threads
// =====================================================================================

/// Writer threads of the threaded model run; thread `t` owns the area `t<t>` of both trees.
const AREAS: usize = 8;

/// The threaded run remounts after every this many rounds (and at the end).
const REMOUNT_EVERY: usize = 10;

/// The model run with `AREAS` threads on one mount, in rounds. Within a round each thread runs
/// its own seeded sequence in its own area (`t0`..`t7`), so no two threads touch the same name
/// and each area's results are those of a single-threaded run: comparable with the plain
/// directory, errno for errno, and reproducible from the seed whatever the interleaving. Reader
/// threads walk and read the whole mount meanwhile (checked for errors only: their view races
/// with the writers). Between rounds, with the writers stopped and their handles closed, one
/// more seeded sequence renames and links entries across areas (see [`Model::cross_area_op`]),
/// then the whole trees are compared; every `REMOUNT_EVERY` rounds the vault is remounted and
/// compared again.
///
/// `VEILFS_MODEL_THREADED_OPS` (default 4000) operations in all, spread over the threads;
/// `VEILFS_MODEL_ROUND` (default 250) operations per thread per round;
/// `VEILFS_MODEL_READERS` (default 2) reader threads. `scripts/soak` runs a million.
#[test]
fn eight_threads_in_disjoint_areas_match_a_plain_directory() {
    let seed = seed_from_env();
    let total = env_u64("VEILFS_MODEL_THREADED_OPS").unwrap_or(4000) as usize;
    let round = env_u64("VEILFS_MODEL_ROUND").unwrap_or(250).max(1) as usize;
    let readers = env_u64("VEILFS_MODEL_READERS").unwrap_or(2) as usize;
    let per_thread = total.div_ceil(AREAS);
    let rounds = per_thread.div_ceil(round);
    eprintln!(
        "threaded model test: VEILFS_MODEL_SEED={seed} VEILFS_MODEL_THREADED_OPS={total} \
         VEILFS_MODEL_ROUND={round} VEILFS_MODEL_READERS={readers}: {AREAS} threads x \
         {per_thread} operations in {rounds} rounds"
    );
    let vault = TestVault::new();
    let plain = plain_dir();
    let (mount_root, plain_root) = (vault.mount_path(), plain.path());
    let areas: Vec<PathBuf> = (0..AREAS).map(|t| PathBuf::from(format!("t{t}"))).collect();
    for area in &areas {
        fs::create_dir(mount_root.join(area)).unwrap();
        fs::create_dir(plain_root.join(area)).unwrap();
    }
    // The sequence up to any round depends only on the seed and the round length.
    let replay = |r: usize| {
        format!(
            "VEILFS_MODEL_SEED={seed} VEILFS_MODEL_ROUND={round} VEILFS_MODEL_THREADED_OPS={}",
            (r + 1) * round * AREAS
        )
    };
    let mut models: Vec<Model> = areas
        .iter()
        .enumerate()
        .map(|(t, area)| {
            Model::new(
                mount_root.join(area),
                plain_root.join(area),
                seed ^ (t as u64 + 1).wrapping_mul(0xA076_1D64_78BD_642F),
                String::new(),
            )
        })
        .collect();
    let mut cross = Model::new(
        mount_root.to_path_buf(),
        plain_root.to_path_buf(),
        seed ^ 0xE703_7ED1_A0B4_28DB,
        String::new(),
    );
    let started = std::time::Instant::now();
    let mut reads = 0u64;
    let mut done = 0;
    for r in 0..rounds {
        let ops = round.min(per_thread - done);
        for (t, model) in models.iter_mut().enumerate() {
            model.replay = replay(r);
            model.place = format!("thread {t} (area t{t}), round {r}, ");
        }
        reads += run_round(&mut models, ops, mount_root, readers);
        done += ops;
        for model in &mut models {
            // Entries may move to another area: no handle may outlive its area's round.
            model.handles.clear();
        }
        cross.replay = replay(r);
        cross.place = format!("cross-area operations after round {r}, ");
        for _ in 0..AREAS * 2 {
            cross.cross_area_op(&areas);
            cross.step += 1;
        }
        cross.check_trees(&format!("after round {r}"));
        if (r + 1).is_multiple_of(REMOUNT_EVERY) || r + 1 == rounds {
            vault.remount();
            cross.check_trees(&format!("after the remount that followed round {r}"));
            // Progress of a long run, so that one stopped early still tells how far it got.
            eprintln!(
                "threaded model test: round {}/{rounds}, {} operations in {:.0?}, all equal",
                r + 1,
                done * AREAS + cross.step,
                started.elapsed()
            );
        }
    }
    let elapsed = started.elapsed();
    let mut stats: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for model in models.iter().chain([&cross]) {
        for (kind, (ok, err)) in &model.stats {
            let sum = stats.entry(kind.clone()).or_default();
            sum.0 += ok;
            sum.1 += err;
        }
    }
    let ops = per_thread * AREAS + cross.step;
    let (entries, groups) = snapshot(plain_root);
    eprintln!(
        "threaded model test: {ops} operations ({} cross-area) in {elapsed:?}, {:.0} ops/s; \
         readers read {reads} entries; (ok, errno) per kind: {stats:?}; final tree: {} entries, \
         {} hard link groups",
        cross.step,
        ops as f64 / elapsed.as_secs_f64(),
        entries.len(),
        groups.len()
    );
}

/// One round: every model runs `ops` operations in its own thread while `readers` threads read
/// the whole mount; returns how many entries the readers read. A writer's failure is re-raised
/// once the readers have stopped.
fn run_round(models: &mut [Model], ops: usize, mount: &Path, readers: usize) -> u64 {
    let stop = AtomicBool::new(false);
    thread::scope(|s| {
        let readers: Vec<_> = (0..readers)
            .map(|_| s.spawn(|| read_everything_until(mount, &stop)))
            .collect();
        let writers: Vec<_> = models
            .iter_mut()
            .map(|model| s.spawn(move || model.run(ops)))
            .collect();
        let failed = writers.into_iter().find_map(|w| w.join().err());
        stop.store(true, Ordering::Relaxed);
        let mut reads = 0;
        for reader in readers {
            match reader.join().expect("a reader thread panicked") {
                Ok(n) => reads += n,
                Err(e) if failed.is_none() => panic!("a reader next to the writers: {e}"),
                Err(_) => {}
            }
        }
        if let Some(payload) = failed {
            std::panic::resume_unwind(payload);
        }
        reads
    })
}

/// Walks the mount over and over until `stop`, reading every file, symlink and one extended
/// attribute on the way; returns how many entries it read, or the first error that the
/// writers' races cannot explain (an entry vanished, or replaced by one of another type, between
/// listing and reading it).
fn read_everything_until(root: &Path, stop: &AtomicBool) -> Result<u64, String> {
    // ELOOP: a file replaced by a symlink (O_NOFOLLOW); EINVAL: readlink of a symlink replaced.
    let raced = |e: &std::io::Error| {
        matches!(
            e.raw_os_error(),
            Some(libc::ENOENT | libc::ENOTDIR | libc::EISDIR | libc::EINVAL | libc::ELOOP)
        )
    };
    let mut reads = 0;
    while !stop.load(Ordering::Relaxed) {
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if raced(&e) => continue,
                Err(e) => return Err(format!("listing {}: {e}", dir.display())),
            };
            for entry in entries {
                let path = match entry {
                    Ok(entry) => entry.path(),
                    Err(e) if raced(&e) => continue,
                    Err(e) => return Err(format!("listing {}: {e}", dir.display())),
                };
                let read = match fs::symlink_metadata(&path) {
                    Ok(m) if m.is_dir() => {
                        stack.push(path.clone());
                        Ok(())
                    }
                    Ok(m) if m.file_type().is_symlink() => fs::read_link(&path).map(drop),
                    Ok(_) => read_no_follow(&path),
                    Err(e) => Err(e),
                };
                match read {
                    Err(e) if !raced(&e) => return Err(format!("reading {}: {e}", path.display())),
                    _ => reads += 1,
                }
                match io_res(xattr::get(&path, "user.0")) {
                    Err(Errno::ENODATA | Errno::ENOENT | Errno::ENOTDIR) | Ok(_) => {}
                    Err(e) => return Err(format!("getxattr {}: {e}", path.display())),
                }
            }
            if stop.load(Ordering::Relaxed) {
                break;
            }
        }
    }
    Ok(reads)
}

/// How many entries the reuse tests below replace while holding them, and how many they then
/// create: ext4 hands a freed inode number out again at once (to the next entry made, on the
/// private file system of [`Ext4Vault`]), so a few hundred creations reuse every one that is
/// free.
const HELD: usize = 20;
const CREATED: usize = 300;

/// [`HELD`] directories made in `mount` and removed, each held open: by inode number.
fn removed_dirs_held_open(mount: &Path) -> BTreeMap<u64, File> {
    let mut held = BTreeMap::new();
    for i in 0..HELD {
        let dir = mount.join(format!("removed{i}"));
        fs::create_dir(&dir).unwrap();
        held.insert(fs::metadata(&dir).unwrap().ino(), File::open(&dir).unwrap());
        fs::remove_dir(&dir).unwrap();
    }
    held
}

/// Found by the threaded run: the backing file system gave a freed inode number to a new entry
/// while the kernel still held the removed one (here: kept by an open handle; in the threaded
/// run: not yet forgotten). veilfs's node IDs are the backing inode numbers, so the kernel took
/// the new directory for the removed one, in which nothing can be created (ENOENT; EEXIST,
/// ESTALE and ENOENT from mkdir and link in the threaded run). Now no new entry gets a number
/// the kernel holds, as on a local file system: the removed directory's inode stays pinned.
/// Once the kernel lets them go, the same creations do get those numbers: the backing file
/// system (a private one, whose numbers nothing else takes) would have reused them.
#[test]
fn a_new_directory_never_gets_a_number_the_kernel_holds() {
    let vault = Ext4Vault::unmounted();
    vault.mount_with(&[]);
    let mount = vault.mount_path();
    let held = removed_dirs_held_open(mount);
    for i in 0..CREATED {
        let dir = mount.join(format!("new{i}"));
        fs::create_dir(&dir).unwrap();
        let ino = fs::metadata(&dir).unwrap().ino();
        assert!(
            !held.contains_key(&ino),
            "new{i} got inode number {ino}, which a removed directory still held open has"
        );
    }
    for i in (0..CREATED).step_by(37) {
        let dir = mount.join(format!("new{i}"));
        fs::create_dir(dir.join("inside")).unwrap();
        fs::write(dir.join("inside/f"), b"x").unwrap();
        assert_eq!(fs::read(dir.join("inside/f")).unwrap(), b"x");
    }
    let numbers: BTreeSet<u64> = held.into_keys().collect();
    // The kernel forgets the removed directories, and veilfs unpins them, by the remount at
    // the latest.
    vault.remount();
    let reused = (0..CREATED)
        .map(|i| mount.join(format!("later{i}")))
        .filter(|dir| {
            fs::create_dir(dir).unwrap();
            numbers.contains(&fs::metadata(dir).unwrap().ino())
        })
        .count();
    assert!(
        reused > 0,
        "no later directory got a freed number: the check above proved nothing"
    );
}

/// Pins are file descriptors, three quarters of the daemon's open file limit at most. Past
/// that, nodes go unpinned and a number reused under one gets the next generation, the
/// fallback (before pins, the only way): a directory made on a reused number still works. The
/// daemon runs with a limit of 128 (96 pins), spent first on 120 files the kernel holds.
#[test]
fn past_the_pin_budget_a_reused_number_gets_a_new_generation() {
    let vault = Ext4Vault::unmounted();
    let mount = vault.mount_path();
    let limited = "ulimit -n 128 && exec \"$0\" mount --passfile \"$1\" \"$2\" \"$3\"";
    let output = common::run(
        std::process::Command::new("sh")
            .args(["-c", limited])
            .arg(common::veilfs().get_program())
            .args([vault.passfile(), vault.backing_path(), mount]),
    );
    common::assert_success(&output, "veilfs mount with 128 open files at most");
    let kept: Vec<PathBuf> = (0..120).map(|i| mount.join(format!("kept{i}"))).collect();
    for path in &kept {
        fs::write(path, b"k").unwrap();
    }
    let held = removed_dirs_held_open(mount);
    let reused: Vec<PathBuf> = (0..CREATED)
        .map(|i| mount.join(format!("new{i}")))
        .filter(|dir| {
            fs::create_dir(dir).unwrap();
            held.contains_key(&fs::metadata(dir).unwrap().ino())
        })
        .collect();
    assert!(
        !reused.is_empty(),
        "no new directory reused a number: the fallback was not exercised"
    );
    for dir in &reused {
        fs::create_dir(dir.join("inside")).unwrap();
        fs::write(dir.join("inside/f"), b"x").unwrap();
        assert_eq!(fs::read(dir.join("inside/f")).unwrap(), b"x");
    }
    for path in &kept {
        assert_eq!(fs::read(path).unwrap(), b"k");
    }
    drop(held);
}

/// What a reader holds between resolving a name and opening it, and what another process does
/// meanwhile: each file is resolved (an `O_PATH` handle: a path walk's reference, no FUSE open),
/// then replaced (half renamed over, half unlinked), then new files are made (reusing the freed
/// backing numbers), then the resolved file is opened (through `/proc/self/fd`) and read. On a
/// plain directory the open reaches the old file, whatever became of its name. veilfs used to
/// fail it with EIO (the soak's readers: 9 a minute): a new file got the old one's backing
/// inode number, veilfs's node ID, with the next generation, and the kernel then fails every
/// operation on the old inode.
#[test]
fn opening_a_resolved_file_after_it_was_replaced_reaches_it() {
    use std::os::unix::fs::OpenOptionsExt;
    fn run(root: &Path) -> Vec<(String, Res<Vec<u8>>)> {
        let mut held = Vec::new();
        let mut numbers = BTreeMap::new();
        for i in 0..HELD {
            let path = root.join(format!("f{i}"));
            fs::write(&path, format!("old {i}")).unwrap();
            let resolved = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_PATH)
                .open(&path)
                .unwrap();
            numbers.insert(fs::metadata(&path).unwrap().ino(), i);
            if i % 2 == 0 {
                let tmp = root.join(format!("tmp{i}"));
                fs::write(&tmp, format!("new {i}")).unwrap();
                fs::rename(&tmp, &path).unwrap();
            } else {
                fs::remove_file(&path).unwrap();
            }
            held.push(resolved);
        }
        let mut reused = Vec::new();
        for i in 0..CREATED {
            let path = root.join(format!("n{i}"));
            fs::write(&path, b"n").unwrap();
            let ino = fs::metadata(&path).unwrap().ino();
            if let Some(old) = numbers.get(&ino) {
                reused.push((format!("n{i} got the number of f{old}"), Ok(Vec::new())));
            }
        }
        let mut results = Vec::new();
        for (i, resolved) in held.iter().enumerate() {
            use std::os::fd::AsRawFd;
            let reopened = format!("/proc/self/fd/{}", resolved.as_raw_fd());
            results.push((format!("open f{i}"), io_res(fs::read(reopened))));
        }
        results.extend(reused);
        results
    }
    let vault = TestVault::new();
    let plain = plain_dir();
    let expected = run(plain.path());
    assert!(expected.iter().all(|(_, r)| r.is_ok()), "{expected:?}");
    let got = run(vault.mount_path());
    for (want, got) in expected.iter().zip(&got) {
        assert_eq!(
            got, want,
            "veilfs (left) and a plain directory (right) differ"
        );
    }
    assert_eq!(got.len(), expected.len(), "{got:?}");
}

// =====================================================================================
// Concurrent writers
// =====================================================================================

const THREADS: usize = 8;

/// Fill byte of thread `t`: never 0, so unwritten bytes (zeros) stand out.
fn fill(t: usize) -> u8 {
    0x11 * (t as u8 + 1)
}

/// Runs `THREADS` writers: thread `t` writes `ranges[t]` (offset, len) with its fill byte,
/// threads 0-5 each through their own fd, 6 and 7 through one shared fd.
fn run_writers(path: &Path, ranges: Vec<Vec<(u64, usize)>>) {
    let shared = Arc::new(OpenOptions::new().write(true).open(path).unwrap());
    let barrier = Arc::new(Barrier::new(THREADS));
    let workers: Vec<_> = ranges
        .into_iter()
        .enumerate()
        .map(|(t, ranges)| {
            let file = if t >= 6 {
                Arc::clone(&shared)
            } else {
                Arc::new(OpenOptions::new().write(true).open(path).unwrap())
            };
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                barrier.wait();
                for (offset, len) in ranges {
                    file.write_all_at(&vec![fill(t); len], offset)
                        .unwrap_or_else(|e| panic!("thread {t}: pwrite {len} at {offset}: {e}"));
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("a writer thread panicked");
    }
}

/// A mounted vault holding one empty file, `name`: the vault and the file's path.
fn vault_with_empty_file(name: &str) -> (TestVault, PathBuf) {
    let vault = TestVault::new();
    let path = vault.mount_path().join(name);
    File::create(&path).unwrap();
    (vault, path)
}

/// What reached the backing file is what was read: a remount (no cache left) reads the same.
fn assert_unchanged_by_a_remount(vault: &TestVault, path: &Path, expected: &[u8]) {
    vault.remount();
    assert!(
        fs::read(path).unwrap() == expected,
        "content changed by a remount"
    );
}

#[test]
fn concurrent_disjoint_unaligned_writes() {
    let (vault, path) = vault_with_empty_file("disjoint");
    let mut rng = Rng::new(42);
    // Cut 1 MiB into segments at unaligned offsets; segment i belongs to thread i % THREADS.
    let total = 1u64 << 20;
    let mut cuts = vec![0u64];
    while *cuts.last().unwrap() < total {
        let next = cuts.last().unwrap() + 1 + rng.below(6000);
        cuts.push(next.min(total));
    }
    let mut ranges = vec![Vec::new(); THREADS];
    let mut expected = vec![0u8; total as usize];
    for (i, w) in cuts.windows(2).enumerate() {
        let t = i % THREADS;
        ranges[t].push((w[0], (w[1] - w[0]) as usize));
        expected[w[0] as usize..w[1] as usize].fill(fill(t));
    }
    // Each thread writes its segments in a scrambled order.
    for r in &mut ranges {
        for i in (1..r.len()).rev() {
            r.swap(i, rng.below(i as u64 + 1) as usize);
        }
    }
    run_writers(&path, ranges);
    let got = fs::read(&path).unwrap();
    assert_eq!(got.len(), expected.len(), "size");
    if let Some(i) = got.iter().zip(&expected).position(|(a, b)| a != b) {
        panic!(
            "byte {i}: got {:#x}, expected {:#x} (block {})",
            got[i],
            expected[i],
            i / 4096
        );
    }
    assert_unchanged_by_a_remount(&vault, &path, &expected);
}

#[test]
fn concurrent_overlapping_writes_never_produce_garbage() {
    let (vault, path) = vault_with_empty_file("overlap");
    let mut rng = Rng::new(7);
    let total = 256 * 1024u64;
    let mut ranges = vec![Vec::new(); THREADS];
    // covered[i] = bit set of the threads that wrote byte i.
    let mut covered = vec![0u8; total as usize];
    for (t, r) in ranges.iter_mut().enumerate() {
        for _ in 0..150 {
            let offset = rng.below(total - 1);
            let len = (1 + rng.below(12_000)).min(total - offset) as usize;
            r.push((offset, len));
            for c in &mut covered[offset as usize..offset as usize + len] {
                *c |= 1 << t;
            }
        }
    }
    let end = ranges
        .iter()
        .flatten()
        .map(|(o, l)| o + *l as u64)
        .max()
        .unwrap();
    run_writers(&path, ranges);
    let got = fs::read(&path).unwrap();
    assert_eq!(
        got.len() as u64,
        end,
        "size is the end of the furthest write"
    );
    let mut bad = Vec::new();
    for (i, (&byte, &writers)) in got.iter().zip(&covered).enumerate() {
        let ok = if writers == 0 {
            byte == 0
        } else {
            (0..THREADS).any(|t| writers & (1 << t) != 0 && byte == fill(t))
        };
        if !ok {
            bad.push(format!(
                "byte {i} (block {}): {byte:#x}, written by threads {writers:08b}",
                i / 4096
            ));
            if bad.len() >= 10 {
                break;
            }
        }
    }
    assert!(
        bad.is_empty(),
        "bytes no writer wrote:\n  {}",
        bad.join("\n  ")
    );
    // The check above is byte by byte, finer than block by block. What reached the backing
    // file is what was read: a remount (no cache left) reads the same bytes.
    assert_unchanged_by_a_remount(&vault, &path, &got);
}

#[test]
fn concurrent_neighbouring_ranges_in_shared_blocks() {
    let (_vault, path) = vault_with_empty_file("interleaved");
    // Thread t owns every THREADS-th 100-byte range: all threads write into every block.
    let total: u64 = 100 * 8 * 160; // 128000 bytes, 32 blocks, 160 ranges per thread
    let mut rng = Rng::new(99);
    let mut ranges = vec![Vec::new(); THREADS];
    let mut expected = vec![0u8; total as usize];
    for k in 0..(total / 100) {
        let t = (k % THREADS as u64) as usize;
        ranges[t].push((k * 100, 100));
        expected[(k * 100) as usize..(k * 100 + 100) as usize].fill(fill(t));
    }
    for r in &mut ranges {
        for i in (1..r.len()).rev() {
            r.swap(i, rng.below(i as u64 + 1) as usize);
        }
        // Write every range three times: more chances to race.
        let once = r.clone();
        r.extend(once.iter().rev());
        r.extend(once);
    }
    run_writers(&path, ranges);
    let got = fs::read(&path).unwrap();
    assert_eq!(got.len(), expected.len(), "size");
    let bad: Vec<String> = got
        .chunks(100)
        .zip(expected.chunks(100))
        .enumerate()
        .filter(|(_, (g, e))| g != e)
        .take(10)
        .map(|(k, (g, e))| {
            format!(
                "range {k} (bytes {}..{}): expected all {:#x}, got {:?}",
                k * 100,
                k * 100 + 100,
                e[0],
                &g[..8]
            )
        })
        .collect();
    assert!(
        bad.is_empty(),
        "neighbouring writes corrupted each other:\n  {}",
        bad.join("\n  ")
    );
}
