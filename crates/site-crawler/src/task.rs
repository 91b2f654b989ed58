//! Fetching one scheduled URL, from robots check to decoded page.
//!
//! A task walks the redirect chain itself (each hop checked against scope,
//! robots.txt and the hop limit), asks conditionally when validators are
//! known, refuses non-HTML and oversized bodies before holding them, and
//! decodes and parses the page on the blocking pool. It decides nothing
//! that needs the crawl's shared state (dedup, budget, queueing): it
//! returns an [`Outcome`] and the crawl loop decides.

use std::sync::Arc;
use std::time::SystemTime;

use http::HeaderMap;
use http::header::{CONTENT_TYPE, ETAG, LAST_MODIFIED};
use tokio::sync::OwnedSemaphorePermit;
use url::Url;

use crate::charset::{self, CharsetError};
use crate::crawler::{RobotsBlock, Shared};
use crate::event::{FailKind, FailedPage, FetchedPage, NotModified, SkipReason, SkippedPage};
use crate::fetch::{self, BodyError};
use crate::frontier::Item;
use crate::links::{self, PageLinks};
use crate::stats::Traffic;
use crate::url_norm;

/// What fetching one URL produced.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// A decoded HTML page; the loop folds its identity and queues links.
    Page(Box<PageResult>),
    /// A 304 answer.
    NotModified(NotModified),
    /// Left out.
    Skipped(SkippedPage),
    /// Failed.
    Failed(FailedPage),
}

/// A fetched page plus what the loop needs to finish it.
#[derive(Debug)]
pub(crate) struct PageResult {
    /// The page, with `url` still the final URL and `canonical` not yet
    /// checked against scope; its `links` are the ones to queue.
    pub(crate) page: FetchedPage,
    /// The page asked not to be indexed.
    pub(crate) noindex: bool,
}

/// Where a redirect chain ended.
struct Landing {
    url: Url,
    response: reqwest::Response,
    permit: OwnedSemaphorePermit,
}

/// Fetches one URL and reports what happened.
pub(crate) async fn fetch(shared: Arc<Shared>, traffic: Arc<Traffic>, item: Item) -> Outcome {
    let landing = match follow(&shared, &traffic, &item).await {
        Ok(landing) => landing,
        Err(outcome) => return outcome,
    };

    let status = landing.response.status();
    if status == http::StatusCode::NOT_MODIFIED {
        return not_modified(&shared, &item, &landing);
    }
    if !status.is_success() {
        let error = format!("server answered {status}");
        return failed(&item, error, Some(status.as_u16()), FailKind::Status);
    }
    page(&shared, &traffic, item, landing).await
}

/// Requests the URL and follows redirects until a non-redirect answer.
// The error is the task's final answer, built once per URL; boxing it
// would only move the allocation.
#[allow(clippy::result_large_err)]
async fn follow(shared: &Shared, traffic: &Traffic, item: &Item) -> Result<Landing, Outcome> {
    let config = &shared.config;
    let mut url = item.url.clone();
    let mut chain = vec![url.clone()];
    loop {
        match shared.robots_block(&url, traffic).await {
            None => {}
            Some(RobotsBlock::Disallowed) => {
                return Err(skipped(&item.url, SkipReason::RobotsDisallowed));
            }
            Some(RobotsBlock::Unavailable(cause)) => {
                return Err(failed(item, cause, None, FailKind::RobotsUnavailable));
            }
        }

        let validators = config.validators.get(url.as_str());
        let (response, permit) = shared
            .fetcher
            .get(&url, validators, traffic)
            .await
            .map_err(|error| request_failed(item, &error))?;
        let status = response.status();
        if !status.is_redirection() || status == http::StatusCode::NOT_MODIFIED {
            return Ok(Landing { url, response, permit });
        }

        let target = next_hop(shared, item, &chain, response.headers())?;
        Traffic::bump(&traffic.redirects, 1);
        tracing::debug!(from = %url, to = %target, %status, "following redirect");
        chain.push(target.clone());
        url = target;
    }
}

