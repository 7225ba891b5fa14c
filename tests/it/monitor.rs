//! `llmux monitor`'s feed client against servers that do not give it the feed: each refusal
//! is a typed [`OpenError`] whose message (the status line's) says what to do where it can.

use llmux::monitor::client::{OpenError, open};
use llmux::secret::Secret;

use crate::support::refused_url;
use crate::upstream::{FakeUpstream, Net, Reply};

async fn open_at(url: &str) -> OpenError {
    llmux::provider::http::install_tls_provider();
    let http = reqwest::Client::new();
    match open(&http, url, Some(&Secret::new("sk-wrong"))).await {
        Ok(_) => panic!("{url} gave a feed"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn a_refused_key_says_how_to_pass_the_right_one() {
    let server = FakeUpstream::start(vec![Reply::status(401)]).await;
    let e = open_at(&server.url).await;
    assert!(matches!(e, OpenError::Unauthorized), "{e:?}");
    assert_eq!(
        e.to_string(),
        "401 unauthorized: pass the server's master key with --key or LLMUX_MASTER_KEY"
    );
    assert_eq!(server.paths(), ["/llmux/events"]);
}

#[tokio::test]
async fn a_server_without_the_feed_is_asked_whether_it_is_llmux_serve() {
    let server = FakeUpstream::start(vec![Reply::status(404)]).await;
    let e = open_at(&server.url).await;
    assert!(matches!(e, OpenError::NoFeed), "{e:?}");
    assert_eq!(
        e.to_string(),
        "404 not found: the server has no /llmux/events; is it llmux serve?"
    );
}

#[tokio::test]
async fn another_status_is_named() {
    let server = FakeUpstream::start(vec![Reply::status(503)]).await;
    let e = open_at(&server.url).await;
    assert!(matches!(e, OpenError::Status(503)), "{e:?}");
    assert_eq!(e.to_string(), "the server answered 503");
}

#[tokio::test]
async fn nothing_listening_cannot_connect_and_keeps_the_cause() {
    let e = open_at(&refused_url(Net::HTTP)).await;
    assert!(matches!(e, OpenError::Connect(_)), "{e:?}");
    assert_eq!(e.to_string(), "cannot connect");
    assert!(std::error::Error::source(&e).is_some());
}
