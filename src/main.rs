//! The `postlens` binary: parse the command line, hand over to the library.

/// The static musl builds (the binaries that ship) allocate with dlmalloc.
/// musl's own malloc returns each emptied group of small blocks to the
/// kernel (a 1M-line import made 12,000 mmap/munmap pairs) and serialises
/// the ingesting and writing threads on one slow lock: that import took
/// 1.5-1.8 s there against 0.65 s with glibc. dlmalloc (pure Rust, the
/// allocator of Rust's own wasm std) keeps freed memory for reuse: 1.0-1.2 s,
/// peak RSS 15 -> 20 MiB. mimalloc was faster still but took 66-80 MiB.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOC: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

fn main() -> std::process::ExitCode {
    let args = postlens::config::rewrite_lightmeter_args(std::env::args_os());
    let args: Vec<String> = args.into_iter().map(|a| a.to_string_lossy().into_owned()).collect();
    postlens::cli::run(&args)
}
