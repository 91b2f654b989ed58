//! Document routes: create and update (text and file), list, read, delete,
//! indexing status, and the enable/disable/archive switch.
//!
//! All writes go through [`Store::write_document`], which holds the rule
//! that matters most to an ingestion tool: a create whose name equals an
//! *enabled* document's name replaces that document in place (same id, new
//! batch, old batch forgotten), while update-by-text keeps the batch.

use serde_json::{Map, Value, json};

use super::datasets::NO_EMBEDDING_MODEL;
use super::model::{Document, Indexing, ProcessRule, Rewrite, Segment, UploadFile};
use super::render::{self, DetailMode};
use super::rules::{self, CheckedRule};
use super::{Now, Store, lenient_int, page_of};
use crate::dify::reply::{FilePart, Reply, Req, Validation, check_literal, opt_str, req_str};

const DOC_FORMS: [&str; 3] = ["text_model", "hierarchical_model", "qa_model"];
const TECHNIQUES: [&str; 2] = ["high_quality", "economy"];
const STATUS_ACTIONS: [&str; 4] = ["enable", "disable", "archive", "un_archive"];
/// Dify's `UPLOAD_FILE_SIZE_LIMIT` (15 MB).
const MAX_FILE_BYTES: usize = 15 * 1024 * 1024;
const FILE_EXTENSIONS: [&str; 14] = [
    "txt",
    "markdown",
    "md",
    "mdx",
    "pdf",
    "html",
    "htm",
    "xlsx",
    "xls",
    "docx",
    "csv",
    "vtt",
    "properties",
    "json",
];

/// Everything a create needs after validation.
struct NewContent {
    name: String,
    text: String,
    size: usize,
    extension: String,
    mime_type: String,
    rule: Option<CheckedRule>,
    doc_form: Option<String>,
    doc_language: String,
    indexing_technique: Option<String>,
    /// Whether an enabled same-name document is replaced (Dify's default).
    replace_same_name: bool,
    /// Reply when neither the request nor the dataset has a process rule.
    missing_rule: fn() -> Reply,
}

/// Create-by-text without any rule hits an assertion in Dify's service.
fn missing_rule_text() -> Reply {
    Reply::error(500, "unknown", "Internal Server Error")
}

fn missing_rule_file() -> Reply {
    Reply::invalid_param("process_rule is required.")
}

/// Dify stores the text as an upload file named `name[:200]`.
fn truncate_name(name: &str) -> String {
    name.chars().take(200).collect()
}

fn split_extension(file_name: &str) -> String {
    file_name.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase()).unwrap_or_default()
}

fn mime_for(extension: &str) -> &'static str {
    match extension {
        "md" | "markdown" | "mdx" => "text/markdown",
        "html" | "htm" => "text/html",
        "pdf" => "application/pdf",
        "csv" => "text/csv",
        "json" => "application/json",
        _ => "text/plain",
    }
}

fn optional_rule(obj: &Map<String, Value>, model: &str) -> Result<Option<CheckedRule>, Reply> {
    match obj.get("process_rule") {
        None | Some(Value::Null) => Ok(None),
        Some(value) => rules::check(value, model).map(Some),
    }
}

fn check_doc_form(doc_form: Option<&str>) -> Result<(), Reply> {
    match doc_form {
        Some(f) if !DOC_FORMS.contains(&f) => Err(Reply::invalid_param("Invalid doc_form.")),
        _ => Ok(()),
    }
}

impl Store {
    pub(super) fn create_by_text(&mut self, req: &Req, now: Now) -> Reply {
        let result = text_content(req).and_then(|content| self.write_document(req, content, now));
        result.unwrap_or_else(|reply| reply)
    }

    pub(super) fn create_by_file(&mut self, req: &Req, now: Now) -> Reply {
        let result = file_content(req).and_then(|content| self.write_document(req, content, now));
        result.unwrap_or_else(|reply| reply)
    }

