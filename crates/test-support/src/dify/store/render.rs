//! JSON shapes of the records, field for field as Dify 1.13.2 sends them.
//!
//! Field sets were taken from the recorded exchanges; values that a real
//! server derives from subsystems we do not emulate (tokens, embedding
//! availability, summaries) are sent with the neutral values an economy
//! dataset shows.

use serde_json::{Value, json};

use super::Now;
use super::model::{Dataset, Document, IndexState, Segment, Tag, tags_of};

const AUTHOR_NAME: &str = "admin";

/// Names and types of Dify's built-in metadata fields, in its order.
pub(crate) const BUILT_INS: [(&str, &str); 5] = [
    ("document_name", "string"),
    ("uploader", "string"),
    ("upload_date", "time"),
    ("last_update_date", "time"),
    ("source", "string"),
];

pub(crate) fn dataset(ds: &Dataset, tags: &[Tag], account: &str, now: Now) -> Value {
    let available = ds.documents.iter().filter(|d| d.is_available(now)).count();
    // Documents still indexing have no word count yet.
    let words: usize = ds
        .documents
        .iter()
        .filter(|d| d.state(now) != IndexState::Waiting)
        .map(|d| d.text.chars().count())
        .sum();
    let tag_list: Vec<Value> = tags_of(tags, &ds.id)
        .map(|t| json!({"id": t.id, "name": t.name, "type": "knowledge"}))
        .collect();
    json!({
        "id": ds.id,
        "name": ds.name,
        "description": ds.description,
        "provider": "vendor",
        "permission": ds.permission,
        "data_source_type": (!ds.documents.is_empty()).then_some("upload_file"),
        "indexing_technique": ds.indexing_technique,
        "app_count": 0,
        "document_count": ds.documents.len(),
        "word_count": words,
        "created_by": account,
        "author_name": AUTHOR_NAME,
        "created_at": ds.created_at,
        "updated_by": account,
        "updated_at": ds.updated_at,
        "embedding_model": ds.embedding_model,
        "embedding_model_provider": ds.embedding_model_provider,
        "embedding_available": true,
        "retrieval_model_dict": ds.retrieval_model,
        "summary_index_setting": {
            "enable": null, "model_name": null, "model_provider_name": null, "summary_prompt": null
        },
        "tags": tag_list,
        "doc_form": ds.doc_form,
        "external_knowledge_info": {
            "external_knowledge_id": null,
            "external_knowledge_api_id": null,
            "external_knowledge_api_name": null,
            "external_knowledge_api_endpoint": null
        },
        "external_retrieval_model": {
            "top_k": 2, "score_threshold": 0.0, "score_threshold_enabled": null
        },
        "doc_metadata": dataset_fields(ds),
        "built_in_field_enabled": ds.built_in_field_enabled,
        "pipeline_id": null,
        "runtime_mode": "general",
        "chunk_structure": null,
        "icon_info": {"icon_type": null, "icon": null, "icon_background": null, "icon_url": null},
        "is_published": false,
        "total_documents": ds.documents.len(),
        "total_available_documents": available,
        "enable_api": true,
        "is_multimodal": false
    })
}

fn dataset_fields(ds: &Dataset) -> Vec<Value> {
    let custom =
        ds.fields.iter().map(|f| json!({"id": f.id, "name": f.name, "type": f.field_type}));
    let built_in = BUILT_INS
        .iter()
        .filter(|_| ds.built_in_field_enabled)
        .map(|(name, ty)| json!({"id": "built-in", "name": name, "type": ty}));
    custom.chain(built_in).collect()
}

fn upload_file(doc: &Document, account: &str) -> Value {
    let f = &doc.upload;
    json!({
        "id": f.id, "name": f.name, "size": f.size, "extension": f.extension,
        "mime_type": f.mime_type, "created_by": account, "created_at": f.created_at
    })
}

fn word_count(doc: &Document, now: Now) -> Value {
    match doc.state(now) {
        IndexState::Waiting => json!(doc.shown_word_count),
        _ => json!(doc.text.chars().count()),
    }
}

