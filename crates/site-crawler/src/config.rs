//! Crawl configuration and its defaults.
//!
//! [`CrawlConfig`] is a plain struct with public fields so the CLI and the
//! sync pipeline can fill it from flags and files without a builder. Every
//! default is also exported as a `DEFAULT_*` constant, which lets the CLI
//! print the same values in its help text that the library really uses.
//! Validation happens once, in [`Crawler::new`](crate::Crawler::new).

use std::collections::HashMap;
use std::time::Duration;

/// Default cap on pages fetched (see [`CrawlConfig::max_pages`]).
pub const DEFAULT_MAX_PAGES: usize = 1_000;
/// Default link depth: start URLs and sitemap URLs are depth 0.
pub const DEFAULT_MAX_DEPTH: usize = 10;
/// Default number of requests in flight across all hosts.
pub const DEFAULT_CONCURRENCY: usize = 16;
/// Default number of requests in flight to one host.
pub const DEFAULT_PER_HOST: usize = 2;
/// Default pause between two requests to the same host.
pub const DEFAULT_DELAY: Duration = Duration::from_millis(250);
/// Default `User-Agent`; its product token `dify-crawl` is what robots.txt
/// groups match. Operators crawling other people's sites should append a
/// contact URL, e.g. `dify-crawl/0.1 (+https://example.com/bot)`.
pub const DEFAULT_USER_AGENT: &str = concat!("dify-crawl/", env!("CARGO_PKG_VERSION"));
/// Default whole-request timeout, body included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default TCP (and TLS) connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default largest page body accepted, after content decoding: 10 MiB.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 10 * 1024 * 1024;
/// Default number of redirect hops followed for one page.
pub const DEFAULT_MAX_REDIRECTS: usize = 10;
/// Default number of retries of a page answered with 429 or 503.
pub const DEFAULT_MAX_RETRIES: usize = 2;
/// Default longest wait honoured from a `Retry-After` header or robots.txt
/// `Crawl-delay`. A longer `Crawl-delay` is capped; a longer `Retry-After`
/// fails the page and backs its host off (see [`MAX_HOST_BACKOFF`]).
pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Longest `<meta http-equiv=refresh>` delay followed as a redirect;
/// longer ones are a page showing itself for a while, not a redirect.
pub const META_REFRESH_MAX_DELAY: Duration = Duration::from_secs(5);
/// A page with a meta refresh is treated as a redirect only when it has
/// fewer visible words than this; a real page that also refreshes is kept.
pub const META_REFRESH_MAX_WORDS: usize = 50;
/// In-scope URLs taken from sitemaps per page of `max_pages`: enough to
/// pick the budget's worth of pages after dedup and skips, without
/// holding millions of URLs from a huge sitemap index before the first
/// page is fetched.
pub const SITEMAP_URLS_PER_PAGE: usize = 4;
/// Default number of sitemap files fetched in one run (indexes included).
pub const DEFAULT_MAX_SITEMAPS: usize = 100;
/// Default wait before an unreachable robots.txt (5xx, 429, network error)
/// is fetched again; the wait doubles for each further attempt.
pub const DEFAULT_ROBOTS_RETRY: Duration = Duration::from_secs(10);
/// Fetches of an unreachable robots.txt before its host is given up for
/// the run. Meanwhile the host's URLs wait; afterwards each fails as
/// `robots_unavailable`. With the default retry wait a host that stays
/// down is given up after about 30 seconds.
pub const ROBOTS_ATTEMPTS: u32 = 3;
/// Longest a host is left alone after it asked (by `Retry-After`) for a
/// longer wait than `max_retry_after`: long enough to respect a server in
/// trouble, short enough that a bogus `Retry-After: 86400` cannot stall a
/// run for a day.
pub const MAX_HOST_BACKOFF: Duration = Duration::from_secs(600);

