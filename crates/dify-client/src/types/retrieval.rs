//! Retrieval settings and the retrieve (hit-testing) call.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::common::{lenient_option, lenient_vec, null_as_default};

/// How a dataset is searched; also the dataset's stored setting
/// (`retrieval_model_dict`). Read leniently: `null` and unknown values fall
/// back to defaults or `Other`, and nested settings whose shape is not
/// understood read as absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RetrievalModel {
    /// The search method.
    #[serde(deserialize_with = "null_as_default")]
    pub search_method: SearchMethod,
    /// Whether results are reranked.
    #[serde(deserialize_with = "null_as_default")]
    pub reranking_enable: bool,
    /// The reranking model, when reranking by model.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "lenient_option")]
    pub reranking_model: Option<RerankingModel>,
    /// How reranking is done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reranking_mode: Option<RerankingMode>,
    /// How many chunks to return.
    #[serde(deserialize_with = "null_as_default")]
    pub top_k: u32,
    /// Whether `score_threshold` applies.
    #[serde(deserialize_with = "null_as_default")]
    pub score_threshold_enabled: bool,
    /// The lowest score returned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score_threshold: Option<f64>,
    /// Weights of hybrid search.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weights: Option<Weights>,
    /// Filter on document metadata.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "lenient_option")]
    pub metadata_filtering_conditions: Option<MetadataFilter>,
}

impl Default for RetrievalModel {
    fn default() -> Self {
        Self::keyword(3)
    }
}

impl RetrievalModel {
    /// A plain search of `method` returning `top_k` chunks, no reranking.
    pub fn new(method: SearchMethod, top_k: u32) -> Self {
        Self {
            search_method: method,
            reranking_enable: false,
            reranking_model: None,
            reranking_mode: None,
            top_k,
            score_threshold_enabled: false,
            score_threshold: None,
            weights: None,
            metadata_filtering_conditions: None,
        }
    }

    /// Keyword search, the only method an `economy` dataset supports.
    pub fn keyword(top_k: u32) -> Self {
        Self::new(SearchMethod::KeywordSearch, top_k)
    }
}

/// Search methods.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SearchMethod {
    /// Keyword index.
    #[default]
    KeywordSearch,
    /// Vector similarity.
    SemanticSearch,
    /// Full-text index.
    FullTextSearch,
    /// Vector and full text combined.
    HybridSearch,
    /// A value this crate does not know (never sent).
    #[serde(other)]
    Other,
}

/// A reranking model.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RerankingModel {
    /// Provider, e.g. `langgenius/cohere/cohere`.
    #[serde(deserialize_with = "null_as_default")]
    pub reranking_provider_name: String,
    /// Model name.
    #[serde(deserialize_with = "null_as_default")]
    pub reranking_model_name: String,
}

/// Reranking modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RerankingMode {
    /// Rerank with a model.
    RerankingModel,
    /// Weighted vector/keyword scores.
    WeightedScore,
    /// A value this crate does not know (never sent).
    #[serde(other)]
    Other,
}

/// Hybrid search weights; kept as JSON because its shape varies by version
/// (`weight_type`, `vector_setting`, `keyword_setting`).
pub type Weights = Value;

/// A metadata filter for retrieval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetadataFilter {
    /// How conditions combine.
    #[serde(default, deserialize_with = "null_as_default")]
    pub logical_operator: LogicalOperator,
    /// The conditions (`null` reads as none; conditions whose shape is not
    /// understood are skipped).
    #[serde(default, deserialize_with = "lenient_vec")]
    pub conditions: Vec<MetadataCondition>,
}

/// How metadata conditions combine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LogicalOperator {
    /// All must hold (Dify's default).
    #[default]
    And,
    /// Any must hold.
    Or,
    /// A value this crate does not know (never sent).
    #[serde(other)]
    Other,
}

/// One metadata condition, e.g. `{name: "source_url", comparison_operator:
/// "contains", value: "docs"}`. Operators: strings `contains`, `not
/// contains`, `start with`, `end with`, `is`, `is not`, `empty`, `not empty`,
/// `in`, `not in`; numbers `=`, `≠`, `>`, `<`, `≥`, `≤`; times `before`,
/// `after`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetadataCondition {
    /// Metadata field name.
    pub name: String,
    /// The operator, as Dify spells it.
    pub comparison_operator: String,
    /// The operand (absent for `empty`/`not empty`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

/// Body of a retrieve call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetrieveRequest {
    /// The query (at most 250 characters).
    pub query: String,
    /// Overrides the dataset's retrieval setting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retrieval_model: Option<RetrievalModel>,
    /// Settings for external knowledge bases.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_retrieval_model: Option<Value>,
}

impl RetrieveRequest {
    /// A query using the dataset's own retrieval setting.
    pub fn new(query: impl Into<String>) -> Self {
        Self { query: query.into(), retrieval_model: None, external_retrieval_model: None }
    }

    /// Sets the retrieval model. Default: the dataset's setting.
    #[must_use]
    pub fn retrieval_model(mut self, model: RetrievalModel) -> Self {
        self.retrieval_model = Some(model);
        self
    }
}

/// Answer of a retrieve call.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct RetrieveResponse {
    /// The query as the server read it.
    pub query: Option<RetrieveQuery>,
    /// Matching chunks, best first.
    #[serde(deserialize_with = "null_as_default")]
    pub records: Vec<RetrieveRecord>,
}

/// The query echo.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct RetrieveQuery {
    /// The query text.
    pub content: String,
}

/// One matching chunk.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct RetrieveRecord {
    /// The chunk.
    pub segment: Segment,
    /// Matching child chunks (hierarchical documents).
    #[serde(deserialize_with = "null_as_default")]
    pub child_chunks: Vec<Value>,
    /// Relevance score.
    pub score: Option<f64>,
}

/// A chunk of a document.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Segment {
    /// Chunk id.
    pub id: String,
    /// Position within the document.
    pub position: Option<u64>,
    /// Owning document id.
    pub document_id: Option<String>,
    /// Chunk text.
    pub content: String,
    /// Answer (QA documents).
    pub answer: Option<String>,
    /// Word count.
    pub word_count: Option<u64>,
    /// Token count.
    pub tokens: Option<u64>,
    /// Keywords.
    #[serde(deserialize_with = "null_as_default")]
    pub keywords: Vec<String>,
    /// Times retrieved.
    pub hit_count: Option<u64>,
    /// Whether enabled.
    pub enabled: Option<bool>,
    /// Indexing status of the chunk.
    pub status: Option<String>,
    /// The owning document, in retrieval results.
    pub document: Option<SegmentDocument>,
}

/// The document summary attached to a retrieved chunk.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct SegmentDocument {
    /// Document id.
    pub id: String,
    /// Document name.
    pub name: String,
    /// Source type.
    pub data_source_type: Option<String>,
    /// Metadata values by name (object or null).
    pub doc_metadata: Option<Value>,
}
