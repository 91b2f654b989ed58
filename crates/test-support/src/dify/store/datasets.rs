//! Knowledge base routes: create, list, read, update, delete.
//!
//! Name rules differ by route exactly as on Dify: a duplicate name on create
//! is 409 `dataset_name_duplicate`, on rename it is 400 `invalid_param`.
//! No embedding model is configured in this "workspace", so asking for
//! `high_quality` without naming a model fails the way such a real server
//! does.

use serde_json::{Map, Value, json};

use super::model::Dataset;
use super::render;
use super::{Now, Store, page_of};
use crate::dify::reply::{Reply, Req, Validation, check_len, check_literal, opt_str, req_str};

const TECHNIQUES: [&str; 2] = ["high_quality", "economy"];
const PERMISSIONS: [&str; 3] = ["only_me", "all_team_members", "partial_members"];
pub(crate) const NO_EMBEDDING_MODEL: &str = "Default model not found for text-embedding";

fn default_retrieval_model() -> Value {
    json!({
        "search_method": "semantic_search",
        "reranking_enable": false,
        "reranking_mode": null,
        "reranking_model": {"reranking_provider_name": "", "reranking_model_name": ""},
        "weights": null,
        "top_k": 2,
        "score_threshold_enabled": false,
        "score_threshold": null
    })
}

/// Validated fields of a create or update body.
struct DatasetFields {
    name: Option<String>,
    description: Option<String>,
    indexing_technique: Option<String>,
    permission: Option<String>,
    embedding_model: Option<String>,
    embedding_model_provider: Option<String>,
}

fn read_fields(
    obj: &Map<String, Value>,
    whole: &Value,
    model: &str,
    name_required: bool,
) -> Result<DatasetFields, Reply> {
    let mut v = Validation::new(model);
    let name = if name_required {
        req_str(obj, "name", whole, &mut v)
    } else {
        opt_str(obj, "name", &mut v)
    };
    if let Some(n) = &name {
        check_len("name", n, 1, 40, &mut v);
    }
    let description = opt_str(obj, "description", &mut v);
    if let Some(d) = &description {
        check_len("description", d, 0, 400, &mut v);
    }
    let indexing_technique = opt_str(obj, "indexing_technique", &mut v);
    check_literal("indexing_technique", indexing_technique.as_deref(), &TECHNIQUES, &mut v);
    let permission = opt_str(obj, "permission", &mut v);
    check_literal("permission", permission.as_deref(), &PERMISSIONS, &mut v);
    let embedding_model = opt_str(obj, "embedding_model", &mut v);
    let embedding_model_provider = opt_str(obj, "embedding_model_provider", &mut v);
    v.finish()?;
    Ok(DatasetFields {
        name,
        description,
        indexing_technique,
        permission,
        embedding_model,
        embedding_model_provider,
    })
}

/// `high_quality` needs an embedding model; none is configured here, so one
/// must be named explicitly (both fields).
fn check_embedding(f: &DatasetFields) -> Result<(), Reply> {
    let wants_hq = f.indexing_technique.as_deref() == Some("high_quality");
    let named = f.embedding_model.is_some() && f.embedding_model_provider.is_some();
    if wants_hq && !named {
        return Err(Reply::invalid_param(NO_EMBEDDING_MODEL));
    }
    Ok(())
}

impl Store {
    pub(super) fn create_dataset(&mut self, req: &Req, now: Now) -> Reply {
        match self.try_create_dataset(req, now) {
            Ok(reply) | Err(reply) => reply,
        }
    }

    fn try_create_dataset(&mut self, req: &Req, now: Now) -> Result<Reply, Reply> {
        let obj = req.json_object("DatasetCreatePayload")?;
        let whole = Value::Object(obj.clone());
        let f = read_fields(&obj, &whole, "DatasetCreatePayload", true)?;
        let name = f.name.clone().unwrap_or_default();
        if self.datasets.iter().any(|d| d.name == name) {
            return Err(Reply::error(
                409,
                "dataset_name_duplicate",
                "The dataset name already exists. Please modify your dataset name.",
            ));
        }
        check_embedding(&f)?;

        let retrieval_model = match obj.get("retrieval_model") {
            Some(Value::Object(m)) => Value::Object(m.clone()),
            _ => default_retrieval_model(),
        };
        let id = self.new_id();
        let ds = Dataset {
            id,
            name,
            description: f.description.unwrap_or_default(),
            permission: f.permission.unwrap_or_else(|| "only_me".to_owned()),
            indexing_technique: f.indexing_technique,
            doc_form: None,
            embedding_model: f.embedding_model,
            embedding_model_provider: f.embedding_model_provider,
            retrieval_model,
            created_at: now.secs(),
            updated_at: now.secs(),
            built_in_field_enabled: false,
            fields: Vec::new(),
            documents: Vec::new(),
            latest_rule: None,
        };
        tracing::debug!(dataset = %ds.id, name = %ds.name, "dataset created");
        let body = render::dataset(&ds, &self.tags, &self.account_id, now);
        self.datasets.push(ds);
        Ok(Reply::ok(body))
    }

