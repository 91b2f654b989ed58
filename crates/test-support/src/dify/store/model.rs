//! The stored records and their derived states.
//!
//! Records hold only what Dify would persist; everything a client sees that
//! depends on time (indexing status, display status) is derived on read from
//! [`Now`], so no background task is needed to "finish" indexing.

use std::collections::BTreeMap;

use serde_json::Value;
use tokio::time::Instant;

use super::Now;
use crate::dify::{DatasetView, DocumentView, MetadataFieldView};

/// A knowledge base.
pub(crate) struct Dataset {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) permission: String,
    pub(crate) indexing_technique: Option<String>,
    pub(crate) doc_form: Option<String>,
    pub(crate) embedding_model: Option<String>,
    pub(crate) embedding_model_provider: Option<String>,
    pub(crate) retrieval_model: Value,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
    pub(crate) built_in_field_enabled: bool,
    pub(crate) fields: Vec<MetaField>,
    pub(crate) documents: Vec<Document>,
    /// The rule reused by creates that send no `process_rule`.
    pub(crate) latest_rule: Option<ProcessRule>,
}

/// A custom metadata field.
#[derive(Clone)]
pub(crate) struct MetaField {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) field_type: String,
}

/// A dataset process rule (segmentation settings) with its id.
#[derive(Clone)]
pub(crate) struct ProcessRule {
    pub(crate) id: String,
    pub(crate) mode: String,
    pub(crate) rules: Value,
}

/// The upload file a text or file document is stored as.
#[derive(Clone)]
pub(crate) struct UploadFile {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) size: usize,
    pub(crate) extension: String,
    pub(crate) mime_type: String,
    pub(crate) created_at: f64,
}

/// A document.
pub(crate) struct Document {
    pub(crate) id: String,
    pub(crate) position: u64,
    pub(crate) name: String,
    pub(crate) text: String,
    pub(crate) batch: String,
    pub(crate) enabled: bool,
    pub(crate) archived: bool,
    pub(crate) disabled_at: Option<i64>,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
    pub(crate) created_from: &'static str,
    pub(crate) rule: ProcessRule,
    pub(crate) doc_form: String,
    pub(crate) doc_language: String,
    pub(crate) upload: UploadFile,
    /// Stored values by field name (Dify's `doc_metadata` JSON column).
    pub(crate) values: BTreeMap<String, Value>,
    /// Field ids bound to the document (Dify's binding rows).
    pub(crate) bindings: Vec<String>,
    pub(crate) segments: Vec<Segment>,
    pub(crate) hit_count: u64,
    pub(crate) write_count: u64,
    pub(crate) indexing: Indexing,
    /// An enable/disable/archive task is running until this point.
    pub(crate) busy: Option<Indexing>,
    /// Set at write time when the rule cannot be applied; the document ends
    /// in `error` with this message once "indexing" finishes.
    pub(crate) fail_reason: Option<String>,
    /// Word count and tokens before the latest write, shown in its response.
    pub(crate) shown_word_count: Option<usize>,
}

/// When a simulated background task finishes.
#[derive(Clone, Copy)]
pub(crate) struct Indexing {
    /// Not done before this instant.
    pub(crate) ready_at: Instant,
    /// Not done before a request later than this one.
    pub(crate) seq: u64,
    /// Wall-clock second it will be reported as done.
    pub(crate) done_wall: i64,
    /// Wall-clock second the write happened.
    pub(crate) started_wall: i64,
}

impl Indexing {
    pub(crate) fn start(now: Now, delay: std::time::Duration) -> Indexing {
        Indexing {
            ready_at: now.instant + delay,
            seq: now.seq,
            done_wall: now.secs() + delay.as_secs() as i64,
            started_wall: now.secs(),
        }
    }

    pub(crate) fn is_done(&self, now: Now) -> bool {
        now.seq > self.seq && now.instant >= self.ready_at
    }
}

/// A chunk.
#[derive(Clone)]
pub(crate) struct Segment {
    pub(crate) id: String,
    pub(crate) index_node_id: String,
    pub(crate) position: u64,
    pub(crate) content: String,
    pub(crate) answer: Option<String>,
    pub(crate) keywords: Vec<String>,
    pub(crate) enabled: bool,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
    pub(crate) hit_count: u64,
}

/// A workspace knowledge tag.
pub(crate) struct Tag {
    pub(crate) id: String,
    pub(crate) name: String,
    /// Ids of the datasets it is bound to.
    pub(crate) targets: Vec<String>,
}

/// Document indexing states a client can see.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum IndexState {
    Waiting,
    Completed,
    Error,
}

impl IndexState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            IndexState::Waiting => "waiting",
            IndexState::Completed => "completed",
            IndexState::Error => "error",
        }
    }
}

