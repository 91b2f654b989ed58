//! The run: crawl -> extract -> route -> sinks, as tasks joined by bounded
//! channels.
//!
//! ```text
//! crawler ─events─> dispatcher ─> extract tasks ─items─> sink loop ─> folder export
//!                   (routes 304s)  (blocking pool,        (inline)  └> Dify writes
//!                                   ≤ extract_workers)                 (≤ write_concurrency)
//! ```
//!
//! Every hand-off is bounded: the crawler awaits room in the events channel,
//! the dispatcher awaits a free extraction slot, extraction awaits room in
//! the items channel and the sink loop starts a Dify write only when fewer
//! than `write_concurrency` are running. A slow Dify therefore slows the
//! crawl instead of filling memory. The pages held between the crawler and
//! the sinks are counted ([`PipelineCounts::max_in_flight`]) against the
//! bound the sizes imply, `extract_workers + queue_capacity +
//! write_concurrency + 2` (the dispatcher and the sink loop each hold one).
//!
//! Problems with one page (fetch error, a Dify write that failed, even one
//! whose task panicked) are counted and listed in the [`RunReport`]; the
//! run goes on. Pages left out on purpose (robots.txt, too little content,
//! duplicates) are listed apart with their reason. A page answering 404 or
//! 410 is not a problem but a fact about the site (a broken link, or a page
//! removed since an earlier run): it is listed apart
//! ([`RunReport::gone`]), is never retried, and marks what the sinks stored
//! for it as prunable. A fatal sink error (key rejected, Dify unreachable,
//! state store broken, export folder unwritable) cancels the crawl and ends
//! the run with [`PipelineFailure`], which still carries the report.
//!
//! A run is *complete* ([`CrawlCounts::complete`]) only when the crawl
//! covered the site: no page limit hit, not cancelled, no fetch failure
//! other than 404/410 and no unreadable robots.txt. Only a complete run lets
//! the sinks prune pages for not having been seen; pages answering 404/410
//! can be pruned after any run.
//!
//! Cancellation (the binary fires the token on Ctrl-C) stops the crawler
//! from taking new URLs and the sink loop from starting new writes; writes
//! already sent are awaited so the state store records their outcome, the
//! export manifest is saved and the Dify sink flushes what it batched. The
//! report then says [`RunOutcome::Cancelled`].
//!
//! Progress goes to a [`Progress`] implementation the caller supplies; this
//! crate draws nothing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use page_extract::{ExtractOptions, Extracted};
use site_crawler::{
    CrawlConfig, CrawlError, CrawlEvent, CrawlStats, Crawler, FailedPage, FetchedPage,
};
use time::OffsetDateTime;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::dify_sink::{
    DEFAULT_WRITE_CONCURRENCY, DifySink, PlannedAction, RunEnd, SyncError, SyncOutcome,
    SyncSummary, UnsyncedStage,
};
use crate::export::{ExportError, ExportOutcome, FolderSink, Prune};
use crate::page::PageRecord;
#[cfg(doc)]
use crate::report::CrawlCounts;
use crate::report::{
    DifyCounts, PipelineCounts, ReportBuilder, RunOutcome, RunReport, SkippedPage, Stage,
};
use crate::route::Router;
use crate::state::{RunScope, StateError, StateStore, Validators as StoredValidators};

/// Default capacity of each channel between stages.
pub const DEFAULT_QUEUE_CAPACITY: usize = 32;

/// Default number of pages extracted at once: one per CPU.
pub fn default_extract_workers() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}

/// Sizes and switches of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineOptions {
    /// Capacity of each channel between stages. Default is
    /// [`DEFAULT_QUEUE_CAPACITY`].
    pub queue_capacity: usize,
    /// Pages extracted at once on the blocking pool. Default is
    /// [`default_extract_workers`].
    pub extract_workers: usize,
    /// Dify writes in flight; set it to the sink's
    /// [`DifySinkOptions::write_concurrency`](crate::dify_sink::DifySinkOptions::write_concurrency)
    /// (the sink caps its own writes too). Default is
    /// [`DEFAULT_WRITE_CONCURRENCY`].
    pub write_concurrency: usize,
    /// Delete exported files of gone pages (and, after a complete crawl, of
    /// pages not seen). Dify pruning is set in the sink's options. Default
    /// is `false`.
    pub prune: bool,
    /// The start URLs stand for the whole site, so a crawl that ends
    /// without hitting a limit saw every page and pages it missed may be
    /// pruned. `false` for runs over a chosen list of pages (`retry`).
    /// Default is `true`.
    pub covers_site: bool,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        PipelineOptions {
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            extract_workers: default_extract_workers(),
            write_concurrency: DEFAULT_WRITE_CONCURRENCY,
            prune: false,
            covers_site: true,
        }
    }
}