/// Checks a redirect's target: present, not a loop, within the hop limit
/// and in scope.
// The error is the task's final answer, built once per URL; boxing it
// would only move the allocation.
#[allow(clippy::result_large_err)]
fn next_hop(
    shared: &Shared,
    item: &Item,
    chain: &[Url],
    headers: &HeaderMap,
) -> Result<Url, Outcome> {
    let Some(from) = chain.last() else {
        return Err(failed(item, "empty redirect chain".into(), None, FailKind::BadRedirect));
    };
    let Some(target) = fetch::redirect_target(from, headers) else {
        let error = format!("redirect from {from} has no usable location");
        return Err(failed(item, error, None, FailKind::BadRedirect));
    };
    if chain.contains(&target) {
        let error = format!("redirect loop back to {target}");
        return Err(failed(item, error, None, FailKind::RedirectLoop));
    }
    if chain.len() > shared.config.max_redirects {
        let error = format!("more than {} redirects", shared.config.max_redirects);
        return Err(failed(item, error, None, FailKind::TooManyRedirects));
    }
    if !shared.scope.contains(&target) {
        return Err(skipped(&item.url, SkipReason::OutOfScope { target }));
    }
    Ok(target)
}

/// A 304 answer, carrying the links stored with the validators so the
/// loop can follow them as if the page had been fetched.
fn not_modified(shared: &Shared, item: &Item, landing: &Landing) -> Outcome {
    let sent = shared.config.validators.get(landing.url.as_str());
    let headers = landing.response.headers();
    Outcome::NotModified(NotModified {
        url: landing.url.clone(),
        depth: item.depth,
        etag: header(headers, ETAG).or_else(|| sent.and_then(|v| v.etag.clone())),
        last_modified: header(headers, LAST_MODIFIED)
            .or_else(|| sent.and_then(|v| v.last_modified.clone())),
        sitemap_lastmod: None,
        links: sent.map(|v| replayed_links(&v.links)).unwrap_or_default(),
    })
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

/// Reads, decodes and parses a 2xx answer.
async fn page(shared: &Shared, traffic: &Traffic, item: Item, landing: Landing) -> Outcome {
    let Landing { url, response, permit } = landing;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let content_type = header(&headers, CONTENT_TYPE);
    if !content_type.as_deref().is_none_or(is_html_type) {
        return skipped(&item.url, SkipReason::NotHtml { content_type });
    }

    let limit = shared.config.max_body_bytes;
    let body = match fetch::read_body(response, limit, false).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => return skipped(&item.url, SkipReason::TooLarge { limit }),
        Err(BodyError::Transport(error)) => return request_failed(&item, &error),
    };
    drop(permit);
    let bytes = body.len() as u64;
    Traffic::bump(&traffic.bytes, bytes);

    let analysed = analyse(body, content_type.clone(), url.clone()).await;
    let (html, found) = match analysed {
        Ok(parsed) => parsed,
        Err(CharsetError::Binary) => return skipped(&item.url, SkipReason::Binary),
        Err(error) => return failed(&item, error.to_string(), Some(status), FailKind::Charset),
    };
    if content_type.is_none() && !looks_like_html(&html) {
        return skipped(&item.url, SkipReason::NotHtml { content_type: None });
    }

    let (header_noindex, header_nofollow) = x_robots_tag(&headers);
    let links = if header_nofollow { Vec::new() } else { found.links };
    let links_found = links.len();
    let links: Vec<Url> =
        links.into_iter().filter(|link| shared.scope.host_allowed(link)).collect();
    let page = FetchedPage {
        url: url.clone(),
        requested_url: item.url,
        final_url: url,
        depth: item.depth,
        status,
        content_type,
        html,
        etag: header(&headers, ETAG),
        last_modified: header(&headers, LAST_MODIFIED),
        sitemap_lastmod: None,
        canonical: found.canonical,
        bytes,
        fetched_at: SystemTime::now(),
        links_found,
        links,
    };
    Outcome::Page(Box::new(PageResult { page, noindex: found.noindex || header_noindex }))
}

/// Decodes and parses on the blocking pool: html5ever on a large page can
/// take milliseconds, which would stall the other tasks of a worker.
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

fn skipped(url: &Url, reason: SkipReason) -> Outcome {
    Outcome::Skipped(SkippedPage { url: url.clone(), reason })
}

fn failed(item: &Item, error: String, status: Option<u16>, kind: FailKind) -> Outcome {
    let referrer = item.referrer.as_deref().cloned();
    Outcome::Failed(FailedPage { url: item.url.clone(), error, status, kind, referrer })
}

/// Classifies a reqwest error and spells out its cause chain.
fn request_failed(item: &Item, error: &reqwest::Error) -> Outcome {
    let kind = if error.is_timeout() {
        FailKind::Timeout
    } else if error.is_connect() {
        FailKind::Connect
    } else {
        FailKind::Transport
    };
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    failed(item, message, None, kind)
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
