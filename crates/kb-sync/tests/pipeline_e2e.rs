//! The whole run against a generated site and the Dify test server:
//! first sync, a re-sync that costs only the key check, one change,
//! pruning, a routing change, bounded queues under a slow Dify,
//! cancellation, and folder export with conditional requests, including
//! re-runs where every page answers 304 and the crawl goes on through the
//! links stored for them.
//!
//! Server counters are reset before the sink connects, so every figure
//! includes the one request a run always makes: the key check
//! (`GET /datasets`).

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dify_client::DifyClient;
use kb_sync::dify_sink::{DEFAULT_WRITE_CONCURRENCY, DifySink, DifySinkOptions, PruneOptions};
use kb_sync::export::{EntryStatus, FolderSink, MANIFEST_FILE, ManifestEntry};
use kb_sync::naming::document_name;
use kb_sync::pipeline::{Pipeline, PipelineOptions, Progress, ProgressCounters};
use kb_sync::report::{RunOutcome, RunReport};
use kb_sync::route::Router;
use kb_sync::state::StateStore;
use page_extract::ExtractOptions;
use site_crawler::CrawlConfig;
use test_support::dify::{DifyServer, routes};
use test_support::site::{Route, RunningSite, TestSite, article_page, plain_page_path};
use tokio_util::sync::CancellationToken;

const KB: &str = "Docs";

fn crawl_config(site: &RunningSite) -> CrawlConfig {
    CrawlConfig {
        start_urls: vec![site.base_url().to_string()],
        delay: Duration::ZERO,
        per_host: 4,
        ..CrawlConfig::default()
    }
}

async fn sink(server: &DifyServer, state: &Path, options: DifySinkOptions) -> DifySink {
    let client = DifyClient::builder(server.base_url(), server.api_key()).build().unwrap();
    let store = StateStore::open(state).unwrap();
    DifySink::connect(client, store, options).await.unwrap()
}

fn pipeline(site: &RunningSite) -> Pipeline {
    Pipeline::new(crawl_config(site), ExtractOptions::default(), Router::single(KB).unwrap())
        .unwrap()
}

async fn sync(site: &RunningSite, server: &DifyServer, state: &Path) -> RunReport {
    sync_to(site, server, state, KB).await
}

/// A run sending every page to `knowledge_base`, counters reset first.
async fn sync_to(
    site: &RunningSite,
    server: &DifyServer,
    state: &Path,
    knowledge_base: &str,
) -> RunReport {
    server.reset_stats();
    let sink = sink(server, state, DifySinkOptions::default()).await;
    let router = Router::single(knowledge_base).unwrap();
    let pipeline = Pipeline::new(crawl_config(site), ExtractOptions::default(), router).unwrap();
    pipeline.dify(sink).run(CancellationToken::new()).await.unwrap()
}

fn documents(server: &DifyServer) -> Vec<test_support::dify::DocumentView> {
    documents_in(server, KB)
}

fn documents_in(
    server: &DifyServer,
    knowledge_base: &str,
) -> Vec<test_support::dify::DocumentView> {
    let dataset = server.dataset_by_name(knowledge_base).expect("knowledge base created");
    server.documents(&dataset.id)
}

/// The run sent one request, the key check every run makes, and nothing
/// else.
fn assert_only_the_key_check(server: &DifyServer) {
    let stats = server.stats();
    assert_eq!(stats.requests(routes::LIST_DATASETS), 1, "{:?}", stats.requests_by_route);
    assert_eq!(stats.requests_total, 1, "{:?}", stats.requests_by_route);
}

fn assert_no_duplicates(server: &DifyServer) {
    let docs = documents(server);
    let names: HashSet<&str> = docs.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names.len(), docs.len(), "duplicate document names");
}

