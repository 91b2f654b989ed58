//! Natural-key helpers: get-or-create by name.
//!
//! Dify has no client-chosen ids and no idempotency keys; names are the only
//! stable handles. Dataset names are unique per workspace (409 on create),
//! metadata field names per dataset (400 "already exists"). These helpers
//! look the name up first (lists are free under Dify Cloud's rate limit,
//! creates are not), create only when it is missing, and look up again when
//! the create finds the name taken after all: another writer got there in
//! between. A create whose reply was lost is resolved inside the create
//! itself (see [`DifyClient::create_dataset`]). Between the lookup and the
//! create nothing is locked, so two writers racing on one new name can both
//! see it missing; the loser's create answers "duplicate" and resolves to
//! the winner's object.

use crate::client::DifyClient;
use crate::error::{Error, Result};
use crate::types::{CreateDatasetRequest, Dataset, ListDatasetsQuery, MetadataField, MetadataType};

/// Page size for name lookups (the server's maximum).
const LOOKUP_PAGE: u32 = 100;

impl DifyClient {
    /// Returns the dataset called `name`, creating it from `request` (whose
    /// name is replaced by `name`) if none exists.
    ///
    /// Looks the name up first, among datasets whose name contains `name`
    /// (including other members' private ones), and picks the exact match;
    /// creates only when there is none.
    ///
    /// # Errors
    ///
    /// [`Error::NameConflict`] when Dify says the name is taken but no
    /// listed dataset carries it exactly; otherwise the create or list
    /// error.
    pub async fn ensure_dataset(
        &self,
        name: &str,
        request: &CreateDatasetRequest,
    ) -> Result<Dataset> {
        if let Some(found) = self.find_dataset(name).await? {
            return Ok(found);
        }
        let request = CreateDatasetRequest { name: name.to_owned(), ..request.clone() };
        match self.create_dataset(&request).await {
            Ok(dataset) => {
                tracing::info!(dataset = %dataset.id, name, "created dataset");
                Ok(dataset)
            }
            Err(error) if error.is_duplicate_name() => {
                let found = self.find_dataset(name).await?;
                found.ok_or_else(|| Error::NameConflict {
                    action: format!("ensuring dataset {name:?}"),
                })
            }
            Err(error) => Err(error),
        }
    }

    /// Finds a dataset by exact name.
    ///
    /// # Errors
    ///
    /// The list error.
    pub async fn find_dataset(&self, name: &str) -> Result<Option<Dataset>> {
        let mut query = ListDatasetsQuery {
            page: Some(1),
            limit: Some(LOOKUP_PAGE),
            keyword: Some(name.to_owned()),
            include_all: Some(true),
            tag_ids: Vec::new(),
        };
        loop {
            let page = self.list_datasets(&query).await?;
            let last = page.is_last(LOOKUP_PAGE);
            if let Some(dataset) = page.data.into_iter().find(|d| d.name == name) {
                return Ok(Some(dataset));
            }
            match (last, query.page) {
                (false, Some(n)) => query.page = n.checked_add(1),
                _ => return Ok(None),
            }
        }
    }

    /// Returns the metadata field `name` of a dataset, creating it with
    /// `kind` if missing. An existing field is returned as is, even if its
    /// type differs.
    ///
    /// # Errors
    ///
    /// [`Error::NameConflict`] when the name is refused as taken but not
    /// listed (a built-in name such as `source`); otherwise the list or
    /// create error.
    pub async fn ensure_metadata_field(
        &self,
        dataset_id: &str,
        name: &str,
        kind: MetadataType,
    ) -> Result<MetadataField> {
        if let Some(field) = self.find_metadata_field(dataset_id, name).await? {
            return Ok(field);
        }
        match self.create_metadata_field(dataset_id, name, kind).await {
            Ok(field) => {
                tracing::info!(dataset = dataset_id, field = %field.id, name, "created metadata field");
                Ok(field)
            }
            Err(error) if error.is_duplicate_name() => {
                let found = self.find_metadata_field(dataset_id, name).await?;
                let action = format!("ensuring metadata field {name:?} in dataset {dataset_id}");
                found.ok_or(Error::NameConflict { action })
            }
            Err(error) => Err(error),
        }
    }

    /// Finds a metadata field of a dataset by exact name.
    pub(crate) async fn find_metadata_field(
        &self,
        dataset_id: &str,
        name: &str,
    ) -> Result<Option<MetadataField>> {
        let fields = self.list_metadata_fields(dataset_id).await?;
        Ok(fields.doc_metadata.into_iter().find(|field| field.name == name))
    }
}
