//! Knowledge tags (workspace-wide). Dify 1.13.2 answered 400 on these
//! routes, so callers should treat tags as optional.

use serde::{Deserialize, Serialize};

use super::common::{lenient_count, null_as_default};

/// A tag with its binding count. `id` is required, so a body that is not
/// a tag fails to decode.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Tag {
    /// Tag id.
    pub id: String,
    /// Tag name (1..=50 chars).
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    /// `knowledge`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// Datasets bound (sent as a string by Dify).
    #[serde(default, deserialize_with = "lenient_count")]
    pub binding_count: Option<u64>,
}

/// A tag as listed on a dataset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct TagRef {
    /// Tag id.
    pub id: String,
    /// Tag name.
    pub name: String,
}

/// Answer of a dataset's tag list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct DatasetTags {
    /// The tags.
    #[serde(deserialize_with = "null_as_default")]
    pub data: Vec<TagRef>,
    /// Their number.
    #[serde(deserialize_with = "null_as_default")]
    pub total: u64,
}

#[derive(Serialize)]
pub(crate) struct TagNameBody<'a> {
    pub(crate) name: &'a str,
}

#[derive(Serialize)]
pub(crate) struct TagUpdateBody<'a> {
    pub(crate) tag_id: &'a str,
    pub(crate) name: &'a str,
}

#[derive(Serialize)]
pub(crate) struct TagIdBody<'a> {
    pub(crate) tag_id: &'a str,
}

#[derive(Serialize)]
pub(crate) struct TagBindingBody<'a> {
    pub(crate) tag_ids: &'a [String],
    pub(crate) target_id: &'a str,
}
