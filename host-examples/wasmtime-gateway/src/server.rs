//! The accept loop shared by every listener: HTTP/1.1 with keep-alive, a header-read timeout,
//! and graceful shutdown (stop accepting, let in-flight requests finish within the grace time).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use tokio::sync::{Semaphore, watch};
use tracing::{debug, warn};

use crate::gateway::Body;

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
                    async move { Ok::<_, std::convert::Infallible>(h(req, remote).await) }
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
