//! Per-host politeness: a concurrency cap, a minimum spacing between
//! requests, backoff, and the robots.txt cache.
//!
//! Politeness is keyed by host, plus the port when it is not the default
//! of the scheme ([`host_key`]): `http://example.com` and
//! `https://example.com` are one server with one budget, while
//! `example.com:8080` is usually another process and gets its own.
//! robots.txt is cached per origin (scheme, host and port), as RFC 9309
//! scopes it.
//!
//! Every request to a host, robots.txt and sitemaps included, first takes
//! a start slot: a semaphore permit (at most `per_host` requests in
//! flight) and a start time at least `delay` after the previous one. The
//! crawl loop takes the first slot of a page with [`Host::try_start`],
//! which never waits, so a URL only occupies a global slot once its host
//! can serve it; later requests of the same task (redirect hops, retries)
//! wait in [`Host::acquire`]. A 429/503 answer pushes the next slot out
//! with [`Host::back_off`], so all requests to that host wait, not only the
//! retried one. Slots are handed out under a std mutex that is never held
//! across an `.await`. Times use `tokio::time::Instant`, so tests can drive
//! them with paused time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use url::Url;

use crate::robots::RobotsRules;

/// The politeness key of a URL: its host, plus `:port` when the port is
/// not the scheme's default.
#[must_use]
pub(crate) fn host_key(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// The robots.txt cache entry of one origin; a tokio mutex because it is
/// held while robots.txt is fetched, so concurrent first requests wait
/// for one fetch.
pub(crate) type RobotsSlot = tokio::sync::Mutex<Option<CachedRobots>>;

/// All hosts seen by one crawler.
#[derive(Debug)]
pub(crate) struct Hosts {
    hosts: Mutex<HashMap<String, Arc<Host>>>,
    robots: Mutex<HashMap<String, Arc<RobotsSlot>>>,
    per_host: usize,
    delay: Duration,
}

impl Hosts {
    pub(crate) fn new(per_host: usize, delay: Duration) -> Self {
        Self {
            hosts: Mutex::new(HashMap::new()),
            robots: Mutex::new(HashMap::new()),
            per_host,
            delay,
        }
    }

    /// The politeness state of the URL's host, created on first use.
    pub(crate) fn get(&self, url: &Url) -> Arc<Host> {
        self.by_key(&host_key(url))
    }

    /// The politeness state of a [`host_key`], created on first use.
    pub(crate) fn by_key(&self, key: &str) -> Arc<Host> {
        let mut map = self.hosts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(host) = map.get(key) {
            return Arc::clone(host);
        }
        let host = Arc::new(Host::new(self.per_host, self.delay));
        map.insert(key.to_owned(), Arc::clone(&host));
        host
    }

    /// The robots.txt cache slot of the URL's origin.
    pub(crate) fn robots(&self, url: &Url) -> Arc<RobotsSlot> {
        let key = url.origin().ascii_serialization();
        let mut map = self.robots.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(map.entry(key).or_default())
    }
}

/// One host's politeness state.
#[derive(Debug)]
pub(crate) struct Host {
    permits: Arc<Semaphore>,
    schedule: Mutex<Schedule>,
}

#[derive(Debug)]
struct Schedule {
    next: Instant,
    delay: Duration,
}

/// A start slot taken by the crawl loop for a task's first request: the
/// permit, with the start time already booked.
#[derive(Debug)]
pub(crate) struct Ticket {
    host: Arc<Host>,
    permit: OwnedSemaphorePermit,
}

impl Ticket {
    /// The permit, if the ticket is for `host`.
    pub(crate) fn redeem(self, host: &Arc<Host>) -> Option<OwnedSemaphorePermit> {
        Arc::ptr_eq(&self.host, host).then_some(self.permit)
    }
}

/// robots.txt rules with the time they stop being trusted.
#[derive(Debug, Clone)]
pub(crate) struct CachedRobots {
    pub(crate) rules: Arc<RobotsRules>,
    /// `None` for a fetched file, and for an unreachable one after the last
    /// attempt: kept for the whole run. A time for an unreachable one that
    /// will be fetched again after it.
    pub(crate) expires: Option<Instant>,
    /// Failed fetches in a row.
    pub(crate) failures: u32,
}

impl CachedRobots {
    pub(crate) fn is_fresh(&self) -> bool {
        self.expires.is_none_or(|expires| Instant::now() < expires)
    }
}

impl Host {
    fn new(per_host: usize, delay: Duration) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(per_host.max(1))),
            schedule: Mutex::new(Schedule { next: Instant::now(), delay }),
        }
    }

    /// Waits for a free request slot on this host and for its start time.
    /// The permit must be held until the response body is read.
    pub(crate) async fn acquire(&self) -> OwnedSemaphorePermit {
        // The semaphore is never closed, so acquiring cannot fail.
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .expect("host semaphore is never closed");

        let start = {
            let mut schedule = self.schedule.lock().unwrap_or_else(PoisonError::into_inner);
            let start = schedule.next.max(Instant::now());
            schedule.next = start + schedule.delay;
            start
        };
        tokio::time::sleep_until(start).await;
        permit
    }

    /// Takes a slot that can start now, without waiting. Otherwise says
    /// when to ask again: `Some(time)` when the host is pacing or backing
    /// off, `None` when all its permits are in use (a finishing request
    /// frees one).
    pub(crate) fn try_start(self: &Arc<Self>) -> Result<Ticket, Option<Instant>> {
        let mut schedule = self.schedule.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if schedule.next > now {
            return Err(Some(schedule.next));
        }
        let permit = Arc::clone(&self.permits).try_acquire_owned().map_err(|_| None)?;
        schedule.next = now + schedule.delay;
        Ok(Ticket { host: Arc::clone(self), permit })
    }

    /// Raises the spacing between requests (never lowers it below the
    /// configured delay), e.g. for robots.txt `Crawl-delay`.
    pub(crate) fn raise_delay(&self, delay: Duration) {
        let mut schedule = self.schedule.lock().unwrap_or_else(PoisonError::into_inner);
        schedule.delay = schedule.delay.max(delay);
    }

    /// The current spacing between requests.
    #[cfg(test)]
    pub(crate) fn delay(&self) -> Duration {
        self.schedule.lock().unwrap_or_else(PoisonError::into_inner).delay
    }

    /// Holds every request to this host until `wait` from now.
    pub(crate) fn back_off(&self, wait: Duration) {
        let mut schedule = self.schedule.lock().unwrap_or_else(PoisonError::into_inner);
        schedule.next = schedule.next.max(Instant::now() + wait);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url() -> Url {
        Url::parse("http://127.0.0.1:1/").unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn requests_are_spaced_by_the_delay() {
        let hosts = Hosts::new(4, Duration::from_secs(2));
        let host = hosts.get(&url());
        let begin = Instant::now();
        drop(host.acquire().await);
        drop(host.acquire().await);
        drop(host.acquire().await);
        assert_eq!(begin.elapsed(), Duration::from_secs(4));
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_and_crawl_delay_push_the_next_slot() {
        let hosts = Hosts::new(1, Duration::ZERO);
        let host = hosts.get(&url());
        drop(host.acquire().await);
        host.back_off(Duration::from_secs(30));
        let begin = Instant::now();
        drop(host.acquire().await);
        assert_eq!(begin.elapsed(), Duration::from_secs(30));
        host.raise_delay(Duration::from_secs(5));
        drop(host.acquire().await);
        drop(host.acquire().await);
        assert_eq!(begin.elapsed(), Duration::from_secs(35));
    }

    #[tokio::test(start_paused = true)]
    async fn per_host_cap_limits_parallel_requests() {
        let hosts = Hosts::new(2, Duration::ZERO);
        let host = hosts.get(&url());
        let first = host.acquire().await;
        let _second = host.acquire().await;
        assert!(host.permits.try_acquire().is_err());
        drop(first);
        assert!(host.permits.try_acquire().is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn try_start_never_waits_and_says_when_to_come_back() {
        let hosts = Hosts::new(1, Duration::from_secs(3));
        let host = hosts.get(&url());
        let begin = Instant::now();
        let ticket = host.try_start().unwrap();
        assert!(matches!(host.try_start(), Err(Some(at)) if at == begin + Duration::from_secs(3)));
        tokio::time::advance(Duration::from_secs(3)).await;
        assert!(matches!(host.try_start(), Err(None)), "the only permit is taken");
        let permit = ticket.redeem(&host).unwrap();
        drop(permit);
        assert!(host.try_start().is_ok());
        let other = hosts.get(&Url::parse("http://other.example/").unwrap());
        assert!(other.try_start().unwrap().redeem(&host).is_none(), "tickets are per host");
    }

    #[test]
    fn hosts_are_keyed_by_host_and_non_default_port() {
        let hosts = Hosts::new(1, Duration::ZERO);
        let a = hosts.get(&Url::parse("http://example.com/a").unwrap());
        let b = hosts.get(&Url::parse("https://example.com/b").unwrap());
        let c = hosts.get(&Url::parse("http://example.com:8080/a").unwrap());
        assert!(Arc::ptr_eq(&a, &b), "http and https of one host share a budget");
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(host_key(&Url::parse("https://example.com:443/").unwrap()), "example.com");
        assert_eq!(host_key(&Url::parse("http://example.com:443/").unwrap()), "example.com:443");

        let http = hosts.robots(&Url::parse("http://example.com/a").unwrap());
        let https = hosts.robots(&Url::parse("https://example.com/a").unwrap());
        assert!(!Arc::ptr_eq(&http, &https), "robots.txt is per origin");
    }
}
