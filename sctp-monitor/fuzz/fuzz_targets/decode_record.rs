#![no_main]
//! See `sctp_monitor_fuzz::targets::decode_record`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = sctp_monitor_fuzz::targets::decode_record(data);
});
