//! The crate's one error type and the predicates callers branch on.
//!
//! Dify answers errors as `{"code", "message", "status"}`, but not always:
//! unknown routes and non-UUID ids get an HTML 404 page, and 403 means
//! several things told apart only by the message (the cloud rate limit, quota,
//! API access disabled). So the API variant keeps the HTTP status next to the
//! parsed envelope, and the predicates look at status and `code` first and at
//! the message only where Dify leaves no other way.

use std::time::Duration;

use serde::Deserialize;

/// The message Dify Cloud sends (403 `forbidden`) when the workspace's
/// knowledge request rate limit is hit.
const RATE_LIMIT_MESSAGE: &str = "knowledge base request rate limit";

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Dify's error envelope, as far as the server sent one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ApiError {
    /// Dify's snake_case error code (`not_found`, `invalid_param`, ...);
    /// empty when the body was not a JSON envelope.
    pub code: String,
    /// The human-readable message (may span lines for validation errors);
    /// for a non-JSON body, a short excerpt of it.
    pub message: String,
    /// The status Dify put inside the envelope, if any.
    pub status: Option<u16>,
}

/// Everything that can go wrong talking to Dify.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Dify answered with an error status.
    #[error(
        "{action}: dify answered {http_status}{}: {}{}",
        code_suffix(.api),
        .api.message,
        route_hint(*.http_status, .api)
    )]
    Api {
        /// What was being attempted, e.g. "creating document in dataset ...".
        action: String,
        /// The route template of the endpoint, e.g.
        /// `POST /datasets/{dataset_id}/document/create-by-text`.
        endpoint: &'static str,
        /// The HTTP status code.
        http_status: u16,
        /// The parsed error envelope.
        api: ApiError,
    },

    /// The request could not be sent or its response not read.
    #[error("{action}: {}", transport_cause(.source, *.maybe_sent))]
    Transport {
        /// What was being attempted.
        action: String,
        /// The route template of the endpoint.
        endpoint: &'static str,
        /// Whether the request can have reached the server.
        maybe_sent: bool,
        /// The underlying HTTP error.
        #[source]
        source: reqwest::Error,
    },

    /// A success response whose body did not match the expected shape.
    #[error("{action}: unexpected response body: {source}")]
    Decode {
        /// What was being attempted.
        action: String,
        /// The route template of the endpoint.
        endpoint: &'static str,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },

    /// The circuit breaker is open after repeated failures; no request was
    /// sent.
    #[error("{action}: circuit breaker open after repeated failures, {}", probe_note(*.retry_in))]
    CircuitOpen {
        /// What was being attempted.
        action: String,
        /// Time until the breaker lets a probe request through.
        retry_in: Duration,
    },

    /// An argument cannot be sent as given (e.g. a malformed MIME type).
    #[error("{action}: {reason}")]
    InvalidInput {
        /// What was being attempted.
        action: String,
        /// What is wrong with the input.
        reason: String,
    },

    /// The client configuration is unusable.
    #[error("invalid client configuration: {0}")]
    Config(String),

    /// The HTTP client could not be built.
    #[error("building the http client")]
    Build(#[source] reqwest::Error),

    /// A lookup by natural key found nothing although Dify reported the name
    /// as taken (e.g. the dataset belongs to another member or lacks API
    /// access).
    #[error("{action}: dify reports the name taken but no exact match was found")]
    NameConflict {
        /// What was being attempted.
        action: String,
    },
}

impl Error {
    /// The HTTP status of an API error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { http_status, .. } => Some(*http_status),
            _ => None,
        }
    }

    /// Dify's envelope of an API error.
    pub fn api_error(&self) -> Option<&ApiError> {
        match self {
            Error::Api { api, .. } => Some(api),
            _ => None,
        }
    }

    /// The route template of the endpoint that failed, if a request was
    /// involved.
    pub fn endpoint(&self) -> Option<&'static str> {
        match self {
            Error::Api { endpoint, .. }
            | Error::Transport { endpoint, .. }
            | Error::Decode { endpoint, .. } => Some(endpoint),
            _ => None,
        }
    }

    /// Dify's JSON 404 (`not_found`): the dataset, document, batch, tag or
    /// field does not exist. An HTML 404 is [`is_route_missing`](Self::is_route_missing)
    /// instead.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Api { http_status: 404, api, .. } if !api.code.is_empty())
    }

    /// A 404 without Dify's JSON envelope: no such route. The base URL
    /// points somewhere other than Dify's API (e.g. a web page, or a path
    /// prefix is missing), or an id is not a UUID.
    pub fn is_route_missing(&self) -> bool {
        matches!(self, Error::Api { http_status: 404, api, .. } if api.code.is_empty())
    }

    /// 401: missing, malformed or invalid API key.
    pub fn is_unauthorized(&self) -> bool {
        self.status() == Some(401)
    }

    /// The name is taken: 409 `dataset_name_duplicate` on dataset create, or
    /// 400 "... name already exists" on dataset rename, metadata and tags.
    pub fn is_duplicate_name(&self) -> bool {
        match self {
            Error::Api { http_status: 409, api, .. } => api.code == "dataset_name_duplicate",
            Error::Api { http_status: 400, api, .. } => {
                api.message.to_ascii_lowercase().contains("already exists")
            }
            _ => false,
        }
    }

    /// 400 "Document is not available": the document is queued, indexing,
    /// in error, disabled or archived, so it cannot be updated now.
    pub fn is_document_not_available(&self) -> bool {
        matches!(self, Error::Api { http_status: 400, api, .. }
            if api.message.to_ascii_lowercase().contains("document is not available"))
    }

    /// Dify Cloud's knowledge rate limit (403 with its message) or a 429.
    pub fn is_rate_limited(&self) -> bool {
        match self {
            Error::Api { http_status: 429, .. } => true,
            Error::Api { http_status: 403, api, .. } => is_rate_limit_message(&api.message),
            _ => false,
        }
    }

    /// The circuit breaker refused the call without sending it.
    pub fn is_circuit_open(&self) -> bool {
        matches!(self, Error::CircuitOpen { .. })
    }

    /// A timeout (connect or whole request).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Transport { source, .. } if source.is_timeout())
    }

    /// Whether trying again later may succeed: transport failures, 5xx,
    /// 408, 429, the cloud rate limit and an open breaker. Says nothing about
    /// whether repeating a write is safe; the client decides that per
    /// endpoint.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Transport { .. } | Error::CircuitOpen { .. } => true,
            Error::Api { http_status, .. } => {
                *http_status >= 500 || matches!(http_status, 408 | 429) || self.is_rate_limited()
            }
            _ => false,
        }
    }
}

