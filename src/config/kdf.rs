//! Argon2id, the one password key derivation of every format: its parameters, the bounds a
//! loaded config must respect before a single byte is allocated, and the floors below which
//! `init` and rewrapping refuse to go.

use std::io;

use data_encoding::BASE64URL_NOPAD;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::keyfile::KeyfileSecret;
use crate::error::{Error, Result};

/// The only key derivation function.
pub const KDF_ALGORITHM: &str = "argon2id";
/// Argon2 version 0x13.
pub const KDF_VERSION: u32 = 19;
pub const SALT_LEN: usize = 32;

/// The `kdf` member of a config as written, in both formats: the field order is the order on
/// disk (and, in format 1, that of the JSON its checksum covers). Each format checks what it
/// reads in its own order, against its own floor.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KdfJson {
    pub algorithm: String,
    pub version: u32,
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    /// Unpadded base64url.
    pub salt: String,
}

impl KdfJson {
    pub fn new(params: &KdfParams, salt: &[u8; SALT_LEN]) -> KdfJson {
        KdfJson {
            algorithm: KDF_ALGORITHM.to_owned(),
            version: KDF_VERSION,
            memory_kib: params.memory_kib,
            iterations: params.iterations,
            parallelism: params.parallelism,
            salt: BASE64URL_NOPAD.encode(salt),
        }
    }
}

/// Argon2id cost parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    pub iterations: u32,
    /// Lanes. The argon2 crate computes them one after the other, so more lanes cost the same
    /// time and give an attacker with many cores no extra work; 1 is the sensible value.
    pub parallelism: u32,
}

/// Lowest cost a vault may be created or rewrapped with, and (format v2) loaded with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfFloor {
    pub memory_kib: u32,
    pub iterations: u32,
}

impl KdfParams {
    /// Format v1's historical lower bound: v1 configs below the floor still open.
    pub const MEMORY_KIB_MIN: u32 = 8;
    /// 4 GiB: the ceiling on any machine (less where half the memory is less).
    pub const MEMORY_KIB_MAX: u32 = 4 * 1024 * 1024;
    pub const ITERATIONS_MIN: u32 = 1;
    pub const ITERATIONS_MAX: u32 = 64;
    pub const PARALLELISM_MIN: u32 = 1;
    pub const PARALLELISM_MAX: u32 = 16;
    /// See [`KdfParams::default`].
    pub const DEFAULT_MEMORY_KIB: u32 = 256 * 1024;
    pub const DEFAULT_ITERATIONS: u32 = 3;
    /// OWASP's minimum for Argon2id (19 MiB, 2 passes).
    pub const FLOOR: KdfFloor = KdfFloor {
        memory_kib: 19 * 1024,
        iterations: 2,
    };
    /// The floor of a test build (`cargo test`'s debug build, or the `insecure-test-kdf`
    /// feature): tests create hundreds of vaults and need milliseconds per key derivation.
    /// Nothing in a config can choose it; a release build never has it.
    pub const TEST_FLOOR: KdfFloor = KdfFloor {
        memory_kib: Self::MEMORY_KIB_MIN,
        iterations: Self::ITERATIONS_MIN,
    };

    /// The floor of this build: [`KdfParams::FLOOR`], or [`KdfParams::TEST_FLOOR`] in a test
    /// build.
    pub fn floor() -> KdfFloor {
        if is_test_build() {
            Self::TEST_FLOOR
        } else {
            Self::FLOOR
        }
    }

    /// Highest memory a config may ask for on this machine: half its physical memory, at most
    /// 4 GiB. Checked before the key derivation, so an edited config cannot make veilfs
    /// allocate what the machine does not have.
    pub fn memory_ceiling_kib() -> u32 {
        physical_memory_kib()
            .map(|kib| kib / 2)
            .unwrap_or(u64::from(Self::MEMORY_KIB_MAX))
            .min(u64::from(Self::MEMORY_KIB_MAX)) as u32
    }

