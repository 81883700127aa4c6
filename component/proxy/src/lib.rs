//! `phantom-edge-proxy`: a complete phantom-token gateway as one `wasi:http/proxy` component.
//! It exports `wasi:http/incoming-handler`, asks the authorization server through
//! `wasi:http/outgoing-handler`, and forwards the request to the upstream with the JWT.
//!
//! ```sh
//! cargo build -p phantom-edge-proxy --target wasm32-wasip2 --release
//! # target/wasm32-wasip2/release/phantom_edge_proxy.wasm
//! ```
//!
//! Configuration comes from the environment: `PHANTOM_EDGE_CONFIG` holds the TOML text of the
//! usual config file (its `[gateway] upstream` names the upstream), and the `*_env` secrets it
//! names are environment variables too. All policy is the core's; this crate only moves bytes.
//! On native targets it is empty.

#[cfg(target_arch = "wasm32")]
mod guest;
