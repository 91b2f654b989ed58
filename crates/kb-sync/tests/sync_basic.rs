//! The sink's everyday paths against the Dify test server: first sync,
//! unchanged and changed pages, pruning, documents changed behind the
//! tool's back, dry runs.

mod sync_support;

use kb_sync::dify_sink::{DifySinkOptions, PlannedAction, PruneMode, PruneOptions, SyncOutcome};
use kb_sync::naming::document_name;
use kb_sync::state::Stage;
use sync_support::*;
use test_support::dify::{DifyServer, routes};

#[tokio::test]
async fn first_sync_creates_each_page_once_with_batched_metadata() {
    let server = DifyServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sink = sink(&server, dir.path(), options()).await;
    let pages = pages(12, 1);

    let (outcomes, summary) = sync_all(&sink, &pages).await;

    assert!(outcomes.iter().all(|o| matches!(o, Ok(SyncOutcome::Created))), "{outcomes:?}");
    assert_in_step(&server, &pages);
    let stats = server.stats();
    assert_eq!(stats.requests(routes::LIST_DATASETS), 2, "the key check and the name lookup");
    assert_eq!(stats.requests(routes::CREATE_DATASET), 1);
    assert_eq!(stats.requests(routes::CREATE_METADATA), 9);
    assert_eq!(stats.requests(routes::LIST_METADATA), 0, "a new dataset has no fields to list");
    assert_eq!(stats.requests(routes::CREATE_BY_TEXT), 12);
    assert_eq!(stats.requests(routes::ASSIGN_METADATA), 3, "12 documents in batches of 5");
    assert_eq!(stats.requests_total, 2 + 1 + 9 + 12 + 3, "{:?}", stats.requests_by_route);

    let kb = &summary.knowledge_bases[KB];
    assert_eq!((kb.created, kb.failed, kb.metadata_pending), (12, 0, 0));
    let counts = &sink.store().status_counts().unwrap()[KB];
    assert_eq!(counts[&Stage::Synced], 12);
}

#[tokio::test]
async fn economy_datasets_get_flat_custom_chunks() {
    let server = DifyServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sink = sink(&server, dir.path(), options()).await;

    sync_all(&sink, &pages(1, 1)).await;

    let doc = &documents(&server)[0];
    assert_eq!(doc.doc_form, "text_model");
    assert_eq!(doc.process_rule["mode"], "custom");
    assert_eq!(server.dataset_by_name(KB).unwrap().indexing_technique.as_deref(), Some("economy"));
}

#[tokio::test]
async fn unchanged_pages_cost_only_the_key_check() {
    let server = DifyServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pages = pages(8, 1);
    sync_all(&sink(&server, dir.path(), options()).await, &pages).await;

    let mut pages = pages;
    pages[0].links = vec![page(1, 1).url.to_string()];
    let before_connect = server.stats();
    let sink = sink(&server, dir.path(), options()).await;
    let before = server.stats();
    let outcomes = submit_all(&sink, &pages).await;
    sink.not_modified(&page(99, 1).url, KB).unwrap();
    let summary = sink.finish(true).await.unwrap();

    assert_eq!(server.stats().requests_total, before.requests_total, "no request after connect");
    let made = diff(&before_connect.requests_by_route, &server.stats().requests_by_route);
    assert_eq!(made, [(routes::LIST_DATASETS.to_string(), 1)].into(), "only the key check");
    assert!(outcomes.iter().all(|o| matches!(o, Ok(SyncOutcome::Unchanged))));
    assert_eq!(summary.knowledge_bases[KB].unchanged, 9);
    assert_in_step(&server, &pages);
    let validators = sink.store().validators_for_synced().unwrap();
    assert_eq!(validators[pages[0].url.as_str()].links, pages[0].links, "new links stored");
}