/// The content and indexing state one create or update writes.
pub(crate) struct Rewrite {
    pub(crate) text: String,
    pub(crate) rule: ProcessRule,
    pub(crate) fail_reason: Option<String>,
    pub(crate) segments: Vec<Segment>,
    pub(crate) indexing: Indexing,
}

impl Document {
    /// Applies a write: new content, indexing restarted. The response to the
    /// write shows the previous word count, as Dify's does.
    pub(crate) fn rewrite(&mut self, w: Rewrite, now: Now) {
        self.shown_word_count = (self.write_count > 0).then(|| self.text.chars().count());
        self.text = w.text;
        self.rule = w.rule;
        self.fail_reason = w.fail_reason;
        self.segments = w.segments;
        self.indexing = w.indexing;
        self.updated_at = now.secs();
        self.write_count += 1;
    }

    pub(crate) fn state(&self, now: Now) -> IndexState {
        if !self.indexing.is_done(now) {
            IndexState::Waiting
        } else if self.fail_reason.is_some() {
            IndexState::Error
        } else {
            IndexState::Completed
        }
    }

    /// Dify's `display_status` rules (archived wins over disabled).
    pub(crate) fn display_status(&self, now: Now) -> &'static str {
        match self.state(now) {
            IndexState::Waiting => "queuing",
            IndexState::Error => "error",
            IndexState::Completed if self.archived => "archived",
            IndexState::Completed if !self.enabled => "disabled",
            IndexState::Completed => "available",
        }
    }

    pub(crate) fn is_available(&self, now: Now) -> bool {
        self.display_status(now) == "available"
    }

    pub(crate) fn is_busy(&self, now: Now) -> bool {
        self.busy.is_some_and(|b| !b.is_done(now))
    }

    pub(crate) fn finish_indexing(&mut self, at: Instant, seq: u64) {
        for task in std::iter::once(&mut self.indexing).chain(self.busy.as_mut()) {
            task.ready_at = task.ready_at.min(at);
            task.seq = task.seq.min(seq);
        }
    }

    /// Visible segments: none until indexing completes.
    pub(crate) fn visible_segments(&self, now: Now) -> &[Segment] {
        if self.state(now) == IndexState::Completed { &self.segments } else { &[] }
    }

    pub(crate) fn has_metadata(&self) -> bool {
        !self.values.is_empty() || !self.bindings.is_empty()
    }

    pub(crate) fn view(&self, now: Now) -> DocumentView {
        DocumentView {
            id: self.id.clone(),
            position: self.position,
            name: self.name.clone(),
            text: self.text.clone(),
            enabled: self.enabled,
            archived: self.archived,
            indexing_status: self.state(now).as_str().to_owned(),
            display_status: self.display_status(now).to_owned(),
            batch: self.batch.clone(),
            doc_form: self.doc_form.clone(),
            doc_metadata: self.values.clone(),
            process_rule: serde_json::json!({"mode": self.rule.mode, "rules": self.rule.rules}),
            created_at: self.created_at,
            updated_at: self.updated_at,
            segment_count: self.segments.len(),
            write_count: self.write_count,
        }
    }
}

impl Dataset {
    pub(crate) fn view(&self, tags: &[Tag]) -> DatasetView {
        DatasetView {
            id: self.id.clone(),
            name: self.name.clone(),
            description: self.description.clone(),
            indexing_technique: self.indexing_technique.clone(),
            doc_form: self.doc_form.clone(),
            permission: self.permission.clone(),
            built_in_field_enabled: self.built_in_field_enabled,
            metadata_fields: self
                .fields
                .iter()
                .map(|f| MetadataFieldView {
                    id: f.id.clone(),
                    name: f.name.clone(),
                    field_type: f.field_type.clone(),
                })
                .collect(),
            tags: tags_of(tags, &self.id).map(|t| t.name.clone()).collect(),
            document_count: self.documents.len(),
        }
    }

    pub(crate) fn document(&self, id: &str) -> Option<&Document> {
        self.documents.iter().find(|d| d.id == id)
    }

    pub(crate) fn document_mut(&mut self, id: &str) -> Option<&mut Document> {
        self.documents.iter_mut().find(|d| d.id == id)
    }

    pub(crate) fn field(&self, id: &str) -> Option<&MetaField> {
        self.fields.iter().find(|f| f.id == id)
    }
}

/// Tags bound to a dataset.
pub(crate) fn tags_of<'a>(tags: &'a [Tag], dataset_id: &'a str) -> impl Iterator<Item = &'a Tag> {
    tags.iter().filter(move |t| t.targets.iter().any(|id| id == dataset_id))
}