#[tokio::test]
async fn first_sync_creates_one_document_per_page() {
    let site = TestSite::plain(5).start().await;
    let server = DifyServer::start().await.unwrap();
    let state = tempfile::tempdir().unwrap();

    let report = sync(&site, &server, &state.path().join("s.db")).await;

    assert_eq!(report.outcome, RunOutcome::Completed);
    assert_eq!(report.crawl.fetched, 6, "{report:#?}");
    assert_eq!(report.failed_pages(), 0, "{:?}", report.problems);
    let docs = documents(&server);
    assert_eq!(docs.len() as u64, report.crawl.synced);
    assert_eq!(report.knowledge_bases[KB].new, report.crawl.synced);
    let expected = document_name(&site.url(&plain_page_path(3)));
    assert!(docs.iter().any(|d| d.name == expected), "{expected} missing");
    assert!(report.crawl.complete);
    assert!(report.pipeline.max_in_flight <= report.pipeline.in_flight_bound);
}

#[tokio::test]
async fn resync_of_an_unchanged_site_sends_nothing_and_one_change_one_update() {
    let site = TestSite::plain(4).start().await;
    let server = DifyServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("s.db");
    let first = sync(&site, &server, &state).await;

    let second = sync(&site, &server, &state).await;
    assert_only_the_key_check(&server);
    assert_eq!(second.knowledge_bases[KB].unchanged, first.crawl.synced);
    assert_eq!(second.crawl.fetched + second.crawl.not_modified, first.crawl.fetched);
    assert!(second.crawl.complete);

    let changed = article_page("Page 2, revised", 99, 6, &[("/".into(), "Home".into())]);
    site.set_page(&plain_page_path(2), changed);
    let third = sync(&site, &server, &state).await;
    let stats = server.stats();
    assert_eq!(stats.requests(routes::UPDATE_BY_TEXT), 1, "{:?}", stats.requests_by_route);
    assert_eq!(stats.requests(routes::LIST_DATASETS), 1, "{:?}", stats.requests_by_route);
    assert_eq!(stats.requests(routes::CREATE_BY_TEXT), 0);
    assert!(stats.requests(routes::ASSIGN_METADATA) <= 1);
    assert_eq!(third.knowledge_bases[KB].changed, 1);
    assert_no_duplicates(&server);
}

#[tokio::test]
async fn a_removed_page_is_pruned_from_dify() {
    let site = TestSite::plain(4).start().await;
    let server = DifyServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("s.db");
    sync(&site, &server, &state).await;
    let before = documents(&server).len();

    site.remove_page(&plain_page_path(3));
    let prune = PruneOptions { enabled: true, ..PruneOptions::default() };
    let options = DifySinkOptions { prune, ..DifySinkOptions::default() };
    let sink = sink(&server, &state, options).await;
    let report = pipeline(&site).dify(sink).run(CancellationToken::new()).await.unwrap();

    let gone = document_name(&site.url(&plain_page_path(3)));
    let docs = documents(&server);
    assert_eq!(docs.len(), before - 1);
    assert!(docs.iter().all(|d| d.name != gone));
    assert_eq!(report.knowledge_bases[KB].pruned, 1);
    assert_eq!(report.crawl.gone, 1, "{:?}", report.crawl);
    assert_eq!(report.gone[0].url, site.url(&plain_page_path(3)).as_str());
    assert_eq!(report.gone[0].status, 404);
    assert_eq!(report.failed_pages(), 0, "a gone page is not a failure: {:?}", report.problems);
}

/// Records how far the crawler got ahead of the sinks, in pages: requests
/// for robots.txt and sitemaps are not pages and do not count.
struct Backlog {
    site: Arc<RunningSite>,
    pages: Vec<String>,
    max_ahead: AtomicU64,
}

impl Backlog {
    fn page_fetches(&self) -> u64 {
        self.pages.iter().map(|path| self.site.hits(path) as u64).sum()
    }
}

