//! Counters of one crawl, returned by [`Crawler::run`](crate::Crawler::run).
//!
//! Decisions are counted by the crawl loop, which owns [`CrawlStats`]
//! outright; traffic that happens inside fetch tasks (robots.txt, sitemaps,
//! retries, redirects) is counted in [`Traffic`] atomics and folded in at
//! the end, so no lock is shared between tasks for bookkeeping.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::event::CrawlEvent;

/// What a crawl did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CrawlStats {
    /// Pages emitted as [`CrawlEvent::Page`].
    pub pages: u64,
    /// Pages emitted as [`CrawlEvent::NotModified`].
    pub not_modified: u64,
    /// Skipped URLs by reason key ([`SkipReason::as_str`]).
    ///
    /// [`SkipReason::as_str`]: crate::SkipReason::as_str
    pub skipped: BTreeMap<String, u64>,
    /// Failed URLs by kind key ([`FailKind::as_str`]).
    ///
    /// [`FailKind::as_str`]: crate::FailKind::as_str
    pub failed: BTreeMap<String, u64>,
    /// URLs dropped without an event because their identity had already
    /// been emitted when their turn came.
    pub duplicates_dropped: u64,
    /// URLs whose page request was sent, whatever came of it: what
    /// `max_pages` counts.
    pub pages_requested: u64,
    /// Pages whose distinct links were cut at
    /// [`MAX_LINKS_PER_PAGE`](crate::links::MAX_LINKS_PER_PAGE).
    pub link_lists_truncated: u64,
    /// Meta refresh redirects followed (also counted in `redirects`).
    pub refreshes: u64,
    /// Page body bytes received (after content decoding).
    pub bytes: u64,
    /// HTTP requests sent (pages, robots.txt, sitemaps), retries and
    /// redirect hops included.
    pub requests: u64,
    /// Retries after 429 or 503.
    pub retries: u64,
    /// Redirect hops followed, meta refreshes included.
    pub redirects: u64,
    /// robots.txt requests sent.
    pub robots_fetches: u64,
    /// Sitemap requests sent.
    pub sitemap_fetches: u64,
    /// In-scope URLs seeded from sitemaps.
    pub sitemap_urls: u64,
    /// Whether `max_pages` stopped the crawl with URLs left to fetch.
    pub page_limit_reached: bool,
    /// Whether the cancellation token ended the crawl.
    pub cancelled: bool,
    /// Whether the events receiver hung up, ending the crawl.
    pub consumer_gone: bool,
    /// Wall time of the run, in milliseconds.
    pub duration_ms: u64,
}

impl CrawlStats {
    /// Counts one event that was delivered.
    pub(crate) fn count(&mut self, tally: Tally) {
        match tally {
            Tally::Page => self.pages += 1,
            Tally::NotModified => self.not_modified += 1,
            Tally::Skipped(key) => *self.skipped.entry(key.to_owned()).or_default() += 1,
            Tally::Failed(key) => *self.failed.entry(key.to_owned()).or_default() += 1,
        }
    }

    /// Total skipped URLs.
    #[must_use]
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }

    /// Total failed URLs.
    #[must_use]
    pub fn failed_total(&self) -> u64 {
        self.failed.values().sum()
    }
}

/// What an event adds to the stats, taken before the event is sent away.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Tally {
    Page,
    NotModified,
    Skipped(&'static str),
    Failed(&'static str),
}

impl Tally {
    pub(crate) fn of(event: &CrawlEvent) -> Self {
        match event {
            CrawlEvent::Page(_) => Self::Page,
            CrawlEvent::NotModified(_) => Self::NotModified,
            CrawlEvent::Skipped(skipped) => Self::Skipped(skipped.reason.as_str()),
            CrawlEvent::Failed(failed) => Self::Failed(failed.kind.as_str()),
        }
    }
}

/// Traffic counters shared with fetch tasks.
#[derive(Debug, Default)]
pub(crate) struct Traffic {
    pub(crate) bytes: AtomicU64,
    pub(crate) requests: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) redirects: AtomicU64,
    pub(crate) refreshes: AtomicU64,
    pub(crate) robots_fetches: AtomicU64,
    pub(crate) sitemap_fetches: AtomicU64,
}

impl Traffic {
    /// Adds one to a counter; relaxed because the values are only read
    /// after every task has finished.
    pub(crate) fn bump(counter: &AtomicU64, by: u64) {
        counter.fetch_add(by, Ordering::Relaxed);
    }

    /// Copies the counters into the stats.
    pub(crate) fn fold_into(&self, stats: &mut CrawlStats) {
        stats.bytes = self.bytes.load(Ordering::Relaxed);
        stats.requests = self.requests.load(Ordering::Relaxed);
        stats.retries = self.retries.load(Ordering::Relaxed);
        stats.redirects = self.redirects.load(Ordering::Relaxed);
        stats.refreshes = self.refreshes.load(Ordering::Relaxed);
        stats.robots_fetches = self.robots_fetches.load(Ordering::Relaxed);
        stats.sitemap_fetches = self.sitemap_fetches.load(Ordering::Relaxed);
    }
}
