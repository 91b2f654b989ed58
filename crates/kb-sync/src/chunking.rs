//! How pages are cut into chunks: Dify's `doc_form` and `process_rule`.
//!
//! Two Dify rules shape this module:
//!
//! - A dataset's `doc_form` is fixed by its first document; every later
//!   create or update with another form fails ("doc_form is different from
//!   the dataset doc_form"). So the form is chosen once per knowledge base
//!   ([`ChunkingConfig::doc_form_for`]) and only the `process_rule` varies per
//!   page ([`ChunkingConfig::plan`]).
//! - Parent-child (`hierarchical_model`) chunking needs embeddings, so it is
//!   refused on `economy` datasets. Economy datasets fall back to
//!   `text_model` with the configured custom segmentation, and a dataset that
//!   already holds documents keeps its form whatever the config says.
//!
//! With the default [`ChunkingMode::Hierarchical`], short pages use the whole
//! page as the parent chunk (`full-doc`, so a hit on any child returns the
//! page) and pages over [`ChunkingConfig::full_doc_max_words`] words use
//! paragraph parents, because Dify cuts a full-doc parent at 10,000 tokens.
//!
//! Dify checks segment lengths only while indexing, long after the request
//! succeeded; [`ChunkingConfig::validate`] applies the same limits up front so
//! a bad setting is a config error, not a failed document an hour later.

use dify_client::{
    DocForm, IndexingTechnique, ParentMode, PreProcessingRule, PreProcessingRuleId, ProcessMode,
    ProcessRule, ProcessRules, Segmentation,
};
use serde::{Deserialize, Serialize};

/// Smallest custom segment length Dify indexes, in tokens.
pub const MIN_SEGMENT_TOKENS: u32 = 50;
/// Largest custom segment length Dify indexes, in tokens
/// (`INDEXING_MAX_SEGMENTATION_TOKENS_LENGTH`).
pub const MAX_SEGMENT_TOKENS: u32 = 4000;
/// Default word count up to which a page is one full-document parent chunk.
pub const DEFAULT_FULL_DOC_MAX_WORDS: u64 = 1500;
/// Largest accepted full-doc threshold: about 10,000 tokens, where Dify cuts a
/// full-document parent.
pub const MAX_FULL_DOC_WORDS: u64 = 7000;

/// Errors in a chunking configuration, found before anything is sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChunkingError {
    /// A segment length is outside what Dify indexes.
    #[error("{rule} max_tokens is {value}, outside {MIN_SEGMENT_TOKENS}..={MAX_SEGMENT_TOKENS}")]
    MaxTokens {
        /// Which rule (`segment`, `parent`, `child`).
        rule: &'static str,
        /// The configured value.
        value: u32,
    },
    /// The overlap is not smaller than the segment length.
    #[error("{rule} chunk_overlap {overlap} must be smaller than max_tokens {max_tokens}")]
    Overlap {
        /// Which rule.
        rule: &'static str,
        /// The configured overlap.
        overlap: u32,
        /// The configured segment length.
        max_tokens: u32,
    },
    /// A separator is empty; Dify rejects custom rules without one.
    #[error("{rule} separator must not be empty")]
    EmptySeparator {
        /// Which rule.
        rule: &'static str,
    },
    /// Child chunks longer than their parents.
    #[error("child max_tokens {child} must not exceed parent max_tokens {parent}")]
    ChildLongerThanParent {
        /// Child segment length.
        child: u32,
        /// Parent segment length.
        parent: u32,
    },
    /// The full-doc threshold is zero or past Dify's parent cut-off.
    #[error("full_doc_max_words is {0}, expected 1..={MAX_FULL_DOC_WORDS}")]
    FullDocThreshold(u64),
    /// An existing dataset uses a form this tool cannot write.
    #[error("knowledge base uses doc_form {0:?}, which this tool does not write")]
    UnsupportedDocForm(String),
}

/// Which chunking the configuration asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChunkingMode {
    /// Parent-child chunks; full-doc parents for short pages, paragraph
    /// parents for long ones. Economy datasets fall back to `custom`.
    #[default]
    Hierarchical,
    /// Flat chunks with Dify's automatic rule.
    Automatic,
    /// Flat chunks with [`ChunkingConfig::segment`].
    Custom,
}

/// One segmentation rule, sent as Dify's `segmentation` object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentRule {
    /// Text to split on; must not be empty.
    pub separator: String,
    /// Largest chunk in tokens, 50..=4000.
    pub max_tokens: u32,
    /// Tokens shared by neighbouring chunks; less than `max_tokens`.
    #[serde(default)]
    pub chunk_overlap: u32,
}

impl SegmentRule {
    fn validate(&self, rule: &'static str) -> Result<(), ChunkingError> {
        if !(MIN_SEGMENT_TOKENS..=MAX_SEGMENT_TOKENS).contains(&self.max_tokens) {
            return Err(ChunkingError::MaxTokens { rule, value: self.max_tokens });
        }
        if self.chunk_overlap >= self.max_tokens {
            let (overlap, max_tokens) = (self.chunk_overlap, self.max_tokens);
            return Err(ChunkingError::Overlap { rule, overlap, max_tokens });
        }
        if self.separator.is_empty() {
            return Err(ChunkingError::EmptySeparator { rule });
        }
        Ok(())
    }

