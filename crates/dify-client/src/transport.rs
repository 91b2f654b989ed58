//! One request, start to finish: admission, attempts, classification,
//! retries and the breaker's verdict.
//!
//! Every endpoint is described once in the endpoint table
//! ([`crate::endpoints`]). A [`Call`] adds the concrete URL, body and a
//! sentence saying what is being attempted, used in errors and logs.
//! [`DifyClient::send`] then runs the loop:
//!
//! 1. admission, for every attempt: the shared cloud-rate-limit pause and
//!    the pacer, looked at again after the pacer slot because another caller
//!    may have started a pause meanwhile; then the breaker, last, so that a
//!    half-open probe permit is not held by a caller still waiting for a
//!    slot;
//! 2. one attempt, timed;
//! 3. classification into success or a failure with an [`Outcome`];
//! 4. a retry only if the outcome is retryable for the endpoint's class,
//!    attempts remain and the budget allows it;
//! 5. once the call is over, its final outcome goes to the breaker: one
//!    verdict per call, so a call that keeps failing for one bad input does
//!    not count as several failures of the server.
//!
//! Connections that die in the pool are handled partly below this loop:
//! hyper resends by itself a request whose reused connection turned out to
//! be closed before the request was written, and reqwest's own retries
//! (HTTP/2 refusals) are switched off so every send passes the pacer, the
//! budget and the metrics here. What reaches this loop as a connect failure,
//! a request cancelled before it was written, or an HTTP/2 refusal that
//! guarantees the server did not process the stream is [`Outcome::NotSent`]
//! and safe to resend for any endpoint; anything later may have been
//! delivered (see
//! [`DifyClientBuilder::pool_idle_timeout`](crate::DifyClientBuilder::pool_idle_timeout)
//! for how the pool keeps that case rare).

use std::error::Error as _;
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use url::Url;

use crate::breaker::{Permit, Transition};
use crate::client::DifyClient;
use crate::endpoints::{Endpoint, Verb};
use crate::error::{Error, Result, is_rate_limit_message, parse_error_body};
use crate::retry::{Idempotency, Outcome, RetryState, parse_retry_after};
use crate::types::FileUpload;

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

/// How a whole call ended.
struct Finished {
    result: Result<Reply>,
    /// Whether an attempt before the last one may have been processed
    /// (its reply was lost or was a 5xx).
    earlier_maybe_processed: bool,
}

/// A failed attempt and what it means for retrying.
struct Failure {
    error: Error,
    outcome: Outcome,
    retry_after: Option<Duration>,
    rate_limited: bool,
    /// Whether the attempt reached the network; local refusals (bad input,
    /// an open breaker) say nothing about the server's health.
    sent: bool,
}

impl Failure {
    /// A refusal before anything was sent; no retry can change it.
    fn local(error: Error) -> Box<Self> {
        Box::new(Self {
            error,
            outcome: Outcome::Final,
            retry_after: None,
            rate_limited: false,
            sent: false,
        })
    }
}

impl DifyClient {
    /// Sends `call` and decodes a JSON answer.
    pub(crate) async fn json<T: DeserializeOwned>(&self, call: Call) -> Result<T> {
        let action = call.action.clone();
        let route = call.endpoint.route;
        let reply = self.send(call).await?;
        decode(&reply, action, route)
    }

    /// Sends a natural-key create. When an attempt that followed one whose
    /// reply was lost answers "duplicate", the lost attempt most likely
    /// created the object, so `lookup` finds it by name and it is returned
    /// as if the reply had arrived.
    pub(crate) async fn create_keyed<T, F, Fut>(&self, call: Call, lookup: F) -> Result<T>
    where
        T: DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<T>>>,
    {
        let action = call.action.clone();
        let route = call.endpoint.route;
        let finished = self.run(&call).await;
        match finished.result {
            Ok(reply) => decode(&reply, action, route),
            Err(error) if finished.earlier_maybe_processed && error.is_duplicate_name() => {
                tracing::info!(
                    route,
                    "name taken after a lost reply; looking up what the lost attempt created"
                );
                lookup().await?.ok_or(Error::NameConflict { action })
            }
            Err(error) => Err(error),
        }
    }

    /// Sends `call`, ignoring the body of the answer.
    pub(crate) async fn unit(&self, call: Call) -> Result<()> {
        self.send(call).await.map(drop)
    }

    /// Runs the attempt loop for one request.
    pub(crate) async fn send(&self, call: Call) -> Result<Reply> {
        self.run(&call).await.result
    }

