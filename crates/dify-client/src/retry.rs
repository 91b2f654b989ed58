//! When to retry, and how long to wait.
//!
//! Three separate questions, answered in three places:
//! - *May this request be repeated?* depends on the endpoint, so every
//!   endpoint carries an [`Idempotency`] class instead of ad-hoc checks at
//!   call sites.
//! - *Is this failure transient, and was the request possibly delivered?*
//!   is decided from the outcome ([`Outcome`]).
//! - *May we afford another attempt now?* is the [`RetryBudget`]: retries
//!   add at most a fixed fraction of load, with a small floor so a quiet
//!   client can still retry, which keeps a struggling server from being
//!   hammered by every caller at once.
//!
//! Waits use exponential backoff with full jitter (a uniform draw between
//! zero and the exponential ceiling) so that callers failing together do not
//! retry together; a server's `Retry-After` replaces the draw, capped.

use std::cell::RefCell;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use crate::builder::{
    DEFAULT_BASE_DELAY, DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_DELAY, DEFAULT_MAX_RETRY_AFTER,
};

/// Whether an endpoint's request may be sent more than once.
///
/// Every endpoint's class, with the reason for it, is listed in one table
/// (the crate's `endpoints` module); the variants say what each class
/// allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Idempotency {
    /// Repeating has no further effect: reads, retrieval, deletes (a "not
    /// found" after an attempt that may have been processed counts as
    /// done), idempotent toggles, tag binding and full-replace metadata
    /// assignment. Retried on any transient failure.
    Safe,
    /// A create keyed by a unique name (dataset, metadata field, tag, and
    /// create-by-text, which replaces a same-name document in place). A
    /// repeat after a lost reply either returns the same document or
    /// answers "duplicate", which the create resolves by looking the name
    /// up. Retried on any transient failure.
    NaturalKey,
    /// Repeating may duplicate work or fail although the first copy
    /// succeeded (updates, status toggles, renames, file creates, partial
    /// metadata merges). Retried only when the request cannot have been
    /// processed: a connection that never carried it, or an explicit
    /// refusal before processing (408, 429, the cloud rate limit).
    Unsafe,
}

impl Idempotency {
    /// Whether a failure after the request may have been processed can be
    /// retried.
    pub fn repeatable(self) -> bool {
        matches!(self, Idempotency::Safe | Idempotency::NaturalKey)
    }
}

/// How an attempt ended, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The request never left: connect failure or a connection closed
    /// before the request was written.
    NotSent,
    /// The server refused before processing (408, 429, cloud rate limit).
    Refused,
    /// The request may have been processed: 5xx, timeouts, connections
    /// dropped mid-exchange.
    MaybeProcessed,
    /// A final answer: success or a client error.
    Final,
}

impl Outcome {
    /// Whether this outcome may be retried for an endpoint of `class`.
    pub(crate) fn retryable(self, class: Idempotency) -> bool {
        match self {
            Outcome::NotSent | Outcome::Refused => true,
            Outcome::MaybeProcessed => class.repeatable(),
            Outcome::Final => false,
        }
    }
}

/// Retry settings; see [`DifyClientBuilder`](crate::DifyClientBuilder) for
/// the setters and defaults.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per request, the first one included.
    pub max_attempts: u32,
    /// Ceiling of the first backoff draw; doubles each retry.
    pub base_delay: Duration,
    /// Largest backoff ceiling.
    pub max_delay: Duration,
    /// Largest `Retry-After` honoured; longer values are cut to this.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            base_delay: DEFAULT_BASE_DELAY,
            max_delay: DEFAULT_MAX_DELAY,
            max_retry_after: DEFAULT_MAX_RETRY_AFTER,
        }
    }
}

impl RetryPolicy {
    /// The exponential ceiling before retry number `retry` (1-based).
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1).min(30));
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }

    /// The wait before retry number `retry`: a full-jitter draw, or the
    /// server's `Retry-After` (capped) when it sent one.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(after) = retry_after {
            return after.min(self.max_retry_after);
        }
        let ceiling = self.ceiling(retry);
        if ceiling.is_zero() {
            return ceiling;
        }
        JITTER.with(|rng| rng.borrow_mut().random_range(Duration::ZERO..=ceiling))
    }
}

thread_local! {
    /// Per-thread generator for jitter; seeded from the OS, or from the
    /// clock if the OS source fails (jitter needs spread, not secrecy).
    static JITTER: RefCell<SmallRng> = RefCell::new(SmallRng::try_from_os_rng().unwrap_or_else(|_| {
        let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_nanos();
        SmallRng::seed_from_u64(nanos as u64)
    }));
}

/// The retry decisions of one request, attempt by attempt.
#[derive(Debug)]
pub(crate) struct RetryState<'a> {
    policy: &'a RetryPolicy,
    budget: &'a RetryBudget,
    class: Idempotency,
    attempt: u32,
}