    fn to_segmentation(&self) -> Segmentation {
        Segmentation {
            separator: self.separator.clone(),
            max_tokens: self.max_tokens,
            chunk_overlap: Some(self.chunk_overlap),
        }
    }
}

/// The chunking settings of a sync run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChunkingConfig {
    /// Which chunking to use. Default is [`ChunkingMode::Hierarchical`].
    pub mode: ChunkingMode,
    /// Pages up to this many words are one full-document parent chunk.
    /// Default is [`DEFAULT_FULL_DOC_MAX_WORDS`].
    pub full_doc_max_words: u64,
    /// Parent chunks of long pages. Default: split on blank lines, 1000
    /// tokens, no overlap.
    pub parent: SegmentRule,
    /// Child chunks. Default: split on newlines, 200 tokens, no overlap.
    pub child: SegmentRule,
    /// Flat chunks (custom mode and the economy fallback). Default: split on
    /// blank lines, 500 tokens, 50 overlap.
    pub segment: SegmentRule,
    /// Collapse runs of whitespace before chunking. Default is `true`.
    pub remove_extra_spaces: bool,
    /// Strip URLs and e-mail addresses before chunking. Default is `false`
    /// (links are often the answer in documentation).
    pub remove_urls_emails: bool,
}

impl Default for ChunkingConfig {
    fn default() -> Self {
        Self {
            mode: ChunkingMode::default(),
            full_doc_max_words: DEFAULT_FULL_DOC_MAX_WORDS,
            parent: SegmentRule { separator: "\n\n".into(), max_tokens: 1000, chunk_overlap: 0 },
            child: SegmentRule { separator: "\n".into(), max_tokens: 200, chunk_overlap: 0 },
            segment: SegmentRule { separator: "\n\n".into(), max_tokens: 500, chunk_overlap: 50 },
            remove_extra_spaces: true,
            remove_urls_emails: false,
        }
    }
}

/// What to send with one page: the dataset's form and the page's rule.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkPlan {
    /// The dataset's `doc_form`; the same for every page of a dataset.
    pub doc_form: DocForm,
    /// The page's `process_rule`.
    pub process_rule: ProcessRule,
}

impl ChunkingConfig {
    /// Checks the limits Dify enforces only while indexing.
    ///
    /// # Errors
    /// The first setting Dify would reject.
    pub fn validate(&self) -> Result<(), ChunkingError> {
        self.segment.validate("segment")?;
        if self.mode != ChunkingMode::Hierarchical {
            return Ok(());
        }

        self.parent.validate("parent")?;
        self.child.validate("child")?;
        if self.child.max_tokens > self.parent.max_tokens {
            let (child, parent) = (self.child.max_tokens, self.parent.max_tokens);
            return Err(ChunkingError::ChildLongerThanParent { child, parent });
        }
        if !(1..=MAX_FULL_DOC_WORDS).contains(&self.full_doc_max_words) {
            return Err(ChunkingError::FullDocThreshold(self.full_doc_max_words));
        }
        Ok(())
    }

    /// Chooses the `doc_form` of a dataset.
    ///
    /// `existing` is the dataset's current `doc_form` (`None` while it has no
    /// documents); when set it wins, because Dify refuses any other form.
    ///
    /// # Errors
    /// [`ChunkingError::UnsupportedDocForm`] when the dataset already uses a
    /// form this tool does not write (`qa_model`).
    pub fn doc_form_for(
        &self,
        technique: IndexingTechnique,
        existing: Option<DocForm>,
    ) -> Result<DocForm, ChunkingError> {
        match existing {
            Some(form @ (DocForm::TextModel | DocForm::HierarchicalModel)) => return Ok(form),
            Some(other) => return Err(ChunkingError::UnsupportedDocForm(format!("{other:?}"))),
            None => {}
        }

        let wants_parents = self.mode == ChunkingMode::Hierarchical;
        Ok(if wants_parents && technique == IndexingTechnique::HighQuality {
            DocForm::HierarchicalModel
        } else {
            DocForm::TextModel
        })
    }

    /// The `doc_form` and `process_rule` for one page of a dataset.
    pub fn plan(&self, doc_form: DocForm, word_count: u64) -> ChunkPlan {
        let process_rule = match doc_form {
            DocForm::HierarchicalModel => self.hierarchical_rule(word_count),
            _ if self.mode == ChunkingMode::Automatic => ProcessRule::automatic(),
            _ => self.custom_rule(),
        };
        ChunkPlan { doc_form, process_rule }
    }

    fn hierarchical_rule(&self, word_count: u64) -> ProcessRule {
        let parent_mode = if word_count <= self.full_doc_max_words {
            ParentMode::FullDoc
        } else {
            ParentMode::Paragraph
        };
        ProcessRule {
            mode: ProcessMode::Hierarchical,
            rules: Some(ProcessRules {
                pre_processing_rules: self.pre_processing(),
                segmentation: Some(self.parent.to_segmentation()),
                parent_mode: Some(parent_mode),
                subchunk_segmentation: Some(self.child.to_segmentation()),
            }),
        }
    }

