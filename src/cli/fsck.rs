//! `veilfs fsck`: check a whole vault with its key, and do the repairs that cannot lose data.
//! The walk and the repairs are [`veilfs::fsck`]; this is the command line around them.

use std::io::{self, IsTerminal};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use veilfs::backing::{Dir, RenameMode};
use veilfs::config::CONFIG_NAME;
use veilfs::fsck::{self, Finding, Options, Outcome, Report};

use super::args::{CipherdirArg, KeyfileArg, PasswordArgs};
use super::lock::{Purpose, VaultLock};
use super::paths::{open_vault, recased_config};
use super::{check_cipherdir, print_stdout, progress, text, CliError, GlobalArgs};

/// fsck found problems and did not repair them all.
pub const EXIT_PROBLEMS: u8 = 11;

#[derive(Debug, clap::Args)]
#[command(
    about = "Check a vault, and repair what can be repaired safely",
    long_about = "Check every name, directory IV, long name and its sidecar, file header and \
                  symlink target in CIPHERDIR, with the vault's key; no mount needed (better: not \
                  mounted, and with the sync tool paused, when repairing). Reports undecodable \
                  names, missing or corrupt directory IVs, orphaned or wrong sidecars, truncated \
                  file headers, sync tools' conflict copies and names a case-insensitive sync \
                  target re-cased.",
    after_help = "\
--repair does only what cannot lose data, and acts only on what it can authenticate: it writes
a lost or wrong directory IV with the IV the directory's path derives (when a name decrypts with
it, or the directory is empty), finishes a directory rename a crash interrupted (its record in
veilfs.move is sealed under the vault's key), renames conflict copies to the names the mount
shows them under and re-cased names to their own, restores a sidecar from a sync tool's copy of
it, removes redundant copies and sidecars orphaned for more than a day, and gives a file whose
every byte is zero (a power loss kept its size, not its data) a new header so that it reads as
zeros. Undecodable names, other bad headers and bad symlink targets are reported, never deleted.

A copy of veilfs.diriv (or any file named like one) is never adopted unless it holds the IV the
directory's path derives: anyone who can write to the backing directory can plant another
directory's IV and names, and re-encrypting them would move those names here. Names under such
an IV are reported with their backing paths and left alone.

--plan prints every repair --repair would make, one line each (backing path, action, reason),
and changes nothing.

--repair refuses to run while the vault is mounted on this machine (exit status 10); plain fsck
only reads, and may run then.

Exit status: 0 nothing wrong (or everything repaired); 11 problems remain; 10 (--repair) the
vault is mounted; 1-6 as for the other commands ('veilfs --help').

Examples:
  veilfs fsck ~/Sync/vault
  veilfs fsck --plan ~/Sync/vault
  veilfs fsck --repair ~/Sync/vault
  veilfs fsck --json ~/Sync/vault | jq '.findings[] | .problem'"
)]
pub struct Args {
    #[command(flatten)]
    pub password: PasswordArgs,

    #[command(flatten)]
    pub keyfile: KeyfileArg,

    /// Do the safe repairs (see below), and say what was done
    #[arg(long)]
    pub repair: bool,

    /// Print every repair --repair would make, one line each, and change nothing
    #[arg(long, conflicts_with_all = ["repair", "json"])]
    pub plan: bool,

    /// Print one JSON object (for scripts) instead of lines
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub cipherdir: CipherdirArg,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    cipherdir: String,
    clean: bool,
    repair: bool,
    repaired: usize,
    #[serde(flatten)]
    report: &'a Report,
}