#[tokio::test]
async fn one_changed_page_costs_one_update_and_one_metadata_call() {
    let server = DifyServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut pages = pages(8, 1);
    sync_all(&sink(&server, dir.path(), options()).await, &pages).await;
    let ids = ids_by_name(&server);

    pages[3] = page(3, 2);
    let sink = sink(&server, dir.path(), options()).await;
    let before = server.stats();
    let (outcomes, _) = sync_all(&sink, &pages).await;

    let made = diff(&before.requests_by_route, &server.stats().requests_by_route);
    assert_eq!(
        made,
        [(routes::UPDATE_BY_TEXT.to_string(), 1), (routes::ASSIGN_METADATA.to_string(), 1)].into()
    );
    assert_eq!(outcomes.iter().filter(|o| matches!(o, Ok(SyncOutcome::Updated))).count(), 1);
    assert_in_step(&server, &pages);
    assert_eq!(ids_by_name(&server), ids, "the document keeps its id");
}

#[tokio::test]
async fn a_title_change_alone_updates_metadata_only() {
    let server = DifyServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut pages = pages(3, 1);
    sync_all(&sink(&server, dir.path(), options()).await, &pages).await;

    pages[1].title = Some("A better title".into());
    pages[1].etag = Some("\"retitled\"".into());
    pages[1].links = vec![page(2, 1).url.to_string()];
    let sink = sink(&server, dir.path(), options()).await;
    let before = server.stats();
    let (outcomes, _) = sync_all(&sink, &pages).await;

    let made = diff(&before.requests_by_route, &server.stats().requests_by_route);
    assert_eq!(made, [(routes::ASSIGN_METADATA.to_string(), 1)].into());
    assert!(outcomes.iter().any(|o| matches!(o, Ok(SyncOutcome::MetadataUpdated))));
    assert_in_step(&server, &pages);
    let validators = sink.store().validators_for_synced().unwrap();
    let stored = &validators[pages[1].url.as_str()];
    assert_eq!((&stored.etag, &stored.links), (&pages[1].etag, &pages[1].links));
}

fn pruning(mode: PruneMode) -> DifySinkOptions {
    let prune =
        PruneOptions { enabled: true, mode, after_missed_runs: 1, ..PruneOptions::default() };
    DifySinkOptions { prune, ..options() }
}

#[tokio::test]
async fn pages_missing_from_a_complete_crawl_are_pruned() {
    let server = DifyServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pages = pages(6, 1);
    sync_all(&sink(&server, dir.path(), pruning(PruneMode::Delete)).await, &pages).await;

    let cut_short = sink(&server, dir.path(), pruning(PruneMode::Delete)).await;
    submit_all(&cut_short, &pages[..5]).await;
    let incomplete = cut_short.finish(false).await.unwrap();
    assert_eq!(incomplete.knowledge_bases[KB].pruned, 0, "an incomplete crawl prunes nothing");
    assert_eq!(documents(&server).len(), 6);
    drop(cut_short);

    let sink = sink(&server, dir.path(), pruning(PruneMode::Delete)).await;
    let (_, complete) = sync_all(&sink, &pages[..5]).await;
    assert_eq!(complete.knowledge_bases[KB].pruned, 1);
    assert_in_step(&server, &pages[..5]);
}

#[tokio::test]
async fn gone_pages_are_pruned_even_when_the_crawl_was_cut_short() {
    let server = DifyServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pages = pages(4, 1);
    sync_all(&sink(&server, dir.path(), pruning(PruneMode::Delete)).await, &pages).await;

    let sink = sink(&server, dir.path(), pruning(PruneMode::Delete)).await;
    sink.page_gone(&pages[0].url).unwrap();
    let summary = sink.finish(false).await.unwrap();

    assert_eq!(summary.knowledge_bases[KB].pruned, 1);
    assert_in_step(&server, &pages[1..]);
    assert!(sink.store().page(pages[0].url.as_str()).unwrap().is_none());
}

#[tokio::test]
async fn disabled_by_pruning_then_back_is_enabled_not_duplicated() {
    let server = DifyServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pages = pages(3, 1);
    sync_all(&sink(&server, dir.path(), pruning(PruneMode::Disable)).await, &pages).await;

    let gone = sink(&server, dir.path(), pruning(PruneMode::Disable)).await;
    submit_all(&gone, &pages[..2]).await;
    gone.page_gone(&pages[2].url).unwrap();
    gone.finish(true).await.unwrap();
    drop(gone);
    let disabled = documents(&server).into_iter().filter(|d| !d.enabled).count();
    assert_eq!(disabled, 1);

    server.complete_all_indexing();
    let sink = sink(&server, dir.path(), pruning(PruneMode::Disable)).await;
    let (outcomes, _) = sync_all(&sink, &pages).await;
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    assert_in_step(&server, &pages);
    assert!(documents(&server).iter().all(|d| d.enabled));
}

