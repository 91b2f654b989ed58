//! The crawl loop: scheduling, dedup, canonical URLs, the page budget and
//! events.
//!
//! One loop owns every piece of mutable crawl state (frontier, seen and
//! emitted sets, stats), so none of it needs a lock. Fetch tasks run in a
//! `JoinSet` capped at `concurrency`; each returns an [`Outcome`] that the
//! loop turns into events and new work. The loop awaits each event send,
//! so a slow consumer slows the crawl instead of growing a buffer: at most
//! `concurrency` finished outcomes wait in the join set meanwhile.
//!
//! A task is only started for a URL whose host can send a request now
//! (see [`Frontier::pop_ready`]): the loop takes the host's start slot
//! itself and hands it to the task. When every queued host is pacing, the
//! loop sleeps until the first one is due, so a host with a long
//! `Crawl-delay`, a `Retry-After` backoff or an unreachable robots.txt
//! never holds global slots other hosts could use.
//!
//! A page naming another in-scope URL as canonical is not emitted under
//! that URL: the canonical is queued (at the page's depth) and fetched in
//! its own right, the page is skipped as `canonicalized`, and its links are
//! followed all the same. Only a canonical already emitted makes the page
//! a duplicate; one already fetched without becoming a page (it redirects
//! here, say) leaves the page standing for itself.
//!
//! A page answering 304 has no body to find links in; its links come from
//! the validators of the earlier run and are queued exactly like the links
//! of a fetched page, so an unchanged site is crawled as deep as before.
//!
//! `max_pages` is exact: a task is only started while page requests sent
//! plus tasks in flight are under the cap, and a task that ends without
//! sending one (robots.txt said no, or is not reachable yet) gives its
//! reservation back.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::{Id, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use url::Url;

use crate::config::{CrawlConfig, SITEMAP_URLS_PER_PAGE};
use crate::error::CrawlError;
use crate::event::{CrawlEvent, FailKind, FailedPage, SkipReason, SkippedPage};
use crate::fetch::Fetcher;
use crate::frontier::{Frontier, Item};
use crate::host::Ticket;
use crate::scope::Scope;
use crate::stats::{CrawlStats, Tally, Traffic};
use crate::task::{self, Finished, Outcome, PageResult};
use crate::{seeds, url_norm};

/// A validated crawl, ready to run.
///
/// ```no_run
/// # async fn example() -> Result<(), site_crawler::CrawlError> {
/// use site_crawler::{CrawlConfig, CrawlEvent, Crawler};
/// use tokio_util::sync::CancellationToken;
///
/// let crawler = Crawler::new(CrawlConfig {
///     start_urls: vec!["https://docs.example.com/".into()],
///     ..CrawlConfig::default()
/// })?;
/// let (events, mut received) = tokio::sync::mpsc::channel(64);
/// let crawl = tokio::spawn(async move { crawler.run(events, CancellationToken::new()).await });
/// while let Some(event) = received.recv().await {
///     if let CrawlEvent::Page(page) = event {
///         println!("{} ({} bytes)", page.url, page.bytes);
///     }
/// }
/// let stats = crawl.await.expect("crawl task");
/// println!("{} pages", stats.pages);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Crawler {
    shared: Arc<Shared>,
}

/// What fetch tasks share: immutable settings and the pooled client.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: CrawlConfig,
    pub(crate) starts: Vec<Url>,
    pub(crate) scope: Scope,
    pub(crate) fetcher: Fetcher,
}

impl Shared {
    /// Why robots.txt keeps us from the URL, if it does (and is respected).
    /// A fetch of robots.txt this needs uses `ticket` when it is for the
    /// URL's host.
    pub(crate) async fn robots_block(
        &self,
        url: &Url,
        traffic: &Traffic,
        ticket: &mut Option<Ticket>,
    ) -> Option<RobotsBlock> {
        if !self.config.respect_robots {
            return None;
        }
        let answer = self.fetcher.robots(url, traffic, ticket).await;
        if let Some(cause) = answer.rules.unavailable_cause() {
            Some(RobotsBlock::Unavailable { cause: cause.to_owned(), retry_at: answer.retry_at })
        } else if answer.rules.is_allowed(url) {
            None
        } else {
            Some(RobotsBlock::Disallowed)
        }
    }
}

/// Why robots.txt keeps the crawler from a URL.
#[derive(Debug)]
pub(crate) enum RobotsBlock {
    /// The rules disallow it for our user agent.
    Disallowed,
    /// robots.txt could not be read; the cause says why.
    Unavailable {
        /// What went wrong.
        cause: String,
        /// When robots.txt will be fetched again; `None` once the attempts
        /// are used up.
        retry_at: Option<Instant>,
    },
}

