//! The `postlens` binary: parse the command line, hand over to the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = postlens::config::rewrite_lightmeter_args(std::env::args_os());
    let cli = postlens::config::Cli::parse_from(args);
    postlens::cli::run(cli)
}
