//! The end of a run: flush queued metadata, prune what is safe to prune,
//! wait for indexing, and sum up.
//!
//! Pruning never trusts an incomplete crawl: a page the site answered 404 or
//! 410 for is pruned in any run, but a page that was merely not seen counts
//! only when the crawl finished without hitting a limit, and only after
//! `after_missed_runs` such runs of its knowledge base.

use std::collections::HashMap;
use std::time::Duration;

use dify_client::{DocumentAction, IndexingStatus, ListDocumentsQuery};
use futures_util::StreamExt;

use super::error::classify;
use super::outcome::{IndexingFailure, SyncSummary};
use super::{DifySink, Inner, KbHandle, PruneMode, SyncError, error_chain, lock};
use crate::state::PruneCandidate;

impl DifySink {
    /// Ends the run: sends all queued metadata (this run's and any left by
    /// an earlier one), prunes when enabled, waits for indexing when asked,
    /// and records the run.
    ///
    /// `crawl_complete` says the crawl covered the whole site without
    /// hitting a page or depth limit; only then do pages missing from it
    /// count towards pruning.
    ///
    /// # Errors
    /// Fatal errors only; per-document problems are in the summary.
    pub async fn finish(&self, crawl_complete: bool) -> Result<SyncSummary, SyncError> {
        let inner = &self.inner;
        if !inner.options.dry_run {
            inner.flush_all().await?;
            if inner.options.prune.enabled {
                inner.prune(crawl_complete).await?;
            }
            if inner.options.wait_for_indexing {
                inner.wait_for_indexing().await?;
            }
        }

        let summary = inner.summary(crawl_complete)?;
        if !inner.options.dry_run {
            let json = serde_json::to_string(&summary).unwrap_or_default();
            inner.store.finish_run(inner.run, crawl_complete, &json)?;
        }
        tracing::info!(run = inner.run.0, failures = summary.has_failures(), "sync run finished");
        Ok(summary)
    }
}

impl Inner {
    fn known_handles(&self) -> Vec<std::sync::Arc<KbHandle>> {
        lock(&self.kbs).values().filter_map(|cell| cell.get().cloned()).collect()
    }

    /// Flushes every dataset with queued metadata, resolving knowledge bases
    /// not used in this run from the store.
    async fn flush_all(&self) -> Result<(), SyncError> {
        let handles: HashMap<String, std::sync::Arc<KbHandle>> =
            self.known_handles().into_iter().map(|kb| (kb.dataset_id.clone(), kb)).collect();
        for dataset_id in self.store.datasets_with_pending_metadata()? {
            let handle = match handles.get(&dataset_id) {
                Some(handle) => handle.clone(),
                None => match self.store.knowledge_base_of(&dataset_id)? {
                    Some(name) => self.kb(&name).await?,
                    None => continue,
                },
            };
            self.flush_metadata(&handle, false).await?;
        }
        Ok(())
    }

    async fn prune(&self, crawl_complete: bool) -> Result<(), SyncError> {
        let missed = crawl_complete.then_some(self.options.prune.after_missed_runs);
        let mut names: Vec<String> = lock(&self.covered).iter().cloned().collect();
        names.extend(self.store.knowledge_bases_with_gone_pages()?);
        names.sort();
        names.dedup();
        for name in names {
            let kb = self.kb(&name).await?;
            if kb.missing {
                continue;
            }
            let candidates = self.store.prune_candidates(&kb.name, self.run, missed)?;
            for candidate in candidates {
                if self.prune_one(&kb, &candidate).await? {
                    lock(&self.counters).entry(kb.name.clone()).or_default().pruned += 1;
                }
            }
        }
        Ok(())
    }

    /// Deletes or disables one document; `true` when it is gone from
    /// retrieval.
    async fn prune_one(
        &self,
        kb: &KbHandle,
        candidate: &PruneCandidate,
    ) -> Result<bool, SyncError> {
        let document_id = match &candidate.document_id {
            Some(id) => Some(id.clone()),
            None => self.find_by_name(kb, &candidate.document_name).await?,
        };
        let Some(document_id) = document_id else {
            self.store.forget(&candidate.url)?;
            return Ok(false);
        };

        let result = match self.options.prune.mode {
            PruneMode::Delete => self.client.delete_document(&kb.dataset_id, &document_id).await,
            PruneMode::Disable => {
                let ids = [document_id.clone()];
                let disabled =
                    self.client.set_documents_status(&kb.dataset_id, DocumentAction::Disable, &ids);
                disabled.await.map(drop)
            }
        };
        match result {
            Ok(()) => {}
            Err(error) if error.is_not_found() => {}
            Err(error) => {
                let error = classify(error)?;
                tracing::warn!(url = %candidate.url, error = %error_chain(&error),
                    "could not prune document; trying again next run");
                return Ok(false);
            }
        }

        tracing::info!(url = %candidate.url, reason = ?candidate.reason, "pruned document");
        match self.options.prune.mode {
            PruneMode::Delete => self.store.forget(&candidate.url)?,
            PruneMode::Disable => self.store.record_disabled_by_sync(&candidate.url)?,
        }
        Ok(true)
    }

