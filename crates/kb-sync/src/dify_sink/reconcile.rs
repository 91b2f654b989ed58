//! Rebuilding the store from Dify: listing a knowledge base's documents.
//!
//! Documents are listed 100 per call. Each is remembered by name together
//! with its `content_hash` metadata, display status and the run that listed
//! it, which is all [`Inner::plan`](super::Inner) needs: a page whose
//! URL-derived name and hash match is adopted without a write, a disabled
//! one is left alone, any other is updated by id. A document whose
//! `source_url` value maps back to its own name also gets a page row, so
//! pruning can find it later even if the page never shows up again.
//!
//! Only a listing that ran to its end counts: then reconciled rows the
//! listing did not find again are dropped and the dataset is marked
//! reconciled in the store. An explicit reconcile also lets the listing
//! override the store (ids and hashes), and clears the document of rows
//! whose document was not listed, so their pages are created again. A dry
//! run keeps the listing in memory and writes nothing.

use std::collections::{HashMap, HashSet};

use dify_client::{DisplayStatus, Document, ListDocumentsQuery};
use futures_util::StreamExt;
use url::Url;

use super::metadata::{remote_fingerprint, remote_string};
use super::outcome::{ReconcileCounts, ReconcileSummary};
use super::{DifySink, Inner, KbHandle, Reconciled, SyncError, lock};
use crate::naming::document_name;
use crate::state::{ReconciledPage, RemoteDocument};

impl DifySink {
    /// Lists the documents of the given knowledge bases and records them in
    /// the store, the listing overriding what the store held, so that pages
    /// already in Dify are neither re-created nor rewritten and pages whose
    /// document was deleted in Dify are created again. Knowledge bases that
    /// do not exist are reported, not created.
    ///
    /// # Errors
    /// Fatal errors, and [`SyncError::KnowledgeBase`] when listing fails.
    pub async fn reconcile(
        &self,
        knowledge_bases: &[String],
    ) -> Result<ReconcileSummary, SyncError> {
        let mut summary = ReconcileSummary::default();
        for name in knowledge_bases {
            let counts = self.inner.reconcile_named(name).await?;
            summary.knowledge_bases.insert(name.clone(), counts);
        }
        Ok(summary)
    }
}

impl Inner {
    async fn reconcile_named(&self, name: &str) -> Result<ReconcileCounts, SyncError> {
        let found = self.client.find_dataset(name).await;
        let missing = ReconcileCounts { missing: true, ..ReconcileCounts::default() };
        let Some(dataset) = found.map_err(|error| SyncError::knowledge_base(name, error))? else {
            if !self.options.dry_run {
                self.store.forget_dataset(name)?;
            }
            return Ok(missing);
        };
        if !self.options.dry_run
            && let Some(record) = self.store.dataset(name)?
            && record.dataset_id != dataset.id
        {
            // Deleted and made again under the same name: the old id and
            // every document id in it are void.
            self.store.forget_dataset(name)?;
        }

        lock(&self.forced).insert(name.to_string());
        let kb = self.kb(name).await?;
        if kb.missing {
            return Ok(missing);
        }
        let done = lock(&kb.reconciled).clone();
        match done {
            Some(Reconciled { counts, overwrite: true }) => Ok(counts),
            _ => self.reconcile_dataset(&kb, true).await,
        }
    }

    /// Lists every document of a knowledge base into the store (in memory
    /// for a dry run); with `overwrite` the listing overrides the store.
    pub(crate) async fn reconcile_dataset(
        &self,
        kb: &KbHandle,
        overwrite: bool,
    ) -> Result<ReconcileCounts, SyncError> {
        let query = ListDocumentsQuery { limit: Some(100), ..ListDocumentsQuery::default() };
        let mut documents = self.client.documents(&kb.dataset_id, query);
        let mut counts = ReconcileCounts::default();
        let mut names = HashSet::new();
        let mut ids = HashSet::new();
        let mut in_memory = HashMap::new();

        while let Some(document) = documents.next().await {
            let document = document.map_err(|error| SyncError::knowledge_base(&kb.name, error))?;
            counts.documents += 1;
            ids.insert(document.id.clone());
            if !names.insert(document.name.clone()) {
                counts.duplicate_names += 1;
                tracing::warn!(kb = %kb.name, name = %document.name, "two documents share a name");
                continue;
            }
            let remote = self.remote(&document);
            let source = page_url(&document);
            if source.is_some() {
                counts.matched += 1;
            } else {
                counts.unmatched += 1;
            }
            if self.options.dry_run {
                in_memory.insert(document.name.clone(), remote);
                continue;
            }
            self.store.save_remote_document(&kb.dataset_id, &document.name, &remote)?;
            if let Some(url) = source {
                let seed = ReconciledPage {
                    knowledge_base: &kb.name,
                    dataset_id: &kb.dataset_id,
                    document: &remote,
                    run: self.run,
                };
                self.store.seed_reconciled_page(&url, &seed, overwrite)?;
            }
        }

        // The listing is complete: only now may it replace what was known.
        if self.options.dry_run {
            *lock(&kb.listed) = Some(in_memory);
        } else {
            self.store.drop_unlisted_remote(&kb.dataset_id, self.run)?;
            if overwrite {
                let cleared = self.store.clear_unlisted_pages(&kb.dataset_id, &ids)?;
                counts.cleared = cleared as u64;
                if cleared > 0 {
                    tracing::info!(kb = %kb.name, pages = cleared,
                        "documents deleted in dify: their pages are created again");
                }
            }
            self.store.mark_reconciled(&kb.dataset_id)?;
        }
        tracing::info!(kb = %kb.name, documents = counts.documents, matched = counts.matched,
            "reconciled knowledge base");
        *lock(&kb.reconciled) = Some(Reconciled { counts: counts.clone(), overwrite });
        Ok(counts)
    }

    fn remote(&self, document: &Document) -> RemoteDocument {
        RemoteDocument {
            document_id: document.id.clone(),
            content_hash: remote_string(&document.doc_metadata, "content_hash").map(str::to_string),
            metadata_hash: Some(remote_fingerprint(&document.doc_metadata)),
            display_status: document.display_status.map(status_text),
            listed_run: Some(self.run),
        }
    }
}

/// The page a document was made from, when its `source_url` value maps
/// back to its own name.
fn page_url(document: &Document) -> Option<Url> {
    let url = remote_string(&document.doc_metadata, "source_url").and_then(|u| Url::parse(u).ok());
    url.filter(|url| document_name(url) == document.name)
}

fn status_text(status: DisplayStatus) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}
