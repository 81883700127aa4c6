//! The phantom-edge component inside wasmtime: one instance, one `edge` resource, called
//! synchronously. Every decision (and the forwarding and operator-route policy) is the
//! component's; this module only makes the calls. Each `handle-*` returns the `step` it produced.

use std::path::Path;

use wasmtime::component::{Component, Linker, ResourceAny, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "phantom-edge",
});

pub use exports::phantom::edge::types::{
    AdminAnswer, AdminRequest, AdminRoute, AuditEvent, AuditLevel, ConfigFormat, Decision,
    EdgeError, Fetch, FetchKind, FetchResult, Forward, ForwardPolicy, Header, Hop, HttpResponse,
    Listener, LookupResult, Method, Origin, ProxyHop, Reject, Request, Scheme, SharedLookup, Step,
    UpstreamHeaders,
};

impl From<&str> for Method {
    /// The WIT method for a request's method (case-sensitive, as HTTP methods are).
    fn from(m: &str) -> Self {
        match m {
            "GET" => Self::Get,
            "HEAD" => Self::Head,
            "POST" => Self::Post,
            "PUT" => Self::Put,
            "DELETE" => Self::Delete,
            "CONNECT" => Self::Connect,
            "OPTIONS" => Self::Options,
            "TRACE" => Self::Trace,
            "PATCH" => Self::Patch,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// Store data: the WASI context the guest's std needs (no preopens, no network, no env).
pub struct Host {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host").finish_non_exhaustive()
    }
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// An engine with wasmtime's on-disk compilation cache (`~/.cache/wasmtime`), so a component
/// is compiled once per machine and version, not at every start.
pub fn new_engine() -> wasmtime::Result<Engine> {
    let mut config = wasmtime::Config::new();
    // Both components are synchronous (p2): without this, every call also sets up and tears
    // down component-model-async task state (measured ~0.4 us of a ~0.7 us crossing).
    config.concurrency_support(false);
    // `perf record` can name the component's functions (writes /tmp/perf-<pid>.map).
    if std::env::var_os("PHANTOM_GATEWAY_PERFMAP").is_some() {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    if std::env::var_os("PHANTOM_GATEWAY_NO_CACHE").is_none() {
        match wasmtime::Cache::new(wasmtime::CacheConfig::new()) {
            Ok(cache) => {
                config.cache(Some(cache));
            }
            Err(e) => tracing::warn!(error = %e, "wasmtime compilation cache unavailable"),
        }
    }
    Engine::new(&config)
}

/// A compiled component, ready to instantiate.
#[derive(Clone)]
pub struct Loaded {
    engine: Engine,
    component: Component,
    linker: std::sync::Arc<Linker<Host>>,
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded").finish_non_exhaustive()
    }
}

impl Loaded {
    /// Compiles the component at `path`.
    pub fn from_file(path: &Path) -> wasmtime::Result<Self> {
        let engine = new_engine()?;
        let component = Component::from_file(&engine, path)
            .map_err(|e| wasmtime::format_err!("loading component {}: {e}", path.display()))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        Ok(Self {
            engine,
            component,
            linker: std::sync::Arc::new(linker),
        })
    }
}

/// What went wrong building an edge: the component refused the config, or wasmtime failed.
#[derive(Debug)]
pub enum CreateError {
    /// The component's own error (e.g. `config` naming the bad field).
    Edge(EdgeError),
    /// Instantiation or a trap.
    Wasm(wasmtime::Error),
}

impl std::fmt::Display for CreateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Edge(e) => write!(f, "{}", describe(e)),
            Self::Wasm(e) => write!(f, "component: {e:#}"),
        }
    }
}

/// A human-readable, token-free description of a component error.
pub fn describe(e: &EdgeError) -> String {
    match e {
        EdgeError::Config(c) => format!("invalid config: {}: {}", c.field, c.message),
        EdgeError::Revocation(r) => format!("revocation refused ({}): {}", r.status, r.message),
        EdgeError::UnknownTicket(t) => format!("unknown ticket {t}"),
        EdgeError::WrongTicketKind(t) => format!("ticket {t} is not of this kind"),
        EdgeError::InvalidArgument(m) => m.clone(),
    }
}

/// One edge state machine inside one component instance. Calls are synchronous and short
/// (microseconds); hosts serialise them (a `Mutex`). A trap poisons the instance: every later
/// call returns an error and the host fails closed.
pub struct Core {
    store: Store<Host>,
    bindings: PhantomEdge,
    edge: ResourceAny,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core").finish_non_exhaustive()
    }
}

type W<T> = wasmtime::Result<T>;

impl Core {
    /// Instantiates the component and builds an edge from config text.
    pub fn new(
        loaded: &Loaded,
        config: &str,
        format: ConfigFormat,
        env: &[(String, String)],
        seed: [u8; 32],
        now_ms: u64,
    ) -> Result<Self, CreateError> {
        let host = Host {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
        };
        let mut store = Store::new(&loaded.engine, host);
        let bindings = PhantomEdge::instantiate(&mut store, &loaded.component, &loaded.linker)
            .map_err(CreateError::Wasm)?;
        let edge = bindings
            .phantom_edge_edge()
            .edge()
            .call_create(&mut store, config, format, env, &seed, now_ms)
            .map_err(CreateError::Wasm)?
            .map_err(CreateError::Edge)?;
        Ok(Self {
            store,
            bindings,
            edge,
        })
    }