/// When the breaker will let a probe through.
fn probe_note(retry_in: Duration) -> String {
    if retry_in.is_zero() {
        "a probe request is in flight".to_owned()
    } else {
        format!("next probe in {} ms", retry_in.as_millis())
    }
}

/// A hint for a 404 that did not come from Dify's API.
fn route_hint(status: u16, api: &ApiError) -> &'static str {
    if status == 404 && api.code.is_empty() {
        " (no such route: check the base url, and that ids are uuids)"
    } else {
        ""
    }
}

/// A short cause of a transport failure: what went wrong, from the error
/// chain, without the url or headers.
fn transport_cause(error: &reqwest::Error, maybe_sent: bool) -> String {
    use std::error::Error as _;

    let mut io_kind = None;
    let mut hyper_cause = None;
    let mut dns = false;
    let mut innermost = None;
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            io_kind.get_or_insert(io.kind());
        }
        if let Some(hyper_error) = cause.downcast_ref::<hyper::Error>() {
            if hyper_error.is_incomplete_message() {
                hyper_cause.get_or_insert("connection closed before a response");
            } else if hyper_error.is_canceled() {
                hyper_cause.get_or_insert("connection closed before the request was sent");
            }
        }
        // hyper-util's connector names resolver failures this way.
        dns |= cause.to_string() == "dns error";
        innermost = Some(cause);
        source = cause.source();
    }
    let cause = if error.is_timeout() {
        if error.is_connect() { "connecting timed out" } else { "timed out" }.to_owned()
    } else if dns {
        "dns lookup failed".to_owned()
    } else if let Some(kind) = io_kind.and_then(io_cause) {
        kind.to_owned()
    } else if let Some(cause) = hyper_cause {
        cause.to_owned()
    } else if error.is_connect() {
        "could not connect".to_owned()
    } else {
        let detail = innermost.map(|cause| cause.to_string()).unwrap_or_default();
        let detail: String = detail.chars().take(120).collect();
        if detail.is_empty() {
            "request failed".to_owned()
        } else {
            format!("request failed: {detail}")
        }
    };
    if maybe_sent { format!("{cause} (the request may have reached dify)") } else { cause }
}

fn io_cause(kind: std::io::ErrorKind) -> Option<&'static str> {
    use std::io::ErrorKind;
    Some(match kind {
        ErrorKind::ConnectionRefused => "connection refused",
        ErrorKind::ConnectionReset => "connection reset by the server",
        ErrorKind::ConnectionAborted => "connection aborted",
        ErrorKind::BrokenPipe => "connection closed while sending the request",
        ErrorKind::UnexpectedEof => "connection closed before a response",
        ErrorKind::TimedOut => "timed out",
        _ => return None,
    })
}

/// ` <code>` when Dify sent a code, else nothing.
fn code_suffix(api: &ApiError) -> String {
    if api.code.is_empty() { String::new() } else { format!(" {}", api.code) }
}

/// Whether a 403 message is the cloud knowledge rate limit.
pub(crate) fn is_rate_limit_message(message: &str) -> bool {
    message.to_ascii_lowercase().contains(RATE_LIMIT_MESSAGE)
}

