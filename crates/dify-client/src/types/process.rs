//! How documents are cut into chunks and indexed: process rules, document
//! forms and indexing techniques.

use serde::{Deserialize, Serialize};

/// How a dataset embeds its chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum IndexingTechnique {
    /// Embedding model vectors.
    HighQuality,
    /// Keyword index only, no embedding model needed.
    Economy,
    /// A value this crate does not know (never sent).
    #[serde(other)]
    Other,
}

/// The chunk structure of a dataset's documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DocForm {
    /// Plain chunks (Dify's default).
    TextModel,
    /// Parent chunks with child chunks.
    HierarchicalModel,
    /// Question/answer pairs.
    QaModel,
    /// A value this crate does not know (never sent).
    #[serde(other)]
    Other,
}

/// Who may see a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Permission {
    /// Only the creator (Dify's default).
    OnlyMe,
    /// Everyone in the workspace.
    AllTeamMembers,
    /// A listed subset of members.
    PartialMembers,
    /// A value this crate does not know (never sent).
    #[serde(other)]
    Other,
}

/// How a document is split and cleaned before indexing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessRule {
    /// The mode.
    pub mode: ProcessMode,
    /// The rules; ignored by the server in `automatic` mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<ProcessRules>,
}

impl ProcessRule {
    /// Dify's automatic rule (extra-space removal, 500 tokens, overlap 50).
    pub fn automatic() -> Self {
        Self { mode: ProcessMode::Automatic, rules: None }
    }

    /// A custom rule: split on `separator` into chunks of at most
    /// `max_tokens` (50..=4000, checked by the server while indexing) with
    /// `chunk_overlap` tokens of overlap, removing extra spaces.
    pub fn custom(separator: impl Into<String>, max_tokens: u32, chunk_overlap: u32) -> Self {
        let rules = ProcessRules {
            pre_processing_rules: vec![PreProcessingRule {
                id: PreProcessingRuleId::RemoveExtraSpaces,
                enabled: true,
            }],
            segmentation: Some(Segmentation {
                separator: separator.into(),
                max_tokens,
                chunk_overlap: Some(chunk_overlap),
            }),
            parent_mode: None,
            subchunk_segmentation: None,
        };
        Self { mode: ProcessMode::Custom, rules: Some(rules) }
    }
}

/// The process rule mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProcessMode {
    /// Server defaults.
    Automatic,
    /// The given rules.
    Custom,
    /// Parent/child chunks (for `hierarchical_model`).
    Hierarchical,
    /// A value this crate does not know (never sent).
    #[serde(other)]
    Other,
}

/// The rules of a `custom` or `hierarchical` process rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProcessRules {
    /// Cleaning steps; required by the server (may be empty).
    #[serde(deserialize_with = "super::common::null_as_default")]
    pub pre_processing_rules: Vec<PreProcessingRule>,
    /// How to cut (parent) chunks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segmentation: Option<Segmentation>,
    /// For hierarchical mode: whole document or paragraphs as parents.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_mode: Option<ParentMode>,
    /// For hierarchical mode: how to cut child chunks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subchunk_segmentation: Option<Segmentation>,
}

/// One cleaning step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreProcessingRule {
    /// Which step.
    pub id: PreProcessingRuleId,
    /// Whether it runs.
    pub enabled: bool,
}

/// The cleaning steps Dify knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PreProcessingRuleId {
    /// Drop stop words.
    RemoveStopwords,
    /// Collapse runs of whitespace.
    RemoveExtraSpaces,
    /// Drop URLs and e-mail addresses.
    RemoveUrlsEmails,
    /// A value this crate does not know (never sent).
    #[serde(other)]
    Other,
}

/// Chunk cutting settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segmentation {
    /// Separator to split on (Dify's default is `"\n"`).
    #[serde(default)]
    pub separator: String,
    /// Largest chunk in tokens.
    #[serde(default)]
    pub max_tokens: u32,
    /// Overlap between chunks in tokens (server default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk_overlap: Option<u32>,
}

/// Parent chunk granularity in hierarchical mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ParentMode {
    /// The whole document is one parent.
    #[serde(rename = "full-doc")]
    FullDoc,
    /// Each paragraph is a parent.
    #[serde(rename = "paragraph")]
    Paragraph,
    /// A value this crate does not know (never sent).
    #[serde(other)]
    Other,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_rule_serializes_as_dify_expects() {
        let json = serde_json::to_value(ProcessRule::custom("\n\n", 800, 80)).unwrap();
        assert_eq!(json["mode"], "custom");
        assert_eq!(json["rules"]["segmentation"]["max_tokens"], 800);
        assert_eq!(json["rules"]["pre_processing_rules"][0]["id"], "remove_extra_spaces");
        assert_eq!(
            serde_json::to_value(ProcessRule::automatic()).unwrap(),
            serde_json::json!({"mode": "automatic"})
        );
    }

    #[test]
    fn unknown_enum_values_parse() {
        let form: DocForm = serde_json::from_str("\"graph_model\"").unwrap();
        assert_eq!(form, DocForm::Other);
        let mode: ParentMode = serde_json::from_str("\"full-doc\"").unwrap();
        assert_eq!(mode, ParentMode::FullDoc);
    }
}
