//! Chunk routes and retrieval.
//!
//! Retrieval is keyword search only: a chunk scores the share of the
//! query's words it contains (case-insensitive). That is what an economy
//! knowledge base offers on Dify, and semantic search on one fails the same
//! way it does there. Only chunks of completed, enabled, unarchived
//! documents are searched.

use std::collections::HashSet;

use serde_json::{Map, Value, json};

use super::datasets::NO_EMBEDDING_MODEL;
use super::model::{Dataset, Document, IndexState, Segment};
use super::render;
use super::rules;
use super::{Now, Store, lenient_int, page_of};
use crate::dify::reply::{Reply, Req, Validation};

/// Chunk-create schema errors come back as a bare `{"error": …}`.
fn bare_error(message: &str) -> Reply {
    Reply::json(400, json!({"error": message}))
}

impl Store {
    /// The document a segment route names, or Dify's 404.
    fn segment_doc<'a>(&'a self, req: &Req) -> Result<(&'a Dataset, &'a Document), Reply> {
        let ds = self.dataset(req)?;
        let doc =
            ds.document(req.param(1)).ok_or_else(|| Reply::not_found("Document not found."))?;
        Ok((ds, doc))
    }

    pub(super) fn list_segments(&mut self, req: &Req, now: Now) -> Reply {
        let (_, doc) = match self.segment_doc(req) {
            Ok(pair) => pair,
            Err(reply) => return reply,
        };
        let page = lenient_int(req.query("page"), 1);
        let limit = lenient_int(req.query("limit"), 20);
        let keyword = req.query("keyword").map(str::to_lowercase);
        let matching: Vec<&Segment> = doc
            .visible_segments(now)
            .iter()
            .filter(|s| keyword.as_deref().is_none_or(|k| s.content.to_lowercase().contains(k)))
            .collect();
        let rows = page_of(&matching, page, limit);
        let data: Vec<Value> =
            rows.iter().map(|s| render::segment(s, doc, &self.account_id)).collect();
        let has_more = data.len() as i64 == limit;
        Reply::ok(json!({
            "data": data, "doc_form": doc.doc_form, "total": matching.len(),
            "has_more": has_more, "limit": limit, "page": page
        }))
    }

    pub(super) fn create_segments(&mut self, req: &Req, now: Now) -> Reply {
        self.try_create_segments(req, now).unwrap_or_else(|reply| reply)
    }

    fn try_create_segments(&mut self, req: &Req, now: Now) -> Result<Reply, Reply> {
        let (_, doc) = self.segment_doc(req)?;
        if doc.state(now) != IndexState::Completed {
            return Err(Reply::not_found("Document is not completed."));
        }
        if !doc.enabled {
            return Err(Reply::not_found("Document is disabled."));
        }
        let needs_answer = doc.doc_form == "qa_model";
        let obj = req.json_object("SegmentCreatePayload")?;
        let items = parse_new_segments(&obj, needs_answer)?;
        let last = doc.segments.iter().map(|s| s.position).max().unwrap_or(0);
        let mut created = Vec::new();
        for (position, (content, answer, keywords)) in (last + 1..).zip(items) {
            created.push(Segment {
                id: self.new_id(),
                index_node_id: self.new_id(),
                position,
                keywords: keywords.unwrap_or_else(|| rules::keywords(&content)),
                content,
                answer,
                enabled: true,
                created_at: now.secs(),
                updated_at: now.secs(),
                hit_count: 0,
            });
        }
        let account = self.account_id.clone();
        let ds = self.dataset_mut(req)?;
        let doc =
            ds.document_mut(req.param(1)).ok_or_else(|| Reply::not_found("Document not found."))?;
        doc.segments.extend(created.iter().cloned());
        let doc = &*doc;
        let data: Vec<Value> = created.iter().map(|s| render::segment(s, doc, &account)).collect();
        Ok(Reply::ok(json!({"data": data, "doc_form": doc.doc_form})))
    }

    pub(super) fn get_segment(&mut self, req: &Req, now: Now) -> Reply {
        let (_, doc) = match self.segment_doc(req) {
            Ok(pair) => pair,
            Err(reply) => return reply,
        };
        match doc.visible_segments(now).iter().find(|s| s.id == req.param(2)) {
            Some(seg) => Reply::ok(json!({
                "data": render::segment(seg, doc, &self.account_id), "doc_form": doc.doc_form
            })),
            None => Reply::not_found("Segment not found."),
        }
    }

    pub(super) fn update_segment(&mut self, req: &Req, now: Now) -> Reply {
        self.try_update_segment(req, now).unwrap_or_else(|reply| reply)
    }

    fn try_update_segment(&mut self, req: &Req, now: Now) -> Result<Reply, Reply> {
        let obj = req.json_object("SegmentUpdatePayload")?;
        let Some(Value::Object(patch)) = obj.get("segment") else {
            let whole = Value::Object(obj.clone());
            return Err(Validation::new("SegmentUpdatePayload")
                .add("segment", "Field required", "missing", &whole)
                .into_reply());
        };
        let account = self.account_id.clone();
        let ds = self.dataset_mut(req)?;
        let doc =
            ds.document_mut(req.param(1)).ok_or_else(|| Reply::not_found("Document not found."))?;
        if doc.state(now) != IndexState::Completed {
            return Err(Reply::not_found("Segment not found."));
        }
        let seg = doc
            .segments
            .iter_mut()
            .find(|s| s.id == req.param(2))
            .ok_or_else(|| Reply::not_found("Segment not found."))?;
        apply_segment_patch(seg, patch, now);
        let seg = seg.clone();
        Ok(Reply::ok(
            json!({"data": render::segment(&seg, doc, &account), "doc_form": doc.doc_form}),
        ))
    }

    pub(super) fn delete_segment(&mut self, req: &Req, now: Now) -> Reply {
        let Ok(ds) = self.dataset_mut(req) else {
            return Reply::not_found("Dataset not found.");
        };
        let Some(doc) = ds.document_mut(req.param(1)) else {
            return Reply::not_found("Document not found.");
        };
        let before = doc.segments.len();
        if doc.state(now) == IndexState::Completed {
            doc.segments.retain(|s| s.id != req.param(2));
        }
        if doc.segments.len() == before {
            return Reply::not_found("Segment not found.");
        }
        Reply::no_content()
    }

    pub(super) fn retrieve(&mut self, req: &Req, now: Now) -> Reply {
        self.try_retrieve(req, now).unwrap_or_else(|reply| reply)
    }

    fn try_retrieve(&mut self, req: &Req, now: Now) -> Result<Reply, Reply> {
        let query = parse_retrieval(req)?;
        let ds = self.dataset(req)?;
        let model = query.model.clone().unwrap_or_else(|| ds.retrieval_model.clone());
        let method =
            model.get("search_method").and_then(Value::as_str).unwrap_or("semantic_search");
        if ds.indexing_technique.is_none() {
            return Err(Reply::error(
                400,
                "dataset_not_initialized",
                "The dataset is still being initialized or indexing. Please wait a moment.",
            ));
        }
        if ds.indexing_technique.as_deref() == Some("economy") && method != "keyword_search" {
            return Err(Reply::invalid_param(NO_EMBEDDING_MODEL));
        }

        let hits = search(ds, &query.text, &model, now);
        let records: Vec<Value> = hits.iter().map(|(doc_i, seg_i, score)| {
            let doc = &ds.documents[*doc_i];
            json!({
                "segment": render::retrieved_segment(&doc.segments[*seg_i], doc, &self.account_id),
                "child_chunks": null, "score": score, "tsne_position": null,
                "files": null, "summary": null
            })
        }).collect();
        self.bump_hits(req, &hits);
        Ok(Reply::ok(json!({"query": {"content": query.text}, "records": records})))
    }

    fn bump_hits(&mut self, req: &Req, hits: &[(usize, usize, f64)]) {
        let Ok(ds) = self.dataset_mut(req) else { return };
        for (doc_i, seg_i, _) in hits {
            if let Some(doc) = ds.documents.get_mut(*doc_i) {
                doc.hit_count += 1;
                if let Some(seg) = doc.segments.get_mut(*seg_i) {
                    seg.hit_count += 1;
                }
            }
        }
    }
}