impl Crawler {
    /// Validates the configuration and builds the HTTP client. Nothing is
    /// sent until [`run`](Self::run).
    ///
    /// # Errors
    ///
    /// A [`CrawlError`] naming the bad start URL, pattern, host or setting.
    pub fn new(config: CrawlConfig) -> Result<Self, CrawlError> {
        let starts = parse_start_urls(&config.start_urls)?;
        check_settings(&config)?;
        let scope = Scope::new(
            &starts,
            &config.extra_hosts,
            config.allow_subdomains,
            config.no_parent,
            &config.include,
            &config.exclude,
        )?;
        let fetcher = Fetcher::new(&config)?;
        Ok(Self { shared: Arc::new(Shared { config, starts, scope, fetcher }) })
    }

    /// The configuration this crawler runs with.
    #[must_use]
    pub fn config(&self) -> &CrawlConfig {
        &self.shared.config
    }

    /// Crawls until the frontier is empty, `max_pages` is reached, `cancel`
    /// fires or the receiver of `events` is dropped, and returns the
    /// counters. Per-page problems become events, never errors.
    ///
    /// On cancellation no new request starts and requests in flight are
    /// dropped. A crawler can be run again; robots.txt and politeness state
    /// are kept between runs.
    pub async fn run(
        &self,
        events: mpsc::Sender<CrawlEvent>,
        cancel: CancellationToken,
    ) -> CrawlStats {
        Run::new(Arc::clone(&self.shared), events, cancel).execute().await
    }
}

fn parse_start_urls(inputs: &[String]) -> Result<Vec<Url>, CrawlError> {
    if inputs.is_empty() {
        return Err(CrawlError::NoStartUrls);
    }
    inputs
        .iter()
        .map(|input| {
            let url = Url::parse(input.trim())
                .map_err(|source| CrawlError::InvalidUrl { url: input.clone(), source })?;
            url_norm::normalize(&url)
                .ok_or_else(|| CrawlError::UnsupportedUrl { url: input.clone() })
        })
        .collect()
}

fn check_settings(config: &CrawlConfig) -> Result<(), CrawlError> {
    let invalid = |name, reason| Err(CrawlError::InvalidSetting { name, reason });
    if config.concurrency == 0 {
        return invalid("concurrency", "must be at least 1");
    }
    if config.per_host == 0 {
        return invalid("per_host", "must be at least 1");
    }
    if config.max_pages == 0 {
        return invalid("max_pages", "must be at least 1");
    }
    if config.user_agent.trim().is_empty() {
        return invalid("user_agent", "must not be empty");
    }
    Ok(())
}

/// The state of one run.
struct Run {
    shared: Arc<Shared>,
    traffic: Arc<Traffic>,
    events: mpsc::Sender<CrawlEvent>,
    cancel: CancellationToken,
    frontier: Frontier,
    /// URLs ever queued, so none is queued twice.
    seen: HashSet<Url>,
    /// Scheduled URLs whose task has ended (not deferred).
    done: HashSet<Url>,
    /// Identities emitted, plus the requested and final URLs that led to
    /// them, so later copies are dropped or skipped as duplicates.
    emitted: HashSet<Url>,
    lastmods: HashMap<Url, String>,
    tasks: JoinSet<Finished>,
    in_flight: HashMap<Id, Item>,
    stats: CrawlStats,
    stopped: bool,
}

impl Run {
    fn new(
        shared: Arc<Shared>,
        events: mpsc::Sender<CrawlEvent>,
        cancel: CancellationToken,
    ) -> Self {
        Self {
            shared,
            traffic: Arc::new(Traffic::default()),
            events,
            cancel,
            frontier: Frontier::default(),
            seen: HashSet::new(),
            done: HashSet::new(),
            emitted: HashSet::new(),
            lastmods: HashMap::new(),
            tasks: JoinSet::new(),
            in_flight: HashMap::new(),
            stats: CrawlStats::default(),
            stopped: false,
        }
    }

    async fn execute(mut self) -> CrawlStats {
        let started = Instant::now();
        let starts: Vec<&str> = self.shared.starts.iter().map(Url::as_str).collect();
        info!(start_urls = ?starts, max_pages = self.shared.config.max_pages, "crawl started");

        for url in self.shared.starts.clone() {
            if self.seen.insert(url.clone()) {
                self.frontier.push(Item { url, depth: 0, referrer: None });
            }
        }
        if self.shared.config.sitemaps {
            self.seed_sitemaps().await;
        }
        self.crawl().await;

        // Waiting for the aborted tasks means no request starts after `run`
        // returns, even on a multi-threaded runtime.
        self.tasks.shutdown().await;
        self.traffic.fold_into(&mut self.stats);
        self.stats.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let stats = &self.stats;
        info!(
            pages = stats.pages,
            not_modified = stats.not_modified,
            skipped = stats.skipped_total(),
            failed = stats.failed_total(),
            requests = stats.requests,
            duration_ms = stats.duration_ms,
            "crawl finished"
        );
        self.stats
    }

