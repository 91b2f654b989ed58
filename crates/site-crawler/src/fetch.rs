//! HTTP: one pooled client, politeness around every request, bounded
//! bodies, robots.txt retrieval.
//!
//! Redirects are never followed by reqwest (policy `none`): the crawler
//! walks them itself so each hop is checked against scope and robots.txt
//! and counted. Bodies are streamed chunk by chunk and abandoned as soon as
//! they pass their limit, so an oversized page never sits in memory whole.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::header::{CONTENT_LENGTH, IF_MODIFIED_SINCE, IF_NONE_MATCH, LOCATION, RETRY_AFTER};
use http::{HeaderMap, StatusCode};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use tracing::debug;
use url::Url;

use crate::config::{CrawlConfig, MAX_HOST_BACKOFF, ROBOTS_ATTEMPTS, Validators};
use crate::error::CrawlError;
use crate::host::{CachedRobots, Hosts, Ticket};
use crate::robots::{self, MAX_ROBOTS_BYTES, RobotsRules};
use crate::stats::Traffic;

/// Redirect hops followed for robots.txt, as RFC 9309 section 2.3.1.2 asks.
const ROBOTS_MAX_REDIRECTS: usize = 5;
/// First wait after a 429/503 without `Retry-After`; doubled per attempt.
const BASE_BACKOFF: Duration = Duration::from_secs(1);
/// Why a request produced no usable answer.
#[derive(Debug)]
pub(crate) enum FetchError {
    /// The request or the connection failed.
    Transport(reqwest::Error),
    /// The server answered 429/503 asking for a longer wait than
    /// `max_retry_after`; the host has been backed off instead.
    WaitTooLong {
        /// The status answered.
        status: StatusCode,
        /// The wait the server asked for.
        asked: Duration,
        /// The cap it exceeded.
        cap: Duration,
    },
}

impl FetchError {
    /// A one-line description ending with the innermost useful cause.
    pub(crate) fn describe(&self, timeout: Duration) -> String {
        match self {
            Self::Transport(error) => describe(error, timeout),
            Self::WaitTooLong { status, asked, cap } => format!(
                "server answered {status} and asked to wait {} s, more than the {} s allowed",
                asked.as_secs(),
                cap.as_secs()
            ),
        }
    }
}

/// The robots.txt rules of an origin, and, while they are the stand-in for
/// an unreachable file, when it will be fetched again (`None` once the
/// attempts are used up).
#[derive(Debug, Clone)]
pub(crate) struct RobotsAnswer {
    pub(crate) rules: Arc<RobotsRules>,
    pub(crate) retry_at: Option<Instant>,
}

/// Why a body was not read whole.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// Longer than the limit.
    TooLarge,
    /// The transfer failed.
    Transport(reqwest::Error),
}

/// The pooled client with the crawl's politeness settings.
#[derive(Debug)]
pub(crate) struct Fetcher {
    client: reqwest::Client,
    pub(crate) hosts: Hosts,
    user_agent: String,
    max_retries: usize,
    max_retry_after: Duration,
    robots_retry: Duration,
    delay: Duration,
    respect_robots: bool,
    pub(crate) timeout: Duration,
}

impl Fetcher {
    pub(crate) fn new(config: &CrawlConfig) -> Result<Self, CrawlError> {
        // reqwest is built without a default TLS provider (see CRATES.md);
        // installing fails harmlessly when another crate already did it.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .user_agent(config.user_agent.clone())
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .pool_max_idle_per_host(config.per_host.max(1))
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .gzip(true)
            .brotli(true)
            .build()
            .map_err(CrawlError::Client)?;
        Ok(Self {
            client,
            hosts: Hosts::new(config.per_host, config.delay),
            user_agent: config.user_agent.clone(),
            max_retries: config.max_retries,
            max_retry_after: config.max_retry_after,
            robots_retry: config.robots_retry,
            delay: config.delay,
            respect_robots: config.respect_robots,
            timeout: config.timeout,
        })
    }

