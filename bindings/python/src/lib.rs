//! Python bindings of `phantom-edge-core`: a thin translation layer (pyo3). Every decision is
//! made by the core; this crate only converts arguments and steps between Rust and Python. The
//! operations are the WIT's (`wit/edge.wit`), in Python's case: every input returns the `Step`
//! it produced.
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
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};
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
        core::EdgeError::Revocation(r) => return revocation_error(py, r),
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
// Decisions
// ---------------------------------------------------------------------------------------------

/// Let the request through: set `header_name: header_value`, strip `strip_headers`.
///
/// Cheap to make and read: the header strings are shared (immutable `str`, cached per core `Arc`,
/// read as struct members); the `strip_headers` list, the `fingerprint` and the `token` dict are
/// built when read (the dict once, from a per-token template, then the same dict on every read of
/// this `Forward`).
#[pyclass(module = "phantom_edge._native", frozen)]
pub struct Forward {
    request_id: u64,
    // `Py` fields of a frozen class are read as struct members (no getter call).
    #[pyo3(get)]
    header_name: Py<PyString>,
    #[pyo3(get)]
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
    fn strip_headers(&self) -> &[String] {
        &self.strip_headers
    }

    /// The token's claims (a dict built on first access, then the same dict every time).
    #[getter]
    fn token(&self, py: Python<'_>) -> PyResult<Py<PyDict>> {
        if let Some(d) = self.token.get(py) {
            return Ok(d.clone_ref(py));
        }
        // Not `get_or_try_init`, which detaches from the interpreter (releases and takes the GIL
        // again) around every first initialisation: that is once per `Forward`, so per hit. A
        // read racing this one (the GIL can switch while the dict is built) may set it first;
        // both then hand out the one that was set.
        let d = self.claims.fresh_dict(py)?.unbind();
        let _ = self.token.set(py, d.clone_ref(py));
        Ok(self.token.get(py).map_or(d, |t| t.clone_ref(py)))
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
struct DecisionCache {
    claims: Vec<Option<Arc<Claims>>>,
    texts: Vec<Option<(Arc<str>, Py<PyString>)>>,
}

const CACHE_SLOTS: usize = 64;

fn slot(ptr: *const u8) -> usize {
    (ptr as usize >> 4) % CACHE_SLOTS
}

impl DecisionCache {
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
    reason: &'static str,
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

/// An HTTP request to send (an introspection or a JWKS fetch): send it as given (no redirects),
/// read at most `max_response_bytes` of the answer within `timeout_ms`, and feed whatever came
/// back to `Edge.handle_fetch`, quoting the ticket. Fields are rendered when read.
#[pyclass(module = "phantom_edge._native", frozen)]
pub struct Fetch {
    inner: core::Fetch,
}

impl std::fmt::Debug for Fetch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.__repr__())
    }
}

#[pymethods]
impl Fetch {
    #[getter]
    const fn ticket(&self) -> u64 {
        self.inner.ticket
    }

