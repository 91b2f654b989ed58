//! The endpoints and natural-key helpers against the test server.

mod common;

use std::collections::BTreeSet;

use dify_client::{
    AssignMetadataRequest, CreateDatasetRequest, DocumentAction, DocumentMetadataOperation,
    DocumentSettings, Error, FileUpload, IndexingTechnique, ListDocumentsQuery, MetadataMode,
    MetadataType, MetadataValue, ProcessRule, RetrievalModel, RetrieveRequest,
};
use futures_util::StreamExt;
use test_support::dify::{DifyServer, Fault, FaultRule, routes};

use common::plan;

#[tokio::test]
async fn ensure_dataset_creates_once_then_finds_by_exact_name() {
    let server = DifyServer::start().await.unwrap();
    let client = common::client(&server);
    // A dataset whose name contains the wanted one must not be picked.
    common::dataset(&client, "docs-archive").await;
    let request = CreateDatasetRequest::new("ignored");

    server.reset_stats();

    let first = client.ensure_dataset("docs", &request).await.unwrap();
    let second = client.ensure_dataset("docs", &request).await.unwrap();

    assert_eq!(first.id, second.id);
    assert_eq!(second.name, "docs");
    assert_eq!(server.datasets().len(), 2);
    let stats = server.stats();
    assert_eq!(stats.requests(routes::CREATE_DATASET), 1, "looked up first, created once");
    assert_eq!(stats.requests(routes::LIST_DATASETS), 2, "one lookup per call");
}

#[tokio::test]
async fn ensure_metadata_field_lists_first_and_creates_once() {
    let server = DifyServer::start().await.unwrap();
    let client = common::client(&server);
    let dataset = common::dataset(&client, "meta").await;

    let first = client
        .ensure_metadata_field(&dataset.id, "source_url", MetadataType::String)
        .await
        .unwrap();
    let second = client
        .ensure_metadata_field(&dataset.id, "source_url", MetadataType::String)
        .await
        .unwrap();

    assert_eq!(first.id, second.id);
    assert_eq!(server.stats().requests(routes::CREATE_METADATA), 1);

    // A built-in name is refused as taken but never listed.
    let builtin = client
        .ensure_metadata_field(&dataset.id, "source", MetadataType::String)
        .await
        .unwrap_err();
    assert!(matches!(builtin, Error::NameConflict { .. }), "{builtin:?}");
    assert!(builtin.to_string().starts_with("ensuring metadata field \"source\""), "{builtin}");
    assert_eq!(server.stats().requests(routes::CREATE_METADATA), 2);
}

#[tokio::test(start_paused = true)]
async fn create_dataset_after_a_lost_reply_returns_the_dataset_it_made() {
    let server = DifyServer::start().await.unwrap();
    let client = common::client(&server);
    server.set_faults(plan(vec![FaultRule::once(Some(routes::CREATE_DATASET), Fault::DropAfter)]));

    let created = client.create_dataset(&CreateDatasetRequest::new("kb")).await.unwrap();

    let stored = server.datasets();
    assert_eq!(stored.len(), 1, "no duplicate");
    assert_eq!(created.id, stored[0].id);
    assert_eq!(created.name, "kb");
    assert_eq!(server.stats().requests(routes::CREATE_DATASET), 2, "the retry met the 409");
    // Taken before the call: still an error.
    let taken = client.create_dataset(&CreateDatasetRequest::new("kb")).await.unwrap_err();
    assert!(taken.is_duplicate_name(), "{taken}");
}

#[tokio::test(start_paused = true)]
async fn ensure_dataset_after_a_lost_reply_returns_the_same_id() {
    let server = DifyServer::start().await.unwrap();
    let client = common::client(&server);
    server.set_faults(plan(vec![FaultRule::once(Some(routes::CREATE_DATASET), Fault::DropAfter)]));
    let request = CreateDatasetRequest::new("ignored");

    let first = client.ensure_dataset("kb", &request).await.unwrap();
    let again = client.ensure_dataset("kb", &request).await.unwrap();

    assert_eq!(server.datasets().len(), 1, "no duplicate");
    assert_eq!(first.id, server.datasets()[0].id);
    assert_eq!(again.id, first.id);
    assert_eq!(server.stats().requests(routes::CREATE_DATASET), 2);
}

