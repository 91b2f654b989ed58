//! Knowledge tag endpoints. Dify 1.13.2 answered 400 here; errors surface
//! as for any call and callers should treat tags as optional.

use crate::client::DifyClient;
use crate::error::Result;
use crate::retry::Idempotency::{NaturalKey, Safe};
use crate::transport::{Call, Endpoint, Verb};
use crate::types::{DatasetTags, Tag, TagBindingBody, TagIdBody, TagNameBody, TagUpdateBody};

const LIST: Endpoint =
    Endpoint { verb: Verb::Get, route: "GET /datasets/tags", class: Safe, counted: false };
const CREATE: Endpoint =
    Endpoint { verb: Verb::Post, route: "POST /datasets/tags", class: NaturalKey, counted: false };
const UPDATE: Endpoint =
    Endpoint { verb: Verb::Patch, route: "PATCH /datasets/tags", class: Safe, counted: false };
const DELETE: Endpoint =
    Endpoint { verb: Verb::Delete, route: "DELETE /datasets/tags", class: Safe, counted: false };
const BIND: Endpoint = Endpoint {
    verb: Verb::Post,
    route: "POST /datasets/tags/binding",
    class: Safe,
    counted: false,
};
const UNBIND: Endpoint = Endpoint {
    verb: Verb::Post,
    route: "POST /datasets/tags/unbinding",
    class: Safe,
    counted: false,
};
const OF_DATASET: Endpoint = Endpoint {
    verb: Verb::Get,
    route: "GET /datasets/{dataset_id}/tags",
    class: Safe,
    counted: false,
};

impl DifyClient {
    /// Lists the workspace's knowledge tags.
    ///
    /// # Errors
    ///
    /// Any API or transport error.
    pub async fn list_tags(&self) -> Result<Vec<Tag>> {
        self.json(Call::new(LIST, self.url(&["datasets", "tags"]), "listing tags".into())).await
    }

    /// Creates a tag.
    ///
    /// # Errors
    ///
    /// 400 when the name exists.
    pub async fn create_tag(&self, name: &str) -> Result<Tag> {
        let action = format!("creating tag {name:?}");
        self.json(
            Call::new(CREATE, self.url(&["datasets", "tags"]), action)
                .json(&TagNameBody { name })?,
        )
        .await
    }

    /// Renames a tag.
    ///
    /// # Errors
    ///
    /// 404 for an unknown tag.
    pub async fn rename_tag(&self, tag_id: &str, name: &str) -> Result<Tag> {
        let action = format!("renaming tag {tag_id} to {name:?}");
        let body = TagUpdateBody { tag_id, name };
        self.json(Call::new(UPDATE, self.url(&["datasets", "tags"]), action).json(&body)?).await
    }

    /// Deletes a tag.
    ///
    /// # Errors
    ///
    /// Any API or transport error.
    pub async fn delete_tag(&self, tag_id: &str) -> Result<()> {
        let action = format!("deleting tag {tag_id}");
        self.unit(
            Call::new(DELETE, self.url(&["datasets", "tags"]), action)
                .json(&TagIdBody { tag_id })?,
        )
        .await
    }

    /// Binds tags to a dataset (unknown tag ids are ignored).
    ///
    /// # Errors
    ///
    /// 404 for an unknown dataset.
    pub async fn bind_tags(&self, dataset_id: &str, tag_ids: &[String]) -> Result<()> {
        let action = format!("binding {} tags to dataset {dataset_id}", tag_ids.len());
        let body = TagBindingBody { tag_ids, target_id: dataset_id };
        self.unit(Call::new(BIND, self.url(&["datasets", "tags", "binding"]), action).json(&body)?)
            .await
    }

    /// Unbinds tags from a dataset.
    ///
    /// # Errors
    ///
    /// 404 for an unknown dataset.
    pub async fn unbind_tags(&self, dataset_id: &str, tag_ids: &[String]) -> Result<()> {
        let action = format!("unbinding {} tags from dataset {dataset_id}", tag_ids.len());
        let body = TagBindingBody { tag_ids, target_id: dataset_id };
        self.unit(
            Call::new(UNBIND, self.url(&["datasets", "tags", "unbinding"]), action).json(&body)?,
        )
        .await
    }

    /// Lists the tags bound to a dataset.
    ///
    /// # Errors
    ///
    /// 404 for an unknown dataset.
    pub async fn dataset_tags(&self, dataset_id: &str) -> Result<DatasetTags> {
        let action = format!("listing tags of dataset {dataset_id}");
        self.json(Call::new(OF_DATASET, self.url(&["datasets", dataset_id, "tags"]), action)).await
    }
}
