//! The retrieve (hit-testing) endpoint.

use crate::client::DifyClient;
use crate::error::Result;
use crate::retry::Idempotency::Safe;
use crate::transport::{Call, Endpoint, Verb};
use crate::types::{RetrieveRequest, RetrieveResponse};

const RETRIEVE: Endpoint = Endpoint {
    verb: Verb::Post,
    route: "POST /datasets/{dataset_id}/retrieve",
    // Its only side effects are hit counters and a query log.
    class: Safe,
    counted: true,
};

impl DifyClient {
    /// Searches a dataset.
    ///
    /// # Errors
    ///
    /// 400 for an unsupported search method (economy datasets need
    /// `keyword_search`), an empty or over-long query, or a missing model.
    pub async fn retrieve(
        &self,
        dataset_id: &str,
        request: &RetrieveRequest,
    ) -> Result<RetrieveResponse> {
        let action = format!("retrieving from dataset {dataset_id}");
        let url = self.url(&["datasets", dataset_id, "retrieve"]);
        self.json(Call::new(RETRIEVE, url, action).json(request)?).await
    }
}
