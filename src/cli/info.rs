//! `veilfs info`: what a vault's config says. Needs no password and shows no key material.

use data_encoding::BASE64URL_NOPAD;
use serde::Serialize;
use veilfs::config::kdf::kib_text;
use veilfs::config::{Config, ConfigV2, KdfParams, KDF_ALGORITHM, KDF_VERSION};

use super::args::CipherdirArg;
use super::{check_cipherdir, print_stdout, CliError, GlobalArgs};

#[derive(Debug, clap::Args)]
#[command(
    about = "Show a vault's format and parameters (no password needed)",
    long_about = "Show what CIPHERDIR/veilfs.conf says: format version, the veilfs that created \
                  the vault, how names are encrypted, and the unlock slots with their key \
                  derivation cost (format 2; format 1 has one password). Needs no password, and \
                  shows no key material (salts and IDs are not secret). Also checks the config's \
                  shape: a damaged file is reported. Whether someone without the key changed it \
                  is checked at every unlock.",
    after_help = "Examples:
  veilfs info ~/Sync/vault
  veilfs info --json ~/Sync/vault | jq .slots"
)]
pub struct Args {
    /// Print a JSON object instead of text
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub cipherdir: CipherdirArg,
}

// The JSON output, fields in this order. Format 1 and format 2 share the first members.
#[derive(Serialize)]
struct InfoJson<'a> {
    cipherdir: String,
    format: u32,
    creator: &'a str,
    #[serde(flatten)]
    format_specific: FormatJson<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum FormatJson<'a> {
    V1 {
        kdf: KdfJson,
        features: FeaturesJson,
        /// What format 1 lacks, for `veilfs upgrade`'s sake.
        lacks: &'static [&'static str],
    },
    V2 {
        vault_id: String,
        generation: u64,
        /// The format an unfinished key rotation started from (1: an upgrade), if one is.
        #[serde(skip_serializing_if = "Option::is_none")]
        rotating_from: Option<u32>,
        features: FeaturesJson,
        slots: Vec<SlotJson<'a>>,
    },
}

#[derive(Serialize)]
struct KdfJson {
    algorithm: &'static str,
    version: u32,
    memory_kib: u32,
    memory_mib: f64,
    iterations: u32,
    parallelism: u32,
    salt: String,
}

#[derive(Serialize)]
struct FeaturesJson {
    name_encoding: &'static str,
    longname_max: usize,
    /// Format 1: whether unlocking needs a key file as well as the password.
    #[serde(skip_serializing_if = "Option::is_none")]
    keyfile: Option<bool>,
}

#[derive(Serialize)]
struct SlotJson<'a> {
    id: String,
    kind: &'static str,
    label: &'a str,
    created: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    kdf: Option<KdfJson>,
}

/// What a format 1 vault lacks that format 2 has.
const V1_LACKS: &[&str] = &[
    "a MAC over its config (someone without the key can lower its key derivation cost or drop \
     its key-file flag)",
    "unlock slots (one password, one optional key file)",
    "a revocable recovery key (its recovery key is the master key)",
];

fn kdf_json(kdf: &KdfParams, salt: &[u8]) -> KdfJson {
    KdfJson {
        algorithm: KDF_ALGORITHM,
        version: KDF_VERSION,
        memory_kib: kdf.memory_kib,
        memory_mib: f64::from(kdf.memory_kib) / 1024.0,
        iterations: kdf.iterations,
        parallelism: kdf.parallelism,
        salt: BASE64URL_NOPAD.encode(salt),
    }
}

