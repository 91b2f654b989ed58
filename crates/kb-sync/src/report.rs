//! What one run did, as data: counters, per knowledge base outcomes, Dify
//! traffic and the pages that had problems.
//!
//! [`RunReport`] is plain serde data so the binary can print a summary from
//! it and write it verbatim as JSON (`--report PATH`); nothing in here knows
//! about terminals. The pipeline fills it through [`ReportBuilder`], which
//! also bounds the page lists: a site where every page fails must not grow
//! the report without limit, so past [`MAX_LISTED_PROBLEMS`] problems (and
//! past [`MAX_LISTED_SKIPPED`] skipped pages) are only counted.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Problems listed one by one in a report; later ones are only counted.
pub const MAX_LISTED_PROBLEMS: usize = 10_000;

/// Skipped pages listed one by one in a report; later ones are only
/// counted. Lower than for problems: a skip is expected (robots rules,
/// duplicates) and a large site can have many.
pub const MAX_LISTED_SKIPPED: usize = 1_000;

/// Everything one crawl-and-sync run did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunReport {
    /// When the run started, RFC 3339 in UTC.
    pub started_at: String,
    /// Wall time of the run in seconds.
    pub duration_secs: f64,
    /// Pages the crawl fetched or found unchanged (304), per second of
    /// wall time.
    pub pages_per_second: f64,
    /// How the run ended.
    pub outcome: RunOutcome,
    /// True when Dify writes were only planned (`--dry-run`).
    pub dry_run: bool,
    /// What the crawl and extraction stages saw.
    pub crawl: CrawlCounts,
    /// Per knowledge base outcomes, keyed by knowledge base name.
    pub knowledge_bases: BTreeMap<String, KnowledgeBaseCounts>,
    /// Folder export outcomes, when a folder was written.
    pub export: Option<ExportCounts>,
    /// Dify traffic, when Dify was used.
    pub dify: Option<DifyCounts>,
    /// Queue depth figures that show the pipeline stayed bounded.
    pub pipeline: PipelineCounts,
    /// Pages that failed, first [`MAX_LISTED_PROBLEMS`] of them.
    pub problems: Vec<Problem>,
    /// Problems counted but not listed because the list was full.
    pub problems_not_listed: u64,
    /// Pages the site answered 404 or 410 for, first
    /// [`MAX_LISTED_PROBLEMS`] of them; [`CrawlCounts::gone`] counts all.
    pub gone: Vec<GonePage>,
    /// Pages left out, first [`MAX_LISTED_SKIPPED`] of them;
    /// [`CrawlCounts::skipped`] counts all by reason.
    pub skipped: Vec<SkippedPage>,
    /// Skipped pages counted but not listed because the list was full.
    pub skipped_not_listed: u64,
}

/// How a run ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// The crawl ran to its end (or its limits) and every sink finished.
    #[default]
    Completed,
    /// The run was cancelled (Ctrl-C); state was saved.
    Cancelled,
    /// A fatal error (wrong key, Dify unreachable) stopped the run.
    Failed {
        /// The error, with its causes.
        error: String,
    },
}

/// Crawl and extraction counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CrawlCounts {
    /// HTML pages fetched with a body.
    pub fetched: u64,
    /// Pages the server answered 304 Not Modified for.
    pub not_modified: u64,
    /// Pages turned into Markdown.
    pub extracted: u64,
    /// Pages written to (or confirmed unchanged in) the export folder.
    pub exported: u64,
    /// Pages created, updated or confirmed unchanged in Dify.
    pub synced: u64,
    /// Pages skipped, by reason (robots, too little content, ...).
    pub skipped: BTreeMap<String, u64>,
    /// Pages that failed, by reason.
    pub failed: BTreeMap<String, u64>,
    /// Pages the site answered 404 or 410 for: broken links, or pages
    /// removed since an earlier run. Not failures, since there is nothing
    /// to retry; pruning removes what earlier runs stored for them.
    pub gone: u64,
    /// Response body bytes fetched.
    pub bytes_fetched: u64,
    /// True when the crawl saw every page in scope (no limit hit, not
    /// cancelled); only then is pruning by absence safe.
    pub complete: bool,
}

/// What happened to the pages of one knowledge base.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KnowledgeBaseCounts {
    /// Documents created.
    pub new: u64,
    /// Documents whose content changed and was resent.
    pub changed: u64,
    /// Pages whose content was already there (or answered 304).
    pub unchanged: u64,
    /// Pages that failed to sync.
    pub failed: u64,
    /// Pages left alone because a user disabled, archived or renamed their
    /// document in Dify.
    pub blocked: u64,
    /// Documents removed or disabled because their page is gone.
    pub pruned: u64,
}

/// Folder export counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExportCounts {
    /// The export folder.
    pub dir: String,
    /// Files written for pages not in the folder before.
    pub new: u64,
    /// Files rewritten because their page changed.
    pub changed: u64,
    /// Files left alone because their page did not change.
    pub unchanged: u64,
    /// Manifest lines of pages not seen in this run (kept).
    pub stale: u64,
    /// Files deleted because their page is gone (`--prune`).
    pub pruned: u64,
}