type NewSegment = (String, Option<String>, Option<Vec<String>>);

fn parse_new_segments(
    obj: &Map<String, Value>,
    needs_answer: bool,
) -> Result<Vec<NewSegment>, Reply> {
    let Some(Value::Array(items)) = obj.get("segments") else {
        return Err(bare_error("Segments is required"));
    };
    items
        .iter()
        .map(|item| {
            let content =
                item.get("content").and_then(Value::as_str).filter(|c| !c.trim().is_empty());
            let Some(content) = content else {
                return Err(bare_error("Content is empty"));
            };
            let answer = item.get("answer").and_then(Value::as_str).map(str::to_owned);
            if needs_answer && answer.is_none() {
                return Err(bare_error("Answer is required"));
            }
            let keywords = item
                .get("keywords")
                .and_then(Value::as_array)
                .map(|k| k.iter().filter_map(Value::as_str).map(str::to_owned).collect());
            Ok((content.to_owned(), answer, keywords))
        })
        .collect()
}

fn apply_segment_patch(seg: &mut Segment, patch: &Map<String, Value>, now: Now) {
    if let Some(content) = patch.get("content").and_then(Value::as_str) {
        seg.content = content.to_owned();
    }
    if let Some(answer) = patch.get("answer").and_then(Value::as_str) {
        seg.answer = Some(answer.to_owned());
    }
    if let Some(keywords) = patch.get("keywords").and_then(Value::as_array) {
        seg.keywords = keywords.iter().filter_map(Value::as_str).map(str::to_owned).collect();
    }
    if let Some(enabled) = patch.get("enabled").and_then(Value::as_bool) {
        seg.enabled = enabled;
    }
    seg.updated_at = now.secs();
}

