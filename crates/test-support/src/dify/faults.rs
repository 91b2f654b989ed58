//! Fault plans: which requests fail, and how.
//!
//! A plan is an ordered list of rules and a seed. For each request the rules
//! are tried in order; the first that fires decides the fault. Probabilities
//! are drawn from one RNG seeded by the plan, and a draw happens only for a
//! rule that is eligible (route matches, past `skip`, under `limit`), so the
//! same plan and the same request order always inject the same faults.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// What goes wrong with a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Answer 500 without touching state.
    ServerErrorBefore,
    /// Apply the request, then answer 500: the write happened.
    ServerErrorAfter,
    /// Close the connection without answering; state untouched. On
    /// HTTP/2 this closes every stream of the connection.
    DropBefore,
    /// Apply the request, then close the connection without answering (on
    /// HTTP/2, every stream of the connection).
    DropAfter,
    /// Wait this long before handling (to run past a client's timeout).
    Stall(Duration),
    /// Answer 429 with this `Retry-After` value (none when `None`).
    TooManyRequests {
        /// The `Retry-After` header value, sent verbatim.
        retry_after: Option<String>,
    },
    /// Answer Dify Cloud's rate-limit 403 (`forbidden`, its message, no
    /// `Retry-After`) without touching state, on any route, whatever
    /// [`DifyServerBuilder::cloud_rate_limit`](super::DifyServerBuilder::cloud_rate_limit)
    /// says.
    CloudRateLimit,
}

impl Fault {
    /// The name used as the key in [`ServerStats::faults_injected`](super::ServerStats).
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::ServerErrorBefore => "server_error_before",
            Fault::ServerErrorAfter => "server_error_after",
            Fault::DropBefore => "drop_before",
            Fault::DropAfter => "drop_after",
            Fault::Stall(_) => "stall",
            Fault::TooManyRequests { .. } => "too_many_requests",
            Fault::CloudRateLimit => "cloud_rate_limit",
        }
    }
}

/// One rule of a [`FaultPlan`].
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    /// Route key (see [`routes`](super::routes)); `None` matches every request.
    pub route: Option<String>,
    /// The fault to inject.
    pub fault: Fault,
    /// Chance of injecting on an eligible request, `0.0..=1.0`.
    pub probability: f64,
    /// Let the first `skip` matching requests through untouched.
    pub skip: u64,
    /// Inject at most this many times; `None` means no limit.
    pub limit: Option<u64>,
}

impl FaultRule {
    /// A rule that fires on every matching request.
    pub fn always(route: Option<&str>, fault: Fault) -> FaultRule {
        FaultRule::sometimes(route, fault, 1.0)
    }

    /// A rule that fires with `probability` on each matching request.
    pub fn sometimes(route: Option<&str>, fault: Fault, probability: f64) -> FaultRule {
        FaultRule { route: route.map(str::to_owned), fault, probability, skip: 0, limit: None }
    }

    /// A rule that fires exactly once, on the first matching request.
    pub fn once(route: Option<&str>, fault: Fault) -> FaultRule {
        FaultRule::always(route, fault).with_limit(1)
    }

    /// Lets the first `skip` matching requests through (default 0).
    #[must_use]
    pub fn with_skip(mut self, skip: u64) -> FaultRule {
        self.skip = skip;
        self
    }

    /// Caps the number of injections (default: no cap).
    #[must_use]
    pub fn with_limit(mut self, limit: u64) -> FaultRule {
        self.limit = Some(limit);
        self
    }
}

/// A seeded, ordered set of fault rules.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FaultPlan {
    /// Seed of the RNG that draws the probabilities.
    pub seed: u64,
    /// Rules, tried in order; the first that fires wins.
    pub rules: Vec<FaultRule>,
}

impl FaultPlan {
    /// A plan with the given seed and rules.
    pub fn new(seed: u64, rules: Vec<FaultRule>) -> FaultPlan {
        FaultPlan { seed, rules }
    }
}

/// A plan in action: the RNG and per-rule counters.
pub(crate) struct FaultEngine {
    rules: Vec<ActiveRule>,
    rng: StdRng,
}

struct ActiveRule {
    rule: FaultRule,
    matched: u64,
    injected: u64,
}

impl FaultEngine {
    pub(crate) fn new(plan: FaultPlan) -> FaultEngine {
        let rules = plan
            .rules
            .into_iter()
            .map(|rule| ActiveRule { rule, matched: 0, injected: 0 })
            .collect();
        FaultEngine { rules, rng: StdRng::seed_from_u64(plan.seed) }
    }

    /// Decides the fault for one request on `route` (`None` for an unknown
    /// path, which only route-less rules match).
    pub(crate) fn decide(&mut self, route: Option<&str>) -> Option<Fault> {
        for active in &mut self.rules {
            if let Some(want) = &active.rule.route
                && route != Some(want.as_str())
            {
                continue;
            }
            active.matched += 1;
            if active.matched <= active.rule.skip {
                continue;
            }
            if active.rule.limit.is_some_and(|cap| active.injected >= cap) {
                continue;
            }
            let p = active.rule.probability.clamp(0.0, 1.0);
            if self.rng.random_bool(p) {
                active.injected += 1;
                return Some(active.rule.fault.clone());
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(plan: &FaultPlan, n: usize) -> Vec<Option<Fault>> {
        let mut engine = FaultEngine::new(plan.clone());
        (0..n).map(|_| engine.decide(Some("GET /datasets"))).collect()
    }

    #[test]
    fn same_seed_same_faults() {
        let rule = FaultRule::sometimes(None, Fault::ServerErrorBefore, 0.3);
        let plan = FaultPlan::new(7, vec![rule]);
        let first = run(&plan, 200);
        assert_eq!(first, run(&plan, 200));
        let hits = first.iter().filter(|f| f.is_some()).count();
        assert!((20..=100).contains(&hits), "{hits} hits out of 200 at p = 0.3");
    }

    #[test]
    fn skip_and_limit_bound_the_injections() {
        let rule =
            FaultRule::always(Some("GET /datasets"), Fault::DropBefore).with_skip(2).with_limit(3);
        let got = run(&FaultPlan::new(1, vec![rule]), 10);
        let fired: Vec<usize> =
            got.iter().enumerate().filter_map(|(i, f)| f.as_ref().map(|_| i)).collect();
        assert_eq!(fired, vec![2, 3, 4]);
    }

    #[test]
    fn route_rules_ignore_other_routes() {
        let rule = FaultRule::always(Some("POST /datasets"), Fault::DropBefore);
        let got = run(&FaultPlan::new(1, vec![rule]), 5);
        assert!(got.iter().all(Option::is_none));
    }
}
