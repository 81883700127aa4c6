//! Python bindings of `phantom-edge-core`: a thin translation layer (pyo3). Every decision is
//! made by the core; this crate only converts arguments and actions between Rust and Python.
// One small module (`text`) borrows `str` data through the C API; everything else is safe code.
#![deny(unsafe_code)]

mod text;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use phantom_edge_core as core;
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};
use serde_json::Value;

create_exception!(
    _native,
    PhantomEdgeError,
    PyException,
    "Base class of every phantom-edge error."
);
create_exception!(
    _native,
    ConfigError,
    PhantomEdgeError,
    "The configuration was refused: `field` names the key, `message` says why."
);
create_exception!(
    _native,
    RevocationError,
    PhantomEdgeError,
    "A revocation was refused: answer `status` (400/401) with `body` (JSON)."
);
create_exception!(
    _native,
    EdgeError,
    PhantomEdgeError,
    "API misuse: `kind` is `unknown_ticket` or `wrong_ticket_kind`, `ticket` the ticket."
);

fn config_error(py: Python<'_>, e: &core::ConfigError) -> PyErr {
    let err = ConfigError::new_err((e.field.clone(), e.message.clone()));
    let v = err.value(py);
    let _ = v.setattr("field", e.field.clone());
    let _ = v.setattr("message", e.message.clone());
    err
}

fn revocation_error(py: Python<'_>, e: &core::RevocationError) -> PyErr {
    let err = RevocationError::new_err((e.status(), e.body()));
    let v = err.value(py);
    let _ = v.setattr("status", e.status());
    let _ = v.setattr("body", e.body());
    err
}

fn edge_error(py: Python<'_>, e: &core::EdgeError) -> PyErr {
    let (kind, ticket) = match e {
        core::EdgeError::UnknownTicket(t) => ("unknown_ticket", *t),
        core::EdgeError::WrongTicketKind(t) => ("wrong_ticket_kind", *t),
        _ => ("edge_error", 0),
    };
    let err = EdgeError::new_err(e.to_string());
    let v = err.value(py);
    let _ = v.setattr("kind", kind);
    let _ = v.setattr("ticket", ticket);
    err
}

/// JSON value → Python object (dict / list / str / int / float / bool / None).
fn json_to_py(py: Python<'_>, v: &Value) -> PyResult<Py<PyAny>> {
    Ok(match v {
        Value::Null => py.None(),
        Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any().unbind(),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any().unbind()
            } else if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any().unbind()
            } else {
                n.as_f64()
                    .unwrap_or(f64::NAN)
                    .into_pyobject(py)?
                    .into_any()
                    .unbind()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any().unbind(),
        Value::Array(a) => {
            let items = a
                .iter()
                .map(|x| json_to_py(py, x))
                .collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)?.into_any().unbind()
        }
        Value::Object(o) => {
            let d = PyDict::new(py);
            for (k, x) in o {
                d.set_item(k, json_to_py(py, x)?)?;
            }
            d.into_any().unbind()
        }
    })
}

fn json_dumps(obj: &Bound<'_, PyAny>) -> PyResult<String> {
    let json = obj.py().import("json")?;
    json.call_method1("dumps", (obj,))?.extract()
}

fn now_or(now_ms: Option<u64>) -> u64 {
    now_ms.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    })
}

/// `bytes` or `str` → bytes.
fn bytes_of(obj: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        Ok(b.as_bytes().to_vec())
    } else {
        Ok(obj.extract::<String>()?.into_bytes())
    }
}

// ---------------------------------------------------------------------------------------------
// Config
// ---------------------------------------------------------------------------------------------

/// A checked configuration (TOML or JSON, the same for every host).
#[pyclass(module = "phantom_edge._native", frozen)]
#[derive(Debug)]
pub struct Config {
    inner: core::Config,
    middleware: Option<Value>,
}

impl Config {
    fn build(py: Python<'_>, raw: Result<core::RawConfig, core::ConfigError>) -> PyResult<Self> {
        let raw = raw.map_err(|e| config_error(py, &e))?;
        let middleware = raw.middleware.clone();
        let environ = py.import("os")?.getattr("environ")?;
        let env = |k: &str| -> Option<String> {
            environ
                .call_method1("get", (k,))
                .ok()
                .and_then(|v| v.extract::<Option<String>>().ok().flatten())
        };
        let inner = raw.resolve(&env).map_err(|e| config_error(py, &e))?;
        Ok(Self { inner, middleware })
    }
}