    /// Whether a config may hold these parameters: within the fixed bounds, at most
    /// [`KdfParams::memory_ceiling_kib`], and at least `floor`. The reason if not.
    pub fn check_bounds(&self, floor: KdfFloor) -> std::result::Result<(), String> {
        let ceiling = Self::memory_ceiling_kib();
        if self.memory_kib > ceiling {
            return Err(format!(
                "Argon2 memory {} is more than this machine allows ({}: half its memory, at \
                 most 4 GiB)",
                kib_text(self.memory_kib),
                kib_text(ceiling)
            ));
        }
        if self.memory_kib < floor.memory_kib.max(Self::MEMORY_KIB_MIN) {
            return Err(format!(
                "Argon2 memory {} is below the floor of {}",
                kib_text(self.memory_kib),
                kib_text(floor.memory_kib)
            ));
        }
        let iterations_min = floor.iterations.max(Self::ITERATIONS_MIN);
        if !(iterations_min..=Self::ITERATIONS_MAX).contains(&self.iterations) {
            return Err(format!(
                "Argon2 iterations {} outside {iterations_min}..={}",
                self.iterations,
                Self::ITERATIONS_MAX
            ));
        }
        if !(Self::PARALLELISM_MIN..=Self::PARALLELISM_MAX).contains(&self.parallelism) {
            return Err(format!(
                "Argon2 parallelism {} outside {}..={}",
                self.parallelism,
                Self::PARALLELISM_MIN,
                Self::PARALLELISM_MAX
            ));
        }
        if self.memory_kib < 8 * self.parallelism {
            return Err(format!(
                "Argon2 memory {} KiB is less than 8 KiB per lane ({} lanes)",
                self.memory_kib, self.parallelism
            ));
        }
        Ok(())
    }

    /// [`KdfParams::check_bounds`] with this build's floor: what `init` and a new unlock slot
    /// must meet.
    pub fn check(&self) -> std::result::Result<(), String> {
        self.check_bounds(Self::floor())
    }

    /// Whether the cost is below the defaults (init warns).
    pub fn below_defaults(&self) -> bool {
        self.memory_kib < Self::DEFAULT_MEMORY_KIB || self.iterations < Self::DEFAULT_ITERATIONS
    }

    /// The parameters a rewrapped secret gets: these, raised to the defaults where they are
    /// below them (never lowered), within this machine's ceiling. In a test build, the floor
    /// stands in for the defaults, so that tests stay fast.
    pub fn for_rewrap(&self) -> KdfParams {
        let (memory, iterations) = if is_test_build() {
            (Self::TEST_FLOOR.memory_kib, Self::TEST_FLOOR.iterations)
        } else {
            (Self::DEFAULT_MEMORY_KIB, Self::DEFAULT_ITERATIONS)
        };
        KdfParams {
            memory_kib: self
                .memory_kib
                .max(memory.min(Self::memory_ceiling_kib()))
                .max(8 * self.parallelism),
            iterations: self.iterations.max(iterations),
            parallelism: self.parallelism,
        }
    }

    /// Argon2id of `password` with `salt` (and `keyfile` as its secret input, RFC 9106 "K"),
    /// `N` bytes.
    pub(crate) fn derive<const N: usize>(
        &self,
        salt: &[u8; SALT_LEN],
        password: &[u8],
        keyfile: Option<&KeyfileSecret>,
    ) -> Result<Zeroizing<[u8; N]>> {
        let params =
            argon2::Params::new(self.memory_kib, self.iterations, self.parallelism, Some(N))
                .map_err(|e| Error::ConfigCorrupt(format!("Argon2 parameters rejected: {e}")))?;
        let (algorithm, version) = (argon2::Algorithm::Argon2id, argon2::Version::V0x13);
        let argon2 = match keyfile {
            None => argon2::Argon2::new(algorithm, version, params),
            Some(secret) => {
                argon2::Argon2::new_with_secret(secret.as_bytes(), algorithm, version, params)
                    .map_err(|e| Error::ConfigCorrupt(format!("key derivation failed: {e}")))?
            }
        };
        let mut out = Zeroizing::new([0u8; N]);
        argon2
            .hash_password_into(password, salt, &mut out[..])
            .map_err(|e| match e {
                argon2::Error::OutOfMemory => Error::Io(io::Error::new(
                    io::ErrorKind::OutOfMemory,
                    format!(
                        "not enough memory for the key derivation ({} KiB)",
                        self.memory_kib
                    ),
                )),
                e => Error::ConfigCorrupt(format!("key derivation failed: {e}")),
            })?;
        Ok(out)
    }
}

