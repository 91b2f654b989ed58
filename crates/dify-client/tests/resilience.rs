//! Retries, Retry-After, the cloud rate limit, the circuit breaker and the
//! guarantee that faults never duplicate a document.
//!
//! Anything that waits runs on tokio's paused clock: the clock jumps to the
//! next timer only when every task is idle, so a test can look at the
//! server's counters just before a wait ends and again after, and the
//! answer does not depend on how fast the machine is.

mod common;

use std::time::{Duration, SystemTime};

use dify_client::{DifyClient, DocumentAction, Error, MetadataType, UpdateDocumentByTextRequest};
use test_support::dify::{DifyServer, Fault, FaultRule, routes};
use tokio::time::sleep;

use common::plan;

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

#[tokio::test(start_paused = true)]
async fn retry_after_seconds_is_honoured() {
    let server = DifyServer::start().await.unwrap();
    let client = common::client(&server);
    let dataset = common::dataset(&client, "retry-after").await;
    let fault = Fault::TooManyRequests { retry_after: Some("45".into()) };
    server.set_faults(plan(vec![FaultRule::once(Some(routes::GET_DATASET), fault)]));

    let call = tokio::spawn({
        let client = client.clone();
        async move { client.get_dataset(&dataset.id).await }
    });
    sleep(Duration::from_secs(44)).await;
    assert_eq!(server.stats().requests(routes::GET_DATASET), 1, "still waiting at 44 s");

    call.await.unwrap().unwrap();
    assert_eq!(server.stats().requests(routes::GET_DATASET), 2);
    assert_eq!(client.metrics().retries, 1);
}

#[tokio::test(start_paused = true)]
async fn retry_after_date_is_honoured_and_long_waits_are_capped() {
    let server = DifyServer::start().await.unwrap();
    let client =
        common::builder(&server).max_retry_after(Duration::from_secs(100)).build().unwrap();
    let dataset = common::dataset(&client, "retry-after-date").await;
    // The date has one-second resolution: between 29 and 30 s from now.
    let at = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
    let date = Fault::TooManyRequests { retry_after: Some(at) };
    let hour = Fault::TooManyRequests { retry_after: Some("3600".into()) };
    server.set_faults(plan(vec![
        FaultRule::once(Some(routes::GET_DATASET), date),
        FaultRule::once(Some(routes::LIST_DATASETS), hour),
    ]));

    let call = tokio::spawn({
        let client = client.clone();
        let id = dataset.id.clone();
        async move { client.get_dataset(&id).await }
    });
    sleep(Duration::from_secs(20)).await;
    assert_eq!(server.stats().requests(routes::GET_DATASET), 1, "waiting for the date");
    call.await.unwrap().unwrap();
    assert_eq!(server.stats().requests(routes::GET_DATASET), 2);

    let call = tokio::spawn({
        let client = client.clone();
        async move { client.list_datasets(&Default::default()).await }
    });
    sleep(Duration::from_secs(99)).await;
    assert_eq!(server.stats().requests(routes::LIST_DATASETS), 1);
    sleep(Duration::from_secs(2)).await;
    assert!(call.is_finished(), "an hour's Retry-After is cut to max_retry_after");
    call.await.unwrap().unwrap();
    assert_eq!(server.stats().requests(routes::LIST_DATASETS), 2);
}

#[tokio::test(start_paused = true)]
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

#[tokio::test(start_paused = true)]
async fn cloud_rate_limit_pauses_then_gives_up() {
    let server = DifyServer::builder().cloud_rate_limit(Some(2)).start().await.unwrap();
    // A pause shorter than the server's 60 s window, so the retry after it
    // is refused again.
    let client = common::builder(&server)
        .max_attempts(2)
        .rate_limit_window(Duration::from_secs(30))
        .build()
        .unwrap();
    let dataset = common::dataset(&client, "cloud").await;
    client.create_document_by_text(&dataset.id, &common::text_document("one", "x")).await.unwrap();

    let call = tokio::spawn({
        let client = client.clone();
        let id = dataset.id.clone();
        async move { client.create_document_by_text(&id, &common::text_document("two", "x")).await }
    });
    sleep(Duration::from_secs(29)).await;
    assert_eq!(server.stats().requests(routes::CREATE_BY_TEXT), 2, "paused, not retrying");
    assert_eq!(client.metrics().rate_limit_pauses, 1);
    // Reads are not counted by Dify Cloud and are not paused.
    let read = tokio::time::timeout(Duration::from_secs(1), client.get_dataset(&dataset.id));
    read.await.expect("a read does not wait for the pause").unwrap();

    let error = call.await.unwrap().unwrap_err();
    assert!(error.is_rate_limited(), "{error}");
    assert_eq!(client.metrics().rate_limit_pauses, 2);
    assert_eq!(server.stats().requests(routes::CREATE_BY_TEXT), 3);
}