#[tokio::test]
async fn a_document_disabled_by_a_user_is_left_alone() {
    let server = DifyServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut pages = pages(2, 1);
    sync_all(&sink(&server, dir.path(), options()).await, &pages).await;
    server.complete_all_indexing();
    let dataset = server.dataset_by_name(KB).unwrap();
    let target = &documents(&server)[0];
    server.set_document_enabled(&dataset.id, &target.id, false);
    let index = pages.iter().position(|p| document_name(&p.url) == target.name).unwrap();

    pages[index] = page(index, 2);
    let sink = sink(&server, dir.path(), options()).await;
    let (outcomes, summary) = sync_all(&sink, &pages).await;

    assert!(outcomes.iter().any(|o| matches!(o, Ok(SyncOutcome::Blocked { .. }))), "{outcomes:?}");
    assert_eq!(documents(&server).len(), 2, "no second document");
    assert_eq!(summary.knowledge_bases[KB].blocked, 1);
    assert!(summary.has_failures());
    let failed = sink.store().failed_pages().unwrap();
    assert!(failed[0].error.contains("disabled"), "{failed:?}");
}

#[tokio::test]
async fn a_document_deleted_in_dify_is_created_again_when_its_page_changes() {
    let server = DifyServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut pages = pages(2, 1);
    sync_all(&sink(&server, dir.path(), options()).await, &pages).await;
    let dataset = server.dataset_by_name(KB).unwrap();
    let client = builder(&server).build().unwrap();
    let victim = document_name(&pages[0].url);
    let old_id = ids_by_name(&server)[&victim].clone();
    client.delete_document(&dataset.id, &old_id).await.unwrap();

    pages[0] = page(0, 2);
    let sink = sink(&server, dir.path(), options()).await;
    let (outcomes, _) = sync_all(&sink, &pages).await;

    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    assert_in_step(&server, &pages);
    let new_id = ids_by_name(&server)[&victim].clone();
    assert_ne!(new_id, old_id);
    let row = sink.store().page(pages[0].url.as_str()).unwrap().unwrap();
    assert_eq!(row.document_id.as_deref(), Some(new_id.as_str()));
}

#[tokio::test]
async fn a_page_changed_while_indexing_is_replaced_in_place() {
    let server = DifyServer::builder()
        .indexing_delay(std::time::Duration::from_secs(3600))
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut pages = pages(2, 1);
    sync_all(&sink(&server, dir.path(), options()).await, &pages).await;
    let ids = ids_by_name(&server);

    pages[1] = page(1, 2);
    let sink = sink(&server, dir.path(), options()).await;
    let (outcomes, _) = sync_all(&sink, &pages).await;

    assert!(outcomes.iter().any(|o| matches!(o, Ok(SyncOutcome::Updated))), "{outcomes:?}");
    assert_in_step(&server, &pages);
    assert_eq!(ids_by_name(&server), ids);
}

#[tokio::test]
async fn dry_runs_plan_without_writing() {
    let server = DifyServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut pages = pages(3, 1);
    let dry = || DifySinkOptions { dry_run: true, ..options() };

    let (outcomes, _) = sync_all(&sink(&server, dir.path(), dry()).await, &pages).await;
    assert!(outcomes.iter().all(|o| matches!(o, Ok(SyncOutcome::DryRun(PlannedAction::Create)))));
    assert!(server.datasets().is_empty());

    sync_all(&sink(&server, dir.path(), options()).await, &pages).await;
    pages[0] = page(0, 2);
    let before = server.stats();
    let (outcomes, summary) = sync_all(&sink(&server, dir.path(), dry()).await, &pages).await;
    let writes = diff(&before.requests_by_route, &server.stats().requests_by_route);
    assert!(writes.keys().all(|route| route.starts_with("GET")), "{writes:?}");
    assert!(outcomes.iter().any(|o| matches!(o, Ok(SyncOutcome::DryRun(PlannedAction::Update)))));
    assert_eq!(summary.knowledge_bases[KB].planned["unchanged"], 2);
}

