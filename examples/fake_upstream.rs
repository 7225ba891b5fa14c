//! A fast fake OpenAI upstream for `scripts/bench-serve.sh`: every POST is a chat completion
//! answered at once, as one JSON object, or, when the request says `"stream": true`, as SSE:
//! a role chunk, [`STREAM_CHUNKS`] content chunks, a finish chunk, a usage chunk and
//! `[DONE]`, each written as its own body frame. TCP_NODELAY on every socket, no delays.
//!
//! Usage: `cargo run --release --example fake_upstream -- [ADDR]` (default 127.0.0.1:0); it
//! prints `listening on http://ADDR` once ready.

use std::convert::Infallible;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::serve::ListenerExt;

/// Content chunks in a streamed answer.
const STREAM_CHUNKS: usize = 20;

const PLAIN: &str = r#"{"id":"chatcmpl-fake","object":"chat.completion","created":0,"model":"fake","choices":[{"index":0,"message":{"role":"assistant","content":"The quick brown fox jumps over the lazy dog, twice, and then rests in the shade."},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":20,"total_tokens":32}}"#;

fn chunk(delta: &str, finish: &str) -> Bytes {
    Bytes::from(format!(
        "data: {{\"id\":\"chatcmpl-fake\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"fake\",\"choices\":[{{\"index\":0,\"delta\":{{{delta}}},\"finish_reason\":{finish}}}]}}\n\n"
    ))
}

fn stream_frames() -> Vec<Bytes> {
    let mut frames = vec![chunk(r#""role":"assistant","content":"""#, "null")];
    for i in 0..STREAM_CHUNKS {
        frames.push(chunk(&format!(r#""content":"word{i} ""#), "null"));
    }
    frames.push(chunk("", "\"stop\""));
    frames.push(Bytes::from_static(
        b"data: {\"id\":\"chatcmpl-fake\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"fake\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":20,\"total_tokens\":32}}\n\n",
    ));
    frames.push(Bytes::from_static(b"data: [DONE]\n\n"));
    frames
}

async fn answer(body: Bytes) -> Response {
    let stream = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("stream")?.as_bool())
        .unwrap_or(false);
    if !stream {
        let mut r = Response::new(Body::from(PLAIN));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        return r;
    }
    let frames = stream_frames().into_iter().map(Ok::<Bytes, Infallible>);
    let mut r = Response::new(Body::from_stream(futures::stream::iter(frames)));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    r
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_string());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        println!("listening on http://{}", listener.local_addr()?);
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let app = Router::new().fallback(axum::routing::post(answer));
        axum::serve(listener, app).await
    })
}