    fn custom_rule(&self) -> ProcessRule {
        ProcessRule {
            mode: ProcessMode::Custom,
            rules: Some(ProcessRules {
                pre_processing_rules: self.pre_processing(),
                segmentation: Some(self.segment.to_segmentation()),
                parent_mode: None,
                subchunk_segmentation: None,
            }),
        }
    }

    fn pre_processing(&self) -> Vec<PreProcessingRule> {
        let rule = |id, enabled| PreProcessingRule { id, enabled };
        vec![
            rule(PreProcessingRuleId::RemoveExtraSpaces, self.remove_extra_spaces),
            rule(PreProcessingRuleId::RemoveUrlsEmails, self.remove_urls_emails),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn default_config_is_valid() {
        assert_eq!(ChunkingConfig::default().validate(), Ok(()));
    }

    #[test]
    fn limits_dify_checks_late_are_config_errors() {
        let mut config = ChunkingConfig::default();
        config.segment.max_tokens = 4001;
        assert!(matches!(config.validate(), Err(ChunkingError::MaxTokens { value: 4001, .. })));

        let mut config = ChunkingConfig::default();
        config.child.max_tokens = 49;
        assert!(matches!(config.validate(), Err(ChunkingError::MaxTokens { rule: "child", .. })));

        let mut config = ChunkingConfig::default();
        config.segment.chunk_overlap = 500;
        assert!(matches!(config.validate(), Err(ChunkingError::Overlap { .. })));

        let mut config = ChunkingConfig::default();
        config.parent.separator.clear();
        assert_eq!(config.validate(), Err(ChunkingError::EmptySeparator { rule: "parent" }));

        let mut config = ChunkingConfig::default();
        config.child.max_tokens = 2000;
        assert!(matches!(config.validate(), Err(ChunkingError::ChildLongerThanParent { .. })));

        let config = ChunkingConfig { full_doc_max_words: 0, ..Default::default() };
        assert_eq!(config.validate(), Err(ChunkingError::FullDocThreshold(0)));
    }

    #[test]
    fn flat_modes_ignore_parent_settings() {
        let parent = SegmentRule { separator: String::new(), max_tokens: 100, chunk_overlap: 0 };
        let config = ChunkingConfig { mode: ChunkingMode::Custom, parent, ..Default::default() };
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn economy_datasets_fall_back_to_flat_chunks() {
        let config = ChunkingConfig::default();
        assert_eq!(config.doc_form_for(IndexingTechnique::Economy, None), Ok(DocForm::TextModel));
        assert_eq!(
            config.doc_form_for(IndexingTechnique::HighQuality, None),
            Ok(DocForm::HierarchicalModel)
        );
        let plan = config.plan(DocForm::TextModel, 10);
        assert_eq!(plan.process_rule.mode, ProcessMode::Custom);
    }

    #[test]
    fn an_existing_form_wins() {
        let config = ChunkingConfig { mode: ChunkingMode::Automatic, ..Default::default() };
        let form =
            config.doc_form_for(IndexingTechnique::HighQuality, Some(DocForm::HierarchicalModel));
        assert_eq!(form, Ok(DocForm::HierarchicalModel));
        assert!(matches!(
            config.doc_form_for(IndexingTechnique::Economy, Some(DocForm::QaModel)),
            Err(ChunkingError::UnsupportedDocForm(_))
        ));
    }

    #[test]
    fn parent_mode_follows_page_length() {
        let config = ChunkingConfig::default();
        let short = config.plan(DocForm::HierarchicalModel, DEFAULT_FULL_DOC_MAX_WORDS);
        let long = config.plan(DocForm::HierarchicalModel, DEFAULT_FULL_DOC_MAX_WORDS + 1);
        let mode = |plan: &ChunkPlan| plan.process_rule.rules.as_ref().unwrap().parent_mode;
        assert_eq!(mode(&short), Some(ParentMode::FullDoc));
        assert_eq!(mode(&long), Some(ParentMode::Paragraph));
    }

    #[test]
    fn rules_serialize_to_difys_shape() {
        let config = ChunkingConfig::default();
        let rule = serde_json::to_value(config.plan(DocForm::HierarchicalModel, 10).process_rule);
        assert_eq!(
            rule.unwrap(),
            json!({
                "mode": "hierarchical",
                "rules": {
                    "pre_processing_rules": [
                        {"id": "remove_extra_spaces", "enabled": true},
                        {"id": "remove_urls_emails", "enabled": false}
                    ],
                    "segmentation": {"separator": "\n\n", "max_tokens": 1000, "chunk_overlap": 0},
                    "parent_mode": "full-doc",
                    "subchunk_segmentation": {"separator": "\n", "max_tokens": 200, "chunk_overlap": 0}
                }
            })
        );
        let automatic = ChunkingConfig { mode: ChunkingMode::Automatic, ..Default::default() };
        let rule = serde_json::to_value(automatic.plan(DocForm::TextModel, 10).process_rule);
        assert_eq!(rule.unwrap(), json!({"mode": "automatic"}));
    }
}