    /// Sends a GET through the host's gate, retrying 429 and 503 answers
    /// after the wait they ask for, up to `max_retries` times. The first
    /// request uses `ticket` when it is for this host. Every 429/503 backs
    /// the whole host off, the last one too; a wait longer than
    /// `max_retry_after` is not sat out but fails the request with
    /// [`FetchError::WaitTooLong`], after backing the host off for it
    /// (at most [`MAX_HOST_BACKOFF`]). Any other answer is returned with
    /// the host permit, to be held until its body is read.
    pub(crate) async fn get(
        &self,
        url: &Url,
        validators: Option<&Validators>,
        traffic: &Traffic,
        ticket: &mut Option<Ticket>,
    ) -> Result<(reqwest::Response, OwnedSemaphorePermit), FetchError> {
        let host = self.hosts.get(url);
        let mut attempt = 0;
        loop {
            let reserved = ticket.take().and_then(|ticket| ticket.redeem(&host));
            let permit = match reserved {
                Some(permit) => permit,
                None => host.acquire().await,
            };
            Traffic::bump(&traffic.requests, 1);
            let response =
                self.request(url, validators).send().await.map_err(FetchError::Transport)?;

            let status = response.status();
            let retryable =
                matches!(status, StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE);
            if !retryable {
                return Ok((response, permit));
            }

            let (wait, asked) = self.retry_wait(response.headers(), attempt);
            if let Some(asked) = asked.filter(|asked| *asked > self.max_retry_after) {
                debug!(%url, %status, asked_s = asked.as_secs(), "server asks for a long wait; backing off host");
                host.back_off(asked.min(MAX_HOST_BACKOFF));
                return Err(FetchError::WaitTooLong { status, asked, cap: self.max_retry_after });
            }
            debug!(%url, %status, attempt, wait_ms = wait.as_millis(), "backing off host");
            host.back_off(wait);
            if attempt >= self.max_retries {
                return Ok((response, permit));
            }
            drop(permit);
            Traffic::bump(&traffic.retries, 1);
            attempt += 1;
        }
    }

    fn request(&self, url: &Url, validators: Option<&Validators>) -> reqwest::RequestBuilder {
        let mut request = self.client.get(url.clone());
        if let Some(validators) = validators {
            if let Some(etag) = &validators.etag {
                request = request.header(IF_NONE_MATCH, etag);
            }
            if let Some(date) = &validators.last_modified {
                request = request.header(IF_MODIFIED_SINCE, date);
            }
        }
        request
    }

    /// The wait before retrying a 429/503 (the asked wait, capped;
    /// doubling from one second when the server does not say) and the
    /// wait the server asked for, if it did.
    fn retry_wait(&self, headers: &HeaderMap, attempt: usize) -> (Duration, Option<Duration>) {
        let asked = headers
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(parse_retry_after);
        let fallback = BASE_BACKOFF.saturating_mul(1 << attempt.min(16));
        (asked.unwrap_or(fallback).min(self.max_retry_after), asked)
    }

    /// The robots.txt rules for the URL's origin, fetched once and cached.
    /// An unreachable file is fetched again after `robots_retry` (doubled
    /// each time) until [`ROBOTS_ATTEMPTS`] fetches have failed; after that
    /// its rules (nothing allowed) stand for the rest of the run.
    /// `Crawl-delay` is applied to the host only when robots.txt is
    /// obeyed.
    pub(crate) async fn robots(
        &self,
        url: &Url,
        traffic: &Traffic,
        ticket: &mut Option<Ticket>,
    ) -> RobotsAnswer {
        let slot = self.hosts.robots(url);
        let mut cached = match slot.try_lock() {
            Ok(cached) => cached,
            Err(_) => {
                // Another task is fetching this robots.txt and may need a
                // permit of the host: waiting while holding one could
                // deadlock, and the answer will be cached anyway.
                drop(ticket.take());
                slot.lock().await
            }
        };
        if let Some(entry) = cached.as_ref().filter(|entry| entry.is_fresh()) {
            return RobotsAnswer { rules: Arc::clone(&entry.rules), retry_at: entry.expires };
        }

        let rules = Arc::new(self.fetch_robots(url, traffic, ticket).await);
        if let Some(delay) = rules.crawl_delay().filter(|_| self.respect_robots) {
            self.hosts.get(url).raise_delay(delay.min(self.max_retry_after).max(self.delay));
        }
        let failures = match cached.as_ref() {
            Some(previous) if rules.is_unavailable() => previous.failures + 1,
            _ if rules.is_unavailable() => 1,
            _ => 0,
        };
        let expires = (rules.is_unavailable() && failures < ROBOTS_ATTEMPTS).then(|| {
            Instant::now() + self.robots_retry.saturating_mul(1 << (failures - 1).min(16))
        });
        if rules.is_unavailable() {
            debug!(%url, failures, retry = expires.is_some(), "robots.txt unavailable");
        }
        *cached = Some(CachedRobots { rules: Arc::clone(&rules), expires, failures });
        RobotsAnswer { rules, retry_at: expires }
    }

