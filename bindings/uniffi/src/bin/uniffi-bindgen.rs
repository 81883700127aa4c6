//! The workspace's `uniffi-bindgen`: `cargo run -p phantom-edge-uniffi --bin uniffi-bindgen --
//! generate --library target/debug/libphantom_edge_uniffi.so --language swift --out-dir DIR`.
//! Built from the same `uniffi` version as the library, so the generated code always matches.

fn main() {
    uniffi::uniffi_bindgen_main()
}
