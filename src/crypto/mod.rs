//! Cryptography of format v1: key derivation, file contents (XTS), names and small values (SIV).

pub mod content;
pub mod keys;
pub mod names;
pub mod records;
pub mod recovery;
pub mod xts;

/// Fills `buf` from the operating system's random number generator.
pub fn random_bytes(buf: &mut [u8]) {
    // The OS RNG failing is unrecoverable for an encryption tool: there is no safe fallback.
    getrandom::fill(buf).expect("the operating system's random number generator failed");
}
