//! Metadata routes: custom fields, built-in fields, and value assignment.
//!
//! Values live on the document keyed by field *name*, with a separate list
//! of bound field ids, as in Dify; neither the id/name pair nor the value
//! type is checked on assignment (Dify does not either). Assignment runs the
//! operations in order and stops at the first failure, keeping the earlier
//! ones applied.

use serde_json::{Map, Value, json};

use super::model::{Dataset, MetaField};
use super::render::BUILT_INS;
use super::{Now, Store};
use crate::dify::reply::{Reply, Req, Validation, check_literal, req_str};

const FIELD_TYPES: [&str; 3] = ["string", "number", "time"];

pub(super) fn built_in_fields() -> Reply {
    let fields: Vec<Value> =
        BUILT_INS.iter().map(|(name, ty)| json!({"name": name, "type": ty})).collect();
    Reply::ok(json!({"fields": fields}))
}

/// Dify's name checks for create and rename (`except` is the field being
/// renamed).
fn check_name(ds: &Dataset, name: &str, except: Option<&str>) -> Result<(), Reply> {
    if name.chars().count() > 255 {
        return Err(Reply::invalid_param("Metadata name cannot exceed 255 characters."));
    }
    if BUILT_INS.iter().any(|(n, _)| *n == name) {
        return Err(Reply::invalid_param("Metadata name already exists in Built-in fields."));
    }
    if ds.fields.iter().any(|f| f.name == name && Some(f.id.as_str()) != except) {
        return Err(Reply::invalid_param("Metadata name already exists."));
    }
    Ok(())
}

fn field_json(f: &MetaField) -> Value {
    json!({"id": f.id, "type": f.field_type, "name": f.name})
}

impl Store {
    pub(super) fn create_metadata(&mut self, req: &Req) -> Reply {
        self.try_create_metadata(req).unwrap_or_else(|reply| reply)
    }

    fn try_create_metadata(&mut self, req: &Req) -> Result<Reply, Reply> {
        let obj = req.json_object("MetadataArgs")?;
        let whole = Value::Object(obj.clone());
        let mut v = Validation::new("MetadataArgs");
        let field_type = req_str(&obj, "type", &whole, &mut v);
        check_literal("type", field_type.as_deref(), &FIELD_TYPES, &mut v);
        let name = req_str(&obj, "name", &whole, &mut v);
        v.finish()?;

        let name = name.unwrap_or_default();
        check_name(self.dataset(req)?, &name, None)?;
        let field =
            MetaField { id: self.new_id(), name, field_type: field_type.unwrap_or_default() };
        let body = field_json(&field);
        self.dataset_mut(req)?.fields.push(field);
        Ok(Reply::json(201, body))
    }

    pub(super) fn list_metadata(&mut self, req: &Req) -> Reply {
        let Ok(ds) = self.dataset(req) else {
            return Reply::not_found("Dataset not found.");
        };
        let fields: Vec<Value> = ds
            .fields
            .iter()
            .map(|f| {
                let count = ds.documents.iter().filter(|d| d.bindings.contains(&f.id)).count();
                json!({"id": f.id, "name": f.name, "type": f.field_type, "count": count})
            })
            .collect();
        Reply::ok(
            json!({"doc_metadata": fields, "built_in_field_enabled": ds.built_in_field_enabled}),
        )
    }

    pub(super) fn update_metadata(&mut self, req: &Req) -> Reply {
        self.try_update_metadata(req).unwrap_or_else(|reply| reply)
    }

    fn try_update_metadata(&mut self, req: &Req) -> Result<Reply, Reply> {
        let obj = req.json_object("MetadataUpdatePayload")?;
        let whole = Value::Object(obj.clone());
        let mut v = Validation::new("MetadataUpdatePayload");
        let name = req_str(&obj, "name", &whole, &mut v).unwrap_or_default();
        v.finish()?;

        let field_id = req.param(1).to_owned();
        let ds = self.dataset_mut(req)?;
        let old = ds
            .field(&field_id)
            .map(|f| f.name.clone())
            .ok_or_else(|| Reply::invalid_param("Metadata not found."))?;
        check_name(ds, &name, Some(&field_id))?;
        for doc in ds.documents.iter_mut().filter(|d| d.bindings.contains(&field_id)) {
            if let Some(value) = doc.values.remove(&old) {
                doc.values.insert(name.clone(), value);
            }
        }
        let field = ds
            .fields
            .iter_mut()
            .find(|f| f.id == field_id)
            .ok_or_else(|| Reply::invalid_param("Metadata not found."))?;
        field.name = name;
        Ok(Reply::ok(field_json(field)))
    }

