//! Unit tests of the in-task HTTP/1.1 client: framing, heads, targets and the pool.

use super::body::{Chunk, Framing};
use super::*;

fn body(framing: Framing) -> Body {
    Body {
        stream: None,
        buf: BytesMut::new(),
        framing,
        reusable: false,
        pool: H1Client::default(),
        key: String::new(),
    }
}

/// Feeds `wire` to a body in pieces of `step` bytes and returns what it decoded.
fn decode_in_pieces(framing: Framing, wire: &[u8], step: usize) -> (Vec<u8>, Framing) {
    let mut b = body(framing);
    let mut got = Vec::new();
    for piece in wire.chunks(step) {
        b.buf.extend_from_slice(piece);
        let mut out = BytesMut::new();
        b.decode(&mut out).unwrap();
        got.extend_from_slice(&out);
    }
    (got, b.framing)
}

#[test]
fn chunked_bodies_decode_whatever_the_read_boundaries() {
    let wire = b"5;ext=1\r\nhello\r\n 7 \r\n, world\r\n0\r\nx-trailer: 1\r\n\r\n";
    for step in 1..=wire.len() {
        let (got, framing) = decode_in_pieces(Framing::Chunked(Chunk::Size), wire, step);
        assert_eq!(got, b"hello, world", "step {step}");
        assert_eq!(framing, Framing::Done, "step {step}");
    }
}

#[test]
fn sized_bodies_stop_at_their_length() {
    let (got, framing) = decode_in_pieces(Framing::Length(5), b"hello", 2);
    assert_eq!(
        (got.as_slice(), framing),
        (b"hello".as_slice(), Framing::Done)
    );
    let (got, framing) = decode_in_pieces(Framing::Length(9), b"hello", 5);
    assert_eq!(
        (got.as_slice(), framing),
        (b"hello".as_slice(), Framing::Length(4))
    );
}

#[test]
fn malformed_chunks_are_errors() {
    for wire in [
        &b"zz\r\nhello\r\n"[..],
        b"2\r\nhello\r\n",
        b"\r\nhello\r\n",
        b"+5\r\nhello\r\n",
        b"fffffffffffffffff\r\nhello\r\n",
    ] {
        let mut b = body(Framing::Chunked(Chunk::Size));
        b.buf.extend_from_slice(wire);
        assert!(b.decode(&mut BytesMut::new()).is_err(), "{wire:?}");
    }
}

#[test]
fn heads_give_status_headers_and_framing() {
    let target =
        Target::of(&reqwest::Url::parse("http://127.0.0.1:9/v1/x?k=secret").unwrap()).unwrap();
    assert_eq!(target.describe(), "http://127.0.0.1:9/v1/x");
    let mut buf = BytesMut::from(
        &b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 429 Too Many\r\nretry-after: 3\r\ncontent-length: 2\r\n\r\n{}"[..],
    );
    let head = parse_head(&mut buf, &target).unwrap().unwrap();
    assert_eq!(head.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(head.headers["retry-after"], "3");
    assert_eq!(head.framing, Framing::Length(2));
    assert!(head.reusable);
    assert_eq!(&buf[..], b"{}");
    let mut ok = BytesMut::from(
        &b"HTTP/1.1 200 OK\r\nX-Request-Id: r1\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n"[..],
    );
    let head = parse_head(&mut ok, &target).unwrap().unwrap();
    assert_eq!(
        head.framing,
        Framing::Chunked(Chunk::Size),
        "names and codings in any case"
    );
    assert!(head.headers.is_empty(), "a success's headers are not kept");
    let mut sized = BytesMut::from(&b"HTTP/1.1 200 OK\r\nCONTENT-LENGTH:  7 \r\n\r\n"[..]);
    let head = parse_head(&mut sized, &target).unwrap().unwrap();
    assert_eq!(head.framing, Framing::Length(7));
    let mut partial = BytesMut::from(&b"HTTP/1.1 200 OK\r\ncontent-le"[..]);
    assert!(parse_head(&mut partial, &target).unwrap().is_none());
    let mut close = BytesMut::from(&b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n"[..]);
    let head = parse_head(&mut close, &target).unwrap().unwrap();
    assert_eq!((head.framing, head.reusable), (Framing::UntilClose, false));
}

#[test]
fn only_plain_http_without_credentials_takes_this_path() {
    let of = |u: &str| Target::of(&reqwest::Url::parse(u).unwrap());
    assert!(of("https://api.example.com/v1").is_none());
    assert!(of("http://user:pw@host/v1").is_none());
    let t = of("http://localhost/v1/chat").unwrap();
    assert_eq!(
        (t.authority.as_str(), t.path.as_str()),
        ("localhost:80", "/v1/chat")
    );
}

/// An upstream that answers one request per connection and then closes it: a pooled
/// connection it closed must not fail the next request, whether the pool reuses it at once
/// (the failed exchange is retried on a new connection) or checks it first (after an idle
/// spell; here always).
#[tokio::test]
async fn a_connection_the_upstream_closed_is_replaced() {
    for probe_after_idle in [PROBE_AFTER_IDLE, Duration::ZERO] {
        let client = H1Client {
            probe_after_idle,
            ..H1Client::default()
        };
        two_requests_on_one_shot_connections(client).await;
    }
}

async fn two_requests_on_one_shot_connections(client: H1Client) {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        for _ in 0..2 {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            while !request.ends_with(b"{}") {
                let mut piece = [0u8; 1024];
                let n = socket.read(&mut piece).await.unwrap();
                assert!(n > 0, "the request ended early");
                request.extend_from_slice(&piece[..n]);
            }
            socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .await
                .unwrap();
            // Keep-alive was promised, but the connection closes: the pool must notice.
        }
    });
    let url = reqwest::Url::parse(&format!("http://{addr}/v1/chat")).unwrap();
    let target = Target::of(&url).unwrap();
    for _ in 0..2 {
        let response = client
            .post(&target, &HeaderMap::new(), b"{}")
            .await
            .unwrap();
        assert_eq!(response.status, StatusCode::OK);
        let mut body = response.into_body();
        let mut got = Vec::new();
        while let Some(piece) = futures::StreamExt::next(&mut body).await {
            got.extend_from_slice(&piece.unwrap());
        }
        assert_eq!(got, b"ok");
    }
    server.await.unwrap();
}