#[tokio::test]
async fn waiting_for_indexing_marks_pages_synced_once_indexed() {
    let server = DifyServer::builder()
        .indexing_delay(std::time::Duration::from_millis(300))
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let options = DifySinkOptions {
        wait_for_indexing: true,
        poll_interval: std::time::Duration::from_millis(50),
        ..options()
    };
    let pages = pages(4, 1);

    let (_, summary) = sync_all(&sink(&server, dir.path(), options).await, &pages).await;

    let kb = &summary.knowledge_bases[KB];
    assert_eq!((kb.indexing_unfinished, kb.indexing_failed.len()), (0, 0));
    assert!(server.stats().requests(routes::INDEXING_STATUS) >= 4, "one poll per batch at least");
    let store = kb_sync::state::StateStore::open(dir.path().join("state.sqlite3")).unwrap();
    assert_eq!(store.status_counts().unwrap()[KB][&Stage::Synced], 4);
    let row = store.page(pages[0].url.as_str()).unwrap().unwrap();
    assert_eq!(row.indexing_status.as_deref(), Some("completed"));
}

#[tokio::test]
async fn retry_resends_stored_pages_without_crawling() {
    use test_support::dify::{Fault, FaultPlan, FaultRule};
    let refuse = FaultRule::always(Some(routes::CREATE_BY_TEXT), Fault::ServerErrorBefore);
    let server =
        DifyServer::builder().faults(FaultPlan::new(1, vec![refuse])).start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pages = pages(3, 1);
    let store = kb_sync::state::StateStore::open(dir.path().join("state.sqlite3")).unwrap();
    let client = builder(&server).max_attempts(1).breaker_threshold(100).build().unwrap();
    let failing = kb_sync::dify_sink::DifySink::connect(client, store, options()).await.unwrap();

    let (outcomes, summary) = sync_all(&failing, &pages).await;
    assert!(outcomes.iter().all(|o| o.as_ref().is_err_and(|e| !e.is_fatal())), "{outcomes:?}");
    assert_eq!(summary.knowledge_bases[KB].failed, 3);
    assert_eq!(failing.store().failed_pages().unwrap().len(), 3);
    drop(failing);

    server.clear_faults();
    let sink = sink(&server, dir.path(), options()).await;
    let retried = sink.retry_pending().await.unwrap();
    sink.finish(true).await.unwrap();

    assert_eq!((retried.attempted, retried.created, retried.failed), (3, 3, 0));
    assert_in_step(&server, &pages);
    assert!(sink.store().failed_pages().unwrap().is_empty());
}

#[tokio::test]
async fn a_knowledge_base_dify_cannot_create_stops_the_run_with_its_reason() {
    // The test server, like Dify, has no embedding model configured, so a
    // high-quality knowledge base cannot be created.
    let server = DifyServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let options = DifySinkOptions {
        indexing_technique: dify_client::IndexingTechnique::HighQuality,
        ..options()
    };
    let sink = sink(&server, dir.path(), options).await;

    let error = sink.submit(&page(0, 1)).await.unwrap_err();

    assert!(error.is_fatal());
    assert_eq!(error.to_string(), "cannot prepare knowledge base \"docs\"");
    let source = std::error::Error::source(&error).unwrap().to_string();
    assert!(source.contains("Default model not found"), "{source}");
    assert_eq!(server.stats().requests(routes::CREATE_BY_TEXT), 0);
}

#[tokio::test]
async fn a_page_routed_to_another_knowledge_base_moves_there() {
    let server = DifyServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut pages = pages(2, 1);
    sync_all(&sink(&server, dir.path(), options()).await, &pages).await;

    pages[1].knowledge_base = "archive".into();
    let sink = sink(&server, dir.path(), options()).await;
    let (outcomes, _) = sync_all(&sink, &pages).await;

    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    assert_in_step(&server, &pages[..1]);
    let archive = server.dataset_by_name("archive").unwrap();
    let moved = server.documents(&archive.id);
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0].text, pages[1].markdown);
}

