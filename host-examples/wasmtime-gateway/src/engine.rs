//! The phantom-edge component inside wasmtime: one instance, one `edge` resource, called
//! synchronously. Every decision is the component's; this module only converts types.

use std::path::Path;

use wasmtime::component::{Component, Linker, ResourceAny, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "phantom-edge",
});

pub use exports::phantom::edge::types::{
    Action, AuditEvent, AuditLevel, ConfigFormat, EdgeError, Forward, ForwardPolicy, Header,
    HttpResponse, Introspect, LookupResult, Method, Origin, Reject, Request, Scheme, SharedLookup,
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

    /// `handle-request` + `drain-actions` in one crossing.
    pub fn decide(&mut self, now_ms: u64, request: &Request) -> W<Vec<Action>> {
        let g = self.bindings.phantom_edge_edge().edge();
        g.call_decide(&mut self.store, self.edge, now_ms, request)
    }

    /// What the component leaves out of its actions from now on: `forward.token-json` unless
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

    /// Every queued action.
    pub fn drain(&mut self) -> W<Vec<Action>> {
        let g = self.bindings.phantom_edge_edge().edge();
        g.call_drain_actions(&mut self.store, self.edge)
    }

    /// The introspection endpoint answered.
    pub fn introspection_response(
        &mut self,
        now_ms: u64,
        ticket: u64,
        response: &HttpResponse,
    ) -> W<Result<(), EdgeError>> {
        let g = self.bindings.phantom_edge_edge().edge();
        g.call_handle_introspection_response(&mut self.store, self.edge, now_ms, ticket, response)
    }

    /// The introspection request failed in transport.
    pub fn introspection_failure(
        &mut self,
        now_ms: u64,
        ticket: u64,
        detail: &str,
    ) -> W<Result<(), EdgeError>> {
        let g = self.bindings.phantom_edge_edge().edge();
        g.call_handle_introspection_failure(&mut self.store, self.edge, now_ms, ticket, detail)
    }

    /// The JWKS fetch answered 200 (`Ok(body)`) or failed.
    pub fn jwks(&mut self, now_ms: u64, result: Result<&[u8], &str>) -> W<()> {
        let g = self.bindings.phantom_edge_edge().edge();
        match result {
            Ok(body) => g.call_handle_jwks_response(&mut self.store, self.edge, now_ms, body),
            Err(d) => g.call_handle_jwks_failure(&mut self.store, self.edge, now_ms, d),
        }
    }

    /// The shared store answered.
    pub fn shared_lookup(
        &mut self,
        now_ms: u64,
        ticket: u64,
        answer: &LookupResult,
    ) -> W<Result<(), EdgeError>> {
        let g = self.bindings.phantom_edge_edge().edge();
        g.call_handle_shared_lookup(&mut self.store, self.edge, now_ms, ticket, answer)
    }

    /// A revocation (JSON selector) from this instance or the shared channel.
    pub fn revocation(
        &mut self,
        now_ms: u64,
        json: &str,
        origin: Origin,
    ) -> W<Result<(), EdgeError>> {
        let g = self.bindings.phantom_edge_edge().edge();
        g.call_handle_revocation(&mut self.store, self.edge, now_ms, json, origin)
    }

    /// The admin revocation route.
    pub fn admin_revocation(
        &mut self,
        now_ms: u64,
        content_type: Option<&str>,
        authorization: Option<&str>,
        body: &[u8],
    ) -> W<Result<(), EdgeError>> {
        let g = self.bindings.phantom_edge_edge().edge();
        g.call_handle_admin_revocation(
            &mut self.store,
            self.edge,
            now_ms,
            content_type,
            authorization,
            body,
        )
    }

    /// Time passed.
    pub fn timeout(&mut self, now_ms: u64) -> W<()> {
        let g = self.bindings.phantom_edge_edge().edge();
        g.call_handle_timeout(&mut self.store, self.edge, now_ms)
    }

    /// When to call [`Self::timeout`] next.
    pub fn poll_timeout(&mut self) -> W<Option<u64>> {
        let g = self.bindings.phantom_edge_edge().edge();
        g.call_poll_timeout(&mut self.store, self.edge)
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
