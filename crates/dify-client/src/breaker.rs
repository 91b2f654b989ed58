//! A circuit breaker over consecutive failures.
//!
//! When Dify is down, every page of a crawl would otherwise spend its full
//! retry schedule against it. After `threshold` consecutive failed calls
//! (the transport records one verdict per call, after its retries:
//! transport errors and 5xx fail; any other answer proves the server is up)
//! the breaker opens: calls fail at once with the time left. After the
//! cool-down one probe call is let through (half-open); its success closes
//! the breaker, its failure opens it again for another cool-down.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// Breaker state, shared by all callers of one client.
#[derive(Debug)]
pub struct CircuitBreaker {
    threshold: u32,
    cool_down: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probe_out: bool },
}

/// What the breaker says about a call about to be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    /// Go ahead.
    Allowed,
    /// Go ahead as the half-open probe.
    Probe,
    /// Do not send; the breaker is open for this much longer.
    Rejected(Duration),
}

/// What the breaker did with a recorded result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Nothing changed.
    None,
    /// The breaker opened.
    Opened,
    /// The breaker closed after a successful probe.
    Closed,
}

impl CircuitBreaker {
    /// A breaker opening after `threshold` consecutive failures (0 disables
    /// it) for `cool_down`.
    pub fn new(threshold: u32, cool_down: Duration) -> Self {
        Self { threshold, cool_down, state: Mutex::new(State::Closed { failures: 0 }) }
    }

    /// Asks whether a call may go out now.
    pub fn permit(&self) -> Permit {
        if self.threshold == 0 {
            return Permit::Allowed;
        }
        let mut state = self.lock();
        match *state {
            State::Closed { .. } => Permit::Allowed,
            State::Open { until } => {
                let now = Instant::now();
                if now < until {
                    return Permit::Rejected(until - now);
                }
                *state = State::HalfOpen { probe_out: true };
                Permit::Probe
            }
            State::HalfOpen { probe_out: true } => Permit::Rejected(Duration::ZERO),
            State::HalfOpen { probe_out: false } => {
                *state = State::HalfOpen { probe_out: true };
                Permit::Probe
            }
        }
    }

    /// Records that the server answered (any status below 500).
    pub fn record_success(&self) -> Transition {
        if self.threshold == 0 {
            return Transition::None;
        }
        let mut state = self.lock();
        let was_half_open = matches!(*state, State::HalfOpen { .. });
        *state = State::Closed { failures: 0 };
        if was_half_open { Transition::Closed } else { Transition::None }
    }

    /// Records a transport error or 5xx.
    pub fn record_failure(&self) -> Transition {
        if self.threshold == 0 {
            return Transition::None;
        }
        let mut state = self.lock();
        let open = State::Open { until: Instant::now() + self.cool_down };
        match *state {
            State::Closed { failures } if failures + 1 >= self.threshold => {
                *state = open;
                Transition::Opened
            }
            State::Closed { failures } => {
                *state = State::Closed { failures: failures + 1 };
                Transition::None
            }
            State::HalfOpen { .. } => {
                *state = open;
                Transition::Opened
            }
            State::Open { .. } => Transition::None,
        }
    }

    /// Releases a probe permit whose call ended without a verdict (e.g. it
    /// was cancelled), so the next caller can probe.
    pub fn release_probe(&self) {
        let mut state = self.lock();
        if let State::HalfOpen { probe_out: true } = *state {
            *state = State::HalfOpen { probe_out: false };
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is a plain enum, valid even after a panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn opens_fails_fast_then_probes() {
        let breaker = CircuitBreaker::new(3, Duration::from_secs(10));
        assert_eq!(breaker.record_failure(), Transition::None);
        assert_eq!(breaker.record_failure(), Transition::None);
        assert_eq!(breaker.record_failure(), Transition::Opened);
        assert_eq!(breaker.permit(), Permit::Rejected(Duration::from_secs(10)));

        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(breaker.permit(), Permit::Probe);
        assert!(matches!(breaker.permit(), Permit::Rejected(_)), "one probe at a time");
        assert_eq!(breaker.record_success(), Transition::Closed);
        assert_eq!(breaker.permit(), Permit::Allowed);
    }

    #[tokio::test(start_paused = true)]
    async fn failed_probe_reopens() {
        let breaker = CircuitBreaker::new(1, Duration::from_secs(5));
        assert_eq!(breaker.record_failure(), Transition::Opened);
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(breaker.permit(), Permit::Probe);
        assert_eq!(breaker.record_failure(), Transition::Opened);
        assert_eq!(breaker.permit(), Permit::Rejected(Duration::from_secs(5)));
    }

    #[test]
    fn successes_reset_the_count() {
        let breaker = CircuitBreaker::new(2, Duration::from_secs(5));
        breaker.record_failure();
        breaker.record_success();
        assert_eq!(breaker.record_failure(), Transition::None);
    }

    #[test]
    fn zero_threshold_disables() {
        let breaker = CircuitBreaker::new(0, Duration::from_secs(5));
        for _ in 0..10 {
            breaker.record_failure();
        }
        assert_eq!(breaker.permit(), Permit::Allowed);
    }
}