    /// Creates a document or replaces an enabled same-name one.
    fn write_document(&mut self, req: &Req, c: NewContent, now: Now) -> Result<Reply, Reply> {
        let idx = self
            .dataset_index(req.param(0))
            .ok_or_else(|| Reply::not_found("Dataset not found."))?;
        let technique = self.resolve_technique(idx, &c)?;
        let doc_form = self.resolve_doc_form(idx, &c)?;
        let (rule, fail_reason) = self.resolve_rule(idx, &c)?;
        let upload = self.new_upload(&c.name, c.size, &c.extension, &c.mime_type, now);
        let rewrite = self.prepare_rewrite(c.text, rule.clone(), fail_reason, now);
        let batch = self.new_batch(now);
        let new_id = self.new_id();

        let ds = &mut self.datasets[idx];
        ds.indexing_technique = Some(technique);
        ds.doc_form = Some(doc_form.clone());
        ds.latest_rule = Some(rule);
        let doc_index =
            place_document(&mut ds.documents, &c.name, c.replace_same_name, new_id, now);
        let doc = &mut ds.documents[doc_index];
        doc.batch = batch.clone();
        doc.doc_form = doc_form;
        doc.doc_language = c.doc_language;
        doc.upload = upload;
        doc.rewrite(rewrite, now);
        tracing::debug!(document = %doc.id, writes = doc.write_count, "document written");

        let ds = &self.datasets[idx];
        let body = render::document(&ds.documents[doc_index], ds, &self.account_id, now);
        Ok(Reply::ok(json!({"document": body, "batch": batch})))
    }

    /// New text and rule, chunked, with indexing restarted.
    fn prepare_rewrite(
        &mut self,
        text: String,
        rule: ProcessRule,
        fail_reason: Option<String>,
        now: Now,
    ) -> Rewrite {
        let segments = self.make_segments(rules::split(&text, &rule.mode, &rule.rules), now);
        let indexing = Indexing::start(now, self.indexing_delay);
        Rewrite { text, rule, fail_reason, segments, indexing }
    }

    fn resolve_technique(&self, idx: usize, c: &NewContent) -> Result<String, Reply> {
        if let Some(t) = &self.datasets[idx].indexing_technique {
            return Ok(t.clone());
        }
        match c.indexing_technique.as_deref() {
            None => Err(Reply::invalid_param("indexing_technique is required.")),
            Some("high_quality") => Err(Reply::invalid_param(NO_EMBEDDING_MODEL)),
            Some(t) => Ok(t.to_owned()),
        }
    }

    fn resolve_doc_form(&self, idx: usize, c: &NewContent) -> Result<String, Reply> {
        let ds_form = self.datasets[idx].doc_form.clone();
        let wanted = c
            .doc_form
            .clone()
            .or_else(|| ds_form.clone())
            .unwrap_or_else(|| "text_model".to_owned());
        match ds_form {
            Some(f) if f != wanted => {
                Err(Reply::invalid_param("doc_form is different from the dataset doc_form."))
            }
            _ => Ok(wanted),
        }
    }

    /// The request's rule (a new rule id) or the dataset's latest one.
    fn resolve_rule(
        &mut self,
        idx: usize,
        c: &NewContent,
    ) -> Result<(ProcessRule, Option<String>), Reply> {
        match &c.rule {
            Some(checked) => Ok((self.new_rule(checked), checked.fail_reason.clone())),
            None => match &self.datasets[idx].latest_rule {
                Some(rule) => Ok((rule.clone(), None)),
                None => Err((c.missing_rule)()),
            },
        }
    }

    fn make_segments(&mut self, contents: Vec<String>, now: Now) -> Vec<Segment> {
        contents
            .into_iter()
            .enumerate()
            .map(|(i, content)| Segment {
                id: self.new_id(),
                index_node_id: self.new_id(),
                position: i as u64 + 1,
                keywords: rules::keywords(&content),
                content,
                answer: None,
                enabled: true,
                created_at: now.secs(),
                updated_at: now.secs(),
                hit_count: 0,
            })
            .collect()
    }

