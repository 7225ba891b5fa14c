//! The one place where a transport failure becomes a [`ProviderError`], for both stacks
//! (hyper's client and reqwest, see `transport`): a request that got no answer
//! ([`no_answer`]: refused, reset, DNS, TLS, timed out, closed before the headers) and a
//! body cut mid-answer ([`mid_body`]). Both walk the error's chain of causes down to the
//! innermost one they recognize (an `io::Error`'s kind, a rustls error, hyper's "closed
//! before the message completed"), so the same failure reads the same whichever stack met it.

use std::error::Error;

use super::super::outbound::Secrets;
use super::super::{ErrorClass, ProviderError};

/// Where in the exchange a failure happened: the words for a closed connection differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Before the answer's status and headers arrived.
    Head,
    /// While its body was read.
    Body,
}

/// A request that got no answer. `target` is the URL as [`super::describe_url`] shows it
/// (no credentials, no query); the message is scrubbed of `secret`. A timeout is
/// [`ErrorClass::Timeout`], a malformed answer head [`ErrorClass::Protocol`], the rest
/// [`ErrorClass::Network`].
pub(super) fn no_answer(
    e: &(dyn Error + 'static),
    target: &str,
    secret: Secrets<'_>,
) -> ProviderError {
    let (class, what) = describe(e, Stage::Head);
    let message = secret.scrub(&format!("{what} ({target})"));
    ProviderError::new(class, message)
}

/// A body read that failed after the answer began: always [`ErrorClass::Network`] (a
/// truncated answer is retried or continued like a reset).
pub(super) fn mid_body(e: &(dyn Error + 'static)) -> ProviderError {
    let (_, what) = describe(e, Stage::Body);
    ProviderError::network(format!("connection reset mid-stream: {what}"))
}

/// How a socket failure of this kind is told to the user, for the kinds we recognize.
fn io_failure_words(kind: std::io::ErrorKind) -> Option<&'static str> {
    use std::io::ErrorKind as K;
    Some(match kind {
        K::ConnectionRefused => "connection refused",
        K::ConnectionReset => "connection reset",
        K::ConnectionAborted => "connection aborted",
        K::TimedOut => "connection timed out",
        K::UnexpectedEof | K::BrokenPipe => "connection closed by the upstream",
        _ => return None,
    })
}

/// The class and a short description of a transport failure, from the innermost cause we
/// recognize (the text of the chain when none is).
fn describe(e: &(dyn Error + 'static), stage: Stage) -> (ErrorClass, String) {
    let closed = match stage {
        Stage::Head => "connection closed by the upstream before the answer's headers",
        Stage::Body => "the upstream closed the connection before the answer ended",
    };
    let mut timed_out = false;
    let mut chain = Vec::new();
    let mut cause = Some(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            timed_out |= io.kind() == std::io::ErrorKind::TimedOut;
            if let Some(words) = io_failure_words(io.kind()) {
                let class = if timed_out {
                    ErrorClass::Timeout
                } else {
                    ErrorClass::Network
                };
                return (class, words.to_string());
            }
            // An io::Error's `source` skips the error it wraps (a rustls one, say): look at
            // that error itself.
            if let Some(inner) = io.get_ref() {
                chain.push(c.to_string());
                cause = Some(inner);
                continue;
            }
        }
        if let Some(tls) = c.downcast_ref::<rustls::Error>() {
            return (ErrorClass::Network, format!("TLS handshake failed: {tls}"));
        }
        if let Some(h) = c.downcast_ref::<hyper::Error>() {
            if h.is_incomplete_message() {
                return (ErrorClass::Network, closed.to_string());
            }
            if h.is_parse() {
                let what = match stage {
                    Stage::Head => "malformed response headers from the upstream",
                    Stage::Body => "a malformed body framing from the upstream",
                };
                return (ErrorClass::Protocol, format!("{what}: {h}"));
            }
            timed_out |= h.is_timeout();
        }
        if let Some(r) = c.downcast_ref::<reqwest::Error>() {
            timed_out |= r.is_timeout();
        }
        chain.push(c.to_string());
        cause = c.source();
    }
    let all = chain.join(": ").to_ascii_lowercase();
    let last = chain.last().cloned().unwrap_or_default();
    let what = if timed_out {
        "connection timed out".to_string()
    } else if all.contains("dns") {
        "DNS lookup failed".to_string()
    } else if all.contains("certificate") || all.contains("tls") || all.contains("handshake") {
        format!("TLS handshake failed: {last}")
    } else if all.contains("closed") || all.contains("incomplete") {
        closed.to_string()
    } else {
        format!("connection failed: {last}")
    };
    let class = if timed_out {
        ErrorClass::Timeout
    } else {
        ErrorClass::Network
    };
    (class, what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_kinds_are_worded_and_a_timeout_is_its_own_class() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let e = no_answer(&refused, "http://h:1/v1", Secrets::key(None));
        assert_eq!(
            (e.class, e.message.as_str()),
            (ErrorClass::Network, "connection refused (http://h:1/v1)")
        );
        let slow = std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timeout");
        let e = no_answer(&slow, "http://h:1/v1", Secrets::key(None));
        assert_eq!(e.class, ErrorClass::Timeout);
        assert_eq!(e.message, "connection timed out (http://h:1/v1)");
    }

    #[test]
    fn a_wrapped_tls_error_is_found_inside_its_io_error() {
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, tls);
        let e = no_answer(&io, "https://h/v1", Secrets::key(None));
        assert_eq!(e.class, ErrorClass::Network);
        assert!(e.message.starts_with("TLS handshake failed: "), "{e}");
        assert!(e.message.contains("UnknownIssuer"), "{e}");
    }

    #[test]
    fn mid_body_failures_say_mid_stream() {
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        let e = mid_body(&reset);
        assert_eq!(e.class, ErrorClass::Network);
        assert_eq!(e.message, "connection reset mid-stream: connection reset");
    }
}
