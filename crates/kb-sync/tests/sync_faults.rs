//! The sink under a misbehaving Dify: random faults before and after
//! writes, Dify Cloud's rate limit, a wrong key, nothing listening.

mod sync_support;

use std::time::Duration;

use dify_client::DifyClient;
use kb_sync::dify_sink::{DifySink, SyncError};
use kb_sync::page::PageRecord;
use kb_sync::state::{Stage, StateStore};
use sync_support::*;
use test_support::dify::{DifyServer, Fault, FaultPlan, FaultRule, routes};

/// About 15% faults of every kind on the routes pages use. The run-wide
/// steps (key check, dataset and field setup) are left alone: their
/// failure stops a run by design, which is not what this test is about.
fn mixed_faults(seed: u64) -> FaultPlan {
    let page_routes = [
        routes::CREATE_BY_TEXT,
        routes::UPDATE_BY_TEXT,
        routes::ASSIGN_METADATA,
        routes::GET_DOCUMENT,
        routes::DOCUMENT_STATUS,
    ];
    let rules = page_routes
        .into_iter()
        .flat_map(|route| {
            [
                (Fault::ServerErrorAfter, 0.05),
                (Fault::DropAfter, 0.04),
                (Fault::ServerErrorBefore, 0.03),
                (Fault::DropBefore, 0.03),
            ]
            .map(|(fault, p)| FaultRule::sometimes(Some(route), fault, p))
        })
        .collect();
    FaultPlan::new(seed, rules)
}