    pub(super) fn delete_metadata(&mut self, req: &Req) -> Reply {
        let field_id = req.param(1).to_owned();
        let Ok(ds) = self.dataset_mut(req) else {
            return Reply::not_found("Dataset not found.");
        };
        let Some(i) = ds.fields.iter().position(|f| f.id == field_id) else {
            return Reply::invalid_param("Metadata not found.");
        };
        let field = ds.fields.remove(i);
        for doc in ds.documents.iter_mut().filter(|d| d.bindings.contains(&field_id)) {
            doc.values.remove(&field.name);
            doc.bindings.retain(|b| *b != field_id);
        }
        Reply::no_content()
    }

    pub(super) fn toggle_built_in(&mut self, req: &Req) -> Reply {
        let action = req.param(1).to_owned();
        let Ok(ds) = self.dataset_mut(req) else {
            return Reply::not_found("Dataset not found.");
        };
        // Dify answers success for any action word and ignores unknown ones.
        match action.as_str() {
            "enable" => ds.built_in_field_enabled = true,
            "disable" => ds.built_in_field_enabled = false,
            _ => {}
        }
        Reply::success()
    }

    pub(super) fn assign_metadata(&mut self, req: &Req, now: Now) -> Reply {
        self.try_assign_metadata(req, now).unwrap_or_else(|reply| reply)
    }

    fn try_assign_metadata(&mut self, req: &Req, now: Now) -> Result<Reply, Reply> {
        let ops = parse_operations(req)?;
        let ds = self.dataset_mut(req)?;
        for op in ops {
            let Some(doc) = ds.document_mut(&op.document_id) else {
                return Err(Reply::invalid_param("Document not found."));
            };
            if !op.partial_update {
                doc.values.clear();
                doc.bindings.clear();
            }
            for (id, name, value) in op.items {
                doc.values.insert(name, value);
                if !doc.bindings.contains(&id) {
                    doc.bindings.push(id);
                }
            }
            doc.updated_at = now.secs();
        }
        Ok(Reply::success())
    }
}

/// One entry of `operation_data`.
struct Operation {
    document_id: String,
    items: Vec<(String, String, Value)>,
    partial_update: bool,
}

fn parse_operations(req: &Req) -> Result<Vec<Operation>, Reply> {
    const MODEL: &str = "MetadataOperationData";
    let obj = req.json_object(MODEL)?;
    let whole = Value::Object(obj.clone());
    let Some(Value::Array(entries)) = obj.get("operation_data") else {
        return Err(Validation::new(MODEL)
            .add("operation_data", "Field required", "missing", &whole)
            .into_reply());
    };
    let mut v = Validation::new(MODEL);
    let ops: Vec<Operation> =
        entries.iter().enumerate().filter_map(|(i, e)| parse_operation(i, e, &mut v)).collect();
    v.finish()?;
    Ok(ops)
}

fn parse_operation(i: usize, entry: &Value, v: &mut Validation) -> Option<Operation> {
    let Value::Object(map) = entry else {
        v.push(
            &format!("operation_data.{i}"),
            "Input should be a valid dictionary",
            "dict_type",
            entry,
        );
        return None;
    };
    let document_id = map.get("document_id").and_then(Value::as_str);
    let list = map.get("metadata_list").and_then(Value::as_array);
    let (Some(document_id), Some(list)) = (document_id, list) else {
        v.missing(&format!("operation_data.{i}.document_id"), entry);
        return None;
    };
    let items = list.iter().filter_map(parse_item).collect();
    let partial_update = map.get("partial_update").and_then(Value::as_bool).unwrap_or(false);
    Some(Operation { document_id: document_id.to_owned(), items, partial_update })
}

fn parse_item(item: &Value) -> Option<(String, String, Value)> {
    let map: &Map<String, Value> = item.as_object()?;
    let id = map.get("id")?.as_str()?.to_owned();
    let name = map.get("name")?.as_str()?.to_owned();
    let value = map.get("value").cloned().unwrap_or(Value::Null);
    Some((id, name, value))
}
