//! The client handle and the state its clones share.
//!
//! A [`DifyClient`] is an `Arc` around one connection pool, one retry
//! budget, one breaker, one rate limiter and one set of metrics: clones are
//! cheap and every clone sees the same health of the server, which is what
//! makes the breaker and the rate-limit pause work across concurrent tasks.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use http::HeaderValue;
use url::Url;

use crate::breaker::CircuitBreaker;
use crate::builder::DifyClientBuilder;
use crate::metrics::{Metrics, MetricsSnapshot};
use crate::ratelimit::{CloudPause, RateLimiter};
use crate::retry::{RetryBudget, RetryPolicy};
use crate::secret::ApiKey;

/// A client for Dify's Knowledge Base API.
///
/// ```no_run
/// # async fn run() -> Result<(), dify_client::Error> {
/// use dify_client::{CreateDatasetRequest, DifyClient, IndexingTechnique};
///
/// let client = DifyClient::builder("https://dify.example.com", "dataset-...").build()?;
/// let mut request = CreateDatasetRequest::new("docs");
/// request.indexing_technique = Some(IndexingTechnique::Economy);
/// let dataset = client.ensure_dataset("docs", &request).await?;
/// println!("{} has {:?} documents", dataset.name, dataset.document_count);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct DifyClient {
    pub(crate) inner: Arc<Inner>,
}

/// State shared by all clones.
pub(crate) struct Inner {
    pub(crate) http: reqwest::Client,
    /// Ends in `/v1/`.
    pub(crate) base: Url,
    /// Sensitive `Bearer` header value.
    pub(crate) auth: HeaderValue,
    pub(crate) retry: RetryPolicy,
    pub(crate) budget: RetryBudget,
    pub(crate) limiter: Option<RateLimiter>,
    pub(crate) pause: CloudPause,
    pub(crate) breaker: CircuitBreaker,
    pub(crate) metrics: Metrics,
    /// Last `X-Version` seen.
    pub(crate) version: Mutex<Option<String>>,
}

impl DifyClient {
    /// Starts configuring a client for `base_url` (with or without a
    /// trailing `/v1`) and a dataset API key.
    pub fn builder(base_url: impl Into<String>, api_key: impl Into<ApiKey>) -> DifyClientBuilder {
        DifyClientBuilder::new(base_url, api_key)
    }

    /// The API base, ending in `/v1/`.
    pub fn base_url(&self) -> &Url {
        &self.inner.base
    }

    /// The Dify version from the last response's `X-Version` header.
    pub fn server_version(&self) -> Option<String> {
        self.inner.version.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// A copy of the counters: requests by route and status, retries,
    /// breaker trips, rate-limit pauses, connections opened and latency.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.inner.metrics.snapshot()
    }

    /// The URL of `segments` below the base, each segment percent-encoded so
    /// that an id can never change the route.
    pub(crate) fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.inner.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    pub(crate) fn remember_version(&self, version: &str) {
        let mut current = self.inner.version.lock().unwrap_or_else(PoisonError::into_inner);
        if current.as_deref() != Some(version) {
            *current = Some(version.to_owned());
        }
    }
}

impl fmt::Debug for DifyClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DifyClient")
            .field("base_url", &self.inner.base.as_str())
            .field("api_key", &"<redacted>")
            .finish_non_exhaustive()
    }
}