    fn new_upload(
        &mut self,
        name: &str,
        size: usize,
        ext: &str,
        mime: &str,
        now: Now,
    ) -> UploadFile {
        UploadFile {
            id: self.new_id(),
            name: name.to_owned(),
            size,
            extension: ext.to_owned(),
            mime_type: mime.to_owned(),
            created_at: now.wall,
        }
    }

    pub(super) fn update_by_text(&mut self, req: &Req, now: Now) -> Reply {
        let result = text_update(req).and_then(|u| self.apply_update(req, u, now));
        result.unwrap_or_else(|reply| reply)
    }

    pub(super) fn update_by_file(&mut self, req: &Req, now: Now) -> Reply {
        let result = file_update(req).and_then(|u| self.apply_update(req, u, now));
        result.unwrap_or_else(|reply| reply)
    }

    fn apply_update(&mut self, req: &Req, u: Update, now: Now) -> Result<Reply, Reply> {
        let idx = self
            .dataset_index(req.param(0))
            .ok_or_else(|| Reply::not_found("Dataset not found."))?;
        let doc_id = req.param(1);
        let (old_rule, old_text) = self.check_update(idx, doc_id, &u, now)?;
        let (rule, fail_reason) = match &u.rule {
            Some(checked) => (self.new_rule(checked), checked.fail_reason.clone()),
            None => (old_rule, None),
        };
        let upload = u
            .content
            .as_ref()
            .map(|c| self.new_upload(&c.name, c.size, &c.extension, &c.mime_type, now));
        let text = u.content.as_ref().map_or(old_text, |c| c.text.clone());
        let rewrite = self.prepare_rewrite(text, rule.clone(), fail_reason, now);

        let ds = &mut self.datasets[idx];
        if u.rule.is_some() {
            ds.latest_rule = Some(rule);
        }
        let doc = ds.document_mut(doc_id).ok_or_else(|| Reply::not_found("Document not found"))?;
        if let (Some(c), Some(upload)) = (u.content, upload) {
            doc.name = c.name;
            doc.upload = upload;
        }
        if let Some(language) = u.doc_language {
            doc.doc_language = language;
        }
        // The recorded server reports updated documents as created from the web.
        doc.created_from = "web";
        doc.rewrite(rewrite, now);

        let ds = &self.datasets[idx];
        let doc = ds.document(doc_id).ok_or_else(|| Reply::not_found("Document not found"))?;
        let body = render::document(doc, ds, &self.account_id, now);
        Ok(Reply::ok(json!({"document": body, "batch": doc.batch})))
    }

    /// Dify's preconditions for an update; returns the document's current
    /// rule and text.
    fn check_update(
        &self,
        idx: usize,
        doc_id: &str,
        u: &Update,
        now: Now,
    ) -> Result<(ProcessRule, String), Reply> {
        let ds = &self.datasets[idx];
        let doc = ds.document(doc_id).ok_or_else(|| Reply::not_found("Document not found"))?;
        if !doc.is_available(now) {
            return Err(Reply::invalid_param("Document is not available"));
        }
        if u.content.is_none() && u.rule.is_none() {
            return Err(Reply::invalid_param("Data source or Process rule is required"));
        }
        if ds.doc_form.as_deref().unwrap_or("text_model") != u.doc_form {
            return Err(Reply::invalid_param("doc_form is different from the dataset doc_form."));
        }
        // The name column holds 255 characters and update paths do not
        // truncate: the real server fails with a database error.
        if u.content.as_ref().is_some_and(|c| c.name.chars().count() > 255) {
            return Err(Reply::error(500, "unknown", "Internal Server Error"));
        }
        Ok((doc.rule.clone(), doc.text.clone()))
    }

