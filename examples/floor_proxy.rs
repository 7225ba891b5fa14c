//! The floor for `scripts/bench-serve.sh`: the barest HTTP/1.1 pass-through we can write with
//! the stack llmux is built on (tokio, hyper). Each accepted connection gets one kept-alive
//! connection to the upstream; every request is forwarded as it came (head and body) and the
//! answer is passed back frame by frame as it arrives. No parsing, routing, logging or
//! metrics: what it adds over a direct call is what one proxy hop costs on this machine, so
//! llmux's own cost is what it adds on top of this.
//!
//! Usage: `cargo run --release --example floor_proxy -- LISTEN_ADDR UPSTREAM_ADDR` (both
//! `host:port`); it prints `listening on http://ADDR` once ready. TCP_NODELAY on every socket,
//! one thread (as `llmux serve` on one core).

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Opens the upstream connection a downstream connection's requests go over.
async fn connect(upstream: &str) -> Result<SendRequest<Incoming>, BoxError> {
    let tcp = TcpStream::connect(upstream).await?;
    tcp.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// Forwards one request; HTTP/1.1 requests on a connection come one at a time, so the lock is
/// never contended.
async fn forward(
    sender: Arc<Mutex<SendRequest<Incoming>>>,
    request: Request<Incoming>,
) -> Result<Response<Incoming>, BoxError> {
    let mut sender = sender.lock().await;
    sender.ready().await?;
    Ok(sender.send_request(request).await?)
}

fn main() -> Result<(), BoxError> {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(upstream)) = (args.next(), args.next()) else {
        return Err("usage: floor_proxy LISTEN_ADDR UPSTREAM_ADDR".into());
    };
    let upstream: Arc<str> = upstream.into();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(&listen).await?;
        println!("listening on http://{}", listener.local_addr()?);
        loop {
            let (tcp, _) = listener.accept().await?;
            tcp.set_nodelay(true)?;
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let Ok(sender) = connect(&upstream).await else {
                    return;
                };
                let sender = Arc::new(Mutex::new(sender));
                let service = service_fn(move |request| forward(sender.clone(), request));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    })
}
