//! Fetching one scheduled URL, from robots check to decoded page.
//!
//! A task walks the redirect chain itself (each hop checked against scope,
//! robots.txt and the hop limit), follows a meta refresh on a near-empty
//! page as one more hop, asks conditionally when validators are known,
//! refuses non-HTML and oversized bodies before holding them, and decodes
//! and scans the page on the blocking pool. It decides nothing that needs
//! the crawl's shared state (dedup, budget, queueing): it returns an
//! [`Outcome`] and the crawl loop decides.

use std::sync::Arc;
use std::time::SystemTime;

use http::HeaderMap;
use http::header::{CONTENT_TYPE, ETAG, LAST_MODIFIED};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use url::Url;

use crate::charset::{self, CharsetError};
use crate::config::{META_REFRESH_MAX_DELAY, META_REFRESH_MAX_WORDS};
use crate::crawler::{RobotsBlock, Shared};
use crate::event::{FailKind, FailedPage, FetchedPage, NotModified, SkipReason, SkippedPage};
use crate::fetch::{self, BodyError, FetchError};
use crate::frontier::Item;
use crate::host::Ticket;
use crate::links::{self, PageLinks};
use crate::stats::Traffic;
use crate::url_norm;

/// What a task did: its outcome, and whether a page request was sent
/// (what `max_pages` counts).
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) outcome: Outcome,
    pub(crate) requested: bool,
}

/// What fetching one URL produced.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// A decoded HTML page; the loop settles its identity and queues links.
    Page(Box<PageResult>),
    /// A 304 answer.
    NotModified(NotModified),
    /// Left out.
    Skipped(SkippedPage),
    /// Failed.
    Failed(FailedPage),
    /// robots.txt of the URL's origin could not be read yet and will be
    /// fetched again; nothing was requested and the host is held until
    /// then, so the loop queues the URL again.
    Deferred(Item),
}

/// A fetched page plus what the loop needs to finish it.
#[derive(Debug)]
pub(crate) struct PageResult {
    /// The page; its `links` are the ones to queue.
    pub(crate) page: FetchedPage,
    /// The page asked not to be indexed.
    pub(crate) noindex: bool,
    /// The canonical URL to defer to: in scope, allowed by robots.txt and
    /// not the page's own URL.
    pub(crate) canonical_target: Option<Url>,
    /// The page had more links than were kept.
    pub(crate) links_truncated: bool,
}

/// Where a redirect chain ended.
struct Landing {
    url: Url,
    response: reqwest::Response,
    permit: OwnedSemaphorePermit,
}

/// A 2xx HTML answer, read and scanned.
struct Analysed {
    url: Url,
    status: u16,
    headers: HeaderMap,
    content_type: Option<String>,
    html: String,
    found: PageLinks,
    bytes: u64,
}

/// Fetches one URL and reports what happened. `ticket` is the start slot
/// the loop took on the URL's host; the first request uses it.
pub(crate) async fn fetch(
    shared: Arc<Shared>,
    traffic: Arc<Traffic>,
    item: Item,
    ticket: Ticket,
) -> Finished {
    let mut task = Task {
        chain: vec![item.url.clone()],
        shared,
        traffic,
        item,
        ticket: Some(ticket),
        requested: false,
    };
    let outcome = task.run().await;
    Finished { outcome, requested: task.requested }
}

struct Task {
    shared: Arc<Shared>,
    traffic: Arc<Traffic>,
    item: Item,
    ticket: Option<Ticket>,
    requested: bool,
    /// Every URL of the redirect chain so far, the scheduled one first.
    chain: Vec<Url>,
}