    fn new_rule(&mut self, checked: &CheckedRule) -> ProcessRule {
        ProcessRule { id: self.new_id(), mode: checked.mode.clone(), rules: checked.rules.clone() }
    }

    pub(super) fn list_documents(&mut self, req: &Req, now: Now) -> Reply {
        let Ok(ds) = self.dataset(req) else {
            return Reply::not_found("Dataset not found.");
        };
        let page = lenient_int(req.query("page"), 1);
        let limit = lenient_int(req.query("limit"), 20);
        let pattern = req.query("keyword").filter(|k| !k.is_empty()).map(|k| format!("%{k}%"));
        let status = req.query("status");

        let mut matching: Vec<&Document> = ds
            .documents
            .iter()
            .filter(|d| pattern.as_deref().is_none_or(|p| like(&d.name, p)))
            .filter(|d| status.is_none_or(|s| d.display_status(now) == s))
            .collect();
        matching.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.position.cmp(&a.position)));
        let rows = page_of(&matching, page, limit);
        let data: Vec<Value> =
            rows.iter().map(|d| render::document(d, ds, &self.account_id, now)).collect();
        let has_more = data.len() as i64 == limit;
        Reply::ok(json!({
            "data": data, "has_more": has_more, "limit": limit,
            "total": matching.len(), "page": page
        }))
    }

    pub(super) fn get_document(&mut self, req: &Req, now: Now) -> Reply {
        let mode = match req.query("metadata").unwrap_or("all") {
            "all" => DetailMode::All,
            "only" => DetailMode::Only,
            "without" => DetailMode::Without,
            other => {
                let message = format!("Invalid metadata value: {other}");
                return Reply::error(400, "invalid_metadata", &message);
            }
        };
        let Ok(ds) = self.dataset(req) else {
            return Reply::not_found("Dataset not found.");
        };
        match ds.document(req.param(1)) {
            Some(doc) => Reply::ok(render::document_detail(doc, ds, &self.account_id, now, mode)),
            None => Reply::not_found("Document not found."),
        }
    }

    pub(super) fn delete_document(&mut self, req: &Req, _now: Now) -> Reply {
        let doc_id = req.param(1).to_owned();
        let Ok(ds) = self.dataset_mut(req) else {
            return Reply::not_found("Dataset not found.");
        };
        let Some(i) = ds.documents.iter().position(|d| d.id == doc_id) else {
            return Reply::not_found("Document Not Exists.");
        };
        if ds.documents[i].archived {
            return Reply::error(
                403,
                "archived_document_immutable",
                "The archived document is not editable.",
            );
        }
        ds.documents.remove(i);
        Reply::no_content()
    }

    pub(super) fn indexing_status(&mut self, req: &Req, now: Now) -> Reply {
        let Ok(ds) = self.dataset(req) else {
            return Reply::not_found("Dataset not found.");
        };
        let batch = req.param(1);
        let data: Vec<Value> = ds
            .documents
            .iter()
            .filter(|d| d.batch == batch)
            .map(|d| render::indexing_item(d, now))
            .collect();
        if data.is_empty() {
            return Reply::not_found("Documents not found.");
        }
        Reply::ok(json!({"data": data}))
    }

    pub(super) fn document_status(&mut self, req: &Req, now: Now) -> Reply {
        self.try_document_status(req, now).unwrap_or_else(|reply| reply)
    }

    fn try_document_status(&mut self, req: &Req, now: Now) -> Result<Reply, Reply> {
        let action = req.param(1).to_owned();
        if !STATUS_ACTIONS.contains(&action.as_str()) {
            let message = format!(
                "Invalid action: {action}. Must be one of \
                 ['enable', 'disable', 'archive', 'un_archive']"
            );
            return Err(Reply::error(400, "invalid_action", &message));
        }
        let obj = req.json_object("DocumentStatusPayload")?;
        let ids: Vec<String> = match obj.get("document_ids") {
            Some(Value::Array(items)) => {
                items.iter().filter_map(Value::as_str).map(str::to_owned).collect()
            }
            _ => Vec::new(),
        };
        let delay = self.indexing_delay;
        let ds = self.dataset_mut(req)?;
        for id in &ids {
            if let Some(doc) = ds.document(id) {
                check_status_change(doc, &action, now)?;
            }
        }
        for id in &ids {
            if let Some(doc) = ds.document_mut(id) {
                apply_status_change(doc, &action, now, delay);
            }
        }
        Ok(Reply::success())
    }
}

