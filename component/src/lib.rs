//! `phantom-edge-component`: the core behind the `phantom:edge` WIT interface (`../wit`), built
//! for `wasm32-wasip2` into a WebAssembly component:
//!
//! ```sh
//! cargo build -p phantom-edge-component --target wasm32-wasip2 --release
//! # target/wasm32-wasip2/release/phantom_edge_component.wasm
//! ```
//!
//! A thin translation layer with no policy: every decision is the core's. On native targets this
//! crate is empty (the guest exports only link as a component).

#[cfg(target_arch = "wasm32")]
mod guest;
