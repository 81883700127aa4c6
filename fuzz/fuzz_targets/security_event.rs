#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    phantom_edge_fuzz::security_event(data);
});