/// A validated retrieval request.
struct RetrievalQuery {
    text: String,
    model: Option<Value>,
}

fn parse_retrieval(req: &Req) -> Result<RetrievalQuery, Reply> {
    const MODEL: &str = "HitTestingPayload";
    let obj = req.json_object(MODEL)?;
    let whole = Value::Object(obj.clone());
    let mut v = Validation::new(MODEL);
    let text = match obj.get("query") {
        None | Some(Value::Null) => {
            v.missing("query", &whole);
            String::new()
        }
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            v.push("query", "Input should be a valid string", "string_type", other);
            String::new()
        }
    };
    if text.chars().count() > 250 {
        v.push(
            "query",
            "String should have at most 250 characters",
            "string_too_long",
            &Value::String(text.clone()),
        );
    }
    let model = match obj.get("retrieval_model") {
        None | Some(Value::Null) => None,
        Some(m) => {
            check_retrieval_model(m, &mut v);
            Some(m.clone())
        }
    };
    v.finish()?;
    if text.is_empty() {
        return Err(Reply::invalid_param("Query or attachment_ids is required"));
    }
    Ok(RetrievalQuery { text, model })
}

fn check_retrieval_model(model: &Value, v: &mut Validation) {
    let Value::Object(map) = model else {
        v.push("retrieval_model", "Input should be a valid dictionary", "dict_type", model);
        return;
    };
    for key in ["search_method", "reranking_enable", "top_k", "score_threshold_enabled"] {
        if !map.contains_key(key) {
            v.missing(&format!("retrieval_model.{key}"), model);
        }
    }
    let methods = ["keyword_search", "semantic_search", "full_text_search", "hybrid_search"];
    if let Some(m) = map.get("search_method")
        && !m.as_str().is_some_and(|s| methods.contains(&s))
    {
        let msg = "Input should be 'keyword_search', 'semantic_search', 'full_text_search' or \
                   'hybrid_search'";
        v.push("retrieval_model.search_method", msg, "enum", m);
    }
}