impl<'a> RetryState<'a> {
    /// Starts a request (its first attempt earns budget).
    pub(crate) fn new(
        policy: &'a RetryPolicy,
        budget: &'a RetryBudget,
        class: Idempotency,
    ) -> Self {
        budget.deposit();
        Self { policy, budget, class, attempt: 1 }
    }

    /// The number of the attempt under way (1-based).
    pub(crate) fn attempt(&self) -> u32 {
        self.attempt
    }

    /// After a failed attempt: the wait before the next one, or `None` to
    /// give up. A rate-limit refusal gets no backoff and does not spend the
    /// budget: the next attempt waits out the shared pause before it is
    /// admitted (whatever its endpoint), which spaces those retries out.
    pub(crate) fn next(
        &mut self,
        outcome: Outcome,
        retry_after: Option<Duration>,
        rate_limited: bool,
    ) -> Option<Duration> {
        if !outcome.retryable(self.class) || self.attempt >= self.policy.max_attempts {
            return None;
        }
        if !rate_limited && !self.budget.withdraw() {
            return None;
        }
        let delay = if rate_limited {
            Duration::ZERO
        } else {
            self.policy.delay(self.attempt, retry_after)
        };
        self.attempt += 1;
        Some(delay)
    }
}

/// Parses `Retry-After`: delta seconds or an HTTP date (relative to `now`).
/// A date in the past means "now".
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A token bucket limiting retries to a fraction of traffic.
///
/// Each first attempt deposits `ratio` tokens (up to a cap) and each retry
/// withdraws one, so retries stay near `ratio` of requests over time. A
/// separate floor of `min_per_sec` retries a second refills with time, so
/// that a client making few calls can still retry them. Tokens are counted
/// in thousandths so that ten deposits of 0.2 make exactly two.
#[derive(Debug)]
pub struct RetryBudget {
    deposit_milli: u64,
    floor_per_sec: u64,
    cap_milli: u64,
    state: Mutex<BudgetState>,
}

#[derive(Debug)]
struct BudgetState {
    earned_milli: u64,
    floor_milli: u64,
    refilled: Instant,
}

const TOKEN: u64 = 1000;

impl RetryBudget {
    /// A budget allowing `ratio` extra load plus `min_per_sec` retries a
    /// second.
    pub fn new(ratio: f64, min_per_sec: u32) -> Self {
        let ratio = if ratio.is_finite() { ratio.clamp(0.0, 1000.0) } else { 0.0 };
        // In range after the clamp, so the cast cannot truncate.
        let deposit_milli = (ratio * TOKEN as f64).round() as u64;
        let floor_per_sec = u64::from(min_per_sec);
        let state = BudgetState {
            earned_milli: 0,
            floor_milli: floor_per_sec * TOKEN,
            refilled: Instant::now(),
        };
        Self {
            deposit_milli,
            floor_per_sec,
            cap_milli: (100 * deposit_milli).max(TOKEN),
            state: Mutex::new(state),
        }
    }

    /// Records a first attempt.
    pub fn deposit(&self) {
        let mut state = self.lock();
        state.earned_milli = (state.earned_milli + self.deposit_milli).min(self.cap_milli);
    }

    /// Takes the allowance for one retry; `false` when the budget is spent.
    pub fn withdraw(&self) -> bool {
        let mut state = self.lock();
        self.refill_floor(&mut state);
        if state.earned_milli >= TOKEN {
            state.earned_milli -= TOKEN;
            true
        } else if state.floor_milli >= TOKEN {
            state.floor_milli -= TOKEN;
            true
        } else {
            false
        }
    }

    fn refill_floor(&self, state: &mut BudgetState) {
        let now = Instant::now();
        let elapsed_ms = now.saturating_duration_since(state.refilled).as_millis();
        let elapsed_ms = u64::try_from(elapsed_ms).unwrap_or(u64::MAX);
        let refill = elapsed_ms.saturating_mul(self.floor_per_sec);
        state.floor_milli =
            state.floor_milli.saturating_add(refill).min(self.floor_per_sec * TOKEN);
        state.refilled = now;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BudgetState> {
        // The state is plain numbers, valid even if a holder panicked.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_is_the_documented_defaults() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.max_attempts, DEFAULT_MAX_ATTEMPTS);
        assert_eq!(policy.base_delay, DEFAULT_BASE_DELAY);
        assert_eq!(policy.max_delay, DEFAULT_MAX_DELAY);
        assert_eq!(policy.max_retry_after, DEFAULT_MAX_RETRY_AFTER);
    }

    #[test]
    fn ceiling_doubles_up_to_the_cap() {
        let policy = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(500),
            ..RetryPolicy::default()
        };
        let ceilings: Vec<_> = (1..=5).map(|n| policy.ceiling(n).as_millis()).collect();
        assert_eq!(ceilings, [100, 200, 400, 500, 500]);
        assert_eq!(policy.ceiling(u32::MAX), Duration::from_millis(500));
    }

