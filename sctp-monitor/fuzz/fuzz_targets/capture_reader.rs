#![no_main]
//! See `sctp_monitor_fuzz::targets::capture_reader`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = sctp_monitor_fuzz::targets::capture_reader(data);
});
