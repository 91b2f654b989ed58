//! Metadata field and assignment endpoints.

use crate::client::DifyClient;
use crate::endpoints::{
    ASSIGN_METADATA, BUILT_IN_METADATA, CREATE_METADATA, DELETE_METADATA, LIST_METADATA,
    RENAME_METADATA, TOGGLE_BUILT_IN_METADATA,
};
use crate::error::Result;
use crate::retry::Idempotency::{Safe, Unsafe};
use crate::transport::Call;
use crate::types::{
    AssignMetadataRequest, BuiltInFields, CreateMetadataBody, MetadataField, MetadataFieldList,
    MetadataType, OperationResult,
};

impl DifyClient {
    /// Creates a metadata field. Retried after a lost reply; if the retry
    /// finds the name taken, the field the lost attempt created is looked up
    /// and returned. To get-or-create, use
    /// [`ensure_metadata_field`](Self::ensure_metadata_field).
    ///
    /// # Errors
    ///
    /// 400 when the name exists, is a built-in name or is too long.
    pub async fn create_metadata_field(
        &self,
        dataset_id: &str,
        name: &str,
        kind: MetadataType,
    ) -> Result<MetadataField> {
        let action = format!("creating metadata field {name:?} in dataset {dataset_id}");
        let url = self.url(&action, &["datasets", dataset_id, "metadata"])?;
        let call =
            Call::new(CREATE_METADATA, url, action).json(&CreateMetadataBody { kind, name })?;
        self.create_keyed(call, || self.find_metadata_field(dataset_id, name)).await
    }

    /// Lists a dataset's custom metadata fields.
    ///
    /// # Errors
    ///
    /// 404 for an unknown dataset.
    pub async fn list_metadata_fields(&self, dataset_id: &str) -> Result<MetadataFieldList> {
        let action = format!("listing metadata fields of dataset {dataset_id}");
        let url = self.url(&action, &["datasets", dataset_id, "metadata"])?;
        self.json(Call::new(LIST_METADATA, url, action)).await
    }

    /// Renames a metadata field (the key changes in every bound document).
    ///
    /// # Errors
    ///
    /// 400 when the new name is taken.
    pub async fn rename_metadata_field(
        &self,
        dataset_id: &str,
        metadata_id: &str,
        name: &str,
    ) -> Result<MetadataField> {
        #[derive(serde::Serialize)]
        struct Body<'a> {
            name: &'a str,
        }
        let action =
            format!("renaming metadata field {metadata_id} to {name:?} in dataset {dataset_id}");
        let url = self.url(&action, &["datasets", dataset_id, "metadata", metadata_id])?;
        self.json(Call::new(RENAME_METADATA, url, action).json(&Body { name })?).await
    }

    /// Deletes a metadata field and its values. "Not found" (404, or 400
    /// on some versions) after an attempt whose reply was lost counts as
    /// success.
    ///
    /// # Errors
    ///
    /// 400 "Metadata not found." on some versions for an unknown id.
    pub async fn delete_metadata_field(&self, dataset_id: &str, metadata_id: &str) -> Result<()> {
        let action = format!("deleting metadata field {metadata_id} in dataset {dataset_id}");
        let url = self.url(&action, &["datasets", dataset_id, "metadata", metadata_id])?;
        self.unit(Call::new(DELETE_METADATA, url, action)).await
    }

    /// Lists the built-in fields (`document_name`, `uploader`, ...).
    ///
    /// # Errors
    ///
    /// 404 for an unknown dataset.
    pub async fn built_in_metadata_fields(&self, dataset_id: &str) -> Result<BuiltInFields> {
        let action = format!("listing built-in metadata fields of dataset {dataset_id}");
        let url = self.url(&action, &["datasets", dataset_id, "metadata", "built-in"])?;
        self.json(Call::new(BUILT_IN_METADATA, url, action)).await
    }

    /// Enables or disables the built-in fields (idempotent).
    ///
    /// # Errors
    ///
    /// 404 for an unknown dataset.
    pub async fn set_built_in_metadata(
        &self,
        dataset_id: &str,
        enabled: bool,
    ) -> Result<OperationResult> {
        let toggle = if enabled { "enable" } else { "disable" };
        let action = format!("setting built-in metadata to {toggle} in dataset {dataset_id}");
        let url = self.url(&action, &["datasets", dataset_id, "metadata", "built-in", toggle])?;
        self.json(Call::new(TOGGLE_BUILT_IN_METADATA, url, action)).await
    }

    /// Assigns metadata values to many documents in one call.
    ///
    /// Retried after failures that may have been processed only when every
    /// operation is a full replace (`partial_update: false`), since then a
    /// repeat writes the same values again.
    ///
    /// # Errors
    ///
    /// 400 on the first failing operation; earlier ones stay applied.
    pub async fn assign_metadata(
        &self,
        dataset_id: &str,
        request: &AssignMetadataRequest,
    ) -> Result<OperationResult> {
        let action = format!(
            "assigning metadata to {} documents in dataset {dataset_id}",
            request.operation_data.len()
        );
        let class = if request.is_full_replace() { Safe } else { Unsafe };
        let url = self.url(&action, &["datasets", dataset_id, "documents", "metadata"])?;
        self.json(Call::new(ASSIGN_METADATA, url, action).class(class).json(request)?).await
    }
}