#[pymethods]
impl Config {
    /// Builds the configuration from keyword arguments, one per top-level section:
    /// `Config(authorization_server={...}, routes=[{...}], cache={...})`; the same as
    /// `Config.from_dict` of those sections.
    #[new]
    #[pyo3(signature = (**sections))]
    fn new(py: Python<'_>, sections: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        match sections {
            Some(d) => Self::from_dict(py, d),
            None => Self::from_dict(py, &PyDict::new(py)),
        }
    }

    /// Parses TOML text, or reads the file when given a path (`os.PathLike`, or a one-line `str`
    /// without `=` naming a file). `*_env` secrets are read from `os.environ`.
    #[staticmethod]
    fn from_toml(py: Python<'_>, source: &Bound<'_, PyAny>) -> PyResult<Self> {
        let text = read_source(py, source)?;
        Self::build(py, core::RawConfig::from_toml(&text))
    }

    /// Parses JSON text, or reads the file when given a path.
    #[staticmethod]
    fn from_json(py: Python<'_>, source: &Bound<'_, PyAny>) -> PyResult<Self> {
        let text = read_source(py, source)?;
        Self::build(py, core::RawConfig::from_json(&text))
    }

    /// Builds the configuration from a dict of the same shape as the TOML.
    #[staticmethod]
    fn from_dict(py: Python<'_>, data: &Bound<'_, PyDict>) -> PyResult<Self> {
        let text = json_dumps(data.as_any())?;
        Self::build(py, core::RawConfig::from_json(&text))
    }

    /// The `[middleware]` host section (not read by the core), or `None`.
    #[getter]
    fn middleware(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.middleware
            .as_ref()
            .map_or_else(|| Ok(py.None()), |v| json_to_py(py, v))
    }

    /// The configured issuer.
    #[getter]
    fn issuer(&self) -> String {
        self.inner.issuer().to_owned()
    }

    /// The JWKS URI, if any.
    #[getter]
    fn jwks_uri(&self) -> Option<String> {
        self.inner.jwks_uri().map(str::to_owned)
    }

    /// The introspection deadline in milliseconds.
    #[getter]
    fn timeout_ms(&self) -> u64 {
        self.inner.timeout_ms()
    }

    /// `request.allow_query_token`: tokens may come in the URL's query, so the request target
    /// as received must not be logged.
    #[getter]
    fn allow_query_token(&self) -> bool {
        self.inner.allow_query_token()
    }

    fn __repr__(&self) -> String {
        format!("Config(issuer={:?})", self.inner.issuer())
    }
}

fn read_source(py: Python<'_>, source: &Bound<'_, PyAny>) -> PyResult<String> {
    let os = py.import("os")?;
    let pathlike = os.getattr("PathLike")?;
    let is_path = if source.is_instance(&pathlike)? {
        true
    } else {
        let s: String = source.extract()?;
        !s.contains('\n') && !s.contains('=') && !s.trim().is_empty()
    };
    if is_path {
        let path: std::path::PathBuf = source.extract()?;
        std::fs::read_to_string(&path).map_err(|e| {
            let err = ConfigError::new_err((
                "(file)".to_owned(),
                format!("cannot read {}: {e}", path.display()),
            ));
            let v = err.value(py);
            let _ = v.setattr("field", "(file)");
            let _ = v.setattr("message", format!("cannot read {}: {e}", path.display()));
            err
        })
    } else {
        source.extract()
    }
}

// ---------------------------------------------------------------------------------------------
// Actions
// ---------------------------------------------------------------------------------------------

/// Let the request through: set `header_name: header_value`, strip `strip_headers`.
///
/// Cheap to make: the header strings are shared (immutable `str`, cached per core `Arc`); the
/// `strip_headers` list, the `fingerprint` and the `token` dict are built when read (the dict
/// once, from a per-token template, then the same dict on every read of this `Forward`).
#[pyclass(module = "phantom_edge._native", frozen)]
pub struct Forward {
    request_id: u64,
    header_name: Py<PyString>,
    header_value: Py<PyString>,
    strip_headers: Arc<[String]>,
    claims: Arc<Claims>,
    token: PyOnceLock<Py<PyDict>>,
    fingerprint: core::Fingerprint,
    rewritten_path: Option<String>,
}

impl std::fmt::Debug for Forward {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.__repr__())
    }
}

#[pymethods]
impl Forward {
    #[getter]
    const fn request_id(&self) -> u64 {
        self.request_id
    }

    #[getter]
    fn header_name(&self, py: Python<'_>) -> Py<PyString> {
        self.header_name.clone_ref(py)
    }