/// Counters for a progress display, sent after every page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProgressCounters {
    /// Pages the crawler handed over (fetched or not modified).
    pub fetched: u64,
    /// Pages every sink is done with.
    pub done: u64,
    /// Pages between the crawler and the sinks right now.
    pub in_flight: u64,
    /// Pages skipped (robots, too little content, ...).
    pub skipped: u64,
    /// Pages that failed.
    pub failed: u64,
}

/// Receives progress; the binary draws it.
pub trait Progress: Send + Sync {
    /// Called after each page, from the sink loop; keep it cheap.
    fn update(&self, counters: ProgressCounters);
}

/// A [`Progress`] that shows nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn update(&self, _counters: ProgressCounters) {}
}

/// Why a run could not start or had to stop.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// The crawl settings are invalid (start URL, pattern, limits).
    #[error("invalid crawl settings")]
    Crawl(#[source] CrawlError),
    /// Neither a Dify sink nor a folder was given.
    #[error("nothing to write to: configure Dify, a folder, or both")]
    NoSink,
    /// The state store could not be read before the crawl.
    #[error("reading the state store")]
    State(#[source] StateError),
    /// The Dify sink failed in a way every later page would share.
    #[error("syncing to dify")]
    Sync(#[source] SyncError),
    /// The export folder could not be written.
    #[error("exporting to the folder")]
    Export(#[source] ExportError),
}

/// A run that ended with a fatal error, with the report of what it did.
#[derive(Debug)]
pub struct PipelineFailure {
    /// What happened before the error.
    pub report: Box<RunReport>,
    /// The error.
    pub error: PipelineError,
}

impl std::fmt::Display for PipelineFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for PipelineFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.error)
    }
}

/// One crawl-and-sync run, configured and ready to start.
pub struct Pipeline {
    crawl: CrawlConfig,
    extract: Arc<ExtractOptions>,
    router: Arc<Router>,
    dify: Option<DifySink>,
    folder: Option<Arc<FolderSink>>,
    options: PipelineOptions,
    progress: Arc<dyn Progress>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("start_urls", &self.crawl.start_urls)
            .field("dify", &self.dify.is_some())
            .field("folder", &self.folder.as_ref().map(|f| f.dir().to_owned()))
            .field("options", &self.options)
            .finish()
    }
}

impl Pipeline {
    /// A run of `crawl`, extracting with `extract` and routing with
    /// `router`. Add at least one sink before [`Pipeline::run`].
    ///
    /// # Errors
    ///
    /// [`PipelineError::Crawl`] when the crawl settings are invalid, so a
    /// bad start URL is reported before anything else happens.
    pub fn new(
        crawl: CrawlConfig,
        extract: ExtractOptions,
        router: Router,
    ) -> Result<Pipeline, PipelineError> {
        Crawler::new(crawl.clone()).map_err(PipelineError::Crawl)?;
        Ok(Pipeline {
            crawl,
            extract: Arc::new(extract),
            router: Arc::new(router),
            dify: None,
            folder: None,
            options: PipelineOptions::default(),
            progress: Arc::new(NoProgress),
        })
    }

    /// Syncs pages to Dify through `sink`. Default: no Dify.
    #[must_use]
    pub fn dify(mut self, sink: DifySink) -> Pipeline {
        self.dify = Some(sink);
        self
    }

    /// Exports pages to `folder`. Default: no export.
    #[must_use]
    pub fn folder(mut self, folder: FolderSink) -> Pipeline {
        self.folder = Some(Arc::new(folder));
        self
    }

    /// Sizes and switches. Default is [`PipelineOptions::default`].
    #[must_use]
    pub fn options(mut self, options: PipelineOptions) -> Pipeline {
        self.options = options;
        self
    }

    /// Where progress goes. Default is [`NoProgress`].
    #[must_use]
    pub fn progress(mut self, progress: Arc<dyn Progress>) -> Pipeline {
        self.progress = progress;
        self
    }