    async fn run(&self, call: &Call) -> Finished {
        let mut retry = RetryState::new(&self.inner.retry, &self.inner.budget, call.class);
        // Set once this call holds the half-open probe permit; its later
        // attempts are the same probe, not new ones.
        let mut probe: Option<ProbeGuard<'_>> = None;
        let mut after_rate_limit = false;
        let mut earlier_maybe_processed = false;
        loop {
            let attempt = retry.attempt();
            let failure = match self.attempt(call, attempt, after_rate_limit, &mut probe).await {
                Ok(reply) => {
                    self.record_health(Some(true), probe);
                    return Finished { result: Ok(reply), earlier_maybe_processed };
                }
                Err(failure) => failure,
            };
            if !failure.sent {
                // Dropping an unused probe permit lets the next caller probe.
                return Finished { result: Err(failure.error), earlier_maybe_processed };
            }
            if earlier_maybe_processed
                && call.endpoint.verb == Verb::Delete
                && is_gone(&failure.error)
            {
                // An earlier attempt deleted it; its reply was lost.
                self.record_health(Some(true), probe);
                let status = failure.error.status().unwrap_or(404);
                return Finished {
                    result: Ok(Reply { status, body: Bytes::new() }),
                    earlier_maybe_processed,
                };
            }
            if failure.rate_limited {
                self.start_rate_limit_pause(call);
            }
            let Some(delay) =
                retry.next(failure.outcome, failure.retry_after, failure.rate_limited)
            else {
                self.record_health(Some(server_answered(&failure.error)), probe);
                return Finished { result: Err(failure.error), earlier_maybe_processed };
            };
            earlier_maybe_processed |= failure.outcome == Outcome::MaybeProcessed;
            after_rate_limit = failure.rate_limited;
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
    async fn attempt<'a>(
        &'a self,
        call: &Call,
        attempt: u32,
        after_rate_limit: bool,
        probe: &mut Option<ProbeGuard<'a>>,
    ) -> Result<Reply, Box<Failure>> {
        let request = self.request(call).map_err(Failure::local)?;
        self.admit(call, after_rate_limit, probe).await?;
        let started = Instant::now();
        let result = exchange(request).await;
        let took = started.elapsed();
        let verdict = self.classify(call, result);
        let status = match &verdict {
            Ok(reply) => Some(reply.status),
            Err(failure) => failure.error.status(),
        };

        self.inner.metrics.record_request(call.endpoint.route, status, took);
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

    /// Waits out a rate-limit pause and the pacer, then asks the breaker.
    ///
    /// Counted endpoints wait for both; any retry after a rate-limit answer
    /// waits for the pause whatever its endpoint. The pause is checked again
    /// after the pacer slot: a caller that reserved its slot before another
    /// caller's request met the limit must not fire into the pause.
    async fn admit<'a>(
        &'a self,
        call: &Call,
        after_rate_limit: bool,
        probe: &mut Option<ProbeGuard<'a>>,
    ) -> Result<(), Box<Failure>> {
        let paced = call.endpoint.counted;
        if paced || after_rate_limit {
            loop {
                self.inner.pause.wait().await;
                if paced && let Some(limiter) = &self.inner.limiter {
                    limiter.acquire().await;
                }
                if self.inner.pause.remaining().is_none() {
                    break;
                }
            }
        }
        if probe.is_some() {
            return Ok(());
        }
        match self.inner.breaker.permit() {
            Permit::Allowed => Ok(()),
            Permit::Probe => {
                tracing::info!(
                    route = call.endpoint.route,
                    "circuit breaker half-open; probing dify"
                );
                *probe = Some(ProbeGuard { client: Some(self) });
                Ok(())
            }
            Permit::Rejected(retry_in) => {
                let error = Error::CircuitOpen { action: call.action.clone(), retry_in };
                Err(Failure::local(error))
            }
        }
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

    /// Gives the breaker the verdict of one finished call: `Some(true)` when
    /// the server answered (any status below 500, including a 429 or 408
    /// that outlasted the retries), `Some(false)` for a transport error or
    /// 5xx.
    fn record_health(&self, answered: Option<bool>, probe: Option<ProbeGuard<'_>>) {
        if let Some(probe) = probe {
            probe.disarm();
        }
        let Some(answered) = answered else { return };
        let breaker = &self.inner.breaker;
        let transition = if answered { breaker.record_success() } else { breaker.record_failure() };
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

fn decode<T: DeserializeOwned>(reply: &Reply, action: String, route: &'static str) -> Result<T> {
    serde_json::from_slice(&reply.body).map_err(|source| Error::Decode {
        action,
        endpoint: route,
        source,
    })
}

/// Whether a final error shows a working server: an answer below 500.
fn server_answered(error: &Error) -> bool {
    error.status().is_some_and(|status| status < 500)
}

/// Whether a delete's error says the object is already gone: Dify's JSON
/// 404, or the 400 "Metadata not found." some versions send for metadata
/// fields. Never an HTML 404 (a wrong route is not a deleted object).
fn is_gone(error: &Error) -> bool {
    if error.is_not_found() {
        return true;
    }
    matches!(error, Error::Api { http_status: 400, api, .. }
        if api.message.to_ascii_lowercase().contains("not found"))
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

/// Releases a half-open probe permit if the call ends without a verdict
/// (its future dropped, or refused before sending).
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
    Failure { error, outcome, retry_after: None, rate_limited: false, sent: true }
}

/// Whether the request certainly was not processed: the connection could
/// not be opened; hyper reports the request cancelled because its
/// connection closed before it was written; or an HTTP/2 server refused the
/// stream (`REFUSED_STREAM`) or shut down gracefully (`GOAWAY` with
/// `NO_ERROR`) before taking it, both of which promise the stream was not
/// processed (RFC 9113 §8.7).
fn never_sent(error: &reqwest::Error) -> bool {
    if error.is_connect() {
        return true;
    }
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(hyper_error) = cause.downcast_ref::<hyper::Error>()
            && hyper_error.is_canceled()
        {
            return true;
        }
        if let Some(h2_error) = cause.downcast_ref::<h2::Error>() {
            let refused =
                h2_error.is_reset() && h2_error.reason() == Some(h2::Reason::REFUSED_STREAM);
            let going_away =
                h2_error.is_go_away() && h2_error.reason() == Some(h2::Reason::NO_ERROR);
            return h2_error.is_remote() && (refused || going_away);
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
    Failure { error, outcome, retry_after, rate_limited, sent: true }
}
