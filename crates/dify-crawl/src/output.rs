//! Everything the user sees while and after a command runs: log lines, the
//! progress bar and the end-of-run summary.
//!
//! Logs go to stderr through `tracing-subscriber` (`RUST_LOG` wins over
//! `-v`/`-q`). When stderr is a terminal and the output is not verbose, a
//! progress bar is drawn there too; log lines are then written "around" the
//! bar (the bar is hidden for the write) so neither garbles the other. When
//! stderr is not a terminal (CI, pipes, tests) there is no bar, only log
//! lines. The summary goes to stdout: it is the command's result.

use std::fmt::Write as _;
use std::io::{self, IsTerminal, Write};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use kb_sync::pipeline::{Progress, ProgressCounters};
use kb_sync::report::{RunOutcome, RunReport};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Crates whose info lines a user follows by default.
const OUR_CRATES: [&str; 5] =
    ["dify_crawl", "kb_sync", "site_crawler", "page_extract", "dify_client"];

/// The bar log lines must step around, once one is shown.
static BAR: OnceLock<ProgressBar> = OnceLock::new();

/// How much to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    /// Warnings and errors only (`-q`).
    Quiet,
    /// Info for our crates (the default).
    Normal,
    /// Debug for our crates (`-v`).
    Verbose,
    /// Trace for our crates (`-vv`).
    Trace,
}

impl Verbosity {
    /// From the `-v` count and `-q`.
    pub fn from_flags(verbose: u8, quiet: bool) -> Verbosity {
        match (quiet, verbose) {
            (true, _) => Verbosity::Quiet,
            (false, 0) => Verbosity::Normal,
            (false, 1) => Verbosity::Verbose,
            (false, _) => Verbosity::Trace,
        }
    }

    fn our_level(self) -> &'static str {
        match self {
            Verbosity::Quiet => "warn",
            Verbosity::Normal => "info",
            Verbosity::Verbose => "debug",
            Verbosity::Trace => "trace",
        }
    }
}

/// Installs the log subscriber on stderr.
pub fn init_logging(verbosity: Verbosity) {
    let default: String = std::iter::once("warn".to_owned())
        .chain(OUR_CRATES.iter().map(|c| format!("{c}={}", verbosity.our_level())))
        .collect::<Vec<_>>()
        .join(",");
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let ansi = io::stderr().is_terminal();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(BarAwareStderr)
        .with_ansi(ansi)
        .with_target(false)
        .init();
}

/// Writes log lines to stderr, hiding the progress bar while doing so.
#[derive(Debug, Clone, Copy)]
struct BarAwareStderr;

impl<'a> MakeWriter<'a> for BarAwareStderr {
    type Writer = BarAwareStderr;

    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}

