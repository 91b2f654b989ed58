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
use crate::error::{Error, Result};
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

    /// The URL of `segments` below the base.
    ///
    /// Segments are percent-encoded, but the URL parser drops `.` and `..`
    /// segments and an empty one would collapse, and Dify's router decodes
    /// an encoded `/`; any of those in an id would call a different route
    /// (an empty document id, for one, turns a read into a list). So such
    /// segments are refused before anything is sent.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] naming `action` for an unusable segment.
    pub(crate) fn url(&self, action: &str, segments: &[&str]) -> Result<Url> {
        if let Some(bad) = segments.iter().find(|segment| !usable_segment(segment)) {
            return Err(Error::InvalidInput {
                action: action.to_owned(),
                reason: format!(
                    "{bad:?} cannot be used as an id: ids must not be empty, \".\" or \"..\", \
                     or contain a slash"
                ),
            });
        }
        let mut url = self.inner.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        Ok(url)
    }

    pub(crate) fn remember_version(&self, version: &str) {
        let mut current = self.inner.version.lock().unwrap_or_else(PoisonError::into_inner);
        if current.as_deref() != Some(version) {
            *current = Some(version.to_owned());
        }
    }
}

/// Whether `segment` stays one path segment however the URL is parsed
/// and routed.
fn usable_segment(segment: &str) -> bool {
    !segment.is_empty() && segment != "." && segment != ".." && !segment.contains(['/', '\\'])
}

impl fmt::Debug for DifyClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DifyClient")
            .field("base_url", &self.inner.base.as_str())
            .field("api_key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_would_change_the_route_are_refused() {
        let client = DifyClient::builder("http://127.0.0.1:1", "k").build().unwrap();
        for bad in ["", ".", "..", "a/b", "a\\b"] {
            let error = client.url("reading document", &["datasets", bad]).unwrap_err();
            assert!(matches!(error, Error::InvalidInput { .. }), "{bad:?}");
            assert!(error.to_string().starts_with("reading document: "), "{error}");
        }
        let url = client.url("reading", &["datasets", "a b?c", "..."]).unwrap();
        assert_eq!(url.path(), "/v1/datasets/a%20b%3Fc/...");
    }
}
