//! POSIX behaviour of a real mount, operation by operation, compared with the same operation on a
//! plain directory: results and errnos must be the same. Also: no plaintext reaches the backing
//! directory, a remount keeps everything, and changes made to the backing directory behind the
//! mount's back neither break listings nor crash the daemon.
//!
//! Each test collects every mismatch (with the line that found it) and fails at the end with the
//! whole list, so one run shows all the differences of an area. One test binary, a module per
//! area (one binary links once; `cargo test --test posix AREA::` runs one area).

#[path = "../common/mod.rs"]
mod common;

mod backing;
mod harness;
mod ops;

mod attrs;
mod confidentiality;
mod dirs;
mod files;
mod links;
mod names;
mod permissions;
mod remount;
mod underneath;
mod xattrs;
