//! Per-host politeness: a concurrency cap, a minimum spacing between
//! requests, backoff, and the host's robots.txt.
//!
//! Every request to a host, robots.txt and sitemaps included, first takes
//! [`Host::acquire`]: a semaphore permit (at most `per_host` requests in
//! flight) and then a start slot at least `delay` after the previous one.
//! A 429/503 answer pushes the next slot out with [`Host::back_off`], so
//! all requests to that host wait, not only the retried one. Slots are
//! handed out under a std mutex that is never held across an `.await`.
//! Times use `tokio::time::Instant`, so tests can drive them with paused
//! time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use url::Url;

use crate::robots::RobotsRules;

/// All hosts seen by one crawler, keyed by origin.
#[derive(Debug)]
pub(crate) struct Hosts {
    map: Mutex<HashMap<String, Arc<Host>>>,
    per_host: usize,
    delay: Duration,
}

impl Hosts {
    pub(crate) fn new(per_host: usize, delay: Duration) -> Self {
        Self { map: Mutex::new(HashMap::new()), per_host, delay }
    }

    /// The state of the URL's origin, created on first use.
    pub(crate) fn get(&self, url: &Url) -> Arc<Host> {
        let key = url.origin().ascii_serialization();
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(map.entry(key).or_insert_with(|| Arc::new(Host::new(self.per_host, self.delay))))
    }
}

/// One origin's politeness state and robots.txt cache.
#[derive(Debug)]
pub(crate) struct Host {
    permits: Arc<Semaphore>,
    schedule: Mutex<Schedule>,
    /// A tokio mutex because it is held while robots.txt is fetched, so
    /// concurrent first requests to a host wait for one fetch.
    pub(crate) robots: tokio::sync::Mutex<Option<CachedRobots>>,
}

#[derive(Debug)]
struct Schedule {
    next: Instant,
    delay: Duration,
}

/// robots.txt rules with the time they stop being trusted.
#[derive(Debug, Clone)]
pub(crate) struct CachedRobots {
    pub(crate) rules: Arc<RobotsRules>,
    /// `None` for a fetched file, kept for the whole run; a time for an
    /// unreachable one, which is fetched again after it.
    pub(crate) expires: Option<Instant>,
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
            robots: tokio::sync::Mutex::new(None),
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

    #[test]
    fn hosts_are_keyed_by_origin() {
        let hosts = Hosts::new(1, Duration::ZERO);
        let a = hosts.get(&Url::parse("http://example.com/a").unwrap());
        let b = hosts.get(&Url::parse("http://example.com/b").unwrap());
        let c = hosts.get(&Url::parse("https://example.com/a").unwrap());
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
    }
}