impl Task {
    async fn run(&mut self) -> Outcome {
        let mut url = self.item.url.clone();
        loop {
            let landing = match self.follow(url).await {
                Ok(landing) => landing,
                Err(outcome) => return outcome,
            };

            let status = landing.response.status();
            if status == http::StatusCode::NOT_MODIFIED {
                return self.not_modified(&landing);
            }
            if !status.is_success() {
                let error = format!("server answered {status}");
                return self.failed(error, Some(status.as_u16()), FailKind::Status);
            }
            let page = match self.read(landing).await {
                Ok(page) => page,
                Err(outcome) => return outcome,
            };
            match self.refresh_hop(&page) {
                Ok(Some(target)) => url = target,
                Ok(None) => return self.finish(page).await,
                Err(outcome) => return outcome,
            }
        }
    }

    /// Requests `url` and follows redirects until a non-redirect answer.
    // The error is the task's final answer, built once per URL; boxing it
    // would only move the allocation.
    #[allow(clippy::result_large_err)]
    async fn follow(&mut self, mut url: Url) -> Result<Landing, Outcome> {
        loop {
            match self.shared.robots_block(&url, &self.traffic, &mut self.ticket).await {
                None => {}
                Some(RobotsBlock::Disallowed) => {
                    return Err(self.skipped(SkipReason::RobotsDisallowed));
                }
                Some(RobotsBlock::Unavailable { retry_at: Some(at), .. }) if !self.requested => {
                    let wait = at.saturating_duration_since(Instant::now());
                    self.shared.fetcher.hosts.get(&url).back_off(wait);
                    tracing::debug!(%url, wait_ms = wait.as_millis(), "robots.txt unavailable; url parked");
                    return Err(Outcome::Deferred(self.item.clone()));
                }
                Some(RobotsBlock::Unavailable { cause, .. }) => {
                    return Err(self.failed(cause, None, FailKind::RobotsUnavailable));
                }
            }

            let validators = self.shared.config.validators.get(url.as_str());
            self.requested = true;
            let fetched =
                self.shared.fetcher.get(&url, validators, &self.traffic, &mut self.ticket).await;
            let (response, permit) = fetched.map_err(|error| self.fetch_failed(&error))?;
            let status = response.status();
            if !status.is_redirection() || status == http::StatusCode::NOT_MODIFIED {
                return Ok(Landing { url, response, permit });
            }

            let Some(target) = fetch::redirect_target(&url, response.headers()) else {
                let error = format!("redirect from {url} has no usable location");
                return Err(self.failed(error, None, FailKind::BadRedirect));
            };
            self.hop(&target)?;
            Traffic::bump(&self.traffic.redirects, 1);
            tracing::debug!(from = %url, to = %target, %status, "following redirect");
            url = target;
        }
    }

    /// Checks the next hop of the chain: not a loop, within the hop limit
    /// and in scope; then adds it.
    // The error is the task's final answer, built once per URL; boxing it
    // would only move the allocation.
    #[allow(clippy::result_large_err)]
    fn hop(&mut self, target: &Url) -> Result<(), Outcome> {
        if self.chain.contains(target) {
            let error = format!("redirect loop back to {target}");
            return Err(self.failed(error, None, FailKind::RedirectLoop));
        }
        if self.chain.len() > self.shared.config.max_redirects {
            let error = format!("more than {} redirects", self.shared.config.max_redirects);
            return Err(self.failed(error, None, FailKind::TooManyRedirects));
        }
        if !self.shared.scope.contains(target) {
            return Err(self.skipped(SkipReason::OutOfScope { target: target.clone() }));
        }
        self.chain.push(target.clone());
        Ok(())
    }

    /// A meta refresh on a near-empty page, soon enough to be a redirect
    /// rather than a page showing itself for a while, is followed as one
    /// more hop of the chain.
    // The error is the task's final answer, built once per URL; boxing it
    // would only move the allocation.
    #[allow(clippy::result_large_err)]
    fn refresh_hop(&mut self, page: &Analysed) -> Result<Option<Url>, Outcome> {
        let Some(refresh) = &page.found.refresh else {
            return Ok(None);
        };
        if refresh.delay > META_REFRESH_MAX_DELAY
            || page.found.words >= META_REFRESH_MAX_WORDS
            || refresh.url == page.url
        {
            return Ok(None);
        }
        self.hop(&refresh.url)?;
        Traffic::bump(&self.traffic.redirects, 1);
        Traffic::bump(&self.traffic.refreshes, 1);
        tracing::debug!(from = %page.url, to = %refresh.url, "following meta refresh");
        Ok(Some(refresh.url.clone()))
    }

