//! What the sink reports: per-page outcomes and per-run summaries.

use std::collections::BTreeMap;

use dify_client::MetricsSnapshot;
use serde::Serialize;

/// What [`DifySink::submit`](super::DifySink::submit) did with a page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncOutcome {
    /// A new document was created.
    Created,
    /// The document's content was replaced.
    Updated,
    /// Only the descriptive metadata changed and was queued.
    MetadataUpdated,
    /// Dify already holds this content; no write.
    Unchanged,
    /// The document was disabled, archived or renamed by a user and was
    /// left alone.
    Blocked {
        /// Why, as recorded in the store.
        reason: String,
    },
    /// Dry run: what would have happened.
    DryRun(PlannedAction),
}

/// A dry run's plan for a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlannedAction {
    /// Create a document.
    Create,
    /// Update the document's content.
    Update,
    /// Update the document's metadata only.
    UpdateMetadata,
    /// Nothing to do.
    Unchanged,
    /// Left alone (disabled or archived in Dify).
    Blocked,
}

/// A document Dify failed to index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IndexingFailure {
    /// The page URL.
    pub url: String,
    /// Dify's error.
    pub error: String,
}

/// Where a page that is not synced at the end of a run got stuck.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnsyncedStage {
    /// Its content is in Dify but its metadata is not (refused, queued, or
    /// the document vanished before it was set).
    Metadata,
    /// Its indexing was not confirmed while waiting (`--wait`).
    Index,
}

/// A page that is not synced at the end of a run, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnsyncedPage {
    /// The page URL.
    pub url: String,
    /// Where it got stuck.
    pub stage: UnsyncedStage,
    /// Why, and what to do.
    pub reason: String,
}

/// Counters of one knowledge base.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KbSummary {
    /// Documents created.
    pub created: u64,
    /// Documents whose content was replaced.
    pub updated: u64,
    /// Documents whose metadata alone was updated.
    pub metadata_updated: u64,
    /// Pages already in Dify (equal hash or 304).
    pub unchanged: u64,
    /// Pages that failed to sync (recorded for `retry`).
    pub failed: u64,
    /// Pages left alone because their document is disabled or archived.
    pub blocked: u64,
    /// Documents that vanished from Dify mid-run (re-created by `retry`).
    pub lost: u64,
    /// Documents deleted or disabled by pruning.
    pub pruned: u64,
    /// Metadata assignments still queued after the run.
    pub metadata_pending: u64,
    /// Documents whose indexing failed (`--wait`).
    pub indexing_failed: Vec<IndexingFailure>,
    /// Documents still indexing when the wait ended (`--wait`).
    pub indexing_unfinished: u64,
    /// Dry-run plans by action.
    pub planned: BTreeMap<String, u64>,
    /// Pages whose write succeeded but which are not synced at the end of
    /// the run (metadata refused or still queued, document lost, indexing
    /// unconfirmed), each with what to do.
    pub unsynced: Vec<UnsyncedPage>,
}

impl KbSummary {
    pub(crate) fn add(&mut self, outcome: &SyncOutcome) {
        match outcome {
            SyncOutcome::Created => self.created += 1,
            SyncOutcome::Updated => self.updated += 1,
            SyncOutcome::MetadataUpdated => self.metadata_updated += 1,
            SyncOutcome::Unchanged => self.unchanged += 1,
            SyncOutcome::Blocked { .. } => self.blocked += 1,
            SyncOutcome::DryRun(action) => {
                let key = serde_json::to_value(action)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                *self.planned.entry(key).or_default() += 1;
            }
        }
    }

    /// Whether any page of this knowledge base needs attention (exit 2).
    pub fn has_failures(&self) -> bool {
        self.failed > 0
            || self.blocked > 0
            || self.lost > 0
            || self.metadata_pending > 0
            || self.indexing_unfinished > 0
            || !self.indexing_failed.is_empty()
            || !self.unsynced.is_empty()
    }
}

/// The result of [`DifySink::finish`](super::DifySink::finish).
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncSummary {
    /// Counters per knowledge base name.
    pub knowledge_bases: BTreeMap<String, KbSummary>,
    /// Whether the crawl covered the whole site (pruning by missed runs
    /// only then).
    pub crawl_complete: bool,
    /// Whether nothing was written.
    pub dry_run: bool,
    /// The Dify client's counters.
    pub dify: MetricsSnapshot,
}

impl SyncSummary {
    /// Whether any page needs attention (exit code 2).
    pub fn has_failures(&self) -> bool {
        self.knowledge_bases.values().any(KbSummary::has_failures)
    }
}

/// The result of [`DifySink::retry_pending`](super::DifySink::retry_pending).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RetrySummary {
    /// Pages resent.
    pub attempted: usize,
    /// Documents created.
    pub created: usize,
    /// Documents updated.
    pub updated: usize,
    /// Pages found already in Dify.
    pub unchanged: usize,
    /// Pages left alone (disabled or archived).
    pub blocked: usize,
    /// Pages that failed again.
    pub failed: usize,
}

impl RetrySummary {
    pub(crate) fn add(&mut self, outcome: &SyncOutcome) {
        match outcome {
            SyncOutcome::Created => self.created += 1,
            SyncOutcome::Updated | SyncOutcome::MetadataUpdated => self.updated += 1,
            SyncOutcome::Unchanged | SyncOutcome::DryRun(_) => self.unchanged += 1,
            SyncOutcome::Blocked { .. } => self.blocked += 1,
        }
    }
}

/// The result of [`DifySink::reconcile`](super::DifySink::reconcile), per
/// knowledge base.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReconcileSummary {
    /// Counters per knowledge base name.
    pub knowledge_bases: BTreeMap<String, ReconcileCounts>,
}

/// Reconciliation counters of one knowledge base.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReconcileCounts {
    /// Documents listed.
    pub documents: u64,
    /// Documents whose `source_url` names their page (which gets a store
    /// row, except in a dry run).
    pub matched: u64,
    /// Documents without a usable `source_url` (kept by name only).
    pub unmatched: u64,
    /// Names held by more than one document (duplicates made outside this
    /// tool, or before it).
    pub duplicate_names: u64,
    /// Store rows whose document was not listed (deleted in Dify), cleared
    /// so their pages are created again (explicit reconcile only).
    pub cleared: u64,
    /// The knowledge base does not exist in Dify.
    pub missing: bool,
}
