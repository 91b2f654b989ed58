//! Building a [`DifyClient`]: every knob with its default in one place.
//!
//! Setters only store values; `build()` validates them all and reports the
//! first problem, so a configuration read from flags or a file can be passed
//! through without checks at each step.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use url::Url;

use crate::breaker::CircuitBreaker;
use crate::client::{DifyClient, Inner};
use crate::connect::CountingLayer;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::ratelimit::{CloudPause, RateLimiter};
use crate::retry::{RetryBudget, RetryPolicy};
use crate::secret::ApiKey;

/// Default whole-request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time an idle pooled connection is kept.
///
/// Dify reached directly (gunicorn) closes idle keep-alive connections after
/// about 2 s. See [`DifyClientBuilder::pool_idle_timeout`] for why the pool
/// lets go of them first.
pub const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_millis(1_000);
/// Default number of idle connections kept per host.
pub const DEFAULT_POOL_MAX_IDLE_PER_HOST: usize = 16;
/// Default attempts per request, the first one included.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 4;
/// Default ceiling of the first backoff.
pub const DEFAULT_BASE_DELAY: Duration = Duration::from_millis(200);
/// Default largest backoff ceiling.
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(10);
/// Default cap on a server's `Retry-After`.
pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Default share of extra load retries may add.
pub const DEFAULT_RETRY_RATIO: f64 = 0.2;
/// Default retries a second allowed regardless of traffic.
pub const DEFAULT_MIN_RETRIES_PER_SEC: u32 = 10;
/// Default length of the pause after a cloud rate-limit answer (Dify
/// Cloud's window).
pub const DEFAULT_RATE_LIMIT_WINDOW: Duration = Duration::from_secs(60);
/// Default consecutive failed calls that open the breaker.
pub const DEFAULT_BREAKER_THRESHOLD: u32 = 5;
/// Default time the breaker stays open before a probe.
pub const DEFAULT_BREAKER_COOL_DOWN: Duration = Duration::from_secs(30);

/// Configures and builds a [`DifyClient`].
#[must_use]
#[derive(Debug)]
pub struct DifyClientBuilder {
    base_url: String,
    api_key: ApiKey,
    timeout: Duration,
    connect_timeout: Duration,
    pool_idle_timeout: Option<Duration>,
    pool_max_idle_per_host: usize,
    user_agent: String,
    retry: RetryPolicy,
    retry_ratio: f64,
    min_retries_per_sec: u32,
    rate_limit_per_minute: Option<u32>,
    rate_limit_window: Duration,
    breaker_threshold: u32,
    breaker_cool_down: Duration,
}

impl DifyClientBuilder {
    pub(crate) fn new(base_url: impl Into<String>, api_key: impl Into<ApiKey>) -> Self {
        Self {
            base_url: base_url.into(),
            api_key: api_key.into(),
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            pool_idle_timeout: Some(DEFAULT_POOL_IDLE_TIMEOUT),
            pool_max_idle_per_host: DEFAULT_POOL_MAX_IDLE_PER_HOST,
            user_agent: concat!("dify-client/", env!("CARGO_PKG_VERSION")).to_owned(),
            retry: RetryPolicy::default(),
            retry_ratio: DEFAULT_RETRY_RATIO,
            min_retries_per_sec: DEFAULT_MIN_RETRIES_PER_SEC,
            rate_limit_per_minute: None,
            rate_limit_window: DEFAULT_RATE_LIMIT_WINDOW,
            breaker_threshold: DEFAULT_BREAKER_THRESHOLD,
            breaker_cool_down: DEFAULT_BREAKER_COOL_DOWN,
        }
    }

