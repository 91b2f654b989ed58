//! Connection reuse, concurrency and recovery from idle connections the
//! server closed.

mod common;

use std::time::Duration;

use dify_client::MetadataMode;
use test_support::dify::{DifyServer, routes};

#[tokio::test]
async fn sequential_calls_share_one_connection() {
    let server = DifyServer::start().await.unwrap();
    let client = common::client(&server);
    let dataset = common::dataset(&client, "pooled").await;

    for _ in 0..50 {
        client.get_dataset(&dataset.id).await.unwrap();
    }

    assert_eq!(server.stats().connections_accepted, 1);
    assert_eq!(client.metrics().connections_opened, 1);
    assert_eq!(client.metrics().requests_total, 51);
}

#[tokio::test]
async fn concurrent_callers_open_at_most_one_connection_each() {
    const CALLERS: u64 = 8;
    let server = DifyServer::start().await.unwrap();
    let client = common::client(&server);
    let dataset = common::dataset(&client, "concurrent").await;

    for _ in 0..5 {
        let calls = (0..CALLERS).map(|_| {
            let client = client.clone();
            let id = dataset.id.clone();
            tokio::spawn(async move { client.get_dataset(&id).await })
        });
        for call in futures_util::future::join_all(calls).await {
            call.unwrap().unwrap();
        }
    }

    let accepted = server.stats().connections_accepted;
    assert!((1..=CALLERS).contains(&accepted), "{accepted} connections");
    assert_eq!(client.metrics().connections_opened, accepted);
}

#[tokio::test]
async fn server_closing_idle_connections_causes_no_error_or_duplicate() {
    let server =
        DifyServer::builder().idle_timeout(Some(Duration::from_millis(150))).start().await.unwrap();
    // Keep connections until the server closes them, so every call after a
    // pause meets a connection the server already closed.
    let client = common::builder(&server).pool_idle_timeout(None).build().unwrap();
    let dataset = common::dataset(&client, "idle").await;

    for round in 0..4 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let name = format!("page-{round}");
        let created = client
            .create_document_by_text(&dataset.id, &common::text_document(&name, "body"))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        client.get_document(&dataset.id, &created.document.id, MetadataMode::Only).await.unwrap();
    }

    let stats = server.stats();
    assert_eq!(stats.requests(routes::CREATE_BY_TEXT), 4, "each create sent exactly once");
    assert_eq!(server.documents(&dataset.id).len(), 4);
    assert!(stats.connections_accepted >= 2, "the server did close idle connections");
    assert_eq!(client.metrics().retries, 0);
}

#[tokio::test]
async fn default_idle_timeout_drops_connections_before_the_server_does() {
    let server =
        DifyServer::builder().idle_timeout(Some(Duration::from_secs(2))).start().await.unwrap();
    let client = common::builder(&server)
        .pool_idle_timeout(Some(Duration::from_millis(100)))
        .build()
        .unwrap();
    let dataset = common::dataset(&client, "idle-client-side").await;

    tokio::time::sleep(Duration::from_millis(300)).await;
    client.create_document_by_text(&dataset.id, &common::text_document("a", "b")).await.unwrap();

    assert_eq!(server.stats().connections_accepted, 2, "the idle connection was not reused");
    assert_eq!(server.stats().requests(routes::CREATE_BY_TEXT), 1);
}
