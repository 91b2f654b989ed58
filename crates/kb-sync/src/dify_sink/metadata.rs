//! Document metadata: the fields this tool keeps on every document, their
//! values for a page, and the batched assignment with partial-failure
//! resume.
//!
//! Values are assigned with `partial_update: false`, so one call states the
//! full set and resending it is harmless; that is what makes a batch safe to
//! retry and to resume. Dify runs the operations of a batch in order and
//! stops at the first failure with the earlier ones committed, so after a
//! 400 "Document not found." the first document that no longer exists marks
//! where it stopped: everything before it is applied, it is dropped (and
//! re-created by the next retry), everything after it is sent again.
//!
//! A batch refused for another reason is split in halves until the
//! documents Dify refuses are alone; those are marked failed with Dify's
//! message and the rest is applied, so one bad document never holds a
//! batch in the queue. A refusal that names a metadata field makes the
//! field ids be read again (once per run), in case a field was deleted in
//! Dify. Dify's per-document lock ("another metadata operation is running")
//! is transient: the batch stays queued.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use dify_client::{
    AssignMetadataRequest, DocumentMetadataOperation, DocumentMetadataValue, MetadataMode,
    MetadataType, MetadataValue,
};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::{Rfc2822, Rfc3339};

use super::{Inner, KbHandle, SyncError, UnsyncedStage, error::classify, error_chain, lock};
use crate::page::PageRecord;
use crate::state::PendingMetadata;

/// The metadata fields kept on every document, with their Dify types.
pub const METADATA_FIELDS: [(&str, MetadataType); 9] = [
    ("source_url", MetadataType::String),
    ("title", MetadataType::String),
    ("description", MetadataType::String),
    ("domain", MetadataType::String),
    ("language", MetadataType::String),
    ("crawled_at", MetadataType::Time),
    ("last_modified", MetadataType::Time),
    ("content_hash", MetadataType::String),
    ("word_count", MetadataType::Number),
];

/// The metadata values of a page, keyed by field name; absent values are
/// left out (a full replace then unbinds them).
pub(crate) fn values(page: &PageRecord) -> Map<String, Value> {
    let mut values = Map::new();
    let mut put = |name: &str, value: Value| {
        values.insert(name.to_string(), value);
    };
    put("source_url", json!(page.url.as_str()));
    if let Some(title) = &page.title {
        put("title", json!(title));
    }
    if let Some(description) = &page.description {
        put("description", json!(description));
    }
    put("domain", json!(page.domain()));
    if let Some(language) = &page.language {
        put("language", json!(language));
    }
    put("crawled_at", json!(page.crawled_at.unix_timestamp()));
    let modified = [&page.modified, &page.sitemap_lastmod, &page.last_modified];
    if let Some(time) = modified.into_iter().flatten().find_map(|text| parse_time(text)) {
        put("last_modified", json!(time));
    }
    put("content_hash", json!(page.content_hash));
    put("word_count", json!(page.word_count));
    values
}

/// Fingerprint of the descriptive metadata that can change while the
/// Markdown does not. Crawl and modification times are left out on purpose:
/// they change on every fetch and would cost a call per unchanged page.
pub(crate) fn fingerprint(
    title: Option<&str>,
    description: Option<&str>,
    language: Option<&str>,
) -> String {
    let text = json!([title, description, language]).to_string();
    blake3::hash(text.as_bytes()).to_hex()[..16].to_string()
}

/// The fingerprint of metadata read back from Dify (reconciliation).
pub(crate) fn remote_fingerprint(values: &[DocumentMetadataValue]) -> String {
    let get = |name: &str| {
        values.iter().find(|v| v.name == name && v.id != "built-in").and_then(|v| v.value.as_str())
    };
    fingerprint(get("title"), get("description"), get("language"))
}

/// A string metadata value read back from Dify.
pub(crate) fn remote_string<'a>(
    values: &'a [DocumentMetadataValue],
    name: &str,
) -> Option<&'a str> {
    values.iter().find(|v| v.name == name && v.id != "built-in").and_then(|v| v.value.as_str())
}

/// Unix seconds of an RFC 3339 timestamp, a bare `YYYY-MM-DD` date
/// (sitemaps) or an HTTP date.
fn parse_time(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(time) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(time.unix_timestamp());
    }
    let date_format = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(date) = time::Date::parse(text, &date_format) {
        return Some(date.midnight().assume_utc().unix_timestamp());
    }
    let rfc2822 = text.replace(" GMT", " +0000");
    OffsetDateTime::parse(&rfc2822, &Rfc2822).ok().map(OffsetDateTime::unix_timestamp)
}

/// One operation of an assignment call.
fn operation(row: &PendingMetadata, fields: &HashMap<String, String>) -> DocumentMetadataOperation {
    let values: Map<String, Value> = serde_json::from_str(&row.values_json).unwrap_or_default();
    let metadata_list = values
        .into_iter()
        .filter_map(|(name, value)| {
            let id = fields.get(&name)?.clone();
            Some(MetadataValue { id, name, value })
        })
        .collect();
    DocumentMetadataOperation {
        document_id: row.document_id.clone(),
        metadata_list,
        partial_update: false,
    }
}