    #[test]
    fn jittered_delay_stays_under_the_ceiling() {
        let policy = RetryPolicy::default();
        for retry in 1..8 {
            for _ in 0..50 {
                assert!(policy.delay(retry, None) <= policy.ceiling(retry));
            }
        }
    }

    #[test]
    fn retry_after_replaces_the_draw_and_is_capped() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.delay(1, Some(Duration::from_secs(3))), Duration::from_secs(3));
        assert_eq!(policy.delay(1, Some(Duration::from_secs(3600))), policy.max_retry_after);
    }

    #[test]
    fn retry_after_parses_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_319_057);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        let date = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(parse_retry_after(&date, now), Some(Duration::from_secs(30)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn outcome_and_class_decide_together() {
        use Idempotency::*;
        use Outcome::*;
        for class in [Safe, NaturalKey, Unsafe] {
            assert!(NotSent.retryable(class));
            assert!(Refused.retryable(class));
            assert!(!Final.retryable(class));
        }
        assert!(MaybeProcessed.retryable(Safe));
        assert!(MaybeProcessed.retryable(NaturalKey));
        assert!(!MaybeProcessed.retryable(Unsafe));
    }

    #[tokio::test(start_paused = true)]
    async fn budget_floor_refills_with_time() {
        let budget = RetryBudget::new(0.0, 2);
        assert!(budget.withdraw());
        assert!(budget.withdraw());
        assert!(!budget.withdraw());

        tokio::time::advance(Duration::from_millis(500)).await;
        assert!(budget.withdraw());
        assert!(!budget.withdraw());

        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(budget.withdraw());
        assert!(budget.withdraw());
        assert!(!budget.withdraw(), "the floor never exceeds one second's worth");
    }

    #[tokio::test(start_paused = true)]
    async fn budget_earns_a_fraction_of_traffic() {
        let budget = RetryBudget::new(0.2, 0);
        for _ in 0..10 {
            budget.deposit();
        }
        assert!(budget.withdraw());
        assert!(budget.withdraw());
        assert!(!budget.withdraw(), "ten requests earn two retries");
    }

    #[tokio::test(start_paused = true)]
    async fn schedule_follows_the_policy_and_the_budget() {
        let policy = RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(250),
            max_retry_after: Duration::from_secs(2),
        };
        // Earned tokens only, so the sleeps below refill nothing: fourteen
        // earlier requests plus this one earn exactly three retries.
        let budget = RetryBudget::new(0.2, 0);
        for _ in 0..14 {
            budget.deposit();
        }
        let mut state = RetryState::new(&policy, &budget, Idempotency::Safe);

        let start = Instant::now();
        let mut waited = Duration::ZERO;
        while let Some(delay) = state.next(Outcome::MaybeProcessed, None, false) {
            assert!(delay <= policy.ceiling(state.attempt() - 1), "retry {}", state.attempt() - 1);
            tokio::time::sleep(delay).await;
            waited += delay;
        }
        assert_eq!(state.attempt(), 4, "the budget allowed three retries of four");
        // Tokio rounds each sleep up to the next millisecond.
        let slept = start.elapsed();
        assert!(
            slept >= waited && slept <= waited + Duration::from_millis(3),
            "{slept:?} vs {waited:?}"
        );

        let budget = RetryBudget::new(0.0, 1);
        let mut first = RetryState::new(&policy, &budget, Idempotency::Safe);
        assert!(first.next(Outcome::NotSent, None, false).is_some());
        let mut starved = RetryState::new(&policy, &budget, Idempotency::Safe);
        assert_eq!(starved.next(Outcome::NotSent, None, false), None, "budget spent");
        tokio::time::advance(Duration::from_secs(1)).await;
        let after = starved.next(Outcome::NotSent, Some(Duration::from_secs(5)), false);
        assert_eq!(after, Some(Duration::from_secs(2)), "refilled; Retry-After capped");
    }

    #[test]
    fn schedule_stops_at_max_attempts_and_final_answers() {
        let policy = RetryPolicy { max_attempts: 3, ..RetryPolicy::default() };
        let budget = RetryBudget::new(0.0, 100);
        let mut state = RetryState::new(&policy, &budget, Idempotency::Unsafe);
        assert_eq!(state.next(Outcome::MaybeProcessed, None, false), None, "unsafe write");
        assert_eq!(state.next(Outcome::Final, None, false), None);
        assert!(state.next(Outcome::Refused, None, true).is_some());
        assert!(state.next(Outcome::NotSent, None, false).is_some());
        assert_eq!(state.next(Outcome::NotSent, None, false), None, "three attempts made");
    }
}
