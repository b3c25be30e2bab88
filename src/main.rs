//! The `veilfs` command. Everything but argument handling and user interaction is in the library.
//!
//! Called as `mount.veilfs` or `mount.fuse.veilfs` (a link installed for mount(8)), or as
//! `veilfs CIPHERDIR MOUNTPOINT -o OPTIONS` (by mount.fuse3), it is mount(8)'s helper
//! ([`cli::helper`]); otherwise it parses its command line with clap.
//!
//! No `unsafe` but the `fork` in `cli::mount::daemon` (allowed there alone, with its `SAFETY`
//! note).

#![deny(unsafe_code)]

mod cli;

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Before any key is read (the mount daemon does it again after it forks).
    cli::harden::keys_stay_in_memory();
    let argv: Vec<OsString> = std::env::args_os().collect();
    let result = if cli::helper::is_helper_call(&argv) {
        cli::helper::run(&argv)
    } else {
        // Usage errors exit with status 2 (cli::EXIT_USAGE), --help and --version with 0.
        let cli = cli::parse(argv);
        cli::init_logging(&cli.global);
        cli::run(cli)
    };
    match result {
        Ok(()) => ExitCode::from(cli::EXIT_OK),
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "veilfs: {err}");
            ExitCode::from(err.code())
        }
    }
}