    async fn fetch_robots(
        &self,
        url: &Url,
        traffic: &Traffic,
        ticket: &mut Option<Ticket>,
    ) -> RobotsRules {
        let Some(mut target) = robots::robots_url(url) else {
            return RobotsRules::allow_all();
        };

        for _ in 0..=ROBOTS_MAX_REDIRECTS {
            Traffic::bump(&traffic.robots_fetches, 1);
            let (response, _permit) = match self.get(&target, None, traffic, ticket).await {
                Ok(fetched) => fetched,
                Err(error) => {
                    let cause = error.describe(self.timeout);
                    debug!(url = %target, error = %cause, "robots.txt unreachable");
                    return RobotsRules::unreachable(format!("robots.txt unreachable: {cause}"));
                }
            };

            let status = response.status();
            if status.is_redirection() {
                match redirect_target(&target, response.headers()) {
                    Some(next) => target = next,
                    None => return RobotsRules::allow_all(),
                }
                continue;
            }
            if status.is_success() {
                return match read_body(response, MAX_ROBOTS_BYTES as u64, true).await {
                    Ok(body) => RobotsRules::parse(&body, &self.user_agent),
                    Err(BodyError::Transport(error)) => RobotsRules::unreachable(format!(
                        "reading robots.txt failed: {}",
                        describe(&error, self.timeout)
                    )),
                    Err(BodyError::TooLarge) => {
                        RobotsRules::unreachable("robots.txt is too large".to_owned())
                    }
                };
            }
            debug!(url = %target, %status, "robots.txt not served");
            // 429 is a 4xx, but it means "come back later", not "no rules".
            return if status == StatusCode::TOO_MANY_REQUESTS {
                RobotsRules::unreachable(format!("robots.txt answered {status}"))
            } else {
                RobotsRules::for_status(status.as_u16())
            };
        }
        RobotsRules::allow_all()
    }
}

