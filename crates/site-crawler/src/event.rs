//! What the crawler reports, one event per URL it decided about.
//!
//! Events go out through a bounded channel in the order decisions are made.
//! Each URL that was scheduled ends in exactly one event, except URLs found
//! to be duplicates of an identity already emitted before they were
//! fetched, which are only counted in [`CrawlStats`](crate::CrawlStats).

use std::fmt;
use std::time::SystemTime;

use url::Url;

/// One decision about one URL.
// Pages are the common event; boxing them would add an allocation per page
// and make consumers' matches clumsier, while the channel holding events is
// bounded, so the larger variant costs little memory.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum CrawlEvent {
    /// An HTML page, its body decoded to UTF-8.
    Page(FetchedPage),
    /// The server answered a conditional request with 304.
    NotModified(NotModified),
    /// The URL was deliberately not fetched or not emitted.
    Skipped(SkippedPage),
    /// Fetching the URL failed.
    Failed(FailedPage),
}

impl CrawlEvent {
    /// The URL the event is about (the identity URL for pages).
    #[must_use]
    pub fn url(&self) -> &Url {
        match self {
            Self::Page(page) => &page.url,
            Self::NotModified(page) => &page.url,
            Self::Skipped(page) => &page.url,
            Self::Failed(page) => &page.url,
        }
    }
}

/// A fetched HTML page.
#[derive(Debug, Clone)]
pub struct FetchedPage {
    /// The page's identity: the URL that answered, after redirects (and
    /// meta refreshes), normalized. No two pages of a run share it. A page
    /// whose canonical URL is another in-scope page is not emitted under
    /// that URL: it is skipped ([`SkipReason::Canonicalized`] or
    /// [`SkipReason::Duplicate`]) and the canonical page is fetched in its
    /// own right.
    pub url: Url,
    /// The URL as scheduled (normalized), before redirects.
    pub requested_url: Url,
    /// The URL that answered 200, after redirects; equal to `url`.
    pub final_url: Url,
    /// Link distance from the nearest start or sitemap URL.
    pub depth: usize,
    /// The HTTP status of the final response.
    pub status: u16,
    /// The `Content-Type` header, as sent.
    pub content_type: Option<String>,
    /// The body decoded to UTF-8.
    pub html: String,
    /// The `ETag` header, for the next run's conditional request.
    pub etag: Option<String>,
    /// The `Last-Modified` header, for the next run's conditional request.
    pub last_modified: Option<String>,
    /// The sitemap `<lastmod>` of this URL, RFC 3339, when a sitemap listed
    /// it.
    pub sitemap_lastmod: Option<String>,
    /// The in-scope canonical URL the page declared, normalized. When it
    /// differs from `url`, the canonical was out of reach (disallowed by
    /// robots.txt, or already fetched without becoming a page, as when it
    /// redirects here), so the page stands for itself.
    pub canonical: Option<Url>,
    /// Body size after content decoding, before charset decoding.
    pub bytes: u64,
    /// When the response arrived.
    pub fetched_at: SystemTime,
    /// Distinct followable links found in the page, whatever their host.
    pub links_found: usize,
    /// The followable links whose host is in scope: normalized,
    /// deduplicated, in document order, empty when the page is `nofollow`
    /// (`<meta name=robots>` or `X-Robots-Tag`). The include and exclude
    /// patterns are not applied, so a later run with other patterns can
    /// still use them. Keep them with the validators
    /// ([`Validators::links`](crate::Validators::links)): a later 304 for
    /// the page follows them instead.
    pub links: Vec<Url>,
}

/// A page the server reported unchanged since the validators we sent.
///
/// The answer has no body, so the crawler follows the links given with the
/// validators ([`Validators::links`](crate::Validators::links)) instead,
/// so a re-run discovers the same pages through it as the earlier run.
#[derive(Debug, Clone)]
pub struct NotModified {
    /// The normalized URL that was requested (after redirects).
    pub url: Url,
    /// Link distance from the nearest start or sitemap URL.
    pub depth: usize,
    /// The current `ETag`: from the 304 response, else the one we sent.
    pub etag: Option<String>,
    /// The current `Last-Modified`: from the response, else the one we sent.
    pub last_modified: Option<String>,
    /// The sitemap `<lastmod>` of this URL, when a sitemap listed it.
    pub sitemap_lastmod: Option<String>,
    /// The links replayed from the validators, normalized; unreadable
    /// entries are left out.
    pub links: Vec<Url>,
}

