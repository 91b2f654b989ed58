//! Datasets (knowledge bases): the object and its create, list and update
//! requests.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::common::{lenient_option, lenient_vec, null_as_default};
use super::{DocForm, IndexingTechnique, MetadataType, Permission, RetrievalModel, TagRef};

/// A dataset as Dify describes it.
///
/// `id` is required, so a body that is not a dataset fails to decode
/// instead of producing one without an id; everything else is optional,
/// and nested settings whose shape is not understood read as absent.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Dataset {
    /// Server-assigned id (UUID).
    pub id: String,
    /// Name, unique in the workspace (1..=40 chars).
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// `vendor` or `external`.
    pub provider: Option<String>,
    /// Visibility.
    pub permission: Option<Permission>,
    /// Source type, null until the first document.
    pub data_source_type: Option<String>,
    /// Indexing technique, null until set.
    pub indexing_technique: Option<IndexingTechnique>,
    /// Apps using the dataset.
    pub app_count: Option<u64>,
    /// Documents in the dataset.
    pub document_count: Option<u64>,
    /// Words in the dataset.
    pub word_count: Option<u64>,
    /// Creator's account id.
    pub created_by: Option<String>,
    /// Creator's name.
    pub author_name: Option<String>,
    /// Unix seconds.
    pub created_at: Option<i64>,
    /// Unix seconds.
    pub updated_at: Option<i64>,
    /// Embedding model name.
    pub embedding_model: Option<String>,
    /// Embedding provider (`org/plugin/provider`).
    pub embedding_model_provider: Option<String>,
    /// Whether the embedding model is usable.
    pub embedding_available: Option<bool>,
    /// Stored retrieval setting.
    #[serde(default, deserialize_with = "lenient_option")]
    pub retrieval_model_dict: Option<RetrievalModel>,
    /// Tags bound to the dataset.
    #[serde(default, deserialize_with = "lenient_vec")]
    pub tags: Vec<TagRef>,
    /// Chunk structure, null until the first document.
    pub doc_form: Option<DocForm>,
    /// Metadata fields (built-ins appear with id `built-in` when enabled).
    #[serde(default, deserialize_with = "lenient_vec")]
    pub doc_metadata: Vec<DatasetMetadataField>,
    /// Whether built-in metadata fields are enabled.
    pub built_in_field_enabled: Option<bool>,
    /// Whether the API may reach this dataset.
    pub enable_api: Option<bool>,
    /// Documents in the dataset (newer servers).
    pub total_documents: Option<u64>,
    /// Available documents (newer servers).
    pub total_available_documents: Option<u64>,
    /// Knowledge pipeline runtime mode (newer servers).
    pub runtime_mode: Option<String>,
    /// External knowledge settings, kept as sent.
    pub external_knowledge_info: Option<Value>,
}

/// A metadata field as listed on a dataset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct DatasetMetadataField {
    /// Field id, or `built-in`.
    pub id: String,
    /// Field name.
    pub name: String,
    /// Value type.
    #[serde(rename = "type")]
    pub kind: Option<MetadataType>,
}

/// Body of dataset create.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CreateDatasetRequest {
    /// Name (1..=40 chars, unique in the workspace).
    pub name: String,
    /// Description (at most 400 chars). Default: empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Indexing technique. Default: set by the first document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub indexing_technique: Option<IndexingTechnique>,
    /// Visibility. Default: `only_me`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permission: Option<Permission>,
    /// `vendor` (default) or `external`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// External knowledge API id (external datasets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_knowledge_api_id: Option<String>,
    /// External knowledge id (external datasets).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_knowledge_id: Option<String>,
    /// Embedding model. Default: the workspace default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedding_model: Option<String>,
    /// Embedding provider; sent together with `embedding_model`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedding_model_provider: Option<String>,
    /// Retrieval setting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retrieval_model: Option<RetrievalModel>,
}

impl CreateDatasetRequest {
    /// A request with only the name set.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), ..Self::default() }
    }
}

/// Body of dataset update (PATCH); unset fields are left unchanged.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UpdateDatasetRequest {
    /// New name (a name used by another dataset answers 400).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// New description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// New indexing technique (triggers re-indexing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub indexing_technique: Option<IndexingTechnique>,
    /// New visibility.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permission: Option<Permission>,
    /// New embedding model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedding_model: Option<String>,
    /// New embedding provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub embedding_model_provider: Option<String>,
    /// New retrieval setting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retrieval_model: Option<RetrievalModel>,
    /// Members for `partial_members` visibility, as `[{"user_id": ...}]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partial_member_list: Option<Vec<Value>>,
}

/// Query of the dataset list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListDatasetsQuery {
    /// Page (1-based). Default: 1.
    pub page: Option<u32>,
    /// Page size (server caps at 100). Default: 20.
    pub limit: Option<u32>,
    /// Case-insensitive substring of the name.
    pub keyword: Option<String>,
    /// Also list other members' private datasets (the key acts as owner).
    pub include_all: Option<bool>,
    /// Only datasets with these tags.
    pub tag_ids: Vec<String>,
}

impl ListDatasetsQuery {
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
        if let Some(include_all) = self.include_all {
            pairs.push(("include_all", include_all.to_string()));
        }
        pairs.extend(self.tag_ids.iter().map(|id| ("tag_ids", id.clone())));
        pairs
    }
}
