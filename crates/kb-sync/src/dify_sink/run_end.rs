//! The end of a run: flush queued metadata, delete what moved pages left
//! behind, prune what is safe to prune, wait for indexing, and sum up.
//!
//! Pruning never trusts an incomplete crawl: a page the site answered 404 or
//! 410 for is pruned in any run, but a page that was merely not seen counts
//! only when the crawl finished without hitting a limit, only for runs whose
//! scope (start and allowed hosts) contains the page, and only after
//! `after_missed_runs` such runs of its knowledge base. As a last safety
//! valve, a run that would prune more than `max_share` of a knowledge
//! base's documents for not being seen prunes none of them and says how to
//! force it. A dry run plans the prune and counts it without deleting.
//!
//! Cancellation (Ctrl-C) skips pruning and ends the wait for indexing at
//! once; queued metadata is still sent and the run recorded.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use dify_client::{DocumentAction, IndexingStatus, ListDocumentsQuery};
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;
use url::Url;

use super::error::classify;
use super::outcome::{IndexingFailure, SyncSummary, UnsyncedStage};
use super::{DifySink, Inner, KbHandle, PruneMode, SyncError, error_chain, lock};
use crate::naming::document_name;
use crate::state::{PruneCandidate, PruneReason, RunScope, Unrecorded};

/// How a run ends, for [`DifySink::finish_with`].
#[derive(Debug, Clone, Default)]
pub struct RunEnd {
    /// The crawl covered the whole site without hitting a page or depth
    /// limit; only then do pages missing from it count towards pruning.
    pub crawl_complete: bool,
    /// The hosts the crawl could reach; a missed run counts only for pages
    /// inside it. `None` treats every page of the covered knowledge bases
    /// as in scope.
    pub scope: Option<RunScope>,
    /// Fired on Ctrl-C: pruning is skipped and the wait for indexing ends.
    pub cancel: Option<CancellationToken>,
}

impl DifySink {
    /// Ends the run as [`DifySink::finish_with`] does, with no scope and no
    /// cancellation.
    ///
    /// # Errors
    /// Fatal errors only; per-document problems are in the summary.
    pub async fn finish(&self, crawl_complete: bool) -> Result<SyncSummary, SyncError> {
        self.finish_with(RunEnd { crawl_complete, ..RunEnd::default() }).await
    }

    /// Ends the run: sends all queued metadata (this run's and any left by
    /// an earlier one), deletes documents moved pages left behind, prunes
    /// when enabled, waits for indexing when asked (otherwise pages whose
    /// indexing an earlier run awaited count as synced), and records the
    /// run. A dry run only plans the prune.
    ///
    /// # Errors
    /// Fatal errors only; per-document problems are in the summary, where
    /// every page not synced is listed ([`KbSummary::unsynced`](super::KbSummary)).
    pub async fn finish_with(&self, end: RunEnd) -> Result<SyncSummary, SyncError> {
        let inner = &self.inner;
        let cancel = end.cancel.clone().unwrap_or_default();
        let dry_run = inner.options.dry_run;
        if !dry_run {
            if let Some(scope) = &end.scope {
                inner.store.set_run_scope(inner.run, scope)?;
            }
            inner.flush_all().await?;
            if !cancel.is_cancelled() {
                inner.clean_all_moved().await?;
            }
        }
        if inner.options.prune.enabled {
            if cancel.is_cancelled() {
                tracing::info!("run stopped: nothing pruned");
            } else {
                inner.prune(&end, &cancel).await?;
            }
        }
        if !dry_run {
            if inner.options.wait_for_indexing {
                inner.wait_for_indexing(&cancel).await?;
            } else {
                inner.store.promote_unconfirmed()?;
            }
        }

        let summary = inner.summary(end.crawl_complete)?;
        if !dry_run {
            let json = serde_json::to_string(&summary).unwrap_or_default();
            inner.store.finish_run(inner.run, end.crawl_complete, &json)?;
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
            if handle.dataset_id == dataset_id {
                self.flush_metadata(&handle, false).await?;
            }
        }
        Ok(())
    }