/// Why Dify refused a batch, from its 400 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// A document of the batch does not exist (any more).
    MissingDocument,
    /// Another assignment holds a document's lock: try again later.
    Busy,
    /// A metadata field is unknown: the stored ids may be stale.
    UnknownField,
    /// Anything else: some document's values are refused.
    Other,
}

fn refusal(error: &dify_client::Error) -> Refusal {
    let message = error.api_error().map(|api| api.message.to_ascii_lowercase()).unwrap_or_default();
    let missing = message.contains("not found") || message.contains("not exist");
    if message.contains("another document metadata operation") {
        Refusal::Busy
    } else if missing && message.contains("document") {
        Refusal::MissingDocument
    } else if missing && message.contains("metadata") {
        Refusal::UnknownField
    } else {
        Refusal::Other
    }
}

fn dify_message(error: &dify_client::Error) -> String {
    error.api_error().map_or_else(|| error.to_string(), |api| api.message.trim().to_string())
}

impl Inner {
    /// Sends queued metadata of a knowledge base. With `only_full`, sends
    /// full batches only and yields to a flush already running; otherwise
    /// sends everything and waits its turn.
    pub(crate) async fn flush_metadata(
        &self,
        kb: &KbHandle,
        only_full: bool,
    ) -> Result<(), SyncError> {
        let _turn = if only_full {
            match kb.flush.try_lock() {
                Ok(guard) => guard,
                Err(_) => return Ok(()),
            }
        } else {
            kb.flush.lock().await
        };

        let size = self.options.metadata_batch_size;
        loop {
            let rows = self.store.pending_metadata(&kb.dataset_id, size)?;
            if rows.is_empty() || (only_full && rows.len() < size) {
                return Ok(());
            }
            if !self.send_batch(kb, rows).await? {
                return Ok(());
            }
        }
    }

    /// One assignment call for `rows`, within the write limit.
    async fn assign(
        &self,
        kb: &KbHandle,
        rows: &[PendingMetadata],
    ) -> Result<(), dify_client::Error> {
        let fields = lock(&kb.fields).clone();
        let operation_data = rows.iter().map(|row| operation(row, &fields)).collect();
        let request = AssignMetadataRequest { operation_data };
        let _permit = self.writes.acquire().await;
        self.client.assign_metadata(&kb.dataset_id, &request).await.map(drop)
    }

    fn applied(&self, kb: &KbHandle, rows: &[PendingMetadata]) -> Result<(), SyncError> {
        let urls: Vec<String> = rows.iter().map(|row| row.url.clone()).collect();
        tracing::debug!(kb = %kb.name, documents = urls.len(), "assigned metadata");
        self.store.record_metadata_applied(&urls, self.options.wait_for_indexing)?;
        Ok(())
    }

    /// Sends one batch; `Ok(false)` when no document made progress (the
    /// rest stays queued for the next flush or run).
    async fn send_batch(
        &self,
        kb: &KbHandle,
        rows: Vec<PendingMetadata>,
    ) -> Result<bool, SyncError> {
        match self.assign(kb, &rows).await {
            Ok(()) => {
                self.applied(kb, &rows)?;
                Ok(true)
            }
            Err(error) if error.status() == Some(400) => self.repair_batch(kb, rows, &error).await,
            Err(error) => {
                let error = classify(error)?;
                tracing::warn!(kb = %kb.name, error = %error_chain(&error),
                    "metadata batch failed; it stays queued for the next flush");
                Ok(false)
            }
        }
    }

    /// Handles a batch Dify refused with 400; `Ok(true)` when some document
    /// left the queue (or the field ids were refreshed) so the flush goes on.
    async fn repair_batch(
        &self,
        kb: &KbHandle,
        rows: Vec<PendingMetadata>,
        error: &dify_client::Error,
    ) -> Result<bool, SyncError> {
        match refusal(error) {
            Refusal::Busy => {
                tracing::warn!(kb = %kb.name, error = %error_chain(error),
                    "metadata batch refused for now; it stays queued for the next flush");
                return Ok(false);
            }
            Refusal::MissingDocument => {
                if let Some(progress) = self.resume_past_missing(kb, &rows).await? {
                    return Ok(progress);
                }
            }
            Refusal::UnknownField => {
                if self.refresh_fields(kb).await? {
                    return Ok(true);
                }
            }
            Refusal::Other => {}
        }
        self.bisect(kb, rows, error).await
    }

    /// Finds where a batch stopped on a missing document: the first one
    /// that is gone. `Some(false)` when a lookup failed (the batch stays
    /// queued), `None` when every document is there after all.
    async fn resume_past_missing(
        &self,
        kb: &KbHandle,
        rows: &[PendingMetadata],
    ) -> Result<Option<bool>, SyncError> {
        for (index, row) in rows.iter().enumerate() {
            let found = self
                .client
                .get_document(&kb.dataset_id, &row.document_id, MetadataMode::Only)
                .await;
            match found {
                Ok(_) => continue,
                Err(lookup) if lookup.is_not_found() => {
                    self.applied(kb, rows.get(..index).unwrap_or_default())?;
                    self.document_lost(kb, &row.url)?;
                    return Ok(Some(true));
                }
                Err(lookup) => {
                    let lookup = classify(lookup)?;
                    tracing::warn!(kb = %kb.name, error = %error_chain(&lookup),
                        "metadata batch refused; it stays queued for the next flush");
                    return Ok(Some(false));
                }
            }
        }
        Ok(None)
    }

