//! The accept loop shared by every listener: HTTP/1.1 with keep-alive, a header-read timeout,
//! and graceful shutdown (stop accepting, let in-flight requests finish within the grace time).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::HOST;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Version};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use tokio::sync::{Semaphore, watch};
use tracing::{debug, warn};

use crate::http::{Body, error_response};

/// Binds a listener, naming the address on failure.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, std::io::Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("binding {addr}: {e}")))
}

/// Prints the bound addresses on stdout, one line, for scripts and tests that use port 0.
pub fn announce(listen: SocketAddr, admin: Option<SocketAddr>) {
    match admin {
        Some(a) => println!("READY listen={listen} admin={a}"),
        None => println!("READY listen={listen}"),
    }
}

/// Requests no listener hands on (the same for both modes and the admin listener): an
/// HTTP/1.1 request without `Host` or any request with two (RFC 9112 §3.2: 400), `CONNECT`
/// (this is not a forward proxy), and targets that are not a path (`*`, authority-form): the
/// core authorizes a path, so nothing may be forwarded for a target it did not see.
fn refuse_target(req: &hyper::Request<Incoming>) -> Option<hyper::Response<Body>> {
    if req.method() == Method::CONNECT {
        return Some(error_response(
            405,
            "method_not_allowed",
            "CONNECT is not supported",
        ));
    }
    let hosts = req.headers().get_all(HOST).iter().count();
    if (req.version() == Version::HTTP_11 && hosts == 0) || hosts > 1 {
        return Some(error_response(
            400,
            "invalid_request",
            "exactly one Host header is required",
        ));
    }
    if !req.uri().path().starts_with('/') {
        return Some(error_response(
            400,
            "invalid_request",
            "request target must be a path",
        ));
    }
    None
}

/// Serves `listener` with `handler` until `stop` flips, then drains for at most `grace`. At
/// most `max_connections` connections are open at once; beyond that, accepting waits.
pub async fn run<F, Fut>(
    listener: TcpListener,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
    max_connections: usize,
    handler: F,
) where
    F: Fn(hyper::Request<Incoming>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = hyper::Response<Body>> + Send + 'static,
{
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(max_connections.max(1)));
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = stop.changed() => break,
        };
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, remote) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let h = handler.clone();
                let svc = service_fn(move |req| {
                    let h = h.clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(match refuse_target(&req) {
                            Some(refusal) => refusal,
                            None => h(req, remote).await,
                        })
                    }
                });
                let conn = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(10))
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), svc);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        debug!(error = %e, "connection ended with an error");
                    }
                    drop(permit);
                });
            }
            _ = stop.changed() => break,
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => warn!("shutdown grace time elapsed with requests in flight"),
    }
}
