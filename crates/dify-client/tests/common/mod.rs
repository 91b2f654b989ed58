//! Helpers shared by the integration tests: a client pointed at a test
//! server, a dataset ready to take documents, and fault plans.

#![allow(dead_code)]

use std::time::Duration;

use dify_client::{
    CreateDatasetRequest, CreateDocumentByTextRequest, Dataset, DifyClient, DifyClientBuilder,
    IndexingTechnique,
};
use test_support::dify::{DifyServer, FaultPlan, FaultRule};

/// A builder for `server` with fast retries, so tests do not wait long.
pub fn builder(server: &DifyServer) -> DifyClientBuilder {
    DifyClient::builder(server.base_url(), server.api_key())
        .base_delay(Duration::from_millis(5))
        .max_delay(Duration::from_millis(20))
}

/// A client for `server` with fast retries.
pub fn client(server: &DifyServer) -> DifyClient {
    builder(server).build().expect("client builds")
}

/// Creates an economy dataset called `name`.
pub async fn dataset(client: &DifyClient, name: &str) -> Dataset {
    let request = CreateDatasetRequest {
        indexing_technique: Some(IndexingTechnique::Economy),
        ..CreateDatasetRequest::new(name)
    };
    client.create_dataset(&request).await.expect("dataset created")
}

/// A create-by-text request for an economy dataset.
pub fn text_document(name: &str, text: &str) -> CreateDocumentByTextRequest {
    CreateDocumentByTextRequest::new(name, text, IndexingTechnique::Economy)
}

/// A fault plan with a fixed seed.
pub fn plan(rules: Vec<FaultRule>) -> FaultPlan {
    FaultPlan::new(7, rules)
}