#[tokio::test(start_paused = true)]
async fn ensure_metadata_field_after_a_lost_reply_returns_the_same_id() {
    let server = DifyServer::start().await.unwrap();
    let client = common::client(&server);
    let dataset = common::dataset(&client, "meta-lost").await;
    server.set_faults(plan(vec![FaultRule::once(Some(routes::CREATE_METADATA), Fault::DropAfter)]));

    let first =
        client.ensure_metadata_field(&dataset.id, "url", MetadataType::String).await.unwrap();
    let again =
        client.ensure_metadata_field(&dataset.id, "url", MetadataType::String).await.unwrap();

    let fields = &server.datasets()[0].metadata_fields;
    assert_eq!(fields.len(), 1, "no duplicate");
    assert_eq!(first.id, fields[0].id);
    assert_eq!(again.id, first.id);
    assert_eq!(server.stats().requests(routes::CREATE_METADATA), 2);
}

#[tokio::test(start_paused = true)]
async fn create_tag_after_a_lost_reply_returns_the_tag_it_made() {
    let server = DifyServer::start().await.unwrap();
    let client = common::client(&server);
    server.set_faults(plan(vec![FaultRule::once(Some(routes::CREATE_TAG), Fault::DropAfter)]));

    let tag = client.create_tag("crawled").await.unwrap();

    let tags = client.list_tags().await.unwrap();
    assert_eq!(tags.len(), 1, "no duplicate");
    assert_eq!(tags[0].id, tag.id);
}

#[tokio::test]
async fn ids_that_would_change_the_route_are_refused_before_sending() {
    let server = DifyServer::start().await.unwrap();
    let client = common::client(&server);
    let dataset = common::dataset(&client, "dots").await;
    server.reset_stats();

    for bad in ["", ".", "..", "a/b"] {
        let error = client.get_document(&dataset.id, bad, MetadataMode::All).await.unwrap_err();
        assert!(matches!(error, Error::InvalidInput { .. }), "{bad:?}: {error:?}");
        let error = client.delete_dataset(bad).await.unwrap_err();
        assert!(matches!(error, Error::InvalidInput { .. }), "{bad:?}: {error:?}");
    }

    assert_eq!(server.stats().requests_total, 0, "nothing was sent");
    assert_eq!(client.metrics().breaker_trips, 0);
}

#[tokio::test]
async fn update_by_file_uses_the_alias_every_version_routes() {
    let server = DifyServer::start().await.unwrap();
    let client = common::client(&server);
    let dataset = common::dataset(&client, "file-update").await;
    let created = client
        .create_document_by_text(&dataset.id, &common::text_document("doc", "v1"))
        .await
        .unwrap();
    server.complete_all_indexing();

    let file = FileUpload::new("doc.md", "v2 from a file");
    let settings = DocumentSettings::default();
    client
        .update_document_by_file(&dataset.id, &created.document.id, Some(file), &settings)
        .await
        .unwrap();

    let route = "POST /datasets/{dataset_id}/documents/{document_id}/update-by-file";
    assert_eq!(client.metrics().requests[route]["200"], 1);
    assert_eq!(server.stats().requests(routes::UPDATE_BY_FILE), 1);
    assert_eq!(server.documents(&dataset.id)[0].text, "v2 from a file");
}

