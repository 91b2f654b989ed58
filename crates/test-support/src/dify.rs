//! A Dify-compatible Knowledge API server for tests and benchmarks.
//!
//! [`DifyServer`] answers the `/v1/datasets…` routes an ingestion tool uses
//! the way a self-hosted Dify 1.13.2 does (status codes, error `code`s, JSON
//! field names, the same-name replacement rule, asynchronous indexing),
//! checked against recorded exchanges by `tests/conformance.rs`.
//!
//! It is built on hyper with its own accept loop so that tests can observe
//! and disturb the transport, not just the payloads: connections are counted,
//! idle keep-alive connections can be closed (as gunicorn does after ~2 s,
//! or at the very moment a request arrives on one, the race a pooled client
//! must survive), and a seeded [`FaultPlan`] can fail, stall or drop
//! requests before or after their write is applied. Counters ([`ServerStats`]) and state views
//! ([`DatasetView`], [`DocumentView`]) let tests assert on what the server
//! actually saw and stored.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use std::time::Duration;
//! use test_support::dify::{routes, DifyServer, Fault, FaultPlan, FaultRule};
//!
//! // Idle keep-alive connections die after 2 s, as behind gunicorn; the
//! // first create-by-text is applied but its answer is lost.
//! let server = DifyServer::builder()
//!     .idle_timeout(Some(Duration::from_secs(2)))
//!     .faults(FaultPlan::new(7, vec![
//!         FaultRule::once(Some(routes::CREATE_BY_TEXT), Fault::DropAfter),
//!     ]))
//!     .start()
//!     .await?;
//! // ... point a client at server.base_url() with server.api_key() ...
//! assert!(server.stats().faults("drop_after") <= 1);
//! # Ok(()) }
//! ```
//!
//! Behaviour worth knowing when writing tests against it:
//!
//! - Documents are `waiting` right after a write and `completed` once
//!   [`DifyServerBuilder::indexing_delay`] has passed *and* a later request
//!   looks (with the default zero delay: the very next request).
//!   [`DifyServer::complete_all_indexing`] finishes everything at once.
//! - Enable/disable/archive start a background task, as on Dify; another
//!   status change on the same document before the indexing delay has
//!   passed answers 400 `invalid_action` "…is being indexed…".
//! - Retrieval is keyword search over the chunks; semantic search on an
//!   economy knowledge base fails as it does on Dify.
//! - Tags work (the recorded 1.13.2 server failed them with 400).
//! - Ids and batches come from an RNG seeded by [`DifyServerBuilder::seed`].

mod faults;
mod reply;
pub mod routes;
mod server;
mod store;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub use faults::{Fault, FaultPlan, FaultRule};

use server::Shared;

/// The API key a server accepts unless the builder sets another.
pub const TEST_API_KEY: &str = "dataset-test0000000000000000";