/// Callers that reserved a pacer slot before another caller's request met
/// the limit must wait for the pause, not fire into it.
#[tokio::test(start_paused = true)]
async fn paced_requests_do_not_fire_during_a_cloud_pause() {
    let server = DifyServer::builder().cloud_rate_limit(Some(2)).start().await.unwrap();
    // A slot every 100 ms; the pause matches Dify Cloud's 60 s window.
    let client = common::builder(&server).rate_limit_per_minute(Some(600)).build().unwrap();
    // The first counted request of the window.
    let dataset = common::dataset(&client, "paced").await;

    let calls: Vec<_> = (0..5)
        .map(|n| {
            let client = client.clone();
            let id = dataset.id.clone();
            tokio::spawn(async move {
                client
                    .create_document_by_text(&id, &common::text_document(&format!("d{n}"), "x"))
                    .await
            })
        })
        .collect();

    // Every slot (100..500 ms) has passed; the second create met the limit.
    sleep(Duration::from_secs(1)).await;
    assert_eq!(server.stats().requests(routes::CREATE_BY_TEXT), 2);
    assert_eq!(server.stats().responses(403), 1);
    sleep(Duration::from_secs(58)).await;
    assert_eq!(server.stats().requests(routes::CREATE_BY_TEXT), 2, "nothing fired into the pause");

    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(server.documents(&dataset.id).len(), 5);
    let refused = server.stats().responses(403);
    assert_eq!(client.metrics().rate_limit_pauses, refused);
    assert_eq!(server.stats().requests(routes::CREATE_BY_TEXT), 5 + refused);
}

/// A retry after a rate-limit answer waits for the pause even on a route
/// the pacer does not count.
#[tokio::test(start_paused = true)]
async fn rate_limited_retry_of_an_uncounted_route_waits_for_the_pause() {
    let server = DifyServer::start().await.unwrap();
    let client = common::client(&server);
    let dataset = common::dataset(&client, "uncounted").await;
    server
        .set_faults(plan(vec![FaultRule::once(Some(routes::GET_DATASET), Fault::CloudRateLimit)]));

    let call = tokio::spawn({
        let client = client.clone();
        let id = dataset.id.clone();
        async move { client.get_dataset(&id).await }
    });
    sleep(Duration::from_secs(59)).await;
    assert_eq!(server.stats().requests(routes::GET_DATASET), 1, "waiting for the pause");
    assert_eq!(client.metrics().rate_limit_pauses, 1);

    call.await.unwrap().unwrap();
    assert_eq!(server.stats().requests(routes::GET_DATASET), 2);
}

/// A counted call waiting out a pause must not hold the half-open probe
/// permit, or every other call would be refused until the pause ends.
#[tokio::test(start_paused = true)]
async fn half_open_probe_is_not_held_by_a_caller_waiting_for_the_pause() {
    let server = DifyServer::start().await.unwrap();
    let client = common::builder(&server)
        .max_attempts(1)
        .breaker_threshold(1)
        .breaker_cool_down(Duration::from_secs(10))
        .build()
        .unwrap();
    let dataset = common::dataset(&client, "probe").await;
    server.set_faults(plan(vec![
        FaultRule::once(Some(routes::CREATE_BY_TEXT), Fault::CloudRateLimit),
        FaultRule::once(Some(routes::GET_DATASET), Fault::ServerErrorBefore),
    ]));
    let document = common::text_document("a", "x");
    let refused = client.create_document_by_text(&dataset.id, &document).await.unwrap_err();
    assert!(refused.is_rate_limited(), "a 60 s pause starts: {refused}");
    assert_eq!(client.get_dataset(&dataset.id).await.unwrap_err().status(), Some(500));
    assert_eq!(client.metrics().breaker_trips, 1);
    sleep(Duration::from_secs(10)).await;

    let waiting = tokio::spawn({
        let client = client.clone();
        let id = dataset.id.clone();
        async move { client.create_document_by_text(&id, &common::text_document("a", "x")).await }
    });
    sleep(Duration::from_millis(1)).await;
    let probe = client.get_dataset(&dataset.id).await;

    assert!(probe.is_ok(), "the read became the probe: {probe:?}");
    assert!(!waiting.is_finished(), "the write still waits for the pause");
    waiting.await.unwrap().unwrap();
    assert_eq!(client.metrics().breaker_trips, 1);
}