#[tokio::test]
async fn a_metadata_batch_resumes_past_a_document_deleted_meanwhile() {
    let server = DifyServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let options = DifySinkOptions { metadata_batch_size: 50, ..options() };
    let pages = pages(6, 1);
    let sink = sink(&server, dir.path(), options).await;
    submit_all(&sink, &pages).await;
    assert_eq!(server.stats().requests(routes::ASSIGN_METADATA), 0, "all six still queued");

    let dataset = server.dataset_by_name(KB).unwrap();
    let victim = ids_by_name(&server)[&document_name(&pages[3].url)].clone();
    builder(&server).build().unwrap().delete_document(&dataset.id, &victim).await.unwrap();
    let summary = sink.finish(true).await.unwrap();

    assert_eq!(summary.knowledge_bases[KB].lost, 1);
    assert_eq!(summary.knowledge_bases[KB].metadata_pending, 0);
    let unsynced = &summary.knowledge_bases[KB].unsynced;
    assert_eq!(unsynced.len(), 1, "the lost page is listed: {unsynced:?}");
    assert_eq!(unsynced[0].url, pages[3].url.as_str());
    assert!(unsynced[0].reason.contains("dify-crawl retry"), "{unsynced:?}");
    assert!(summary.has_failures());
    assert_eq!(server.stats().requests(routes::ASSIGN_METADATA), 2, "one refused, one resumed");
    let retried = sink.retry_pending().await.unwrap();
    sink.finish(true).await.unwrap();
    assert_eq!((retried.attempted, retried.created), (1, 1));
    assert_in_step(&server, &pages);
}

#[tokio::test]
async fn a_page_disabled_by_pruning_that_returns_unchanged_is_only_enabled() {
    let server = DifyServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pages = pages(3, 1);
    sync_all(&sink(&server, dir.path(), pruning(PruneMode::Disable)).await, &pages).await;
    let gone = sink(&server, dir.path(), pruning(PruneMode::Disable)).await;
    gone.page_gone(&pages[2].url).unwrap();
    gone.finish(false).await.unwrap();
    drop(gone);
    server.complete_all_indexing();
    let ids = ids_by_name(&server);

    let sink = sink(&server, dir.path(), pruning(PruneMode::Disable)).await;
    let before = server.stats();
    let (outcomes, _) = sync_all(&sink, &pages).await;

    let made = diff(&before.requests_by_route, &server.stats().requests_by_route);
    let expected =
        [(routes::GET_DOCUMENT.to_string(), 1), (routes::DOCUMENT_STATUS.to_string(), 1)];
    assert_eq!(made, expected.into(), "one free read and the enable, no rewrite");
    assert_eq!(outcomes.iter().filter(|o| matches!(o, Ok(SyncOutcome::Updated))).count(), 1);
    assert_in_step(&server, &pages);
    assert!(documents(&server).iter().all(|d| d.enabled));
    assert_eq!(ids_by_name(&server), ids);
    let row = sink.store().page(pages[2].url.as_str()).unwrap().unwrap();
    assert!(!row.disabled_by_sync);
    assert_store_consistent(&server, sink.store());
}

#[tokio::test]
async fn a_page_rewritten_while_its_last_write_indexes_is_replaced_by_name_at_once() {
    let server = DifyServer::builder()
        .indexing_delay(std::time::Duration::from_secs(3600))
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sink = sink(&server, dir.path(), options()).await;
    submit_all(&sink, &[page(0, 1)]).await;
    let before = server.stats();

    let outcome = sink.submit(&page(0, 2)).await.unwrap();
    sink.finish(true).await.unwrap();

    assert_eq!(outcome, SyncOutcome::Updated);
    let made = diff(&before.requests_by_route, &server.stats().requests_by_route);
    assert_eq!(made.get(routes::UPDATE_BY_TEXT), None, "no update Dify would refuse: {made:?}");
    assert_eq!(made.get(routes::GET_DOCUMENT), None, "{made:?}");
    assert_eq!(made.get(routes::CREATE_BY_TEXT), Some(&1), "{made:?}");
    assert_in_step(&server, &[page(0, 2)]);
}