/// A running test server. Dropping it stops accepting and closes every
/// connection.
pub struct DifyServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for DifyServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The API key is left out on purpose.
        f.debug_struct("DifyServer").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl DifyServer {
    /// Starts a server with the default settings on `127.0.0.1`, port 0.
    pub async fn start() -> std::io::Result<DifyServer> {
        DifyServer::builder().start().await
    }

    /// A builder for a server with non-default settings.
    pub fn builder() -> DifyServerBuilder {
        DifyServerBuilder::default()
    }

    /// The API base URL, `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API key the server accepts.
    pub fn api_key(&self) -> &str {
        &self.shared.config.api_key
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> ServerStats {
        self.shared.stats_snapshot()
    }

    /// Sets every counter back to zero.
    pub fn reset_stats(&self) {
        self.shared.reset_stats();
    }

    /// Replaces the fault plan; its RNG and rule counters start afresh.
    pub fn set_faults(&self, plan: FaultPlan) {
        self.shared.set_faults(Some(plan));
    }

    /// Removes the fault plan.
    pub fn clear_faults(&self) {
        self.shared.set_faults(None);
    }

    /// Turns Dify Cloud's rate limit on (`Some(per_minute)`), changes it, or
    /// turns it off, as [`DifyServerBuilder::cloud_rate_limit`] would have at
    /// start. The sliding window starts empty.
    pub fn set_cloud_rate_limit(&self, per_minute: Option<u32>) {
        self.shared.set_cloud_rate_limit(per_minute);
    }

    /// Arms the keep-alive race `times` times: the next `times` requests
    /// that arrive on a kept-alive connection (one that has served a request
    /// and is idle) find it closed at the moment they arrive, without a byte
    /// of them read, as when gunicorn's keep-alive timer fires just as a
    /// client reuses the connection. Those requests are never processed or
    /// counted as requests; [`ServerStats::connections_closed_on_arrival`]
    /// counts them. A new connection's first request is never affected.
    pub fn close_idle_on_arrival(&self, times: u64) {
        self.shared.arm_close_on_arrival(times);
    }

    /// Every knowledge base, oldest first.
    pub fn datasets(&self) -> Vec<DatasetView> {
        self.shared.with_store(|store| store.dataset_views())
    }

    /// The documents of a knowledge base, by position (empty if it does not
    /// exist).
    pub fn documents(&self, dataset_id: &str) -> Vec<DocumentView> {
        self.shared.with_store(|store| store.document_views(dataset_id))
    }

    /// The knowledge base with this exact name.
    pub fn dataset_by_name(&self, name: &str) -> Option<DatasetView> {
        self.datasets().into_iter().find(|d| d.name == name)
    }

    /// Finishes the indexing of every document now, whatever the
    /// configured delay.
    pub fn complete_all_indexing(&self) {
        self.shared.with_store(|store| store.complete_all_indexing());
    }

    /// Enables or disables a document directly, bypassing the API's checks
    /// (no-op for unknown ids).
    pub fn set_document_enabled(&self, dataset_id: &str, document_id: &str, enabled: bool) {
        self.shared
            .with_store(|store| store.set_document_enabled(dataset_id, document_id, enabled));
    }
}

impl Drop for DifyServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Settings for a [`DifyServer`].
#[must_use]
#[derive(Clone)]
pub struct DifyServerBuilder {
    config: Config,
    faults: Option<FaultPlan>,
}

impl std::fmt::Debug for DifyServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DifyServerBuilder")
            .field("idle_timeout", &self.config.idle_timeout)
            .field("latency", &self.config.latency)
            .field("indexing_delay", &self.config.indexing_delay)
            .field("cloud_rate_limit", &self.config.cloud_rate_limit)
            .field("seed", &self.config.seed)
            .finish_non_exhaustive()
    }
}

/// Server settings fixed at start.
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) api_key: String,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) latency: Duration,
    pub(crate) indexing_delay: Duration,
    pub(crate) cloud_rate_limit: Option<u32>,
    pub(crate) seed: u64,
}

impl Default for DifyServerBuilder {
    fn default() -> Self {
        DifyServerBuilder {
            config: Config {
                api_key: TEST_API_KEY.to_owned(),
                idle_timeout: None,
                latency: Duration::ZERO,
                indexing_delay: Duration::ZERO,
                cloud_rate_limit: None,
                seed: 0,
            },
            faults: None,
        }
    }
}

impl DifyServerBuilder {
    /// The accepted API key. Default: [`TEST_API_KEY`].
    pub fn api_key(mut self, key: &str) -> Self {
        self.config.api_key = key.to_owned();
        self
    }

    /// Closes keep-alive connections idle this long, as gunicorn does after
    /// about 2 s. Default: `None` (kept open).
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.idle_timeout = timeout;
        self
    }

    /// Delay added before each response. Default: zero.
    pub fn latency(mut self, latency: Duration) -> Self {
        self.config.latency = latency;
        self
    }

    /// How long a created or updated document stays `waiting` before it is
    /// `completed`. Default: zero (the create response says `waiting`, the
    /// next request that looks sees `completed`).
    pub fn indexing_delay(mut self, delay: Duration) -> Self {
        self.config.indexing_delay = delay;
        self
    }

    /// Emulates Dify Cloud's knowledge request rate limit: at most this many
    /// counted requests per sliding 60 s window, rejected ones included,
    /// answered with 403 `forbidden` and no `Retry-After`. Default: `None`
    /// (self-hosted: no limit).
    pub fn cloud_rate_limit(mut self, per_minute: Option<u32>) -> Self {
        self.config.cloud_rate_limit = per_minute;
        self
    }

    /// The initial fault plan. Default: none.
    pub fn faults(mut self, plan: FaultPlan) -> Self {
        self.faults = Some(plan);
        self
    }

    /// Seed for generated ids and batches, so runs are reproducible.
    /// Default: 0.
    pub fn seed(mut self, seed: u64) -> Self {
        self.config.seed = seed;
        self
    }

    /// Binds `127.0.0.1:0` and starts serving.
    pub async fn start(self) -> std::io::Result<DifyServer> {
        let shutdown = CancellationToken::new();
        let (shared, addr) = server::spawn(self.config, self.faults, shutdown.clone()).await?;
        Ok(DifyServer { shared, addr, shutdown })
    }
}