    async fn seed_sitemaps(&mut self) {
        let cancel = self.cancel.clone();
        let limit = self.shared.config.max_pages.saturating_mul(SITEMAP_URLS_PER_PAGE);
        let found = tokio::select! {
            biased;
            () = cancel.cancelled() => {
                self.stop_cancelled();
                return;
            }
            found = seeds::from_sitemaps(&self.shared, &self.traffic, limit) => found,
        };

        for (url, lastmod) in found {
            if let Some(lastmod) = lastmod {
                self.lastmods.insert(url.clone(), lastmod);
            }
            if self.seen.insert(url.clone()) {
                self.stats.sitemap_urls += 1;
                self.frontier.push(Item { url, depth: 0, referrer: None });
            }
        }
    }

    async fn crawl(&mut self) {
        let cancel = self.cancel.clone();
        while !self.stopped {
            let wake = self.start_tasks();
            if self.tasks.is_empty() {
                // Nothing in flight: either done, or every queued host is
                // pacing and the loop waits for the first to be due.
                let Some(at) = wake else {
                    break;
                };
                tokio::select! {
                    biased;
                    () = cancel.cancelled() => self.stop_cancelled(),
                    () = tokio::time::sleep_until(at) => {}
                }
                continue;
            }

            let due = wake.unwrap_or_else(Instant::now);
            tokio::select! {
                biased;
                () = cancel.cancelled() => self.stop_cancelled(),
                Some(joined) = self.tasks.join_next_with_id() => match joined {
                    Ok((id, finished)) => {
                        let item = self.in_flight.remove(&id);
                        self.handle(finished, item).await;
                    }
                    Err(error) => self.task_died(&error).await,
                },
                () = tokio::time::sleep_until(due), if wake.is_some() => {}
            }
        }
        self.stats.page_limit_reached = !self.frontier.is_empty() && self.budget_left() == 0;
    }

    /// Page requests that may still be started without risking the cap.
    fn budget_left(&self) -> usize {
        let used = usize::try_from(self.stats.pages_requested).unwrap_or(usize::MAX);
        self.shared.config.max_pages.saturating_sub(used.saturating_add(self.tasks.len()))
    }

    /// Starts tasks while there are global slots, budget and a host ready
    /// to send; returns when to try again if a queued host is pacing.
    fn start_tasks(&mut self) -> Option<Instant> {
        while self.tasks.len() < self.shared.config.concurrency && self.budget_left() > 0 {
            let hosts = &self.shared.fetcher.hosts;
            let emitted = &self.emitted;
            let mut dropped = 0;
            let next = self.frontier.pop_ready(
                |key| hosts.by_key(key).try_start(),
                |item| {
                    let dead = emitted.contains(&item.url);
                    if dead {
                        debug!(url = %item.url, "dropped: identity already emitted");
                        dropped += 1;
                    }
                    dead
                },
            );
            self.stats.duplicates_dropped += dropped;
            let (item, ticket) = match next {
                Ok(ready) => ready,
                Err(wake) => return wake,
            };

            let handle = self.tasks.spawn(task::fetch(
                Arc::clone(&self.shared),
                Arc::clone(&self.traffic),
                item.clone(),
                ticket,
            ));
            self.in_flight.insert(handle.id(), item);
        }
        None
    }

    async fn handle(&mut self, finished: Finished, item: Option<Item>) {
        let Finished { outcome, requested } = finished;
        if requested {
            self.stats.pages_requested += 1;
        }
        if let Some(item) = item
            && !matches!(outcome, Outcome::Deferred(_))
        {
            self.done.insert(item.url);
        }
        match outcome {
            Outcome::Page(result) => self.handle_page(*result).await,
            Outcome::NotModified(mut page) => {
                self.queue_links(&page.links, page.depth + 1, &page.url);
                self.emitted.insert(page.url.clone());
                page.sitemap_lastmod = self.lastmods.get(&page.url).cloned();
                self.emit(CrawlEvent::NotModified(page)).await;
            }
            Outcome::Skipped(skipped) => self.emit(CrawlEvent::Skipped(skipped)).await,
            Outcome::Failed(failed) => self.emit(CrawlEvent::Failed(failed)).await,
            Outcome::Deferred(item) => self.frontier.push(item),
        }
    }

