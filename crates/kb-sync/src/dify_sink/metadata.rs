//! Document metadata: the fields this tool keeps on every document, their
//! values for a page, and the batched assignment with partial-failure
//! resume.
//!
//! Values are assigned with `partial_update: false`, so one call states the
//! full set and resending it is harmless; that is what makes a batch safe to
//! retry and to resume. Dify runs the operations of a batch in order and
//! stops at the first failure with the earlier ones committed, so after a
//! 400 the first document that no longer exists marks where it stopped:
//! everything before it is applied, it is dropped (and re-created by the next
//! retry), everything after it is sent again.

use std::collections::HashMap;

use dify_client::{
    AssignMetadataRequest, DocumentMetadataOperation, DocumentMetadataValue, MetadataMode,
    MetadataType, MetadataValue,
};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::{Rfc2822, Rfc3339};

use super::{Inner, KbHandle, SyncError, error::classify, error_chain};
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

    /// Sends one batch; `Ok(false)` when no document made progress (the
    /// rest stays queued for the next flush or run).
    async fn send_batch(
        &self,
        kb: &KbHandle,
        rows: Vec<PendingMetadata>,
    ) -> Result<bool, SyncError> {
        let operation_data = rows.iter().map(|row| operation(row, &kb.fields)).collect();
        let request = AssignMetadataRequest { operation_data };
        let result = {
            let _permit = self.writes.acquire().await;
            self.client.assign_metadata(&kb.dataset_id, &request).await
        };

        match result {
            Ok(_) => {
                let urls: Vec<String> = rows.into_iter().map(|row| row.url).collect();
                tracing::debug!(kb = %kb.name, documents = urls.len(), "assigned metadata");
                self.store.record_metadata_applied(&urls, self.options.wait_for_indexing)?;
                Ok(true)
            }
            Err(error) if error.status() == Some(400) => self.resume_batch(kb, rows, error).await,
            Err(error) => {
                let error = classify(error)?;
                tracing::warn!(kb = %kb.name, error = %error_chain(&error),
                    "metadata batch failed; it stays queued for the next flush");
                Ok(false)
            }
        }
    }

    /// Finds where a failed batch stopped: the first document that is gone.
    async fn resume_batch(
        &self,
        kb: &KbHandle,
        rows: Vec<PendingMetadata>,
        error: dify_client::Error,
    ) -> Result<bool, SyncError> {
        for (index, row) in rows.iter().enumerate() {
            let found = self
                .client
                .get_document(&kb.dataset_id, &row.document_id, MetadataMode::Only)
                .await;
            match found {
                Ok(_) => continue,
                Err(lookup) if lookup.is_not_found() => {
                    let applied: Vec<String> =
                        rows[..index].iter().map(|r| r.url.clone()).collect();
                    self.store.record_metadata_applied(&applied, self.options.wait_for_indexing)?;
                    let reason = "document no longer exists in dify; it is created again on retry";
                    self.store.record_document_lost(&row.url, "metadata", reason)?;
                    tracing::warn!(url = %row.url, "document vanished before its metadata was set");
                    self.count_lost(&kb.name);
                    return Ok(true);
                }
                Err(lookup) => {
                    classify(lookup)?;
                    break;
                }
            }
        }
        tracing::warn!(kb = %kb.name, error = %error_chain(&error),
            "metadata batch refused; it stays queued for the next flush");
        Ok(false)
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