    /// Timeout of one attempt, from sending to the end of the body.
    /// Default is 60 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Timeout of opening a connection. Default is 10 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long an idle connection stays pooled. Default is 1 s
    /// ([`DEFAULT_POOL_IDLE_TIMEOUT`]).
    ///
    /// Keep it below the server's keep-alive timeout (gunicorn: 2 s; nginx
    /// in Dify's docker setup: 65 s). A connection the server closes while
    /// it sits idle is harmless: the pool notices the close and hyper
    /// resends a request that met it before being written. The harmful case
    /// is the race where the server closes the connection just as a request
    /// goes out on it: the request is written, then the connection dies
    /// without an answer, and nothing tells whether the server read it.
    /// Reads and natural-key writes are then retried on a new connection;
    /// other writes fail with a `maybe_sent` transport error rather than risk
    /// running twice. Letting go of idle connections before the server does
    /// keeps that race away, at the price of a new connection after a quiet
    /// second.
    ///
    /// `None` keeps connections until the server closes them, which is
    /// right only when the server's keep-alive is long or unknown to be
    /// short; against gunicorn's 2 s it invites exactly that race after
    /// every pause of about 2 s.
    pub fn pool_idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.pool_idle_timeout = timeout;
        self
    }

    /// Most idle connections kept per host; 0 disables reuse. Default is 16.
    pub fn pool_max_idle_per_host(mut self, max: usize) -> Self {
        self.pool_max_idle_per_host = max;
        self
    }

    /// The `User-Agent` header. Default is `dify-client/<version>`.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Attempts per request, the first one included; 1 disables retries.
    /// Must be at least 1. Default is 4.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.retry.max_attempts = attempts;
        self
    }

    /// Ceiling of the first backoff draw (doubling per retry, full jitter).
    /// Default is 200 ms.
    pub fn base_delay(mut self, delay: Duration) -> Self {
        self.retry.base_delay = delay;
        self
    }

    /// Largest backoff ceiling. Default is 10 s.
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.retry.max_delay = delay;
        self
    }

    /// Longest `Retry-After` honoured; longer ones are cut. Default is 60 s.
    pub fn max_retry_after(mut self, delay: Duration) -> Self {
        self.retry.max_retry_after = delay;
        self
    }

    /// Retry budget: retries may add `ratio` of the request load, plus
    /// `min_per_sec` retries a second regardless. Default is 0.2 and 10.
    pub fn retry_budget(mut self, ratio: f64, min_per_sec: u32) -> Self {
        self.retry_ratio = ratio;
        self.min_retries_per_sec = min_per_sec;
        self
    }

    /// Paces requests on rate-limited routes (Dify Cloud: writes and
    /// retrieval) to this many a minute, evenly spaced; must be at least 1.
    /// Default is no pacing (self-hosted Dify has no limit).
    pub fn rate_limit_per_minute(mut self, per_minute: Option<u32>) -> Self {
        self.rate_limit_per_minute = per_minute;
        self
    }

    /// How long all rate-limited calls pause after Dify Cloud answers with
    /// its rate-limit message. Default is 60 s, Dify Cloud's window.
    pub fn rate_limit_window(mut self, window: Duration) -> Self {
        self.rate_limit_window = window;
        self
    }

    /// Consecutive failed calls that open the circuit breaker; 0 disables
    /// it. Default is 5. A call counts once, by how it finally ended after
    /// its retries: failed when that was a transport error or a 5xx; any
    /// other answer (a 4xx, or a 429 that outlasted the retries) shows the
    /// server is up and resets the count.
    pub fn breaker_threshold(mut self, failures: u32) -> Self {
        self.breaker_threshold = failures;
        self
    }

    /// How long the breaker stays open before letting a probe through.
    /// Default is 30 s.
    pub fn breaker_cool_down(mut self, cool_down: Duration) -> Self {
        self.breaker_cool_down = cool_down;
        self
    }

    /// Validates the settings and builds the client.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for an unusable base URL, API key, attempt count or
    /// rate, [`Error::Build`] if the HTTP stack cannot be set up.
    pub fn build(self) -> Result<DifyClient> {
        let base = normalize_base_url(&self.base_url)?;
        let Some(auth) = self.api_key.header().cloned() else {
            return Err(Error::Config("the api key is empty or not a valid header value".into()));
        };
        if self.retry.max_attempts == 0 {
            return Err(Error::Config("max_attempts must be at least 1".into()));
        }
        if self.rate_limit_per_minute == Some(0) {
            return Err(Error::Config("rate_limit_per_minute must be at least 1".into()));
        }

        let connections = Arc::new(AtomicU64::new(0));
        let http = self.http_client(&connections)?;
        let inner = Inner {
            http,
            base,
            auth,
            retry: self.retry,
            budget: RetryBudget::new(self.retry_ratio, self.min_retries_per_sec),
            limiter: self.rate_limit_per_minute.map(RateLimiter::per_minute),
            pause: CloudPause::new(self.rate_limit_window),
            breaker: CircuitBreaker::new(self.breaker_threshold, self.breaker_cool_down),
            metrics: Metrics::new(connections),
            version: std::sync::Mutex::new(None),
        };
        Ok(DifyClient { inner: Arc::new(inner) })
    }

    fn http_client(&self, connections: &Arc<AtomicU64>) -> Result<reqwest::Client> {
        // Installing fails only when a provider is already installed, which
        // is just as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::builder()
            .user_agent(self.user_agent.clone())
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout)
            .pool_idle_timeout(self.pool_idle_timeout)
            .pool_max_idle_per_host(self.pool_max_idle_per_host)
            .tcp_nodelay(true)
            // The API never redirects on purpose; following one would turn
            // a POST into a GET and drop its body, so a 3xx surfaces as an
            // error instead.
            .redirect(reqwest::redirect::Policy::none())
            // reqwest would otherwise resend HTTP/2 refusals by itself, past
            // the pacer, the retry budget and the metrics; the attempt loop
            // resends them instead, as requests that were never processed.
            .retry(reqwest::retry::never())
            .connector_layer(CountingLayer::new(Arc::clone(connections)))
            .build()
            .map_err(Error::Build)
    }
}