#[tokio::test(start_paused = true)]
async fn breaker_opens_fails_fast_and_recovers_through_a_probe() {
    let server = DifyServer::start().await.unwrap();
    let client = common::builder(&server)
        .max_attempts(1)
        .breaker_threshold(3)
        .breaker_cool_down(Duration::from_secs(30))
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
    sleep(Duration::from_secs(29)).await;
    assert!(client.get_dataset(&dataset.id).await.unwrap_err().is_circuit_open());
    sleep(Duration::from_secs(1)).await;
    client.get_dataset(&dataset.id).await.unwrap();
    client.get_dataset(&dataset.id).await.unwrap();
    assert_eq!(client.metrics().breaker_trips, 1);
}

/// The breaker counts calls, not attempts: four calls of four attempts
/// each (sixteen 500s) stay under a threshold of five, the fifth call
/// opens it.
#[tokio::test(start_paused = true)]
async fn breaker_counts_each_call_once() {
    let server = DifyServer::start().await.unwrap();
    let client = common::builder(&server)
        .max_attempts(4)
        .breaker_threshold(5)
        .retry_budget(0.2, 1000)
        .build()
        .unwrap();
    let dataset = common::dataset(&client, "per-call").await;
    server.set_faults(plan(vec![FaultRule::always(
        Some(routes::GET_DATASET),
        Fault::ServerErrorBefore,
    )]));

    for call in 1..=4 {
        let error = client.get_dataset(&dataset.id).await.unwrap_err();
        assert_eq!(error.status(), Some(500), "call {call}: {error}");
    }
    assert_eq!(server.stats().requests(routes::GET_DATASET), 16, "every attempt was sent");
    assert_eq!(client.metrics().breaker_trips, 0);

    assert_eq!(client.get_dataset(&dataset.id).await.unwrap_err().status(), Some(500));
    assert_eq!(client.metrics().breaker_trips, 1);
    assert!(client.get_dataset(&dataset.id).await.unwrap_err().is_circuit_open());
    assert_eq!(server.stats().requests(routes::GET_DATASET), 20);
}

/// A request Dify answers with 500 every time (the first document of a
/// dataset without a process rule) fails alone; other calls go on.
#[tokio::test(start_paused = true)]
async fn a_deterministic_500_does_not_open_the_breaker_for_everyone() {
    let server = DifyServer::start().await.unwrap();
    let client = common::client(&server);
    let dataset = common::dataset(&client, "bad").await;
    let mut bad = common::text_document("x", "text");
    bad.process_rule = None;

    for _ in 0..2 {
        let error = client.create_document_by_text(&dataset.id, &bad).await.unwrap_err();
        assert_eq!(error.status(), Some(500), "{error}");
    }

    assert!(server.stats().requests(routes::CREATE_BY_TEXT) > 4, "retried as a 5xx");
    client.get_dataset(&dataset.id).await.unwrap();
    assert_eq!(client.metrics().breaker_trips, 0);
}