/// What an earlier run learnt about a page: the cache validators, sent
/// back as `If-None-Match` / `If-Modified-Since`, and the page's links,
/// followed in its place when the server answers 304 (a 304 has no body to
/// find them in).
///
/// Only give validators for a page whose links are known too: validators
/// with an empty `links` make a 304 end the crawl at that page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    /// The `ETag` the server sent, quotes included.
    pub etag: Option<String>,
    /// The `Last-Modified` the server sent, as an HTTP date.
    pub last_modified: Option<String>,
    /// The page's links as [`FetchedPage::links`] gave them, as URL text.
    /// Each is parsed and normalized again and then queued exactly like a
    /// link found in the page (scope, patterns, depth, dedup and the page
    /// budget all apply); text that is not an `http(s)` URL is ignored.
    /// Default is empty.
    ///
    /// [`FetchedPage::links`]: crate::FetchedPage::links
    pub links: Vec<String>,
}

/// What to crawl and how politely.
///
/// Build it with struct update syntax over [`CrawlConfig::default`]:
///
/// ```
/// use site_crawler::CrawlConfig;
///
/// let config = CrawlConfig {
///     start_urls: vec!["https://docs.example.com/".into()],
///     max_pages: 200,
///     ..CrawlConfig::default()
/// };
/// assert!(config.respect_robots);
/// ```
#[derive(Debug, Clone)]
pub struct CrawlConfig {
    /// Where the crawl starts; each must be an absolute `http(s)` URL. Their
    /// hosts define the scope. Default is empty (which `Crawler::new`
    /// rejects).
    pub start_urls: Vec<String>,
    /// Cap on pages fetched, including skipped and unchanged ones: every
    /// URL whose request was sent counts once (its redirect hops and
    /// retries included), whether it became a [`CrawlEvent::Page`], a
    /// [`CrawlEvent::NotModified`], a skip (noindex, duplicate, too large,
    /// not HTML, ...) or a failure. URLs refused before any request (by
    /// robots.txt) and robots.txt and sitemap fetches do not count. Never
    /// exceeded, even with concurrency. Default is [`DEFAULT_MAX_PAGES`].
    ///
    /// [`CrawlEvent::Page`]: crate::CrawlEvent::Page
    /// [`CrawlEvent::NotModified`]: crate::CrawlEvent::NotModified
    pub max_pages: usize,
    /// Deepest link level followed; start and sitemap URLs are depth 0.
    /// Default is [`DEFAULT_MAX_DEPTH`].
    pub max_depth: usize,
    /// Regexes (Rust `regex` syntax) of which a URL must match one, unless
    /// empty. Start URLs are exempt. Default is empty.
    pub include: Vec<String>,
    /// Regexes of which a URL must match none. Default is empty.
    pub exclude: Vec<String>,
    /// Requests in flight across all hosts. Default is
    /// [`DEFAULT_CONCURRENCY`]; 0 is rejected.
    pub concurrency: usize,
    /// Requests in flight to one host (as for `delay`). Default is
    /// [`DEFAULT_PER_HOST`];
    /// 0 is rejected.
    pub per_host: usize,
    /// Pause between two requests to one host; robots.txt `Crawl-delay`
    /// raises it (capped by `max_retry_after`) unless robots.txt is
    /// ignored. A host is its name plus the port when that is not the
    /// scheme's default, so `http://` and `https://` of one site share
    /// one pace. Default is [`DEFAULT_DELAY`].
    pub delay: Duration,
    /// `User-Agent` header; its first product token selects the robots.txt
    /// group. Default is [`DEFAULT_USER_AGENT`].
    pub user_agent: String,
    /// Obey robots.txt rules and `Crawl-delay`. Default is `true`.
    pub respect_robots: bool,
    /// Seed the crawl from `Sitemap:` lines in robots.txt and
    /// `/sitemap.xml` of each start host, before the page crawl starts.
    /// robots.txt is read for its `Sitemap:` lines even when
    /// `respect_robots` is off. Reading stops once
    /// [`SITEMAP_URLS_PER_PAGE`] × `max_pages` in-scope URLs are
    /// collected. Default is `true`.
    pub sitemaps: bool,
    /// Stay under the start URLs' folders, like wget's `--no-parent`: on a
    /// start URL's host only paths beginning with its directory are
    /// crawled (`/book/` and `/book/index.html` give `/book/`; `/book`
    /// gives `/`). Links, redirects, canonical URLs and sitemap entries
    /// are all held to it. Hosts without a start URL (`extra_hosts`,
    /// subdomains) are not restricted. Default is `false`.
    pub no_parent: bool,
    /// Treat subdomains of the start hosts as in scope. Default is `false`.
    pub allow_subdomains: bool,
    /// Further hosts in scope, e.g. `docs.example.com`. Default is empty.
    pub extra_hosts: Vec<String>,
    /// Whole-request timeout. Default is [`DEFAULT_TIMEOUT`].
    pub timeout: Duration,
    /// Connect timeout. Default is [`DEFAULT_CONNECT_TIMEOUT`].
    pub connect_timeout: Duration,
    /// Largest page body accepted; bigger pages are skipped without being
    /// held in memory. Default is [`DEFAULT_MAX_BODY_BYTES`].
    pub max_body_bytes: u64,
    /// Redirect hops followed per page, meta refresh redirects included
    /// (see [`META_REFRESH_MAX_DELAY`] and [`META_REFRESH_MAX_WORDS`]).
    /// Default is [`DEFAULT_MAX_REDIRECTS`].
    pub max_redirects: usize,
    /// Retries of a page answered with 429 or 503. Default is
    /// [`DEFAULT_MAX_RETRIES`].
    pub max_retries: usize,
    /// Cap on waits asked for by `Retry-After` or `Crawl-delay`. Default is
    /// [`DEFAULT_MAX_RETRY_AFTER`].
    pub max_retry_after: Duration,
    /// Sitemap files fetched per run. Default is [`DEFAULT_MAX_SITEMAPS`].
    pub max_sitemaps: usize,
    /// How long an unreachable robots.txt holds its host's URLs before it
    /// is fetched again (doubled for each further attempt, up to
    /// [`ROBOTS_ATTEMPTS`] fetches). Default is [`DEFAULT_ROBOTS_RETRY`].
    pub robots_retry: Duration,
    /// Validators from an earlier run, keyed by the normalized URL that is
    /// requested (see [`url_norm::normalize`](crate::url_norm::normalize));
    /// each redirect hop is looked up too. A URL with an entry is requested
    /// conditionally; a 304 answer becomes
    /// [`CrawlEvent::NotModified`](crate::CrawlEvent::NotModified) and the
    /// entry's [`links`](Validators::links) are followed as if the page had
    /// been fetched. Default is empty.
    pub validators: HashMap<String, Validators>,
}

impl Default for CrawlConfig {
    fn default() -> Self {
        Self {
            start_urls: Vec::new(),
            max_pages: DEFAULT_MAX_PAGES,
            max_depth: DEFAULT_MAX_DEPTH,
            include: Vec::new(),
            exclude: Vec::new(),
            concurrency: DEFAULT_CONCURRENCY,
            per_host: DEFAULT_PER_HOST,
            delay: DEFAULT_DELAY,
            user_agent: DEFAULT_USER_AGENT.to_owned(),
            respect_robots: true,
            sitemaps: true,
            no_parent: false,
            allow_subdomains: false,
            extra_hosts: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_redirects: DEFAULT_MAX_REDIRECTS,
            max_retries: DEFAULT_MAX_RETRIES,
            max_retry_after: DEFAULT_MAX_RETRY_AFTER,
            max_sitemaps: DEFAULT_MAX_SITEMAPS,
            robots_retry: DEFAULT_ROBOTS_RETRY,
            validators: HashMap::new(),
        }
    }
}
