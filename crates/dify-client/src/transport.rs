//! One request, start to finish: admission, attempts, classification and
//! retries.
//!
//! Every endpoint is described once by an [`Endpoint`] (verb, route
//! template, [`Idempotency`] class, whether Dify Cloud counts it against the
//! rate limit). A [`Call`] adds the concrete URL, body and a sentence saying
//! what is being attempted, used in errors and logs. [`DifyClient::send`] then
//! runs the loop:
//!
//! 1. admission: the breaker (fail fast when open), the shared cloud pause
//!    and the pacer, in that order, so a caller never waits for a slot only
//!    to be refused;
//! 2. one attempt, timed;
//! 3. classification into success or a failure with an [`Outcome`];
//! 4. a retry only if the outcome is retryable for the endpoint's class,
//!    attempts remain and the budget allows it.
//!
//! Connections that die in the pool are handled below this loop: the pool
//! drops idle connections before the server does (see
//! [`DEFAULT_POOL_IDLE_TIMEOUT`](crate::DEFAULT_POOL_IDLE_TIMEOUT)), and
//! hyper resends by itself a request whose reused connection closed before
//! the request was written. What reaches this loop as "closed before write"
//! or a connect failure is [`Outcome::NotSent`] and safe to resend for any
//! endpoint; anything later may have been delivered.

use std::error::Error as _;
use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, Method};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use url::Url;

use crate::breaker::{Permit, Transition};
use crate::client::DifyClient;
use crate::error::{Error, Result, is_rate_limit_message, parse_error_body};
use crate::retry::{Idempotency, Outcome, RetryState, parse_retry_after};
use crate::types::FileUpload;

/// Static description of an endpoint.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Endpoint {
    pub(crate) verb: Verb,
    /// Verb and path template, e.g. `GET /datasets/{dataset_id}`; the key of
    /// metrics and errors.
    pub(crate) route: &'static str,
    pub(crate) class: Idempotency,
    /// Counted by Dify Cloud's knowledge rate limit.
    pub(crate) counted: bool,
}

/// HTTP verbs the API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verb {
    Get,
    Post,
    Patch,
    Delete,
}

impl Verb {
    fn method(self) -> Method {
        match self {
            Verb::Get => Method::GET,
            Verb::Post => Method::POST,
            Verb::Patch => Method::PATCH,
            Verb::Delete => Method::DELETE,
        }
    }
}

/// Request body, kept in a form that can be sent again.
#[derive(Debug, Clone)]
pub(crate) enum Body {
    Empty,
    Json(Bytes),
    Multipart { file: Option<FileUpload>, data: Option<String> },
}

/// One concrete request.
#[derive(Debug)]
pub(crate) struct Call {
    pub(crate) endpoint: Endpoint,
    /// Overrides the endpoint's class when the body decides (metadata
    /// assignment is safe only as a full replace).
    pub(crate) class: Idempotency,
    pub(crate) url: Url,
    pub(crate) body: Body,
    pub(crate) action: String,
}

impl Call {
    pub(crate) fn new(endpoint: Endpoint, url: Url, action: String) -> Self {
        Self { endpoint, class: endpoint.class, url, body: Body::Empty, action }
    }

    pub(crate) fn json(mut self, body: &impl Serialize) -> Result<Self> {
        let bytes = serde_json::to_vec(body).map_err(|source| Error::InvalidInput {
            action: self.action.clone(),
            reason: format!("cannot encode the request body: {source}"),
        })?;
        self.body = Body::Json(bytes.into());
        Ok(self)
    }

    pub(crate) fn multipart(mut self, file: Option<FileUpload>, data: Option<String>) -> Self {
        self.body = Body::Multipart { file, data };
        self
    }

    pub(crate) fn class(mut self, class: Idempotency) -> Self {
        self.class = class;
        self
    }
}

/// A successful answer.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: Bytes,
}

/// A failed attempt and what it means for retrying.
struct Failure {
    error: Error,
    outcome: Outcome,
    retry_after: Option<Duration>,
    rate_limited: bool,
}

impl Failure {
    /// A failure that ends the request: no retry can change it.
    fn final_answer(error: Error) -> Box<Self> {
        Box::new(Self { error, outcome: Outcome::Final, retry_after: None, rate_limited: false })
    }
}

impl DifyClient {
    /// Sends `call` and decodes a JSON answer.
    pub(crate) async fn json<T: DeserializeOwned>(&self, call: Call) -> Result<T> {
        let action = call.action.clone();
        let route = call.endpoint.route;
        let reply = self.send(call).await?;
        serde_json::from_slice(&reply.body).map_err(|source| Error::Decode {
            action,
            endpoint: route,
            source,
        })
    }