    /// `"introspection"` or `"jwks"` (for logs: the core reads the answer).
    #[getter]
    fn kind(&self) -> &'static str {
        self.inner.kind.as_str()
    }

    #[getter]
    const fn method(&self) -> &'static str {
        self.inner.method
    }

    #[getter]
    fn url(&self) -> &str {
        &self.inner.url
    }

    #[getter]
    fn headers(&self) -> Vec<(&str, &str)> {
        pairs(&self.inner.headers)
    }

    /// Form-encoded for an introspection (it holds the token: send it, never log it); `""` for
    /// a GET.
    #[getter]
    fn body(&self) -> &str {
        &self.inner.body
    }

    #[getter]
    const fn timeout_ms(&self) -> u64 {
        self.inner.timeout_ms
    }

    #[getter]
    const fn max_response_bytes(&self) -> usize {
        self.inner.max_response_bytes
    }

    /// The token's fingerprint (for logs); `None` for a JWKS fetch.
    #[getter]
    fn fingerprint(&self) -> Option<String> {
        self.inner.fingerprint.map(|f| f.hex())
    }

    /// Hides the body (it holds the token) and the header values (the client credentials).
    fn __repr__(&self) -> String {
        format!(
            "Fetch(ticket={}, kind={:?}, method={:?}, url={:?}, body={{REDACTED}}, fingerprint={:?})",
            self.inner.ticket,
            self.inner.kind.as_str(),
            self.inner.method,
            self.inner.url,
            self.inner.fingerprint.map(|f| f.hex())
        )
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

fn decision_to_py(
    py: Python<'_>,
    cache: &mut DecisionCache,
    decision: core::Decision,
) -> PyResult<Py<PyAny>> {
    Ok(match decision {
        core::Decision::Forward(f) => Py::new(
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
        core::Decision::Reject(r) => Py::new(
            py,
            Reject {
                request_id: r.request_id,
                status: r.status,
                www_authenticate: r.www_authenticate,
                retry_after: r.retry_after,
                body: r.body,
                reason: r.reason.as_str(),
                fingerprint: r.fingerprint.map(|f| f.hex()),
            },
        )?
        .into_any(),
    })
}

// ---------------------------------------------------------------------------------------------
// Step: everything one input produced
// ---------------------------------------------------------------------------------------------

/// Everything one input produced, by consumer. Carry out all of it: answer the `decisions`,
/// start the `fetches` and `lookups` (their answers go to `handle_fetch` and
/// `handle_shared_lookup`), send the `publishes` (JSON revocation selectors) to the other
/// instances, log the `audits`, and re-arm the one timer for `wake_at` (Unix ms; `None`: nothing
/// is pending). Within each tuple the order is the core's.
///
/// Cheap to make: the decisions are converted at once (a host always reads them), the rest when
/// read; an empty list is the (shared) empty tuple.
#[pyclass(module = "phantom_edge._native", frozen)]
pub struct Step {
    /// The requests decided now: `Forward` and `Reject` objects (read as a struct member).
    #[pyo3(get)]
    decisions: Py<PyTuple>,
    /// Everything else, when there is anything (a cache hit has only its decision).
    rest: Option<Box<Rest>>,
    wake_at: Option<u64>,
}

/// The non-decision lists of a step, converted when read.
struct Rest {
    fetches: Vec<core::Fetch>,
    lookups: Vec<core::SharedLookup>,
    publishes: Vec<core::SharedPublish>,
    audits: Vec<core::AuditEvent>,
}

impl std::fmt::Debug for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.__repr__())
    }
}

impl Step {
    fn new(py: Python<'_>, cache: &mut DecisionCache, step: core::Step) -> PyResult<Py<Self>> {
        let decisions = match step.decisions.len() {
            0 => PyTuple::empty(py),
            1 => {
                let d = step
                    .decisions
                    .into_iter()
                    .next()
                    .map(|d| decision_to_py(py, cache, d));
                PyTuple::new(py, d.transpose()?)?
            }
            _ => PyTuple::new(
                py,
                step.decisions
                    .into_iter()
                    .map(|d| decision_to_py(py, cache, d))
                    .collect::<PyResult<Vec<_>>>()?,
            )?,
        };
        let rest = Rest {
            fetches: step.fetches,
            lookups: step.lookups,
            publishes: step.publishes,
            audits: step.audits,
        };
        let empty = rest.fetches.is_empty()
            && rest.lookups.is_empty()
            && rest.publishes.is_empty()
            && rest.audits.is_empty();
        Py::new(
            py,
            Self {
                decisions: decisions.unbind(),
                rest: (!empty).then(|| Box::new(rest)),
                wake_at: step.wake_at,
            },
        )
    }