/// Parses an error body: Dify's envelope when it is one, else an excerpt.
pub(crate) fn parse_error_body(body: &[u8]) -> ApiError {
    if let Ok(api) = serde_json::from_slice::<ApiError>(body)
        && (!api.code.is_empty() || !api.message.is_empty())
    {
        return api;
    }
    if let Ok(bare) = serde_json::from_slice::<BareError>(body) {
        return ApiError { code: String::new(), message: bare.error, status: None };
    }
    ApiError { code: String::new(), message: excerpt(body), status: None }
}

/// Chunk-create schema errors come back as `{"error": "..."}`.
#[derive(Deserialize)]
struct BareError {
    error: String,
}

/// The first line of a non-JSON body, short enough for a log line.
fn excerpt(body: &[u8]) -> String {
    const MAX: usize = 120;
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let title = text
        .split_once("<title>")
        .and_then(|(_, rest)| rest.split_once("</title>"))
        .map(|(title, _)| title.trim());
    let line = title.unwrap_or_else(|| text.lines().next().unwrap_or(""));
    line.chars().take(MAX).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: &str, message: &str) -> Error {
        Error::Api {
            action: "testing".into(),
            endpoint: "GET /datasets",
            http_status: status,
            api: ApiError { code: code.into(), message: message.into(), status: Some(status) },
        }
    }

    #[test]
    fn predicates_follow_status_code_and_message() {
        let cases: &[(Error, [bool; 5])] = &[
            // not_found, unauthorized, duplicate, not_available, rate_limited
            (api(404, "not_found", "Document not found."), [true, false, false, false, false]),
            (
                api(401, "unauthorized", "Access token is invalid"),
                [false, true, false, false, false],
            ),
            (api(409, "dataset_name_duplicate", "x"), [false, false, true, false, false]),
            (
                api(400, "invalid_param", "Metadata name already exists."),
                [false, false, true, false, false],
            ),
            (
                api(400, "invalid_param", "Document is not available"),
                [false, false, false, true, false],
            ),
            (
                api(
                    403,
                    "forbidden",
                    "Sorry, you have reached the knowledge base request rate limit of your subscription.",
                ),
                [false, false, false, false, true],
            ),
            (
                api(403, "forbidden", "Dataset api access is not enabled."),
                [false, false, false, false, false],
            ),
            (api(429, "too_many_requests", "slow down"), [false, false, false, false, true]),
        ];
        for (error, expected) in cases {
            let got = [
                error.is_not_found(),
                error.is_unauthorized(),
                error.is_duplicate_name(),
                error.is_document_not_available(),
                error.is_rate_limited(),
            ];
            assert_eq!(&got, expected, "{error}");
        }
    }

    #[test]
    fn html_404_is_a_missing_route_not_a_missing_object() {
        let html = api(404, "", "404 Not Found");
        assert!(html.is_route_missing() && !html.is_not_found());
        assert!(html.to_string().contains("no such route"), "{html}");
        let json = api(404, "not_found", "Dataset not found.");
        assert!(json.is_not_found() && !json.is_route_missing());
        assert!(!json.to_string().contains("no such route"), "{json}");
    }

    #[test]
    fn decode_errors_show_the_serde_message() {
        let source = serde_json::from_str::<u32>("\"x\"").unwrap_err();
        let error =
            Error::Decode { action: "reading dataset d".into(), endpoint: "GET /x", source };
        let shown = error.to_string();
        assert!(
            shown.starts_with("reading dataset d: unexpected response body: invalid type"),
            "{shown}"
        );
        assert!(std::error::Error::source(&error).is_some(), "the chain is kept");
    }

    #[test]
    fn retryable_statuses() {
        assert!(api(500, "unknown", "boom").is_retryable());
        assert!(api(503, "", "").is_retryable());
        assert!(api(408, "", "").is_retryable());
        assert!(!api(400, "invalid_param", "bad").is_retryable());
        assert!(!api(401, "unauthorized", "bad").is_retryable());
    }

    #[test]
    fn html_bodies_become_short_messages() {
        let html =
            b"<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>";
        let parsed = parse_error_body(html);
        assert_eq!(parsed.code, "");
        assert_eq!(parsed.message, "404 Not Found");
    }

    #[test]
    fn envelope_and_bare_error_bodies_parse() {
        let parsed = parse_error_body(
            br#"{"code":"not_found","message":"Dataset not found.","status":404}"#,
        );
        assert_eq!(parsed.code, "not_found");
        assert_eq!(parsed.status, Some(404));
        assert_eq!(
            parse_error_body(br#"{"error":"content is required"}"#).message,
            "content is required"
        );
    }

    #[test]
    fn display_is_lowercase_and_names_the_action() {
        let shown = api(404, "not_found", "Dataset not found.").to_string();
        assert!(shown.starts_with("testing: dify answered 404 not_found"), "{shown}");
    }
}
