//! Retries, Retry-After, the cloud rate limit, the circuit breaker and the
//! guarantee that faults never duplicate a document.

mod common;

use std::time::{Duration, Instant, SystemTime};

use dify_client::{DifyClient, UpdateDocumentByTextRequest};
use test_support::dify::{DifyServer, Fault, FaultPlan, FaultRule, routes};

fn plan(rules: Vec<FaultRule>) -> FaultPlan {
    FaultPlan::new(7, rules)
}

#[tokio::test]
async fn wrong_key_fails_at_once_with_one_request() {
    let server = DifyServer::start().await.unwrap();
    let client = DifyClient::builder(server.base_url(), "dataset-WRONGKEY").build().unwrap();

    let error = client.list_datasets(&Default::default()).await.unwrap_err();

    assert!(error.is_unauthorized(), "{error}");
    assert!(!error.is_retryable());
    assert_eq!(server.stats().requests_total, 1);
    for shown in [error.to_string(), format!("{error:?}"), format!("{client:?}")] {
        assert!(!shown.contains("WRONGKEY"), "key leaked: {shown}");
    }
}

#[tokio::test]
async fn retry_after_seconds_is_honoured() {
    let server = DifyServer::start().await.unwrap();
    let client = common::client(&server);
    let dataset = common::dataset(&client, "retry-after").await;
    let fault = Fault::TooManyRequests { retry_after: Some("1".into()) };
    server.set_faults(plan(vec![FaultRule::once(Some(routes::GET_DATASET), fault)]));

    let started = Instant::now();
    client.get_dataset(&dataset.id).await.unwrap();

    // A lower bound only: sleeping never ends early, however busy the
    // machine.
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(server.stats().requests(routes::GET_DATASET), 2);
    assert_eq!(client.metrics().retries, 1);
}

#[tokio::test]
async fn retry_after_date_is_honoured() {
    let server = DifyServer::start().await.unwrap();
    let client = common::client(&server);
    let dataset = common::dataset(&client, "retry-after-date").await;
    let at = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(2));
    let fault = Fault::TooManyRequests { retry_after: Some(at) };
    server.set_faults(plan(vec![FaultRule::once(Some(routes::GET_DATASET), fault)]));

    let started = Instant::now();
    client.get_dataset(&dataset.id).await.unwrap();

    // The date has one-second resolution, so at least one second remains.
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(server.stats().requests(routes::GET_DATASET), 2);
}

#[tokio::test]
async fn retries_stop_at_max_attempts() {
    let server = DifyServer::start().await.unwrap();
    let client = common::builder(&server).max_attempts(3).breaker_threshold(0).build().unwrap();
    let dataset = common::dataset(&client, "always-500").await;
    server.set_faults(plan(vec![FaultRule::always(
        Some(routes::GET_DATASET),
        Fault::ServerErrorBefore,
    )]));

    let error = client.get_dataset(&dataset.id).await.unwrap_err();

    assert_eq!(error.status(), Some(500));
    assert_eq!(server.stats().requests(routes::GET_DATASET), 3);
    assert_eq!(client.metrics().retries, 2);
}

#[tokio::test]
async fn cloud_rate_limit_pauses_then_gives_up() {
    let server = DifyServer::builder().cloud_rate_limit(Some(2)).start().await.unwrap();
    let client = common::builder(&server)
        .max_attempts(2)
        .rate_limit_window(Duration::from_millis(200))
        .build()
        .unwrap();
    let dataset = common::dataset(&client, "cloud").await;
    client.create_document_by_text(&dataset.id, &common::text_document("one", "x")).await.unwrap();

    let started = Instant::now();
    let error = client
        .create_document_by_text(&dataset.id, &common::text_document("two", "x"))
        .await
        .unwrap_err();

    assert!(error.is_rate_limited(), "{error}");
    assert!(started.elapsed() >= Duration::from_millis(200), "paused before the retry");
    assert_eq!(client.metrics().rate_limit_pauses, 2);
    assert_eq!(server.stats().requests(routes::CREATE_BY_TEXT), 3);
    // Reads are not counted by Dify Cloud and are not paused.
    client.get_dataset(&dataset.id).await.unwrap();
}