/// A snapshot of the server's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// TCP connections accepted.
    pub connections_accepted: u64,
    /// Keep-alive connections the server closed for being idle.
    pub connections_closed_idle: u64,
    /// Kept-alive connections closed as a request arrived on them (see
    /// [`DifyServer::close_idle_on_arrival`]).
    pub connections_closed_on_arrival: u64,
    /// Requests received, whatever their outcome.
    pub requests_total: u64,
    /// Requests per route key (see [`routes`]); unknown paths are not listed.
    pub requests_by_route: BTreeMap<String, u64>,
    /// Responses sent, per status code (dropped requests send none).
    pub responses_by_status: BTreeMap<u16, u64>,
    /// Faults injected, per [`Fault::kind`] name.
    pub faults_injected: BTreeMap<String, u64>,
}

impl ServerStats {
    /// Requests received on `route` (a [`routes`] constant).
    pub fn requests(&self, route: &str) -> u64 {
        self.requests_by_route.get(route).copied().unwrap_or(0)
    }

    /// Responses sent with `status`.
    pub fn responses(&self, status: u16) -> u64 {
        self.responses_by_status.get(&status).copied().unwrap_or(0)
    }

    /// Faults of `kind` (a [`Fault::kind`] name) injected.
    pub fn faults(&self, kind: &str) -> u64 {
        self.faults_injected.get(kind).copied().unwrap_or(0)
    }
}

/// A knowledge base as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetView {
    /// Server-assigned UUID.
    pub id: String,
    /// Name, unique in the workspace.
    pub name: String,
    /// Description.
    pub description: String,
    /// `economy`, `high_quality`, or `None` until the first document.
    pub indexing_technique: Option<String>,
    /// `text_model` etc., `None` until the first document.
    pub doc_form: Option<String>,
    /// Permission, `only_me` by default.
    pub permission: String,
    /// Whether the built-in metadata fields are enabled.
    pub built_in_field_enabled: bool,
    /// Custom metadata fields, in creation order.
    pub metadata_fields: Vec<MetadataFieldView>,
    /// Names of the tags bound to it.
    pub tags: Vec<String>,
    /// Number of documents.
    pub document_count: usize,
}

/// A custom metadata field of a knowledge base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataFieldView {
    /// Server-assigned UUID.
    pub id: String,
    /// Field name.
    pub name: String,
    /// `string`, `number` or `time`.
    pub field_type: String,
}

/// A document as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentView {
    /// Server-assigned UUID, kept across same-name replacement.
    pub id: String,
    /// Position in the knowledge base (1-based).
    pub position: u64,
    /// Name (create paths truncate to 200 characters).
    pub name: String,
    /// Current text (for file documents, the file body as UTF-8, lossy).
    pub text: String,
    /// Whether it is enabled.
    pub enabled: bool,
    /// Whether it is archived.
    pub archived: bool,
    /// `waiting`, `completed` or `error`, as a client would see it now.
    pub indexing_status: String,
    /// `queuing`, `available`, `disabled`, `archived` or `error`.
    pub display_status: String,
    /// Batch id of the latest create (update-by-text keeps it).
    pub batch: String,
    /// `text_model`, `hierarchical_model` or `qa_model`.
    pub doc_form: String,
    /// Stored metadata values by field name.
    pub doc_metadata: BTreeMap<String, Value>,
    /// The process rule in effect, `{mode, rules}`.
    pub process_rule: Value,
    /// Creation time, Unix seconds.
    pub created_at: i64,
    /// Last update time, Unix seconds.
    pub updated_at: i64,
    /// Number of chunks.
    pub segment_count: usize,
    /// How many times this id was written (create, replace, update).
    pub write_count: u64,
}