#[tokio::test]
async fn a_moved_page_whose_create_fails_stays_in_its_old_knowledge_base() {
    use test_support::dify::{Fault, FaultPlan, FaultRule};
    let server = DifyServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut pages = pages(2, 1);
    sync_all(&sink(&server, dir.path(), options()).await, &pages).await;
    let old_id = ids_by_name(&server)[&document_name(&pages[1].url)].clone();

    pages[1].knowledge_base = "archive".into();
    let refuse = FaultRule::always(Some(routes::CREATE_BY_TEXT), Fault::ServerErrorBefore);
    server.set_faults(FaultPlan::new(1, vec![refuse]));
    let client = builder(&server).max_attempts(1).breaker_threshold(100).build().unwrap();
    let failing = sink_with(client, dir.path(), options()).await;
    let (outcomes, summary) = sync_all(&failing, &pages).await;
    drop(failing);

    assert!(outcomes.iter().any(|o| o.as_ref().is_err_and(|e| !e.is_fatal())), "{outcomes:?}");
    assert!(summary.has_failures());
    assert!(
        ids_by_name(&server).values().any(|id| id == &old_id),
        "the old document stays until the new one exists"
    );

    server.clear_faults();
    let (outcomes, _) = sync_all(&sink(&server, dir.path(), options()).await, &pages).await;
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    assert_in_step(&server, &pages[..1]);
    let archive = server.dataset_by_name("archive").unwrap();
    assert_eq!(server.documents(&archive.id).len(), 1);
}