    /// Deletes the documents moved pages left behind whose new document
    /// exists (a run killed between the two steps leaves some).
    async fn clean_all_moved(&self) -> Result<(), SyncError> {
        for (url, dataset_id, document_id) in self.store.moved_documents_ready()? {
            self.delete_left_behind(&url, &dataset_id, &document_id).await?;
        }
        Ok(())
    }

    async fn prune(&self, end: &RunEnd, cancel: &CancellationToken) -> Result<(), SyncError> {
        let missed = end.crawl_complete.then_some(self.options.prune.after_missed_runs);
        let covered = lock(&self.covered).clone();
        let mut names: BTreeSet<String> = covered.iter().cloned().collect();
        names.extend(self.store.knowledge_bases_with_gone_pages()?);
        let dry_gone = lock(&self.dry_gone).clone();
        let dry_seen = lock(&self.dry_seen).clone();
        for url in &dry_gone {
            if let Some(row) = self.store.page(url)? {
                names.insert(row.knowledge_base);
            }
        }
        names.remove("");

        for name in names {
            if cancel.is_cancelled() {
                return Ok(());
            }
            let kb = self.kb(&name).await?;
            if kb.missing {
                continue;
            }
            let candidates = if self.options.dry_run {
                let view = Unrecorded {
                    seen: &dry_seen,
                    gone: &dry_gone,
                    covers_kb: covered.contains(&name),
                    scope: end.scope.as_ref(),
                };
                self.store.plan_prune(&kb.name, self.run, missed, Some(&view))?
            } else {
                self.store.prune_candidates(&kb.name, self.run, missed)?
            };
            let candidates = self.within_share(&kb.name, candidates)?;
            if self.options.dry_run {
                let listed = self.gone_only_listed(&kb, &dry_gone)?;
                lock(&self.counters).entry(kb.name.clone()).or_default().pruned += listed;
            }
            for candidate in candidates {
                if cancel.is_cancelled() {
                    return Ok(());
                }
                let pruned = if self.options.dry_run {
                    self.would_prune(&kb, &candidate).await?
                } else {
                    self.prune_one(&kb, &candidate).await?
                };
                if pruned {
                    lock(&self.counters).entry(kb.name.clone()).or_default().pruned += 1;
                }
            }
        }
        Ok(())
    }

    /// Drops the candidates pruned for not being seen when they are more
    /// than the allowed share of the knowledge base's documents.
    fn within_share(
        &self,
        kb: &str,
        candidates: Vec<PruneCandidate>,
    ) -> Result<Vec<PruneCandidate>, SyncError> {
        let missed = candidates.iter().filter(|c| c.reason != PruneReason::Gone).count() as u64;
        if missed == 0 {
            return Ok(candidates);
        }
        let documents = self.store.document_count(kb)?.max(missed);
        let max_share = self.options.prune.max_share;
        if missed as f64 <= max_share * documents as f64 {
            return Ok(candidates);
        }
        tracing::warn!(
            kb,
            not_seen = missed,
            documents,
            max_share,
            "not pruning pages missing from this crawl: they are more than the allowed share of \
             the knowledge base (a broken crawl or a changed start URL looks like this); set \
             prune.max_share = 1.0 in the config file to prune them anyway"
        );
        Ok(candidates.into_iter().filter(|c| c.reason == PruneReason::Gone).collect())
    }

    /// Dry run after lost state: pages answering 404/410 that the store
    /// does not know but this run's listing found (a real run would have
    /// recorded them while reconciling, and pruned them).
    fn gone_only_listed(&self, kb: &KbHandle, gone: &HashSet<String>) -> Result<u64, SyncError> {
        let listed = lock(&kb.listed);
        let Some(listed) = listed.as_ref() else { return Ok(0) };
        let mut count = 0;
        for url in gone {
            let Ok(parsed) = Url::parse(url) else { continue };
            if listed.contains_key(&document_name(&parsed)) && self.store.page(url)?.is_none() {
                count += 1;
            }
        }
        Ok(count)
    }

