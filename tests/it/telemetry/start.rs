//! An exporter that cannot be built says which destination and which of its headers is at
//! fault ([`StartError`] over an [`ExporterError`]), never the header's value (a secret).

use llmux::telemetry::{ExporterError, Settings, StartError, Telemetry, Warnings};

use super::{OTEL, config};

const MODELS: &str = "  - model_name: m\n    litellm_params: { model: mock/m }\n";

/// Why the exporter for `OTEL_EXPORTER_OTLP_HEADERS=headers` does not start.
fn refused(headers: &str) -> StartError {
    let cfg = config(
        MODELS,
        OTEL,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9"),
            ("OTEL_EXPORTER_OTLP_HEADERS", headers),
        ],
        "",
    );
    let settings = Settings::from_config(&cfg);
    match Telemetry::start(&cfg, &settings, Warnings::Silent) {
        Ok(_) => panic!("an exporter started with headers {headers}"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn a_header_name_http_cannot_send_names_the_header_and_the_destination() {
    let e = refused("bad name=s3cret-value");
    assert!(
        matches!(
            &e,
            StartError::Exporter { destination: "otel", source: ExporterError::HeaderName(n) }
                if n == "bad name"
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "cannot set up the otel exporter: header name 'bad name' is not valid (letters, digits \
         and !#$%&'*+-.^_`|~ only)"
    );
}

#[tokio::test]
async fn a_header_value_http_cannot_send_is_named_but_not_shown() {
    let e = refused("x-api-key=s3cret%0Avalue");
    assert!(
        matches!(
            &e,
            StartError::Exporter { source: ExporterError::HeaderValue(n), .. } if n == "x-api-key"
        ),
        "{e:?}"
    );
    let message = e.to_string();
    assert_eq!(
        message,
        "cannot set up the otel exporter: header x-api-key holds a character HTTP cannot send"
    );
    assert!(!format!("{e:?}").contains("s3cret"));
}

#[test]
fn without_a_runtime_it_says_so() {
    let cfg = config(MODELS, OTEL, &[], "");
    let settings = Settings::from_config(&cfg);
    let e = Telemetry::start(&cfg, &settings, Warnings::Silent).unwrap_err();
    assert!(matches!(e, StartError::NoRuntime), "{e:?}");
    assert_eq!(e.to_string(), "no async runtime to send traces on");
}
