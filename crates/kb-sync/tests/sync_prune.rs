//! Pruning: crawls of different sites sharing a knowledge base, the safety
//! share, cancellation, pruned pages that come back, and finding a
//! document by name among many similar ones.

mod sync_support;

use kb_sync::dify_sink::{DifySinkOptions, PruneMode, PruneOptions, RunEnd, SyncOutcome};
use kb_sync::naming::document_name;
use kb_sync::page::PageRecord;
use kb_sync::state::RunScope;
use sync_support::*;
use test_support::dify::{DifyServer, routes};
use tokio_util::sync::CancellationToken;

fn pruning(max_share: f64) -> DifySinkOptions {
    let prune =
        PruneOptions { enabled: true, mode: PruneMode::Delete, after_missed_runs: 1, max_share };
    DifySinkOptions { prune, ..options() }
}

fn scope(host: &str) -> RunScope {
    RunScope { hosts: [host.to_string()].into(), subdomains: false }
}

/// One complete crawl of `host` that saw `pages`.
async fn crawl_of(
    server: &DifyServer,
    dir: &std::path::Path,
    host: &str,
    pages: &[PageRecord],
    options: DifySinkOptions,
) -> kb_sync::dify_sink::SyncSummary {
    let sink = sink(server, dir, options).await;
    let outcomes = submit_all(&sink, pages).await;
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    let end = RunEnd { crawl_complete: true, scope: Some(scope(host)), cancel: None };
    sink.finish_with(end).await.unwrap()
}

#[tokio::test]
async fn two_sites_in_one_knowledge_base_do_not_prune_each_other() {
    let server = DifyServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let site_a: Vec<PageRecord> = (0..3).map(|i| page_on("a.example", i, 1)).collect();
    let site_b: Vec<PageRecord> = (0..3).map(|i| page_on("b.example", i, 1)).collect();

    for _ in 0..3 {
        let a = crawl_of(&server, dir.path(), "a.example", &site_a, pruning(1.0)).await;
        let b = crawl_of(&server, dir.path(), "b.example", &site_b, pruning(1.0)).await;
        assert_eq!((a.knowledge_bases[KB].pruned, b.knowledge_bases[KB].pruned), (0, 0));
    }
    let all: Vec<PageRecord> = site_a.iter().chain(&site_b).cloned().collect();
    assert_in_step(&server, &all);

    // A page really gone from site A is still pruned by A's next crawl.
    let summary = crawl_of(&server, dir.path(), "a.example", &site_a[..2], pruning(1.0)).await;
    assert_eq!(summary.knowledge_bases[KB].pruned, 1);
    let left: Vec<PageRecord> = site_a[..2].iter().chain(&site_b).cloned().collect();
    assert_in_step(&server, &left);
}

#[tokio::test]
async fn a_crawl_that_misses_most_pages_prunes_none_of_them_for_absence() {
    let server = DifyServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pages = pages(10, 1);
    sync_all(&sink(&server, dir.path(), pruning(0.5)).await, &pages).await;

    // A crawl that saw only 3 pages and got a 404 for one of the others:
    // 6 of 10 documents would go for not being seen.
    let partial = sink(&server, dir.path(), pruning(0.5)).await;
    submit_all(&partial, &pages[..3]).await;
    partial.page_gone(&pages[9].url).unwrap();
    let summary = partial.finish(true).await.unwrap();
    drop(partial);

    assert_eq!(summary.knowledge_bases[KB].pruned, 1, "only the page answering 404");
    assert_in_step(&server, &pages[..9]);

    // The share can be lifted.
    let sink = sink(&server, dir.path(), pruning(1.0)).await;
    submit_all(&sink, &pages[..3]).await;
    let summary = sink.finish(true).await.unwrap();
    assert_eq!(summary.knowledge_bases[KB].pruned, 6);
    assert_in_step(&server, &pages[..3]);
}

#[tokio::test]
async fn a_cancelled_run_prunes_nothing() {
    let server = DifyServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pages = pages(4, 1);
    sync_all(&sink(&server, dir.path(), pruning(1.0)).await, &pages).await;

    let stopped = sink(&server, dir.path(), pruning(1.0)).await;
    stopped.page_gone(&pages[0].url).unwrap();
    let cancel = CancellationToken::new();
    cancel.cancel();
    let end = RunEnd { crawl_complete: false, scope: None, cancel: Some(cancel) };
    let summary = stopped.finish_with(end).await.unwrap();

    assert_eq!(summary.knowledge_bases.get(KB).map_or(0, |kb| kb.pruned), 0);
    assert_in_step(&server, &pages);
    drop(stopped);

    // The next run prunes it.
    let sink = sink(&server, dir.path(), pruning(1.0)).await;
    let summary = sink.finish(false).await.unwrap();
    assert_eq!(summary.knowledge_bases[KB].pruned, 1);
    assert_in_step(&server, &pages[1..]);
}

#[tokio::test]
async fn a_pruned_page_that_comes_back_after_lost_state_is_created_again() {
    let server = DifyServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pages = pages(3, 1);
    sync_all(&sink(&server, dir.path(), options()).await, &pages).await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.path().join(format!("state.sqlite3{suffix}")));
    }

    // The state is rebuilt from Dify, then the page is pruned for a 404.
    let rebuilt = sink(&server, dir.path(), pruning(1.0)).await;
    let outcomes = submit_all(&rebuilt, &pages).await;
    assert!(outcomes.iter().all(|o| matches!(o, Ok(SyncOutcome::Unchanged))), "{outcomes:?}");
    rebuilt.page_gone(&pages[0].url).unwrap();
    assert_eq!(rebuilt.finish(true).await.unwrap().knowledge_bases[KB].pruned, 1);
    drop(rebuilt);
    assert_in_step(&server, &pages[1..]);

    // It comes back unchanged: it needs a new document, not the deleted one.
    let sink = sink(&server, dir.path(), options()).await;
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
async fn a_document_without_a_recorded_id_is_found_by_exact_name_past_the_first_page() {
    let server = DifyServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // "…/page-1" is a substring of the names of page-10 to page-19 and
    // page-100 to page-199, which are newer and listed first.
    let pages = pages(200, 1);
    let options = DifySinkOptions { metadata_batch_size: 50, ..pruning(1.0) };
    sync_all(&sink(&server, dir.path(), options.clone()).await, &pages).await;
    let target = document_name(&pages[1].url);

    // The create's reply was lost: the store has the page without an id.
    let sink = sink(&server, dir.path(), options).await;
    let url = pages[1].url.as_str();
    sink.store().record_document_lost(url, "write", "reply lost").unwrap();
    sink.page_gone(&pages[1].url).unwrap();
    let before = server.stats();
    let summary = sink.finish(false).await.unwrap();

    assert_eq!(summary.knowledge_bases[KB].pruned, 1);
    let listed = diff(&before.requests_by_route, &server.stats().requests_by_route);
    assert_eq!(listed.get(routes::LIST_DOCUMENTS), Some(&2), "{listed:?}");
    assert!(!ids_by_name(&server).contains_key(&target));
    assert_eq!(documents(&server).len(), 199);
}