pub fn run(args: Args, global: &GlobalArgs) -> Result<(), CliError> {
    check_cipherdir(&args.cipherdir.path)?;
    // Repairs while a daemon on this machine writes the same files could undo each other: the
    // mount's lock, taken before the password is asked for and held until fsck is done.
    let _lock = if args.repair {
        let canonical = std::fs::canonicalize(&args.cipherdir.path).map_err(|e| {
            CliError::io(
                format!("cannot resolve {}", args.cipherdir.path.display()),
                e,
            )
        })?;
        Some(VaultLock::acquire(&canonical, Purpose::Repair)?)
    } else {
        None
    };
    // A config a case-insensitive sync target re-cased: needs no key to put right.
    let mut early = Vec::new();
    if let Some(recased) = recased_config(&args.cipherdir.path) {
        if args.repair {
            Dir::open_root(&args.cipherdir.path)
                .and_then(|root| root.rename(&recased, &root, CONFIG_NAME, RenameMode::NoReplace))
                .map_err(|e| {
                    CliError::io(format!("cannot rename {recased} to {CONFIG_NAME}"), e)
                })?;
            early.push(format!(
                "repaired: {recased}: config file renamed back to {CONFIG_NAME}"
            ));
        } else if args.plan {
            early.push(format!(
                "would: {recased}: rename it to {CONFIG_NAME} (the config file was re-cased)"
            ));
        }
    }
    let vault = open_vault(
        &args.cipherdir.path,
        &args.password,
        args.keyfile.path.as_deref(),
    )?;
    let options = Options {
        repair: args.repair,
        ..Options::default()
    };

    let bar = (!args.json && !global.quiet && io::stderr().is_terminal())
        .then(|| progress::entries_bar("checking", fsck::count_entries(vault.root())));
    // The entries walked: the summary's total, the same count the bar shows.
    let entries = AtomicU64::new(0);
    let report = fsck::check(&vault, &options, &|n| {
        let done = entries.fetch_add(n, Ordering::Relaxed) + n;
        if let Some(bar) = &bar {
            bar.inc(n);
            // The directory changed since it was counted: the bar's total follows.
            if bar.length().is_some_and(|len| done > len) {
                bar.set_length(done);
            }
        }
    });
    let entries = entries.into_inner();
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }

    if args.json {
        let json = JsonReport {
            cipherdir: vault.root_path().display().to_string(),
            clean: report.is_clean(),
            repair: args.repair,
            repaired: report.repaired() + early.len(),
            report: &report,
        };
        let mut text = serde_json::to_string_pretty(&json).expect("the report always serializes");
        text.push('\n');
        print_stdout(&text)?;
    } else if args.plan {
        print_stdout(&plan(&report, &early))?;
    } else {
        let mut text = String::new();
        for line in &early {
            text.push_str(line);
            text.push('\n');
        }
        for finding in &report.findings {
            text.push_str(&describe(finding, args.repair));
            text.push('\n');
        }
        if !global.quiet || !report.is_clean() {
            text.push_str(&summary(&report, entries, args.repair));
        }
        print_stdout(&text)?;
    }
    if report.is_clean() {
        Ok(())
    } else {
        Err(CliError::new(
            EXIT_PROBLEMS,
            if args.repair {
                "problems remain that cannot be repaired safely (see above)"
            } else {
                "problems found (see above); 'veilfs fsck --repair' does the safe repairs"
            },
        ))
    }
}

/// `--plan`: one line per repair `--repair` would make (backing path, action, reason).
fn plan(report: &Report, early: &[String]) -> String {
    let mut text = String::new();
    let mut count = early.len();
    for line in early {
        text.push_str(line);
        text.push('\n');
    }
    for finding in &report.findings {
        if finding.outcome == Outcome::Repairable {
            let action = finding.repair.as_deref().unwrap_or("");
            text.push_str(&format!(
                "would: {}: {action} ({}: {})\n",
                finding.backing.display(),
                finding.problem.describe(),
                finding.detail
            ));
            count += 1;
        }
    }
    let left = report.problems() - report.repaired() - (count - early.len());
    text.push_str(&format!(
        "{count} repairs planned, {left} problems that no repair can fix; nothing was changed\n"
    ));
    text
}

/// One line per finding: what, where (plaintext and backing), and what was or can be done.
fn describe(finding: &Finding, repairing: bool) -> String {
    let place = match &finding.plain {
        Some(plain) => format!("{} ({})", plain.display(), finding.backing.display()),
        None => finding.backing.display().to_string(),
    };
    let action = finding.repair.as_deref().unwrap_or("");
    let tail = match finding.outcome {
        Outcome::Repaired => format!(" [repaired: {action}]"),
        Outcome::Repairable if !repairing => format!(" [--repair would {action}]"),
        Outcome::RepairFailed => format!(" [repair failed: {action}]"),
        _ => String::new(),
    };
    let status = match finding.outcome {
        Outcome::Repaired => "repaired",
        Outcome::Note => "note",
        _ => "problem",
    };
    format!(
        "{status}: {}: {place}: {}{tail}",
        finding.problem.describe(),
        finding.detail
    )
}

/// The bar's rate, whole entries a second, and then, once the rate has settled, the time left.
/// The last line: the entries walked (the total the bar counted), by kind (the kinds there
/// are), and the problems. Laid out for the terminal: it can be longer than a line.
fn summary(report: &Report, entries: u64, repairing: bool) -> String {
    let c = &report.checked;
    let remaining = report.problems() - report.repaired();
    let n = |count: u64, one: &str, many: &str| {
        let count_text = indicatif::HumanCount(count);
        format!("{count_text} {}", if count == 1 { one } else { many })
    };
    let kinds: Vec<String> = [
        (c.dirs, "directory", "directories"),
        (c.files, "file", "files"),
        (c.symlinks, "symlink", "symlinks"),
        (c.other, "other entry", "other entries"),
    ]
    .into_iter()
    .filter(|(count, ..)| *count > 0)
    .map(|(count, one, many)| n(count, one, many))
    .collect();
    let mut text = format!(
        "checked {} ({}) in {:.2} s",
        n(entries, "entry", "entries"),
        kinds.join(", "),
        report.seconds
    );
    if c.ignored > 0 {
        text.push_str(&format!(" ({} sync tool files ignored)", c.ignored));
    }
    let notes = report.findings.len() - report.problems();
    if notes > 0 {
        text.push_str(&format!(" ({})", n(notes as u64, "note", "notes")));
    }
    text.push_str(&match (report.problems(), repairing) {
        (0, _) => ": no problems".to_owned(),
        (found, true) => format!(
            ": {}, {} repaired, {remaining} remaining",
            n(found as u64, "problem", "problems"),
            report.repaired()
        ),
        (found, false) => format!(": {}", n(found as u64, "problem", "problems")),
    });
    text::flow(&text, text::help_width()) + "\n"
}
