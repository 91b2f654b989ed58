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

use crate::config::{CrawlConfig, Validators};
use crate::error::CrawlError;
use crate::host::{CachedRobots, Hosts};
use crate::robots::{self, MAX_ROBOTS_BYTES, RobotsRules};
use crate::stats::Traffic;

/// Redirect hops followed for robots.txt, as RFC 9309 section 2.3.1.2 asks.
const ROBOTS_MAX_REDIRECTS: usize = 5;
/// First wait after a 429/503 without `Retry-After`; doubled per attempt.
const BASE_BACKOFF: Duration = Duration::from_secs(1);

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
        })
    }

    /// Sends a GET through the host's gate, retrying 429 and 503 answers
    /// after the wait they ask for (capped), up to `max_retries` times.
    /// The last answer is returned whatever its status, with the host
    /// permit, to be held until its body is read.
    pub(crate) async fn get(
        &self,
        url: &Url,
        validators: Option<&Validators>,
        traffic: &Traffic,
    ) -> Result<(reqwest::Response, OwnedSemaphorePermit), reqwest::Error> {
        let host = self.hosts.get(url);
        let mut attempt = 0;
        loop {
            let permit = host.acquire().await;
            Traffic::bump(&traffic.requests, 1);
            let response = self.request(url, validators).send().await?;

            let status = response.status();
            let retryable =
                matches!(status, StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE);
            if !retryable || attempt >= self.max_retries {
                return Ok((response, permit));
            }
            drop(permit);

            let wait = self.retry_wait(response.headers(), attempt);
            debug!(%url, %status, attempt, wait_ms = wait.as_millis(), "backing off host");
            host.back_off(wait);
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

    /// The wait a 429/503 asks for, capped; doubling from one second when
    /// the server does not say.
    fn retry_wait(&self, headers: &HeaderMap, attempt: usize) -> Duration {
        let asked = headers
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(parse_retry_after);
        let fallback = BASE_BACKOFF.saturating_mul(1 << attempt.min(16));
        asked.unwrap_or(fallback).min(self.max_retry_after)
    }

    /// The robots.txt rules for the URL's origin, fetched once and cached
    /// on the host; an unreachable file is fetched again after
    /// `robots_retry`.
    pub(crate) async fn robots(&self, url: &Url, traffic: &Traffic) -> Arc<RobotsRules> {
        let host = self.hosts.get(url);
        let mut cached = host.robots.lock().await;
        if let Some(entry) = cached.as_ref().filter(|entry| entry.is_fresh()) {
            return Arc::clone(&entry.rules);
        }

        let rules = Arc::new(self.fetch_robots(url, traffic).await);
        if let Some(delay) = rules.crawl_delay() {
            host.raise_delay(delay.min(self.max_retry_after).max(self.delay));
        }
        let expires = rules.is_unavailable().then(|| Instant::now() + self.robots_retry);
        *cached = Some(CachedRobots { rules: Arc::clone(&rules), expires });
        rules
    }

    async fn fetch_robots(&self, url: &Url, traffic: &Traffic) -> RobotsRules {
        let Some(mut target) = robots::robots_url(url) else {
            return RobotsRules::allow_all();
        };

        for _ in 0..=ROBOTS_MAX_REDIRECTS {
            Traffic::bump(&traffic.robots_fetches, 1);
            let (response, _permit) = match self.get(&target, None, traffic).await {
                Ok(fetched) => fetched,
                Err(error) => {
                    debug!(url = %target, %error, "robots.txt unreachable");
                    return RobotsRules::unreachable(format!("robots.txt unreachable: {error}"));
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
                    Err(BodyError::Transport(error)) => {
                        RobotsRules::unreachable(format!("reading robots.txt failed: {error}"))
                    }
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
        let rules = capped.robots(&site.base_url(), &traffic).await;
        assert!(!rules.is_allowed(&site.url("/x")));
        assert_eq!(capped.hosts.get(&site.base_url()).delay(), Duration::from_secs(2));

        let uncapped = fetcher(Duration::from_secs(60), Duration::ZERO);
        uncapped.robots(&site.base_url(), &traffic).await;
        assert_eq!(uncapped.hosts.get(&site.base_url()).delay(), Duration::from_secs(5));
    }

    #[tokio::test]
    async fn robots_is_cached_but_an_unreachable_one_is_fetched_again() {
        let site = TestSite::new().route("/robots.txt", Route::status(500)).start().await;
        let traffic = Traffic::default();
        let retry_at_once = fetcher(Duration::from_secs(1), Duration::ZERO);
        assert!(retry_at_once.robots(&site.base_url(), &traffic).await.is_unavailable());
        site.set_route("/robots.txt", Route::status(404));
        assert!(!retry_at_once.robots(&site.base_url(), &traffic).await.is_unavailable());
        retry_at_once.robots(&site.base_url(), &traffic).await;
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
            .robots(&site.base_url(), &Traffic::default())
            .await;
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