/// The document shape of create/update responses and list items.
pub(crate) fn document(doc: &Document, ds: &Dataset, account: &str, now: Now) -> Value {
    let state = doc.state(now);
    json!({
        "id": doc.id,
        "position": doc.position,
        "data_source_type": "upload_file",
        "data_source_info": {"upload_file_id": doc.upload.id},
        "data_source_detail_dict": {"upload_file": upload_file(doc, account)},
        "dataset_process_rule_id": doc.rule.id,
        "name": doc.name,
        "created_from": doc.created_from,
        "created_by": account,
        "created_at": doc.created_at,
        "tokens": (doc.shown_word_count.is_some() || state != IndexState::Waiting).then_some(0),
        "indexing_status": state.as_str(),
        "error": error_of(doc, now),
        "enabled": doc.enabled,
        "disabled_at": doc.disabled_at,
        "disabled_by": doc.disabled_at.map(|_| account),
        "archived": doc.archived,
        "display_status": doc.display_status(now),
        "word_count": word_count(doc, now),
        "hit_count": doc.hit_count,
        "doc_form": doc.doc_form,
        "doc_metadata": metadata_list(doc, ds),
        "summary_index_status": null,
        "need_summary": false
    })
}

fn error_of(doc: &Document, now: Now) -> Value {
    match doc.state(now) {
        IndexState::Error => json!(doc.fail_reason),
        _ => Value::Null,
    }
}

/// How `GET …/documents/{id}` renders, per its `metadata` query value.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum DetailMode {
    All,
    Only,
    Without,
}

pub(crate) fn document_detail(
    doc: &Document,
    ds: &Dataset,
    account: &str,
    now: Now,
    mode: DetailMode,
) -> Value {
    if mode == DetailMode::Only {
        return json!({"id": doc.id, "doc_type": null, "doc_metadata": metadata_list(doc, ds)});
    }
    let mut body = detail_core(doc, ds, account, now);
    if mode == DetailMode::All
        && let Value::Object(map) = &mut body
    {
        map.insert("doc_type".into(), Value::Null);
        map.insert("doc_metadata".into(), metadata_list(doc, ds));
    }
    body
}

fn detail_core(doc: &Document, ds: &Dataset, account: &str, now: Now) -> Value {
    let state = doc.state(now);
    let segments = doc.visible_segments(now);
    let total: usize = segments.iter().map(|s| s.content.chars().count()).sum();
    let average = if segments.is_empty() { 0 } else { total / segments.len() };
    let completed_at = (state != IndexState::Waiting).then_some(doc.indexing.done_wall);
    let rule = json!({"mode": doc.rule.mode, "rules": doc.rule.rules});
    json!({
        "id": doc.id,
        "position": doc.position,
        "data_source_type": "upload_file",
        "data_source_info": {"upload_file": upload_file(doc, account)},
        "dataset_process_rule_id": doc.rule.id,
        "dataset_process_rule": rule,
        "document_process_rule": {
            "id": doc.rule.id, "dataset_id": ds.id, "mode": doc.rule.mode, "rules": doc.rule.rules
        },
        "name": doc.name,
        "created_from": doc.created_from,
        "created_by": account,
        "created_at": doc.created_at,
        "tokens": 0,
        "indexing_status": state.as_str(),
        "completed_at": completed_at,
        "updated_at": doc.updated_at,
        "indexing_latency": completed_at.map(|_| 0.05),
        "error": error_of(doc, now),
        "enabled": doc.enabled,
        "disabled_at": doc.disabled_at,
        "disabled_by": doc.disabled_at.map(|_| account),
        "archived": doc.archived,
        "segment_count": segments.len(),
        "average_segment_length": average,
        "hit_count": doc.hit_count,
        "display_status": doc.display_status(now),
        "doc_form": doc.doc_form,
        "doc_language": doc.doc_language,
        "summary_index_status": null,
        "need_summary": false
    })
}

