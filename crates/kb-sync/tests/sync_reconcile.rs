//! Lost state: the store file is deleted between runs; the next run must
//! find the documents again instead of creating or rewriting them.

mod sync_support;

use std::path::Path;

use kb_sync::dify_sink::{DifySinkOptions, PlannedAction, SyncOutcome};
use kb_sync::naming::document_name;
use sync_support::*;
use test_support::dify::{DifyServer, routes};

fn delete_store(dir: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let path = dir.join(format!("state.sqlite3{suffix}"));
        if path.exists() {
            std::fs::remove_file(path).unwrap();
        }
    }
}

#[tokio::test]
async fn a_lost_store_is_rebuilt_from_dify_and_unchanged_pages_stay_free() {
    let server = DifyServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut pages = pages(130, 1);
    sync_all(&sink(&server, dir.path(), options()).await, &pages).await;
    let ids = ids_by_name(&server);
    delete_store(dir.path());

    pages[7] = page(7, 2);
    let sink = sink(&server, dir.path(), options()).await;
    assert!(sink.store().was_created());
    let before = server.stats();
    let (outcomes, _) = sync_all(&sink, &pages).await;

    let made = diff(&before.requests_by_route, &server.stats().requests_by_route);
    assert_eq!(made.get(routes::CREATE_BY_TEXT), None, "{made:?}");
    assert_eq!(made.get(routes::UPDATE_BY_TEXT), Some(&1), "{made:?}");
    assert_eq!(made.get(routes::ASSIGN_METADATA), Some(&1), "{made:?}");
    assert_eq!(made.get(routes::LIST_DOCUMENTS), Some(&2), "130 documents, 100 per call");
    assert_eq!(made.get(routes::CREATE_METADATA), None, "fields are reused");
    let unchanged = outcomes.iter().filter(|o| matches!(o, Ok(SyncOutcome::Unchanged))).count();
    assert_eq!(unchanged, 129);
    assert_in_step(&server, &pages);
    assert_eq!(ids_by_name(&server), ids);
}

#[tokio::test]
async fn explicit_reconcile_seeds_rows_so_vanished_pages_can_be_pruned() {
    let server = DifyServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pages = pages(5, 1);
    sync_all(&sink(&server, dir.path(), options()).await, &pages).await;
    delete_store(dir.path());

    let sink = sink(&server, dir.path(), options()).await;
    let summary = sink.reconcile(&[KB.to_string(), "nowhere".to_string()]).await.unwrap();

    let counts = &summary.knowledge_bases[KB];
    assert_eq!((counts.documents, counts.matched, counts.duplicate_names), (5, 5, 0));
    assert!(summary.knowledge_bases["nowhere"].missing);
    assert!(server.dataset_by_name("nowhere").is_none(), "reconcile creates nothing");
    for page in &pages {
        let row = sink.store().page(page.url.as_str()).unwrap().unwrap();
        assert_eq!(row.content_hash.as_deref(), Some(page.content_hash.as_str()));
    }
}

#[tokio::test]
async fn a_disabled_document_found_by_reconcile_blocks_its_page() {
    let server = DifyServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut pages = pages(2, 1);
    sync_all(&sink(&server, dir.path(), options()).await, &pages).await;
    server.complete_all_indexing();
    let dataset = server.dataset_by_name(KB).unwrap();
    for doc in documents(&server) {
        server.set_document_enabled(&dataset.id, &doc.id, false);
    }
    delete_store(dir.path());

    pages[0] = page(0, 2);
    pages[1] = page(1, 2);
    let sink = sink(&server, dir.path(), options()).await;
    let (outcomes, _) = sync_all(&sink, &pages).await;

    assert!(outcomes.iter().all(|o| matches!(o, Ok(SyncOutcome::Blocked { .. }))), "{outcomes:?}");
    assert_eq!(documents(&server).len(), 2, "no same-name duplicates of disabled documents");
}

