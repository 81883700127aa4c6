#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    phantom_edge_fuzz::path_routing(data);
});
