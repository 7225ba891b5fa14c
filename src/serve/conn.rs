//! Accepting connections and running HTTP/1.1 on them, with the limits axum's own `serve`
//! cannot set: a deadline for a request's headers (so a client sending a header byte a
//! second, or holding an idle keep-alive connection open, is cut off) and a graceful stop.
//!
//! Sockets enter from the listener (TCP_NODELAY set on each, so a streamed token is never
//! held back by Nagle); each connection runs in a task of its own over the axum app. When the
//! stop signal fires the listener is dropped, every connection is told to finish its current
//! answer and close, and [`serve`] resolves once all of them did.
//!
//! HTTP/1.1 only: the API clients llmux serves speak it, and HTTP/2's prior-knowledge
//! preface would be read before any header deadline applies.

use std::future::Future;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

/// How long to pause accepting after an error that is not one connection's (out of fds):
/// connections already open get a chance to finish and free theirs.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Serves `app` on `listener` until `stop` resolves, then finishes gracefully.
pub(super) async fn serve<F>(
    listener: TcpListener,
    app: axum::Router,
    header_read_timeout: Duration,
    stop: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let mut builder = Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let graceful = GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) if per_connection(&e) => continue,
                Err(_) => {
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        // Without TCP_NODELAY the first streamed frame waits ~40 ms for a delayed ACK.
        let _ = tcp.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let conn = builder
            .serve_connection(TokioIo::new(tcp), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            // A client that vanishes or times out ends only its own connection.
            let _ = conn.await;
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Accept errors that concern only the connection being accepted.
fn per_connection(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset | Interrupted
    )
}