#[tokio::test]
async fn breaker_opens_fails_fast_and_recovers_through_a_probe() {
    let server = DifyServer::start().await.unwrap();
    let client = common::builder(&server)
        .max_attempts(1)
        .breaker_threshold(3)
        .breaker_cool_down(Duration::from_millis(200))
        .build()
        .unwrap();
    let dataset = common::dataset(&client, "breaker").await;
    server.set_faults(plan(vec![FaultRule::always(
        Some(routes::GET_DATASET),
        Fault::ServerErrorBefore,
    )]));

    for _ in 0..3 {
        assert_eq!(client.get_dataset(&dataset.id).await.unwrap_err().status(), Some(500));
    }
    let error = client.get_dataset(&dataset.id).await.unwrap_err();
    assert!(error.is_circuit_open(), "{error}");
    assert!(error.to_string().contains("circuit breaker open"), "{error}");
    assert_eq!(server.stats().requests(routes::GET_DATASET), 3, "failed fast without a request");

    server.clear_faults();
    tokio::time::sleep(Duration::from_millis(250)).await;
    client.get_dataset(&dataset.id).await.unwrap();
    client.get_dataset(&dataset.id).await.unwrap();
    assert_eq!(client.metrics().breaker_trips, 1);
}

async fn create_with_fault_once(fault: Fault) {
    let server = DifyServer::start().await.unwrap();
    let client = common::client(&server);
    let dataset = common::dataset(&client, "faulty").await;
    server.set_faults(plan(vec![FaultRule::once(Some(routes::CREATE_BY_TEXT), fault.clone())]));

    for n in 0..3 {
        let request = common::text_document(&format!("page-{n}"), "content");
        client.create_document_by_text(&dataset.id, &request).await.unwrap();
    }

    let documents = server.documents(&dataset.id);
    let mut names: Vec<_> = documents.iter().map(|d| d.name.clone()).collect();
    names.sort();
    assert_eq!(names, ["page-0", "page-1", "page-2"], "{fault:?}");
    assert_eq!(server.stats().faults(fault.kind()), 1);
    assert_eq!(server.stats().requests(routes::CREATE_BY_TEXT), 4, "one retry");
}

#[tokio::test]
async fn server_error_after_write_never_duplicates_a_document() {
    create_with_fault_once(Fault::ServerErrorAfter).await;
}

#[tokio::test]
async fn dropped_reply_after_write_never_duplicates_a_document() {
    create_with_fault_once(Fault::DropAfter).await;
}

#[tokio::test]
async fn updates_are_not_repeated_after_a_lost_reply() {
    let server = DifyServer::start().await.unwrap();
    let client = common::client(&server);
    let dataset = common::dataset(&client, "update").await;
    let created = client
        .create_document_by_text(&dataset.id, &common::text_document("doc", "v1"))
        .await
        .unwrap();
    server.complete_all_indexing();
    server.set_faults(plan(vec![FaultRule::once(Some(routes::UPDATE_BY_TEXT), Fault::DropAfter)]));

    let update = UpdateDocumentByTextRequest::text("doc", "v2");
    let error = client
        .update_document_by_text(&dataset.id, &created.document.id, &update)
        .await
        .unwrap_err();

    assert!(matches!(error, dify_client::Error::Transport { maybe_sent: true, .. }), "{error:?}");
    assert_eq!(server.stats().requests(routes::UPDATE_BY_TEXT), 1);
}