    #[getter]
    fn header_value(&self, py: Python<'_>) -> Py<PyString> {
        self.header_value.clone_ref(py)
    }

    #[getter]
    fn strip_headers(&self) -> &[String] {
        &self.strip_headers
    }

    /// The token's claims (a dict built on first access, then the same dict every time).
    #[getter]
    fn token(&self, py: Python<'_>) -> PyResult<Py<PyDict>> {
        self.token
            .get_or_try_init(py, || self.claims.fresh_dict(py).map(Bound::unbind))
            .map(|d| d.clone_ref(py))
    }

    #[getter]
    fn fingerprint(&self) -> String {
        self.fingerprint.hex()
    }

    /// When the token came in the query (`request.allow_query_token`): the path and query to
    /// pass on instead, without `access_token`. `None`: pass the path on unchanged.
    #[getter]
    fn rewritten_path(&self) -> Option<&str> {
        self.rewritten_path.as_deref()
    }

    fn __repr__(&self) -> String {
        format!(
            "Forward(request_id={}, header_name={:?}, fingerprint={:?})",
            self.request_id,
            Python::attach(|py| self.header_name.bind(py).to_string()),
            self.fingerprint.hex()
        )
    }
}

/// `TokenInfo` → dict, exactly as `serde_json::to_value` + `json_to_py` would build it (the same
/// members, skipped when `None`, in `serde_json::Map`'s sorted key order) without the detour
/// through a JSON tree.
#[allow(clippy::type_complexity)]
fn token_dict<'py>(
    py: Python<'py>,
    t: &core::TokenInfo,
) -> PyResult<(Bound<'py, PyDict>, Bound<'py, PyList>, Bound<'py, PyList>)> {
    let d = PyDict::new(py);
    let text = |k: &Bound<'py, PyString>, v: &Option<String>| -> PyResult<()> {
        v.as_ref().map_or(Ok(()), |v| d.set_item(k, v))
    };
    let int = |k: &Bound<'py, PyString>, v: Option<u64>| -> PyResult<()> {
        v.map_or(Ok(()), |v| d.set_item(k, v))
    };
    let aud = PyList::new(py, &t.aud)?;
    let scopes = PyList::new(py, &t.scopes)?;
    d.set_item(intern!(py, "aud"), &aud)?;
    text(intern!(py, "client_id"), &t.client_id)?;
    text(intern!(py, "cnf_jkt"), &t.cnf_jkt)?;
    text(intern!(py, "cnf_x5t_s256"), &t.cnf_x5t_s256)?;
    int(intern!(py, "exp"), t.exp)?;
    int(intern!(py, "iat"), t.iat)?;
    text(intern!(py, "iss"), &t.iss)?;
    text(intern!(py, "jti"), &t.jti)?;
    int(intern!(py, "nbf"), t.nbf)?;
    d.set_item(intern!(py, "scopes"), &scopes)?;
    text(intern!(py, "sid"), &t.sid)?;
    text(intern!(py, "sub"), &t.sub)?;
    text(intern!(py, "token_type"), &t.token_type)?;
    text(intern!(py, "username"), &t.username)?;
    Ok((d, aud, scopes))
}

/// The claims of one `TokenInfo` (one cache entry of the core), shared by every `Forward` built
/// from it: the Python objects of the claims (`str`, `int`) are made once, on the first read of a
/// `token`; each `Forward.token` is then a fresh dict with fresh `aud` / `scopes` lists holding
/// those immutable objects, so no two `Forward`s share a mutable object.
struct Claims {
    info: Arc<core::TokenInfo>,
    template: PyOnceLock<Template>,
}

/// The dict a `Forward.token` is copied from, and its two lists (kept here so a copy needs no
/// lookups in the template).
struct Template {
    dict: Py<PyDict>,
    aud: Py<PyList>,
    scopes: Py<PyList>,
}

impl std::fmt::Debug for Claims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claims")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl Claims {
    fn fresh_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let t = self.template.get_or_try_init(py, || {
            let (dict, aud, scopes) = token_dict(py, &self.info)?;
            Ok::<_, PyErr>(Template {
                dict: dict.unbind(),
                aud: aud.unbind(),
                scopes: scopes.unbind(),
            })
        })?;
        let d = t.dict.bind(py).copy()?;
        d.set_item(intern!(py, "aud"), t.aud.bind(py).get_slice(0, usize::MAX))?;
        d.set_item(
            intern!(py, "scopes"),
            t.scopes.bind(py).get_slice(0, usize::MAX),
        )?;
        Ok(d)
    }
}