/// Accepts `https://host`, `https://host/`, `https://host/v1` and
/// `https://host/v1/` (also under a path prefix) and returns the URL ending
/// in `/v1/`.
fn normalize_base_url(raw: &str) -> Result<Url> {
    let invalid = |why: &str| Error::Config(format!("base url {raw:?} {why}"));
    let mut url = Url::parse(raw.trim()).map_err(|_| invalid("is not a valid url"))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(invalid("must be an http or https url"));
    }
    url.set_query(None);
    url.set_fragment(None);
    let path = url.path().trim_end_matches('/');
    let path = if path.ends_with("/v1") { format!("{path}/") } else { format!("{path}/v1/") };
    url.set_path(&path);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_with_or_without_v1() {
        for raw in ["http://h:5001", "http://h:5001/", "http://h:5001/v1", "http://h:5001/v1/"] {
            assert_eq!(normalize_base_url(raw).unwrap().as_str(), "http://h:5001/v1/", "{raw}");
        }
        assert_eq!(
            normalize_base_url("https://x.org/dify/v1").unwrap().as_str(),
            "https://x.org/dify/v1/"
        );
        assert!(normalize_base_url("ftp://h").is_err());
        assert!(normalize_base_url("not a url").is_err());
    }

    #[test]
    fn build_rejects_bad_settings() {
        let bad = [
            DifyClient::builder("http://127.0.0.1:1", "").build(),
            DifyClient::builder("http://127.0.0.1:1", "k").max_attempts(0).build(),
            DifyClient::builder("http://127.0.0.1:1", "k").rate_limit_per_minute(Some(0)).build(),
            DifyClient::builder("nope", "k").build(),
        ];
        for result in bad {
            assert!(matches!(result, Err(Error::Config(_))), "{result:?}");
        }
    }

    #[test]
    fn debug_output_hides_the_key() {
        let builder = DifyClient::builder("http://127.0.0.1:1", "dataset-SECRETKEY");
        assert!(!format!("{builder:?}").contains("SECRETKEY"));
        let client = builder.build().unwrap();
        assert!(!format!("{client:?}").contains("SECRETKEY"));
    }
}