/// Dify traffic from the client's metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DifyCounts {
    /// Requests sent, by endpoint (route template).
    pub requests_by_endpoint: BTreeMap<String, u64>,
    /// All requests sent.
    pub requests_total: u64,
    /// TCP connections the client opened.
    pub connections_opened: u64,
    /// Requests sent again after a retryable failure.
    pub retries: u64,
    /// Times the circuit breaker opened.
    pub breaker_trips: u64,
    /// Pauses forced by Dify Cloud's rate limit.
    pub rate_limit_pauses: u64,
}

/// Figures that show the pipeline's queues stayed within their bounds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PipelineCounts {
    /// Most pages held between the crawler and the sinks at any instant.
    pub max_in_flight: u64,
    /// The bound the queue sizes and worker counts put on that figure.
    pub in_flight_bound: u64,
}

/// One page that failed, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The page URL.
    pub url: String,
    /// The stage that failed.
    pub stage: Stage,
    /// Why, in words.
    pub reason: String,
}

/// A page the site answered 404 or 410 for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GonePage {
    /// The page URL.
    pub url: String,
    /// The HTTP status, 404 or 410.
    pub status: u16,
    /// The page whose link led here, when a link did (not for start and
    /// sitemap URLs).
    pub linked_from: Option<String>,
}

/// A page left out of the export and the sync, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedPage {
    /// The page URL.
    pub url: String,
    /// The reason's stable label, as counted in [`CrawlCounts::skipped`]
    /// (`robots_disallowed`, `too_little_content`, ...).
    pub reason: String,
    /// The reason in words, e.g. "duplicate of https://...".
    pub detail: String,
    /// Words of main content found, for `too_little_content`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub words: Option<u64>,
}

/// The pipeline stage a problem happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Fetching the page.
    Fetch,
    /// Turning HTML into Markdown.
    Extract,
    /// Writing the export folder.
    Export,
    /// Writing to Dify.
    Sync,
    /// Dify indexing the document.
    Index,
}

impl Stage {
    /// The stage's name as it appears in reports and the state store.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Fetch => "fetch",
            Stage::Extract => "extract",
            Stage::Export => "export",
            Stage::Sync => "sync",
            Stage::Index => "index",
        }
    }
}

impl RunReport {
    /// Pages that failed in any stage (listed or only counted).
    pub fn failed_pages(&self) -> u64 {
        self.problems.len() as u64 + self.problems_not_listed
    }

    /// Writes the report as pretty JSON to `path`, replacing the file.
    ///
    /// # Errors
    ///
    /// Any I/O error creating or writing the file.
    pub fn write_json(&self, path: &Path) -> io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        std::fs::write(path, json)
    }
}

/// Accumulates a [`RunReport`] while the pipeline runs.
#[derive(Debug)]
pub struct ReportBuilder {
    report: RunReport,
    started: std::time::Instant,
}

impl Default for ReportBuilder {
    fn default() -> Self {
        ReportBuilder::new()
    }
}

impl ReportBuilder {
    /// Starts a report clocked from now.
    pub fn new() -> ReportBuilder {
        let started_at = OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default();
        let report = RunReport { started_at, ..RunReport::default() };
        ReportBuilder { report, started: std::time::Instant::now() }
    }

    /// The report being built, to update counters in place.
    pub fn report_mut(&mut self) -> &mut RunReport {
        &mut self.report
    }

    /// The counters of `knowledge_base`, created on first use.
    pub fn knowledge_base(&mut self, knowledge_base: &str) -> &mut KnowledgeBaseCounts {
        self.report.knowledge_bases.entry(knowledge_base.to_owned()).or_default()
    }

    /// Records a skipped page: counted under its reason, and listed while
    /// the list has room.
    pub fn skipped(&mut self, page: SkippedPage) {
        *self.report.crawl.skipped.entry(page.reason.clone()).or_default() += 1;
        if self.report.skipped.len() < MAX_LISTED_SKIPPED {
            self.report.skipped.push(page);
        } else {
            self.report.skipped_not_listed += 1;
        }
    }

    /// Records a failed page: counted under `label` in the crawl failures
    /// and listed as a problem while the list has room.
    pub fn problem(&mut self, url: &str, stage: Stage, label: &str, reason: &str) {
        *self.report.crawl.failed.entry(label.to_owned()).or_default() += 1;
        if self.report.problems.len() < MAX_LISTED_PROBLEMS {
            let problem = Problem { url: url.to_owned(), stage, reason: reason.to_owned() };
            self.report.problems.push(problem);
        } else {
            self.report.problems_not_listed += 1;
        }
    }

    /// Records a page the site answered 404 or 410 for: counted, and
    /// listed while the list has room.
    pub fn gone(&mut self, url: &str, status: u16, linked_from: Option<&str>) {
        self.report.crawl.gone += 1;
        if self.report.gone.len() < MAX_LISTED_PROBLEMS {
            let linked_from = linked_from.map(str::to_owned);
            self.report.gone.push(GonePage { url: url.to_owned(), status, linked_from });
        }
    }

