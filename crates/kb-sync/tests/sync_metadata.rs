//! Metadata batches Dify refuses: for one bad document, for a field
//! deleted in Dify, or because Dify is down; and how the pages that are not
//! synced at the end of a run are reported.

mod sync_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use kb_sync::dify_sink::{DifySinkOptions, UnsyncedStage};
use kb_sync::naming::document_name;
use sync_support::proxy::{Proxy, Verdict};
use sync_support::*;
use test_support::dify::{DifyServer, Fault, FaultPlan, FaultRule, routes};

const ASSIGN_PATH_END: &str = "/documents/metadata";

fn refusal(message: &str) -> Verdict {
    let body = serde_json::json!({"code": "invalid_param", "message": message, "status": 400});
    Verdict::Answer { status: 400, body: body.to_string() }
}

#[tokio::test]
async fn a_batch_with_one_refused_document_applies_the_rest_and_fails_that_one() {
    let server = DifyServer::start().await.unwrap();
    let poisoned: Arc<Mutex<Option<String>>> = Arc::default();
    let rule = {
        let poisoned = poisoned.clone();
        Arc::new(move |_: u64, request: &proxy::Request| {
            let bad = poisoned.lock().unwrap().clone();
            match bad {
                Some(id)
                    if request.path.ends_with(ASSIGN_PATH_END) && request.text().contains(&id) =>
                {
                    refusal("Value of field description is too long.")
                }
                _ => Verdict::Forward,
            }
        })
    };
    let proxy = Proxy::start(server.addr(), rule).await;
    let dir = tempfile::tempdir().unwrap();
    let options = DifySinkOptions { metadata_batch_size: 50, ..options() };
    let pages = pages(6, 1);

    let client = proxied(&server, &proxy).build().unwrap();
    let sink = sink_with(client, dir.path(), options.clone()).await;
    submit_all(&sink, &pages).await;
    let bad_id = ids_by_name(&server)[&document_name(&pages[3].url)].clone();
    *poisoned.lock().unwrap() = Some(bad_id);
    let summary = sink.finish(true).await.unwrap();

    let kb = &summary.knowledge_bases[KB];
    assert_eq!(kb.metadata_pending, 0, "nothing stays queued");
    assert_eq!(kb.unsynced.len(), 1, "{:?}", kb.unsynced);
    let unsynced = &kb.unsynced[0];
    assert_eq!(
        (unsynced.url.as_str(), unsynced.stage),
        (pages[3].url.as_str(), UnsyncedStage::Metadata)
    );
    assert!(
        unsynced.reason.contains("too long") && unsynced.reason.contains("retry"),
        "{unsynced:?}"
    );
    assert!(summary.has_failures());
    let failed = sink.store().failed_pages().unwrap();
    assert_eq!((failed.len(), failed[0].stage.as_str()), (1, "metadata"), "{failed:?}");
    let dataset = server.dataset_by_name(KB).unwrap();
    for (index, doc) in server.documents(&dataset.id).iter().enumerate() {
        let applied = doc.doc_metadata.contains_key("source_url");
        let is_bad = doc.name == document_name(&pages[3].url);
        assert_eq!(applied, !is_bad, "document {index}: {doc:?}");
    }
    drop(sink);

    // Once the cause is gone, retry sends the metadata again.
    *poisoned.lock().unwrap() = None;
    let client = proxied(&server, &proxy).build().unwrap();
    let sink = sink_with(client, dir.path(), options).await;
    let retried = sink.retry_pending().await.unwrap();
    let summary = sink.finish(true).await.unwrap();
    assert_eq!(retried.attempted, 1);
    assert!(!summary.has_failures(), "{summary:?}");
    assert_in_step(&server, &pages);
    assert!(sink.store().failed_pages().unwrap().is_empty());
}

#[tokio::test]
async fn a_metadata_field_deleted_in_dify_is_created_again_and_the_batch_resent() {
    let server = DifyServer::start().await.unwrap();
    let refuse_once = Arc::new(AtomicBool::new(false));
    let rule = {
        let refuse_once = refuse_once.clone();
        Arc::new(move |_: u64, request: &proxy::Request| {
            if request.path.ends_with(ASSIGN_PATH_END) && refuse_once.swap(false, Ordering::SeqCst)
            {
                refusal("Metadata not found.")
            } else {
                Verdict::Forward
            }
        })
    };
    let proxy = Proxy::start(server.addr(), rule).await;
    let dir = tempfile::tempdir().unwrap();
    let mut pages = pages(2, 1);
    let client = proxied(&server, &proxy).build().unwrap();
    sync_all(&sink_with(client, dir.path(), options()).await, &pages).await;

    let dataset = server.dataset_by_name(KB).unwrap();
    let title = dataset.metadata_fields.iter().find(|f| f.name == "title").unwrap();
    builder(&server).build().unwrap().delete_metadata_field(&dataset.id, &title.id).await.unwrap();
    pages[0].title = Some("A new title".into());
    refuse_once.store(true, Ordering::SeqCst);
    let before = server.stats();
    let client = proxied(&server, &proxy).build().unwrap();
    let (_, summary) = sync_all(&sink_with(client, dir.path(), options()).await, &pages).await;

    let made = diff(&before.requests_by_route, &server.stats().requests_by_route);
    assert_eq!(made.get(routes::LIST_METADATA), Some(&1), "{made:?}");
    assert_eq!(made.get(routes::CREATE_METADATA), Some(&1), "{made:?}");
    assert!(!summary.has_failures(), "{summary:?}");
    // Deleting the field took its values off every document; the changed
    // page has its title again, under the new field.
    let retitled =
        documents(&server).into_iter().find(|d| d.name == document_name(&pages[0].url)).unwrap();
    assert_eq!(retitled.doc_metadata.get("title"), Some(&"A new title".into()));
    assert_eq!(retitled.text, pages[0].markdown);
    let fields = server.dataset_by_name(KB).unwrap().metadata_fields;
    assert!(fields.iter().any(|f| f.name == "title" && f.id != title.id), "{fields:?}");
}

#[tokio::test]
async fn metadata_still_queued_at_the_end_is_listed_with_what_to_do() {
    let server = DifyServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let refuse = FaultRule::always(Some(routes::ASSIGN_METADATA), Fault::ServerErrorBefore);
    server.set_faults(FaultPlan::new(1, vec![refuse]));
    let client = builder(&server).max_attempts(1).breaker_threshold(100).build().unwrap();
    let pages = pages(3, 1);

    let refused = sink_with(client, dir.path(), options()).await;
    let (outcomes, summary) = sync_all(&refused, &pages).await;
    drop(refused);

    assert!(outcomes.iter().all(Result::is_ok), "the writes themselves succeeded");
    let kb = &summary.knowledge_bases[KB];
    assert_eq!(kb.metadata_pending, 3);
    assert_eq!(kb.unsynced.len(), 3, "{:?}", kb.unsynced);
    assert!(
        kb.unsynced
            .iter()
            .all(|p| p.stage == UnsyncedStage::Metadata && p.reason.contains("retry"))
    );
    assert!(summary.has_failures());

    server.clear_faults();
    let sink = sink(&server, dir.path(), options()).await;
    let summary = sink.finish(false).await.unwrap();
    assert!(!summary.has_failures(), "{summary:?}");
    assert_in_step(&server, &pages);
}
