//! What the pipeline costs on top of the bare crawl, measured side by side.
//!
//! A generated site of `PAGES` pages (about 8 KB of article HTML each) is
//! served in-process on 127.0.0.1. Each mode runs in its own child process
//! so its peak memory (VmHWM) is its own:
//!
//! - `crawl`: the crawler alone, events drained and dropped (the floor);
//! - `export`: crawl -> extract -> folder export;
//! - `dify`: crawl -> extract -> the Dify test server (no added latency),
//!   write concurrency 4.
//!
//! Run: `cargo bench -p kb-sync --bench pipeline` (set `PIPELINE_PAGES` to
//! change the site size).

use std::process::Command;
use std::time::{Duration, Instant};

use dify_client::DifyClient;
use kb_sync::dify_sink::{DifySink, DifySinkOptions};
use kb_sync::export::FolderSink;
use kb_sync::pipeline::{Pipeline, PipelineOptions};
use kb_sync::route::Router;
use kb_sync::state::StateStore;
use page_extract::ExtractOptions;
use site_crawler::{CrawlConfig, Crawler};
use test_support::dify::DifyServer;
use test_support::site::{RunningSite, TestSite};
use tokio_util::sync::CancellationToken;

const MODES: [&str; 3] = ["crawl", "export", "dify"];

fn main() {
    let pages: usize =
        std::env::var("PIPELINE_PAGES").ok().and_then(|p| p.parse().ok()).unwrap_or(2000);
    match std::env::args().skip_while(|a| a != "--mode").nth(1) {
        Some(mode) => child(&mode, pages),
        None => parent(pages),
    }
}

/// Runs every mode in a child process and prints the table.
fn parent(pages: usize) {
    println!("pipeline bench: {pages} generated pages, one child process per mode");
    let mut rates = Vec::new();
    for mode in MODES {
        let exe = std::env::current_exe().expect("bench executable path");
        let output = Command::new(exe).args(["--mode", mode]).output().expect("child runs");
        let text = String::from_utf8_lossy(&output.stdout);
        let Some(line) = text.lines().find(|l| l.starts_with("result ")) else {
            eprintln!("mode {mode} failed:\n{text}{}", String::from_utf8_lossy(&output.stderr));
            return;
        };
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (done, secs, hwm_kb): (u64, f64, u64) = (
            fields[2].parse().unwrap_or(0),
            fields[3].parse().unwrap_or(f64::NAN),
            fields[4].parse().unwrap_or(0),
        );
        let rate = done as f64 / secs;
        println!(
            "{mode:>7}: {done} pages in {secs:.2} s = {rate:.0} pages/s, peak RSS {} MiB{}",
            hwm_kb / 1024,
            fields.get(5).map(|extra| format!(", {}", extra.replace('_', " "))).unwrap_or_default()
        );
        rates.push(rate);
    }
    println!(
        "ratios: export/crawl {:.2}, dify/crawl {:.2}",
        rates[1] / rates[0],
        rates[2] / rates[0]
    );
}

fn child(mode: &str, pages: usize) {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let site = TestSite::large(pages).start().await;
        let started = Instant::now();
        let (done, extra) = match mode {
            "crawl" => (crawl_only(&site, pages).await, String::new()),
            "export" => export(&site, pages).await,
            _ => dify(&site, pages).await,
        };
        let secs = started.elapsed().as_secs_f64();
        println!("result {mode} {done} {secs:.3} {} {extra}", peak_rss_kb());
    });
}

fn crawl_config(site: &RunningSite, pages: usize) -> CrawlConfig {
    CrawlConfig {
        start_urls: vec![site.base_url().to_string()],
        max_pages: pages,
        max_depth: 100,
        delay: Duration::ZERO,
        concurrency: 16,
        per_host: 16,
        ..CrawlConfig::default()
    }
}

async fn crawl_only(site: &RunningSite, pages: usize) -> u64 {
    let crawler = Crawler::new(crawl_config(site, pages)).expect("valid crawl");
    let (tx, mut rx) = tokio::sync::mpsc::channel(32);
    let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let stats = crawler.run(tx, CancellationToken::new()).await;
    let _ = drain.await;
    stats.pages
}

fn pipeline(site: &RunningSite, pages: usize) -> Pipeline {
    let router = Router::single("Bench").expect("valid name");
    Pipeline::new(crawl_config(site, pages), ExtractOptions::default(), router).expect("valid")
}

async fn export(site: &RunningSite, pages: usize) -> (u64, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let folder = FolderSink::open(dir.path()).expect("export folder");
    let report =
        pipeline(site, pages).folder(folder).run(CancellationToken::new()).await.expect("run");
    let bound = format!(
        "max_in_flight_{}/{}",
        report.pipeline.max_in_flight, report.pipeline.in_flight_bound
    );
    (report.crawl.exported, bound)
}

async fn dify(site: &RunningSite, pages: usize) -> (u64, String) {
    let server = DifyServer::start().await.expect("dify test server");
    let dir = tempfile::tempdir().expect("temp dir");
    let client = DifyClient::builder(server.base_url(), server.api_key()).build().expect("client");
    let store = StateStore::open(dir.path().join("state.db")).expect("store");
    let sink = DifySink::connect(client, store, DifySinkOptions::default()).await.expect("sink");
    let options = PipelineOptions::default();
    let report = pipeline(site, pages)
        .options(options)
        .dify(sink)
        .run(CancellationToken::new())
        .await
        .expect("run");
    let requests = report.dify.as_ref().map_or(0, |d| d.requests_total);
    let extra = format!(
        "max_in_flight_{}/{},_{:.2}_dify_requests/page",
        report.pipeline.max_in_flight,
        report.pipeline.in_flight_bound,
        requests as f64 / report.crawl.synced.max(1) as f64
    );
    (report.crawl.synced, extra)
}

/// Peak resident set of this process, from /proc (0 where unavailable).
fn peak_rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