#[tokio::test]
async fn a_knowledge_base_deleted_in_dify_is_created_again() {
    let server = DifyServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut pages = pages(3, 1);
    sync_all(&sink(&server, dir.path(), options()).await, &pages).await;
    let client = builder(&server).build().unwrap();
    client.delete_dataset(&server.dataset_by_name(KB).unwrap().id).await.unwrap();

    pages[0] = page(0, 2);
    let stale = sink(&server, dir.path(), options()).await;
    let error = submit_all(&stale, &pages).await.into_iter().find_map(Result::err).unwrap();
    assert!(error.is_fatal());
    assert!(error.to_string().contains("no longer exists"), "{error}");
    drop(stale);

    sync_all(&sink(&server, dir.path(), options()).await, &pages).await;
    assert_in_step(&server, &pages);
}

#[tokio::test]
async fn reconcile_notices_a_deleted_knowledge_base() {
    let server = DifyServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pages = pages(2, 1);
    sync_all(&sink(&server, dir.path(), options()).await, &pages).await;
    let client = builder(&server).build().unwrap();
    client.delete_dataset(&server.dataset_by_name(KB).unwrap().id).await.unwrap();

    let sink = sink(&server, dir.path(), options()).await;
    let summary = sink.reconcile(&[KB.to_string()]).await.unwrap();
    assert!(summary.knowledge_bases[KB].missing);
    sync_all(&sink, &pages).await;

    assert_in_step(&server, &pages);
}

#[tokio::test]
async fn a_first_run_that_failed_while_listing_leaves_the_next_run_to_reconcile() {
    use test_support::dify::{Fault, FaultPlan, FaultRule};
    let server = DifyServer::start().await.unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let pages = pages(4, 1);
    sync_all(&sink(&server, elsewhere.path(), options()).await, &pages).await;
    let ids = ids_by_name(&server);

    // A new machine: the first run dies while listing the documents.
    let dir = tempfile::tempdir().unwrap();
    let refuse = FaultRule::always(Some(routes::LIST_DOCUMENTS), Fault::ServerErrorBefore);
    server.set_faults(FaultPlan::new(1, vec![refuse]));
    let client = builder(&server).max_attempts(1).breaker_threshold(100).build().unwrap();
    let failing = sink_with(client, dir.path(), options()).await;
    let error = failing.submit(&pages[0]).await.unwrap_err();
    assert!(error.is_fatal(), "{error:?}");
    drop(failing);
    assert!(dir.path().join("state.sqlite3").exists(), "the store file was created");

    // A dry run in between changes nothing either.
    server.clear_faults();
    let dry = DifySinkOptions { dry_run: true, ..options() };
    let (outcomes, _) = sync_all(&sink(&server, dir.path(), dry).await, &pages).await;
    assert!(
        outcomes.iter().all(|o| matches!(o, Ok(SyncOutcome::DryRun(PlannedAction::Unchanged)))),
        "{outcomes:?}"
    );

    let before = server.stats();
    let (outcomes, _) = sync_all(&sink(&server, dir.path(), options()).await, &pages).await;
    let made = diff(&before.requests_by_route, &server.stats().requests_by_route);
    assert_eq!(made.get(routes::LIST_DOCUMENTS), Some(&1), "{made:?}");
    assert_eq!(made.get(routes::CREATE_BY_TEXT), None, "{made:?}");
    assert!(outcomes.iter().all(|o| matches!(o, Ok(SyncOutcome::Unchanged))), "{outcomes:?}");
    assert_eq!(ids_by_name(&server), ids);

    // Reconciled once: the next run lists nothing.
    let before = server.stats();
    sync_all(&sink(&server, dir.path(), options()).await, &pages).await;
    let made = diff(&before.requests_by_route, &server.stats().requests_by_route);
    assert_eq!(made, [(routes::LIST_DATASETS.to_string(), 1)].into());
}

