//! Dataset endpoints.

use crate::client::DifyClient;
use crate::endpoints::{
    CREATE_DATASET, DELETE_DATASET, GET_DATASET, LIST_DATASETS, UPDATE_DATASET,
};
use crate::error::Result;
use crate::transport::Call;
use crate::types::{CreateDatasetRequest, Dataset, ListDatasetsQuery, Page, UpdateDatasetRequest};

impl DifyClient {
    /// Creates a dataset.
    ///
    /// Retried after a lost reply. If the retry then finds the name taken,
    /// the lost attempt created it: the dataset is looked up by name and
    /// returned, so one call never leaves a dataset behind and reports an
    /// error. To get-or-create, use [`ensure_dataset`](Self::ensure_dataset).
    ///
    /// # Errors
    ///
    /// 409 ([`Error::is_duplicate_name`](crate::Error::is_duplicate_name))
    /// when the name was taken before the call, 400 for invalid fields, and
    /// transport, breaker and rate-limit errors as for every call.
    pub async fn create_dataset(&self, request: &CreateDatasetRequest) -> Result<Dataset> {
        let action = format!("creating dataset {:?}", request.name);
        let url = self.url(&action, &["datasets"])?;
        let call = Call::new(CREATE_DATASET, url, action).json(request)?;
        self.create_keyed(call, || self.find_dataset(&request.name)).await
    }

    /// Lists one page of datasets.
    ///
    /// # Errors
    ///
    /// Any API or transport error.
    pub async fn list_datasets(&self, query: &ListDatasetsQuery) -> Result<Page<Dataset>> {
        let action = "listing datasets".to_owned();
        let mut url = self.url(&action, &["datasets"])?;
        url.query_pairs_mut().extend_pairs(query.pairs());
        self.json(Call::new(LIST_DATASETS, url, action)).await
    }

    /// Reads one dataset.
    ///
    /// # Errors
    ///
    /// 404 when it does not exist in the key's workspace.
    pub async fn get_dataset(&self, dataset_id: &str) -> Result<Dataset> {
        let action = format!("reading dataset {dataset_id}");
        let url = self.url(&action, &["datasets", dataset_id])?;
        self.json(Call::new(GET_DATASET, url, action)).await
    }

    /// Updates a dataset's settings.
    ///
    /// # Errors
    ///
    /// 400 when renaming to a name in use, 404 when missing.
    pub async fn update_dataset(
        &self,
        dataset_id: &str,
        request: &UpdateDatasetRequest,
    ) -> Result<Dataset> {
        let action = format!("updating dataset {dataset_id}");
        let url = self.url(&action, &["datasets", dataset_id])?;
        self.json(Call::new(UPDATE_DATASET, url, action).json(request)?).await
    }

    /// Deletes a dataset and its documents. A 404 after an attempt whose
    /// reply was lost counts as success.
    ///
    /// # Errors
    ///
    /// 409 when apps use it, 404 when missing.
    pub async fn delete_dataset(&self, dataset_id: &str) -> Result<()> {
        let action = format!("deleting dataset {dataset_id}");
        let url = self.url(&action, &["datasets", dataset_id])?;
        self.unit(Call::new(DELETE_DATASET, url, action)).await
    }
}
