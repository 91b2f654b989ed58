//! Rebuilding the store from Dify after the state file was lost.
//!
//! Documents are listed 100 per call. Each is remembered by name together
//! with its `content_hash` metadata and display status, which is all
//! [`Inner::plan`](super::Inner) needs: a page whose URL-derived name and
//! hash match is adopted without a write, a disabled one is left alone, any
//! other is updated by id. A document whose `source_url` value maps back to
//! its own name also gets a page row, so pruning can find it later even if
//! the page never shows up again.

use std::collections::HashSet;

use dify_client::{DisplayStatus, Document, ListDocumentsQuery};
use futures_util::StreamExt;
use url::Url;

use super::metadata::{remote_fingerprint, remote_string};
use super::outcome::{ReconcileCounts, ReconcileSummary};
use super::{DifySink, Inner, KbHandle, SyncError, lock};
use crate::naming::document_name;
use crate::state::RemoteDocument;

impl DifySink {
    /// Lists the documents of the given knowledge bases and records them in
    /// the store, so that pages already in Dify are neither re-created nor
    /// rewritten. Knowledge bases that do not exist are reported, not
    /// created.
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
        match found.map_err(|error| SyncError::knowledge_base(name, error))? {
            Some(_) => {
                let kb = self.kb(name).await?;
                if kb.missing {
                    return Ok(ReconcileCounts { missing: true, ..ReconcileCounts::default() });
                }
                if let Some(counts) = lock(&kb.reconciled).clone() {
                    return Ok(counts);
                }
                self.reconcile_dataset(&kb).await
            }
            None => {
                if !self.options.dry_run {
                    self.store.forget_dataset(name)?;
                }
                Ok(ReconcileCounts { missing: true, ..ReconcileCounts::default() })
            }
        }
    }

    /// Lists every document of a knowledge base into the store.
    pub(crate) async fn reconcile_dataset(
        &self,
        kb: &KbHandle,
    ) -> Result<ReconcileCounts, SyncError> {
        let query = ListDocumentsQuery { limit: Some(100), ..ListDocumentsQuery::default() };
        let mut documents = self.client.documents(&kb.dataset_id, query);
        let mut counts = ReconcileCounts::default();
        let mut names = HashSet::new();

        while let Some(document) = documents.next().await {
            let document = document.map_err(|error| SyncError::knowledge_base(&kb.name, error))?;
            counts.documents += 1;
            if !names.insert(document.name.clone()) {
                counts.duplicate_names += 1;
                tracing::warn!(kb = %kb.name, name = %document.name, "two documents share a name");
                continue;
            }
            if self.options.dry_run {
                continue;
            }
            if self.remember_document(kb, &document)? {
                counts.matched += 1;
            } else {
                counts.unmatched += 1;
            }
        }

        tracing::info!(kb = %kb.name, documents = counts.documents, matched = counts.matched,
            "reconciled knowledge base");
        Ok(counts)
    }

    /// Stores one listed document; `true` when it also maps to a page row.
    fn remember_document(&self, kb: &KbHandle, document: &Document) -> Result<bool, SyncError> {
        let remote = RemoteDocument {
            document_id: document.id.clone(),
            content_hash: remote_string(&document.doc_metadata, "content_hash").map(str::to_string),
            metadata_hash: Some(remote_fingerprint(&document.doc_metadata)),
            display_status: document.display_status.map(status_text),
        };
        self.store.save_remote_document(&kb.dataset_id, &document.name, &remote)?;

        let url =
            remote_string(&document.doc_metadata, "source_url").and_then(|u| Url::parse(u).ok());
        match url {
            Some(url) if document_name(&url) == document.name => {
                self.store.seed_reconciled_page(
                    &url,
                    &kb.name,
                    &kb.dataset_id,
                    &remote,
                    self.run,
                )?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

fn status_text(status: DisplayStatus) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}
