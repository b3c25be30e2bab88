//! The checks of a crash state of `veilfs rekey` or `veilfs upgrade` (docs/reliability.md,
//! "Crash consistency"): the user runs the command again, as its help says (with the new
//! password once the new config is written, else with the old one), and it must finish; then
//! the vault holds exactly the source tree under the new password, fsck finds nothing, and
//! neither the old config nor any backing name or file header from before is left to open.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use super::recorder::{new_log, Recorder};
use super::{fsck, problems, Checker, Verdict};
use crate::common::tree::{backing_state, differences, try_snapshot, Tree};
use crate::common::{run, veilfs};

/// `veilfs upgrade` run on a vault already upgraded: it refuses, changing nothing.
const EXIT_USAGE: i32 = 2;
/// A config that does not open the vault (veilfs: "run 'veilfs rekey'" for a rotating one).
const EXIT_CONFIG: i32 = 5;

pub struct RotationChecker {
    /// "rekey" or "upgrade".
    pub verb: &'static str,
    pub old_passfile: PathBuf,
    pub new_passfile: PathBuf,
    /// veilfs.conf before the rotation.
    pub old_config: Vec<u8>,
    /// The backing names and file headers before the rotation.
    pub old_names: HashSet<PathBuf>,
    pub old_headers: HashSet<Vec<u8>>,
    /// The plaintext tree the vault held (and must hold again).
    pub expected: Tree,
    pub mountpoint: PathBuf,
    /// Where a state is shown to the command through a recorder, with the inode numbers of
    /// the original run.
    pub cipher: PathBuf,
}

fn brief(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr.lines().last().unwrap_or("").trim().to_owned();
    format!("exit {:?}: {last}", output.status.code())
}

impl RotationChecker {
    /// Runs the command again on the backing directory `dir` (shown with the inode numbers
    /// `inodes`), then checks the result.
    pub fn check(&self, dir: &Path, inodes: HashMap<u64, u64>) -> Verdict<()> {
        let mut verdict = Verdict::default();
        let failures = &mut verdict.failures;
        let config_path = dir.join("veilfs.conf");
        let config = match fs::read(&config_path) {
            Ok(config) => config,
            Err(e) => {
                failures.push(format!("veilfs.conf: {e}"));
                return verdict;
            }
        };
        let started = config != self.old_config;
        let rotating = String::from_utf8_lossy(&config).contains("\"rotation\"");
        let passfile = if started {
            &self.new_passfile
        } else {
            &self.old_passfile
        };
        let session = match Recorder::with_inodes(dir, new_log(), inodes)
            .and_then(|recorder| recorder.mount(&self.cipher))
        {
            Ok(session) => session,
            Err(e) => {
                failures.push(format!("mounting the recorder: {e}"));
                return verdict;
            }
        };
        let output = run(veilfs()
            .args([self.verb, "-q", "--passfile"])
            .arg(passfile)
            .arg("--new-passfile")
            .arg(&self.new_passfile)
            .arg(&self.cipher));
        if let Err(e) = session.umount_and_join() {
            failures.push(format!("unmounting the recorder: {e}"));
            return verdict;
        }
        // An upgrade that had finished is refused, and is already done.
        let done_before = self.verb == "upgrade" && started && !rotating;
        let expected_code = if done_before { EXIT_USAGE } else { 0 };
        if output.status.code() != Some(expected_code) {
            failures.push(format!(
                "veilfs {} run again ({} password, {}): {}",
                self.verb,
                if started { "new" } else { "old" },
                if rotating {
                    "rotating config"
                } else if started {
                    "finished config"
                } else {
                    "old config"
                },
                brief(&output)
            ));
            return verdict;
        }
        let (code, json, stderr) = fsck(&self.new_passfile, dir, false);
        if code != Some(0) {
            let found: Vec<String> = json
                .as_ref()
                .map(problems)
                .unwrap_or_default()
                .into_iter()
                .map(|(_, line)| line)
                .collect();
            failures.push(format!(
                "fsck after the rotation: exit {code:?}: {} {}",
                stderr.lines().last().unwrap_or("").trim(),
                found.join("; ")
            ));
        }
        let mounter = Checker {
            passfiles: vec![self.new_passfile.clone()],
            mountpoint: self.mountpoint.clone(),
        };
        match mounter.mount(&self.new_passfile, dir, true) {
            Err(e) => failures.push(format!("mount with the new password: {e}")),
            Ok(()) => {
                let tree = try_snapshot(&self.mountpoint);
                mounter.unmount();
                match tree {
                    Err(e) => failures.push(format!("reading the mount: {e}")),
                    Ok(tree) => {
                        let differing = differences(&tree, &self.expected);
                        if !differing.is_empty() {
                            failures.push(format!(
                                "{} paths differ from the source, first {}",
                                differing.len(),
                                differing[0]
                            ));
                        }
                    }
                }
            }
        }
        let (names, headers) = backing_state(dir);
        if let Some(name) = names.intersection(&self.old_names).next() {
            failures.push(format!(
                "a backing name from before is left: {}",
                name.display()
            ));
        }
        if !headers.is_disjoint(&self.old_headers) {
            failures.push("a file header from before is left".into());
        }
        // The old config put back opens nothing with the old password.
        if let Err(e) = fs::write(&config_path, &self.old_config) {
            failures.push(format!("putting the old config back: {e}"));
            return verdict;
        }
        match mounter.mount(&self.old_passfile, dir, true) {
            Ok(()) => {
                mounter.unmount();
                failures.push("the old config and password still mount the vault".into());
            }
            Err(e) if !e.contains(&format!("exit status: {EXIT_CONFIG}")) => {
                failures.push(format!("the old config: {e}"));
            }
            Err(_) => {}
        }
        verdict
    }
}
