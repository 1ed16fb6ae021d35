//! The `postlens` binary: parse the command line, hand over to the library.

fn main() -> std::process::ExitCode {
    let args = postlens::config::rewrite_lightmeter_args(std::env::args_os());
    let args: Vec<String> = args.into_iter().map(|a| a.to_string_lossy().into_owned()).collect();
    postlens::cli::run(&args)
}