#[tokio::test]
async fn waiting_for_indexing_ends_when_the_run_is_cancelled() {
    use kb_sync::dify_sink::{RunEnd, UnsyncedStage};
    use tokio_util::sync::CancellationToken;
    let server = std::sync::Arc::new(
        DifyServer::builder()
            .indexing_delay(std::time::Duration::from_secs(3600))
            .start()
            .await
            .unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let options = DifySinkOptions { wait_for_indexing: true, ..options() };
    let pages = pages(3, 1);
    let sink = sink(&server, dir.path(), options).await;
    submit_all(&sink, &pages).await;

    // Ctrl-C once the first indexing poll is seen; without it the wait
    // would last the default 30 minutes.
    let cancel = CancellationToken::new();
    let watcher = {
        let (server, cancel) = (server.clone(), cancel.clone());
        tokio::spawn(async move {
            while server.stats().requests(routes::INDEXING_STATUS) == 0 {
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
            cancel.cancel();
        })
    };
    let end = RunEnd { crawl_complete: true, cancel: Some(cancel), ..RunEnd::default() };
    let summary = sink.finish_with(end).await.unwrap();
    watcher.await.unwrap();

    let kb = &summary.knowledge_bases[KB];
    assert_eq!(kb.indexing_unfinished, 3);
    let unconfirmed: Vec<_> =
        kb.unsynced.iter().filter(|p| p.stage == UnsyncedStage::Index).collect();
    assert_eq!(unconfirmed.len(), 3, "{:?}", kb.unsynced);
    assert!(unconfirmed[0].reason.contains("retry --wait"), "{}", unconfirmed[0].reason);
    assert!(summary.has_failures());
    assert!(server.stats().requests(routes::INDEXING_STATUS) <= 3, "one poll round at most");
}

#[tokio::test]
async fn pages_left_awaiting_indexing_are_confirmed_or_promoted_by_later_runs() {
    let server = DifyServer::builder()
        .indexing_delay(std::time::Duration::from_secs(3600))
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let waiting = DifySinkOptions {
        wait_for_indexing: true,
        wait_timeout: std::time::Duration::ZERO,
        ..options()
    };
    let pages = pages(2, 1);
    let (_, summary) = sync_all(&sink(&server, dir.path(), waiting.clone()).await, &pages).await;
    assert_eq!(summary.knowledge_bases[KB].indexing_unfinished, 2);
    let store = kb_sync::state::StateStore::open(dir.path().join("state.sqlite3")).unwrap();
    assert_eq!(store.status_counts().unwrap()[KB][&Stage::MetadataApplied], 2);
    drop(store);

    // A later --wait run polls them although it wrote nothing.
    server.complete_all_indexing();
    let sink_waiting = sink(&server, dir.path(), waiting).await;
    let summary = sink_waiting.finish(true).await.unwrap();
    assert_eq!(summary.knowledge_bases.get(KB).map_or(0, |kb| kb.indexing_unfinished), 0);
    assert_eq!(sink_waiting.store().status_counts().unwrap()[KB][&Stage::Synced], 2);
    let validators = sink_waiting.store().validators_for_synced().unwrap();
    assert_eq!(validators.len(), 2, "synced pages get conditional requests again");
    drop(sink_waiting);

    // Without --wait, unconfirmed pages count as synced.
    let dir = tempfile::tempdir().unwrap();
    let never = DifySinkOptions {
        wait_for_indexing: true,
        wait_timeout: std::time::Duration::ZERO,
        ..options()
    };
    let other = DifyServer::builder()
        .indexing_delay(std::time::Duration::from_secs(3600))
        .start()
        .await
        .unwrap();
    sync_all(&sink(&other, dir.path(), never).await, &pages).await;
    let plain = sink(&other, dir.path(), options()).await;
    let summary = plain.finish(true).await.unwrap();
    assert!(!summary.has_failures(), "{summary:?}");
    let counts = plain.store().status_counts().unwrap();
    assert_eq!(counts[KB][&Stage::Synced], 2, "{counts:?}");
    assert!(plain.store().pending_pages().unwrap().is_empty());
}

#[tokio::test]
async fn a_dry_run_plans_the_prune_and_leaves_no_trace() {
    let server = DifyServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pages = pages(6, 1);
    sync_all(&sink(&server, dir.path(), pruning(PruneMode::Delete)).await, &pages).await;
    let store_file = dir.path().join("state.sqlite3");
    let runs_before = kb_sync::state::StateStore::open(&store_file).unwrap().next_run_id().unwrap();

    let dry = DifySinkOptions { dry_run: true, ..pruning(PruneMode::Delete) };
    let sink = sink(&server, dir.path(), dry).await;
    let before = server.stats();
    let outcomes = submit_all(&sink, &pages[..4]).await;
    sink.page_gone(&pages[4].url).unwrap();
    let summary = sink.finish(true).await.unwrap();
    drop(sink);

    let kb = &summary.knowledge_bases[KB];
    assert_eq!(kb.planned["unchanged"], 4);
    assert_eq!(kb.pruned, 2, "one gone, one not seen");
    assert!(
        outcomes.iter().all(|o| matches!(o, Ok(SyncOutcome::DryRun(PlannedAction::Unchanged))))
    );
    let made = diff(&before.requests_by_route, &server.stats().requests_by_route);
    assert!(made.is_empty(), "{made:?}");
    assert_eq!(documents(&server).len(), 6, "nothing deleted");
    let store = kb_sync::state::StateStore::open(&store_file).unwrap();
    assert_eq!(store.next_run_id().unwrap(), runs_before, "no run recorded");
    assert!(store.all_pages().unwrap().iter().all(|p| !p.gone), "nothing marked gone");
}

#[tokio::test]
async fn a_dry_run_creates_no_state_file() {
    let server = DifyServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dry = DifySinkOptions { dry_run: true, ..options() };

    let (_, summary) = sync_all(&sink(&server, dir.path(), dry).await, &pages(3, 1)).await;

    assert_eq!(summary.knowledge_bases[KB].planned["create"], 3);
    let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(files.is_empty(), "{files:?}");
}

#[tokio::test]
async fn a_store_opened_for_a_dry_run_cannot_back_a_real_run() {
    let server = DifyServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = kb_sync::state::StateStore::open_read_only(dir.path().join("s.db")).unwrap();
    let client = builder(&server).build().unwrap();

    let error = kb_sync::dify_sink::DifySink::connect(client, store, options()).await.unwrap_err();

    assert!(error.to_string().contains("dry run"), "{error}");
    assert_eq!(server.stats().requests_total, 0, "refused before any request");
}