    /// Stops the clock and returns the report.
    pub fn finish(self, outcome: RunOutcome) -> RunReport {
        let elapsed = self.started.elapsed();
        self.finish_after(outcome, elapsed)
    }

    fn finish_after(mut self, outcome: RunOutcome, elapsed: Duration) -> RunReport {
        let secs = elapsed.as_secs_f64();
        let crawl = &self.report.crawl;
        let done = crawl.fetched + crawl.not_modified;
        self.report.duration_secs = secs;
        self.report.pages_per_second = if secs > 0.0 { done as f64 / secs } else { 0.0 };
        self.report.outcome = outcome;
        self.report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_are_listed_up_to_the_cap_then_counted() {
        let mut builder = ReportBuilder::new();
        for i in 0..MAX_LISTED_PROBLEMS + 3 {
            builder.problem(&format!("https://x.example/{i}"), Stage::Fetch, "http_500", "500");
        }
        let report = builder.finish(RunOutcome::Completed);
        assert_eq!(report.problems.len(), MAX_LISTED_PROBLEMS);
        assert_eq!(report.problems_not_listed, 3);
        assert_eq!(report.failed_pages(), MAX_LISTED_PROBLEMS as u64 + 3);
        assert_eq!(report.crawl.failed["http_500"], MAX_LISTED_PROBLEMS as u64 + 3);
    }

    #[test]
    fn gone_pages_are_not_failures() {
        let mut builder = ReportBuilder::new();
        for i in 0..MAX_LISTED_PROBLEMS + 2 {
            builder.gone(&format!("https://x.example/{i}"), 404, Some("https://x.example/"));
        }
        let report = builder.finish(RunOutcome::Completed);
        assert_eq!(report.failed_pages(), 0);
        assert_eq!(report.crawl.gone, MAX_LISTED_PROBLEMS as u64 + 2);
        assert_eq!(report.gone.len(), MAX_LISTED_PROBLEMS);
        let first = GonePage {
            url: "https://x.example/0".into(),
            status: 404,
            linked_from: Some("https://x.example/".into()),
        };
        assert_eq!(report.gone[0], first);
    }

    fn skipped_page(i: usize, reason: &str, words: Option<u64>) -> SkippedPage {
        SkippedPage {
            url: format!("https://x.example/{i}"),
            reason: reason.to_owned(),
            detail: format!("{reason} in words"),
            words,
        }
    }

    #[test]
    fn skipped_pages_are_listed_up_to_the_cap_then_counted() {
        let mut builder = ReportBuilder::new();
        builder.skipped(skipped_page(0, "too_little_content", Some(12)));
        for i in 1..MAX_LISTED_SKIPPED + 4 {
            builder.skipped(skipped_page(i, "robots_disallowed", None));
        }
        let report = builder.finish(RunOutcome::Completed);
        assert_eq!(report.skipped.len(), MAX_LISTED_SKIPPED);
        assert_eq!(report.skipped_not_listed, 4);
        assert_eq!(report.crawl.skipped["robots_disallowed"], MAX_LISTED_SKIPPED as u64 + 3);
        assert_eq!(report.crawl.skipped["too_little_content"], 1);
        assert_eq!(report.skipped[0], skipped_page(0, "too_little_content", Some(12)));
        assert_eq!(report.failed_pages(), 0, "a skip is not a failure");
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["skipped"][0]["words"], 12);
        assert_eq!(json["skipped_not_listed"], 4);
    }

    #[test]
    fn rate_is_pages_over_wall_time() {
        let mut builder = ReportBuilder::new();
        builder.report_mut().crawl.fetched = 20;
        builder.report_mut().crawl.extracted = 20;
        builder.report_mut().crawl.not_modified = 10;
        let report = builder.finish_after(RunOutcome::Cancelled, Duration::from_secs(3));
        assert_eq!(report.pages_per_second, 10.0, "304s are pages too");
        assert_eq!(report.duration_secs, 3.0);
        assert_eq!(report.outcome, RunOutcome::Cancelled);
    }

    #[test]
    fn json_names_stages_and_outcomes_in_snake_case() {
        let mut builder = ReportBuilder::new();
        builder.knowledge_base("Docs").new += 2;
        builder.skipped(skipped_page(0, "robots", None));
        builder.problem("https://x.example/a", Stage::Sync, "sync", "boom");
        let failed = RunOutcome::Failed { error: "wrong key".into() };
        let json = serde_json::to_value(builder.finish(failed)).unwrap();
        assert_eq!(json["outcome"]["failed"]["error"], "wrong key");
        assert_eq!(json["problems"][0]["stage"], "sync");
        assert_eq!(json["knowledge_bases"]["Docs"]["new"], 2);
        assert_eq!(json["crawl"]["skipped"]["robots"], 1);
        assert_eq!(json["skipped"][0]["reason"], "robots");
        assert!(json["skipped"][0].get("words").is_none(), "words only when counted");
        assert!(json["started_at"].as_str().unwrap().contains('T'));
    }
}