    /// Runs the crawl to its end, cancellation or a fatal error.
    ///
    /// # Errors
    ///
    /// [`PipelineFailure`] for a fatal error; per-page problems are in the
    /// report instead.
    pub async fn run(mut self, cancel: CancellationToken) -> Result<RunReport, PipelineFailure> {
        let shared = Arc::new(Shared::new(self.progress.clone(), self.in_flight_bound()));
        let crawler = match self.prepare() {
            Ok(crawler) => crawler,
            Err(error) => return Err(shared.fail(error)),
        };

        let stop = cancel.child_token();
        let (event_tx, event_rx) = mpsc::channel(self.options.queue_capacity);
        let (item_tx, item_rx) = mpsc::channel(self.options.queue_capacity);
        let crawl_stop = stop.clone();
        let crawl = tokio::spawn(async move { crawler.run(event_tx, crawl_stop).await });
        let dispatch = tokio::spawn(dispatch(event_rx, item_tx, self.extraction(), shared.clone()));

        let sinks = Sinks {
            dify: self.dify.clone(),
            folder: self.folder.clone(),
            write_concurrency: self.options.write_concurrency.max(1),
        };
        let fatal = sink_loop(item_rx, &sinks, &shared, &stop).await;
        if fatal.is_some() {
            stop.cancel();
        }
        let stats =
            crawl.await.inspect_err(|join| tracing::error!(error = %join, "crawler failed"));
        let _ = dispatch.await;

        let fatal = self.finish_sinks(stats.ok(), fatal, &cancel, &sinks, &shared).await;
        // Read after the sinks finished: Ctrl-C during pruning or the wait
        // for indexing cuts them short, and the run is then cancelled.
        let cancelled = cancel.is_cancelled();
        conclude(&shared, fatal, cancelled)
    }

    /// Checks there is somewhere to write, loads validators and builds the
    /// crawler.
    fn prepare(&mut self) -> Result<Crawler, PipelineError> {
        if self.dify.is_none() && self.folder.is_none() {
            return Err(PipelineError::NoSink);
        }
        self.load_validators()?;
        let crawler = Crawler::new(self.crawl.clone()).map_err(PipelineError::Crawl)?;
        tracing::info!(
            start_urls = ?self.crawl.start_urls,
            dify = self.dify.is_some(),
            folder = ?self.folder.as_ref().map(|f| f.dir().display().to_string()),
            "run starting"
        );
        Ok(crawler)
    }

    fn extraction(&self) -> Extraction {
        Extraction {
            options: self.extract.clone(),
            router: self.router.clone(),
            workers: Arc::new(Semaphore::new(self.options.extract_workers.max(1))),
        }
    }

    fn in_flight_bound(&self) -> u64 {
        let writes = if self.dify.is_some() { self.options.write_concurrency.max(1) } else { 0 };
        (self.options.extract_workers.max(1) + self.options.queue_capacity + writes + 2) as u64
    }

    /// Fills the crawl's validators so unchanged pages answer 304, with
    /// the links the crawler follows for them. A page qualifies only when
    /// every sink already has it and its links are known: Dify fully synced
    /// (the store's rule) into the knowledge base it routes to now and,
    /// with a folder, a file in the folder.
    fn load_validators(&mut self) -> Result<(), PipelineError> {
        let from_store = match &self.dify {
            Some(sink) => Some(same_route(sink.store(), &self.router)?),
            None => None,
        };
        let from_folder = self.folder.as_ref().map(|f| f.validators());

        let known: HashMap<String, StoredValidators> = match (from_store, from_folder) {
            (Some(store), Some(folder)) => {
                store.into_iter().filter(|(url, _)| folder.contains_key(url)).collect()
            }
            (Some(known), None) | (None, Some(known)) => known,
            (None, None) => HashMap::new(),
        };
        let validators: HashMap<String, site_crawler::Validators> =
            known.into_iter().map(|(url, v)| (url, crawler_validators(v))).collect();
        tracing::debug!(pages = validators.len(), "conditional requests prepared");
        self.crawl.validators = validators;
        Ok(())
    }

    /// Lets each sink finish (flush, prune, save); returns the first fatal
    /// error of the run, if any.
    async fn finish_sinks(
        &self,
        stats: Option<CrawlStats>,
        mut fatal: Option<PipelineError>,
        cancel: &CancellationToken,
        sinks: &Sinks,
        shared: &Shared,
    ) -> Option<PipelineError> {
        let cancelled = cancel.is_cancelled() || stats.as_ref().is_some_and(|s| s.cancelled);
        let complete = fatal.is_none()
            && !cancelled
            && self.options.covers_site
            && stats.as_ref().is_some_and(|stats| shared.saw_whole_site(stats));
        shared.record_crawl(stats.as_ref(), complete);

        if fatal.is_none()
            && let Some(sink) = &sinks.dify
        {
            let end = RunEnd {
                crawl_complete: complete,
                scope: Some(RunScope::of_crawl(&self.crawl)),
                cancel: Some(cancel.clone()),
            };
            match sink.finish_with(end).await {
                Ok(summary) => shared.record_sync_summary(&summary),
                Err(error) => fatal = Some(PipelineError::Sync(error)),
            }
        }
        if let Some(folder) = &sinks.folder {
            let prune = match (self.options.prune && !cancelled && fatal.is_none(), complete) {
                (false, _) => Prune::Nothing,
                (true, false) => Prune::Gone,
                (true, true) => Prune::GoneAndUnseen,
            };
            if let Err(error) = finish_folder(folder.clone(), prune, complete, shared).await {
                fatal = fatal.or(Some(error));
            }
        }
        fatal
    }
}