    /// Sends `call`, ignoring the body of the answer.
    pub(crate) async fn unit(&self, call: Call) -> Result<()> {
        self.send(call).await.map(drop)
    }

    /// Runs the attempt loop for one request.
    pub(crate) async fn send(&self, call: Call) -> Result<Reply> {
        let mut retry = RetryState::new(&self.inner.retry, &self.inner.budget, call.class);
        loop {
            let attempt = retry.attempt();
            let failure = match self.attempt(&call, attempt).await {
                Ok(reply) => return Ok(reply),
                Err(failure) => failure,
            };
            if attempt > 1 && call.endpoint.verb == Verb::Delete && failure.error.is_not_found() {
                // An earlier attempt deleted it; the reply was lost.
                return Ok(Reply { status: 404, body: Bytes::new() });
            }
            if failure.rate_limited {
                self.start_rate_limit_pause(&call);
            }
            let Some(delay) =
                retry.next(failure.outcome, failure.retry_after, failure.rate_limited)
            else {
                return Err(failure.error);
            };
            self.inner.metrics.record_retry();
            tracing::debug!(
                route = call.endpoint.route,
                attempt,
                delay_ms = delay.as_millis() as u64,
                error = %failure.error,
                "retrying dify request"
            );
            tokio::time::sleep(delay).await;
        }
    }

    fn start_rate_limit_pause(&self, call: &Call) {
        let pause = self.inner.pause.trip();
        self.inner.metrics.record_rate_limit_pause();
        tracing::warn!(
            route = call.endpoint.route,
            pause_s = pause.as_secs(),
            "dify cloud rate limit reached; pausing rate-limited requests"
        );
    }

    /// One attempt: admission, the exchange, classification.
    async fn attempt(&self, call: &Call, attempt: u32) -> Result<Reply, Box<Failure>> {
        let request = self.request(call).map_err(Failure::final_answer)?;
        let probe = self.admit(call).await?;
        let started = Instant::now();
        let result = exchange(request).await;
        let took = started.elapsed();
        let verdict = self.classify(call, result);
        let status = match &verdict {
            Ok(reply) => Some(reply.status),
            Err(failure) => failure.error.status(),
        };

        self.inner.metrics.record_request(call.endpoint.route, status, took);
        self.record_health(&verdict);
        probe.disarm();
        tracing::debug!(
            method = %call.endpoint.verb.method(),
            route = call.endpoint.route,
            status = status.unwrap_or(0),
            attempt,
            elapsed_ms = took.as_millis() as u64,
            "dify request"
        );
        verdict
    }

    /// Checks the breaker, then waits out a rate-limit pause and the pacer.
    async fn admit(&self, call: &Call) -> Result<ProbeGuard<'_>, Box<Failure>> {
        let probe = match self.inner.breaker.permit() {
            Permit::Allowed => ProbeGuard { client: None },
            Permit::Probe => {
                tracing::info!(
                    route = call.endpoint.route,
                    "circuit breaker half-open; probing dify"
                );
                ProbeGuard { client: Some(self) }
            }
            Permit::Rejected(retry_in) => {
                let error = Error::CircuitOpen { action: call.action.clone(), retry_in };
                return Err(Failure::final_answer(error));
            }
        };
        if call.endpoint.counted {
            self.inner.pause.wait().await;
            if let Some(limiter) = &self.inner.limiter {
                limiter.acquire().await;
            }
        }
        Ok(probe)
    }

    fn request(&self, call: &Call) -> Result<reqwest::RequestBuilder, Error> {
        let builder = self
            .inner
            .http
            .request(call.endpoint.verb.method(), call.url.clone())
            .header(AUTHORIZATION, self.inner.auth.clone());
        match &call.body {
            Body::Empty => Ok(builder),
            Body::Json(bytes) => {
                Ok(builder.header(CONTENT_TYPE, "application/json").body(bytes.clone()))
            }
            Body::Multipart { file, data } => {
                Ok(builder.multipart(multipart_form(file.as_ref(), data.as_deref(), &call.action)?))
            }
        }
    }

    fn classify(
        &self,
        call: &Call,
        result: Result<(u16, Meta, Bytes), reqwest::Error>,
    ) -> Result<Reply, Box<Failure>> {
        let (status, headers, body) = match result {
            Ok(parts) => parts,
            Err(source) => return Err(Box::new(transport_failure(call, source))),
        };
        if let Some(version) = &headers.version {
            self.remember_version(version);
        }
        if (200..300).contains(&status) {
            return Ok(Reply { status, body });
        }
        Err(Box::new(api_failure(call, status, &headers, &body)))
    }

    fn record_health(&self, verdict: &Result<Reply, Box<Failure>>) {
        let failed = match verdict {
            Ok(_) => false,
            Err(failure) if failure.error.is_circuit_open() => return,
            Err(failure) => {
                failure.outcome == Outcome::MaybeProcessed || failure.outcome == Outcome::NotSent
            }
        };
        let breaker = &self.inner.breaker;
        let transition = if failed { breaker.record_failure() } else { breaker.record_success() };
        match transition {
            Transition::Opened => {
                self.inner.metrics.record_breaker_trip();
                tracing::warn!("circuit breaker opened after repeated dify failures");
            }
            Transition::Closed => tracing::info!("circuit breaker closed; dify answers again"),
            Transition::None => {}
        }
    }
}