    /// A step holding just `decision` (the core's `take_decision`: it was the only action).
    fn one(
        py: Python<'_>,
        cache: &mut DecisionCache,
        decision: core::Decision,
        wake_at: Option<u64>,
    ) -> PyResult<Py<Self>> {
        let d = decision_to_py(py, cache, decision)?;
        Py::new(
            py,
            Self {
                decisions: PyTuple::new(py, [d])?.unbind(),
                rest: None,
                wake_at,
            },
        )
    }

    /// `items` (one list of `rest`) as a tuple of Python objects.
    fn tuple<'py, T>(
        py: Python<'py>,
        items: Option<&[T]>,
        convert: impl Fn(&T) -> PyResult<Py<PyAny>>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        match items {
            None | Some([]) => Ok(PyTuple::empty(py)),
            Some(items) => {
                PyTuple::new(py, items.iter().map(convert).collect::<PyResult<Vec<_>>>()?)
            }
        }
    }
}

#[pymethods]
impl Step {
    /// The HTTP requests to send (`Fetch`).
    #[getter]
    fn fetches<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        Self::tuple(py, self.rest.as_ref().map(|r| &*r.fetches), |f| {
            Py::new(py, Fetch { inner: f.clone() }).map(Py::into_any)
        })
    }

    /// The shared-store reads to perform (`SharedLookup`, split-token mode).
    #[getter]
    fn lookups<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        Self::tuple(py, self.rest.as_ref().map(|r| &*r.lookups), |l| {
            let (ticket, key) = (l.ticket, l.key.clone());
            Py::new(py, SharedLookup { ticket, key }).map(Py::into_any)
        })
    }

    /// The revocations to send to the other instances: JSON selectors (never a raw token), fed
    /// there to `handle_revocation(..., origin="shared")`.
    #[getter]
    fn publishes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        Self::tuple(py, self.rest.as_ref().map(|r| &*r.publishes), |p| {
            Ok(PyString::new(py, &p.message).into_any().unbind())
        })
    }

    /// Token-free events to log (`Audit`), each at its `level`.
    #[getter]
    fn audits<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        Self::tuple(py, self.rest.as_ref().map(|r| &*r.audits), |a| {
            Py::new(py, Audit { event: a.clone() }).map(Py::into_any)
        })
    }

    /// When (Unix ms) to call `handle_timeout` next; `None`: nothing is pending.
    #[getter]
    const fn wake_at(&self) -> Option<u64> {
        self.wake_at
    }

    /// The decision (`Forward` or `Reject`) for `request_id`, if this step holds it.
    fn decision<'py>(&self, py: Python<'py>, request_id: u64) -> Option<Bound<'py, PyAny>> {
        self.decisions.bind(py).iter().find(|d| {
            let id = match d.cast::<Forward>() {
                Ok(f) => f.get().request_id,
                Err(_) => d.cast::<Reject>().map_or(u64::MAX, |r| r.get().request_id),
            };
            id == request_id
        })
    }

    /// Whether the step holds anything to do (its `wake_at` may be set either way).
    fn __bool__(&self, py: Python<'_>) -> bool {
        self.rest.is_some() || !self.decisions.bind(py).is_empty()
    }

    fn __repr__(&self) -> String {
        Python::attach(|py| {
            let r = self.rest.as_deref();
            format!(
                "Step(decisions={}, fetches={}, lookups={}, publishes={}, audits={}, wake_at={:?})",
                self.decisions.bind(py).len(),
                r.map_or(0, |r| r.fetches.len()),
                r.map_or(0, |r| r.lookups.len()),
                r.map_or(0, |r| r.publishes.len()),
                r.map_or(0, |r| r.audits.len()),
                self.wake_at
            )
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Forwarding policy and operator routes
// ---------------------------------------------------------------------------------------------

/// The forwarding policy's answer for one request: drop the inbound headers at `drop` (indexes,
/// ascending), keep the others as they are (bytes and order), then append `set` (lowercase names).
#[pyclass(module = "phantom_edge._native", frozen, get_all)]
#[derive(Debug)]
pub struct UpstreamHeaders {
    drop: Vec<usize>,
    set: Vec<(String, String)>,
}

#[pymethods]
impl UpstreamHeaders {
    /// Hides the values of `set` (the forwarded JWT).
    fn __repr__(&self) -> String {
        let names: Vec<&str> = self.set.iter().map(|(n, _)| n.as_str()).collect();
        format!("UpstreamHeaders(drop={:?}, set_names={names:?})", self.drop)
    }
}

/// The header every `Forward` sets and the inbound headers it strips: constant for an edge.
#[pyclass(module = "phantom_edge._native", frozen, get_all)]
#[derive(Debug)]
pub struct ForwardPolicy {
    header_name: String,
    strip_headers: Vec<String>,
}

#[pymethods]
impl ForwardPolicy {
    fn __repr__(&self) -> String {
        format!(
            "ForwardPolicy(header_name={:?}, strip_headers={:?})",
            self.header_name, self.strip_headers
        )
    }
}

/// The answer to an operator route, to write out as it is.
#[pyclass(module = "phantom_edge._native", frozen, get_all)]
#[derive(Debug)]
pub struct AdminAnswer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

#[pymethods]
impl AdminAnswer {
    fn __repr__(&self) -> String {
        format!(
            "AdminAnswer(status={}, headers={:?}, body_len={})",
            self.status,
            self.headers,
            self.body.len()
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Edge
// ---------------------------------------------------------------------------------------------

fn pairs(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter().map(|(n, x)| (n.as_str(), x.as_str())).collect()
}

/// The phantom-token edge state machine. Each call takes an exclusive borrow: drive it from one
/// event loop (a concurrent call from another thread raises `RuntimeError`).
///
/// Every input (`handle_*`) returns the `Step` it produced; carry it out.
#[pyclass(module = "phantom_edge._native")]
#[derive(Debug)]
pub struct Edge {
    inner: core::Edge,
    cache: DecisionCache,
}

/// A request's header list as `str` objects (kept alive while their UTF-8 is borrowed).
type HeaderObjects<'py> = Vec<(Bound<'py, PyString>, Bound<'py, PyString>)>;

impl Edge {
    /// Everything queued, as a `Step`.
    fn step(&mut self, py: Python<'_>) -> PyResult<Py<Step>> {
        let step = self.inner.step();
        Step::new(py, &mut self.cache, step)
    }

    /// `step`, with a fast path for a request decided at once with nothing else queued (a
    /// cache hit with its routine audit muted): the core hands that decision out alone
    /// (`take_decision`), which is the whole step, without draining into lists.
    fn step_after_request(&mut self, py: Python<'_>, id: u64) -> PyResult<Py<Step>> {
        let decision = match self.inner.take_decision(id) {
            Some(core::Action::Forward(f)) => core::Decision::Forward(f),
            Some(core::Action::Reject(r)) => core::Decision::Reject(r),
            // `None`: anything else is queued (`take_decision` hands out only a decision).
            _ => return self.step(py),
        };
        Step::one(py, &mut self.cache, decision, self.inner.poll_timeout())
    }
}

#[pymethods]
impl Edge {
    /// `seed`: 32 random bytes (default `os.urandom(32)`); `now_ms`: Unix ms (default: now).
    /// What the constructor queued (the JWKS fetch) comes from `initial_step`.
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
            cache: DecisionCache::default(),
        })
    }

    /// What the constructor queued (the initial JWKS fetch, if any).
    fn initial_step(&mut self, py: Python<'_>) -> PyResult<Py<Step>> {
        self.step(py)
    }

    /// A client request arrived. Its decision is in the returned step at once (a cache hit, a
    /// refusal) or in the step of a later input (after the I/O this step asks for).
    #[pyo3(signature = (id, method, scheme, authority, path, headers, client_cert_thumbprint = None, now_ms = None))]
    #[allow(clippy::too_many_arguments)]
    fn handle_request(
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
    ) -> PyResult<Py<Step>> {
        // Every `str` is read without a copy where the running Python allows it (`text`).
        let (method, scheme) = (text::text(method)?, text::text(scheme)?);
        let (authority, path) = (text::text(authority)?, text::text(path)?);
        let cert = text::opt_text(client_cert_thumbprint)?;
        let mut backing = Vec::new();
        let h = text::pairs(&headers, &mut backing)?;
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
        self.step_after_request(py, id)
    }

    /// The answer to the `Fetch` with `ticket` (an introspection or a JWKS fetch): its `status`,
    /// `headers` and `body`, whatever the status (the core decides what it means); or
    /// `failure=` a token-free description of a transport failure (connection refused, TLS,
    /// timeout, an answer longer than `max_response_bytes`). Raises `EdgeError` for a ticket
    /// the core never issued (the queue then waits for the next call's step).
    #[pyo3(signature = (ticket, status = None, headers = None, body = None, *, failure = None, now_ms = None))]
    #[allow(clippy::too_many_arguments)]
    fn handle_fetch(
        &mut self,
        py: Python<'_>,
        ticket: u64,
        status: Option<u16>,
        headers: Option<Vec<(PyBackedStr, PyBackedStr)>>,
        body: Option<&Bound<'_, PyAny>>,
        failure: Option<&str>,
        now_ms: Option<u64>,
    ) -> PyResult<Py<Step>> {
        let now = now_or(now_ms);
        let done = match (status, failure) {
            (Some(status), None) => {
                let body = body.map(bytes_of).transpose()?.unwrap_or_default();
                let headers = headers.unwrap_or_default();
                let h: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (&**n, &**v)).collect();
                let resp = core::HttpResponse {
                    status,
                    headers: &h,
                    body: &body,
                };
                self.inner.handle_fetch(now, ticket, Ok(&resp))
            }
            (None, Some(detail)) if headers.is_none() && body.is_none() => {
                self.inner.handle_fetch(now, ticket, Err(detail))
            }
            _ => {
                return Err(PyValueError::new_err(
                    "handle_fetch takes an answer (status, headers, body) or failure=..., not both",
                ));
            }
        };
        done.map_err(|e| edge_error(py, &e))?;
        self.step(py)
    }

    /// The shared store answered `ticket`: `value` found, `None` not found, or `error=True`.
    /// Raises `EdgeError` for a foreign ticket.
    #[pyo3(signature = (ticket, value, error = false, now_ms = None))]
    fn handle_shared_lookup(
        &mut self,
        py: Python<'_>,
        ticket: u64,
        value: Option<&str>,
        error: bool,
        now_ms: Option<u64>,
    ) -> PyResult<Py<Step>> {
        let r = if error {
            core::LookupResult::Error
        } else {
            value.map_or(core::LookupResult::NotFound, core::LookupResult::Found)
        };
        self.inner
            .handle_shared_lookup(now_or(now_ms), ticket, r)
            .map_err(|e| edge_error(py, &e))?;
        self.step(py)
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
    ) -> PyResult<Py<Step>> {
        let body = if selector.is_instance_of::<PyDict>() {
            json_dumps(selector)?.into_bytes()
        } else {
            bytes_of(selector)?
        };
        let origin = match origin {
            "local" => core::Origin::Local,
            "shared" => core::Origin::Shared,
            o => {
                return Err(PyValueError::new_err(format!(
                    "origin must be \"local\" or \"shared\", not {o:?}"
                )));
            }
        };
        core::Revocation::from_json(&body)
            .and_then(|r| self.inner.handle_revocation(now_or(now_ms), r, origin))
            .map_err(|e| revocation_error(py, &e))?;
        self.step(py)
    }

    /// An RFC 8417 Security Event Token (compact JWT). Raises `RevocationError`.
    #[pyo3(signature = (set, now_ms = None))]
    fn handle_security_event(
        &mut self,
        py: Python<'_>,
        set: &str,
        now_ms: Option<u64>,
    ) -> PyResult<Py<Step>> {
        self.inner
            .handle_security_event(now_or(now_ms), set)
            .map_err(|e| revocation_error(py, &e))?;
        self.step(py)
    }

    /// An operator route, answered whole by the core: `route` is `"revocations"`, `"metrics"`
    /// or `"jwks"`; `listener` `"operator"` (a listener only operators reach: metrics open) or
    /// `"app"` (a middleware's routes: metrics need the `[admin]` bearer). `body`: at most
    /// `MAX_ADMIN_BODY` + 1 bytes as read (a longer one is answered 413). Returns the answer
    /// (write it out as it is) and the step it produced.
    #[pyo3(signature = (route, method, *, listener, authorization = None, content_type = None, body = None, now_ms = None))]
    #[allow(clippy::too_many_arguments)]
    fn handle_admin(
        &mut self,
        py: Python<'_>,
        route: &str,
        method: &str,
        listener: &str,
        authorization: Option<&str>,
        content_type: Option<&str>,
        body: Option<&Bound<'_, PyAny>>,
        now_ms: Option<u64>,
    ) -> PyResult<(AdminAnswer, Py<Step>)> {
        let route = core::AdminRoute::from_name(route).ok_or_else(|| {
            PyValueError::new_err(format!(
                "route must be \"revocations\", \"metrics\" or \"jwks\", not {route:?}"
            ))
        })?;
        let listener = match listener {
            "operator" => core::Listener::Operator,
            "app" => core::Listener::App,
            l => {
                return Err(PyValueError::new_err(format!(
                    "listener must be \"operator\" or \"app\", not {l:?}"
                )));
            }
        };
        let body = body.map(bytes_of).transpose()?.unwrap_or_default();
        let answer = self.inner.handle_admin(
            now_or(now_ms),
            &core::AdminRequest {
                route,
                listener,
                method,
                authorization,
                content_type,
                body: &body,
            },
        );
        let answer = AdminAnswer {
            status: answer.status,
            headers: answer.headers,
            body: answer.body,
        };
        Ok((answer, self.step(py)?))
    }

    /// Time passed: expire tickets and sweep bounded sets.
    #[pyo3(signature = (now_ms = None))]
    fn handle_timeout(&mut self, py: Python<'_>, now_ms: Option<u64>) -> PyResult<Py<Step>> {
        self.inner.handle_timeout(now_or(now_ms));
        self.step(py)
    }

    /// The forwarding policy: how the inbound headers of a forwarded request (`inbound`, in
    /// order) become the upstream's, `header_value` being the `Forward`'s. `hop="in_process"`
    /// for a middleware (only the strip list and every spelling of the forwarded header go);
    /// `hop="proxy"` with `proto` (and `peer`, `upstream_authority`) for a proxy, whose
    /// forwarding, host and hop-by-hop headers are replaced.
    #[pyo3(signature = (inbound, header_value, hop = "in_process", *, peer = None, proto = None, upstream_authority = None))]
    fn upstream_headers(
        &self,
        inbound: Vec<(PyBackedStr, PyBackedStr)>,
        header_value: &str,
        hop: &str,
        peer: Option<&str>,
        proto: Option<&str>,
        upstream_authority: Option<&str>,
    ) -> PyResult<UpstreamHeaders> {
        let hop = match (hop, proto) {
            ("in_process", None) if peer.is_none() && upstream_authority.is_none() => {
                core::Hop::InProcess
            }
            ("proxy", Some(proto)) => core::Hop::Proxy {
                peer,
                proto,
                upstream_authority,
            },
            _ => {
                return Err(PyValueError::new_err(
                    "hop must be \"in_process\" (no peer, proto, upstream_authority) or \"proxy\" \
                     with proto=",
                ));
            }
        };
        let h: Vec<(&str, &str)> = inbound.iter().map(|(n, v)| (&**n, &**v)).collect();
        let plan = self.inner.upstream_headers(&h, header_value, &hop);
        Ok(UpstreamHeaders {
            drop: plan.drop,
            set: plan.set,
        })
    }

    /// The header every `Forward` sets and the inbound headers it strips (also applied by
    /// `upstream_headers`).
    fn forward_policy(&self) -> ForwardPolicy {
        ForwardPolicy {
            header_name: self.inner.forward_header_name().to_owned(),
            strip_headers: self.inner.strip_headers().to_vec(),
        }
    }

    /// Audit kinds (`"cache_hit"`, `"cache_miss"`, ...) that the core no longer produces, e.g.
    /// the routine ones a logger above DEBUG drops; `[]` produces all again. Decisions and
    /// metrics are unchanged. Raises `ValueError` for an unknown kind (and then changes
    /// nothing).
    fn mute_audits(&mut self, kinds: Vec<PyBackedStr>) -> PyResult<()> {
        let kinds = core::AuditKinds::from_names(kinds.iter().map(|k| &**k))
            .map_err(|k| PyValueError::new_err(format!("unknown audit kind {k:?}")))?;
        self.inner.mute_audits(kinds);
        Ok(())
    }

    /// Audit events below `level` (`"debug"`, `"info"` or `"warn"`) are no longer produced:
    /// `"info"` leaves out the routine per-request kinds (hits, misses, introspections,
    /// forwards), which are then not even built; `"debug"` (the default) produces every level
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

/// Indexes (ascending) of the hop-by-hop headers of a message a proxy relays (the upstream's
/// answer on its way back, too): RFC 9110's list and the names its `Connection` headers list.
#[pyfunction]
fn hop_by_hop_headers(headers: Vec<(PyBackedStr, PyBackedStr)>) -> Vec<usize> {
    let h: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (&**n, &**v)).collect();
    core::hop_by_hop_headers(&h)
}

/// Splits a signed JWT for the split-token pattern (the issuer's side): a dict with
/// `client_token` (the signature, what the client gets), `store_key`, `store_value` (sealed
/// under a key derived from the signature: no claims in the store) and `expires_at` (the JWT's
/// `exp`, Unix s, or None). Raises ValueError for a JWT that is not a compact JWS.
#[pyfunction]
#[pyo3(signature = (jwt, key_prefix = core::DEFAULT_SPLIT_KEY_PREFIX))]
fn split_jwt<'py>(py: Python<'py>, jwt: &str, key_prefix: &str) -> PyResult<Bound<'py, PyDict>> {
    let s = core::split_jwt(jwt, key_prefix).map_err(|e| PyValueError::new_err(e.to_string()))?;
    let d = PyDict::new(py);
    d.set_item("client_token", s.client_token)?;
    d.set_item("store_key", s.store_key)?;
    d.set_item("store_value", s.store_value)?;
    d.set_item("expires_at", s.expires_at)?;
    Ok(d)
}

/// The native module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("PhantomEdgeError", py.get_type::<PhantomEdgeError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("RevocationError", py.get_type::<RevocationError>())?;
    m.add("EdgeError", py.get_type::<EdgeError>())?;
    m.add("MAX_ADMIN_BODY", core::MAX_ADMIN_BODY)?;
    m.add_class::<Config>()?;
    m.add_class::<Edge>()?;
    m.add_class::<Step>()?;
    m.add_class::<Forward>()?;
    m.add_class::<Reject>()?;
    m.add_class::<Fetch>()?;
    m.add_class::<SharedLookup>()?;
    m.add_class::<Audit>()?;
    m.add_class::<UpstreamHeaders>()?;
    m.add_class::<ForwardPolicy>()?;
    m.add_class::<AdminAnswer>()?;
    m.add_function(wrap_pyfunction!(redact_query_tokens, m)?)?;
    m.add_function(wrap_pyfunction!(hop_by_hop_headers, m)?)?;
    m.add_function(wrap_pyfunction!(split_jwt, m)?)?;
    Ok(())
}
