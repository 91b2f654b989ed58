//! What a whole run reports about the sync: every page not synced at the
//! end is a listed problem (so the binary exits 2), and a dry run's counts
//! are the plan, including after the state was lost and with pruning.

mod sync_support;

use std::path::Path;
use std::time::Duration;

use kb_sync::dify_sink::{DifySink, DifySinkOptions, PruneOptions};
use kb_sync::pipeline::Pipeline;
use kb_sync::report::{RunReport, Stage};
use kb_sync::route::Router;
use kb_sync::state::StateStore;
use page_extract::ExtractOptions;
use site_crawler::CrawlConfig;
use sync_support::builder;
use test_support::dify::{DifyServer, Fault, FaultPlan, FaultRule, routes};
use test_support::site::{RunningSite, TestSite, plain_page_path};
use tokio_util::sync::CancellationToken;

const KB: &str = "Docs";

async fn run(site: &RunningSite, sink: DifySink) -> RunReport {
    let crawl = CrawlConfig {
        start_urls: vec![site.base_url().to_string()],
        delay: Duration::ZERO,
        per_host: 4,
        ..CrawlConfig::default()
    };
    let router = Router::single(KB).unwrap();
    let pipeline = Pipeline::new(crawl, ExtractOptions::default(), router).unwrap();
    pipeline.dify(sink).run(CancellationToken::new()).await.unwrap()
}

async fn connect(server: &DifyServer, state: &Path, options: DifySinkOptions) -> DifySink {
    let client = builder(server).max_attempts(1).breaker_threshold(100).build().unwrap();
    let store = if options.dry_run {
        StateStore::open_read_only(state).unwrap()
    } else {
        StateStore::open(state).unwrap()
    };
    DifySink::connect(client, store, options).await.unwrap()
}

#[tokio::test]
async fn pages_whose_metadata_dify_refused_are_listed_problems() {
    let site = TestSite::plain(3).start().await;
    let server = DifyServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("s.db");
    let refuse = FaultRule::always(Some(routes::ASSIGN_METADATA), Fault::ServerErrorBefore);
    server.set_faults(FaultPlan::new(1, vec![refuse]));

    let report = run(&site, connect(&server, &state, DifySinkOptions::default()).await).await;

    assert_eq!(report.knowledge_bases[KB].new, 4, "{report:#?}");
    assert_eq!(report.failed_pages(), 4, "{:?}", report.problems);
    assert_eq!(report.crawl.failed["metadata"], 4);
    assert!(report.problems.iter().all(|p| p.stage == Stage::Sync));
    assert!(report.problems[0].reason.contains("dify-crawl retry"), "{:?}", report.problems);
    assert_eq!(report.knowledge_bases[KB].failed, 4);
}

#[tokio::test]
async fn pages_still_indexing_after_the_wait_are_listed_problems() {
    let site = TestSite::plain(2).start().await;
    let server =
        DifyServer::builder().indexing_delay(Duration::from_secs(3600)).start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let options = DifySinkOptions {
        wait_for_indexing: true,
        wait_timeout: Duration::ZERO,
        ..DifySinkOptions::default()
    };

    let report = run(&site, connect(&server, &dir.path().join("s.db"), options).await).await;

    assert_eq!(report.failed_pages(), 3, "{:?}", report.problems);
    assert!(report.problems.iter().all(|p| p.stage == Stage::Index), "{:?}", report.problems);
    assert_eq!(report.crawl.failed["indexing_unfinished"], 3);
    assert!(report.problems[0].reason.contains("--wait"), "{:?}", report.problems);
}

#[tokio::test]
async fn a_dry_run_after_lost_state_reports_the_plan_with_its_prune() {
    let site = TestSite::plain(4).start().await;
    let server = DifyServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("s.db");
    let first = run(&site, connect(&server, &state, DifySinkOptions::default()).await).await;
    assert_eq!(first.knowledge_bases[KB].new, 5);

    // The store is gone, and so is a page of the site.
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.path().join(format!("s.db{suffix}")));
    }
    site.remove_page(&plain_page_path(2));
    let prune = PruneOptions { enabled: true, ..PruneOptions::default() };
    let dry = DifySinkOptions { dry_run: true, prune, ..DifySinkOptions::default() };
    let before = server.stats();
    let report = run(&site, connect(&server, &state, dry).await).await;

    let counts = &report.knowledge_bases[KB];
    assert!(report.dry_run);
    assert_eq!((counts.new, counts.changed, counts.unchanged), (0, 0, 4), "{report:#?}");
    assert_eq!(counts.pruned, 1, "the page answering 404 would go");
    assert_eq!(report.failed_pages(), 0, "{:?}", report.problems);
    let after = server.stats();
    assert_eq!(after.requests(routes::CREATE_BY_TEXT), before.requests(routes::CREATE_BY_TEXT));
    assert!(!state.exists(), "a dry run creates no store");
}

#[tokio::test]
async fn a_dry_run_counts_unchanged_pages_and_the_prune_it_would_do() {
    let site = TestSite::plain(4).start().await;
    let server = DifyServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("s.db");
    run(&site, connect(&server, &state, DifySinkOptions::default()).await).await;

    site.remove_page(&plain_page_path(2));
    let prune = PruneOptions { enabled: true, ..PruneOptions::default() };
    let dry = DifySinkOptions { dry_run: true, prune, ..DifySinkOptions::default() };
    let report = run(&site, connect(&server, &state, dry).await).await;

    let counts = &report.knowledge_bases[KB];
    assert_eq!((counts.new, counts.changed, counts.unchanged), (0, 0, 4), "{report:#?}");
    assert_eq!(counts.pruned, 1, "the page answering 404 would go");
    assert_eq!(server.documents(&server.dataset_by_name(KB).unwrap().id).len(), 5);
}
