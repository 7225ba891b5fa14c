//! What many test files need alike, written once: a config or a router from YAML (a config
//! that does not load fails the test with its text), an OpenAI-wire deployment entry, one
//! request run to its end, an address nothing listens on, a frame drawn on a `TestBackend`
//! read back as text or cells, and the binary run with private directories.

pub mod https;

use llmux::config::{Config, load_str};
use llmux::provider::{ChatRequest, Message};
use llmux::router::{
    ChatEvent, ChatOutcome, ChatStream, RouteError, RouteEvent, Router, RouterOptions,
};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use unicode_width::UnicodeWidthStr;

use crate::upstream::Net;

/// The seed test routers pick with (unless a test sets its own), so picks repeat.
pub const SEED: u64 = 7;

/// The API key of [`deployment`]s; tests look for it where it must never be.
pub const TEST_KEY: &str = "sk-test-secret-key";

/// `litellm_params` lines pricing a deployment at $1 per million tokens in and $2 out.
pub const PRICED: &str =
    "      input_cost_per_token: 0.000001\n      output_cost_per_token: 0.000002\n";

/// The config `yaml` describes.
pub fn config(yaml: &str) -> Config {
    load_str(yaml, None).unwrap_or_else(|e| panic!("test config does not load: {e}\n{yaml}"))
}

/// A router over `yaml`, seeded with [`SEED`].
pub fn router(yaml: &str) -> Router {
    router_with(yaml, RouterOptions::default())
}

/// A router over `yaml` with `options`, seeded with [`SEED`] unless they say otherwise.
pub fn router_with(yaml: &str, options: RouterOptions) -> Router {
    router_from(config(yaml), options)
}

/// A router over `yaml` whose client calls over `net` (and trusts its test certificate),
/// seeded with [`SEED`].
pub fn router_on(net: Net, yaml: &str) -> Router {
    router_with(yaml, net.router_options())
}

/// A router over `config` with `options`, seeded with [`SEED`] unless they say otherwise.
pub fn router_from(config: Config, options: RouterOptions) -> Router {
    let options = RouterOptions {
        seed: options.seed.or(Some(SEED)),
        ..options
    };
    Router::new(config, options).unwrap()
}

/// One OpenAI-wire deployment `id` of `group` at `url` (`openai/gpt-4o-mini`, key
/// [`TEST_KEY`]), with `extra` lines of `litellm_params` (such as [`PRICED`]).
pub fn deployment(group: &str, id: &str, url: &str, extra: &str) -> String {
    format!(
        "  - model_name: {group}\n    litellm_params:\n      model: openai/gpt-4o-mini\n      api_base: {url}\n      api_key: {TEST_KEY}\n{extra}    model_info: {{ id: {id} }}\n"
    )
}

/// A local address nothing listens on (bound, then let go): connecting to it is refused.
pub fn unused_addr() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// [`unused_addr`] as a URL of `net`'s scheme.
pub fn refused_url(net: Net) -> String {
    format!("{}://{}", net.scheme(), unused_addr())
}

/// A request of one user message.
pub fn ask(text: &str) -> ChatRequest {
    ChatRequest::new(vec![Message::user(text)])
}

/// What one request showed its caller, from its first event to `Finished`.
pub struct Run {
    pub result: Result<ChatOutcome, RouteError>,
    /// Its route events, in order.
    pub events: Vec<RouteEvent>,
    /// Its text deltas, in order.
    pub deltas: Vec<String>,
    /// How many times it told its caller to drop what was shown (`Restart`).
    pub restarts: usize,
}

impl Run {
    /// The outcome of a request that must have succeeded.
    pub fn outcome(&self) -> &ChatOutcome {
        match &self.result {
            Ok(o) => o,
            Err(e) => panic!("the request failed: {e:?}"),
        }
    }
}

/// Runs `request` on `model` to its end; fails the test if the stream ends without
/// `Finished`.
pub async fn run(router: &Router, model: &str, request: ChatRequest) -> Run {
    finish(router.chat(model, request)).await
}

/// Reads a started request's `stream` to its end; fails the test if it ends without
/// `Finished`.
pub async fn finish(stream: ChatStream) -> Run {
    finish_watching(stream, |_| {}).await
}

/// [`run`], telling `gate` what has been shown at each delta, so a reset it holds comes only
/// after the text before it reached the client.
pub async fn run_releasing(
    router: &Router,
    model: &str,
    request: ChatRequest,
    gate: &crate::upstream::ResetGate,
) -> Run {
    let mut shown = String::new();
    finish_watching(router.chat(model, request), |ev| {
        if let ChatEvent::Delta(t) = ev {
            shown.push_str(t);
            gate.shown(&shown);
        }
    })
    .await
}

/// [`finish`], showing each event to `watch` as it comes.
pub async fn finish_watching(mut stream: ChatStream, mut watch: impl FnMut(&ChatEvent)) -> Run {
    let mut events = Vec::new();
    let mut deltas = Vec::new();
    let mut restarts = 0;
    while let Some(ev) = stream.next_event().await {
        watch(&ev);
        match ev {
            ChatEvent::Route(e) => events.push(RouteEvent::clone(&e)),
            ChatEvent::Delta(t) => deltas.push(t),
            ChatEvent::Restart => restarts += 1,
            ChatEvent::Finished(result) => {
                return Run {
                    result: *result,
                    events,
                    deltas,
                    restarts,
                };
            }
            ChatEvent::Reasoning(_)
            | ChatEvent::ToolCall(_)
            | ChatEvent::Passthrough(_)
            | ChatEvent::Usage(_) => {}
        }
    }
    panic!("the stream ended without Finished");
}

/// One frame of `width` x `height` drawn by `draw` on a `TestBackend`.
pub fn drawn(width: u16, height: u16, draw: impl FnOnce(Rect, &mut Buffer)) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| draw(f.area(), f.buffer_mut())).unwrap();
    terminal.backend().buffer().clone()
}

/// The screen as a user reads it: one line per row, trailing blanks cut, a wide character
/// once (not followed by the blank cell it covers).
pub fn text(buf: &Buffer) -> String {
    let mut out = String::new();
    for y in 0..buf.area.height {
        let mut line = String::new();
        let mut covered = 0;
        for x in 0..buf.area.width {
            if covered > 0 {
                covered -= 1;
                continue;
            }
            let symbol = buf[(x, y)].symbol();
            line.push_str(symbol);
            covered = symbol.width().saturating_sub(1);
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Every cell's symbol, row by row: what a terminal would be sent, to look for bytes it
/// could act on.
pub fn cells(buf: &Buffer) -> Vec<Vec<String>> {
    (0..buf.area.height)
        .map(|y| {
            (0..buf.area.width)
                .map(|x| buf[(x, y)].symbol().to_string())
                .collect()
        })
        .collect()
}

/// The binary with an empty config dir and a private data dir under `home`, so the user's
/// files are neither read nor written; no colours, nothing on stdin.
pub fn llmux(home: &std::path::Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_llmux"));
    cmd.env_remove("LLMUX_CONFIG")
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("LLMUX_DATA_DIR", home.join("data"))
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null());
    cmd
}