    /// What `create` queued: the initial JWKS fetch, if any.
    pub fn initial_step(&mut self) -> W<Step> {
        let g = self.bindings.phantom_edge_edge().edge();
        g.call_initial_step(&mut self.store, self.edge)
    }

    /// A client request: its decision is in this step or a later one.
    pub fn request(&mut self, now_ms: u64, request: &Request) -> W<Step> {
        let g = self.bindings.phantom_edge_edge().edge();
        g.call_handle_request(&mut self.store, self.edge, now_ms, request)
    }

    /// What came back for a fetch (any status), or its transport failure.
    pub fn fetch(
        &mut self,
        now_ms: u64,
        ticket: u64,
        result: &FetchResult,
    ) -> W<Result<Step, EdgeError>> {
        let g = self.bindings.phantom_edge_edge().edge();
        g.call_handle_fetch(&mut self.store, self.edge, now_ms, ticket, result)
    }

    /// What the component leaves out of its steps from now on: `forward.token-json` unless
    /// `token_json`, and audit events below `audit_level`.
    pub fn output(&mut self, token_json: bool, audit_level: AuditLevel) -> W<()> {
        let g = self.bindings.phantom_edge_edge().edge();
        g.call_include_token_json(&mut self.store, self.edge, token_json)?;
        g.call_set_audit_level(&mut self.store, self.edge, audit_level)
    }

    /// The header every forward sets and the headers it strips (constant for the edge).
    pub fn forward_policy(&mut self) -> W<ForwardPolicy> {
        let g = self.bindings.phantom_edge_edge().edge();
        g.call_forward_policy(&mut self.store, self.edge)
    }

    /// The forwarding policy: which inbound headers go upstream, and which the edge sets.
    pub fn upstream_headers(
        &mut self,
        inbound: &[Header],
        header_value: &str,
        hop: &Hop,
    ) -> W<UpstreamHeaders> {
        let g = self.bindings.phantom_edge_edge().edge();
        g.call_upstream_headers(&mut self.store, self.edge, inbound, header_value, hop)
    }

    /// The hop-by-hop headers of a relayed message (indexes, ascending).
    pub fn hop_by_hop_headers(&mut self, headers: &[Header]) -> W<Vec<u32>> {
        let i = self.bindings.phantom_edge_edge();
        i.call_hop_by_hop_headers(&mut self.store, headers)
    }

    /// The shared store answered.
    pub fn shared_lookup(
        &mut self,
        now_ms: u64,
        ticket: u64,
        answer: &LookupResult,
    ) -> W<Result<Step, EdgeError>> {
        let g = self.bindings.phantom_edge_edge().edge();
        g.call_handle_shared_lookup(&mut self.store, self.edge, now_ms, ticket, answer)
    }

    /// A revocation (JSON selector) from this instance or the shared channel.
    pub fn revocation(
        &mut self,
        now_ms: u64,
        json: &str,
        origin: Origin,
    ) -> W<Result<Step, EdgeError>> {
        let g = self.bindings.phantom_edge_edge().edge();
        g.call_handle_revocation(&mut self.store, self.edge, now_ms, json, origin)
    }

    /// An operator route, answered whole, and the step it produced.
    pub fn admin(&mut self, now_ms: u64, request: &AdminRequest) -> W<(AdminAnswer, Step)> {
        let g = self.bindings.phantom_edge_edge().edge();
        g.call_handle_admin(&mut self.store, self.edge, now_ms, request)
    }

    /// Time passed.
    pub fn timeout(&mut self, now_ms: u64) -> W<Step> {
        let g = self.bindings.phantom_edge_edge().edge();
        g.call_handle_timeout(&mut self.store, self.edge, now_ms)
    }

    /// Prometheus text.
    pub fn prometheus(&mut self) -> W<String> {
        let g = self.bindings.phantom_edge_edge().edge();
        g.call_prometheus(&mut self.store, self.edge)
    }

    /// Keyed fingerprint of a token.
    pub fn fingerprint(&mut self, token: &str) -> W<String> {
        let g = self.bindings.phantom_edge_edge().edge();
        g.call_fingerprint(&mut self.store, self.edge, token)
    }

    /// The edge's public JWKS, if it mints.
    pub fn assertion_jwks(&mut self) -> W<Option<String>> {
        let g = self.bindings.phantom_edge_edge().edge();
        g.call_assertion_jwks(&mut self.store, self.edge)
    }
}

#[cfg(test)]
mod tests {
    use super::Method;

    #[test]
    fn methods_map_by_exact_name() {
        assert!(matches!(Method::from("GET"), Method::Get));
        assert!(matches!(Method::from("PATCH"), Method::Patch));
        assert!(matches!(Method::from("get"), Method::Other(m) if m == "get"));
        assert!(matches!(Method::from("PROPFIND"), Method::Other(m) if m == "PROPFIND"));
    }
}