/// Pages of `pages` the store does not hold as synced with their content.
fn not_synced(store: &StateStore, pages: &[PageRecord]) -> Vec<String> {
    pages
        .iter()
        .filter(|page| {
            let row = store.page(page.url.as_str()).unwrap();
            !row.is_some_and(|row| {
                row.stage == Stage::Synced
                    && row.content_hash.as_deref() == Some(page.content_hash.as_str())
            })
        })
        .map(|page| page.url.to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifteen_percent_faults_leave_no_duplicate_and_no_loss() {
    let mut applied_then_failed = 0;
    let mut runs_with_failures = 0;
    for seed in [1, 2, 3] {
        let server = DifyServer::builder().faults(mixed_faults(seed)).start().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let first = pages(60, 1);
        let mut second = first.clone();
        for index in [3, 11, 17, 29, 33, 41, 47, 59] {
            second[index] = page(index, 2);
        }

        for pages in [&first, &second] {
            // Faulty runs end normally, with every page they could not
            // sync reported (exit code 2). No retries, so faults reach the
            // sink; the breaker is kept out of the way.
            for run in 0..4 {
                let store = StateStore::open(dir.path().join("state.sqlite3")).unwrap();
                let client =
                    builder(&server).max_attempts(1).breaker_threshold(10_000).build().unwrap();
                let sink = DifySink::connect(client, store, options()).await.unwrap();
                let outcomes = submit_all(&sink, pages).await;
                let fatal: Vec<_> = outcomes
                    .iter()
                    .filter_map(|o| o.as_ref().err())
                    .filter(|e| e.is_fatal())
                    .collect();
                assert!(fatal.is_empty(), "seed {seed} run {run}: {fatal:?}");
                sink.retry_pending().await.unwrap();
                let summary = sink.finish(true).await.unwrap();

                let missing = not_synced(sink.store(), pages);
                if !missing.is_empty() {
                    assert!(
                        summary.has_failures(),
                        "seed {seed} run {run}: {missing:?} unreported"
                    );
                }
                if summary.has_failures() {
                    runs_with_failures += 1;
                }
                assert_store_consistent(&server, sink.store());
            }
            server.clear_faults();
            let sink = sink(&server, dir.path(), options()).await;
            let (_, summary) = sync_all(&sink, pages).await;
            assert!(!summary.has_failures(), "seed {seed}: {summary:?}");
            assert!(not_synced(sink.store(), pages).is_empty());
            assert_store_consistent(&server, sink.store());
            assert_in_step(&server, pages);
            drop(sink);
            server.set_faults(mixed_faults(seed + 100));
        }

        server.clear_faults();
        let stats = server.stats();
        applied_then_failed += stats.faults("server_error_after") + stats.faults("drop_after");
        assert_in_step(&server, &second);
    }
    assert!(applied_then_failed > 10, "faults injected: {applied_then_failed}");
    assert!(runs_with_failures > 0, "no faulty run reported a failure");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_applied_before_a_lost_reply_are_not_duplicated() {
    let plan = FaultPlan::new(
        7,
        vec![
            FaultRule::sometimes(Some(routes::CREATE_BY_TEXT), Fault::DropAfter, 0.3),
            FaultRule::sometimes(Some(routes::CREATE_BY_TEXT), Fault::ServerErrorAfter, 0.3),
            FaultRule::sometimes(Some(routes::ASSIGN_METADATA), Fault::ServerErrorAfter, 0.3),
        ],
    );
    let server = DifyServer::builder().faults(plan).start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pages = pages(20, 1);

    // Faults this dense would trip the circuit breaker, which is not what
    // this test is about.
    let store = StateStore::open(dir.path().join("state.sqlite3")).unwrap();
    let client = builder(&server).breaker_threshold(1000).build().unwrap();
    let sink = DifySink::connect(client, store, options()).await.unwrap();
    let outcomes = submit_all(&sink, &pages).await;
    let fatal: Vec<_> =
        outcomes.iter().filter_map(|o| o.as_ref().err()).filter(|e| e.is_fatal()).collect();
    assert!(fatal.is_empty(), "{fatal:?}");
    sink.retry_pending().await.unwrap();
    sink.finish(true).await.unwrap();
    server.clear_faults();
    sink.retry_pending().await.unwrap();
    sink.finish(true).await.unwrap();

    assert!(server.stats().faults("drop_after") > 0);
    assert_in_step(&server, &pages);
}

#[tokio::test(start_paused = true)]
async fn cloud_rate_limit_pauses_and_finishes() {
    let server = DifyServer::builder().cloud_rate_limit(Some(10)).start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pages = pages(12, 1);

    let sink = sink(&server, dir.path(), options()).await;
    let (outcomes, summary) = sync_all(&sink, &pages).await;
    let _ = sink.retry_pending().await.unwrap();
    sink.finish(true).await.unwrap();

    assert!(outcomes.iter().all(|o| o.as_ref().map_or_else(|e| !e.is_fatal(), |_| true)));
    assert!(server.stats().responses(403) > 0, "the limit was hit");
    assert!(summary.dify.rate_limit_pauses > 0);
    assert_in_step(&server, &pages);
}

#[tokio::test]
async fn a_wrong_key_is_fatal_at_the_first_request() {
    let server = DifyServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(dir.path().join("state.sqlite3")).unwrap();
    let client = DifyClient::builder(server.base_url(), "dataset-wrong").build().unwrap();

    let error = DifySink::connect(client, store, options()).await.unwrap_err();

    assert!(matches!(error, SyncError::Unauthorized(_)), "{error:?}");
    assert!(error.is_fatal());
    assert_eq!(error.to_string(), "dify rejected the api key");
    assert_eq!(server.stats().requests_total, 1);
    assert!(!format!("{error:?}").contains("dataset-wrong"), "the key never shows");
}

#[tokio::test]
async fn nothing_listening_is_fatal_and_says_so() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(dir.path().join("state.sqlite3")).unwrap();
    let client = DifyClient::builder(format!("http://{addr}/v1"), "dataset-key")
        .max_attempts(2)
        .base_delay(Duration::from_millis(5))
        .build()
        .unwrap();

    let error = DifySink::connect(client, store, options()).await.unwrap_err();

    assert!(matches!(error, SyncError::Unreachable(_)), "{error:?}");
    assert!(error.is_fatal());
    assert_eq!(error.to_string(), "dify is unreachable");
}

#[tokio::test]
async fn a_base_url_without_the_api_is_fatal_and_says_so() {
    let server = DifyServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(dir.path().join("state.sqlite3")).unwrap();
    let wrong = server.base_url().replace("/v1", "/api/v1");
    let client = DifyClient::builder(wrong, server.api_key()).build().unwrap();

    let error = DifySink::connect(client, store, options()).await.unwrap_err();

    assert!(matches!(error, SyncError::NotDify(_)), "{error:?}");
    assert!(error.is_fatal());
}
