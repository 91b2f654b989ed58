//! Settings of the Dify sink, with their defaults as constants the CLI
//! reuses.
//!
//! Everything is checked by [`DifySinkOptions::validate`] when the sink
//! connects, before the first request: a bad chunk size or concurrency is a
//! configuration error at start, not a failure per page later.

use std::time::Duration;

use dify_client::{IndexingTechnique, Permission};
use serde::Serialize;

use super::SyncError;
use crate::chunking::ChunkingConfig;

/// Default number of Dify writes in flight at once.
pub const DEFAULT_WRITE_CONCURRENCY: usize = 4;
/// Default number of documents per metadata assignment call.
pub const DEFAULT_METADATA_BATCH_SIZE: usize = 50;
/// Default number of complete runs that must miss a page before pruning.
pub const DEFAULT_PRUNE_AFTER_MISSED_RUNS: u32 = 2;
/// Default largest share of a knowledge base's documents one run may prune
/// for not having been seen.
pub const DEFAULT_PRUNE_MAX_SHARE: f64 = 0.5;
/// Default first pause between indexing-status polls.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Default longest wait for indexing before reporting what is unfinished.
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Largest write concurrency accepted; Dify's gunicorn workers saturate
/// long before.
pub const MAX_WRITE_CONCURRENCY: usize = 64;

/// What pruning does to a document whose page is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PruneMode {
    /// Delete the document.
    #[default]
    Delete,
    /// Disable it (kept in Dify, out of retrieval; enabled again if the page
    /// returns).
    Disable,
}

/// When documents of vanished pages are removed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PruneOptions {
    /// Whether to prune at all. Default is `false`.
    pub enabled: bool,
    /// Delete or disable. Default is [`PruneMode::Delete`].
    pub mode: PruneMode,
    /// Complete runs that must miss a page before its document goes.
    /// Pages answering 404 or 410 go at once. Default is
    /// [`DEFAULT_PRUNE_AFTER_MISSED_RUNS`].
    pub after_missed_runs: u32,
    /// Safety valve: when pages not seen would take more than this share
    /// (0.0 to 1.0) of a knowledge base's documents, none is pruned for not
    /// being seen in that run (a broken crawl looks exactly like that).
    /// Pages answering 404/410 are pruned regardless. Default is
    /// [`DEFAULT_PRUNE_MAX_SHARE`]; 1.0 turns the valve off.
    pub max_share: f64,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            enabled: false,
            mode: PruneMode::default(),
            after_missed_runs: DEFAULT_PRUNE_AFTER_MISSED_RUNS,
            max_share: DEFAULT_PRUNE_MAX_SHARE,
        }
    }
}

/// Settings of a [`DifySink`](super::DifySink).
#[derive(Debug, Clone)]
pub struct DifySinkOptions {
    /// Technique of knowledge bases this tool creates. Default is
    /// [`IndexingTechnique::Economy`] (works without an embedding model).
    /// An existing knowledge base keeps its own.
    pub indexing_technique: IndexingTechnique,
    /// Visibility of created knowledge bases. Default is
    /// [`Permission::OnlyMe`].
    pub permission: Permission,
    /// Description of created knowledge bases. Default is none.
    pub description: Option<String>,
    /// How pages are chunked. Default is [`ChunkingConfig::default`].
    pub chunking: ChunkingConfig,
    /// Dify writes in flight at once. Default is
    /// [`DEFAULT_WRITE_CONCURRENCY`].
    pub write_concurrency: usize,
    /// Documents per metadata assignment call. Default is
    /// [`DEFAULT_METADATA_BATCH_SIZE`].
    pub metadata_batch_size: usize,
    /// Pruning of vanished pages. Default is off.
    pub prune: PruneOptions,
    /// Wait in [`DifySink::finish`](super::DifySink::finish) until Dify
    /// has indexed every written document. Default is `false`.
    pub wait_for_indexing: bool,
    /// First pause between indexing polls (doubles up to 8x). Default is
    /// [`DEFAULT_POLL_INTERVAL`].
    pub poll_interval: Duration,
    /// Longest wait for indexing. Default is [`DEFAULT_WAIT_TIMEOUT`].
    pub wait_timeout: Duration,
    /// Plan without writing to Dify or the store (open the store with
    /// [`StateStore::open_read_only`](crate::state::StateStore::open_read_only)
    /// so it is not even created). Default is `false`.
    pub dry_run: bool,
}

impl Default for DifySinkOptions {
    fn default() -> Self {
        DifySinkOptions {
            indexing_technique: IndexingTechnique::Economy,
            permission: Permission::OnlyMe,
            description: None,
            chunking: ChunkingConfig::default(),
            write_concurrency: DEFAULT_WRITE_CONCURRENCY,
            metadata_batch_size: DEFAULT_METADATA_BATCH_SIZE,
            prune: PruneOptions::default(),
            wait_for_indexing: false,
            poll_interval: DEFAULT_POLL_INTERVAL,
            wait_timeout: DEFAULT_WAIT_TIMEOUT,
            dry_run: false,
        }
    }
}

impl DifySinkOptions {
    /// Checks every setting before the first request.
    ///
    /// # Errors
    /// [`SyncError::Chunking`] or [`SyncError::Options`].
    pub fn validate(&self) -> Result<(), SyncError> {
        self.chunking.validate()?;
        if !(1..=MAX_WRITE_CONCURRENCY).contains(&self.write_concurrency) {
            let got = self.write_concurrency;
            return Err(SyncError::Options(format!(
                "write_concurrency is {got}, expected 1..={MAX_WRITE_CONCURRENCY}"
            )));
        }
        if self.metadata_batch_size == 0 {
            return Err(SyncError::Options("metadata_batch_size must be at least 1".into()));
        }
        if matches!(self.indexing_technique, IndexingTechnique::Other) {
            return Err(SyncError::Options(
                "indexing_technique must be economy or high_quality".into(),
            ));
        }
        if !(0.0..=1.0).contains(&self.prune.max_share) {
            let got = self.prune.max_share;
            return Err(SyncError::Options(format!(
                "prune max_share is {got}, expected 0.0..=1.0"
            )));
        }
        if self.description.as_ref().is_some_and(|d| d.chars().count() > 400) {
            return Err(SyncError::Options("description is longer than 400 characters".into()));
        }
        Ok(())
    }
}
