//! Requests as handlers see them, replies, and Dify's error shapes.
//!
//! Error bodies follow Dify's envelope `{"code", "message", "status"}`.
//! Validation failures imitate pydantic's multi-line message layout because
//! clients log it verbatim; only the status and `code` are contractual.

use bytes::Bytes;
use serde_json::{Map, Value, json};

/// A routed request with its body read.
pub(crate) struct Req {
    /// The canonical route key.
    pub(crate) route: &'static str,
    /// Path parameters in template order.
    pub(crate) params: Vec<String>,
    /// The request path, for messages that quote it.
    pub(crate) path: String,
    /// Decoded query pairs, in order (keys may repeat).
    pub(crate) query: Vec<(String, String)>,
    /// The raw `Authorization` header.
    pub(crate) authorization: Option<String>,
    /// The raw `Content-Type` header.
    pub(crate) content_type: Option<String>,
    /// The whole body.
    pub(crate) body: Bytes,
    /// The parsed parts when the body is `multipart/form-data`.
    pub(crate) form: Option<Form>,
}

/// A parsed `multipart/form-data` body.
#[derive(Default)]
pub(crate) struct Form {
    /// File parts: field name, file name (if any), contents.
    pub(crate) files: Vec<FilePart>,
    /// Plain fields: name and text value.
    pub(crate) fields: Vec<(String, String)>,
}

/// One file part of a form.
pub(crate) struct FilePart {
    pub(crate) field: String,
    pub(crate) file_name: Option<String>,
    pub(crate) data: Bytes,
}

