//! `veilfs info`: what a vault's config says. Needs no password and shows no key material.

use std::path::PathBuf;

use data_encoding::BASE64URL_NOPAD;
use serde::Serialize;
use veilfs::config::{Config, KDF_ALGORITHM, KDF_VERSION};
use veilfs::crypto::names::NameEncoding;

use super::{check_cipherdir, print_stdout, CliError, GlobalArgs};

#[derive(Debug, clap::Args)]
#[command(
    about = "Show a vault's format and parameters (no password needed)",
    long_about = "Show what CIPHERDIR/veilfs.conf says: format version, the veilfs that created \
                  the vault, the password key derivation and its cost, and how names are \
                  encrypted. Needs no password, and shows no key material (the salt is not \
                  secret). Also checks the config: a damaged or edited file is reported.",
    after_help = "Examples:
  veilfs info ~/Sync/vault
  veilfs info --json ~/Sync/vault | jq .kdf"
)]
pub struct Args {
    /// Print a JSON object instead of text
    #[arg(long)]
    pub json: bool,

    /// The vault's backing directory
    #[arg(value_name = "CIPHERDIR")]
    pub cipherdir: PathBuf,
}

// The JSON output, fields in this order.
#[derive(Serialize)]
struct InfoJson<'a> {
    cipherdir: String,
    format: u32,
    creator: &'a str,
    kdf: KdfJson<'a>,
    features: FeaturesJson,
}

#[derive(Serialize)]
struct KdfJson<'a> {
    algorithm: &'a str,
    version: u32,
    memory_kib: u32,
    memory_mib: f64,
    iterations: u32,
    parallelism: u32,
    salt: &'a str,
}

#[derive(Serialize)]
struct FeaturesJson {
    name_encoding: &'static str,
    longname_max: usize,
    /// Whether unlocking needs a key file as well as the password.
    keyfile: bool,
}

fn encoding_name(encoding: NameEncoding) -> &'static str {
    match encoding {
        NameEncoding::Base64Url => "base64url",
        NameEncoding::Base32 => "base32",
    }
}

fn plural(n: u32, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

// `u32::is_multiple_of` needs Rust 1.87; the crate supports 1.85.
#[allow(clippy::manual_is_multiple_of)]
fn mib(kib: u32) -> String {
    if kib % 1024 == 0 {
        format!("{}", kib / 1024)
    } else {
        format!("{:.2}", f64::from(kib) / 1024.0)
    }
}

pub fn run(args: Args, _global: &GlobalArgs) -> Result<(), CliError> {
    let dir = &args.cipherdir;
    check_cipherdir(dir)?;
    let config = Config::load(dir)?;
    let kdf = config.kdf();
    let features = config.features();
    let salt = BASE64URL_NOPAD.encode(config.salt());

    let text = if args.json {
        let value = InfoJson {
            cipherdir: dir.display().to_string(),
            format: config.format(),
            creator: config.creator(),
            kdf: KdfJson {
                algorithm: KDF_ALGORITHM,
                version: KDF_VERSION,
                memory_kib: kdf.memory_kib,
                memory_mib: f64::from(kdf.memory_kib) / 1024.0,
                iterations: kdf.iterations,
                parallelism: kdf.parallelism,
                salt: &salt,
            },
            features: FeaturesJson {
                name_encoding: encoding_name(features.name_encoding),
                longname_max: features.longname_max,
                keyfile: config.requires_keyfile(),
            },
        };
        let mut text = serde_json::to_string_pretty(&value).expect("info JSON always serializes");
        text.push('\n');
        text
    } else {
        format!(
            "Vault:            {dir}
Format version:   {format}
Created by:       {creator}
Key derivation:   {KDF_ALGORITHM} (version {KDF_VERSION}), {memory} MiB, {iterations}, parallelism {parallelism}
Salt:             {salt}
Name encoding:    {encoding}
Long names:       encrypted names over {longname_max} bytes are stored in a separate file
Keyfile:          {keyfile}
",
            dir = dir.display(),
            format = config.format(),
            creator = config.creator(),
            memory = mib(kdf.memory_kib),
            iterations = plural(kdf.iterations, "iteration"),
            parallelism = kdf.parallelism,
            encoding = encoding_name(features.name_encoding),
            longname_max = features.longname_max,
            keyfile = if config.requires_keyfile() {
                "required (unlocking needs the key file as well as the password)"
            } else {
                "not used"
            },
        )
    };
    print_stdout(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_shown_in_mib() {
        assert_eq!(mib(262144), "256");
        assert_eq!(mib(8), "0.01");
        assert_eq!(mib(1536), "1.50");
    }
}
