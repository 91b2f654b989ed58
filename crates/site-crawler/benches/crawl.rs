//! Crawl throughput against an in-process generated site, next to the
//! floor: a bare fetch loop over the same URLs with the same concurrency.
//!
//! Modes:
//! - `floor`: the URLs known up front, fetched with a plain reqwest client
//!   and read whole;
//! - `crawl`: the crawler (robots.txt, link discovery, dedup, politeness
//!   bookkeeping, charset decoding), events drained;
//! - `extract`: the crawler plus main-content extraction of every page to
//!   Markdown with `page-extract`, on the blocking pool with one job per
//!   core in flight, as the sync pipeline runs it.
//!
//! `bytes` in the output is body bytes for `floor` and `crawl`, Markdown
//! bytes for `extract`.
//!
//! Each mode runs in a child process of this binary so its peak memory
//! (VmHWM) is its own; the site server runs inside each child, so every
//! mode pays for it alike. Run with `cargo bench -p site-crawler --bench
//! crawl`; set `CRAWL_BENCH_PAGES` to change the site size (default 6000).

use std::process::Command;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use page_extract::{ExtractOptions, extract};
use site_crawler::{CrawlConfig, CrawlEvent, Crawler};
use test_support::site::{RunningSite, TestSite, large_page_path};
use tokio_util::sync::CancellationToken;

const CONCURRENCY: usize = 32;
const MODES: [&str; 3] = ["floor", "crawl", "extract"];

/// What one mode measured.
struct Measured {
    pages: usize,
    bytes: u64,
    elapsed: Duration,
    rss_before_kib: u64,
    rss_peak_kib: u64,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(position) = args.iter().position(|arg| arg == "--mode") {
        let mode = args.get(position + 1).map_or("crawl", String::as_str);
        run_child(mode);
        return;
    }
    if args.iter().any(|arg| arg == "--list") {
        return;
    }
    run_parent();
}

fn page_count() -> usize {
    std::env::var("CRAWL_BENCH_PAGES").ok().and_then(|value| value.parse().ok()).unwrap_or(6_000)
}

fn run_parent() {
    let exe = std::env::current_exe().expect("path of the bench binary");
    println!(
        "site: {} generated pages, concurrency {CONCURRENCY}, no politeness delay",
        page_count()
    );
    let mut rates = Vec::new();
    for mode in MODES {
        let output = Command::new(&exe).args(["--mode", mode]).output().expect("run a bench child");
        let line = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        if !output.status.success() {
            eprintln!("{mode} failed: {}", String::from_utf8_lossy(&output.stderr));
            continue;
        }
        println!("{line}");
        let rate = line.split_whitespace().find_map(|field| field.strip_prefix("pages_per_s="));
        rates.push(rate.and_then(|value| value.parse::<f64>().ok()).unwrap_or(0.0));
    }
    if let [floor, crawl, extract] = rates[..] {
        let floor = floor.max(f64::MIN_POSITIVE);
        println!("crawl / floor throughput: {:.2}", crawl / floor);
        println!("crawl + extract / floor throughput: {:.2}", extract / floor);
    }
}

fn run_child(mode: &str) {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let measured = runtime.block_on(async {
        let pages = page_count();
        let site = TestSite::large(pages).start().await;
        let rss_before_kib = vm_kib("VmRSS");
        let started = Instant::now();
        let (fetched, bytes) = match mode {
            "floor" => floor(&site, pages).await,
            "extract" => crawl_and_extract(&site, pages).await,
            _ => crawl(&site, pages).await,
        };
        Measured {
            pages: fetched,
            bytes,
            elapsed: started.elapsed(),
            rss_before_kib,
            rss_peak_kib: vm_kib("VmHWM"),
        }
    });
    let rate = measured.pages as f64 / measured.elapsed.as_secs_f64();
    println!(
        "{mode:<6} pages={} bytes={} secs={:.2} pages_per_s={rate:.0} rss_before_kib={} peak_rss_kib={} peak_delta_kib={}",
        measured.pages,
        measured.bytes,
        measured.elapsed.as_secs_f64(),
        measured.rss_before_kib,
        measured.rss_peak_kib,
        measured.rss_peak_kib.saturating_sub(measured.rss_before_kib)
    );
}