/// Saves the export manifest (pruning as asked) and records the counts.
async fn finish_folder(
    folder: Arc<FolderSink>,
    prune: Prune,
    complete: bool,
    shared: &Shared,
) -> Result<(), PipelineError> {
    match tokio::task::spawn_blocking(move || folder.finish(prune, complete)).await {
        Ok(Ok(counts)) => shared.lock().report_mut().export = Some(counts),
        Ok(Err(error)) => return Err(PipelineError::Export(error)),
        Err(join) => tracing::error!(error = %join, "saving the export manifest failed"),
    }
    Ok(())
}

/// The report, or the fatal error with the report.
fn conclude(
    shared: &Shared,
    fatal: Option<PipelineError>,
    cancelled: bool,
) -> Result<RunReport, PipelineFailure> {
    let outcome = match (&fatal, cancelled) {
        (Some(error), _) => RunOutcome::Failed { error: error_chain(error) },
        (None, true) => RunOutcome::Cancelled,
        (None, false) => RunOutcome::Completed,
    };
    let report = shared.finish(outcome);
    tracing::info!(
        pages = report.crawl.fetched,
        failed = report.failed_pages(),
        secs = report.duration_secs,
        "run finished"
    );
    match fatal {
        Some(error) => Err(PipelineFailure { report: Box::new(report), error }),
        None => Ok(report),
    }
}

/// Validators of synced pages whose stored knowledge base is the one the
/// router picks now. A 304 never reaches a write, so a page whose route
/// changed (a `[[route]]` rule or `--kb` edited) must be fetched in full to
/// be moved into its new knowledge base.
fn same_route(
    store: &StateStore,
    router: &Router,
) -> Result<HashMap<String, StoredValidators>, PipelineError> {
    let mut rerouted = 0_u64;
    let kept = store
        .validators_for_synced_if(|url, knowledge_base| {
            let same = Url::parse(url).is_ok_and(|parsed| router.route(&parsed) == knowledge_base);
            rerouted += u64::from(!same);
            same
        })
        .map_err(PipelineError::State)?;
    if rerouted > 0 {
        tracing::info!(
            pages = rerouted,
            "routing changed: fetching these pages in full to move them"
        );
    }
    Ok(kept)
}

fn crawler_validators(stored: StoredValidators) -> site_crawler::Validators {
    let StoredValidators { etag, last_modified, links } = stored;
    site_crawler::Validators { etag, last_modified, links }
}

