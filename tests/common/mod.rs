//! Shared helpers for integration tests: locating the shared corpus and the
//! built binary.
#![allow(dead_code, reason = "each test binary uses a subset")]

use std::path::PathBuf;

/// `../shared/corpus` beside the checkout. Missing corpus: a clear message,
/// and a failure under CI (`CI=true`), never a silent pass.
pub fn corpus() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    if dir.join("all-postfix.log").exists() {
        return Some(dir);
    }
    let msg = format!("shared corpus not found at {} (expected beside the checkout)", dir.display());
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
    eprintln!("SKIPPED: {msg}");
    None
}
