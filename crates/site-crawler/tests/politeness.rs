//! Pacing, backoff and robots.txt retries under paused time: the clock
//! only moves when every task waits on a timer, so waits of minutes take
//! no real time and the assertions are on counters and event order.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use site_crawler::{CrawlConfig, CrawlEvent, Crawler, FailKind};
use support::{config, crawl, event_for, page_paths, pages};
use test_support::site::{Route, TestSite, article_page, plain_page_path};
use tokio_util::sync::CancellationToken;

#[tokio::test(start_paused = true)]
async fn a_transient_robots_failure_parks_the_host_and_retries() {
    let answered = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&answered);
    let site = TestSite::plain(2)
        .generator(move |path| {
            (path == "/robots.txt").then(|| match counter.fetch_add(1, Ordering::SeqCst) {
                0 => Route::status(503),
                _ => Route::status(404),
            })
        })
        .start()
        .await;
    let mut config = config(&site, "/");
    config.max_retries = 0;
    let (events, stats) = crawl(config).await;

    assert_eq!(page_paths(&events), ["/", "/page/1", "/page/2"], "{events:?}");
    assert_eq!(stats.failed_total(), 0);
    assert_eq!(site.hits("/robots.txt"), 2, "fetched again after the backoff");
}

#[tokio::test(start_paused = true)]
async fn a_robots_txt_that_stays_down_fails_the_host_after_the_attempts() {
    let site = TestSite::plain(2).route("/robots.txt", Route::status(500)).start().await;
    let mut config = config(&site, "/");
    config.max_retries = 0;
    let (events, stats) = crawl(config).await;

    let [CrawlEvent::Failed(failed)] = &events[..] else {
        panic!("expected one failure: {events:?}");
    };
    assert_eq!(failed.kind, FailKind::RobotsUnavailable);
    assert_eq!(site.hits("/robots.txt"), site_crawler::ROBOTS_ATTEMPTS as usize);
    assert_eq!((site.hits("/"), stats.pages_requested), (0, 0));
}

/// Events as `(site index, path)`, in the order they arrived.
async fn crawl_in_order(config: CrawlConfig, ports: &[u16]) -> Vec<(usize, String)> {
    let (events, _) = crawl(config).await;
    events
        .iter()
        .filter(|event| matches!(event, CrawlEvent::Page(_)))
        .map(|event| {
            let site = ports.iter().position(|port| event.url().port() == Some(*port));
            (site.unwrap_or(usize::MAX), event.url().path().to_owned())
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_pacing_host_does_not_starve_the_others() {
    let robots = Route::bytes("text/plain", "User-agent: *\nCrawl-delay: 10\n");
    let slow = TestSite::plain(6).route("/robots.txt", robots).start().await;
    // The fast home answers a little later, so the slow host's links are
    // queued first and breadth-first order alone would serve them first.
    let links: Vec<(String, String)> =
        (1..=12).map(|i| (plain_page_path(i), format!("Page {i}"))).collect();
    let fast_home = Route::html(article_page("Home", 0, 3, &links));
    let fast = TestSite::plain(12)
        .route("/", fast_home.with_delay(Duration::from_millis(100)))
        .start()
        .await;

    let mut config = config(&slow, "/");
    config.start_urls.push(fast.url("/").to_string());
    (config.concurrency, config.per_host) = (2, 1);
    let order = crawl_in_order(config, &[slow.addr().port(), fast.addr().port()]).await;

    let slow_pages = order.iter().filter(|(site, _)| *site == 0).count();
    let fast_pages = order.iter().filter(|(site, _)| *site == 1).count();
    assert_eq!((slow_pages, fast_pages), (7, 13), "{order:?}");
    let last_fast = order.iter().rposition(|(site, _)| *site == 1).unwrap();
    let slow_before = order[..last_fast].iter().filter(|(site, _)| *site == 0).count();
    // Only the slow home (answered at once) precedes; the other six pages
    // are paced ten seconds apart while the fast host finishes.
    assert!(slow_before <= 2, "slow pages before the last fast one: {order:?}");
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_beyond_the_cap_fails_the_page_and_backs_off_the_host() {
    let site = TestSite::new()
        .route("/", Route::status(503).with_header("retry-after", "3600"))
        .page("/b", "<html><body><p>b</p></body></html>")
        .start()
        .await;
    let mut config = config(&site, "/");
    config.start_urls.push(site.url("/b").to_string());
    (config.concurrency, config.max_retries) = (1, 1);
    let crawler = Crawler::new(config).unwrap();
    let (sender, mut receiver) = tokio::sync::mpsc::channel(16);
    let run = tokio::spawn(async move { crawler.run(sender, CancellationToken::new()).await });

    let Some(CrawlEvent::Failed(failed)) = receiver.recv().await else {
        panic!("expected the 503 page to fail first");
    };
    assert_eq!((failed.status, failed.kind), (Some(503), FailKind::Status));
    assert!(failed.error.contains("asked to wait 3600 s"), "{}", failed.error);
    assert_eq!(site.hits("/"), 1, "not retried early");

    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(site.hits("/b"), 0, "the host is left alone");
    let Some(CrawlEvent::Page(page)) = receiver.recv().await else {
        panic!("expected /b after the backoff");
    };
    assert_eq!(page.url.path(), "/b");
    assert!(receiver.recv().await.is_none());
    assert_eq!(run.await.unwrap().pages, 1);
}

#[tokio::test(start_paused = true)]
async fn the_last_503_backs_the_host_off_too() {
    let site = TestSite::new()
        .route("/", Route::status(503).with_header("retry-after", "30"))
        .page("/b", "<html><body><p>b</p></body></html>")
        .start()
        .await;
    let mut config = config(&site, "/");
    config.start_urls.push(site.url("/b").to_string());
    (config.concurrency, config.max_retries) = (1, 0);
    let crawler = Crawler::new(config).unwrap();
    let (sender, mut receiver) = tokio::sync::mpsc::channel(16);
    let run = tokio::spawn(async move { crawler.run(sender, CancellationToken::new()).await });

    let first = receiver.recv().await;
    assert!(matches!(&first, Some(CrawlEvent::Failed(f)) if f.status == Some(503)), "{first:?}");
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(site.hits("/b"), 0, "the host is backed off for the asked 30 s");
    let mut rest = Vec::new();
    while let Some(event) = receiver.recv().await {
        rest.push(event);
    }
    assert_eq!(pages(&rest).len(), 1);
    assert!(event_for(&rest, "/b").is_some());
    run.await.unwrap();
}
