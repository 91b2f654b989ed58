//! Lost state: the store file is deleted between runs; the next run must
//! find the documents again instead of creating or rewriting them.

mod sync_support;

use std::path::Path;

use kb_sync::dify_sink::SyncOutcome;
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
