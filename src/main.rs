//! The `veilfs` command. Everything but argument handling and user interaction is in the library.

mod cli;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Usage errors exit with status 2 (cli::EXIT_USAGE), --help and --version with 0.
    let cli = cli::Cli::parse();
    cli::init_logging(&cli.global);
    match cli::run(cli) {
        Ok(()) => ExitCode::from(cli::EXIT_OK),
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "veilfs: {err}");
            ExitCode::from(err.code())
        }
    }
}
