//! A typed, pooled and resilient client for Dify's Knowledge Base API.
//!
//! Everything goes through a [`DifyClient`]: one async method per endpoint
//! (datasets, documents, metadata, retrieval, tags), natural-key helpers
//! ([`DifyClient::ensure_dataset`], [`DifyClient::ensure_metadata_field`]),
//! a [`Stream`](futures_util::Stream) over all documents
//! ([`DifyClient::documents`]) and [`DifyClient::metrics`].
//!
//! Under the methods sit the parts that keep a long sync healthy:
//! - one keep-alive pool (rustls, HTTP/2 when offered, TCP_NODELAY) whose
//!   idle timeout stays below Dify's keep-alive so dead pooled connections
//!   are rarely met, and whose failures are classified so a write that may
//!   have arrived is never sent again;
//! - retries with full-jitter backoff, `Retry-After`, a per-request cap and
//!   a shared budget, decided per endpoint by its [`Idempotency`] class so
//!   that a write is never repeated where that could duplicate it;
//! - an optional pacer and a shared pause for Dify Cloud's rate limit;
//! - a circuit breaker that fails fast while Dify is down.
//!
//! Module map: [`types`] (requests and responses), `endpoints` (every
//! route with its retry class), `api` (one method per endpoint),
//! `transport` (the attempt loop), `retry`, `ratelimit`, `breaker`,
//! `metrics`, `connect` (connection counting), `builder`, `error`,
//! `secret` (the redacted key).
#![deny(missing_docs)]

mod api;
mod breaker;
mod builder;
mod client;
mod connect;
mod endpoints;
mod error;
mod metrics;
mod ratelimit;
mod retry;
mod secret;
mod transport;
pub mod types;

pub use api::DocumentStream;
pub use breaker::{CircuitBreaker, Permit, Transition};
pub use builder::{
    DEFAULT_BASE_DELAY, DEFAULT_BREAKER_COOL_DOWN, DEFAULT_BREAKER_THRESHOLD,
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_DELAY, DEFAULT_MAX_RETRY_AFTER,
    DEFAULT_MIN_RETRIES_PER_SEC, DEFAULT_POOL_IDLE_TIMEOUT, DEFAULT_POOL_MAX_IDLE_PER_HOST,
    DEFAULT_RATE_LIMIT_WINDOW, DEFAULT_RETRY_RATIO, DEFAULT_TIMEOUT, DifyClientBuilder,
};
pub use client::DifyClient;
pub use error::{ApiError, Error, Result};
pub use metrics::{LatencySummary, MetricsSnapshot};
pub use ratelimit::{CloudPause, RateLimiter};
pub use retry::{Idempotency, RetryBudget, RetryPolicy, parse_retry_after};
pub use secret::ApiKey;
pub use types::*;