fn check_status_change(doc: &Document, action: &str, now: Now) -> Result<(), Reply> {
    if doc.is_busy(now) {
        let message = format!("Document:{} is being indexed, please try again later", doc.name);
        return Err(Reply::error(400, "invalid_action", &message));
    }
    if action == "disable" && doc.enabled && doc.state(now) != super::model::IndexState::Completed {
        let message = format!("Document:{} is not completed.", doc.name);
        return Err(Reply::error(400, "invalid_action", &message));
    }
    Ok(())
}

fn apply_status_change(doc: &mut Document, action: &str, now: Now, delay: std::time::Duration) {
    let changed = match action {
        "enable" if !doc.enabled => {
            doc.enabled = true;
            doc.disabled_at = None;
            true
        }
        "disable" if doc.enabled => {
            doc.enabled = false;
            doc.disabled_at = Some(now.secs());
            true
        }
        "archive" if !doc.archived => {
            doc.archived = true;
            true
        }
        "un_archive" if doc.archived => {
            doc.archived = false;
            true
        }
        _ => false,
    };
    if changed {
        // Dify flags the document while the index task runs.
        doc.busy = Some(Indexing::start(now, delay));
        doc.updated_at = now.secs();
    }
}

/// The index of the enabled same-name document to replace, or of a new one
/// appended at the next position.
fn place_document(
    docs: &mut Vec<Document>,
    name: &str,
    replace_same_name: bool,
    new_id: String,
    now: Now,
) -> usize {
    let existing = docs.iter().position(|d| d.enabled && d.name == name);
    if let Some(i) = existing.filter(|_| replace_same_name) {
        return i;
    }
    let position = docs.iter().map(|d| d.position).max().unwrap_or(0) + 1;
    docs.push(blank_document(new_id, position, name, now));
    docs.len() - 1
}

fn blank_document(id: String, position: u64, name: &str, now: Now) -> Document {
    Document {
        id,
        position,
        name: name.to_owned(),
        text: String::new(),
        batch: String::new(),
        enabled: true,
        archived: false,
        disabled_at: None,
        created_at: now.secs(),
        updated_at: now.secs(),
        created_from: "api",
        rule: ProcessRule {
            id: String::new(),
            mode: "automatic".to_owned(),
            rules: rules::automatic_rules(),
        },
        doc_form: "text_model".to_owned(),
        doc_language: "English".to_owned(),
        upload: UploadFile {
            id: String::new(),
            name: name.to_owned(),
            size: 0,
            extension: "txt".to_owned(),
            mime_type: "text/plain".to_owned(),
            created_at: now.wall,
        },
        values: Default::default(),
        bindings: Vec::new(),
        segments: Vec::new(),
        hit_count: 0,
        write_count: 0,
        indexing: Indexing::start(now, std::time::Duration::ZERO),
        busy: None,
        fail_reason: None,
        shown_word_count: None,
    }
}

