//! The `e7` binary: parses the command line and hands it to [`e7_cli::app::run`].
#![forbid(unsafe_code)]

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = e7_cli::cli::Cli::parse();
    ExitCode::from(e7_cli::app::run(cli))
}