/// Small direct-mapped caches of the Python objects of a `Forward`, keyed by the core's `Arc`s (a
/// cache hit hands out the same `Arc<TokenInfo>` and the same minted header value every time).
/// Only immutable objects (`str`) or templates that are copied are shared. Bounded:
/// `CACHE_SLOTS` entries each.
#[derive(Debug, Default)]
struct ActionCache {
    claims: Vec<Option<Arc<Claims>>>,
    texts: Vec<Option<(Arc<str>, Py<PyString>)>>,
}

const CACHE_SLOTS: usize = 64;

fn slot(ptr: *const u8) -> usize {
    (ptr as usize >> 4) % CACHE_SLOTS
}

impl ActionCache {
    fn claims(&mut self, info: Arc<core::TokenInfo>) -> Arc<Claims> {
        if self.claims.is_empty() {
            self.claims.resize(CACHE_SLOTS, None);
        }
        let i = slot(Arc::as_ptr(&info).cast());
        match &self.claims[i] {
            Some(c) if Arc::ptr_eq(&c.info, &info) => Arc::clone(c),
            _ => {
                let c = Arc::new(Claims {
                    info,
                    template: PyOnceLock::new(),
                });
                self.claims[i] = Some(Arc::clone(&c));
                c
            }
        }
    }

    fn text(&mut self, py: Python<'_>, text: Arc<str>) -> Py<PyString> {
        if self.texts.is_empty() {
            self.texts.resize_with(CACHE_SLOTS, || None);
        }
        let i = slot(Arc::as_ptr(&text).cast());
        match &self.texts[i] {
            Some((t, s)) if Arc::ptr_eq(t, &text) => s.clone_ref(py),
            _ => {
                let s = PyString::new(py, &text).unbind();
                self.texts[i] = Some((text, s.clone_ref(py)));
                s
            }
        }
    }
}

/// Answer the client with `status`, `WWW-Authenticate: www_authenticate` and `body`.
#[pyclass(module = "phantom_edge._native", frozen, get_all)]
#[derive(Debug)]
pub struct Reject {
    request_id: u64,
    status: u16,
    www_authenticate: Option<String>,
    retry_after: Option<u32>,
    body: String,
    reason: String,
    fingerprint: Option<String>,
}

#[pymethods]
impl Reject {
    fn __repr__(&self) -> String {
        format!(
            "Reject(request_id={}, status={}, reason={:?}, fingerprint={:?})",
            self.request_id, self.status, self.reason, self.fingerprint
        )
    }
}

/// POST `body` with `headers` to `url`; answer with `Edge.handle_introspection_response`.
#[pyclass(module = "phantom_edge._native", frozen, get_all)]
pub struct Introspect {
    ticket: u64,
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: String,
    timeout_ms: u64,
    fingerprint: String,
}

impl std::fmt::Debug for Introspect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.__repr__())
    }
}

#[pymethods]
impl Introspect {
    /// Hides the body (it holds the token) and the credentials.
    fn __repr__(&self) -> String {
        format!(
            "Introspect(ticket={}, url={:?}, body={{REDACTED}}, fingerprint={:?})",
            self.ticket, self.url, self.fingerprint
        )
    }
}

/// GET the authorization server's JWKS; answer with `Edge.handle_jwks`.
#[pyclass(module = "phantom_edge._native", frozen, get_all)]
#[derive(Debug)]
pub struct FetchJwks {
    url: String,
}

#[pymethods]
impl FetchJwks {
    fn __repr__(&self) -> String {
        format!("FetchJwks(url={:?})", self.url)
    }
}

/// Look `key` up in the shared store; answer with `Edge.handle_shared_lookup`.
#[pyclass(module = "phantom_edge._native", frozen, get_all)]
#[derive(Debug)]
pub struct SharedLookup {
    ticket: u64,
    key: String,
}

#[pymethods]
impl SharedLookup {
    fn __repr__(&self) -> String {
        format!("SharedLookup(ticket={}, key={:?})", self.ticket, self.key)
    }
}

/// Publish `message` (a JSON selector) to the other instances.
#[pyclass(module = "phantom_edge._native", frozen, get_all)]
#[derive(Debug)]
pub struct SharedPublish {
    message: String,
}

#[pymethods]
impl SharedPublish {
    fn __repr__(&self) -> String {
        format!("SharedPublish(message={:?})", self.message)
    }
}

/// A token-free audit event (fingerprints only). The fields and the JSON line are rendered when
/// read.
#[pyclass(module = "phantom_edge._native", frozen)]
#[derive(Debug)]
pub struct Audit {
    event: core::AuditEvent,
}