fn dify_counts(metrics: &dify_client::MetricsSnapshot) -> DifyCounts {
    DifyCounts {
        requests_total: metrics.requests_total,
        requests_by_endpoint: metrics
            .requests
            .iter()
            .map(|(endpoint, by_status)| (endpoint.clone(), by_status.values().sum()))
            .collect(),
        connections_opened: metrics.connections_opened,
        retries: metrics.retries,
        breaker_trips: metrics.breaker_trips,
        rate_limit_pauses: metrics.rate_limit_pauses,
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// State the stages share. The report sits behind a std mutex: every
/// update is a few counter bumps and the lock is never held across an
/// `.await`.
struct Shared {
    report: Mutex<ReportBuilder>,
    progress: Arc<dyn Progress>,
    fetched: AtomicU64,
    done: AtomicU64,
    skipped: AtomicU64,
    failed: AtomicU64,
    /// Fetch failures other than 404/410 (see [`Shared::saw_whole_site`]).
    fetch_errors: AtomicU64,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    in_flight_bound: u64,
}

impl Shared {
    fn new(progress: Arc<dyn Progress>, in_flight_bound: u64) -> Shared {
        Shared {
            report: Mutex::new(ReportBuilder::new()),
            progress,
            fetched: AtomicU64::new(0),
            done: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            fetch_errors: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            max_in_flight: AtomicU64::new(0),
            in_flight_bound,
        }
    }

    fn lock(&self) -> MutexGuard<'_, ReportBuilder> {
        // Counters stay meaningful after a panic elsewhere; keep reporting.
        self.report.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A page entered the pipeline (the dispatcher took it off the crawler).
    fn entered(&self) {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
    }

    /// Every sink is done with a page.
    fn left(&self) {
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.done.fetch_add(1, Ordering::Relaxed);
        self.progress.update(self.counters());
    }

    fn counters(&self) -> ProgressCounters {
        ProgressCounters {
            fetched: self.fetched.load(Ordering::Relaxed),
            done: self.done.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }

    fn skip(&self, page: SkippedPage) {
        self.skipped.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(url = page.url, reason = page.reason, detail = page.detail, "page skipped");
        self.lock().skipped(page);
    }

    fn problem(&self, url: &Url, stage: Stage, label: &str, reason: &str) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(%url, stage = stage.as_str(), reason, "page failed");
        self.lock().problem(url.as_str(), stage, label, reason);
    }

    /// Whether the crawl saw every page in scope, so a page it did not see
    /// is really gone from the site. A limit, a fetch that failed for any
    /// reason but 404/410, or a host whose robots.txt could not be read
    /// means links may have been missed: a home page answering 500 must
    /// not get the rest of the site pruned.
    fn saw_whole_site(&self, stats: &CrawlStats) -> bool {
        !stats.page_limit_reached
            && !stats.consumer_gone
            && self.fetch_errors.load(Ordering::SeqCst) == 0
    }

    fn record_crawl(&self, stats: Option<&CrawlStats>, complete: bool) {
        let mut report = self.lock();
        let crawl = &mut report.report_mut().crawl;
        if let Some(stats) = stats {
            crawl.fetched = stats.pages;
            crawl.not_modified = stats.not_modified;
            crawl.bytes_fetched = stats.bytes;
        }
        crawl.complete = complete;
        report.report_mut().pipeline = PipelineCounts {
            max_in_flight: self.max_in_flight.load(Ordering::SeqCst),
            in_flight_bound: self.in_flight_bound,
        };
    }

    /// Takes the sink's own per knowledge base counters (they include
    /// pruning and indexing, which happen at the end, and a dry run's
    /// plans) and its metrics. Every page the sink reports as not synced
    /// (metadata refused or queued, document lost, indexing failed or
    /// unconfirmed) becomes a listed problem, so the run exits 2.
    fn record_sync_summary(&self, summary: &SyncSummary) {
        let mut report = self.lock();
        report.report_mut().dry_run = summary.dry_run;
        report.report_mut().dify = Some(dify_counts(&summary.dify));
        for (kb, s) in &summary.knowledge_bases {
            let planned = |action: &str| s.planned.get(action).copied().unwrap_or(0);
            let counts = report.knowledge_base(kb);
            counts.new = s.created + planned("create");
            counts.changed = s.updated + planned("update");
            counts.unchanged = s.unchanged
                + s.metadata_updated
                + planned("unchanged")
                + planned("update_metadata");
            counts.failed = s.failed + s.unsynced.len() as u64 + s.indexing_failed.len() as u64;
            counts.blocked = s.blocked + planned("blocked");
            counts.pruned = s.pruned;
            for failure in &s.indexing_failed {
                report.problem(&failure.url, Stage::Index, "indexing", &failure.error);
            }
            for page in &s.unsynced {
                let (stage, label) = match page.stage {
                    UnsyncedStage::Metadata => (Stage::Sync, "metadata"),
                    UnsyncedStage::Index => (Stage::Index, "indexing_unfinished"),
                };
                report.problem(&page.url, stage, label, &page.reason);
            }
        }
    }

    fn fail(&self, error: PipelineError) -> PipelineFailure {
        let outcome = RunOutcome::Failed { error: error_chain(&error) };
        PipelineFailure { report: Box::new(self.finish(outcome)), error }
    }

    fn finish(&self, outcome: RunOutcome) -> RunReport {
        let builder = std::mem::take(&mut *self.lock());
        builder.finish(outcome)
    }
}

/// What flows from extraction to the sinks.
enum Item {
    Page(Box<PageRecord>),
    NotModified {
        url: Url,
        knowledge_base: String,
    },
    Failed {
        url: Url,
        label: String,
        error: String,
    },
    /// The site answered 404 or 410; `referrer` has the broken link.
    Gone {
        url: Url,
        status: u16,
        referrer: Option<Url>,
    },
    Skipped(SkippedPage),
}

/// What extraction needs, cloned into each task.
#[derive(Clone)]
struct Extraction {
    options: Arc<ExtractOptions>,
    router: Arc<Router>,
    workers: Arc<Semaphore>,
}

/// Takes crawl events, turns pages into [`PageRecord`]s on the blocking
/// pool (at most `workers` at once) and forwards everything to the sinks.
async fn dispatch(
    mut events: mpsc::Receiver<CrawlEvent>,
    items: mpsc::Sender<Item>,
    extraction: Extraction,
    shared: Arc<Shared>,
) {
    let mut tasks = JoinSet::new();
    while let Some(event) = events.recv().await {
        shared.entered();
        if matches!(event, CrawlEvent::Page(_) | CrawlEvent::NotModified(_)) {
            shared.fetched.fetch_add(1, Ordering::Relaxed);
        }
        let item = match event {
            CrawlEvent::Page(page) => {
                let Ok(permit) = extraction.workers.clone().acquire_owned().await else { break };
                let (extraction, items) = (extraction.clone(), items.clone());
                tasks.spawn(async move {
                    let item = extract_page(page, &extraction).await;
                    let _ = items.send(item).await;
                    drop(permit);
                });
                reap(&mut tasks);
                continue;
            }
            CrawlEvent::NotModified(page) => {
                let knowledge_base = extraction.router.route(&page.url);
                Item::NotModified { url: page.url, knowledge_base }
            }
            CrawlEvent::Skipped(page) => Item::Skipped(SkippedPage {
                url: page.url.to_string(),
                reason: page.reason.as_str().into(),
                detail: page.reason.to_string(),
                words: None,
            }),
            CrawlEvent::Failed(page) => failed_item(page),
        };
        if items.send(item).await.is_err() {
            break;
        }
    }
    while tasks.join_next().await.is_some() {}
}

/// Failures are labelled by HTTP status when there is one (`http_500`),
/// else by kind (`timeout`); 404 and 410 mean the page is gone.
fn failed_item(page: FailedPage) -> Item {
    match page.status {
        Some(status @ (404 | 410)) => Item::Gone { url: page.url, status, referrer: page.referrer },
        status => Item::Failed {
            label: status.map_or(page.kind.as_str().to_owned(), |s| format!("http_{s}")),
            url: page.url,
            error: page.error,
        },
    }
}

/// Drops finished extraction tasks so the set does not grow with the crawl.
fn reap(tasks: &mut JoinSet<()>) {
    while tasks.try_join_next().is_some() {}
}

async fn extract_page(page: FetchedPage, extraction: &Extraction) -> Item {
    let options = extraction.options.clone();
    let url = page.url.clone();
    let result = tokio::task::spawn_blocking(move || {
        let extracted = page_extract::extract(&page.html, &page.url, &options);
        (page, extracted)
    })
    .await;

    match result {
        Ok((page, Ok(extracted))) => {
            let knowledge_base = extraction.router.route(&page.url);
            Item::Page(Box::new(page_record(page, extracted, knowledge_base)))
        }
        Ok((page, Err(refused))) => {
            let words = match &refused {
                page_extract::ExtractError::NotEnoughContent { words, .. } => Some(*words as u64),
                _ => None,
            };
            Item::Skipped(SkippedPage {
                url: page.url.to_string(),
                reason: refused.skip_reason().to_owned(),
                detail: refused.to_string(),
                words,
            })
        }
        Err(join) => Item::Failed {
            url,
            label: "extract_panic".into(),
            error: format!("extraction failed: {join}"),
        },
    }
}

fn page_record(page: FetchedPage, extracted: Extracted, knowledge_base: String) -> PageRecord {
    PageRecord {
        content_hash: PageRecord::hash_content(&extracted.markdown),
        url: page.url,
        knowledge_base,
        title: extracted.title,
        description: extracted.description,
        language: extracted.language,
        published: extracted.published,
        modified: extracted.modified,
        word_count: extracted.word_count as u64,
        markdown: extracted.markdown,
        etag: page.etag,
        last_modified: page.last_modified,
        sitemap_lastmod: page.sitemap_lastmod,
        crawled_at: OffsetDateTime::from(page.fetched_at.max(SystemTime::UNIX_EPOCH)),
        links: page.links.iter().map(Url::to_string).collect(),
    }
}

/// The sinks of a run.
struct Sinks {
    dify: Option<DifySink>,
    folder: Option<Arc<FolderSink>>,
    write_concurrency: usize,
}

/// The outcome of one Dify write, with what is needed to count it.
struct WriteDone {
    url: Url,
    knowledge_base: String,
    /// `Err` when the write task panicked (or was aborted).
    result: Result<Result<SyncOutcome, SyncError>, tokio::task::JoinError>,
}

/// Dify writes in flight, with the page each one is for, so a write task
/// that panics is still counted against its page.
#[derive(Default)]
struct Writes {
    tasks: JoinSet<Result<SyncOutcome, SyncError>>,
    pages: HashMap<tokio::task::Id, (Url, String)>,
}

impl Writes {
    fn len(&self) -> usize {
        self.tasks.len()
    }

    fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    fn spawn<F>(&mut self, url: Url, knowledge_base: String, write: F)
    where
        F: Future<Output = Result<SyncOutcome, SyncError>> + Send + 'static,
    {
        let task = self.tasks.spawn(write);
        self.pages.insert(task.id(), (url, knowledge_base));
    }

    /// The next write to end, `None` when none is running.
    async fn next(&mut self) -> Option<WriteDone> {
        loop {
            let (id, result) = match self.tasks.join_next_with_id().await? {
                Ok((id, result)) => (id, Ok(result)),
                Err(join) => (join.id(), Err(join)),
            };
            // Every task is registered as it is spawned.
            if let Some((url, knowledge_base)) = self.pages.remove(&id) {
                return Some(WriteDone { url, knowledge_base, result });
            }
        }
    }
}

/// Hands items to the sinks until the items end, `stop` fires or a sink
/// fails fatally (returned).
async fn sink_loop(
    mut items: mpsc::Receiver<Item>,
    sinks: &Sinks,
    shared: &Arc<Shared>,
    stop: &CancellationToken,
) -> Option<PipelineError> {
    let limit = sinks.write_concurrency;
    let mut writes = Writes::default();
    let mut fatal = None;

    while fatal.is_none() {
        let item = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            Some(done) = writes.next(), if !writes.is_empty() => {
                fatal = written(done, sinks, shared);
                continue;
            }
            item = items.recv(), if writes.len() < limit => match item {
                Some(item) => item,
                None => break,
            },
        };
        fatal = handle(item, sinks, shared, &mut writes).await;
    }

    // Writes already sent are awaited, whatever ended the loop, so the
    // store records their outcome before the run ends.
    while let Some(done) = writes.next().await {
        let error = written(done, sinks, shared);
        fatal = fatal.or(error);
    }
    fatal
}

/// Handles one item; Dify writes are started on `writes`.
async fn handle(
    item: Item,
    sinks: &Sinks,
    shared: &Arc<Shared>,
    writes: &mut Writes,
) -> Option<PipelineError> {
    match item {
        Item::Page(page) => return handle_page(*page, sinks, shared, writes).await,
        Item::NotModified { url, knowledge_base } => {
            if let Some(folder) = &sinks.folder {
                folder.not_modified(&url);
            }
            if let Some(sink) = &sinks.dify {
                if let Err(error) = sink.not_modified(&url, &knowledge_base) {
                    shared.left();
                    return Some(PipelineError::Sync(error));
                }
                shared.lock().knowledge_base(&knowledge_base).unchanged += 1;
            }
        }
        Item::Failed { url, label, error } => {
            if let Err(error) = fetch_failed(&url, &label, &error, sinks, shared) {
                shared.left();
                return Some(error);
            }
        }
        Item::Gone { url, status, referrer } => {
            if let Err(error) = page_gone(&url, status, referrer.as_ref(), sinks, shared) {
                shared.left();
                return Some(error);
            }
        }
        Item::Skipped(page) => shared.skip(page),
    }
    shared.left();
    None
}

/// Records a page whose fetch failed for a reason other than 404/410.
fn fetch_failed(
    url: &Url,
    label: &str,
    error: &str,
    sinks: &Sinks,
    shared: &Shared,
) -> Result<(), PipelineError> {
    shared.fetch_errors.fetch_add(1, Ordering::SeqCst);
    shared.problem(url, Stage::Fetch, label, error);
    if let Some(folder) = &sinks.folder {
        folder.failed(url);
    }
    if let Some(sink) = &sinks.dify {
        sink.record_failure(url, Stage::Fetch.as_str(), error).map_err(PipelineError::Sync)?;
    }
    Ok(())
}

/// Records a page the site answered 404 or 410 for, so the sinks can prune
/// what they hold of it.
fn page_gone(
    url: &Url,
    status: u16,
    referrer: Option<&Url>,
    sinks: &Sinks,
    shared: &Shared,
) -> Result<(), PipelineError> {
    let linked_from = referrer.map(Url::as_str);
    tracing::info!(%url, status, linked_from, "page gone (broken link or removed page)");
    shared.lock().gone(url.as_str(), status, linked_from);
    if let Some(folder) = &sinks.folder {
        folder.gone(url);
    }
    if let Some(sink) = &sinks.dify {
        sink.page_gone(url).map_err(PipelineError::Sync)?;
    }
    Ok(())
}

async fn handle_page(
    page: PageRecord,
    sinks: &Sinks,
    shared: &Arc<Shared>,
    writes: &mut Writes,
) -> Option<PipelineError> {
    shared.lock().report_mut().crawl.extracted += 1;
    let page = Arc::new(page);

    if let Some(folder) = &sinks.folder {
        let (folder, record) = (folder.clone(), page.clone());
        match tokio::task::spawn_blocking(move || folder.write(&record)).await {
            Ok(Ok(outcome)) => export_written(outcome, shared),
            Ok(Err(error)) => {
                shared.problem(&page.url, Stage::Export, "export", &error_chain(&error));
            }
            Err(join) => shared.problem(&page.url, Stage::Export, "export", &join.to_string()),
        }
    }

    match &sinks.dify {
        Some(sink) => {
            let sink = sink.clone();
            let (url, knowledge_base) = (page.url.clone(), page.knowledge_base.clone());
            writes.spawn(url, knowledge_base, async move { sink.submit(&page).await });
        }
        None => shared.left(),
    }
    None
}

fn export_written(outcome: ExportOutcome, shared: &Shared) {
    tracing::debug!(?outcome, "page exported");
    shared.lock().report_mut().crawl.exported += 1;
}

/// Counts a finished Dify write; returns the error when it is fatal.
fn written(done: WriteDone, sinks: &Sinks, shared: &Shared) -> Option<PipelineError> {
    let WriteDone { url, knowledge_base, result } = done;
    let fatal = match result {
        Ok(Ok(outcome)) => {
            count_outcome(&url, &knowledge_base, outcome, shared);
            None
        }
        Ok(Err(error)) if error.is_fatal() => Some(PipelineError::Sync(error)),
        Ok(Err(error)) => {
            shared.lock().knowledge_base(&knowledge_base).failed += 1;
            shared.problem(&url, Stage::Sync, "sync", &error_chain(&error));
            None
        }
        Err(join) => write_task_failed(&url, &knowledge_base, &join, sinks, shared),
    };
    shared.left();
    fatal
}

/// A write task that panicked: a bug, but one page's. It is counted and
/// listed like a failed write, and recorded in the store so `retry`
/// re-attempts it; the run goes on.
fn write_task_failed(
    url: &Url,
    knowledge_base: &str,
    join: &tokio::task::JoinError,
    sinks: &Sinks,
    shared: &Shared,
) -> Option<PipelineError> {
    let reason = format!("the dify write stopped unexpectedly: {join}");
    tracing::error!(%url, error = %join, "dify write task failed");
    shared.lock().knowledge_base(knowledge_base).failed += 1;
    shared.problem(url, Stage::Sync, "sync_panic", &reason);
    let sink = sinks.dify.as_ref()?;
    sink.record_failure(url, Stage::Sync.as_str(), &reason).err().map(PipelineError::Sync)
}

fn count_outcome(url: &Url, knowledge_base: &str, outcome: SyncOutcome, shared: &Shared) {
    {
        let mut report = shared.lock();
        report.report_mut().crawl.synced += 1;
        let counts = report.knowledge_base(knowledge_base);
        match &outcome {
            SyncOutcome::Created | SyncOutcome::DryRun(PlannedAction::Create) => counts.new += 1,
            SyncOutcome::Updated | SyncOutcome::DryRun(PlannedAction::Update) => {
                counts.changed += 1;
            }
            SyncOutcome::Blocked { .. } => counts.blocked += 1,
            _ => counts.unchanged += 1,
        }
    }
    if let SyncOutcome::Blocked { reason } = outcome {
        shared.problem(url, Stage::Sync, "blocked", &reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(path: &str) -> Url {
        Url::parse(&format!("https://x.example/{path}")).unwrap()
    }

    #[tokio::test]
    async fn a_panicking_write_is_a_listed_failure_of_its_page() {
        let shared = Shared::new(Arc::new(NoProgress), 10);
        let sinks = Sinks { dify: None, folder: None, write_concurrency: 2 };
        let mut writes = Writes::default();
        writes.spawn(url("ok"), "Docs".into(), async { Ok(SyncOutcome::Created) });
        writes.spawn(url("boom"), "Docs".into(), async {
            if url("boom").path() == "/boom" {
                panic!("write bug");
            }
            Ok(SyncOutcome::Created)
        });
        for _ in 0..2 {
            shared.entered();
        }

        while let Some(done) = writes.next().await {
            assert!(written(done, &sinks, &shared).is_none(), "a panic is not fatal");
        }
        assert!(writes.is_empty() && writes.pages.is_empty());

        let report = shared.finish(RunOutcome::Completed);
        assert_eq!(report.failed_pages(), 1);
        assert_eq!(report.problems[0].url, "https://x.example/boom");
        assert_eq!(report.problems[0].stage, Stage::Sync);
        assert!(report.problems[0].reason.contains("write bug"), "{:?}", report.problems);
        assert_eq!(report.crawl.failed["sync_panic"], 1);
        assert_eq!(
            (report.knowledge_bases["Docs"].new, report.knowledge_bases["Docs"].failed),
            (1, 1)
        );
        assert_eq!(report.crawl.synced, 1);
    }
}