/// Running out of attempts against 429s shows the server is up: the
/// breaker does not count it.
#[tokio::test(start_paused = true)]
async fn exhausted_429s_are_not_breaker_failures() {
    let server = DifyServer::start().await.unwrap();
    let client = common::builder(&server).max_attempts(2).breaker_threshold(1).build().unwrap();
    let dataset = common::dataset(&client, "busy").await;
    let busy = Fault::TooManyRequests { retry_after: Some("1".into()) };
    server.set_faults(plan(vec![FaultRule::always(Some(routes::GET_DATASET), busy)]));

    assert_eq!(client.get_dataset(&dataset.id).await.unwrap_err().status(), Some(429));

    assert_eq!(client.metrics().breaker_trips, 0);
    server.clear_faults();
    client.get_dataset(&dataset.id).await.unwrap();
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

#[tokio::test(start_paused = true)]
async fn server_error_after_write_never_duplicates_a_document() {
    create_with_fault_once(Fault::ServerErrorAfter).await;
}

#[tokio::test(start_paused = true)]
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

    assert!(matches!(error, Error::Transport { maybe_sent: true, .. }), "{error:?}");
    assert!(error.to_string().contains("connection closed before a response"), "{error}");
    assert_eq!(server.stats().requests(routes::UPDATE_BY_TEXT), 1);
}

#[tokio::test(start_paused = true)]
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

/// A status change starts a background task during which a second copy
/// answers 400 "is being indexed", so a lost reply is reported, not
/// retried into that error.
#[tokio::test]
async fn status_changes_are_not_repeated_after_a_lost_reply() {
    let server =
        DifyServer::builder().indexing_delay(Duration::from_secs(30)).start().await.unwrap();
    let client = common::client(&server);
    let dataset = common::dataset(&client, "status").await;
    let created = client
        .create_document_by_text(&dataset.id, &common::text_document("a", "text"))
        .await
        .unwrap();
    server.complete_all_indexing();
    server.set_faults(plan(vec![FaultRule::once(Some(routes::DOCUMENT_STATUS), Fault::DropAfter)]));

    let ids = [created.document.id.clone()];
    let error =
        client.set_documents_status(&dataset.id, DocumentAction::Disable, &ids).await.unwrap_err();

    assert!(matches!(error, Error::Transport { maybe_sent: true, .. }), "{error:?}");
    assert!(!server.documents(&dataset.id)[0].enabled, "the lost attempt applied");
    assert_eq!(server.stats().requests(routes::DOCUMENT_STATUS), 1);
}

#[tokio::test(start_paused = true)]
async fn status_changes_are_repeated_after_a_refusal() {
    let server = DifyServer::start().await.unwrap();
    let client = common::client(&server);
    let dataset = common::dataset(&client, "status-429").await;
    let created = client
        .create_document_by_text(&dataset.id, &common::text_document("a", "text"))
        .await
        .unwrap();
    server.complete_all_indexing();
    let fault = Fault::TooManyRequests { retry_after: None };
    server.set_faults(plan(vec![FaultRule::once(Some(routes::DOCUMENT_STATUS), fault)]));

    let ids = [created.document.id.clone()];
    client.set_documents_status(&dataset.id, DocumentAction::Disable, &ids).await.unwrap();

    assert!(!server.documents(&dataset.id)[0].enabled);
    assert_eq!(server.stats().requests(routes::DOCUMENT_STATUS), 2);
}

#[tokio::test(start_paused = true)]
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

/// A 404 after an attempt that certainly did nothing (a 429) means the
/// document never existed.
#[tokio::test(start_paused = true)]
async fn delete_of_a_missing_document_after_a_429_is_not_found() {
    let server = DifyServer::start().await.unwrap();
    let client = common::client(&server);
    let dataset = common::dataset(&client, "delete-429").await;
    let fault = Fault::TooManyRequests { retry_after: None };
    server.set_faults(plan(vec![FaultRule::once(Some(routes::DELETE_DOCUMENT), fault)]));

    let result = client.delete_document(&dataset.id, "5ef92201-5e4a-4aa5-86e9-9467f120b5a1").await;

    assert!(result.as_ref().is_err_and(Error::is_not_found), "{result:?}");
    assert_eq!(server.stats().requests(routes::DELETE_DOCUMENT), 2);
}