    fn document_lost(&self, kb: &KbHandle, url: &str) -> Result<(), SyncError> {
        let reason = "document no longer exists in dify; it is created again on retry";
        self.store.record_document_lost(url, "metadata", reason)?;
        tracing::warn!(url, "document vanished before its metadata was set");
        lock(&self.counters).entry(kb.name.clone()).or_default().lost += 1;
        let reason = "its document was deleted in dify before its metadata was set; run \
                      `dify-crawl retry` to create it again";
        self.unsynced(&kb.name, url, UnsyncedStage::Metadata, reason);
        Ok(())
    }

    /// Splits a refused batch until the refused documents are alone: the
    /// rest is applied, those are marked failed with Dify's message.
    async fn bisect(
        &self,
        kb: &KbHandle,
        rows: Vec<PendingMetadata>,
        error: &dify_client::Error,
    ) -> Result<bool, SyncError> {
        tracing::info!(kb = %kb.name, documents = rows.len(), error = %error_chain(error),
            "metadata batch refused; looking for the documents dify refuses");
        let mut progress = false;
        let mut parts = vec![(rows, dify_message(error))];
        while let Some((part, message)) = parts.pop() {
            if let [row] = part.as_slice() {
                self.metadata_refused(kb, row, &message)?;
                progress = true;
                continue;
            }
            let (first, second) = part.split_at(part.len() / 2);
            for half in [first.to_vec(), second.to_vec()] {
                match self.assign(kb, &half).await {
                    Ok(()) => {
                        self.applied(kb, &half)?;
                        progress = true;
                    }
                    Err(error) if error.status() == Some(400) => match refusal(&error) {
                        Refusal::Busy => return Ok(progress),
                        _ => parts.push((half, dify_message(&error))),
                    },
                    Err(error) => {
                        let error = classify(error)?;
                        tracing::warn!(kb = %kb.name, error = %error_chain(&error),
                            "metadata batch failed; the rest stays queued for the next flush");
                        return Ok(progress);
                    }
                }
            }
        }
        Ok(progress)
    }

    /// One document whose metadata Dify refused on its own.
    fn metadata_refused(
        &self,
        kb: &KbHandle,
        row: &PendingMetadata,
        message: &str,
    ) -> Result<(), SyncError> {
        if message.to_ascii_lowercase().contains("document not found") {
            return self.document_lost(kb, &row.url);
        }
        let error = format!("dify refused its metadata: {message}");
        self.store.record_metadata_failed(&row.url, &error)?;
        tracing::warn!(url = %row.url, error = %error, "metadata refused");
        let reason = format!("{error}; run `dify-crawl retry` once the cause is fixed");
        self.unsynced(&kb.name, &row.url, UnsyncedStage::Metadata, &reason);
        Ok(())
    }

    /// Reads the dataset's field ids again and creates missing fields, once
    /// per run; `Ok(true)` when the batch is worth sending again.
    async fn refresh_fields(&self, kb: &KbHandle) -> Result<bool, SyncError> {
        if kb.fields_refreshed.swap(true, Ordering::SeqCst) {
            return Ok(false);
        }
        let listed = match self.client.list_metadata_fields(&kb.dataset_id).await {
            Ok(listed) => listed,
            Err(error) => {
                let error = classify(error)?;
                tracing::warn!(kb = %kb.name, error = %error_chain(&error),
                    "cannot read the metadata fields");
                return Ok(false);
            }
        };
        let existing = listed.doc_metadata.into_iter().map(|f| (f.name, f.id)).collect();
        let fields = self.ensure_fields(&kb.name, &kb.dataset_id, existing).await?;
        let changed = *lock(&kb.fields) != fields;
        *lock(&kb.fields) = fields;
        if changed {
            tracing::info!(kb = %kb.name, "metadata fields changed in dify; using the new ids");
            if !self.options.dry_run {
                self.remember_fields(kb)?;
            }
        }
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_the_shapes_pages_use() {
        assert_eq!(parse_time("2024-06-01T00:00:00Z"), Some(1_717_200_000));
        assert_eq!(parse_time("2024-06-01"), Some(1_717_200_000));
        assert_eq!(parse_time("Sat, 01 Jun 2024 00:00:00 GMT"), Some(1_717_200_000));
        assert_eq!(parse_time("last tuesday"), None);
    }

    #[test]
    fn fingerprints_ignore_nothing_but_order() {
        let a = fingerprint(Some("Title"), None, Some("en"));
        assert_eq!(a, fingerprint(Some("Title"), None, Some("en")));
        assert_ne!(a, fingerprint(Some("Title"), Some(""), Some("en")));
        assert_ne!(a, fingerprint(None, Some("Title"), Some("en")));
    }
}