/// Reads a body up to `limit` bytes. Past the limit it fails with
/// [`BodyError::TooLarge`], or with `truncate` returns the first `limit`
/// bytes. A `Content-Length` over the limit fails before reading.
pub(crate) async fn read_body(
    mut response: reqwest::Response,
    limit: u64,
    truncate: bool,
) -> Result<Vec<u8>, BodyError> {
    let declared = response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    if !truncate && declared.is_some_and(|length| length > limit) {
        return Err(BodyError::TooLarge);
    }

    let capacity = declared.unwrap_or(0).min(limit).min(1 << 20);
    let mut body = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        let room = usize::try_from(limit.saturating_sub(body.len() as u64)).unwrap_or(usize::MAX);
        if chunk.len() > room {
            if truncate {
                body.extend_from_slice(&chunk[..room]);
                return Ok(body);
            }
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The absolute, normalized target of a redirect response.
pub(crate) fn redirect_target(from: &Url, headers: &HeaderMap) -> Option<Url> {
    let location = headers.get(LOCATION)?.to_str().ok()?;
    crate::url_norm::resolve(from, location)
}

/// Describes a request error as reqwest's message followed by the
/// innermost useful cause (`connection refused`, `dns lookup failed: ...`,
/// `timed out after 30s`, `tls: ...`), which reqwest's own message leaves
/// out.
pub(crate) fn describe(error: &reqwest::Error, timeout: Duration) -> String {
    format!("{error}: {}", innermost_cause(error, timeout))
}

fn innermost_cause(error: &reqwest::Error, timeout: Duration) -> String {
    if error.is_timeout() {
        return if timeout.subsec_millis() == 0 {
            format!("timed out after {}s", timeout.as_secs())
        } else {
            format!("timed out after {}ms", timeout.as_millis())
        };
    }
    let mut chain: Vec<&(dyn std::error::Error + 'static)> = Vec::new();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        chain.push(cause);
        source = cause.source();
    }
    let innermost = chain.last().map(ToString::to_string).unwrap_or_else(|| error.to_string());

    if chain.iter().any(|cause| cause.to_string().starts_with("dns error")) {
        return format!("dns lookup failed: {innermost}");
    }
    if let Some(tls) = chain.iter().find_map(|cause| cause.downcast_ref::<rustls::Error>()) {
        return format!("tls: {tls}");
    }
    let io_kind =
        chain.iter().find_map(|cause| cause.downcast_ref::<std::io::Error>()).map(|e| e.kind());
    match io_kind {
        Some(std::io::ErrorKind::ConnectionRefused) => "connection refused".to_owned(),
        Some(std::io::ErrorKind::ConnectionReset) => "connection reset by peer".to_owned(),
        Some(std::io::ErrorKind::ConnectionAborted) => "connection aborted".to_owned(),
        Some(std::io::ErrorKind::TimedOut) => "connection timed out".to_owned(),
        Some(std::io::ErrorKind::UnexpectedEof) => "connection closed early".to_owned(),
        _ => innermost,
    }
}

/// Parses `Retry-After`: delay seconds or an HTTP date.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use test_support::site::{Route, TestSite};

    use super::*;

    fn fetcher(max_retry_after: Duration, robots_retry: Duration) -> Fetcher {
        let config = CrawlConfig {
            delay: Duration::from_millis(10),
            max_retry_after,
            robots_retry,
            max_retries: 0,
            ..CrawlConfig::default()
        };
        Fetcher::new(&config).unwrap()
    }

    #[tokio::test]
    async fn crawl_delay_raises_the_host_spacing_up_to_the_cap() {
        let robots = Route::bytes("text/plain", "User-agent: *\nCrawl-delay: 5\nDisallow: /x\n");
        let site = TestSite::new().route("/robots.txt", robots).start().await;
        let traffic = Traffic::default();

        let capped = fetcher(Duration::from_secs(2), Duration::ZERO);
        let rules = capped.robots(&site.base_url(), &traffic, &mut None).await.rules;
        assert!(!rules.is_allowed(&site.url("/x")));
        assert_eq!(capped.hosts.get(&site.base_url()).delay(), Duration::from_secs(2));

        let uncapped = fetcher(Duration::from_secs(60), Duration::ZERO);
        uncapped.robots(&site.base_url(), &traffic, &mut None).await;
        assert_eq!(uncapped.hosts.get(&site.base_url()).delay(), Duration::from_secs(5));
    }

    #[tokio::test]
    async fn crawl_delay_is_not_applied_when_robots_txt_is_ignored() {
        let robots = Route::bytes("text/plain", "User-agent: *\nCrawl-delay: 5\n");
        let site = TestSite::new().route("/robots.txt", robots).start().await;
        let config = CrawlConfig {
            delay: Duration::from_millis(10),
            respect_robots: false,
            ..CrawlConfig::default()
        };
        let ignoring = Fetcher::new(&config).unwrap();
        let answer = ignoring.robots(&site.base_url(), &Traffic::default(), &mut None).await;
        assert_eq!(answer.rules.crawl_delay(), Some(Duration::from_secs(5)));
        assert_eq!(ignoring.hosts.get(&site.base_url()).delay(), Duration::from_millis(10));
    }

    #[tokio::test]
    async fn robots_is_cached_but_an_unreachable_one_is_fetched_again() {
        let site = TestSite::new().route("/robots.txt", Route::status(500)).start().await;
        let traffic = Traffic::default();
        let retry_at_once = fetcher(Duration::from_secs(1), Duration::ZERO);
        assert!(
            retry_at_once
                .robots(&site.base_url(), &traffic, &mut None)
                .await
                .rules
                .is_unavailable()
        );
        site.set_route("/robots.txt", Route::status(404));
        assert!(
            !retry_at_once
                .robots(&site.base_url(), &traffic, &mut None)
                .await
                .rules
                .is_unavailable()
        );
        retry_at_once.robots(&site.base_url(), &traffic, &mut None).await;
        assert_eq!(site.hits("/robots.txt"), 2, "a fetched answer is kept");
    }

    #[tokio::test]
    async fn robots_redirects_are_followed() {
        let site = TestSite::new()
            .route("/robots.txt", Route::redirect(301, "/real-robots.txt"))
            .route("/real-robots.txt", Route::bytes("text/plain", "User-agent: *\nDisallow: /\n"))
            .start()
            .await;
        let rules = fetcher(Duration::from_secs(1), Duration::ZERO)
            .robots(&site.base_url(), &Traffic::default(), &mut None)
            .await
            .rules;
        assert!(!rules.is_allowed(&site.url("/page")));
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        assert_eq!(parse_retry_after(" 120 "), Some(Duration::from_secs(120)));
        let past = httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(1));
        assert_eq!(parse_retry_after(&past), Some(Duration::ZERO));
        let future = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(3600));
        assert!(parse_retry_after(&future).is_some_and(|wait| wait > Duration::from_secs(3000)));
        assert_eq!(parse_retry_after("soon"), None);
    }
}
