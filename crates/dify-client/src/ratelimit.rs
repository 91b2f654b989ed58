//! Dify Cloud's knowledge request rate limit, seen from the client.
//!
//! Dify Cloud counts write-ish requests per workspace in a sliding 60 s
//! window (10, 100 or 1,000 a minute by plan) and, past the limit, answers
//! 403 with a message instead of 429, without `Retry-After`. Rejected calls
//! stay in the window, so retrying quickly keeps the workspace blocked.
//! Two pieces follow from that:
//! - [`RateLimiter`]: an optional GCRA pacer on tokio time that spaces
//!   counted requests so a configured per-minute rate is never exceeded.
//!   Callers reserve a slot under a short lock and sleep outside it, so
//!   waiting callers are served in order without polling.
//! - [`CloudPause`]: shared by all callers of one client; when any request
//!   gets the rate-limit answer, every counted request waits out the rest
//!   of the window before trying again.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// Spaces requests to at most `per_minute` in any minute.
///
/// The burst is one: requests are evenly spaced, which is the only shape
/// guaranteed to stay under a sliding-window counter that other clients of
/// the same workspace also feed.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    next_free: Mutex<Option<Instant>>,
}

impl RateLimiter {
    /// A limiter allowing `per_minute` requests a minute (at least one).
    pub fn per_minute(per_minute: u32) -> Self {
        let interval = Duration::from_secs(60) / per_minute.max(1);
        Self { interval, next_free: Mutex::new(None) }
    }

    /// The spacing between two requests.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Waits for this caller's slot.
    pub async fn acquire(&self) {
        let slot = self.reserve();
        tokio::time::sleep_until(slot).await;
    }

    /// Reserves the next free slot and returns its time.
    fn reserve(&self) -> Instant {
        let now = Instant::now();
        let mut next_free = lock(&self.next_free);
        let slot = next_free.map_or(now, |at| at.max(now));
        *next_free = Some(slot + self.interval);
        slot
    }
}

/// A pause shared by every caller of one client after a rate-limit answer.
#[derive(Debug)]
pub struct CloudPause {
    window: Duration,
    until: Mutex<Option<Instant>>,
}

impl CloudPause {
    /// A pause lasting `window` from the last rate-limit answer.
    pub fn new(window: Duration) -> Self {
        Self { window, until: Mutex::new(None) }
    }

    /// Starts (or extends) the pause from now; returns how long it lasts.
    pub fn trip(&self) -> Duration {
        let until = Instant::now() + self.window;
        let mut current = lock(&self.until);
        *current = Some(current.map_or(until, |at| at.max(until)));
        self.window
    }

    /// How long callers must still wait, if at all.
    pub fn remaining(&self) -> Option<Duration> {
        let until = (*lock(&self.until))?;
        let left = until.saturating_duration_since(Instant::now());
        (!left.is_zero()).then_some(left)
    }

    /// Waits until no pause is in force.
    pub async fn wait(&self) {
        // Another caller may extend the pause while we sleep, so look again.
        while let Some(left) = self.remaining() {
            tokio::time::sleep(left).await;
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded values are plain instants, valid even after a panic.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn limiter_spaces_requests_evenly() {
        let limiter = RateLimiter::per_minute(10);
        let start = Instant::now();
        let mut offsets = Vec::new();
        for _ in 0..4 {
            limiter.acquire().await;
            offsets.push(start.elapsed().as_secs());
        }
        assert_eq!(offsets, [0, 6, 12, 18]);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_time_is_not_banked() {
        let limiter = RateLimiter::per_minute(60);
        limiter.acquire().await;
        tokio::time::advance(Duration::from_secs(30)).await;
        let start = Instant::now();
        limiter.acquire().await;
        limiter.acquire().await;
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn pause_holds_all_callers_for_the_window() {
        let pause = CloudPause::new(Duration::from_secs(60));
        assert_eq!(pause.remaining(), None);
        pause.trip();
        let start = Instant::now();
        pause.wait().await;
        assert_eq!(start.elapsed(), Duration::from_secs(60));
        assert_eq!(pause.remaining(), None);
    }
}
