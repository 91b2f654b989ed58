//! Knowledge tag endpoints. Dify 1.13.2 answered 400 here; errors surface
//! as for any call and callers should treat tags as optional.

use crate::client::DifyClient;
use crate::endpoints::{
    BIND_TAGS, CREATE_TAG, DATASET_TAGS, DELETE_TAG, LIST_TAGS, RENAME_TAG, UNBIND_TAGS,
};
use crate::error::Result;
use crate::transport::Call;
use crate::types::{DatasetTags, Tag, TagBindingBody, TagIdBody, TagNameBody, TagUpdateBody};

impl DifyClient {
    /// Lists the workspace's knowledge tags.
    ///
    /// # Errors
    ///
    /// Any API or transport error.
    pub async fn list_tags(&self) -> Result<Vec<Tag>> {
        let action = "listing tags".to_owned();
        let url = self.url(&action, &["datasets", "tags"])?;
        self.json(Call::new(LIST_TAGS, url, action)).await
    }

    /// Creates a tag. Retried after a lost reply; if the retry finds the
    /// name taken, the tag the lost attempt created is looked up and
    /// returned.
    ///
    /// # Errors
    ///
    /// 400 when the name exists.
    pub async fn create_tag(&self, name: &str) -> Result<Tag> {
        let action = format!("creating tag {name:?}");
        let url = self.url(&action, &["datasets", "tags"])?;
        let call = Call::new(CREATE_TAG, url, action).json(&TagNameBody { name })?;
        self.create_keyed(call, || async {
            Ok(self.list_tags().await?.into_iter().find(|tag| tag.name == name))
        })
        .await
    }

    /// Renames a tag.
    ///
    /// # Errors
    ///
    /// 404 for an unknown tag, 400 when the name is taken.
    pub async fn rename_tag(&self, tag_id: &str, name: &str) -> Result<Tag> {
        let action = format!("renaming tag {tag_id} to {name:?}");
        let body = TagUpdateBody { tag_id, name };
        let url = self.url(&action, &["datasets", "tags"])?;
        self.json(Call::new(RENAME_TAG, url, action).json(&body)?).await
    }

    /// Deletes a tag. A 404 after an attempt whose reply was lost counts as
    /// success.
    ///
    /// # Errors
    ///
    /// Any API or transport error.
    pub async fn delete_tag(&self, tag_id: &str) -> Result<()> {
        let action = format!("deleting tag {tag_id}");
        let url = self.url(&action, &["datasets", "tags"])?;
        self.unit(Call::new(DELETE_TAG, url, action).json(&TagIdBody { tag_id })?).await
    }

    /// Binds tags to a dataset (unknown tag ids are ignored).
    ///
    /// # Errors
    ///
    /// 404 for an unknown dataset.
    pub async fn bind_tags(&self, dataset_id: &str, tag_ids: &[String]) -> Result<()> {
        let action = format!("binding {} tags to dataset {dataset_id}", tag_ids.len());
        let body = TagBindingBody { tag_ids, target_id: dataset_id };
        let url = self.url(&action, &["datasets", "tags", "binding"])?;
        self.unit(Call::new(BIND_TAGS, url, action).json(&body)?).await
    }

    /// Unbinds tags from a dataset.
    ///
    /// # Errors
    ///
    /// 404 for an unknown dataset.
    pub async fn unbind_tags(&self, dataset_id: &str, tag_ids: &[String]) -> Result<()> {
        let action = format!("unbinding {} tags from dataset {dataset_id}", tag_ids.len());
        let body = TagBindingBody { tag_ids, target_id: dataset_id };
        let url = self.url(&action, &["datasets", "tags", "unbinding"])?;
        self.unit(Call::new(UNBIND_TAGS, url, action).json(&body)?).await
    }

    /// Lists the tags bound to a dataset.
    ///
    /// # Errors
    ///
    /// 404 for an unknown dataset.
    pub async fn dataset_tags(&self, dataset_id: &str) -> Result<DatasetTags> {
        let action = format!("listing tags of dataset {dataset_id}");
        let url = self.url(&action, &["datasets", dataset_id, "tags"])?;
        self.json(Call::new(DATASET_TAGS, url, action)).await
    }
}
