//! Lines through the parser, the year/zone resolver and the tracker: no
//! panic and bounded state for any input.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut t = postlens::track::Tracker::new();
    let mut r = postlens::clock::Resolver::new(jiff::tz::TimeZone::UTC, 2024);
    for line in data.split(|&c| c == b'\n') {
        if let Ok(ev) = postlens::parse::parse(line) {
            let ts = r.resolve(ev.time);
            t.push(&ev, ts);
        }
    }
    let _ = t.inflight_deliveries();
    let _ = t.drain();
    assert!(t.len() <= postlens::limits::MAX_INFLIGHT);
});