    pub(super) fn list_datasets(&mut self, req: &Req, now: Now) -> Reply {
        let (page, limit) = match strict_page(req) {
            Ok(p) => p,
            Err(reply) => return reply,
        };
        let keyword = req.query("keyword").map(str::to_lowercase);
        let tag_ids = req.query_all("tag_ids");

        // Newest first, like Dify's `created_at desc`.
        let matching: Vec<&Dataset> = self
            .datasets
            .iter()
            .rev()
            .filter(|d| keyword.as_deref().is_none_or(|k| d.name.to_lowercase().contains(k)))
            .filter(|d| tag_ids.is_empty() || self.has_any_tag(&d.id, &tag_ids))
            .collect();
        let rows = page_of(&matching, page, limit);
        let data: Vec<Value> =
            rows.iter().map(|d| render::dataset(d, &self.tags, &self.account_id, now)).collect();
        let has_more = data.len() as i64 == limit;
        Reply::ok(json!({
            "data": data, "has_more": has_more, "limit": limit,
            "total": matching.len(), "page": page
        }))
    }

    fn has_any_tag(&self, dataset_id: &str, tag_ids: &[&str]) -> bool {
        self.tags
            .iter()
            .filter(|t| tag_ids.contains(&t.id.as_str()))
            .any(|t| t.targets.iter().any(|id| id == dataset_id))
    }

    pub(super) fn get_dataset(&mut self, req: &Req, now: Now) -> Reply {
        match self.dataset(req) {
            Ok(ds) => Reply::ok(render::dataset(ds, &self.tags, &self.account_id, now)),
            Err(reply) => reply,
        }
    }

    pub(super) fn update_dataset(&mut self, req: &Req, now: Now) -> Reply {
        match self.try_update_dataset(req, now) {
            Ok(reply) | Err(reply) => reply,
        }
    }

    fn try_update_dataset(&mut self, req: &Req, now: Now) -> Result<Reply, Reply> {
        let obj = req.json_object("DatasetUpdatePayload")?;
        let whole = Value::Object(obj.clone());
        let f = read_fields(&obj, &whole, "DatasetUpdatePayload", false)?;
        let id = req.param(0).to_owned();
        if let Some(name) = &f.name
            && self.datasets.iter().any(|d| d.name == *name && d.id != id)
        {
            return Err(Reply::invalid_param("Dataset name already exists"));
        }
        check_embedding(&f)?;

        let ds = self.dataset_mut(req)?;
        apply_update(ds, f, &obj, now);
        let mut body = render::dataset(self.dataset(req)?, &self.tags, &self.account_id, now);
        if let Value::Object(map) = &mut body {
            map.insert("partial_member_list".into(), json!([]));
        }
        Ok(Reply::ok(body))
    }

    pub(super) fn delete_dataset(&mut self, req: &Req) -> Reply {
        let id = req.param(0);
        self.datasets.retain(|d| d.id != id);
        for tag in &mut self.tags {
            tag.targets.retain(|t| t != id);
        }
        Reply::no_content()
    }
}

fn apply_update(ds: &mut Dataset, f: DatasetFields, obj: &Map<String, Value>, now: Now) {
    if let Some(name) = f.name {
        ds.name = name;
    }
    if let Some(description) = f.description {
        ds.description = description;
    }
    if let Some(technique) = f.indexing_technique {
        ds.indexing_technique = Some(technique);
    }
    if let Some(permission) = f.permission {
        ds.permission = permission;
    }
    if f.embedding_model.is_some() {
        ds.embedding_model = f.embedding_model;
        ds.embedding_model_provider = f.embedding_model_provider;
    }
    if let Some(Value::Object(m)) = obj.get("retrieval_model") {
        ds.retrieval_model = Value::Object(m.clone());
    }
    ds.updated_at = now.secs();
}

/// `page` and `limit` for the dataset list, validated like Dify's pydantic
/// query model (garbage is a 400, not a default).
fn strict_page(req: &Req) -> Result<(i64, i64), Reply> {
    let mut v = Validation::new("DatasetListQuery");
    let mut parse = |key: &str, default: i64| match req.query(key) {
        None => default,
        Some(raw) => raw.trim().parse().unwrap_or_else(|_| {
            v.push(
                key,
                "Input should be a valid integer, unable to parse string as an integer",
                "int_parsing",
                &Value::String(raw.to_owned()),
            );
            default
        }),
    };
    let page = parse("page", 1);
    let limit = parse("limit", 20);
    v.finish()?;
    Ok((page, limit))
}