/// Validates a create-by-text body.
fn text_content(req: &Req) -> Result<NewContent, Reply> {
    const MODEL: &str = "DocumentTextCreatePayload";
    let obj = req.json_object(MODEL)?;
    let whole = Value::Object(obj.clone());
    let mut v = Validation::new(MODEL);
    let name = req_str(&obj, "name", &whole, &mut v);
    let text = req_str(&obj, "text", &whole, &mut v);
    let technique = opt_str(&obj, "indexing_technique", &mut v);
    check_literal("indexing_technique", technique.as_deref(), &TECHNIQUES, &mut v);
    let doc_form = opt_str(&obj, "doc_form", &mut v);
    let doc_language = opt_str(&obj, "doc_language", &mut v);
    v.finish()?;
    let rule = optional_rule(&obj, MODEL)?;
    check_doc_form(doc_form.as_deref())?;
    if technique.is_none() {
        return Err(Reply::invalid_param("indexing_technique is required."));
    }

    let text = text.unwrap_or_default();
    Ok(NewContent {
        name: truncate_name(&name.unwrap_or_default()),
        size: text.len(),
        text,
        extension: "txt".to_owned(),
        mime_type: "text/plain".to_owned(),
        rule,
        doc_form,
        doc_language: doc_language.unwrap_or_else(|| "English".to_owned()),
        indexing_technique: technique,
        replace_same_name: true,
        missing_rule: missing_rule_text,
    })
}

/// The single `file` part of a multipart request, with Dify's errors.
fn single_file(req: &Req, required: bool) -> Result<Option<&FilePart>, Reply> {
    let files: Vec<&FilePart> =
        req.form.iter().flat_map(|f| f.files.iter()).filter(|p| p.field == "file").collect();
    match files.as_slice() {
        [] if required => Err(Reply::error(400, "no_file_uploaded", "Please upload your file.")),
        [] => Ok(None),
        [one] => Ok(Some(*one)),
        _ => Err(Reply::error(400, "too_many_files", "Only one file is allowed.")),
    }
}

/// Name, text and type of an uploaded file, with Dify's size/type errors.
fn file_parts(part: &FilePart) -> Result<(String, String, usize, String), Reply> {
    let name = match part.file_name.as_deref() {
        Some(n) if !n.is_empty() => n.to_owned(),
        _ => {
            return Err(Reply::error(
                400,
                "filename_not_exists_error",
                "The specified filename does not exist.",
            ));
        }
    };
    if part.data.len() > MAX_FILE_BYTES {
        return Err(Reply::error(413, "file_too_large", "File size exceeded. 15 MB is the limit."));
    }
    let extension = split_extension(&name);
    if !FILE_EXTENSIONS.contains(&extension.as_str()) {
        return Err(Reply::error(415, "unsupported_file_type", "File type not allowed."));
    }
    let text = String::from_utf8_lossy(&part.data).into_owned();
    Ok((name, text, part.data.len(), extension))
}

/// The `data` form field as a JSON object (absent means `{}`).
fn form_data(req: &Req, model: &str) -> Result<Map<String, Value>, Reply> {
    let Some(raw) = req.form.as_ref().and_then(|f| f.field("data")) else {
        return Ok(Map::new());
    };
    match serde_json::from_str::<Value>(raw) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(Validation::new(model)
            .add("", "Input should be a valid dictionary", "dict_type", &other)
            .into_reply()),
        Err(_) => Err(Reply::bad_request()),
    }
}

fn file_content(req: &Req) -> Result<NewContent, Reply> {
    const MODEL: &str = "KnowledgeConfig";
    let part = single_file(req, true)?
        .ok_or_else(|| Reply::error(400, "no_file_uploaded", "Please upload your file."))?;
    let (name, text, size, extension) = file_parts(part)?;
    let data = form_data(req, MODEL)?;
    let mut v = Validation::new(MODEL);
    let technique = opt_str(&data, "indexing_technique", &mut v);
    check_literal("indexing_technique", technique.as_deref(), &TECHNIQUES, &mut v);
    let doc_form = opt_str(&data, "doc_form", &mut v);
    let doc_language = opt_str(&data, "doc_language", &mut v);
    v.finish()?;
    let rule = optional_rule(&data, MODEL)?;
    check_doc_form(doc_form.as_deref())?;

    Ok(NewContent {
        name: truncate_name(&name),
        mime_type: mime_for(&extension).to_owned(),
        text,
        size,
        extension,
        rule,
        doc_form,
        doc_language: doc_language.unwrap_or_else(|| "English".to_owned()),
        indexing_technique: technique,
        replace_same_name: data.get("duplicate").and_then(Value::as_bool).unwrap_or(true),
        missing_rule: missing_rule_file,
    })
}

