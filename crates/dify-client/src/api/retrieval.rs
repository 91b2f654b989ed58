//! The retrieve (hit-testing) endpoint.

use crate::client::DifyClient;
use crate::endpoints::RETRIEVE;
use crate::error::Result;
use crate::transport::Call;
use crate::types::{RetrieveRequest, RetrieveResponse};

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
        let url = self.url(&action, &["datasets", dataset_id, "retrieve"])?;
        self.json(Call::new(RETRIEVE, url, action).json(request)?).await
    }
}