impl Default for KdfParams {
    /// Argon2id with 256 MiB, 3 iterations, 1 lane. Measured on the 2-core AMD EPYC development
    /// machine (2026-11-25, release build, other builds running): a whole `veilfs passwd` that
    /// stops at the unlock (one key derivation, process start included) took 0.64-0.78 s, with
    /// 64 MiB and 3 iterations taking 137-154 ms in the same interleaved runs. 4 iterations took
    /// about 1.0 s and 512 MiB with 2 iterations 1.2-1.8 s, outside the 0.5-1 s target.
    fn default() -> Self {
        KdfParams {
            memory_kib: Self::DEFAULT_MEMORY_KIB,
            iterations: Self::DEFAULT_ITERATIONS,
            parallelism: 1,
        }
    }
}

/// A debug build (what `cargo test` runs) or one with the `insecure-test-kdf` feature.
pub fn is_test_build() -> bool {
    cfg!(any(debug_assertions, feature = "insecure-test-kdf"))
}

/// "256 MiB", or "8 KiB" when not a whole number of MiB.
pub fn kib_text(kib: u32) -> String {
    if kib.is_multiple_of(1024) {
        format!("{} MiB", kib / 1024)
    } else {
        format!("{kib} KiB")
    }
}

fn physical_memory_kib() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        use nix::unistd::{sysconf, SysconfVar};
        let pages = sysconf(SysconfVar::_PHYS_PAGES).ok()??;
        let page = sysconf(SysconfVar::PAGE_SIZE).ok()??;
        u64::try_from(pages)
            .ok()?
            .checked_mul(u64::try_from(page).ok()?)
            .map(|bytes| bytes / 1024)
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_name_both_numbers() {
        let huge = KdfParams {
            memory_kib: 64 * 1024 * 1024,
            ..KdfParams::default()
        };
        let err = huge.check_bounds(KdfParams::FLOOR).unwrap_err();
        assert!(
            err.contains("65536 MiB") && err.contains("half its memory"),
            "{err}"
        );
        let weak = KdfParams {
            memory_kib: 8,
            iterations: 1,
            parallelism: 1,
        };
        let err = weak.check_bounds(KdfParams::FLOOR).unwrap_err();
        assert!(err.contains("8 KiB") && err.contains("19 MiB"), "{err}");
        assert!(weak.check_bounds(KdfParams::TEST_FLOOR).is_ok());
        let one_pass = KdfParams {
            iterations: 1,
            ..KdfParams::default()
        };
        assert!(one_pass.check_bounds(KdfParams::FLOOR).is_err());
        assert!(KdfParams::default().check_bounds(KdfParams::FLOOR).is_ok());
    }

    #[test]
    fn the_ceiling_is_at_most_4_gib_and_at_least_the_default() {
        let ceiling = KdfParams::memory_ceiling_kib();
        assert!(ceiling <= KdfParams::MEMORY_KIB_MAX);
        assert!(ceiling >= KdfParams::DEFAULT_MEMORY_KIB, "{ceiling}");
    }

    #[test]
    fn rewrapping_never_lowers_the_cost() {
        let strong = KdfParams {
            memory_kib: 1024 * 1024,
            iterations: 5,
            parallelism: 2,
        };
        assert_eq!(strong.for_rewrap(), strong);
        let weak = KdfParams {
            memory_kib: 8,
            iterations: 1,
            parallelism: 1,
        };
        let raised = weak.for_rewrap();
        assert!(raised.memory_kib >= weak.memory_kib && raised.iterations >= 1);
        assert!(raised.check().is_ok());
    }
}
