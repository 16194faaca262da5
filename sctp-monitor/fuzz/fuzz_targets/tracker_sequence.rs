#![no_main]
//! See `sctp_monitor_fuzz::targets::tracker_sequence`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = sctp_monitor_fuzz::targets::tracker_sequence(data);
});