#[pymethods]
impl Audit {
    #[getter]
    fn kind(&self) -> &'static str {
        self.event.kind.as_str()
    }

    /// `"debug"`, `"info"` or `"warn"`: the level to log this event at (the core's
    /// classification of its kind).
    #[getter]
    fn level(&self) -> &'static str {
        self.event.level.as_str()
    }

    #[getter]
    const fn request_id(&self) -> Option<u64> {
        self.event.request_id
    }

    #[getter]
    const fn ticket(&self) -> Option<u64> {
        self.event.ticket
    }

    #[getter]
    fn fingerprint(&self) -> Option<String> {
        self.event.fingerprint.map(|f| f.hex())
    }

    #[getter]
    fn reason(&self) -> Option<&'static str> {
        self.event.reason.map(|r| r.as_str())
    }

    #[getter]
    fn detail(&self) -> Option<&str> {
        self.event.detail.as_deref()
    }

    /// One line of JSON, for logs.
    fn to_json(&self) -> String {
        self.event.to_json()
    }

    fn __repr__(&self) -> String {
        format!("Audit({})", self.event.to_json())
    }
}

fn action_to_py(
    py: Python<'_>,
    cache: &mut ActionCache,
    action: core::Action,
) -> PyResult<Py<PyAny>> {
    Ok(match action {
        core::Action::Forward(f) => Py::new(
            py,
            Forward {
                request_id: f.request_id,
                header_name: cache.text(py, f.header_name),
                header_value: cache.text(py, f.header_value),
                strip_headers: f.strip_headers,
                claims: cache.claims(f.token),
                token: PyOnceLock::new(),
                fingerprint: f.fingerprint,
                rewritten_path: f.rewritten_path,
            },
        )?
        .into_any(),
        core::Action::Reject(r) => Py::new(
            py,
            Reject {
                request_id: r.request_id,
                status: r.status,
                www_authenticate: r.www_authenticate,
                retry_after: r.retry_after,
                body: r.body,
                reason: r.reason.as_str().to_owned(),
                fingerprint: r.fingerprint.map(|f| f.hex()),
            },
        )?
        .into_any(),
        core::Action::Introspect(i) => Py::new(
            py,
            Introspect {
                ticket: i.ticket,
                method: i.method.to_owned(),
                url: i.url,
                headers: i.headers,
                body: i.body,
                timeout_ms: i.timeout_ms,
                fingerprint: i.fingerprint.hex(),
            },
        )?
        .into_any(),
        core::Action::FetchJwks(j) => Py::new(py, FetchJwks { url: j.url })?.into_any(),
        core::Action::SharedLookup(l) => Py::new(
            py,
            SharedLookup {
                ticket: l.ticket,
                key: l.key,
            },
        )?
        .into_any(),
        core::Action::SharedPublish(p) => {
            Py::new(py, SharedPublish { message: p.message })?.into_any()
        }
        core::Action::Audit(event) => Py::new(py, Audit { event })?.into_any(),
        other => {
            return Err(PhantomEdgeError::new_err(format!(
                "action not supported by this binding: {other:?}"
            )));
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Edge
// ---------------------------------------------------------------------------------------------

fn pairs(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter().map(|(n, x)| (n.as_str(), x.as_str())).collect()
}

/// The phantom-token edge state machine. Each call takes an exclusive borrow: drive it from one
/// event loop (a concurrent call from another thread raises `RuntimeError`).
#[pyclass(module = "phantom_edge._native")]
#[derive(Debug)]
pub struct Edge {
    inner: core::Edge,
    cache: ActionCache,
}

/// A request's header list as `str` objects (kept alive while their UTF-8 is borrowed).
type HeaderObjects<'py> = Vec<(Bound<'py, PyString>, Bound<'py, PyString>)>;

#[pymethods]
impl Edge {
    /// `seed`: 32 random bytes (default `os.urandom(32)`); `now_ms`: Unix ms (default: now).
    #[new]
    #[pyo3(signature = (config, seed = None, now_ms = None))]
    fn new(
        py: Python<'_>,
        config: &Config,
        seed: Option<&[u8]>,
        now_ms: Option<u64>,
    ) -> PyResult<Self> {
        let seed: [u8; 32] = match seed {
            Some(s) => s
                .try_into()
                .map_err(|_| PhantomEdgeError::new_err("seed must be exactly 32 bytes"))?,
            None => {
                let b = py.import("os")?.call_method1("urandom", (32,))?;
                let v: Vec<u8> = b.extract()?;
                v.try_into()
                    .map_err(|_| PhantomEdgeError::new_err("os.urandom(32) returned != 32 bytes"))?
            }
        };
        Ok(Self {
            inner: core::Edge::new(config.inner.clone(), seed, now_or(now_ms)),
            cache: ActionCache::default(),
        })
    }

    /// A client request arrived; drain the actions for its decision (now or later).
    #[pyo3(signature = (id, method, scheme, authority, path, headers, client_cert_thumbprint = None, now_ms = None))]
    #[allow(clippy::too_many_arguments)]
    fn handle_request(
        &mut self,
        id: u64,
        method: &Bound<'_, PyString>,
        scheme: &Bound<'_, PyString>,
        authority: &Bound<'_, PyString>,
        path: &Bound<'_, PyString>,
        headers: HeaderObjects<'_>,
        client_cert_thumbprint: Option<&Bound<'_, PyString>>,
        now_ms: Option<u64>,
    ) -> PyResult<()> {
        // Every `str` is read without a copy where the running Python allows it (`text`).
        let (method, scheme) = (text::text(method)?, text::text(scheme)?);
        let (authority, path) = (text::text(authority)?, text::text(path)?);
        let cert = text::opt_text(client_cert_thumbprint)?;
        let texts = headers
            .iter()
            .map(|(n, v)| Ok((text::text(n)?, text::text(v)?)))
            .collect::<PyResult<Vec<_>>>()?;
        let h: Vec<(&str, &str)> = texts.iter().map(|(n, v)| (&**n, &**v)).collect();
        let req = core::Request {
            id,
            method: &method,
            scheme: &scheme,
            authority: &authority,
            path: &path,
            headers: &h,
            client_cert_thumbprint: cert.as_deref(),
        };
        self.inner.handle_request(now_or(now_ms), &req);
        Ok(())
    }

    /// `handle_request`, then, when the core decided this request at once (a cache hit, or a
    /// rejection that needs no I/O) and nothing else is left to hand out, that `Forward` or
    /// `Reject`. Otherwise `None`, and every action (the decision too) waits for `poll_action`
    /// / `drain_actions` in order. One call instead of two on the hit path (with the routine
    /// audits muted, since a hit also queues a `cache_hit` audit event).
    #[pyo3(signature = (id, method, scheme, authority, path, headers, client_cert_thumbprint = None, now_ms = None))]
    #[allow(clippy::too_many_arguments)]
    fn decide(
        &mut self,
        py: Python<'_>,
        id: u64,
        method: &Bound<'_, PyString>,
        scheme: &Bound<'_, PyString>,
        authority: &Bound<'_, PyString>,
        path: &Bound<'_, PyString>,
        headers: HeaderObjects<'_>,
        client_cert_thumbprint: Option<&Bound<'_, PyString>>,
        now_ms: Option<u64>,
    ) -> PyResult<Option<Py<PyAny>>> {
        self.handle_request(
            id,
            method,
            scheme,
            authority,
            path,
            headers,
            client_cert_thumbprint,
            now_ms,
        )?;
        self.inner
            .take_decision(id)
            .map(|a| action_to_py(py, &mut self.cache, a))
            .transpose()
    }

    /// The introspection endpoint answered `ticket`. Raises `EdgeError` for a foreign ticket.
    #[pyo3(signature = (ticket, status, headers, body, now_ms = None))]
    fn handle_introspection_response(
        &mut self,
        py: Python<'_>,
        ticket: u64,
        status: u16,
        headers: Vec<(String, String)>,
        body: &Bound<'_, PyAny>,
        now_ms: Option<u64>,
    ) -> PyResult<()> {
        let body = bytes_of(body)?;
        let h = pairs(&headers);
        let resp = core::HttpResponse {
            status,
            headers: &h,
            body: &body,
        };
        self.inner
            .handle_introspection_response(now_or(now_ms), ticket, &resp)
            .map_err(|e| edge_error(py, &e))
    }

    /// Sending the introspection for `ticket` failed (connection refused, TLS, timeout).
    #[pyo3(signature = (ticket, detail, now_ms = None))]
    fn handle_introspection_failure(
        &mut self,
        py: Python<'_>,
        ticket: u64,
        detail: &str,
        now_ms: Option<u64>,
    ) -> PyResult<()> {
        self.inner
            .handle_introspection_failure(now_or(now_ms), ticket, detail)
            .map_err(|e| edge_error(py, &e))
    }

    /// The JWKS fetch answered 200 with `body`.
    #[pyo3(signature = (body, now_ms = None))]
    fn handle_jwks(&mut self, body: &Bound<'_, PyAny>, now_ms: Option<u64>) -> PyResult<()> {
        let body = bytes_of(body)?;
        self.inner.handle_jwks(now_or(now_ms), Ok(&body));
        Ok(())
    }

    /// The JWKS fetch failed.
    #[pyo3(signature = (detail, now_ms = None))]
    fn handle_jwks_failure(&mut self, detail: &str, now_ms: Option<u64>) {
        self.inner.handle_jwks(now_or(now_ms), Err(detail));
    }

    /// The shared store answered `ticket`: `value` found, `None` not found, or `error=True`.
    #[pyo3(signature = (ticket, value, error = false, now_ms = None))]
    fn handle_shared_lookup(
        &mut self,
        py: Python<'_>,
        ticket: u64,
        value: Option<&str>,
        error: bool,
        now_ms: Option<u64>,
    ) -> PyResult<()> {
        let r = if error {
            core::LookupResult::Error
        } else {
            value.map_or(core::LookupResult::NotFound, core::LookupResult::Found)
        };
        self.inner
            .handle_shared_lookup(now_or(now_ms), ticket, r)
            .map_err(|e| edge_error(py, &e))
    }

    /// A revocation as the JSON selector (`str`, `bytes` or `dict`); `origin` is `"local"`
    /// (published to other instances) or `"shared"`. Raises `RevocationError`.
    #[pyo3(signature = (selector, origin = "local", now_ms = None))]
    fn handle_revocation(
        &mut self,
        py: Python<'_>,
        selector: &Bound<'_, PyAny>,
        origin: &str,
        now_ms: Option<u64>,
    ) -> PyResult<()> {
        let body = if selector.is_instance_of::<PyDict>() {
            json_dumps(selector)?.into_bytes()
        } else {
            bytes_of(selector)?
        };
        let origin = match origin {
            "local" => core::Origin::Local,
            "shared" => core::Origin::Shared,
            o => {
                return Err(PhantomEdgeError::new_err(format!(
                    "origin must be \"local\" or \"shared\", not {o:?}"
                )));
            }
        };
        core::Revocation::from_json(&body)
            .and_then(|r| self.inner.handle_revocation(now_or(now_ms), r, origin))
            .map_err(|e| revocation_error(py, &e))
    }

    /// An RFC 8417 Security Event Token (compact JWT). Raises `RevocationError`.
    #[pyo3(signature = (set, now_ms = None))]
    fn handle_security_event(
        &mut self,
        py: Python<'_>,
        set: &str,
        now_ms: Option<u64>,
    ) -> PyResult<()> {
        self.inner
            .handle_security_event(now_or(now_ms), set)
            .map_err(|e| revocation_error(py, &e))
    }

    /// Whether `authorization` (an `Authorization` header value) carries the `[admin]` bearer
    /// token, for operator-only host routes such as metrics: `None` when no `[admin]` token is
    /// configured.
    #[pyo3(signature = (authorization))]
    fn admin_authorized(&self, authorization: Option<&str>) -> Option<bool> {
        self.inner.admin_authorized(authorization)
    }

    /// The revocation route: returns `None` (answer 204) or raises `RevocationError`
    /// (answer `e.status` with `e.body`).
    #[pyo3(signature = (content_type, authorization, body, now_ms = None))]
    fn handle_admin_revocation(
        &mut self,
        py: Python<'_>,
        content_type: Option<&str>,
        authorization: Option<&str>,
        body: &Bound<'_, PyAny>,
        now_ms: Option<u64>,
    ) -> PyResult<()> {
        let body = bytes_of(body)?;
        self.inner
            .handle_admin_revocation(now_or(now_ms), content_type, authorization, &body)
            .map_err(|e| revocation_error(py, &e))
    }

    /// Time passed: expire tickets and sweep bounded sets.
    #[pyo3(signature = (now_ms = None))]
    fn handle_timeout(&mut self, now_ms: Option<u64>) {
        self.inner.handle_timeout(now_or(now_ms));
    }

    /// The next action, or `None`.
    fn poll_action(&mut self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        self.inner
            .poll_action()
            .map(|a| action_to_py(py, &mut self.cache, a))
            .transpose()
    }

    /// Every queued action, in order.
    fn drain_actions<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let actions = self
            .inner
            .drain_actions()
            .into_iter()
            .map(|a| action_to_py(py, &mut self.cache, a))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, actions)
    }

    /// Audit kinds (`"cache_hit"`, `"cache_miss"`, ...) that the core no longer queues, e.g. the
    /// routine ones a logger above DEBUG drops; `[]` queues all again. Decisions and metrics are
    /// unchanged. Raises `ValueError` for an unknown kind (and then changes nothing).
    fn mute_audits(&mut self, kinds: Vec<PyBackedStr>) -> PyResult<()> {
        let kinds = core::AuditKinds::from_names(kinds.iter().map(|k| &**k))
            .map_err(|k| PyValueError::new_err(format!("unknown audit kind {k:?}")))?;
        self.inner.mute_audits(kinds);
        Ok(())
    }

    /// Audit events below `level` (`"debug"`, `"info"` or `"warn"`) are no longer queued:
    /// `"info"` leaves out the routine per-request kinds (hits, misses, introspections,
    /// forwards), which are then not even built; `"debug"` (the default) queues every level
    /// again. Composes with `mute_audits`. Raises `ValueError` for an unknown level (and then
    /// changes nothing).
    fn set_audit_level(&mut self, level: &str) -> PyResult<()> {
        let level = core::AuditLevel::from_name(level).ok_or_else(|| {
            PyValueError::new_err(format!(
                "unknown audit level {level:?} (debug, info or warn)"
            ))
        })?;
        self.inner.set_audit_level(level);
        Ok(())
    }

    /// When (Unix ms) `handle_timeout` must be called next, if ever.
    fn poll_timeout(&self) -> Option<u64> {
        self.inner.poll_timeout()
    }

    /// Prometheus text exposition of the counters and sizes.
    fn prometheus(&self) -> String {
        self.inner.prometheus()
    }

    /// The keyed fingerprint (32 hex digits) this edge computes for `token`.
    fn fingerprint(&self, token: &str) -> String {
        self.inner.fingerprint(token).hex()
    }

    /// The edge's public JWKS (JSON text) for backends, or `None` without `[assertions]`.
    fn assertion_jwks(&self) -> Option<String> {
        self.inner.assertion_jwks()
    }

    /// Current sizes of the bounded structures.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.stats();
        let d = PyDict::new(py);
        d.set_item("cache_entries", s.cache_entries)?;
        d.set_item("cache_bytes", s.cache_bytes)?;
        d.set_item("negative_entries", s.negative_entries)?;
        d.set_item("pending", s.pending)?;
        d.set_item("waiters", s.waiters)?;
        d.set_item("revocations", s.revocations)?;
        d.set_item("dpop_replay_entries", s.dpop_replay_entries)?;
        d.set_item("jwks_keys", s.jwks_keys)?;
        d.set_item("evictions", s.evictions)?;
        Ok(d)
    }

    /// Counters since start.
    fn metrics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let m = self.inner.metrics();
        let d = PyDict::new(py);
        d.set_item("requests", m.requests)?;
        d.set_item("forwarded", m.forwarded)?;
        d.set_item("rejected", m.rejected)?;
        d.set_item("cache_hits", m.cache_hits)?;
        d.set_item("negative_hits", m.negative_hits)?;
        d.set_item("cache_misses", m.cache_misses)?;
        d.set_item("coalesced", m.coalesced)?;
        d.set_item("introspections", m.introspections)?;
        d.set_item("shared_lookups", m.shared_lookups)?;
        d.set_item("introspection_failures", m.introspection_failures)?;
        d.set_item("revocations", m.revocations)?;
        d.set_item("jwks_fetches", m.jwks_fetches)?;
        d.set_item("revocation_overflows", m.revocation_overflows)?;
        Ok(d)
    }
}

/// `target` (path and query) without every query parameter some server reads as `access_token`
/// (the core's spelling rules), or `None` when it has none: what a host keeps or logs instead.
#[pyfunction]
fn redact_query_tokens(target: &str) -> Option<String> {
    core::redact_query_tokens(target)
}

/// The native module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("PhantomEdgeError", py.get_type::<PhantomEdgeError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("RevocationError", py.get_type::<RevocationError>())?;
    m.add("EdgeError", py.get_type::<EdgeError>())?;
    m.add_class::<Config>()?;
    m.add_class::<Edge>()?;
    m.add_class::<Forward>()?;
    m.add_class::<Reject>()?;
    m.add_class::<Introspect>()?;
    m.add_class::<FetchJwks>()?;
    m.add_class::<SharedLookup>()?;
    m.add_class::<SharedPublish>()?;
    m.add_class::<Audit>()?;
    m.add_function(wrap_pyfunction!(redact_query_tokens, m)?)?;
    Ok(())
}