fn plural(n: u32, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// "Argon2id, 256 MiB, 3 iterations, parallelism 1".
fn kdf_text(kdf: &KdfParams) -> String {
    format!(
        "Argon2id, {}, {}, parallelism {}",
        kib_text(kdf.memory_kib),
        plural(kdf.iterations, "iteration"),
        kdf.parallelism
    )
}

pub fn run(args: Args, _global: &GlobalArgs) -> Result<(), CliError> {
    let dir = &args.cipherdir.path;
    check_cipherdir(dir)?;
    let config = Config::load(dir)?;
    let features = config.features();
    let text = if args.json {
        let format_specific = match &config {
            Config::V1(v1) => FormatJson::V1 {
                kdf: kdf_json(v1.kdf(), v1.salt()),
                features: FeaturesJson {
                    name_encoding: features.name_encoding.name(),
                    longname_max: features.longname_max,
                    keyfile: Some(v1.requires_keyfile()),
                },
                lacks: V1_LACKS,
            },
            Config::V2(v2) => FormatJson::V2 {
                vault_id: BASE64URL_NOPAD.encode(v2.vault_id()),
                generation: v2.generation(),
                rotating_from: v2.rotating_from(),
                features: FeaturesJson {
                    name_encoding: features.name_encoding.name(),
                    longname_max: features.longname_max,
                    keyfile: None,
                },
                slots: v2
                    .slots()
                    .iter()
                    .map(|slot| SlotJson {
                        id: slot.id(),
                        kind: slot.kind().name(),
                        label: slot.label(),
                        created: slot.created(),
                        kdf: slot.kdf().map(|kdf| kdf_json(&kdf.params, &kdf.salt)),
                    })
                    .collect(),
            },
        };
        let value = InfoJson {
            cipherdir: dir.display().to_string(),
            format: config.format(),
            creator: config.creator(),
            format_specific,
        };
        let mut text = serde_json::to_string_pretty(&value).expect("info JSON always serializes");
        text.push('\n');
        text
    } else {
        let mut text = format!(
            "Vault:          {dir}
Format version: {format}
Created by:     {creator}
Name encoding:  {encoding}
Long names:     encrypted names over {longname_max} bytes get a separate file
",
            dir = dir.display(),
            format = config.format(),
            creator = config.creator(),
            encoding = features.name_encoding.name(),
            longname_max = features.longname_max,
        );
        match &config {
            Config::V1(v1) => {
                text.push_str(&format!(
                    "Key derivation: {}\nKey file:       {}\n\nFormat 1 lacks (veilfs upgrade \
                     will convert it):\n",
                    kdf_text(v1.kdf()),
                    if v1.requires_keyfile() {
                        "required as well as the password"
                    } else {
                        "not used"
                    }
                ));
                for lack in V1_LACKS {
                    text.push_str(&format!("  - {lack}\n"));
                }
            }
            Config::V2(v2) => {
                text.push_str(&format!(
                    "Vault ID:       {}\nKey generation: {}\n\n",
                    BASE64URL_NOPAD.encode(v2.vault_id()),
                    v2.generation()
                ));
                if v2.rotating_from().is_some() {
                    text.push_str(
                        "Unfinished:     key rotation (run 'veilfs rekey' with the new password)\n\n",
                    );
                }
                text.push_str(&slot_list(v2));
            }
        }
        text
    };
    print_stdout(&text)
}

/// The slots of a format 2 vault, one paragraph each (used by `info` and `slot list`).
pub fn slot_list(config: &ConfigV2) -> String {
    let mut text = format!("Unlock slots ({}):\n", config.slots().len());
    for slot in config.slots() {
        text.push_str(&format!(
            "  {label:?}: {kind}, created {created}, ID {id}\n",
            label = slot.label(),
            kind = slot.kind().name(),
            created = slot.created(),
            id = slot.id(),
        ));
        if let Some(kdf) = slot.kdf() {
            text.push_str(&format!("      {}\n", kdf_text(&kdf.params)));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_read_as_text() {
        let kdf = KdfParams::default();
        assert_eq!(
            kdf_text(&kdf),
            "Argon2id, 256 MiB, 3 iterations, parallelism 1"
        );
        let cheap = KdfParams {
            memory_kib: 8,
            iterations: 1,
            parallelism: 1,
        };
        assert_eq!(
            kdf_text(&cheap),
            "Argon2id, 8 KiB, 1 iteration, parallelism 1"
        );
    }
}
