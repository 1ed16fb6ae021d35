//! The line parser must never panic, whatever the bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(ev) = postlens::parse::parse(data) {
        // Every borrowed field lies inside the input.
        let _ = (ev.host.len(), ev.instance.len(), ev.kind);
    }
});