impl Progress for Backlog {
    fn update(&self, c: ProgressCounters) {
        let ahead = self.page_fetches().saturating_sub(c.done);
        self.max_ahead.fetch_max(ahead, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_slow_dify_slows_the_crawl_instead_of_filling_memory() {
    let site = Arc::new(TestSite::plain(40).start().await);
    let server = DifyServer::builder().latency(Duration::from_millis(15)).start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let options = DifySinkOptions { write_concurrency: 1, ..DifySinkOptions::default() };
    let sink = sink(&server, &dir.path().join("s.db"), options).await;

    let pages = std::iter::once("/".to_owned()).chain((1..=40).map(plain_page_path)).collect();
    let backlog = Arc::new(Backlog { site: site.clone(), pages, max_ahead: AtomicU64::new(0) });
    let sizes = PipelineOptions {
        queue_capacity: 2,
        extract_workers: 1,
        write_concurrency: 1,
        ..PipelineOptions::default()
    };
    let mut crawl = crawl_config(&site);
    crawl.concurrency = 2;
    let report = Pipeline::new(crawl, ExtractOptions::default(), Router::single(KB).unwrap())
        .unwrap()
        .options(sizes)
        .dify(sink)
        .progress(backlog.clone())
        .run(CancellationToken::new())
        .await
        .unwrap();

    assert_eq!(report.crawl.synced, 41, "{:?}", report.problems);
    assert_eq!(backlog.page_fetches(), 41, "every page fetched once");
    assert_eq!(report.pipeline.in_flight_bound, 1 + 2 + 1 + 2);
    assert!(report.pipeline.max_in_flight <= report.pipeline.in_flight_bound, "{report:#?}");
    // Pages fetched but not yet through the sinks: the pipeline's bound
    // plus what the crawler itself holds (its channel and its fetches).
    let crawler_slack = 2 + 2;
    let max_ahead = backlog.max_ahead.load(Ordering::SeqCst);
    assert!(max_ahead <= report.pipeline.in_flight_bound + crawler_slack, "ahead {max_ahead}");
}

/// Cancels the run once `after` pages are done.
struct CancelAfter {
    after: u64,
    token: CancellationToken,
}

impl Progress for CancelAfter {
    fn update(&self, c: ProgressCounters) {
        if c.done >= self.after {
            self.token.cancel();
        }
    }
}

#[tokio::test]
async fn cancellation_saves_state_and_the_next_run_finishes_without_duplicates() {
    let site = TestSite::plain(30).start().await;
    let server = DifyServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("s.db");

    // The token fires inside the sink loop, as the fifth page is done; the
    // loop then starts no write, so at most the writes already running
    // (fewer than the write concurrency) finish after it, however the
    // tasks are scheduled.
    let after = 5;
    let token = CancellationToken::new();
    let stopper = Arc::new(CancelAfter { after, token: token.clone() });
    let sink = sink(&server, &state, DifySinkOptions::default()).await;
    let report = pipeline(&site).dify(sink).progress(stopper).run(token).await.unwrap();
    assert_eq!(report.outcome, RunOutcome::Cancelled);
    assert!(!report.crawl.complete);
    let written_first = documents(&server).len();
    let bound = after as usize + DEFAULT_WRITE_CONCURRENCY;
    assert!((after as usize..bound).contains(&written_first), "{written_first} written");
    assert_eq!(report.crawl.synced as usize, written_first, "every write sent was recorded");

    // Every document Dify holds is known to the store: the next run writes
    // only the rest and rewrites none.
    let second = sync(&site, &server, &state).await;
    assert_eq!(second.outcome, RunOutcome::Completed);
    let docs = documents(&server);
    assert_eq!(docs.len(), 31);
    assert_no_duplicates(&server);
    assert!(docs.iter().all(|d| d.write_count == 1), "a document was written twice");
    assert_eq!(server.stats().requests(routes::CREATE_BY_TEXT) as usize, 31 - written_first);
}

fn manifest(dir: &Path) -> Vec<ManifestEntry> {
    std::fs::read_to_string(dir.join(MANIFEST_FILE))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn folder_export_reruns_with_conditional_requests() {
    let mut site = TestSite::plain(3);
    let tagged = Route::html(article_page("Tagged", 7, 6, &[("/".into(), "Home".into())]))
        .with_header("ETag", "\"v1\"");
    site = site.route("/tagged", tagged);
    site = site.page("/", article_page("Home", 0, 3, &[("/tagged".into(), "Tagged".into())]));
    let site = site.start().await;
    let out = tempfile::tempdir().unwrap();

    let run = || async {
        let folder = FolderSink::open(out.path()).unwrap();
        pipeline(&site).folder(folder).run(CancellationToken::new()).await.unwrap()
    };
    let first = run().await;
    assert_eq!(first.export.as_ref().unwrap().new, 2, "{first:#?}");
    assert!(out.path().join(format!("127.0.0.1_{}/tagged.md", site.addr().port())).is_file());

    let second = run().await;
    assert_eq!(second.crawl.not_modified, 1);
    assert_eq!(second.crawl.fetched + second.crawl.not_modified, first.crawl.fetched);
    assert_eq!(second.export.as_ref().unwrap().stale, 0);
    let headers = site.request_headers("/tagged");
    assert_eq!(headers.last().unwrap()["if-none-match"], "\"v1\"");
    let tagged = manifest(out.path()).into_iter().find(|e| e.url.ends_with("/tagged")).unwrap();
    assert_eq!(tagged.status, EntryStatus::NotModified);
    assert_eq!(second.export.unwrap().unchanged, 2, "the fetched home page and the 304");
}

#[tokio::test]
async fn a_failing_home_page_does_not_get_the_site_pruned() {
    let site = TestSite::plain(3).start().await;
    let out = tempfile::tempdir().unwrap();
    assert_eq!(export_run(&site, out.path(), false).await.export.unwrap().new, 4);

    site.set_route("/", Route::status(500));
    let report = export_run(&site, out.path(), true).await;
    assert!(!report.crawl.complete);
    let export = report.export.unwrap();
    // An incomplete crawl marks nothing stale: the pages it did not reach
    // keep the status of the last run.
    assert_eq!((export.pruned, export.stale), (0, 0), "{export:?}");
    let entries = manifest(out.path());
    assert_eq!(entries.len(), 4);
    let home = entries.iter().find(|e| e.url == site.url("/").as_str()).unwrap();
    assert_eq!(home.status, EntryStatus::Failed);
    assert_eq!(entries.iter().filter(|e| e.status == EntryStatus::Exported).count(), 3);
}

#[tokio::test]
async fn a_cancelled_export_keeps_its_manifest_and_marks_nothing_stale() {
    let site = TestSite::plain(30).start().await;
    let out = tempfile::tempdir().unwrap();
    let first = export_run(&site, out.path(), false).await;
    assert_eq!(first.export.unwrap().new, 31);

    let token = CancellationToken::new();
    let stopper = Arc::new(CancelAfter { after: 3, token: token.clone() });
    let folder = FolderSink::open(out.path()).unwrap();
    let options = PipelineOptions { prune: true, ..PipelineOptions::default() };
    let report =
        pipeline(&site).options(options).folder(folder).progress(stopper).run(token).await.unwrap();
    assert_eq!(report.outcome, RunOutcome::Cancelled);
    let export = report.export.unwrap();
    assert_eq!((export.stale, export.pruned), (0, 0), "{export:?}");
    let entries = manifest(out.path());
    assert_eq!(entries.len(), 31);
    assert!(entries.iter().all(|e| e.status != EntryStatus::Stale), "{entries:?}");
}

#[tokio::test]
async fn skipped_pages_are_listed_with_their_reason() {
    let links = [("/short".to_owned(), "Short".to_owned())];
    let site = TestSite::new()
        .page("/", article_page("Home", 1, 4, &links))
        .page("/short", article_page("Short", 2, 0, &[]))
        .start()
        .await;
    let out = tempfile::tempdir().unwrap();
    let report = export_run(&site, out.path(), false).await;

    assert_eq!(report.crawl.skipped["too_little_content"], 1, "{report:#?}");
    assert_eq!(report.skipped.len(), 1);
    let skipped = &report.skipped[0];
    assert_eq!(skipped.url, site.url("/short").as_str());
    assert_eq!(skipped.reason, "too_little_content");
    let words = skipped.words.expect("word count of a too-short page");
    assert!(words < ExtractOptions::default().min_words as u64, "{skipped:?}");
    assert!(skipped.detail.contains(&format!("{words} words")), "{skipped:?}");
    assert_eq!(report.skipped_not_listed, 0);
    assert_eq!(report.failed_pages(), 0);
}

async fn export_run(site: &RunningSite, out: &Path, prune: bool) -> RunReport {
    let folder = FolderSink::open(out).unwrap();
    let options = PipelineOptions { prune, ..PipelineOptions::default() };
    pipeline(site).options(options).folder(folder).run(CancellationToken::new()).await.unwrap()
}

#[tokio::test]
async fn synced_pages_are_fetched_conditionally_and_cost_no_dify_call() {
    let tagged = Route::html(article_page("Tagged", 7, 6, &[("/".into(), "Home".into())]))
        .with_header("ETag", "\"v1\"");
    let home = article_page("Home", 0, 3, &[("/tagged".into(), "Tagged".into())]);
    let site = TestSite::new().page("/", home).route("/tagged", tagged).start().await;
    let server = DifyServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("s.db");
    sync(&site, &server, &state).await;

    let second = sync(&site, &server, &state).await;
    assert_eq!(second.crawl.not_modified, 1, "{second:#?}");
    assert_eq!(second.crawl.fetched, 1, "the home page has no validators");
    assert_eq!(site.request_headers("/tagged").last().unwrap()["if-none-match"], "\"v1\"");
    assert_only_the_key_check(&server);
    assert_eq!(second.knowledge_bases[KB].unchanged, 2);
}

/// Every page has an ETag, so a re-run gets 304 for all of them. Pages sit
/// up to three links deep: `/` -> `/section/` -> `/page/1..=4`, and
/// `/page/4` -> `/deep`.
const TAGGED_PAGES: u64 = 7;

fn tagged_route(title: &str, seed: usize, links: &[&str], etag: &str) -> Route {
    let links: Vec<(String, String)> =
        links.iter().map(|l| ((*l).to_owned(), format!("Link to {l}"))).collect();
    Route::html(article_page(title, seed, 6, &links)).with_header("ETag", etag)
}

fn tagged_site() -> TestSite {
    let pages: Vec<String> = (1..=4).map(plain_page_path).collect();
    let section: Vec<&str> = pages.iter().map(String::as_str).collect();
    let mut site = TestSite::new()
        .route("/", tagged_route("Home", 0, &["/section/"], "\"home\""))
        .route("/section/", tagged_route("Section", 1, &section, "\"section\""))
        .route("/deep", tagged_route("Deep", 9, &["/"], "\"deep\""));
    for (index, path) in pages.iter().enumerate() {
        let links: &[&str] = if index == 3 { &["/", "/deep"] } else { &["/"] };
        site = site.route(path, tagged_route(path, index + 2, links, &format!("\"{index}\"")));
    }
    site
}

#[tokio::test]
async fn a_dify_resync_where_every_page_answers_304_sees_the_whole_site() {
    let site = tagged_site().start().await;
    let server = DifyServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("s.db");
    let first = sync(&site, &server, &state).await;
    assert_eq!(first.crawl.fetched, TAGGED_PAGES, "{first:#?}");
    assert_eq!(documents(&server).len() as u64, TAGGED_PAGES);

    let prune = PruneOptions { enabled: true, ..PruneOptions::default() };
    let options = DifySinkOptions { prune, ..DifySinkOptions::default() };
    server.reset_stats();
    let sink = sink(&server, &state, options).await;
    let second = pipeline(&site).dify(sink).run(CancellationToken::new()).await.unwrap();

    assert_eq!((second.crawl.fetched, second.crawl.not_modified), (0, TAGGED_PAGES), "{second:#?}");
    assert_eq!(second.crawl.bytes_fetched, 0, "no page body sent");
    assert!(second.crawl.complete);
    let counts = &second.knowledge_bases[KB];
    assert_eq!((counts.unchanged, counts.pruned, counts.failed), (TAGGED_PAGES, 0, 0));
    assert_only_the_key_check(&server);
    assert_eq!(documents(&server).len() as u64, TAGGED_PAGES, "nothing pruned");
}

#[tokio::test]
async fn a_changed_page_updates_its_stored_links_for_the_next_304() {
    let site =
        tagged_site().route("/new", tagged_route("New", 20, &["/"], "\"new\"")).start().await;
    let server = DifyServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("s.db");
    sync(&site, &server, &state).await;
    assert_eq!(site.hits("/new"), 0, "not linked yet");

    let pages: Vec<String> = (1..=4).map(plain_page_path).chain(["/new".into()]).collect();
    let section: Vec<&str> = pages.iter().map(String::as_str).collect();
    site.set_route("/section/", tagged_route("Section", 1, &section, "\"section-2\""));
    let second = sync(&site, &server, &state).await;
    assert_eq!((second.crawl.fetched, second.crawl.not_modified), (2, TAGGED_PAGES - 1));
    assert_eq!(second.knowledge_bases[KB].new, 1, "{second:#?}");

    let third = sync(&site, &server, &state).await;
    assert_eq!((third.crawl.fetched, third.crawl.not_modified), (0, TAGGED_PAGES + 1));
    assert_only_the_key_check(&server);
}

#[tokio::test]
async fn a_routing_change_moves_pages_that_answer_304() {
    let site = tagged_site().start().await;
    let server = DifyServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("s.db");
    sync(&site, &server, &state).await;
    assert_eq!(documents(&server).len() as u64, TAGGED_PAGES);

    // Every page has validators, but none may answer 304 now: a 304 would
    // leave it in the old knowledge base.
    let moved = sync_to(&site, &server, &state, "Elsewhere").await;
    assert_eq!((moved.crawl.fetched, moved.crawl.not_modified), (TAGGED_PAGES, 0), "{moved:#?}");
    assert_eq!(moved.failed_pages(), 0, "{:?}", moved.problems);
    assert_eq!(documents_in(&server, "Elsewhere").len() as u64, TAGGED_PAGES);
    assert!(documents(&server).is_empty(), "documents left in the old knowledge base");
    assert!(site.request_headers("/").last().unwrap().get("if-none-match").is_none());

    // Once moved, they answer 304 again and cost nothing.
    let settled = sync_to(&site, &server, &state, "Elsewhere").await;
    assert_eq!((settled.crawl.fetched, settled.crawl.not_modified), (0, TAGGED_PAGES));
    assert_only_the_key_check(&server);
}

#[tokio::test]
async fn a_folder_rerun_where_every_page_answers_304_prunes_nothing() {
    let site = tagged_site().start().await;
    let out = tempfile::tempdir().unwrap();
    let first = export_run(&site, out.path(), true).await;
    assert_eq!(first.export.unwrap().new, TAGGED_PAGES);

    let second = export_run(&site, out.path(), true).await;
    assert_eq!((second.crawl.fetched, second.crawl.not_modified), (0, TAGGED_PAGES), "{second:#?}");
    assert!(second.crawl.complete);
    let export = second.export.unwrap();
    assert_eq!((export.stale, export.pruned), (0, 0), "{export:?}");
    assert_eq!((export.unchanged, export.new, export.changed), (TAGGED_PAGES, 0, 0));
    assert!(second.pages_per_second > 0.0, "304s count as pages handled");
    let entries = manifest(out.path());
    assert_eq!(entries.len() as u64, TAGGED_PAGES);
    assert!(entries.iter().all(|e| e.status == EntryStatus::NotModified), "{entries:?}");
    assert!(entries.iter().all(|e| e.links.is_some()));
}

#[tokio::test]
async fn dify_and_folder_together_replay_links_on_304() {
    let site = tagged_site().start().await;
    let server = DifyServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (state, out) = (dir.path().join("s.db"), dir.path().join("out"));
    let run = || async {
        server.reset_stats();
        let sink = sink(&server, &state, DifySinkOptions::default()).await;
        let folder = FolderSink::open(&out).unwrap();
        pipeline(&site).dify(sink).folder(folder).run(CancellationToken::new()).await.unwrap()
    };
    run().await;

    let second = run().await;
    assert_eq!((second.crawl.fetched, second.crawl.not_modified), (0, TAGGED_PAGES), "{second:#?}");
    assert_eq!(second.export.unwrap().stale, 0);
    assert_only_the_key_check(&server);
}
