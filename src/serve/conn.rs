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
//!
//! The chat routes (`POST /v1/chat/completions`, `/chat/completions`, `/v1/messages`) go
//! straight to their handlers after the key check ([`Dispatch`]), skipping axum's routing,
//! middleware and extractor layers on the hot path; every other request goes through the
//! axum app, which has the same handlers on the same paths.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{Method, Request};
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use super::{Shared, anthropic, auth, openai};

/// How long to pause accepting after an error that is not one connection's (out of fds):
/// connections already open get a chance to finish and free theirs.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Serves `app` on `listener` until `stop` resolves, then finishes gracefully.
pub(super) async fn serve<F>(
    listener: TcpListener,
    app: axum::Router,
    state: Shared,
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
    // A timer always due sooner than a header deadline. Each answered request arms the next
    // one's header deadline; when that is the earliest timer, tokio's timer wheel wakes its
    // own driver through the eventfd to reschedule (a syscall and an extra event per request).
    // With this one pending, it never is; it costs a wake-up every half deadline.
    let mut anchor = tokio::time::interval(header_read_timeout / 2);
    anchor.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let tcp = tokio::select! {
            _ = anchor.tick() => continue,
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
        let service = Dispatch {
            app: TowerToHyperService::new(app.clone()),
            state: state.clone(),
        };
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

/// The chat routes this dispatch serves itself.
#[derive(Clone, Copy)]
enum Chat {
    OpenAi,
    Anthropic,
}

impl Chat {
    fn of(method: &Method, path: &str) -> Option<Chat> {
        if method != Method::POST {
            return None;
        }
        match path {
            "/v1/chat/completions" | "/chat/completions" => Some(Chat::OpenAi),
            "/v1/messages" => Some(Chat::Anthropic),
            _ => None,
        }
    }
}

/// A connection's service: the chat routes directly, the rest through the axum app.
#[derive(Clone)]
struct Dispatch {
    app: TowerToHyperService<axum::Router>,
    state: Shared,
}

type Answer = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for Dispatch {
    type Response = Response;
    type Error = Infallible;
    type Future = Answer;

    fn call(&self, request: Request<Incoming>) -> Answer {
        let Some(chat) = Chat::of(request.method(), request.uri().path()) else {
            return Box::pin(self.app.call(request));
        };
        let request = request.map(Body::new);
        let state = self.state.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            if let Some(refused) = auth::refusal(&state, &parts.headers, parts.uri.path()) {
                return Ok(refused);
            }
            Ok(match chat {
                Chat::OpenAi => openai::chat_completions(State(state), parts.headers, body).await,
                Chat::Anthropic => anthropic::messages(State(state), parts.headers, body).await,
            })
        })
    }
}