    /// A 304 answer, carrying the links stored with the validators so the
    /// loop can follow them as if the page had been fetched.
    fn not_modified(&self, landing: &Landing) -> Outcome {
        let sent = self.shared.config.validators.get(landing.url.as_str());
        let headers = landing.response.headers();
        Outcome::NotModified(NotModified {
            url: landing.url.clone(),
            depth: self.item.depth,
            etag: header(headers, ETAG).or_else(|| sent.and_then(|v| v.etag.clone())),
            last_modified: header(headers, LAST_MODIFIED)
                .or_else(|| sent.and_then(|v| v.last_modified.clone())),
            sitemap_lastmod: None,
            links: sent.map(|v| replayed_links(&v.links)).unwrap_or_default(),
        })
    }

    /// Reads, decodes and scans a 2xx answer.
    // The error is the task's final answer, built once per URL; boxing it
    // would only move the allocation.
    #[allow(clippy::result_large_err)]
    async fn read(&self, landing: Landing) -> Result<Analysed, Outcome> {
        let Landing { url, response, permit } = landing;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let content_type = header(&headers, CONTENT_TYPE);
        if !content_type.as_deref().is_none_or(is_html_type) {
            return Err(self.skipped(SkipReason::NotHtml { content_type }));
        }

        let limit = self.shared.config.max_body_bytes;
        let body = match fetch::read_body(response, limit, false).await {
            Ok(body) => body,
            Err(BodyError::TooLarge) => return Err(self.skipped(SkipReason::TooLarge { limit })),
            Err(BodyError::Transport(error)) => {
                return Err(self.fetch_failed(&FetchError::Transport(error)));
            }
        };
        drop(permit);
        let bytes = body.len() as u64;
        Traffic::bump(&self.traffic.bytes, bytes);

        let (html, found) = match analyse(body, content_type.clone(), url.clone()).await {
            Ok(parsed) => parsed,
            Err(CharsetError::Binary) => return Err(self.skipped(SkipReason::Binary)),
            Err(error) => {
                return Err(self.failed(error.to_string(), Some(status), FailKind::Charset));
            }
        };
        if content_type.is_none() && !looks_like_html(&html) {
            return Err(self.skipped(SkipReason::NotHtml { content_type: None }));
        }
        Ok(Analysed { url, status, headers, content_type, html, found, bytes })
    }

    /// Builds the page and decides which canonical URL, if any, it defers
    /// to.
    async fn finish(&mut self, analysed: Analysed) -> Outcome {
        let Analysed { url, status, headers, content_type, html, found, bytes } = analysed;
        let (header_noindex, header_nofollow) = x_robots_tag(&headers);
        let links = if header_nofollow { Vec::new() } else { found.links };
        let links_found = links.len();
        let links: Vec<Url> =
            links.into_iter().filter(|link| self.shared.scope.host_allowed(link)).collect();

        let canonical = found.canonical.filter(|canonical| self.shared.scope.contains(canonical));
        let canonical_target = match &canonical {
            Some(target) if *target != url => {
                let block = self.shared.robots_block(target, &self.traffic, &mut None).await;
                block.is_none().then(|| target.clone())
            }
            _ => None,
        };

        let page = FetchedPage {
            url: url.clone(),
            requested_url: self.item.url.clone(),
            final_url: url,
            depth: self.item.depth,
            status,
            content_type,
            html,
            etag: header(&headers, ETAG),
            last_modified: header(&headers, LAST_MODIFIED),
            sitemap_lastmod: None,
            canonical,
            bytes,
            fetched_at: SystemTime::now(),
            links_found,
            links,
        };
        Outcome::Page(Box::new(PageResult {
            page,
            noindex: found.noindex || header_noindex,
            canonical_target,
            links_truncated: found.truncated && !header_nofollow,
        }))
    }