/// A URL deliberately left out.
#[derive(Debug, Clone)]
pub struct SkippedPage {
    /// The URL, normalized.
    pub url: Url,
    /// Why.
    pub reason: SkipReason,
}

/// Why a URL was left out.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// robots.txt disallows it for our user agent.
    RobotsDisallowed,
    /// A redirect led out of scope (host, include or exclude).
    OutOfScope {
        /// Where the redirect pointed.
        target: Url,
    },
    /// The body is larger than `max_body_bytes`.
    TooLarge {
        /// The limit that was exceeded.
        limit: u64,
    },
    /// The response is not HTML or XHTML.
    NotHtml {
        /// The `Content-Type` sent, if any.
        content_type: Option<String>,
    },
    /// The response claims to be HTML but its bytes are binary.
    Binary,
    /// The page's canonical URL (or redirect target) was already emitted.
    Duplicate {
        /// The identity already emitted.
        of: Url,
    },
    /// The page names another in-scope URL as its canonical, not yet
    /// fetched: that URL is queued at the page's depth and fetched in its
    /// own right, and this copy is left out. The page's links are still
    /// followed.
    Canonicalized {
        /// The canonical URL.
        to: Url,
    },
    /// `<meta name=robots content=noindex>` or `X-Robots-Tag: noindex`.
    NoIndex,
}

impl SkipReason {
    /// A stable snake_case key, used in [`CrawlStats`](crate::CrawlStats).
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::RobotsDisallowed => "robots_disallowed",
            Self::OutOfScope { .. } => "out_of_scope",
            Self::TooLarge { .. } => "too_large",
            Self::NotHtml { .. } => "not_html",
            Self::Binary => "binary",
            Self::Duplicate { .. } => "duplicate",
            Self::Canonicalized { .. } => "canonicalized",
            Self::NoIndex => "noindex",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RobotsDisallowed => f.write_str("disallowed by robots.txt"),
            Self::OutOfScope { target } => write!(f, "redirects out of scope to {target}"),
            Self::TooLarge { limit } => write!(f, "body larger than {limit} bytes"),
            Self::NotHtml { content_type } => match content_type {
                Some(content_type) => write!(f, "not html ({content_type})"),
                None => f.write_str("not html (no content type)"),
            },
            Self::Binary => f.write_str("binary content served as html"),
            Self::Duplicate { of } => write!(f, "duplicate of {of}"),
            Self::Canonicalized { to } => write!(f, "canonical url is {to}"),
            Self::NoIndex => f.write_str("marked noindex"),
        }
    }
}

/// A URL that could not be fetched.
#[derive(Debug, Clone)]
pub struct FailedPage {
    /// The URL, normalized.
    pub url: Url,
    /// What went wrong, for people.
    pub error: String,
    /// The HTTP status, when the server answered.
    pub status: Option<u16>,
    /// What went wrong, for programs.
    pub kind: FailKind,
    /// The page whose link led here; `None` for start and sitemap URLs.
    /// With a 404 or 410 this is where the broken link is.
    pub referrer: Option<Url>,
}

/// The class of a fetch failure.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailKind {
    /// The server answered with a 4xx or 5xx status (after any retries).
    Status,
    /// The request timed out.
    Timeout,
    /// No connection could be made.
    Connect,
    /// The connection broke or the response was malformed.
    Transport,
    /// More redirect hops than `max_redirects`.
    TooManyRedirects,
    /// A redirect led back to a URL of the same chain.
    RedirectLoop,
    /// A redirect without a usable `Location`.
    BadRedirect,
    /// The body could not be decoded to text.
    Charset,
    /// The host's robots.txt answered 5xx or could not be reached, which
    /// RFC 9309 says means crawling nothing there for now. Recorded as a
    /// failure, not a skip: the page was wanted, and a later run or
    /// `retry` may reach it.
    RobotsUnavailable,
}

impl FailKind {
    /// A stable snake_case key, used in [`CrawlStats`](crate::CrawlStats).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Status => "status",
            Self::Timeout => "timeout",
            Self::Connect => "connect",
            Self::Transport => "transport",
            Self::TooManyRedirects => "too_many_redirects",
            Self::RedirectLoop => "redirect_loop",
            Self::BadRedirect => "bad_redirect",
            Self::Charset => "charset",
            Self::RobotsUnavailable => "robots_unavailable",
        }
    }
}
