//! A deployment URL taken apart once for the HTTP stacks (parsing one cost a request several
//! microseconds, so `HttpClient` keeps them): the URI requests go to, the form error messages
//! show, and the `Authorization` a `user:password@` in it stands for.

use base64::Engine;
use reqwest::header::HeaderValue;

/// A deployment URL taken apart once: parsing one cost a request several microseconds.
#[derive(Debug)]
pub(super) struct Target {
    /// The URL without credentials, as the request line asks for it.
    pub(super) uri: hyper::Uri,
    /// `scheme://host:port/path` for error messages: no credentials, no query.
    pub(super) shown: String,
    /// `Authorization: Basic …` for a URL that carries `user:password@`.
    pub(super) basic_auth: Option<HeaderValue>,
    /// `scheme://host:port`: which pooled connections can carry its requests.
    pub(super) key: String,
}

/// Why a deployment URL cannot be sent to (the URL itself is not repeated: it may hold
/// credentials, and the caller scrubs what it shows).
#[derive(Debug, thiserror::Error)]
pub(super) enum TargetError {
    #[error("{0}")]
    Invalid(#[from] url::ParseError),
    #[error("the scheme {0:?} is not http or https")]
    Scheme(String),
    #[error("the credentials in the URL are not valid in a header")]
    Credentials,
    #[error("{0}")]
    Uri(#[from] hyper::http::uri::InvalidUri),
}

impl Target {
    pub(super) fn parse(url: &str) -> Result<Target, TargetError> {
        let mut parsed = reqwest::Url::parse(url)?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(TargetError::Scheme(parsed.scheme().to_string()));
        }
        let basic_auth = if parsed.username().is_empty() && parsed.password().is_none() {
            None
        } else {
            let user = percent_decoded(parsed.username());
            let password = parsed.password().map(percent_decoded).unwrap_or_default();
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            let mut value = HeaderValue::from_str(&format!("Basic {token}"))
                .map_err(|_| TargetError::Credentials)?;
            value.set_sensitive(true);
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            Some(value)
        };
        let port = parsed.port().map(|p| format!(":{p}")).unwrap_or_default();
        let key = format!(
            "{}://{}:{}",
            parsed.scheme(),
            parsed.host_str().unwrap_or_default(),
            parsed.port_or_known_default().unwrap_or_default()
        );
        let shown = format!(
            "{}://{}{port}{}",
            parsed.scheme(),
            parsed.host_str().unwrap_or_default(),
            parsed.path()
        );
        let uri = parsed.as_str().parse()?;
        Ok(Target {
            uri,
            shown,
            basic_auth,
            key,
        })
    }
}

/// A URL's user or password with its `%XX` escapes decoded.
fn percent_decoded(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_leave_the_url_for_a_basic_authorization() {
        let t = Target::parse("http://us%40er:p%3Ass@example.com:8080/v1?key=k").unwrap();
        assert_eq!(t.uri.to_string(), "http://example.com:8080/v1?key=k");
        assert_eq!(t.shown, "http://example.com:8080/v1");
        let auth = t.basic_auth.unwrap();
        assert!(auth.is_sensitive());
        let token = base64::engine::general_purpose::STANDARD.encode("us@er:p:ss");
        assert_eq!(auth.to_str().unwrap(), format!("Basic {token}"));
    }

    #[test]
    fn plain_urls_keep_their_form_and_other_schemes_are_refused() {
        let t = Target::parse("https://api.openai.com/v1/chat/completions").unwrap();
        assert_eq!(t.shown, "https://api.openai.com/v1/chat/completions");
        assert!(t.basic_auth.is_none());
        let ftp = Target::parse("ftp://example.com/").unwrap_err();
        assert!(
            matches!(&ftp, TargetError::Scheme(s) if s == "ftp"),
            "{ftp:?}"
        );
        assert_eq!(ftp.to_string(), "the scheme \"ftp\" is not http or https");
        let junk = Target::parse("not a url").unwrap_err();
        assert!(matches!(junk, TargetError::Invalid(_)), "{junk:?}");
    }
}
