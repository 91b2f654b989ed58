//! Metadata fields of a dataset and the values assigned to documents.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::common::{lenient_count, null_as_default};

/// Value type of a metadata field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MetadataType {
    /// Text.
    String,
    /// Number.
    Number,
    /// Unix time.
    Time,
    /// A value this crate does not know (never sent).
    #[serde(other)]
    Other,
}

/// A custom metadata field. `id` is required, so a body that is not a
/// field fails to decode.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct MetadataField {
    /// Field id (UUID).
    pub id: String,
    /// Field name (unique per dataset, not a built-in name).
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    /// Value type.
    #[serde(default, rename = "type")]
    pub kind: Option<MetadataType>,
    /// Documents bound to the field (list answers only).
    #[serde(default, deserialize_with = "lenient_count")]
    pub count: Option<u64>,
}

/// Answer of the metadata field list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct MetadataFieldList {
    /// Custom fields (built-ins are not listed).
    #[serde(deserialize_with = "null_as_default")]
    pub doc_metadata: Vec<MetadataField>,
    /// Whether built-in fields are enabled.
    #[serde(deserialize_with = "null_as_default")]
    pub built_in_field_enabled: bool,
}

/// A built-in field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct BuiltInField {
    /// Name (`document_name`, `uploader`, `upload_date`, ...).
    pub name: String,
    /// Value type.
    #[serde(rename = "type")]
    pub kind: Option<MetadataType>,
}

/// Answer of the built-in field list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct BuiltInFields {
    /// The fields.
    #[serde(deserialize_with = "null_as_default")]
    pub fields: Vec<BuiltInField>,
}

/// A metadata value as it appears on a document.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct DocumentMetadataValue {
    /// Field id, or `built-in`.
    pub id: String,
    /// Field name.
    pub name: String,
    /// Value type.
    #[serde(rename = "type")]
    pub kind: Option<MetadataType>,
    /// The value (string, number or null; built-in dates come as strings).
    pub value: Value,
}

/// One value to assign.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetadataValue {
    /// Field id.
    pub id: String,
    /// Field name (must match the id; the server does not check).
    pub name: String,
    /// String, number or null (not type-checked by the server).
    pub value: Value,
}

/// The values to give one document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DocumentMetadataOperation {
    /// The document.
    pub document_id: String,
    /// The values.
    pub metadata_list: Vec<MetadataValue>,
    /// `false` replaces the document's custom values with exactly these
    /// (safe to repeat); `true` merges.
    pub partial_update: bool,
}

/// Body of metadata assignment: many documents in one call.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AssignMetadataRequest {
    /// One operation per document, applied in order.
    pub operation_data: Vec<DocumentMetadataOperation>,
}

impl AssignMetadataRequest {
    /// Whether every operation is a full replace, so repeating the call
    /// has no further effect.
    pub fn is_full_replace(&self) -> bool {
        self.operation_data.iter().all(|op| !op.partial_update)
    }
}

#[derive(Serialize)]
pub(crate) struct CreateMetadataBody<'a> {
    #[serde(rename = "type")]
    pub(crate) kind: MetadataType,
    pub(crate) name: &'a str,
}