fn bench_config(site: &RunningSite, pages: usize) -> CrawlConfig {
    CrawlConfig {
        start_urls: vec![site.url(&large_page_path(0)).to_string()],
        max_pages: pages,
        max_depth: 100,
        concurrency: CONCURRENCY,
        per_host: CONCURRENCY,
        delay: Duration::ZERO,
        sitemaps: false,
        ..CrawlConfig::default()
    }
}

/// The full crawler: robots.txt, link discovery, dedup, charset decoding.
async fn crawl(site: &RunningSite, pages: usize) -> (usize, u64) {
    let crawler = Crawler::new(bench_config(site, pages)).expect("bench config");
    let (sender, mut receiver) = tokio::sync::mpsc::channel(64);
    let run = tokio::spawn(async move { crawler.run(sender, CancellationToken::new()).await });
    let (mut count, mut bytes) = (0, 0);
    while let Some(event) = receiver.recv().await {
        if let CrawlEvent::Page(page) = event {
            count += 1;
            bytes += page.bytes;
        }
    }
    let _ = run.await;
    (count, bytes)
}

/// The crawler plus extraction: each page becomes Markdown on the blocking
/// pool, at most one extraction per core in flight (the channel bounds
/// the rest). Counts pages extracted (or refused as too short).
async fn crawl_and_extract(site: &RunningSite, pages: usize) -> (usize, u64) {
    let crawler = Crawler::new(bench_config(site, pages)).expect("bench config");
    let (sender, mut receiver) = tokio::sync::mpsc::channel(64);
    let run = tokio::spawn(async move { crawler.run(sender, CancellationToken::new()).await });
    let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut jobs = tokio::task::JoinSet::new();
    let (mut count, mut bytes) = (0, 0);
    let mut finish = |joined: Option<Result<Option<u64>, tokio::task::JoinError>>| {
        if let Some(Ok(Some(markdown_bytes))) = joined {
            count += 1;
            bytes += markdown_bytes;
        }
    };
    while let Some(event) = receiver.recv().await {
        let CrawlEvent::Page(page) = event else {
            continue;
        };
        while jobs.len() >= parallel {
            finish(jobs.join_next().await);
        }
        jobs.spawn_blocking(move || {
            let extracted = extract(&page.html, &page.final_url, &ExtractOptions::default());
            extracted.ok().map(|page| page.markdown.len() as u64)
        });
    }
    while let Some(joined) = jobs.join_next().await {
        finish(Some(joined));
    }
    let _ = run.await;
    (count, bytes)
}

/// The floor: the same URLs, known up front, fetched and read whole.
async fn floor(site: &RunningSite, pages: usize) -> (usize, u64) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client =
        reqwest::Client::builder().pool_max_idle_per_host(CONCURRENCY).build().expect("client");
    let urls: Vec<_> = (0..pages).map(|index| site.url(&large_page_path(index))).collect();
    let results = futures_util::stream::iter(urls)
        .map(|url| {
            let client = client.clone();
            async move {
                client.get(url).send().await.ok()?.bytes().await.ok().map(|body| body.len() as u64)
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    let fetched: Vec<u64> = results.into_iter().flatten().collect();
    (fetched.len(), fetched.iter().sum())
}

/// A `Vm*` line of /proc/self/status in KiB (0 where it is unavailable).
fn vm_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix(field)?
                    .strip_prefix(':')?
                    .trim()
                    .strip_suffix("kB")?
                    .trim()
                    .parse()
                    .ok()
            })
        })
        .unwrap_or(0)
}