impl Form {
    pub(crate) fn field(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

impl Req {
    /// The first value of a query parameter.
    pub(crate) fn query(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Every value of a repeated query parameter.
    pub(crate) fn query_all(&self, name: &str) -> Vec<&str> {
        self.query.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }

    /// Path parameter `i` (routes guarantee their count).
    pub(crate) fn param(&self, i: usize) -> &str {
        self.params.get(i).map_or("", String::as_str)
    }

    /// The body as JSON, the way Flask's `get_json()` reads it: 415 unless
    /// the content type is JSON, 400 `bad_request` when it does not parse.
    pub(crate) fn json(&self) -> Result<Value, Reply> {
        if !self.content_type.as_deref().is_some_and(is_json_mime) {
            return Err(Reply::error(
                415,
                "unsupported_media_type",
                "Did not attempt to load JSON data because the request Content-Type was not \
                 'application/json'.",
            ));
        }
        serde_json::from_slice(&self.body).map_err(|_| Reply::bad_request())
    }

    /// The body as a JSON object, or pydantic's `model_type` error naming
    /// `model`.
    pub(crate) fn json_object(&self, model: &str) -> Result<Map<String, Value>, Reply> {
        match self.json()? {
            Value::Object(map) => Ok(map),
            other => {
                let msg = format!("Input should be a valid dictionary or instance of {model}");
                Err(Validation::new(model).add("", &msg, "model_type", &other).into_reply())
            }
        }
    }
}

fn is_json_mime(content_type: &str) -> bool {
    let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// A reply before it becomes an HTTP response.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: ReplyBody,
    pub(crate) headers: Vec<(&'static str, String)>,
}

/// Reply bodies.
pub(crate) enum ReplyBody {
    Json(Value),
    Html(&'static str),
    Empty,
}

const NOT_FOUND_HTML: &str = "<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n\
<h1>Not Found</h1>\n<p>The requested URL was not found on the server. If you entered the URL \
manually please check your spelling and try again.</p>\n";

impl Reply {
    pub(crate) fn json(status: u16, body: Value) -> Reply {
        Reply { status, body: ReplyBody::Json(body), headers: Vec::new() }
    }

    pub(crate) fn ok(body: Value) -> Reply {
        Reply::json(200, body)
    }

    pub(crate) fn success() -> Reply {
        Reply::ok(json!({"result": "success"}))
    }

    pub(crate) fn no_content() -> Reply {
        Reply { status: 204, body: ReplyBody::Empty, headers: Vec::new() }
    }

    pub(crate) fn error(status: u16, code: &str, message: &str) -> Reply {
        Reply::json(status, json!({"code": code, "message": message, "status": status}))
    }

    pub(crate) fn invalid_param(message: &str) -> Reply {
        Reply::error(400, "invalid_param", message)
    }

    pub(crate) fn not_found(message: &str) -> Reply {
        Reply::error(404, "not_found", message)
    }

    pub(crate) fn bad_request() -> Reply {
        Reply::error(
            400,
            "bad_request",
            "The browser (or proxy) sent a request that this server could not understand.",
        )
    }

    pub(crate) fn unauthorized(message: &str) -> Reply {
        let mut reply = Reply::error(401, "unauthorized", message);
        reply.headers.push(("www-authenticate", "Bearer realm=\"api\"".to_owned()));
        reply
    }

    pub(crate) fn html_not_found() -> Reply {
        Reply { status: 404, body: ReplyBody::Html(NOT_FOUND_HTML), headers: Vec::new() }
    }

    pub(crate) fn method_not_allowed() -> Reply {
        Reply::error(405, "method_not_allowed", "The method is not allowed for the requested URL.")
    }

    pub(crate) fn internal_error() -> Reply {
        Reply::error(
            500,
            "internal_server_error",
            "The server encountered an internal error and was unable to complete your request. \
             Either the server is overloaded or there is an error in the application.",
        )
    }

    /// Dify Cloud's answer past the knowledge request rate limit.
    pub(crate) fn cloud_rate_limited() -> Reply {
        Reply::error(
            403,
            "forbidden",
            "Sorry, you have reached the knowledge base request rate limit of your subscription.",
        )
    }

    pub(crate) fn too_many(retry_after: Option<String>) -> Reply {
        let mut reply = Reply::error(429, "too_many_requests", "Too many requests.");
        if let Some(value) = retry_after {
            reply.headers.push(("retry-after", value));
        }
        reply
    }
}

/// Accumulates pydantic-style validation errors for one model.
pub(crate) struct Validation {
    model: String,
    errors: Vec<String>,
}

impl Validation {
    pub(crate) fn new(model: &str) -> Validation {
        Validation { model: model.to_owned(), errors: Vec::new() }
    }

    /// Records one error at `loc` (dotted path, empty for the whole input).
    pub(crate) fn add(mut self, loc: &str, msg: &str, kind: &str, input: &Value) -> Validation {
        self.push(loc, msg, kind, input);
        self
    }

    pub(crate) fn push(&mut self, loc: &str, msg: &str, kind: &str, input: &Value) {
        let mut entry = String::new();
        if !loc.is_empty() {
            entry.push_str(loc);
            entry.push('\n');
        }
        entry.push_str(&format!(
            "  {msg} [type={kind}, input_value={}, input_type={}]\n    For further \
             information visit https://errors.pydantic.dev/2.12/v/{kind}",
            py_repr(input),
            py_type(input)
        ));
        self.errors.push(entry);
    }

    pub(crate) fn missing(&mut self, loc: &str, input: &Value) {
        self.push(loc, "Field required", "missing", input);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    pub(crate) fn into_reply(self) -> Reply {
        let n = self.errors.len();
        let plural = if n == 1 { "" } else { "s" };
        let head = format!("{n} validation error{plural} for {}", self.model);
        let message = std::iter::once(head).chain(self.errors).collect::<Vec<_>>().join("\n");
        Reply::invalid_param(&message)
    }

    pub(crate) fn finish(self) -> Result<(), Reply> {
        if self.is_empty() { Ok(()) } else { Err(self.into_reply()) }
    }
}

/// A short Python-like rendering of a JSON value, as pydantic quotes inputs.
fn py_repr(v: &Value) -> String {
    let full = match v {
        Value::Null => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::String(s) => format!("'{s}'"),
        other => other.to_string(),
    };
    shorten(&full)
}

fn shorten(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= 50 {
        return s.to_owned();
    }
    let head: String = chars[..24].iter().collect();
    let tail: String = chars[chars.len() - 23..].iter().collect();
    format!("{head}...{tail}")
}

fn py_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// Reads an optional string field: `Ok(None)` when absent or null, a
/// `string_type` error when present with another type.
pub(crate) fn opt_str(obj: &Map<String, Value>, key: &str, v: &mut Validation) -> Option<String> {
    match obj.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            v.push(key, "Input should be a valid string", "string_type", other);
            None
        }
    }
}

/// Reads a required string field, recording `missing` or `string_type`.
pub(crate) fn req_str(
    obj: &Map<String, Value>,
    key: &str,
    whole: &Value,
    v: &mut Validation,
) -> Option<String> {
    if obj.get(key).is_none_or(Value::is_null) {
        v.missing(key, whole);
        return None;
    }
    opt_str(obj, key, v)
}

/// Checks a string's length in characters against `min..=max`.
pub(crate) fn check_len(key: &str, s: &str, min: usize, max: usize, v: &mut Validation) {
    let n = s.chars().count();
    let input = Value::String(s.to_owned());
    if n < min {
        let msg = format!("String should have at least {min} character{}", plural(min));
        v.push(key, &msg, "string_too_short", &input);
    } else if n > max {
        let msg = format!("String should have at most {max} character{}", plural(max));
        v.push(key, &msg, "string_too_long", &input);
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Checks that an optional string field is one of `allowed`.
pub(crate) fn check_literal(key: &str, value: Option<&str>, allowed: &[&str], v: &mut Validation) {
    let Some(value) = value else { return };
    if allowed.contains(&value) {
        return;
    }
    let quoted: Vec<String> = allowed.iter().map(|a| format!("'{a}'")).collect();
    let list = match quoted.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    };
    let msg = format!("Input should be {list}");
    v.push(key, &msg, "literal_error", &Value::String(value.to_owned()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_message_counts_and_names_the_model() {
        let mut v = Validation::new("DatasetCreatePayload");
        v.missing("name", &json!({}));
        check_literal("indexing_technique", Some("cheap"), &["high_quality", "economy"], &mut v);
        let reply = v.into_reply();
        let ReplyBody::Json(body) = reply.body else { panic!("json body expected") };
        let message = body["message"].as_str().unwrap_or("");
        assert!(message.starts_with("2 validation errors for DatasetCreatePayload\nname\n"));
        assert!(message.contains("Input should be 'high_quality' or 'economy'"));
        assert_eq!(body["code"], "invalid_param");
    }

    #[test]
    fn json_mime_types() {
        assert!(is_json_mime("application/json; charset=utf-8"));
        assert!(is_json_mime("Application/JSON"));
        assert!(is_json_mime("application/merge-patch+json"));
        assert!(!is_json_mime("application/x-www-form-urlencoded"));
        assert!(!is_json_mime("text/json"));
    }

    #[test]
    fn long_inputs_are_shortened_like_pydantic() {
        let s = "x".repeat(300);
        let r = py_repr(&Value::String(s));
        assert_eq!(r.chars().count(), 24 + 3 + 23);
    }
}
