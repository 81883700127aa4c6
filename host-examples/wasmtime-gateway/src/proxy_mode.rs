//! `--component proxy`: serve the wasi:http proxy component (`component/proxy`), the whole
//! gateway as one `.wasm`, with wasmtime-wasi-http, like `wasmtime serve` or Spin would. Each
//! request gets a fresh instance; the config text and the secrets reach the guest as
//! environment variables (`PHANTOM_EDGE_CONFIG` and the `*_env` names).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::sync::watch;
use tracing::{error, info};
use wasmtime::Store;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::config::GatewayConfig;
use crate::http::{Body, BodyError, error_response};
use crate::server;

struct ProxyHost {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
}

impl WasiView for ProxyHost {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for ProxyHost {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: Default::default(),
        }
    }
}

struct ProxyServer {
    pre: ProxyPre<ProxyHost>,
    env: Vec<(String, String)>,
    deadline: Duration,
}

impl ProxyServer {
    async fn handle(&self, req: hyper::Request<Incoming>) -> hyper::Response<Body> {
        match tokio::time::timeout(self.deadline, self.call(req)).await {
            Ok(Ok(resp)) => resp,
            Ok(Err(e)) => {
                error!(error = %format!("{e:#}"), "proxy component failed");
                error_response(503, "temporarily_unavailable", "gateway failure")
            }
            Err(_) => error_response(504, "gateway_timeout", "no answer in time"),
        }
    }

    async fn call(&self, req: hyper::Request<Incoming>) -> wasmtime::Result<hyper::Response<Body>> {
        let mut wasi = WasiCtx::builder();
        wasi.inherit_stderr();
        for (k, v) in &self.env {
            wasi.env(k, v);
        }
        let mut store = Store::new(
            self.pre.engine(),
            ProxyHost {
                wasi: wasi.build(),
                http: WasiHttpCtx::new(),
                table: ResourceTable::new(),
            },
        );
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let req = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, req)?;
        let out = store.data_mut().http().new_response_outparam(sender)?;
        let pre = self.pre.clone();
        let task = tokio::task::spawn(async move {
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(store, req, out)
                .await
        });
        // Until the guest has answered, dropping this future (the deadline passed, the client
        // went away) stops the guest: it must not go on to forward a request whose client was
        // already told 504. Its outgoing requests are dropped with its store.
        let mut guard = AbortUnlessAnswered(Some(task.abort_handle()));
        let answer = receiver.await;
        if matches!(answer, Ok(Ok(_))) {
            // Answered: the guest task goes on streaming the response body.
            guard.0 = None;
        }
        match answer {
            Ok(Ok(resp)) => {
                let (parts, body) = resp.into_parts();
                let body = body
                    .map_err(|e| BodyError::from(format!("{e:?}")))
                    .boxed_unsync();
                Ok(hyper::Response::from_parts(parts, body))
            }
            Ok(Err(e)) => Err(wasmtime::format_err!("guest answered an error: {e:?}")),
            Err(_) => match task.await {
                Ok(Ok(())) => Err(wasmtime::format_err!("guest never set a response")),
                Ok(Err(e)) => Err(e),
                Err(e) => Err(wasmtime::format_err!("guest task: {e}")),
            },
        }
    }
}

/// Aborts the guest task on drop while it holds a handle.
struct AbortUnlessAnswered(Option<tokio::task::AbortHandle>);

impl Drop for AbortUnlessAnswered {
    fn drop(&mut self) {
        if let Some(h) = self.0.take() {
            h.abort();
        }
    }
}

/// Serves the proxy component until `stop` flips.
pub async fn serve(
    wasm: &Path,
    cfg: GatewayConfig,
    config_text: String,
    stop: watch::Receiver<bool>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let engine = crate::engine::new_engine()?;
    let component = Component::from_file(&engine, wasm)
        .map_err(|e| format!("loading component {}: {e}", wasm.display()))?;
    let mut linker = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    let pre = ProxyPre::new(linker.instantiate_pre(&component)?)?;
    // The guest sees the config and the secrets it names, nothing else of the environment.
    let mut env = crate::config::referenced_env(&config_text, |n| std::env::var(n).ok());
    env.retain(|(k, _)| k != "PHANTOM_EDGE_CONFIG" && k != "PHANTOM_EDGE_AUDIT_LEVEL");
    env.push(("PHANTOM_EDGE_CONFIG".into(), config_text));
    // The guest's audit lines go to our stderr: it builds the routine (debug) ones only when
    // `phantom_edge::audit` logs at debug here, as in edge mode.
    let level = if tracing::enabled!(target: "phantom_edge::audit", tracing::Level::DEBUG) {
        "debug"
    } else {
        "info"
    };
    env.push(("PHANTOM_EDGE_AUDIT_LEVEL".into(), level.into()));
    let server = Arc::new(ProxyServer {
        pre,
        env,
        deadline: Duration::from_millis(cfg.request_timeout),
    });
    let listener = server::bind(cfg.listen).await?;
    let addr: SocketAddr = listener.local_addr()?;
    info!(listen = %addr, "phantom-gateway ready (proxy-component mode)");
    server::announce(addr, None);
    server::run(
        listener,
        stop,
        Duration::from_millis(cfg.shutdown_grace),
        cfg.max_connections,
        move |req, _remote| {
            let s = server.clone();
            async move { s.handle(req).await }
        },
    )
    .await;
    Ok(())
}