impl Write for BarAwareStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match BAR.get() {
            Some(bar) if !bar.is_hidden() => bar.suspend(|| io::stderr().write(buf)),
            _ => io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

/// How often progress is logged when there is no bar.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The progress display of a crawl: a spinner line on a terminal, else an
/// info line every [`LOG_EVERY`] (CI logs and pipes get no control codes).
#[derive(Debug)]
pub struct ProgressView {
    bar: Option<ProgressBar>,
    /// When progress was last logged, for the no-bar case.
    last_logged: Mutex<Instant>,
}

impl ProgressView {
    /// A bar on stderr when it is a terminal and `verbosity` is normal.
    pub fn new(verbosity: Verbosity) -> ProgressView {
        let last_logged = Mutex::new(Instant::now());
        if verbosity != Verbosity::Normal || !io::stderr().is_terminal() {
            return ProgressView { bar: None, last_logged };
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{spinner} {pos} pages done ({per_sec}) · {msg} · {elapsed}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
        bar.set_style(style);
        bar.enable_steady_tick(Duration::from_millis(200));
        let _ = BAR.set(bar.clone());
        ProgressView { bar: Some(bar), last_logged }
    }

    fn log_now(&self) -> bool {
        let mut last = self.last_logged.lock().unwrap_or_else(PoisonError::into_inner);
        let due = last.elapsed() >= LOG_EVERY;
        if due {
            *last = Instant::now();
        }
        due
    }

    /// Removes the bar before the summary is printed.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Progress for ProgressView {
    fn update(&self, c: ProgressCounters) {
        match &self.bar {
            Some(bar) => {
                bar.set_position(c.done);
                bar.set_message(format!(
                    "fetched {} · queue {} · skipped {} · errors {}",
                    c.fetched, c.in_flight, c.skipped, c.failed
                ));
            }
            None if self.log_now() => tracing::info!(
                done = c.done,
                fetched = c.fetched,
                queue = c.in_flight,
                skipped = c.skipped,
                errors = c.failed,
                "progress"
            ),
            None => {}
        }
    }
}

/// The end-of-run summary.
pub fn summary(report: &RunReport) -> String {
    let mut out = String::new();
    let crawl = &report.crawl;
    let outcome = match &report.outcome {
        RunOutcome::Completed => "completed",
        RunOutcome::Cancelled => "cancelled (state saved)",
        RunOutcome::Failed { .. } => "stopped by an error",
    };
    let _ = writeln!(
        out,
        "Run {outcome} in {:.1}s ({:.1} pages/s)",
        report.duration_secs, report.pages_per_second
    );
    let _ = writeln!(
        out,
        "  pages fetched: {}, not modified: {}, extracted: {}",
        crawl.fetched, crawl.not_modified, crawl.extracted
    );
    if let Some(export) = &report.export {
        let _ = writeln!(
            out,
            "  exported to {}: {} new, {} changed, {} unchanged, {} stale, {} pruned",
            export.dir, export.new, export.changed, export.unchanged, export.stale, export.pruned
        );
    }
    if report.dry_run {
        let _ =
            writeln!(out, "  dry run: {} page(s) planned, nothing written to Dify", crawl.synced);
    } else if report.dify.is_some() {
        let _ = writeln!(out, "  synced to dify: {}", crawl.synced);
    }
    write_counts(&mut out, "skipped", &crawl.skipped);
    for page in report.skipped.iter().take(LISTED) {
        let _ = writeln!(out, "    {} [{}]: {}", page.url, page.reason, page.detail);
    }
    let skipped: u64 = crawl.skipped.values().sum();
    write_more(&mut out, skipped, report.skipped.len().min(LISTED));
    write_counts(&mut out, "failed", &crawl.failed);
    if crawl.gone > 0 {
        let _ = writeln!(
            out,
            "  gone (404/410): {} (broken links or removed pages; --prune removes what earlier \
             runs stored for them)",
            crawl.gone
        );
        for page in report.gone.iter().take(LISTED) {
            let _ = match &page.linked_from {
                Some(from) => {
                    writeln!(out, "    {} [{}] linked from {from}", page.url, page.status)
                }
                None => writeln!(out, "    {} [{}]", page.url, page.status),
            };
        }
        write_more(&mut out, crawl.gone, report.gone.len().min(LISTED));
    }
    for (kb, c) in &report.knowledge_bases {
        let _ = writeln!(
            out,
            "  knowledge base {kb:?}: {} new, {} changed, {} unchanged, {} failed, {} pruned",
            c.new, c.changed, c.unchanged, c.failed, c.pruned
        );
    }
    if let Some(dify) = &report.dify {
        let _ = writeln!(
            out,
            "  dify requests: {} ({} retries, {} connections)",
            dify.requests_total, dify.retries, dify.connections_opened
        );
    }
    if report.failed_pages() > 0 {
        let _ = writeln!(out, "  {} page(s) failed; first ones:", report.failed_pages());
        for p in report.problems.iter().take(LISTED) {
            let _ = writeln!(out, "    {} [{}]: {}", p.url, p.stage.as_str(), p.reason);
        }
    }
    out
}

/// Pages listed by URL under each heading of the summary; `--report`
/// lists more.
const LISTED: usize = 5;

/// Says how many of `total` pages the summary did not list.
fn write_more(out: &mut String, total: u64, listed: usize) {
    let more = total.saturating_sub(listed as u64);
    if more > 0 {
        let _ = writeln!(out, "    ... and {more} more (--report PATH lists them)");
    }
}

fn write_counts(out: &mut String, label: &str, counts: &std::collections::BTreeMap<String, u64>) {
    if counts.is_empty() {
        return;
    }
    let total: u64 = counts.values().sum();
    let parts: Vec<String> = counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let _ = writeln!(out, "  {label}: {total} ({})", parts.join(", "));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_lists_reasons_and_knowledge_bases() {
        let mut report = RunReport::default();
        report.crawl.fetched = 3;
        report.crawl.skipped.insert("robots_disallowed".into(), 2);
        report.knowledge_bases.entry("Docs".into()).or_default().new = 3;
        let text = summary(&report);
        assert!(text.contains("pages fetched: 3"), "{text}");
        assert!(text.contains("skipped: 2 (robots_disallowed 2)"), "{text}");
        assert!(text.contains("knowledge base \"Docs\": 3 new"), "{text}");
        assert!(!text.contains("gone"), "{text}");
    }

    #[test]
    fn summary_lists_gone_pages_apart_from_failures() {
        let mut builder = kb_sync::report::ReportBuilder::new();
        builder.gone("https://x.example/old", 410, None);
        builder.gone("https://x.example/typo", 404, Some("https://x.example/"));
        let report = builder.finish(RunOutcome::Completed);
        let text = summary(&report);
        assert!(text.contains("gone (404/410): 2 (broken links"), "{text}");
        assert!(text.contains("    https://x.example/old [410]\n"), "{text}");
        assert!(text.contains("/typo [404] linked from https://x.example/\n"), "{text}");
        assert!(!text.contains("failed"), "{text}");
    }

    #[test]
    fn summary_lists_the_first_skipped_pages() {
        let mut builder = kb_sync::report::ReportBuilder::new();
        for i in 0..7 {
            builder.skipped(kb_sync::report::SkippedPage {
                url: format!("https://x.example/{i}"),
                reason: "too_little_content".into(),
                detail: format!("main content has {i} words, fewer than the minimum of 50"),
                words: Some(i),
            });
        }
        let text = summary(&builder.finish(RunOutcome::Completed));
        assert!(text.contains("skipped: 7 (too_little_content 7)"), "{text}");
        assert!(
            text.contains("    https://x.example/0 [too_little_content]: main content has 0 words"),
            "{text}"
        );
        assert!(text.contains("https://x.example/4 ["), "{text}");
        assert!(!text.contains("https://x.example/5 ["), "{text}");
        assert!(text.contains("    ... and 2 more (--report PATH lists them)\n"), "{text}");
    }

    #[test]
    fn verbosity_flags() {
        assert_eq!(Verbosity::from_flags(0, true), Verbosity::Quiet);
        assert_eq!(Verbosity::from_flags(2, false), Verbosity::Trace);
    }
}