#[tokio::test]
async fn document_stream_reads_every_page() {
    let server = DifyServer::start().await.unwrap();
    let client = common::client(&server);
    let dataset = common::dataset(&client, "many").await;
    for n in 0..45 {
        let request = common::text_document(&format!("doc-{n:02}"), "text");
        client.create_document_by_text(&dataset.id, &request).await.unwrap();
    }

    let query = ListDocumentsQuery { limit: Some(20), ..Default::default() };
    let documents: Vec<_> = client.documents(&dataset.id, query).collect().await;

    let names: BTreeSet<_> = documents.into_iter().map(|d| d.unwrap().name).collect();
    assert_eq!(names.len(), 45);
    assert_eq!(server.stats().requests(routes::LIST_DOCUMENTS), 3);
}

#[tokio::test]
async fn document_stream_of_an_empty_dataset_ends_after_one_page() {
    let server = DifyServer::start().await.unwrap();
    let client = common::client(&server);
    let dataset = common::dataset(&client, "empty").await;

    let count = client.documents(&dataset.id, ListDocumentsQuery::default()).count().await;

    assert_eq!(count, 0);
    assert_eq!(server.stats().requests(routes::LIST_DOCUMENTS), 1);
}

#[tokio::test]
async fn same_name_create_replaces_in_place_and_metadata_assigns() {
    let server = DifyServer::start().await.unwrap();
    let client = common::client(&server);
    let dataset = common::dataset(&client, "replace").await;
    let first = client
        .create_document_by_text(&dataset.id, &common::text_document("page", "v1"))
        .await
        .unwrap();
    let second = client
        .create_document_by_text(&dataset.id, &common::text_document("page", "v2"))
        .await
        .unwrap();
    assert_eq!(first.document.id, second.document.id);
    assert_ne!(first.batch, second.batch);

    let field =
        client.ensure_metadata_field(&dataset.id, "url", MetadataType::String).await.unwrap();
    let request = AssignMetadataRequest {
        operation_data: vec![DocumentMetadataOperation {
            document_id: first.document.id.clone(),
            metadata_list: vec![MetadataValue {
                id: field.id.clone(),
                name: field.name.clone(),
                value: "https://example.org/page".into(),
            }],
            partial_update: false,
        }],
    };
    assert_eq!(client.assign_metadata(&dataset.id, &request).await.unwrap().result, "success");

    let detail =
        client.get_document(&dataset.id, &first.document.id, MetadataMode::Only).await.unwrap();
    let url = detail.doc_metadata.iter().find(|m| m.name == "url").map(|m| m.value.clone());
    assert_eq!(url, Some("https://example.org/page".into()));
    assert_eq!(server.documents(&dataset.id).len(), 1);
}

#[tokio::test]
async fn indexing_status_status_actions_and_version() {
    let server = DifyServer::start().await.unwrap();
    let client = common::client(&server);
    let dataset = common::dataset(&client, "status").await;
    let created = client
        .create_document_by_text(&dataset.id, &common::text_document("d", "text"))
        .await
        .unwrap();

    let status = client.indexing_status(&dataset.id, &created.batch).await.unwrap();
    assert_eq!(status.data.len(), 1);
    assert_eq!(status.data[0].id, created.document.id);

    server.complete_all_indexing();
    let ids = vec![created.document.id.clone()];
    client.set_documents_status(&dataset.id, DocumentAction::Disable, &ids).await.unwrap();
    assert!(!server.documents(&dataset.id)[0].enabled);
    assert!(client.server_version().is_some());
}

