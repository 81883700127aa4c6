//! `phantom-gateway`: the reference phantom-token gateway. A hyper/tokio reverse proxy that
//! hosts the phantom-edge component (`component/`) in wasmtime and performs the I/O it asks
//! for: introspection, JWKS fetches, timers, and proxying to the upstream. See docs/gateway.md.
//!
//! Two modes share one config file:
//! - edge (default): one long-lived instance of `phantom_edge_component.wasm` decides every
//!   request (cache, coalescing, revocation) and writes the forwarding headers
//!   (`gateway`); admin listener (`admin`) with `POST /revocations`, `GET /metrics`,
//!   `GET /jwks` (the component's) and `GET /healthz`; fetches through `as_client`.
//! - proxy: `phantom_edge_proxy.wasm`, a whole wasi:http gateway, hosted per request with
//!   wasmtime-wasi-http, as `wasmtime serve` or Spin would host it.

mod admin;
pub mod as_client;
pub mod config;
pub mod engine;
pub mod gateway;
pub mod http;
pub mod proxy_mode;
pub mod server;