    /// Queues the page's links, settles its identity against its canonical
    /// URL and emits it unless it is left out.
    async fn handle_page(&mut self, result: PageResult) {
        let PageResult { mut page, noindex, canonical_target, links_truncated } = result;
        if links_truncated {
            self.stats.link_lists_truncated += 1;
        }
        self.queue_links(&page.links, page.depth + 1, &page.final_url);

        if noindex {
            self.skip(page.requested_url, SkipReason::NoIndex).await;
            return;
        }
        if self.emitted.contains(&page.final_url) {
            let of = page.final_url.clone();
            self.skip(page.requested_url, SkipReason::Duplicate { of }).await;
            return;
        }
        if let Some(canonical) = canonical_target {
            if self.emitted.contains(&canonical) {
                self.skip(page.requested_url, SkipReason::Duplicate { of: canonical }).await;
                return;
            }
            // A canonical already fetched that did not become a page (it
            // redirects here, failed, or was skipped) cannot stand in for
            // this page.
            if !self.done.contains(&canonical) {
                if self.seen.insert(canonical.clone()) {
                    let referrer = Some(Arc::new(page.final_url.clone()));
                    let item = Item { url: canonical.clone(), depth: page.depth, referrer };
                    self.frontier.push(item);
                }
                self.skip(page.requested_url, SkipReason::Canonicalized { to: canonical }).await;
                return;
            }
        }

        self.emitted.insert(page.requested_url.clone());
        self.emitted.insert(page.final_url.clone());
        page.sitemap_lastmod = [&page.final_url, &page.requested_url]
            .into_iter()
            .find_map(|url| self.lastmods.get(url).cloned());
        page.url = page.final_url.clone();
        self.emit(CrawlEvent::Page(page)).await;
    }

    /// Queues the links of the page at `from` (fetched, or replayed for a
    /// 304).
    fn queue_links(&mut self, links: &[Url], depth: usize, from: &Url) {
        if depth > self.shared.config.max_depth {
            return;
        }
        let mut referrer: Option<Arc<Url>> = None;
        for url in links {
            if self.shared.scope.contains(url) && self.seen.insert(url.clone()) {
                let referrer = referrer.get_or_insert_with(|| Arc::new(from.clone()));
                let item = Item { url: url.clone(), depth, referrer: Some(Arc::clone(referrer)) };
                self.frontier.push(item);
            }
        }
    }

    async fn skip(&mut self, url: Url, reason: SkipReason) {
        self.emit(CrawlEvent::Skipped(SkippedPage { url, reason })).await;
    }

    /// A fetch task panicked or was aborted; its URL still gets an event.
    async fn task_died(&mut self, error: &tokio::task::JoinError) {
        warn!(%error, "fetch task ended abnormally");
        // Whether it sent a request is unknown; counting it keeps the cap.
        self.stats.pages_requested += 1;
        if let Some(item) = self.in_flight.remove(&error.id()) {
            self.done.insert(item.url.clone());
            let failed = FailedPage {
                url: item.url,
                error: error.to_string(),
                status: None,
                kind: FailKind::Transport,
                referrer: item.referrer.as_deref().cloned(),
            };
            self.emit(CrawlEvent::Failed(failed)).await;
        }
    }

    /// Sends an event, waiting for room in the channel; gives up on
    /// cancellation or when the receiver is gone.
    async fn emit(&mut self, event: CrawlEvent) {
        if self.stopped {
            return;
        }
        log_decision(&event);
        let tally = Tally::of(&event);
        let cancel = self.cancel.clone();
        tokio::select! {
            biased;
            () = cancel.cancelled() => self.stop_cancelled(),
            sent = self.events.send(event) => match sent {
                Ok(()) => self.stats.count(tally),
                Err(_) => {
                    info!("event receiver closed; stopping the crawl");
                    self.stats.consumer_gone = true;
                    self.stopped = true;
                }
            },
        }
    }

    fn stop_cancelled(&mut self) {
        if !self.stopped {
            info!("crawl cancelled");
        }
        self.stats.cancelled = true;
        self.stopped = true;
    }
}

fn log_decision(event: &CrawlEvent) {
    match event {
        CrawlEvent::Page(page) => {
            debug!(url = %page.url, depth = page.depth, bytes = page.bytes, "page")
        }
        CrawlEvent::NotModified(page) => debug!(url = %page.url, "not modified"),
        CrawlEvent::Skipped(skipped) => {
            debug!(url = %skipped.url, reason = %skipped.reason, "skipped")
        }
        CrawlEvent::Failed(failed) => debug!(url = %failed.url, error = %failed.error, "failed"),
    }
}