/// Scores every searchable chunk; returns (document index, segment index,
/// score), best first, cut to `top_k` and the score threshold.
fn search(ds: &Dataset, query: &str, model: &Value, now: Now) -> Vec<(usize, usize, f64)> {
    let terms: HashSet<String> = rules::words(query).map(|w| w.to_lowercase()).collect();
    if terms.is_empty() {
        return Vec::new();
    }
    let top_k = model.get("top_k").and_then(Value::as_u64).unwrap_or(4) as usize;
    let threshold = model
        .get("score_threshold_enabled")
        .and_then(Value::as_bool)
        .filter(|on| *on)
        .and_then(|_| model.get("score_threshold").and_then(Value::as_f64))
        .unwrap_or(0.0);
    let filters = model.get("metadata_filtering_conditions");

    let mut hits: Vec<(usize, usize, f64)> = Vec::new();
    for (di, doc) in ds.documents.iter().enumerate() {
        if !doc.is_available(now) || !passes_filters(ds, doc, filters) {
            continue;
        }
        for (si, seg) in doc.segments.iter().enumerate().filter(|(_, s)| s.enabled) {
            let words: HashSet<String> =
                rules::words(&seg.content).map(|w| w.to_lowercase()).collect();
            let matched = terms.iter().filter(|t| words.contains(*t)).count();
            let score = matched as f64 / terms.len() as f64;
            if matched > 0 && score >= threshold {
                hits.push((di, si, score));
            }
        }
    }
    hits.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)).then(a.1.cmp(&b.1)));
    hits.truncate(top_k);
    hits
}

/// Metadata filter conditions; conditions on names that are not fields of
/// the dataset are ignored, as the recorded server did.
fn passes_filters(ds: &Dataset, doc: &Document, filters: Option<&Value>) -> bool {
    let Some(filters) = filters else { return true };
    let conditions: Vec<&Value> = filters
        .get("conditions")
        .and_then(Value::as_array)
        .map(|c| c.iter().filter(|c| is_known_field(ds, c)).collect())
        .unwrap_or_default();
    if conditions.is_empty() {
        return true;
    }
    let results = conditions.iter().map(|c| condition_holds(doc, c));
    match filters.get("logical_operator").and_then(Value::as_str) {
        Some("or") => results.into_iter().any(|b| b),
        _ => results.into_iter().all(|b| b),
    }
}

fn is_known_field(ds: &Dataset, condition: &Value) -> bool {
    let name = condition.get("name").and_then(Value::as_str).unwrap_or("");
    ds.fields.iter().any(|f| f.name == name)
}

fn condition_holds(doc: &Document, c: &Value) -> bool {
    let name = c.get("name").and_then(Value::as_str).unwrap_or("");
    let op = c.get("comparison_operator").and_then(Value::as_str).unwrap_or("");
    let want = c.get("value").unwrap_or(&Value::Null);
    let have = doc.values.get(name).filter(|v| !v.is_null());
    match op {
        "empty" => have.is_none(),
        "not empty" => have.is_some(),
        _ => have.is_some_and(|h| compare(h, op, want)),
    }
}

fn compare(have: &Value, op: &str, want: &Value) -> bool {
    let hs = value_text(have);
    let ws = value_text(want);
    let (hn, wn) = (have.as_f64(), want.as_f64().or_else(|| ws.parse().ok()));
    match (op, hn, wn) {
        ("=", Some(a), Some(b)) => a == b,
        ("≠" | "!=", Some(a), Some(b)) => a != b,
        (">" | "after", Some(a), Some(b)) => a > b,
        ("<" | "before", Some(a), Some(b)) => a < b,
        ("≥" | ">=", Some(a), Some(b)) => a >= b,
        ("≤" | "<=", Some(a), Some(b)) => a <= b,
        _ => compare_text(&hs, op, &ws, want),
    }
}

fn compare_text(have: &str, op: &str, want: &str, raw: &Value) -> bool {
    match op {
        "is" | "=" => have == want,
        "is not" | "≠" => have != want,
        "contains" => have.contains(want),
        "not contains" => !have.contains(want),
        "start with" => have.starts_with(want),
        "end with" => have.ends_with(want),
        "in" => raw.as_array().is_some_and(|a| a.iter().any(|v| value_text(v) == have)),
        "not in" => !raw.as_array().is_some_and(|a| a.iter().any(|v| value_text(v) == have)),
        _ => false,
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