#[tokio::test]
async fn a_document_listed_by_an_earlier_run_is_read_before_a_page_is_adopted_onto_it() {
    use kb_sync::state::{RemoteDocument, RunId};
    let server = DifyServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pages = pages(2, 1);
    sync_all(&sink(&server, dir.path(), options()).await, &pages).await;
    delete_store(dir.path());
    let dataset = server.dataset_by_name(KB).unwrap();
    let name = document_name(&pages[1].url);

    // The store holds page 1's document only as found by an earlier
    // listing, and the document was deleted in Dify since.
    let sink = sink(&server, dir.path(), options()).await;
    sink.reconcile(&[KB.to_string()]).await.unwrap();
    let listed = sink.store().remote_document(&dataset.id, &name).unwrap().unwrap();
    sink.store().forget(pages[1].url.as_str()).unwrap();
    let earlier = RemoteDocument { listed_run: Some(RunId(sink.run().0 - 1)), ..listed.clone() };
    sink.store().save_remote_document(&dataset.id, &name, &earlier).unwrap();
    let client = builder(&server).build().unwrap();
    client.delete_document(&dataset.id, &listed.document_id).await.unwrap();

    let before = server.stats();
    let (outcomes, _) = sync_all(&sink, &pages).await;

    let made = diff(&before.requests_by_route, &server.stats().requests_by_route);
    assert_eq!(made.get(routes::GET_DOCUMENT), Some(&1), "{made:?}");
    assert!(outcomes.iter().any(|o| matches!(o, Ok(SyncOutcome::Created))), "{outcomes:?}");
    assert_in_step(&server, &pages);
    assert!(sink.store().remote_document(&dataset.id, &name).unwrap().is_none());
    assert_store_consistent(&server, sink.store());
}

#[tokio::test]
async fn explicit_reconcile_repairs_a_store_that_diverged_from_dify() {
    let server = DifyServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pages = pages(3, 1);
    sync_all(&sink(&server, dir.path(), options()).await, &pages).await;
    let dataset = server.dataset_by_name(KB).unwrap();
    let client = builder(&server).build().unwrap();
    let victim = ids_by_name(&server)[&document_name(&pages[0].url)].clone();
    client.delete_document(&dataset.id, &victim).await.unwrap();

    // Unchanged pages cost nothing, so the store alone never notices.
    let (outcomes, _) = sync_all(&sink(&server, dir.path(), options()).await, &pages).await;
    assert!(outcomes.iter().all(|o| matches!(o, Ok(SyncOutcome::Unchanged))));
    assert_eq!(documents(&server).len(), 2);

    let sink = sink(&server, dir.path(), options()).await;
    let summary = sink.reconcile(&[KB.to_string()]).await.unwrap();
    assert_eq!(summary.knowledge_bases[KB].cleared, 1);
    let (outcomes, _) = sync_all(&sink, &pages).await;

    assert_eq!(
        outcomes.iter().filter(|o| matches!(o, Ok(SyncOutcome::Created))).count(),
        1,
        "{outcomes:?}"
    );
    assert_in_step(&server, &pages);
    assert_store_consistent(&server, sink.store());
}

#[tokio::test]
async fn a_dry_run_after_lost_state_plans_from_the_listing() {
    let server = DifyServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut pages = pages(5, 1);
    sync_all(&sink(&server, dir.path(), options()).await, &pages).await;
    delete_store(dir.path());

    pages[2] = page(2, 2);
    let dry = DifySinkOptions { dry_run: true, ..options() };
    let (_, summary) = sync_all(&sink(&server, dir.path(), dry).await, &pages).await;

    let planned = &summary.knowledge_bases[KB].planned;
    assert_eq!((planned.get("unchanged"), planned.get("update")), (Some(&4), Some(&1)));
    assert_eq!(planned.get("create"), None, "{planned:?}");
    assert!(!dir.path().join("state.sqlite3").exists(), "a dry run creates no store");
}
