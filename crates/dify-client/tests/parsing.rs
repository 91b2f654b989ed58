//! Lenient where servers differ, strict where a body is simply not what
//! was asked for.

mod common;

use dify_client::{
    Dataset, Document, Error, LogicalOperator, MetadataField, MetadataMode, Page, SearchMethod,
};
use serde_json::json;
use test_support::dify::{DifyServer, routes};

/// One dataset with every nested oddity seen across versions, next to a
/// plain one: the page parses and keeps both.
#[test]
fn a_dataset_page_with_odd_nested_fields_still_parses() {
    let odd = json!({
        "id": "5ef92201-5e4a-4aa5-86e9-9467f120b5a1",
        "name": "odd",
        "permission": "some_new_permission",
        "indexing_technique": null,
        "retrieval_model_dict": {
            "search_method": null,
            "reranking_enable": null,
            "reranking_mode": "something_newer",
            "reranking_model": "not an object",
            "top_k": null,
            "score_threshold_enabled": false,
            "weights": {"weight_type": "customized"},
            "metadata_filtering_conditions": {
                "logical_operator": "xor",
                "conditions": null
            }
        },
        "tags": [{"id": "t1", "name": "a"}, 42, null],
        "doc_metadata": [{"id": null, "name": "x", "type": "string"}, {"id": "m", "name": "y"}],
        "a_field_from_the_future": {"nested": [1, 2, 3]}
    });
    let broken_setting = json!({
        "id": "6ff867f0-db8a-4034-9b60-6fcb441b027a",
        "name": "broken",
        "retrieval_model_dict": "keyword_search",
    });
    let body = json!({
        "data": [odd, broken_setting], "has_more": false, "limit": 20, "total": 2, "page": 1
    });

    let page: Page<Dataset> = serde_json::from_value(body).unwrap();

    assert_eq!(page.data.len(), 2);
    let odd = &page.data[0];
    let retrieval = odd.retrieval_model_dict.as_ref().expect("kept");
    assert_eq!(retrieval.search_method, SearchMethod::KeywordSearch, "null reads as the default");
    assert_eq!(retrieval.reranking_model, None, "an unreadable nested object reads as absent");
    let filter = retrieval.metadata_filtering_conditions.as_ref().expect("kept");
    assert_eq!(filter.logical_operator, LogicalOperator::Other);
    assert!(filter.conditions.is_empty());
    assert_eq!(odd.tags.len(), 1, "unreadable tags are skipped");
    assert_eq!(odd.doc_metadata.len(), 1, "unreadable fields are skipped");
    assert_eq!(page.data[1].retrieval_model_dict, None);
}

#[test]
fn objects_without_an_id_are_decode_errors() {
    let list = json!({"data": [], "has_more": false, "limit": 20, "total": 0, "page": 1});
    assert!(serde_json::from_value::<Document>(list.clone()).is_err());
    assert!(serde_json::from_value::<Dataset>(list.clone()).is_err());
    assert!(serde_json::from_value::<MetadataField>(list).is_err());
    assert!(serde_json::from_value::<Document>(json!({"id": null, "name": "x"})).is_err());
    let minimal: Document = serde_json::from_value(json!({"id": "d"})).unwrap();
    assert_eq!(minimal.name, "");
}

/// Answers every request on one connection with `body` (200, JSON).
async fn serve_always(body: &'static str) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        let mut chunk = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = socket.read(&mut chunk).await.unwrap();
            request.extend_from_slice(&chunk[..n]);
        }
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        socket.write_all(response.as_bytes()).await.unwrap();
    });
    addr
}

/// A body of the wrong shape is a decode error that says why, not an
/// object with an empty id.
#[tokio::test]
async fn a_list_body_is_not_taken_for_a_dataset() {
    let addr = serve_always(r#"{"data": [], "has_more": false, "total": 0}"#).await;
    let client =
        dify_client::DifyClient::builder(format!("http://{addr}"), "dataset-k").build().unwrap();

    let error = client.get_dataset("5ef92201-5e4a-4aa5-86e9-9467f120b5a1").await.unwrap_err();

    assert!(matches!(error, Error::Decode { .. }), "{error:?}");
    let shown = error.to_string();
    assert!(
        shown.starts_with("reading dataset 5ef92201-5e4a-4aa5-86e9-9467f120b5a1: unexpected response body: missing field `id`"),
        "{shown}"
    );
}

/// An id that would turn a document read into the document list is
/// refused before anything is sent.
#[tokio::test]
async fn an_empty_document_id_does_not_read_the_list() {
    let server = DifyServer::start().await.unwrap();
    let client = common::client(&server);
    let dataset = common::dataset(&client, "decode").await;

    let refused = client.get_document(&dataset.id, "", MetadataMode::All).await.unwrap_err();

    assert!(matches!(refused, Error::InvalidInput { .. }), "{refused:?}");
    assert_eq!(server.stats().requests(routes::LIST_DOCUMENTS), 0);
    assert_eq!(server.stats().requests(routes::GET_DOCUMENT), 0);
}
