//! Documents: the object, create and update requests (text and file),
//! listing, and indexing progress.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::common::{lenient_vec, null_as_default};
use super::{DocForm, DocumentMetadataValue, IndexingTechnique, ProcessRule, RetrievalModel};

/// A document, from create/update answers, lists and the detail endpoint.
/// Fields the variant at hand lacks are `None` (e.g. `metadata=only`
/// returns just `id`, `doc_type` and `doc_metadata`). `id` is required, so
/// a body that is not a document fails to decode.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Document {
    /// Server-assigned id (UUID).
    pub id: String,
    /// Name (create paths truncate to 200 chars).
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    /// Position in the dataset.
    pub position: Option<u64>,
    /// `upload_file` for both text and file documents.
    pub data_source_type: Option<String>,
    /// Source details; shape differs between list and detail answers.
    pub data_source_info: Option<Value>,
    /// Process rule id.
    pub dataset_process_rule_id: Option<String>,
    /// `api` for documents made through this API.
    pub created_from: Option<String>,
    /// Creator's account id.
    pub created_by: Option<String>,
    /// Unix seconds.
    pub created_at: Option<i64>,
    /// Unix seconds (detail only).
    pub updated_at: Option<i64>,
    /// Unix seconds when indexing completed (detail only).
    pub completed_at: Option<i64>,
    /// Token count.
    pub tokens: Option<u64>,
    /// Indexing progress.
    pub indexing_status: Option<IndexingStatus>,
    /// Indexing error text.
    pub error: Option<String>,
    /// Whether enabled.
    pub enabled: Option<bool>,
    /// Whether archived.
    pub archived: Option<bool>,
    /// The status the console shows.
    pub display_status: Option<DisplayStatus>,
    /// Word count.
    pub word_count: Option<u64>,
    /// Times retrieved.
    pub hit_count: Option<u64>,
    /// Chunk structure.
    pub doc_form: Option<DocForm>,
    /// Document type (detail only).
    pub doc_type: Option<String>,
    /// Language (detail only).
    pub doc_language: Option<String>,
    /// Segments (detail only).
    pub segment_count: Option<u64>,
    /// Metadata values: empty when none are stored.
    #[serde(default, deserialize_with = "lenient_vec")]
    pub doc_metadata: Vec<DocumentMetadataValue>,
}

/// Answer of document create and update.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct DocumentWithBatch {
    /// The document (for a same-name create, the existing one).
    pub document: Document,
    /// Indexing batch to poll with
    /// [`indexing_status`](crate::DifyClient::indexing_status); updates
    /// return the document's original batch.
    #[serde(default, deserialize_with = "null_as_default")]
    pub batch: String,
}

/// Indexing progress of a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum IndexingStatus {
    /// Queued.
    Waiting,
    /// Reading the source.
    Parsing,
    /// Cleaning text.
    Cleaning,
    /// Cutting chunks.
    Splitting,
    /// Embedding / indexing chunks.
    Indexing,
    /// Paused.
    Paused,
    /// Done.
    Completed,
    /// Failed; see `error`.
    Error,
    /// A value this crate does not know.
    #[serde(other)]
    Other,
}

impl IndexingStatus {
    /// Whether indexing has stopped (completed, failed or paused).
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Completed | Self::Error | Self::Paused)
    }
}

/// The status shown in Dify's console; also a list filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DisplayStatus {
    /// Waiting to be indexed.
    Queuing,
    /// Being indexed.
    Indexing,
    /// Paused.
    Paused,
    /// Indexing failed.
    Error,
    /// Indexed, enabled and not archived: the only state that accepts updates.
    Available,
    /// Disabled.
    Disabled,
    /// Archived.
    Archived,
    /// A value this crate does not know (never sent).
    #[serde(other)]
    Other,
}

impl DisplayStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Queuing => "queuing",
            Self::Indexing => "indexing",
            Self::Paused => "paused",
            Self::Error => "error",
            Self::Available => "available",
            Self::Disabled => "disabled",
            Self::Archived => "archived",
            Self::Other => "other",
        }
    }
}

/// Body of create-by-text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CreateDocumentByTextRequest {
    /// Name; an enabled document with the same name is replaced in place.
    pub name: String,
    /// The text.
    pub text: String,
    /// Required by the server for every create (ignored once the dataset
    /// has one); set it to the dataset's technique.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub indexing_technique: Option<IndexingTechnique>,
    /// Must equal the dataset's doc form once set. Default: `text_model`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub doc_form: Option<DocForm>,
    /// Language. Default: `English`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub doc_language: Option<String>,
    /// Required for the first document of a dataset. Default: the dataset's
    /// latest rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process_rule: Option<ProcessRule>,
    /// Retrieval setting (first document).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retrieval_model: Option<RetrievalModel>,
    /// Embedding model (first document).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedding_model: Option<String>,
    /// Embedding provider (first document).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedding_model_provider: Option<String>,
}