/// Dify 1.13 answers a repeated metadata-field delete with 400 "Metadata
/// not found." rather than 404; after a lost reply that is success too.
#[tokio::test(start_paused = true)]
async fn metadata_delete_after_a_lost_reply_is_success() {
    let server = DifyServer::start().await.unwrap();
    let client = common::client(&server);
    let dataset = common::dataset(&client, "delete-field").await;
    let field =
        client.create_metadata_field(&dataset.id, "lang", MetadataType::String).await.unwrap();
    server.set_faults(plan(vec![FaultRule::once(Some(routes::DELETE_METADATA), Fault::DropAfter)]));

    client.delete_metadata_field(&dataset.id, &field.id).await.unwrap();

    assert!(server.datasets()[0].metadata_fields.is_empty());
    assert_eq!(server.stats().requests(routes::DELETE_METADATA), 2);
    assert_eq!(server.stats().responses(400), 1, "the repeat met 'Metadata not found.'");
}

#[tokio::test]
async fn html_404_is_a_missing_route_not_a_missing_object() {
    let server = DifyServer::start().await.unwrap();
    let client = common::client(&server);

    let error = client.get_dataset("not-a-uuid").await.unwrap_err();

    assert!(error.is_route_missing(), "{error}");
    assert!(!error.is_not_found(), "only Dify's JSON 404 says the object is missing");
    assert!(matches!(error, Error::Api { http_status: 404, .. }), "{error:?}");
    assert_eq!(error.endpoint(), Some("GET /datasets/{dataset_id}"));
    assert!(error.to_string().contains("no such route"), "{error}");

    let missing = client.get_dataset("5ef92201-5e4a-4aa5-86e9-9467f120b5a1").await.unwrap_err();
    assert!(missing.is_not_found() && !missing.is_route_missing(), "{missing}");
}

#[tokio::test(start_paused = true)]
async fn timed_out_reads_are_retried_but_timed_out_unsafe_writes_are_not() {
    let server = DifyServer::start().await.unwrap();
    let client = common::builder(&server).timeout(Duration::from_secs(10)).build().unwrap();
    let dataset = common::dataset(&client, "stall").await;
    let created = client
        .create_document_by_text(&dataset.id, &common::text_document("doc", "v1"))
        .await
        .unwrap();
    server.complete_all_indexing();
    let stall = Fault::Stall(Duration::from_secs(30));
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
    assert!(error.to_string().contains(": timed out"), "{error}");
    assert_eq!(server.stats().requests(routes::GET_DATASET), 2);
    assert_eq!(server.stats().requests(routes::UPDATE_BY_TEXT), 1);
}

#[tokio::test(start_paused = true)]
async fn pacer_spaces_rate_limited_requests() {
    let server = DifyServer::start().await.unwrap();
    // 600 a minute is one slot every 100 ms.
    let client = common::builder(&server).rate_limit_per_minute(Some(600)).build().unwrap();
    // Dataset create is itself a counted request: it takes the slot at 0.
    let dataset = common::dataset(&client, "paced").await;
    let writer = tokio::spawn({
        let client = client.clone();
        let id = dataset.id.clone();
        async move {
            for n in 0..3 {
                let request = common::text_document(&format!("doc-{n}"), "x");
                client.create_document_by_text(&id, &request).await.unwrap();
            }
        }
    });

    let mut seen = Vec::new();
    for _ in 0..4 {
        sleep(Duration::from_millis(50)).await;
        seen.push(server.stats().requests(routes::CREATE_BY_TEXT));
        sleep(Duration::from_millis(50)).await;
    }
    writer.await.unwrap();

    // Slots at 100, 200 and 300 ms; looked at 50 ms after each slot.
    assert_eq!(seen, [0, 1, 2, 3]);
    // Reads are not paced.
    let read = tokio::time::timeout(Duration::from_millis(1), client.get_dataset(&dataset.id));
    read.await.expect("not paced").unwrap();
}

#[tokio::test]
async fn transport_errors_say_what_went_wrong() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = listener.local_addr().unwrap().port();
    drop(listener);
    let client = DifyClient::builder(format!("http://127.0.0.1:{closed_port}"), "dataset-KEY123")
        .max_attempts(1)
        .build()
        .unwrap();

    let error = client.list_datasets(&Default::default()).await.unwrap_err();

    assert!(matches!(error, Error::Transport { maybe_sent: false, .. }), "{error:?}");
    assert_eq!(error.to_string(), "listing datasets: connection refused");
    assert!(std::error::Error::source(&error).is_some(), "the cause chain is kept");
    assert!(!format!("{error} {error:?}").contains("KEY123"));
}