#[tokio::test]
async fn updates_are_repeated_when_never_processed() {
    let server = DifyServer::start().await.unwrap();
    let client = common::client(&server);
    let dataset = common::dataset(&client, "update-429").await;
    let created = client
        .create_document_by_text(&dataset.id, &common::text_document("doc", "v1"))
        .await
        .unwrap();
    server.complete_all_indexing();
    let fault = Fault::TooManyRequests { retry_after: None };
    server.set_faults(plan(vec![FaultRule::once(Some(routes::UPDATE_BY_TEXT), fault)]));

    let update = UpdateDocumentByTextRequest::text("doc", "v2");
    client.update_document_by_text(&dataset.id, &created.document.id, &update).await.unwrap();

    assert_eq!(server.stats().requests(routes::UPDATE_BY_TEXT), 2);
    assert_eq!(server.documents(&dataset.id)[0].text, "v2");
}

#[tokio::test]
async fn delete_answered_404_after_a_lost_reply_is_success() {
    let server = DifyServer::start().await.unwrap();
    let client = common::client(&server);
    let dataset = common::dataset(&client, "delete").await;
    let created = client
        .create_document_by_text(&dataset.id, &common::text_document("doc", "v1"))
        .await
        .unwrap();
    server.complete_all_indexing();
    server.set_faults(plan(vec![FaultRule::once(Some(routes::DELETE_DOCUMENT), Fault::DropAfter)]));

    client.delete_document(&dataset.id, &created.document.id).await.unwrap();

    assert!(server.documents(&dataset.id).is_empty());
    assert_eq!(server.stats().requests(routes::DELETE_DOCUMENT), 2);
    let again = client.delete_document(&dataset.id, &created.document.id).await.unwrap_err();
    assert!(again.is_not_found(), "a first-attempt 404 is still an error");
}

#[tokio::test]
async fn html_404_is_a_not_found_error() {
    let server = DifyServer::start().await.unwrap();
    let client = common::client(&server);

    let error = client.get_dataset("not-a-uuid").await.unwrap_err();

    assert!(error.is_not_found(), "{error}");
    assert!(matches!(error, dify_client::Error::Api { http_status: 404, .. }), "{error:?}");
    assert_eq!(error.endpoint(), Some("GET /datasets/{dataset_id}"));
}

#[tokio::test]
async fn timed_out_reads_are_retried_but_timed_out_unsafe_writes_are_not() {
    let server = DifyServer::start().await.unwrap();
    let client = common::builder(&server).timeout(Duration::from_millis(200)).build().unwrap();
    let dataset = common::dataset(&client, "stall").await;
    let created = client
        .create_document_by_text(&dataset.id, &common::text_document("doc", "v1"))
        .await
        .unwrap();
    server.complete_all_indexing();
    let stall = Fault::Stall(Duration::from_secs(1));
    server.set_faults(plan(vec![
        FaultRule::once(Some(routes::GET_DATASET), stall.clone()),
        FaultRule::once(Some(routes::UPDATE_BY_TEXT), stall),
    ]));

    client.get_dataset(&dataset.id).await.unwrap();
    let update = UpdateDocumentByTextRequest::text("doc", "v2");
    let error = client
        .update_document_by_text(&dataset.id, &created.document.id, &update)
        .await
        .unwrap_err();

    assert!(error.is_timeout(), "{error:?}");
    assert_eq!(server.stats().requests(routes::GET_DATASET), 2);
    assert_eq!(server.stats().requests(routes::UPDATE_BY_TEXT), 1);
}

#[tokio::test]
async fn pacer_spaces_rate_limited_requests() {
    let server = DifyServer::start().await.unwrap();
    let client = common::builder(&server).rate_limit_per_minute(Some(600)).build().unwrap();
    let started = Instant::now();
    // Dataset create is itself a counted request: it takes the first slot.
    let dataset = common::dataset(&client, "paced").await;
    for n in 0..3 {
        let request = common::text_document(&format!("doc-{n}"), "x");
        client.create_document_by_text(&dataset.id, &request).await.unwrap();
    }

    // 600 a minute is one per 100 ms; the fourth slot is 300 ms after the
    // first, which was taken after `started`.
    assert!(started.elapsed() >= Duration::from_millis(300), "{:?}", started.elapsed());
    assert_eq!(server.documents(&dataset.id).len(), 3);
}