impl CreateDocumentByTextRequest {
    /// A request with name and text, the given technique and the automatic
    /// process rule.
    pub fn new(
        name: impl Into<String>,
        text: impl Into<String>,
        technique: IndexingTechnique,
    ) -> Self {
        Self {
            name: name.into(),
            text: text.into(),
            indexing_technique: Some(technique),
            doc_form: None,
            doc_language: None,
            process_rule: Some(ProcessRule::automatic()),
            retrieval_model: None,
            embedding_model: None,
            embedding_model_provider: None,
        }
    }
}

/// Body of update-by-text; `text` requires `name`, and at least `text` or
/// `process_rule` must be set.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UpdateDocumentByTextRequest {
    /// Name (not truncated on update; keep it under 200 chars).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// New text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// New process rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process_rule: Option<ProcessRule>,
    /// Doc form; the server defaults it to `text_model`, so always resend
    /// it on other datasets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub doc_form: Option<DocForm>,
    /// Language.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub doc_language: Option<String>,
    /// Retrieval setting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retrieval_model: Option<RetrievalModel>,
}

impl UpdateDocumentByTextRequest {
    /// Replaces the text (and sets the name, which the server requires).
    pub fn text(name: impl Into<String>, text: impl Into<String>) -> Self {
        Self { name: Some(name.into()), text: Some(text.into()), ..Self::default() }
    }
}

/// Settings sent as the `data` part of file creates and updates.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DocumentSettings {
    /// Indexing technique.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub indexing_technique: Option<IndexingTechnique>,
    /// Doc form.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub doc_form: Option<DocForm>,
    /// Language.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub doc_language: Option<String>,
    /// Process rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process_rule: Option<ProcessRule>,
    /// Retrieval setting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retrieval_model: Option<RetrievalModel>,
    /// Embedding model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedding_model: Option<String>,
    /// Embedding provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedding_model_provider: Option<String>,
    /// `false` forces a new document even if one has the same file name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<bool>,
}

/// A file to upload. The bytes are shared, so resending costs no copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileUpload {
    /// File name; becomes the document name.
    pub file_name: String,
    /// MIME type. Default: guessed by the server from the name.
    pub mime: Option<String>,
    /// Contents.
    pub bytes: Bytes,
}

impl FileUpload {
    /// A file with the given name and contents.
    pub fn new(file_name: impl Into<String>, bytes: impl Into<Bytes>) -> Self {
        Self { file_name: file_name.into(), mime: None, bytes: bytes.into() }
    }
}

/// Query of the document list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListDocumentsQuery {
    /// Page (1-based). Default: 1.
    pub page: Option<u32>,
    /// Page size (server caps at 100). Default: 20.
    pub limit: Option<u32>,
    /// Case-sensitive substring of the name; `%` and `_` act as wildcards,
    /// so compare names exactly afterwards.
    pub keyword: Option<String>,
    /// Only documents in this state (ignored by older servers).
    pub status: Option<DisplayStatus>,
}

impl ListDocumentsQuery {
    pub(crate) fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        if let Some(page) = self.page {
            pairs.push(("page", page.to_string()));
        }
        if let Some(limit) = self.limit {
            pairs.push(("limit", limit.to_string()));
        }
        if let Some(keyword) = &self.keyword {
            pairs.push(("keyword", keyword.clone()));
        }
        if let Some(status) = self.status {
            pairs.push(("status", status.as_str().to_owned()));
        }
        pairs
    }
}

/// Which part of a document's detail to return.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MetadataMode {
    /// Everything (server default).
    #[default]
    All,
    /// Only `id`, `doc_type` and `doc_metadata`: the cheap read.
    Only,
    /// Everything but the metadata.
    Without,
}

impl MetadataMode {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Only => "only",
            Self::Without => "without",
        }
    }
}

/// Batch status actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentAction {
    /// Enable.
    Enable,
    /// Disable (only completed documents).
    Disable,
    /// Archive.
    Archive,
    /// Un-archive.
    UnArchive,
}

impl DocumentAction {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Enable => "enable",
            Self::Disable => "disable",
            Self::Archive => "archive",
            Self::UnArchive => "un_archive",
        }
    }
}

/// Indexing progress of one document of a batch.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct DocumentIndexingStatus {
    /// Document id.
    pub id: String,
    /// Progress.
    pub indexing_status: Option<IndexingStatus>,
    /// Timestamps of the phases (Unix seconds).
    pub processing_started_at: Option<f64>,
    /// See `processing_started_at`.
    pub completed_at: Option<f64>,
    /// Error text, when failed.
    pub error: Option<String>,
    /// Segments indexed so far.
    pub completed_segments: Option<u64>,
    /// Segments in total.
    pub total_segments: Option<u64>,
}

/// Answer of indexing-status.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct IndexingStatusResponse {
    /// One entry per document of the batch.
    #[serde(deserialize_with = "null_as_default")]
    pub data: Vec<DocumentIndexingStatus>,
}