    fn skipped(&self, reason: SkipReason) -> Outcome {
        Outcome::Skipped(SkippedPage { url: self.item.url.clone(), reason })
    }

    fn failed(&self, error: String, status: Option<u16>, kind: FailKind) -> Outcome {
        let referrer = self.item.referrer.as_deref().cloned();
        Outcome::Failed(FailedPage { url: self.item.url.clone(), error, status, kind, referrer })
    }

    /// Classifies a failed request and spells out its innermost cause.
    fn fetch_failed(&self, error: &FetchError) -> Outcome {
        let (kind, status) = match error {
            FetchError::Transport(error) if error.is_timeout() => (FailKind::Timeout, None),
            FetchError::Transport(error) if error.is_connect() => (FailKind::Connect, None),
            FetchError::Transport(_) => (FailKind::Transport, None),
            FetchError::WaitTooLong { status, .. } => (FailKind::Status, Some(status.as_u16())),
        };
        self.failed(error.describe(self.shared.fetcher.timeout), status, kind)
    }
}

/// Stored link text back to normalized URLs. Normalizing again keeps the
/// dedup exact if the text came from an older normalization or was edited.
fn replayed_links(stored: &[String]) -> Vec<Url> {
    stored
        .iter()
        .filter_map(|text| Url::parse(text).ok())
        .filter_map(|url| url_norm::normalize(&url))
        .collect()
}

/// Decodes and scans on the blocking pool: both are linear but take
/// milliseconds on a large page, which would stall the other tasks of a
/// worker.
async fn analyse(
    body: Vec<u8>,
    content_type: Option<String>,
    url: Url,
) -> Result<(String, PageLinks), CharsetError> {
    let work = move || {
        let (html, _) = charset::decode(&body, content_type.as_deref())?;
        let found = links::extract(&html, &url);
        Ok((html, found))
    };
    // The closure does not panic on any input (see the property tests); a
    // join error can only mean the runtime is shutting down.
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or(Err(CharsetError::Undecodable { encoding: "none" }))
}

/// `(noindex, nofollow)` from every `X-Robots-Tag` header. Directives
/// scoped to a named user agent (`googlebot: noindex`) are read as global,
/// the cautious choice.
fn x_robots_tag(headers: &HeaderMap) -> (bool, bool) {
    headers
        .get_all("x-robots-tag")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .map(|value| links::robots_directives(value.rsplit(':').next().unwrap_or(value)))
        .fold((false, false), |acc, flags| (acc.0 || flags.0, acc.1 || flags.1))
}

/// Whether a `Content-Type` is HTML or XHTML.
pub(crate) fn is_html_type(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("text/html")
        || essence.eq_ignore_ascii_case("application/xhtml+xml")
}

/// For answers without a `Content-Type`: does the text start like markup?
fn looks_like_html(text: &str) -> bool {
    let start = text.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    let head: String = start.chars().take(64).collect::<String>().to_ascii_lowercase();
    head.starts_with("<!doctype html")
        || head.starts_with("<html")
        || head.starts_with("<head")
        || head.starts_with("<!--")
}

fn header(headers: &HeaderMap, name: http::HeaderName) -> Option<String> {
    headers.get(name)?.to_str().ok().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_content_types() {
        assert!(is_html_type("text/html; charset=utf-8"));
        assert!(is_html_type("Application/XHTML+XML"));
        assert!(!is_html_type("text/plain"));
        assert!(!is_html_type("application/pdf"));
    }

    #[test]
    fn markup_sniffing_for_untyped_answers() {
        assert!(looks_like_html("\n <!DOCTYPE html><p>x"));
        assert!(looks_like_html("<html>"));
        assert!(!looks_like_html("%PDF-1.7"));
        assert!(!looks_like_html("plain words"));
    }
}
