//! Knowledge tag routes, implemented as working.
//!
//! The recorded Dify 1.13.2 answered 400 on `GET`/`POST /datasets/tags`
//! (its response model rejected its own integer `binding_count`). A test
//! double that reproduced a server bug would only teach clients to expect
//! it, so tags work here as the API reference describes them, with
//! `binding_count` as a string. Clients should still treat tags as optional.

use serde_json::{Value, json};

use super::Store;
use super::model::{Tag, tags_of};
use crate::dify::reply::{Reply, Req, Validation, check_len, req_str};

fn tag_json(tag: &Tag) -> Value {
    json!({
        "id": tag.id, "name": tag.name, "type": "knowledge",
        "binding_count": tag.targets.len().to_string()
    })
}

fn string_list(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => {
            items.iter().filter_map(Value::as_str).map(str::to_owned).collect()
        }
        Some(Value::String(one)) => vec![one.clone()],
        _ => Vec::new(),
    }
}

impl Store {
    pub(super) fn list_tags(&mut self) -> Reply {
        Reply::ok(Value::Array(self.tags.iter().map(tag_json).collect()))
    }

    pub(super) fn create_tag(&mut self, req: &Req) -> Reply {
        self.try_create_tag(req).unwrap_or_else(|reply| reply)
    }

    fn try_create_tag(&mut self, req: &Req) -> Result<Reply, Reply> {
        let obj = req.json_object("TagCreatePayload")?;
        let whole = Value::Object(obj.clone());
        let mut v = Validation::new("TagCreatePayload");
        let name = req_str(&obj, "name", &whole, &mut v).unwrap_or_default();
        check_len("name", &name, 1, 50, &mut v);
        v.finish()?;
        if self.tags.iter().any(|t| t.name == name) {
            return Err(Reply::invalid_param("Tag name already exists"));
        }
        let tag = Tag { id: self.new_id(), name, targets: Vec::new() };
        let body = tag_json(&tag);
        self.tags.push(tag);
        Ok(Reply::ok(body))
    }

    pub(super) fn update_tag(&mut self, req: &Req) -> Reply {
        self.try_update_tag(req).unwrap_or_else(|reply| reply)
    }

    fn try_update_tag(&mut self, req: &Req) -> Result<Reply, Reply> {
        let obj = req.json_object("TagUpdatePayload")?;
        let whole = Value::Object(obj.clone());
        let mut v = Validation::new("TagUpdatePayload");
        let tag_id = req_str(&obj, "tag_id", &whole, &mut v).unwrap_or_default();
        let name = req_str(&obj, "name", &whole, &mut v).unwrap_or_default();
        check_len("name", &name, 1, 50, &mut v);
        v.finish()?;
        if self.tags.iter().any(|t| t.name == name && t.id != tag_id) {
            return Err(Reply::invalid_param("Tag name already exists"));
        }
        let tag = self
            .tags
            .iter_mut()
            .find(|t| t.id == tag_id)
            .ok_or_else(|| Reply::not_found("Tag not found"))?;
        tag.name = name;
        Ok(Reply::ok(tag_json(tag)))
    }

    pub(super) fn delete_tag(&mut self, req: &Req) -> Reply {
        let obj = match req.json_object("TagDeletePayload") {
            Ok(obj) => obj,
            Err(reply) => return reply,
        };
        let tag_id = obj.get("tag_id").and_then(Value::as_str).unwrap_or("");
        let before = self.tags.len();
        self.tags.retain(|t| t.id != tag_id);
        if self.tags.len() == before {
            return Reply::not_found("Tag not found");
        }
        Reply::no_content()
    }

    pub(super) fn bind_tags(&mut self, req: &Req) -> Reply {
        self.try_bind(req, true).unwrap_or_else(|reply| reply)
    }

    pub(super) fn unbind_tags(&mut self, req: &Req) -> Reply {
        self.try_bind(req, false).unwrap_or_else(|reply| reply)
    }

    fn try_bind(&mut self, req: &Req, bind: bool) -> Result<Reply, Reply> {
        let obj = req.json_object("TagBindingPayload")?;
        let mut tag_ids = string_list(obj.get("tag_ids"));
        tag_ids.extend(string_list(obj.get("tag_id")));
        let target = obj.get("target_id").and_then(Value::as_str).unwrap_or("").to_owned();
        if bind && tag_ids.is_empty() {
            return Err(Reply::invalid_param("Tag IDs is required."));
        }
        if self.dataset_index(&target).is_none() {
            return Err(Reply::not_found("Dataset not found"));
        }
        for tag in self.tags.iter_mut().filter(|t| tag_ids.contains(&t.id)) {
            let bound = tag.targets.contains(&target);
            if bind && !bound {
                tag.targets.push(target.clone());
            } else if !bind {
                tag.targets.retain(|t| *t != target);
            }
        }
        Ok(Reply::no_content())
    }

    pub(super) fn dataset_tags(&mut self, req: &Req) -> Reply {
        let id = req.param(0);
        let data: Vec<Value> =
            tags_of(&self.tags, id).map(|t| json!({"id": t.id, "name": t.name})).collect();
        Reply::ok(json!({"total": data.len(), "data": data}))
    }
}
