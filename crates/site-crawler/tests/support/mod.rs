//! Shared helpers for the crawler's integration tests.

use std::time::Duration;

use site_crawler::{CrawlConfig, CrawlEvent, CrawlStats, Crawler, FetchedPage};
use test_support::site::RunningSite;
use tokio_util::sync::CancellationToken;

/// A fast, test-friendly config starting at `path` of `site`: no delay,
/// short timeouts, sitemaps off (tests that want them turn them on).
pub fn config(site: &RunningSite, path: &str) -> CrawlConfig {
    CrawlConfig {
        start_urls: vec![site.url(path).to_string()],
        delay: Duration::ZERO,
        timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
        sitemaps: false,
        ..CrawlConfig::default()
    }
}

/// Runs a crawl to the end and collects every event.
pub async fn crawl(config: CrawlConfig) -> (Vec<CrawlEvent>, CrawlStats) {
    let crawler = Crawler::new(config).expect("valid test config");
    let (sender, mut receiver) = tokio::sync::mpsc::channel(16);
    let run = tokio::spawn(async move { crawler.run(sender, CancellationToken::new()).await });
    let mut events = Vec::new();
    while let Some(event) = receiver.recv().await {
        events.push(event);
    }
    (events, run.await.expect("crawl task"))
}

/// The pages among the events.
pub fn pages(events: &[CrawlEvent]) -> Vec<&FetchedPage> {
    events
        .iter()
        .filter_map(|event| match event {
            CrawlEvent::Page(page) => Some(page),
            _ => None,
        })
        .collect()
}

/// Paths of the pages, sorted.
pub fn page_paths(events: &[CrawlEvent]) -> Vec<String> {
    let mut paths: Vec<String> =
        pages(events).iter().map(|page| page.url.path().to_owned()).collect();
    paths.sort();
    paths
}

/// The event about `path`, if any.
pub fn event_for<'a>(events: &'a [CrawlEvent], path: &str) -> Option<&'a CrawlEvent> {
    events.iter().find(|event| event.url().path() == path)
}