    /// A document id by exact name, for pages whose create was cut off
    /// before its id was recorded.
    async fn find_by_name(&self, kb: &KbHandle, name: &str) -> Result<Option<String>, SyncError> {
        let query = ListDocumentsQuery {
            keyword: Some(name.to_string()),
            limit: Some(100),
            ..ListDocumentsQuery::default()
        };
        match self.client.list_documents(&kb.dataset_id, &query).await {
            Ok(page) => Ok(page.data.into_iter().find(|d| d.name == name).map(|d| d.id)),
            Err(error) => {
                let error = classify(error)?;
                tracing::warn!(name, error = %error_chain(&error), "could not look up document");
                Ok(None)
            }
        }
    }

    /// Polls each batch written this run until Dify has indexed it.
    async fn wait_for_indexing(&self) -> Result<(), SyncError> {
        let mut pending: Vec<(String, String)> = std::mem::take(&mut *lock(&self.batches));
        pending.sort();
        pending.dedup();
        let deadline = tokio::time::Instant::now() + self.options.wait_timeout;
        let mut pause = self.options.poll_interval;
        tracing::info!(batches = pending.len(), "waiting for indexing");

        while !pending.is_empty() {
            pending = self.poll_round(pending).await?;
            if pending.is_empty() || tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(self.options.poll_interval * 8).max(Duration::from_millis(1));
        }

        for (dataset_id, _) in &pending {
            if let Some(name) = self.store.knowledge_base_of(dataset_id)? {
                lock(&self.counters).entry(name).or_default().indexing_unfinished += 1;
            }
        }
        Ok(())
    }

    /// Polls every batch once, `write_concurrency` at a time; returns the
    /// batches still indexing.
    async fn poll_round(
        &self,
        batches: Vec<(String, String)>,
    ) -> Result<Vec<(String, String)>, SyncError> {
        let polls = futures_util::stream::iter(batches).map(|(dataset_id, batch)| async move {
            let finished = self.poll_batch(&dataset_id, &batch).await?;
            Ok::<_, SyncError>((!finished).then_some((dataset_id, batch)))
        });
        let mut polls = polls.buffer_unordered(self.options.write_concurrency);
        let mut unfinished = Vec::new();
        while let Some(result) = polls.next().await {
            unfinished.extend(result?);
        }
        Ok(unfinished)
    }

    /// Reads one batch; `true` when every document in it is finished.
    async fn poll_batch(&self, dataset_id: &str, batch: &str) -> Result<bool, SyncError> {
        let status = match self.client.indexing_status(dataset_id, batch).await {
            Ok(status) => status,
            // A later same-name create replaced this batch; that write is
            // tracked under its own batch.
            Err(error) if error.is_not_found() => return Ok(true),
            Err(error) => {
                let error = classify(error)?;
                tracing::debug!(batch, error = %error_chain(&error), "indexing status unavailable");
                return Ok(false);
            }
        };

        let mut finished = true;
        for document in status.data {
            let state = document.indexing_status.unwrap_or(IndexingStatus::Other);
            match state {
                IndexingStatus::Completed => {
                    self.store.record_indexing(&document.id, "completed", None)?
                }
                IndexingStatus::Error | IndexingStatus::Paused => {
                    let error = document.error.unwrap_or_else(|| format!("indexing {state:?}"));
                    self.store.record_indexing(&document.id, "error", Some(&error))?;
                    if let Some((url, kb)) = self.store.page_of_document(&document.id)? {
                        let failure = IndexingFailure { url, error };
                        lock(&self.counters).entry(kb).or_default().indexing_failed.push(failure);
                    }
                }
                _ => finished = false,
            }
        }
        Ok(finished)
    }

    fn summary(&self, crawl_complete: bool) -> Result<SyncSummary, SyncError> {
        let mut knowledge_bases = lock(&self.counters).clone();
        for kb in self.known_handles() {
            let summary = knowledge_bases.entry(kb.name.clone()).or_default();
            if !kb.missing {
                summary.metadata_pending =
                    self.store.pending_metadata_count(&kb.dataset_id)? as u64;
            }
        }
        Ok(SyncSummary {
            knowledge_bases,
            crawl_complete,
            dry_run: self.options.dry_run,
            dify: self.client.metrics(),
        })
    }
}