    /// Dry run: whether pruning would remove a document.
    async fn would_prune(
        &self,
        kb: &KbHandle,
        candidate: &PruneCandidate,
    ) -> Result<bool, SyncError> {
        if candidate.document_id.is_some() {
            return Ok(true);
        }
        Ok(self.find_by_name(kb, &candidate.document_name).await?.is_some())
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

        let result = {
            let _permit = self.writes.acquire().await;
            match self.options.prune.mode {
                PruneMode::Delete => {
                    self.client.delete_document(&kb.dataset_id, &document_id).await
                }
                PruneMode::Disable => {
                    let ids = [document_id.clone()];
                    let disabled = self.client.set_documents_status(
                        &kb.dataset_id,
                        DocumentAction::Disable,
                        &ids,
                    );
                    disabled.await.map(drop)
                }
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
    /// before its id was recorded. The keyword search matches substrings
    /// (with `%` and `_` as wildcards), so every page of matches is read
    /// until the exact name turns up.
    async fn find_by_name(&self, kb: &KbHandle, name: &str) -> Result<Option<String>, SyncError> {
        let query = ListDocumentsQuery {
            keyword: Some(name.to_string()),
            limit: Some(100),
            ..ListDocumentsQuery::default()
        };
        let mut matches = self.client.documents(&kb.dataset_id, query);
        while let Some(document) = matches.next().await {
            match document {
                Ok(document) if document.name == name => return Ok(Some(document.id)),
                Ok(_) => {}
                Err(error) => {
                    let error = classify(error)?;
                    tracing::warn!(name, error = %error_chain(&error), "could not look up document");
                    return Ok(None);
                }
            }
        }
        Ok(None)
    }

    /// Polls the batches written this run, and those of pages an earlier
    /// run left awaiting indexing, until Dify has indexed them, the wait
    /// times out, or the run is cancelled. Pages left unconfirmed are
    /// listed.
    async fn wait_for_indexing(&self, cancel: &CancellationToken) -> Result<(), SyncError> {
        let mut pending: Vec<(String, String)> = std::mem::take(&mut *lock(&self.batches));
        pending.extend(self.store.batches_awaiting_indexing()?);
        pending.sort();
        pending.dedup();
        let deadline = tokio::time::Instant::now() + self.options.wait_timeout;
        let mut pause = self.options.poll_interval;
        tracing::info!(batches = pending.len(), "waiting for indexing");

        while !pending.is_empty() && !cancel.is_cancelled() {
            let polled = tokio::select! {
                biased;
                () = cancel.cancelled() => None,
                polled = self.poll_round(pending.clone()) => Some(polled?),
            };
            let Some(unfinished) = polled else { break };
            pending = unfinished;
            if pending.is_empty() || tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(pause) => {}
            }
            pause = (pause * 2).min(self.options.poll_interval * 8).max(Duration::from_millis(1));
        }

        let reason = if cancel.is_cancelled() {
            "indexing not confirmed: the run was stopped first; run `dify-crawl retry --wait` to \
             check it"
        } else {
            "still indexing when the wait timed out; run `dify-crawl retry --wait` later, or check \
             dify's indexing worker"
        };
        for (dataset_id, batch) in &pending {
            for (url, kb) in self.store.pages_in_batch(dataset_id, batch)? {
                lock(&self.counters).entry(kb.clone()).or_default().indexing_unfinished += 1;
                self.unsynced(&kb, &url, UnsyncedStage::Index, reason);
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
            Err(error) if error.is_not_found() => {
                self.store.record_batch_superseded(dataset_id, batch)?;
                return Ok(true);
            }
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
        if !self.options.dry_run {
            let reason = "its metadata is not in dify yet (refused, or dify was unreachable); run \
                          `dify-crawl retry` to send it";
            for dataset_id in self.store.datasets_with_pending_metadata()? {
                let Some(name) = self.store.knowledge_base_of(&dataset_id)? else { continue };
                let rows = self.store.pending_metadata(&dataset_id, usize::MAX)?;
                let summary = knowledge_bases.entry(name).or_default();
                summary.metadata_pending += rows.len() as u64;
                for row in rows {
                    summary.unsynced.push(super::UnsyncedPage {
                        url: row.url,
                        stage: UnsyncedStage::Metadata,
                        reason: reason.to_string(),
                    });
                }
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