/// `doc_metadata` of list/detail bodies: `null` until something is stored,
/// then the bound custom fields followed by the five built-ins.
pub(crate) fn metadata_list(doc: &Document, ds: &Dataset) -> Value {
    if !doc.has_metadata() {
        return Value::Null;
    }
    let custom = ds.fields.iter().filter(|f| doc.bindings.contains(&f.id)).map(|f| {
        let value = doc.values.get(&f.name).cloned().unwrap_or(Value::Null);
        json!({"id": f.id, "name": f.name, "type": f.field_type, "value": value})
    });
    let built_in_values = [
        json!(doc.name),
        json!(AUTHOR_NAME),
        json!(format!("{:.1}", doc.created_at as f64)),
        json!(format!("{:.6}", doc.updated_at as f64)),
        json!("file_upload"),
    ];
    let built_in = BUILT_INS.iter().zip(built_in_values).map(
        |((name, ty), value)| json!({"id": "built-in", "name": name, "type": ty, "value": value}),
    );
    Value::Array(custom.chain(built_in).collect())
}

pub(crate) fn indexing_item(doc: &Document, now: Now) -> Value {
    let state = doc.state(now);
    let done = state != IndexState::Waiting;
    let at = |t: i64| if done { json!(t) } else { Value::Null };
    let started = doc.indexing.started_wall;
    let segments = doc.visible_segments(now).len();
    json!({
        "id": doc.id,
        "indexing_status": state.as_str(),
        "processing_started_at": at(started),
        "parsing_completed_at": at(started),
        "cleaning_completed_at": at(started),
        "splitting_completed_at": at(started),
        "completed_at": (state == IndexState::Completed).then_some(doc.indexing.done_wall),
        "paused_at": null,
        "error": error_of(doc, now),
        "stopped_at": (state == IndexState::Error).then_some(doc.indexing.done_wall),
        "completed_segments": segments,
        "total_segments": segments
    })
}

/// A chunk as the segment routes return it.
pub(crate) fn segment(seg: &Segment, doc: &Document, account: &str) -> Value {
    let mut body = segment_core(seg, doc, account);
    if let Value::Object(map) = &mut body {
        map.insert("updated_at".into(), json!(seg.updated_at));
        map.insert("updated_by".into(), Value::Null);
        map.insert("child_chunks".into(), json!([]));
        map.insert("attachments".into(), json!([]));
        map.insert("summary".into(), Value::Null);
    }
    body
}

/// A chunk inside a retrieval record, with its document.
pub(crate) fn retrieved_segment(seg: &Segment, doc: &Document, account: &str) -> Value {
    let mut body = segment_core(seg, doc, account);
    let metadata = if doc.values.is_empty() { Value::Null } else { json!(doc.values) };
    if let Value::Object(map) = &mut body {
        map.insert(
            "document".into(),
            json!({
                "id": doc.id, "data_source_type": "upload_file", "name": doc.name,
                "doc_type": null, "doc_metadata": metadata
            }),
        );
    }
    body
}

fn segment_core(seg: &Segment, doc: &Document, account: &str) -> Value {
    let hash = content_hash(&seg.content);
    json!({
        "id": seg.id,
        "position": seg.position,
        "document_id": doc.id,
        "content": seg.content,
        "sign_content": seg.content,
        "answer": seg.answer,
        "word_count": seg.content.chars().count(),
        "tokens": 0,
        "keywords": seg.keywords,
        "index_node_id": seg.index_node_id,
        "index_node_hash": hash,
        "hit_count": seg.hit_count,
        // Disabling a document disables its chunks in the index.
        "enabled": seg.enabled && doc.enabled,
        "disabled_at": null,
        "disabled_by": null,
        "status": "completed",
        "created_by": account,
        "created_at": seg.created_at,
        "indexing_at": seg.created_at,
        "completed_at": seg.created_at,
        "error": null,
        "stopped_at": null
    })
}

/// A stable 64-hex-digit fingerprint (FNV-1a, four lanes); Dify sends a
/// SHA-256 here, which clients only store or compare.
fn content_hash(text: &str) -> String {
    (0u64..4)
        .map(|lane| {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ lane.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            for b in text.bytes() {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
            format!("{h:016x}")
        })
        .collect()
}