#[tokio::test]
async fn file_create_and_retrieve() {
    let server = DifyServer::start().await.unwrap();
    let client = common::client(&server);
    let dataset = common::dataset(&client, "files").await;
    let settings = DocumentSettings {
        indexing_technique: Some(IndexingTechnique::Economy),
        process_rule: Some(ProcessRule::automatic()),
        ..Default::default()
    };
    let file = FileUpload {
        mime: Some("text/markdown".into()),
        ..FileUpload::new("notes.md", "tokio pooling notes")
    };

    let created = client.create_document_by_file(&dataset.id, file, &settings).await.unwrap();
    server.complete_all_indexing();

    assert_eq!(created.document.name, "notes.md");
    let request = RetrieveRequest::new("pooling").retrieval_model(RetrievalModel::keyword(3));
    let found = client.retrieve(&dataset.id, &request).await.unwrap();
    assert!(found.records.iter().any(|r| r.segment.content.contains("pooling")), "{found:?}");
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let server = DifyServer::start().await.unwrap();
    let client = common::client(&server);
    let dataset = common::dataset(&client, "metrics").await;
    client.get_dataset(&dataset.id).await.unwrap();
    client.get_dataset("5ef92201-5e4a-4aa5-86e9-9467f120b5a1").await.unwrap_err();

    let metrics = client.metrics();

    let by_status = &metrics.requests["GET /datasets/{dataset_id}"];
    assert_eq!(by_status["200"], 1);
    assert_eq!(by_status["404"], 1);
    assert_eq!(metrics.latency.count, 3);
    assert!(metrics.latency.max_ms >= metrics.latency.p50_ms);
    let json = serde_json::to_value(&metrics).unwrap();
    assert_eq!(json["connections_opened"], 1);
}

#[tokio::test]
async fn remaining_endpoints_round_trip() {
    use dify_client::{ListDatasetsQuery, UpdateDatasetRequest};

    let server = DifyServer::start().await.unwrap();
    let client = common::client(&server);
    let dataset = common::dataset(&client, "rest").await;

    let update = UpdateDatasetRequest { description: Some("updated".into()), ..Default::default() };
    assert_eq!(
        client.update_dataset(&dataset.id, &update).await.unwrap().description.as_deref(),
        Some("updated")
    );
    let query = ListDatasetsQuery { keyword: Some("rest".into()), ..Default::default() };
    assert_eq!(client.list_datasets(&query).await.unwrap().data.len(), 1);

    let field =
        client.create_metadata_field(&dataset.id, "lang", MetadataType::String).await.unwrap();
    let renamed = client.rename_metadata_field(&dataset.id, &field.id, "language").await.unwrap();
    assert_eq!(renamed.name, "language");
    assert_eq!(client.built_in_metadata_fields(&dataset.id).await.unwrap().fields.len(), 5);
    client.set_built_in_metadata(&dataset.id, true).await.unwrap();
    assert!(client.list_metadata_fields(&dataset.id).await.unwrap().built_in_field_enabled);
    client.delete_metadata_field(&dataset.id, &field.id).await.unwrap();

    let created = client
        .create_document_by_text(&dataset.id, &common::text_document("doc", "v1"))
        .await
        .unwrap();
    server.complete_all_indexing();
    let settings = DocumentSettings::default();
    let file = FileUpload::new("doc.md", "v2 from a file");
    client
        .update_document_by_file(&dataset.id, &created.document.id, Some(file), &settings)
        .await
        .unwrap();
    assert_eq!(server.documents(&dataset.id)[0].text, "v2 from a file");

    let tag = client.create_tag("crawled").await.unwrap();
    client.bind_tags(&dataset.id, std::slice::from_ref(&tag.id)).await.unwrap();
    assert_eq!(client.dataset_tags(&dataset.id).await.unwrap().data[0].name, "crawled");
    assert_eq!(client.list_tags().await.unwrap()[0].binding_count, Some(1));
    client.unbind_tags(&dataset.id, std::slice::from_ref(&tag.id)).await.unwrap();
    client.rename_tag(&tag.id, "crawl").await.unwrap();
    client.delete_tag(&tag.id).await.unwrap();

    client.delete_dataset(&dataset.id).await.unwrap();
    assert!(client.get_dataset(&dataset.id).await.unwrap_err().is_not_found());
    let metrics = client.metrics();
    assert_eq!(metrics.retries, 0);
    assert_eq!(metrics.breaker_trips, 0);
    assert_eq!(metrics.connections_opened, 1);
    assert_eq!(metrics.latency.count, metrics.requests_total);
}