/// The response headers this crate reads, taken before the body consumes
/// the response (copying two values is cheaper than the whole map).
struct Meta {
    version: Option<String>,
    retry_after: Option<String>,
}

impl Meta {
    fn read(headers: &HeaderMap) -> Self {
        let text = |name| {
            headers.get(name).and_then(|v: &http::HeaderValue| v.to_str().ok()).map(str::to_owned)
        };
        Self { version: text(X_VERSION), retry_after: text(RETRY_AFTER.as_str()) }
    }
}

/// Dify's version header.
const X_VERSION: &str = "x-version";

/// Sends the request and reads the whole answer.
async fn exchange(request: reqwest::RequestBuilder) -> Result<(u16, Meta, Bytes), reqwest::Error> {
    let response = request.send().await?;
    let status = response.status().as_u16();
    let headers = Meta::read(response.headers());
    let body = response.bytes().await?;
    Ok((status, headers, body))
}

/// Releases a half-open probe permit if the attempt is abandoned (its future
/// dropped) before a verdict was recorded.
struct ProbeGuard<'a> {
    client: Option<&'a DifyClient>,
}

impl ProbeGuard<'_> {
    fn disarm(mut self) {
        self.client = None;
    }
}

impl Drop for ProbeGuard<'_> {
    fn drop(&mut self) {
        if let Some(client) = self.client {
            client.inner.breaker.release_probe();
        }
    }
}

fn multipart_form(
    file: Option<&FileUpload>,
    data: Option<&str>,
    action: &str,
) -> Result<reqwest::multipart::Form> {
    let mut form = reqwest::multipart::Form::new();
    if let Some(file) = file {
        let length = file.bytes.len() as u64;
        let mut part = reqwest::multipart::Part::stream_with_length(file.bytes.clone(), length)
            .file_name(file.file_name.clone());
        if let Some(mime) = &file.mime {
            part = part.mime_str(mime).map_err(|_| Error::InvalidInput {
                action: action.to_owned(),
                reason: format!("{mime:?} is not a valid mime type"),
            })?;
        }
        form = form.part("file", part);
    }
    if let Some(data) = data {
        form = form.text("data", data.to_owned());
    }
    Ok(form)
}

fn transport_failure(call: &Call, source: reqwest::Error) -> Failure {
    let outcome = if never_sent(&source) { Outcome::NotSent } else { Outcome::MaybeProcessed };
    let error = Error::Transport {
        action: call.action.clone(),
        endpoint: call.endpoint.route,
        maybe_sent: outcome != Outcome::NotSent,
        source,
    };
    Failure { error, outcome, retry_after: None, rate_limited: false }
}

/// Whether the request certainly never reached the server: the connection
/// could not be opened, or hyper reports the request canceled because its
/// connection closed before it was written.
fn never_sent(error: &reqwest::Error) -> bool {
    if error.is_connect() {
        return true;
    }
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(hyper_error) = cause.downcast_ref::<hyper::Error>() {
            return hyper_error.is_canceled();
        }
        source = cause.source();
    }
    false
}

fn api_failure(call: &Call, status: u16, headers: &Meta, body: &[u8]) -> Failure {
    let api = parse_error_body(body);
    let rate_limited = status == 403 && is_rate_limit_message(&api.message);
    let outcome = match status {
        408 | 429 => Outcome::Refused,
        403 if rate_limited => Outcome::Refused,
        500.. => Outcome::MaybeProcessed,
        _ => Outcome::Final,
    };
    let retry_after = headers
        .retry_after
        .as_deref()
        .and_then(|value| parse_retry_after(value, std::time::SystemTime::now()));
    let error = Error::Api {
        action: call.action.clone(),
        endpoint: call.endpoint.route,
        http_status: status,
        api,
    };
    Failure { error, outcome, retry_after, rate_limited }
}
