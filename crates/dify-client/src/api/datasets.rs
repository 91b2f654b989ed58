//! Dataset endpoints.

use crate::client::DifyClient;
use crate::error::Result;
use crate::retry::Idempotency::{NaturalKey, Safe, Unsafe};
use crate::transport::{Call, Endpoint, Verb};
use crate::types::{CreateDatasetRequest, Dataset, ListDatasetsQuery, Page, UpdateDatasetRequest};

const CREATE: Endpoint =
    Endpoint { verb: Verb::Post, route: "POST /datasets", class: NaturalKey, counted: true };
const LIST: Endpoint =
    Endpoint { verb: Verb::Get, route: "GET /datasets", class: Safe, counted: false };
const GET: Endpoint =
    Endpoint { verb: Verb::Get, route: "GET /datasets/{dataset_id}", class: Safe, counted: false };
const UPDATE: Endpoint = Endpoint {
    verb: Verb::Patch,
    route: "PATCH /datasets/{dataset_id}",
    class: Unsafe,
    counted: true,
};
const DELETE: Endpoint = Endpoint {
    verb: Verb::Delete,
    route: "DELETE /datasets/{dataset_id}",
    class: Safe,
    counted: true,
};

impl DifyClient {
    /// Creates a dataset.
    ///
    /// Retried after a lost reply; the retry may then answer "duplicate"
    /// ([`Error::is_duplicate_name`](crate::Error::is_duplicate_name)), which
    /// [`ensure_dataset`](Self::ensure_dataset) resolves.
    ///
    /// # Errors
    ///
    /// 409 when the name is taken, 400 for invalid fields, and transport,
    /// breaker and rate-limit errors as for every call.
    pub async fn create_dataset(&self, request: &CreateDatasetRequest) -> Result<Dataset> {
        let action = format!("creating dataset {:?}", request.name);
        self.json(Call::new(CREATE, self.url(&["datasets"]), action).json(request)?).await
    }

    /// Lists one page of datasets.
    ///
    /// # Errors
    ///
    /// Any API or transport error.
    pub async fn list_datasets(&self, query: &ListDatasetsQuery) -> Result<Page<Dataset>> {
        let mut url = self.url(&["datasets"]);
        url.query_pairs_mut().extend_pairs(query.pairs());
        self.json(Call::new(LIST, url, "listing datasets".into())).await
    }

    /// Reads one dataset.
    ///
    /// # Errors
    ///
    /// 404 when it does not exist in the key's workspace.
    pub async fn get_dataset(&self, dataset_id: &str) -> Result<Dataset> {
        let action = format!("reading dataset {dataset_id}");
        self.json(Call::new(GET, self.url(&["datasets", dataset_id]), action)).await
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
        self.json(Call::new(UPDATE, self.url(&["datasets", dataset_id]), action).json(request)?)
            .await
    }

    /// Deletes a dataset and its documents. A 404 after a retried attempt
    /// counts as success.
    ///
    /// # Errors
    ///
    /// 409 when apps use it, 404 when missing.
    pub async fn delete_dataset(&self, dataset_id: &str) -> Result<()> {
        let action = format!("deleting dataset {dataset_id}");
        self.unit(Call::new(DELETE, self.url(&["datasets", dataset_id]), action)).await
    }
}