/// A validated update.
struct Update {
    content: Option<NewContent>,
    rule: Option<CheckedRule>,
    doc_form: String,
    doc_language: Option<String>,
}

fn text_update(req: &Req) -> Result<Update, Reply> {
    const MODEL: &str = "DocumentTextUpdate";
    let obj = req.json_object(MODEL)?;
    let whole = Value::Object(obj.clone());
    let mut v = Validation::new(MODEL);
    let name = opt_str(&obj, "name", &mut v);
    let text = opt_str(&obj, "text", &mut v);
    let doc_form = opt_str(&obj, "doc_form", &mut v);
    let doc_language = opt_str(&obj, "doc_language", &mut v);
    if text.is_some() && name.is_none() {
        v.push("", "Value error, name is required when text is provided", "value_error", &whole);
    }
    v.finish()?;
    let rule = optional_rule(&obj, MODEL)?;
    check_doc_form(doc_form.as_deref())?;

    let content = match (name, text) {
        (Some(name), Some(text)) => Some(NewContent {
            name,
            size: text.len(),
            text,
            extension: "txt".to_owned(),
            mime_type: "text/plain".to_owned(),
            rule: None,
            doc_form: None,
            doc_language: String::new(),
            indexing_technique: None,
            replace_same_name: false,
            missing_rule: missing_rule_text,
        }),
        _ => None,
    };
    Ok(Update {
        content,
        rule,
        doc_form: doc_form.unwrap_or_else(|| "text_model".to_owned()),
        doc_language,
    })
}

fn file_update(req: &Req) -> Result<Update, Reply> {
    const MODEL: &str = "KnowledgeConfig";
    let data = form_data(req, MODEL)?;
    let mut v = Validation::new(MODEL);
    let doc_form = opt_str(&data, "doc_form", &mut v);
    let doc_language = opt_str(&data, "doc_language", &mut v);
    v.finish()?;
    let rule = optional_rule(&data, MODEL)?;
    check_doc_form(doc_form.as_deref())?;

    let content = match single_file(req, false)? {
        Some(part) => {
            let (name, text, size, extension) = file_parts(part)?;
            Some(NewContent {
                name,
                mime_type: mime_for(&extension).to_owned(),
                text,
                size,
                extension,
                rule: None,
                doc_form: None,
                doc_language: String::new(),
                indexing_technique: None,
                replace_same_name: false,
                missing_rule: missing_rule_file,
            })
        }
        None => None,
    };
    Ok(Update {
        content,
        rule,
        doc_form: doc_form.unwrap_or_else(|| "text_model".to_owned()),
        doc_language,
    })
}

/// SQL `LIKE` with `%` (any run) and `_` (one character), case-sensitive,
/// as Dify's keyword filter behaves on PostgreSQL.
pub(crate) fn like(text: &str, pattern: &str) -> bool {
    let t: Vec<char> = text.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    // Classic wildcard matching with backtracking to the last `%`.
    let (mut ti, mut pi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '_' || p[pi] == t[ti]) && p[pi] != '%' {
            ti += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == '%' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '%')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_is_case_sensitive_with_wildcards() {
        assert!(like("alpha.txt", "%alpha%"));
        assert!(!like("Alpha.txt", "%alpha%"));
        assert!(like("a_b", "%a_b%"));
        assert!(like("axb", "%a_b%"), "underscore matches any one character");
        assert!(like("anything", "%"));
        assert!(like("ab-cd", "%b%d%"));
        assert!(!like("abc", "%abd%"));
    }

    #[test]
    fn names_truncate_to_200_characters() {
        assert_eq!(truncate_name(&"é".repeat(300)).chars().count(), 200);
    }
}
